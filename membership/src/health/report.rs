//! The cluster-health answer, with the reference field names.

use super::observations::{Liveness, Observations};
use crate::quorum::QuorumKind;
use concord_transport::NodeId;
use serde::{Deserialize, Serialize};

/// The overall verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    /// Quorum available, every voter alive and at least one more failure
    /// tolerated.
    Healthy,
    /// Quorum available, but some voter is suspect or dead, or no further
    /// failure is tolerated.
    Degraded,
    /// The reachable voters cannot elect or commit: the group is read-only.
    QuorumLost,
}

/// Quorum health as the local node sees it. Field names follow the
/// reference cluster-health answer; durations are milliseconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClusterHealth {
    /// The verdict.
    pub status: HealthStatus,
    /// Nodes known and not gone (voters, learners, others gossip reported).
    pub total_agents: usize,
    /// Nodes gossip reports alive.
    pub alive_agents: usize,
    /// `alive_agents / total_agents`, 0 when nothing is known.
    pub availability: f64,
    /// Voters in the configuration.
    pub voters: usize,
    /// Voters alive or suspect.
    pub reachable_voters: usize,
    /// The fewest voters that can commit (heaviest first).
    pub quorum_size: usize,
    /// Whether the reachable voters can elect and commit.
    pub quorum_available: bool,
    /// How many more voters may fail, whichever they are, with quorum still
    /// available.
    pub failures_tolerated: usize,
    /// Whether a reachable leader is known.
    pub has_leader: bool,
    /// The leader, if known.
    pub leader: Option<NodeId>,
    /// The current term.
    pub term: u64,
    /// Elections completed in the last hour.
    pub elections_per_hour: usize,
    /// Median commit latency over the kept samples.
    pub commit_latency_p50: Option<u64>,
    /// 99th percentile commit latency over the kept samples.
    pub commit_latency_p99: Option<u64>,
    /// Members gossip declared dead.
    pub failed_agents: Vec<NodeId>,
    /// Whether the local node reaches fewer than half the known nodes now.
    pub partitioned: bool,
    /// Times the local node found itself partitioned.
    pub partitions_detected: u64,
    /// Times two leaders were seen in one term.
    pub split_brain_events: u64,
}

impl Observations {
    /// The health report at `now_ms`.
    pub fn health(&self, now_ms: u64) -> ClusterHealth {
        let progress = self.progress();
        let config = &progress.config;
        let known = self.known_nodes();
        let alive_agents = self.alive_nodes().len();
        let up_voters = self.up_voters();
        let tolerance = config.fault_tolerance(&up_voters);
        let all_voters_alive =
            config.voting.voters().keys().all(|&id| self.liveness(id).liveness == Liveness::Alive);
        let status = if !tolerance.quorum_available {
            HealthStatus::QuorumLost
        } else if tolerance.failures_tolerated == 0 || !all_voters_alive {
            HealthStatus::Degraded
        } else {
            HealthStatus::Healthy
        };
        let failed_agents =
            known.iter().copied().filter(|&id| self.liveness(id).liveness == Liveness::Dead).collect();
        ClusterHealth {
            status,
            total_agents: known.len(),
            alive_agents,
            availability: if known.is_empty() { 0.0 } else { alive_agents as f64 / known.len() as f64 },
            voters: config.voting.voters().len(),
            reachable_voters: up_voters.len(),
            quorum_size: config.quorum_size(QuorumKind::Commit).unwrap_or(0),
            quorum_available: tolerance.quorum_available,
            failures_tolerated: tolerance.failures_tolerated,
            has_leader: progress.leader.is_some_and(|id| self.is_up(id)),
            leader: progress.leader,
            term: progress.term,
            elections_per_hour: self.elections_in_last_hour(now_ms),
            commit_latency_p50: self.commit_latency_ms(50),
            commit_latency_p99: self.commit_latency_ms(99),
            failed_agents,
            partitioned: self.partitioned(),
            partitions_detected: self.partitions_detected(),
            split_brain_events: self.split_brain_events(),
        }
    }
}
