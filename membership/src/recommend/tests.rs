//! One test per strategy with the expected choice and reasoning, and the
//! combiner's priorities.

use super::*;
use crate::health::{Liveness, ObservationLimits, RaftProgress};
use crate::quorum::{QuorumPolicy, VotingConfig};

const NOW_MS: u64 = 1_000;

fn n(id: u64) -> NodeId {
    NodeId(id)
}

/// Node 1 leading `voters` with caught-up `learners`, everyone alive, and
/// the given RTTs sampled just now.
fn observed(voters: &[u64], learners: &[u64], rtts: &[(u64, u64, u64)]) -> Observations {
    let mut obs = Observations::new(n(1), ObservationLimits::default());
    let voting = VotingConfig::with_voters(voters.iter().map(|&id| n(id)))
        .and_learners(learners.iter().map(|&id| n(id)));
    obs.observe_progress(RaftProgress {
        leader: Some(n(1)),
        term: 1,
        commit_index: 100,
        match_index: voters.iter().chain(learners).map(|&id| (n(id), 100)).collect(),
        config: QuorumConfig::new(voting, QuorumPolicy::Majority),
    });
    for &id in voters.iter().chain(learners) {
        obs.observe_liveness(n(id), Liveness::Alive, 0);
    }
    for &(a, b, rtt) in rtts {
        obs.observe_rtt(n(a), n(b), rtt, NOW_MS);
    }
    obs
}

/// Every pair of `nodes` at `rtt` ms.
fn full_mesh(nodes: &[u64], rtt: u64) -> Vec<(u64, u64, u64)> {
    let mut pairs = Vec::new();
    for (i, &a) in nodes.iter().enumerate() {
        for &b in &nodes[i + 1..] {
            pairs.push((a, b, rtt));
        }
    }
    pairs
}

fn context<'a>(obs: &'a Observations, domains: &'a BTreeMap<NodeId, String>) -> Context<'a> {
    Context { observations: obs, domains, learner_lag_max: 10, latency_gain_min_percent: 20, now_ms: NOW_MS }
}

fn voters(config: &QuorumConfig) -> Vec<u64> {
    config.voting.voters().keys().map(|id| id.0).collect()
}

#[test]
fn network_swaps_a_poorly_connected_voter_for_a_well_connected_learner() {
    // n5 only reaches the leader: 1 of the 5 other members.
    let mut rtts = full_mesh(&[1, 2, 3, 4, 6], 10);
    rtts.push((1, 5, 10));
    let obs = observed(&[1, 2, 3, 4, 5], &[6], &rtts);
    let domains = BTreeMap::new();
    let rec = network::recommend(&context(&obs, &domains));
    assert_eq!(rec.strategy, Strategy::Network);
    assert!(rec.change);
    assert_eq!(voters(&rec.target), vec![1, 2, 3, 4, 6]);
    assert!(rec.target.voting.is_learner(n(5)));
    assert_eq!(
        rec.reasoning,
        "n5 reaches 1 of 5 members: partition risk for the quorum; swap in well-connected learners n6"
    );
    assert_eq!((rec.current.failures_tolerated, rec.expected.failures_tolerated), (2, 2));
}

#[test]
fn network_in_a_minority_recommends_read_only() {
    let obs = {
        let mut obs = observed(&[1, 2, 3, 4, 5], &[], &full_mesh(&[1, 2, 3, 4, 5], 10));
        for id in 3..=5 {
            obs.observe_liveness(n(id), Liveness::Dead, 500);
        }
        obs
    };
    let domains = BTreeMap::new();
    let combined = combine(&context(&obs, &domains));
    assert_eq!(combined.chosen.strategy, Strategy::Network);
    assert!(!combined.chosen.change);
    assert_eq!(
        combined.chosen.reasoning,
        "quorum lost: the reachable voters (n1, n2) cast 2 of the 3 votes a quorum needs; the group is read-only and \
         no configuration change can commit until the partition heals"
    );
}

#[test]
fn performance_picks_the_voters_closest_to_the_leader() {
    let mut rtts = full_mesh(&[1, 2, 3, 4], 30);
    rtts.retain(|&(a, _, _)| a != 1);
    rtts.extend([(1, 2, 50), (1, 3, 40), (1, 4, 5)]);
    let obs = observed(&[1, 2, 3], &[4], &rtts);
    let domains = BTreeMap::new();
    let rec = performance::recommend(&context(&obs, &domains));
    assert_eq!(voters(&rec.target), vec![1, 3, 4]);
    assert_eq!(
        rec.reasoning,
        "commit latency is the RTT from leader n1 to the voter completing the quorum: 40 ms today; replacing n2 by \
         closer learners n4 brings it to 5 ms with as many voters"
    );
    assert_eq!((rec.current.commit_latency_ms, rec.expected.commit_latency_ms), (Some(40), Some(5)));
    assert_eq!(rec.expected.failures_tolerated, rec.current.failures_tolerated);
    // With everything fine otherwise, the combiner takes it for the latency.
    let combined = combine(&context(&obs, &domains));
    assert_eq!(combined.chosen, rec);
    assert_eq!(combined.why, "domains and connectivity are fine; the change lowers commit latency");
}

#[test]
fn fault_tolerance_spreads_voters_over_zones() {
    let obs = observed(&[1, 2, 3], &[4], &full_mesh(&[1, 2, 3, 4], 10));
    let domains: BTreeMap<NodeId, String> = [(1, "zone-a"), (2, "zone-a"), (3, "zone-b"), (4, "zone-c")]
        .map(|(id, z)| (n(id), z.to_string()))
        .into();
    let ctx = context(&obs, &domains);
    let rec = fault_tolerance::recommend(&ctx);
    assert_eq!(voters(&rec.target), vec![1, 3, 4]);
    assert_eq!(
        rec.reasoning,
        "losing domain zone-a would lose quorum; moving votes from n2 to n4 spreads voters so that a quorum survives \
         losing any one domain"
    );
    assert_eq!((rec.current.survives_domain_loss, rec.expected.survives_domain_loss), (false, true));
    let combined = combine(&ctx);
    assert_eq!(combined.chosen, rec);
    assert_eq!(combined.why, "losing one failure domain would lose quorum today; safety before speed");
}

#[test]
fn a_sound_cluster_gets_no_change() {
    let obs = observed(&[1, 2, 3], &[], &full_mesh(&[1, 2, 3], 10));
    let domains: BTreeMap<NodeId, String> =
        [(1, "zone-a"), (2, "zone-b"), (3, "zone-c")].map(|(id, z)| (n(id), z.to_string())).into();
    let combined = combine(&context(&obs, &domains));
    assert!(!combined.chosen.change);
    assert_eq!(combined.why, "no strategy finds a change worth making");
    assert_eq!(
        combined.chosen.reasoning,
        "voters span 3 domains and a quorum survives losing any one of them"
    );
}
