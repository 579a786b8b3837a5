//! What the quorum manager has seen: liveness from gossip, round-trip times,
//! and Raft's configuration and progress, each kept within a named bound.

use super::window::{percentile, Window};
use crate::quorum::QuorumConfig;
use concord_transport::NodeId;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// A node's liveness as gossip (SWIM) reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Liveness {
    /// Answering probes.
    Alive,
    /// Missed probes; not yet declared dead. Still counts toward quorum,
    /// because SWIM suspicion is often refuted, but the cluster is degraded.
    Suspect,
    /// Declared dead by gossip.
    Dead,
    /// Left gracefully; no longer counted anywhere.
    Left,
}

impl Liveness {
    /// Whether the node is counted as reachable (alive or suspect).
    pub fn is_up(self) -> bool {
        matches!(self, Liveness::Alive | Liveness::Suspect)
    }
}

/// A node's liveness and when it entered that state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeLiveness {
    /// The state.
    pub liveness: Liveness,
    /// When it entered the state, in milliseconds of the caller's clock.
    pub since_ms: u64,
}

/// A snapshot of the local Raft node's view, as its actor publishes it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaftProgress {
    /// The current leader, if known.
    pub leader: Option<NodeId>,
    /// The current term.
    pub term: u64,
    /// The commit index.
    pub commit_index: u64,
    /// Highest log index known replicated on each node (known on the leader;
    /// may be empty elsewhere).
    pub match_index: BTreeMap<NodeId, u64>,
    /// The configuration in force (the last one in the log).
    pub config: QuorumConfig,
}

/// Bounds on what is remembered, with defaults.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservationLimits {
    /// RTT samples kept per pair of nodes.
    pub rtt_samples_max: usize,
    /// Pairs of nodes with RTT samples; samples of further pairs are dropped.
    pub rtt_pairs_max: usize,
    /// An RTT whose newest sample is older than this is stale: the pair is
    /// not counted as reachable.
    pub rtt_fresh_ms: u64,
    /// Commit latency samples kept.
    pub latency_samples_max: usize,
    /// Election timestamps kept (for `elections_per_hour`).
    pub elections_max: usize,
    /// Nodes whose liveness is tracked; further nodes are ignored.
    pub nodes_max: usize,
    /// Terms whose leader is remembered to detect two leaders in one term.
    pub terms_max: usize,
}

impl Default for ObservationLimits {
    fn default() -> ObservationLimits {
        ObservationLimits {
            rtt_samples_max: 32,
            rtt_pairs_max: 4_096,
            rtt_fresh_ms: 10_000,
            latency_samples_max: 1_024,
            elections_max: 256,
            nodes_max: 1_024,
            terms_max: 64,
        }
    }
}

/// One RTT sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct RttSample {
    at_ms: u64,
    rtt_ms: u64,
}

/// Everything observed, bounded by [`ObservationLimits`].
#[derive(Clone, Debug)]
pub struct Observations {
    limits: ObservationLimits,
    local: NodeId,
    nodes: BTreeMap<NodeId, NodeLiveness>,
    rtt: BTreeMap<(NodeId, NodeId), Window<RttSample>>,
    progress: RaftProgress,
    commit_latency_ms: Window<u64>,
    elections_at_ms: Window<u64>,
    leaders_by_term: BTreeMap<u64, NodeId>,
    partitioned: bool,
    partitions_detected: u64,
    split_brain_events: u64,
}

impl Observations {
    /// Observations made from node `local`, which always counts itself up.
    pub fn new(local: NodeId, limits: ObservationLimits) -> Observations {
        Observations {
            commit_latency_ms: Window::new(limits.latency_samples_max),
            elections_at_ms: Window::new(limits.elections_max),
            limits,
            local,
            nodes: BTreeMap::new(),
            rtt: BTreeMap::new(),
            progress: RaftProgress::default(),
            leaders_by_term: BTreeMap::new(),
            partitioned: false,
            partitions_detected: 0,
            split_brain_events: 0,
        }
    }

