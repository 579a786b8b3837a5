//! Health reports for the reference failure counts of a five-voter group.

use super::*;
use crate::quorum::QuorumConfig;
use concord_transport::NodeId;

fn n(id: u64) -> NodeId {
    NodeId(id)
}

/// Node 1 observing a five-voter majority group led by node 1 in term 3.
fn five_voters() -> Observations {
    let mut obs = Observations::new(n(1), ObservationLimits::default());
    obs.observe_progress(RaftProgress {
        leader: Some(n(1)),
        term: 3,
        commit_index: 10,
        match_index: (1..=5).map(|id| (n(id), 10)).collect(),
        config: QuorumConfig::majority((1..=5).map(NodeId)),
    });
    for id in 2..=5 {
        obs.observe_liveness(n(id), Liveness::Alive, 0);
    }
    obs
}

#[test]
fn all_up_is_healthy_and_tolerates_two_failures() {
    let mut obs = five_voters();
    for latency in 1..=100 {
        obs.observe_commit_latency(latency);
    }
    obs.observe_election(3, n(1), 1_000);
    let health = obs.health(2_000);
    assert_eq!(health.status, HealthStatus::Healthy);
    assert_eq!((health.total_agents, health.alive_agents, health.availability), (5, 5, 1.0));
    assert_eq!((health.quorum_size, health.quorum_available, health.failures_tolerated), (3, true, 2));
    assert_eq!((health.has_leader, health.elections_per_hour), (true, 1));
    assert_eq!((health.commit_latency_p50, health.commit_latency_p99), (Some(50), Some(99)));
    // An hour later the election no longer counts.
    assert_eq!(obs.health(3_601_000).elections_per_hour, 0);
}

#[test]
fn two_of_five_dead_is_degraded_with_no_failure_to_spare() {
    let mut obs = five_voters();
    obs.observe_liveness(n(4), Liveness::Dead, 100);
    obs.observe_liveness(n(5), Liveness::Dead, 100);
    let health = obs.health(200);
    assert_eq!(health.status, HealthStatus::Degraded);
    assert_eq!((health.quorum_available, health.failures_tolerated), (true, 0));
    assert_eq!(health.failed_agents, vec![n(4), n(5)]);
    assert_eq!((health.alive_agents, health.availability), (3, 0.6));
    assert_eq!((health.partitioned, health.partitions_detected), (false, 0));
}

#[test]
fn three_of_five_dead_is_quorum_lost_and_one_partition() {
    let mut obs = five_voters();
    for id in 3..=5 {
        obs.observe_liveness(n(id), Liveness::Dead, 100);
    }
    let health = obs.health(200);
    assert_eq!(health.status, HealthStatus::QuorumLost);
    assert_eq!((health.quorum_available, health.failures_tolerated), (false, 0));
    assert_eq!((health.partitioned, health.partitions_detected), (true, 1));
    // Healing and partitioning again counts a second partition, not repeats.
    obs.observe_liveness(n(5), Liveness::Dead, 300);
    for id in 3..=5 {
        obs.observe_liveness(n(id), Liveness::Alive, 400);
    }
    assert_eq!(obs.health(500).status, HealthStatus::Healthy);
    obs.observe_liveness(n(4), Liveness::Dead, 600);
    obs.observe_liveness(n(5), Liveness::Dead, 600);
    obs.observe_liveness(n(3), Liveness::Dead, 600);
    assert_eq!(obs.health(700).partitions_detected, 2);
}

#[test]
fn a_suspect_voter_still_counts_but_degrades() {
    let mut obs = five_voters();
    obs.observe_liveness(n(2), Liveness::Suspect, 100);
    let health = obs.health(200);
    assert_eq!(health.status, HealthStatus::Degraded);
    assert_eq!((health.reachable_voters, health.alive_agents, health.failures_tolerated), (5, 4, 2));
}

#[test]
fn two_leaders_in_one_term_is_a_split_brain() {
    let mut obs = five_voters();
    obs.observe_leader(3, n(1));
    obs.observe_leader(3, n(2));
    obs.observe_leader(4, n(2));
    assert_eq!(obs.health(0).split_brain_events, 1);
}

#[test]
fn stale_rtts_are_unknown_and_windows_stay_bounded() {
    let limits =
        ObservationLimits { rtt_samples_max: 4, rtt_fresh_ms: 1_000, ..ObservationLimits::default() };
    let mut obs = Observations::new(n(1), limits);
    for (at, rtt) in [(0, 100), (10, 1), (20, 2), (30, 3), (40, 4)] {
        obs.observe_rtt(n(2), n(1), rtt, at);
    }
    // The 100 ms sample fell out of the window of 4.
    assert_eq!(obs.rtt_ms(n(1), n(2), 50), Some(2));
    assert_eq!(obs.rtt_ms(n(1), n(2), 1_041), None);
}

#[test]
fn reports_serialize_with_the_reference_field_names() {
    let json = serde_json::to_value(five_voters().health(0)).expect("serializable");
    for field in [
        "total_agents",
        "alive_agents",
        "availability",
        "quorum_size",
        "quorum_available",
        "has_leader",
        "elections_per_hour",
        "commit_latency_p50",
        "commit_latency_p99",
        "failed_agents",
        "partitions_detected",
        "split_brain_events",
    ] {
        assert!(json.get(field).is_some(), "missing {field}");
    }
    assert_eq!(json["status"], "healthy");
}

#[test]
fn a_dead_node_outside_the_configuration_no_longer_counts() {
    let mut obs = five_voters();
    obs.observe_liveness(n(6), Liveness::Alive, 0);
    assert_eq!(obs.health(0).total_agents, 6);
    obs.observe_liveness(n(6), Liveness::Dead, 10);
    let health = obs.health(20);
    assert_eq!(
        (health.total_agents, health.failed_agents.len(), health.status),
        (5, 0, HealthStatus::Healthy)
    );
}

#[test]
fn every_observation_stays_within_its_bound() {
    let limits = ObservationLimits {
        nodes_max: 2,
        rtt_pairs_max: 1,
        latency_samples_max: 3,
        elections_max: 2,
        terms_max: 1,
        ..ObservationLimits::default()
    };
    let mut obs = Observations::new(n(1), limits);
    for id in 2..=4 {
        obs.observe_liveness(n(id), Liveness::Alive, 0);
    }
    // Only the first two strangers are tracked.
    assert_eq!(obs.known_nodes(), [1, 2, 3].map(n).into());
    obs.observe_rtt(n(1), n(2), 5, 0);
    obs.observe_rtt(n(1), n(3), 5, 0);
    assert_eq!((obs.rtt_ms(n(1), n(2), 0), obs.rtt_ms(n(1), n(3), 0)), (Some(5), None));
    for latency in [100, 1, 2, 3] {
        obs.observe_commit_latency(latency);
    }
    assert_eq!(obs.commit_latency_ms(100), Some(3));
    for (term, at) in [(1, 0), (2, 10), (3, 20)] {
        obs.observe_election(term, n(2), at);
    }
    assert_eq!(obs.elections_in_last_hour(30), 2);
    // Term 1 was forgotten, so a second leader for it goes unnoticed; term 3
    // is remembered.
    obs.observe_leader(1, n(3));
    obs.observe_leader(3, n(3));
    assert_eq!(obs.split_brain_events(), 1);
}
