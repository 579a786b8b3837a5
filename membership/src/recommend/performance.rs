//! The performance strategy: the voters closest to the leader.

use super::{list, swap_voter, Context, Recommendation, Strategy};
use crate::quorum::{QuorumConfig, QuorumKind};
use concord_transport::NodeId;

/// Estimated commit latency of `config` led by `leader`: an entry commits
/// when the closest voters that together reach the commit quorum have it,
/// so the latency is the RTT to the last of them (the leader's own vote
/// costs nothing). `None` when voters with known RTTs cannot make a quorum.
pub fn estimate_commit_latency_ms(
    config: &QuorumConfig,
    leader: NodeId,
    rtt_ms: impl Fn(NodeId, NodeId) -> Option<u64>,
) -> Option<u64> {
    let mut by_rtt: Vec<(u64, NodeId)> =
        config.voting.voters().keys().filter_map(|&id| rtt_ms(leader, id).map(|rtt| (rtt, id))).collect();
    by_rtt.sort();
    let threshold = config.threshold(QuorumKind::Commit);
    let mut votes = 0;
    for (rtt, id) in by_rtt {
        votes += config.votes(id);
        if votes >= threshold {
            return Some(rtt);
        }
    }
    None
}

/// Swaps the slowest voter for the fastest ready learner while that lowers
/// the estimated commit latency by at least `latency_gain_min_percent`.
pub fn recommend(ctx: &Context<'_>) -> Recommendation {
    let leader = ctx.leader();
    let current = ctx.current().clone();
    let estimate =
        |config: &QuorumConfig| estimate_commit_latency_ms(config, leader, |a, b| ctx.rtt_ms(a, b));
    let Some(current_ms) = estimate(&current) else {
        let reasoning =
            "RTTs from the leader to a commit quorum are unknown; no latency estimate".to_string();
        return ctx.recommend(Strategy::Performance, current, reasoning);
    };
    let rtt = |id: NodeId| ctx.rtt_ms(leader, id).unwrap_or(u64::MAX);
    let mut learners: Vec<NodeId> = ctx.ready_learners();
    learners.sort_by_key(|&id| (rtt(id), id));
    let mut voters: Vec<NodeId> =
        current.voting.voters().keys().copied().filter(|&id| id != leader).collect();
    voters.sort_by_key(|&id| (std::cmp::Reverse(rtt(id)), id));

    let mut target = current.clone();
    let mut swaps = Vec::new();
    for (out, inn) in voters.into_iter().zip(learners) {
        if rtt(inn) >= rtt(out) {
            break;
        }
        target = swap_voter(&target, out, inn);
        swaps.push((out, inn));
    }
    let target_ms = estimate(&target).unwrap_or(u64::MAX);
    let gain_enough = target_ms.saturating_mul(100)
        <= current_ms.saturating_mul(100 - ctx.latency_gain_min_percent.min(100));
    if swaps.is_empty() || !gain_enough {
        let reasoning = format!(
            "commit latency is about {current_ms} ms from leader {leader}; no ready learner is closer than a voter by \
             {}% or more",
            ctx.latency_gain_min_percent
        );
        return ctx.recommend(Strategy::Performance, current, reasoning);
    }
    let (outs, ins): (Vec<NodeId>, Vec<NodeId>) = swaps.into_iter().unzip();
    let reasoning = format!(
        "commit latency is the RTT from leader {leader} to the voter completing the quorum: {current_ms} ms today; \
         replacing {} by closer learners {} brings it to {target_ms} ms with as many voters",
        list(outs),
        list(ins)
    );
    ctx.recommend(Strategy::Performance, target, reasoning)
}
