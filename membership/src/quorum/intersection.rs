//! Exact checks that two quorums always share a node.
//!
//! Brute force over subsets is exponential; instead, for quorums `A` of one
//! configuration and `B` of another, the worst case puts every node voting
//! only in the first into `A` and every node voting only in the second into
//! `B`. Only the shared voters need a choice, and a 0/1 knapsack over their
//! votes (linear in total weight, bounded by `VOTERS_MAX × WEIGHT_MAX`)
//! finds whether some split makes both quorums at once.

use super::config::{QuorumConfig, VOTERS_MAX};
use super::error::{DisjointQuorums, QuorumKind};
use concord_transport::NodeId;
use std::collections::BTreeSet;

/// A quorum of `first_kind` in `first` and a quorum of `second_kind` in
/// `second` with no node in common, if there are any.
pub(crate) fn disjoint_quorums(
    first: &QuorumConfig,
    first_kind: QuorumKind,
    second: &QuorumConfig,
    second_kind: QuorumKind,
) -> Option<DisjointQuorums> {
    let first_threshold = first.threshold(first_kind);
    let second_threshold = second.threshold(second_kind);
    let mut a: BTreeSet<NodeId> = BTreeSet::new();
    let mut b: BTreeSet<NodeId> = BTreeSet::new();
    let mut shared: Vec<NodeId> = Vec::new();
    for &id in first.voting.voters().keys() {
        if second.voting.is_voter(id) {
            shared.push(id);
        } else {
            a.insert(id);
        }
    }
    b.extend(second.voting.voters().keys().filter(|&&id| !first.voting.is_voter(id)));
    assert!(shared.len() <= VOTERS_MAX, "callers validate both configurations first");

    let a_needed = first_threshold.saturating_sub(first.votes_of(&a));
    let cap = usize::try_from(a_needed).expect("bounded by VOTERS_MAX x WEIGHT_MAX");
    // best[s]: among splits of the shared voters giving `A` exactly s more
    // votes (s capped at what `A` still needs), the one costing `B` the
    // fewest votes, as (votes lost to B, mask of shared voters moved to A).
    let mut best: Vec<Option<(u64, u64)>> = vec![None; cap + 1];
    best[0] = Some((0, 0));
    for (i, &id) in shared.iter().enumerate() {
        let gain = usize::try_from(first.votes(id)).expect("weights are u32");
        let cost = second.votes(id);
        let mut next = best.clone();
        for (s, entry) in best.iter().enumerate() {
            if let Some((lost, mask)) = *entry {
                let t = (s + gain).min(cap);
                let candidate = (lost + cost, mask | (1 << i));
                if next[t].is_none_or(|(l, _)| candidate.0 < l) {
                    next[t] = Some(candidate);
                }
            }
        }
        best = next;
    }
    let (lost, mask) = best[cap]?;
    let b_votes = second.votes_of(&b) + second.votes_of(&shared) - lost;
    if b_votes < second_threshold {
        return None;
    }
    for (i, &id) in shared.iter().enumerate() {
        if mask & (1 << i) != 0 {
            a.insert(id);
        } else {
            b.insert(id);
        }
    }
    Some(DisjointQuorums { first: a, second: b })
}
