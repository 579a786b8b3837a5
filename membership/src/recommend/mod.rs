//! Recommendations: three strategies each propose a configuration with its
//! reasoning and expected effect, and [`combine`] picks one.
//!
//! - [`network`]: replace voters that are down or reach fewer than half of
//!   the members (partition risk) by well-connected, caught-up learners; in a
//!   minority partition, recommend staying read-only.
//! - [`performance`]: the voters closest to the leader, because commit
//!   latency is about the RTT to the quorum-th closest voter.
//! - [`fault_tolerance`]: spread voters over failure domains (zone, rack)
//!   so that a quorum survives the loss of any one domain.
//!
//! Strategies keep the voter count and weights: they choose *which* nodes
//! vote, never fewer of them, so no recommendation lowers the node-level
//! failures tolerated.

pub mod fault_tolerance;
pub mod network;
pub mod performance;

#[cfg(test)]
mod tests;

use crate::health::Observations;
use crate::quorum::QuorumConfig;
use concord_transport::NodeId;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

pub use performance::estimate_commit_latency_ms;

/// Which strategy produced a recommendation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Reachability, RTT and partition risk.
    Network,
    /// Lowest commit latency.
    Performance,
    /// Survive the loss of any one failure domain.
    FaultTolerance,
}

/// What a configuration is expected to give.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Effect {
    /// Estimated commit latency from the leader (RTT to the voter that
    /// completes the commit quorum, closest first); `None` when RTTs are
    /// unknown.
    pub commit_latency_ms: Option<u64>,
    /// Further voter failures tolerated with today's liveness.
    pub failures_tolerated: usize,
    /// Whether a quorum survives the loss of any one failure domain.
    pub survives_domain_loss: bool,
}

/// One strategy's proposal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recommendation {
    /// The strategy.
    pub strategy: Strategy,
    /// Whether `target` differs from the current configuration.
    pub change: bool,
    /// The proposed configuration (the current one when `change` is false).
    pub target: QuorumConfig,
    /// Why, in words, with the numbers that decided it.
    pub reasoning: String,
    /// The current configuration's effect.
    pub current: Effect,
    /// The proposed configuration's effect.
    pub expected: Effect,
}

/// The combined answer: the chosen proposal, why it won, and the others.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CombinedRecommendation {
    /// The chosen proposal.
    pub chosen: Recommendation,
    /// Why it was chosen over the others.
    pub why: String,
    /// Every strategy's proposal, in the order network, performance, fault
    /// tolerance.
    pub proposals: Vec<Recommendation>,
}

/// What strategies read.
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
    /// Liveness, RTTs and Raft progress.
    pub observations: &'a Observations,
    /// Each node's failure domain (zone or rack) from its metadata; nodes
    /// without one count as a domain of their own.
    pub domains: &'a BTreeMap<NodeId, String>,
    /// A learner is caught up when its match index is within this many
    /// entries of the commit index.
    pub learner_lag_max: u64,
    /// Performance changes smaller than this share (percent) of the current
    /// commit latency are not worth a configuration change.
    pub latency_gain_min_percent: u64,
    /// Now.
    pub now_ms: u64,
}

impl Context<'_> {
    /// The configuration in force.
    pub fn current(&self) -> &QuorumConfig {
        &self.observations.progress().config
    }

    /// The leader, or the local node when none is known.
    pub fn leader(&self) -> NodeId {
        self.observations.progress().leader.unwrap_or(self.observations.local())
    }

    /// RTT between two nodes, if fresh.
    pub fn rtt_ms(&self, a: NodeId, b: NodeId) -> Option<u64> {
        self.observations.rtt_ms(a, b, self.now_ms)
    }

    /// Up, caught-up learners, best first.
    pub fn ready_learners(&self) -> Vec<NodeId> {
        self.observations.ready_learners(self.learner_lag_max)
    }

    /// `id`'s failure domain.
    pub fn domain(&self, id: NodeId) -> String {
        fault_tolerance::domain_of(self.domains, id)
    }

    /// What `config` gives under today's observations.
    pub fn effect(&self, config: &QuorumConfig) -> Effect {
        let up: BTreeSet<NodeId> =
            config.voting.voters().keys().copied().filter(|&id| self.observations.is_up(id)).collect();
        Effect {
            commit_latency_ms: estimate_commit_latency_ms(config, self.leader(), |a, b| self.rtt_ms(a, b)),
            failures_tolerated: config.fault_tolerance(&up).failures_tolerated,
            survives_domain_loss: fault_tolerance::weakest_domain(config, self.domains).is_none(),
        }
    }

    /// A recommendation of `target` (no change when equal to the current).
    pub fn recommend(&self, strategy: Strategy, target: QuorumConfig, reasoning: String) -> Recommendation {
        Recommendation {
            strategy,
            change: target != *self.current(),
            current: self.effect(self.current()),
            expected: self.effect(&target),
            target,
            reasoning,
        }
    }
}

/// `current` with voter `out` swapped for learner `inn`, which takes over its
/// weight; `out` leaves as a learner so it can be promoted back later.
pub(crate) fn swap_voter(current: &QuorumConfig, out: NodeId, inn: NodeId) -> QuorumConfig {
    let mut next = current.clone();
    let weight = next.voting.weight(out).expect("`out` is a voter of `current`");
    next.voting.demote(out).expect("`out` is a voter");
    next.voting.promote(inn, weight).expect("`inn` is a learner");
    next
}

/// Node ids as `n1, n2`.
pub(crate) fn list(ids: impl IntoIterator<Item = NodeId>) -> String {
    ids.into_iter().map(|id| id.to_string()).collect::<Vec<_>>().join(", ")
}

/// Runs the three strategies and picks one: a lost quorum first (nothing
/// can change, say so), then domain safety (a domain loss would lose
/// quorum), then connectivity (voters down or at partition risk), then
/// latency, else no change.
pub fn combine(ctx: &Context<'_>) -> CombinedRecommendation {
    let net = network::recommend(ctx);
    let perf = performance::recommend(ctx);
    let fault = fault_tolerance::recommend(ctx);
    let up = ctx.observations.up_voters();
    let quorum_lost = !ctx.current().fault_tolerance(&up).quorum_available;
    let (chosen, why) = if quorum_lost {
        (net.clone(), "quorum is lost, so no change can commit: the network view decides".to_string())
    } else if fault.change && fault.expected.survives_domain_loss {
        (fault.clone(), "losing one failure domain would lose quorum today; safety before speed".to_string())
    } else if net.change {
        (net.clone(), "voters are down or at partition risk; connectivity before speed".to_string())
    } else if perf.change {
        (perf.clone(), "domains and connectivity are fine; the change lowers commit latency".to_string())
    } else {
        (fault.clone(), "no strategy finds a change worth making".to_string())
    };
    CombinedRecommendation { chosen, why, proposals: vec![net, perf, fault] }
}