    /// The node observing.
    pub fn local(&self) -> NodeId {
        self.local
    }

    /// Records gossip's verdict on `node` at `at_ms`. A repeated verdict
    /// keeps the original `since_ms`, so stabilisation windows are not reset
    /// by every gossip round. Returns whether the state changed.
    pub fn observe_liveness(&mut self, node: NodeId, liveness: Liveness, at_ms: u64) -> bool {
        if node == self.local {
            return false;
        }
        let changed = match self.nodes.get(&node) {
            Some(known) if known.liveness == liveness => false,
            None if self.nodes.len() >= self.limits.nodes_max => return false,
            _ => true,
        };
        if changed {
            self.nodes.insert(node, NodeLiveness { liveness, since_ms: at_ms });
            self.detect_partition();
        }
        changed
    }

    /// Records one round-trip time between `a` and `b`.
    pub fn observe_rtt(&mut self, a: NodeId, b: NodeId, rtt_ms: u64, at_ms: u64) {
        let key = (a.min(b), a.max(b));
        if !self.rtt.contains_key(&key) && self.rtt.len() >= self.limits.rtt_pairs_max {
            return;
        }
        let samples_max = self.limits.rtt_samples_max;
        self.rtt.entry(key).or_insert_with(|| Window::new(samples_max)).push(RttSample { at_ms, rtt_ms });
    }

    /// Records the local Raft node's progress and configuration.
    pub fn observe_progress(&mut self, progress: RaftProgress) {
        if let Some(leader) = progress.leader {
            self.observe_leader(progress.term, leader);
        }
        self.progress = progress;
        self.detect_partition();
    }

    /// Replaces the configuration in force, when the core learns of a
    /// commit before Raft's next progress report does.
    pub(crate) fn set_config(&mut self, config: QuorumConfig) {
        self.progress.config = config;
        self.detect_partition();
    }

    /// Records that `leader` claims leadership of `term` (from Raft, or from
    /// another node's gossip metadata). Two leaders in one term is a safety
    /// violation and counted as a split-brain event.
    pub fn observe_leader(&mut self, term: u64, leader: NodeId) {
        match self.leaders_by_term.get(&term) {
            Some(&known) if known != leader => self.split_brain_events += 1,
            Some(_) => {}
            None => {
                self.leaders_by_term.insert(term, leader);
                while self.leaders_by_term.len() > self.limits.terms_max {
                    self.leaders_by_term.pop_first();
                }
            }
        }
    }

    /// Records one commit latency (proposal to commit, as the leader saw it).
    pub fn observe_commit_latency(&mut self, latency_ms: u64) {
        self.commit_latency_ms.push(latency_ms);
    }

    /// Records a completed election at `at_ms`.
    pub fn observe_election(&mut self, term: u64, leader: NodeId, at_ms: u64) {
        self.elections_at_ms.push(at_ms);
        self.observe_leader(term, leader);
    }

    /// Liveness of `node`: what gossip said, or alive for a member gossip
    /// has not reported yet — Raft's word that it is a member stands until
    /// gossip, which reports every member within a few rounds, says more.
    pub fn liveness(&self, node: NodeId) -> NodeLiveness {
        if node == self.local {
            return NodeLiveness { liveness: Liveness::Alive, since_ms: 0 };
        }
        self.nodes.get(&node).copied().unwrap_or(NodeLiveness { liveness: Liveness::Alive, since_ms: 0 })
    }

    /// Whether `node` counts as reachable.
    pub fn is_up(&self, node: NodeId) -> bool {
        self.liveness(node).liveness.is_up()
    }

