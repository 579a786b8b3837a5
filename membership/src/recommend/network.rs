//! The network strategy: voters should be up and reach most members.

use super::{list, swap_voter, Context, Recommendation, Strategy};
use crate::quorum::QuorumKind;
use concord_transport::NodeId;
use std::collections::BTreeSet;

/// How many of the other members `id` has a fresh RTT with, and of how many.
pub fn reachability(ctx: &Context<'_>, id: NodeId, members: &BTreeSet<NodeId>) -> (usize, usize) {
    let others: Vec<NodeId> = members.iter().copied().filter(|&other| other != id).collect();
    let reached = others.iter().filter(|&&other| ctx.rtt_ms(id, other).is_some()).count();
    (reached, others.len())
}

/// Whether `id` reaches fewer than half of the other members.
fn at_partition_risk(ctx: &Context<'_>, id: NodeId, members: &BTreeSet<NodeId>) -> bool {
    let (reached, others) = reachability(ctx, id, members);
    reached * 2 < others
}

/// In a minority partition, recommends staying read-only. Otherwise swaps
/// each voter that is down or at partition risk for the best-connected
/// ready learner that is not.
pub fn recommend(ctx: &Context<'_>) -> Recommendation {
    let current = ctx.current().clone();
    let up = ctx.observations.up_voters();
    if !current.fault_tolerance(&up).quorum_available {
        let reasoning = format!(
            "quorum lost: the reachable voters ({}) cast {} of the {} votes a quorum needs; the group is read-only \
             and no configuration change can commit until the partition heals",
            list(up.iter().copied()),
            current.votes_of(&up),
            current.threshold(QuorumKind::Election).max(current.threshold(QuorumKind::Commit)),
        );
        return ctx.recommend(Strategy::Network, current, reasoning);
    }
    let voting = &current.voting;
    let members: BTreeSet<NodeId> = voting
        .voters()
        .keys()
        .chain(voting.learners())
        .copied()
        .filter(|&id| ctx.observations.known_nodes().contains(&id))
        .collect();
    let weak: Vec<NodeId> = voting
        .voters()
        .keys()
        .copied()
        .filter(|&id| !ctx.observations.is_up(id) || at_partition_risk(ctx, id, &members))
        .collect();
    if weak.is_empty() {
        let reasoning = "every voter is up and reaches at least half of the members".to_string();
        return ctx.recommend(Strategy::Network, current, reasoning);
    }
    let mut strong: Vec<(usize, NodeId)> = ctx
        .ready_learners()
        .into_iter()
        .filter(|&id| !at_partition_risk(ctx, id, &members))
        .map(|id| (reachability(ctx, id, &members).0, id))
        .collect();
    strong.sort_by_key(|&(reached, id)| (std::cmp::Reverse(reached), id));
    let mut target = current.clone();
    let mut swaps = Vec::new();
    for (&out, &(_, inn)) in weak.iter().zip(&strong) {
        target = swap_voter(&target, out, inn);
        swaps.push((out, inn));
    }
    let describe = |id: NodeId| {
        let (reached, others) = reachability(ctx, id, &members);
        if ctx.observations.is_up(id) {
            format!("{id} reaches {reached} of {others} members")
        } else {
            format!("{id} is down")
        }
    };
    let weak_text = weak.iter().map(|&id| describe(id)).collect::<Vec<_>>().join("; ");
    let reasoning = if swaps.is_empty() {
        format!("{weak_text}; no up, caught-up, well-connected learner can take over")
    } else {
        let ins = list(swaps.iter().map(|&(_, inn)| inn));
        format!("{weak_text}: partition risk for the quorum; swap in well-connected learners {ins}")
    };
    ctx.recommend(Strategy::Network, target, reasoning)
}