    /// Every node that counts: the local node, the configuration's members
    /// unless they left, and other nodes gossip reports up. A dead node that
    /// is not a member is forgotten, as SWIM forgets it, so that replaced
    /// nodes do not weigh on reachability forever.
    pub fn known_nodes(&self) -> BTreeSet<NodeId> {
        let voting = &self.progress.config.voting;
        let mut nodes: BTreeSet<NodeId> = voting.voters().keys().chain(voting.learners()).copied().collect();
        nodes.retain(|&id| self.liveness(id).liveness != Liveness::Left);
        nodes.extend(self.nodes.iter().filter(|(_, state)| state.liveness.is_up()).map(|(&id, _)| id));
        nodes.insert(self.local);
        nodes
    }

    /// Nodes gossip reports alive (suspects excluded).
    pub fn alive_nodes(&self) -> BTreeSet<NodeId> {
        self.known_nodes().into_iter().filter(|&id| self.liveness(id).liveness == Liveness::Alive).collect()
    }

    /// Voters currently reachable.
    pub fn up_voters(&self) -> BTreeSet<NodeId> {
        self.progress.config.voting.voters().keys().copied().filter(|&id| self.is_up(id)).collect()
    }

    /// Whether `id`'s log is within `lag_max` entries of the commit index,
    /// by the leader's match index (unknown counts as behind).
    pub fn caught_up(&self, id: NodeId, lag_max: u64) -> bool {
        let progress = &self.progress;
        progress.match_index.get(&id).is_some_and(|&m| m.saturating_add(lag_max) >= progress.commit_index)
    }

    /// Learners up and caught up — candidates to vote — best first: longest
    /// log, then lowest id.
    pub fn ready_learners(&self, lag_max: u64) -> Vec<NodeId> {
        let progress = &self.progress;
        let mut ready: Vec<NodeId> = progress
            .config
            .voting
            .learners()
            .iter()
            .copied()
            .filter(|&id| self.is_up(id) && self.caught_up(id, lag_max))
            .collect();
        ready.sort_by_key(|id| (std::cmp::Reverse(progress.match_index.get(id).copied().unwrap_or(0)), *id));
        ready
    }

    /// The latest Raft progress.
    pub fn progress(&self) -> &RaftProgress {
        &self.progress
    }

    /// Median RTT between `a` and `b` if its newest sample is fresh at `now_ms`.
    pub fn rtt_ms(&self, a: NodeId, b: NodeId, now_ms: u64) -> Option<u64> {
        if a == b {
            return Some(0);
        }
        let window = self.rtt.get(&(a.min(b), a.max(b)))?;
        let newest = window.last()?;
        if now_ms.saturating_sub(newest.at_ms) > self.limits.rtt_fresh_ms {
            return None;
        }
        percentile(window.iter().map(|s| s.rtt_ms), 50)
    }

    /// Commit latency percentile `p` over the kept samples.
    pub fn commit_latency_ms(&self, p: u32) -> Option<u64> {
        percentile(self.commit_latency_ms.iter().copied(), p)
    }

    /// Elections in the hour before `now_ms`.
    pub fn elections_in_last_hour(&self, now_ms: u64) -> usize {
        const HOUR_MS: u64 = 3_600_000;
        self.elections_at_ms.iter().filter(|&&at| at.saturating_add(HOUR_MS) > now_ms).count()
    }

    /// Whether the local node reaches fewer than half of the known nodes.
    pub fn partitioned(&self) -> bool {
        self.partitioned
    }

    /// Times the local node found itself partitioned.
    pub fn partitions_detected(&self) -> u64 {
        self.partitions_detected
    }

    /// Times two leaders were seen in one term.
    pub fn split_brain_events(&self) -> u64 {
        self.split_brain_events
    }

    /// Counts entering a partition (reachability below half) once per entry,
    /// not once per observation while it lasts.
    fn detect_partition(&mut self) {
        let known = self.known_nodes();
        let up = known.iter().filter(|&&id| self.is_up(id)).count();
        let partitioned = up * 2 < known.len();
        if partitioned && !self.partitioned {
            self.partitions_detected += 1;
        }
        self.partitioned = partitioned;
    }
}
