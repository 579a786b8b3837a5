//! Configurations and quorums: weighted voters, learners, and separate
//! election and commit quorum sizes (flexible quorums).
//!
//! Safety needs three intersections, all enforced by [`Membership::validate`]:
//! - election + commit > total weight: a new leader's electors include a
//!   holder of every committed entry (leader completeness);
//! - 2 × election > total weight: two candidates of one term cannot both win
//!   (election safety), since a voter votes once per term;
//! - commit quorums need not intersect each other: only one leader commits
//!   per term, and its successor learns its entries through the first rule.

use crate::error::ConfigError;
use concord_transport::NodeId;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Bound on voters in one configuration: keeps the exhaustive quorum
/// intersection check of [`Membership::change_is_safe`] cheap (2^n sets).
pub const VOTERS_MAX: usize = 16;

/// A configuration of a Raft group.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Membership {
    /// Voters and their voting weight (≥ 1).
    pub voters: BTreeMap<NodeId, u64>,
    /// Members that receive the log but do not vote.
    pub learners: BTreeSet<NodeId>,
    /// Weight of votes a candidate needs; `None` is a majority of the weight.
    pub election_quorum_weight: Option<u64>,
    /// Weight of acknowledgements that commits an entry; `None` is a majority.
    pub commit_quorum_weight: Option<u64>,
}

impl Membership {
    /// Equal-weight voters with majority quorums: the default configuration.
    pub fn with_voters(voters: impl IntoIterator<Item = NodeId>) -> Membership {
        Membership { voters: voters.into_iter().map(|id| (id, 1)).collect(), ..Membership::default() }
    }

    /// The sum of every voter's weight.
    pub fn total_weight(&self) -> u64 {
        self.voters.values().sum()
    }

    fn majority(&self) -> u64 {
        self.total_weight() / 2 + 1
    }

    /// The weight a candidate must gather.
    pub fn election_quorum(&self) -> u64 {
        self.election_quorum_weight.unwrap_or_else(|| self.majority())
    }

    /// The weight of acknowledgements that commits an entry and that a
    /// leader must hear from to keep its leadership (check-quorum, ReadIndex).
    pub fn commit_quorum(&self) -> u64 {
        self.commit_quorum_weight.unwrap_or_else(|| self.majority())
    }

    /// Whether `node` votes.
    pub fn is_voter(&self, node: NodeId) -> bool {
        self.voters.contains_key(&node)
    }

    /// Whether `node` is a voter or a learner.
    pub fn contains(&self, node: NodeId) -> bool {
        self.is_voter(node) || self.learners.contains(&node)
    }

    /// Every member, voters first.
    pub fn members(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.voters.keys().copied().chain(self.learners.iter().copied())
    }

    /// The weight of the voters among `nodes`.
    pub fn weight_of<'a>(&self, nodes: impl IntoIterator<Item = &'a NodeId>) -> u64 {
        nodes.into_iter().filter_map(|n| self.voters.get(n)).sum()
    }

    /// Checks that the configuration is usable and its quorums intersect as
    /// the module documentation requires.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.voters.is_empty() {
            return Err(ConfigError::NoVoters);
        }
        if self.voters.len() > VOTERS_MAX {
            return Err(ConfigError::TooManyVoters { voters: self.voters.len(), max: VOTERS_MAX });
        }
        if let Some((node, _)) = self.voters.iter().find(|(_, w)| **w == 0) {
            return Err(ConfigError::ZeroWeight(*node));
        }
        if let Some(node) = self.learners.iter().find(|n| self.voters.contains_key(n)) {
            return Err(ConfigError::LearnerIsVoter(*node));
        }
        let (total, election, commit) = (self.total_weight(), self.election_quorum(), self.commit_quorum());
        if election == 0 || commit == 0 || election > total || commit > total {
            return Err(ConfigError::QuorumOutOfRange { election, commit, total });
        }
        if election + commit <= total {
            return Err(ConfigError::QuorumsDoNotIntersect { election, commit, total });
        }
        if 2 * election <= total {
            return Err(ConfigError::ElectionQuorumTooSmall { election, total });
        }
        Ok(())
    }

    /// Whether moving from `self` to `next` in one step is safe: every
    /// election quorum of either configuration intersects every election and
    /// commit quorum of the other. Single-server changes of equal-weight
    /// majorities always pass; larger jumps (two servers at once, big weight
    /// changes) fail and must be split into smaller steps.
    pub fn change_is_safe(&self, next: &Membership) -> bool {
        let (a, b) = (self, next);
        let pairs = [
            (a, a.election_quorum(), b, b.election_quorum()),
            (a, a.election_quorum(), b, b.commit_quorum()),
            (b, b.election_quorum(), a, a.commit_quorum()),
        ];
        pairs.iter().all(|&(x, qx, y, qy)| quorums_intersect(x, qx, y, qy))
    }
}

/// Whether every set with weight ≥ `qa` in `a` meets every set with weight ≥
/// `qb` in `b`. Exhaustive over subsets of the union of voters (bounded by
/// 2 × [`VOTERS_MAX`]).
fn quorums_intersect(a: &Membership, qa: u64, b: &Membership, qb: u64) -> bool {
    let union: Vec<NodeId> =
        a.voters.keys().chain(b.voters.keys()).copied().collect::<BTreeSet<_>>().into_iter().collect();
    assert!(union.len() <= 2 * VOTERS_MAX, "validated configurations are bounded");
    let n = union.len();
    for mask in 0u64..(1u64 << n) {
        let (mut wa, mut wb) = (0, 0);
        for (bit, node) in union.iter().enumerate() {
            if mask & (1 << bit) != 0 {
                wa += a.voters.get(node).copied().unwrap_or(0);
            } else {
                wb += b.voters.get(node).copied().unwrap_or(0);
            }
        }
        if wa >= qa && wb >= qb {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn voters(ids: &[u64]) -> Membership {
        Membership::with_voters(ids.iter().map(|&i| NodeId(i)))
    }

    #[test]
    fn majority_of_equal_weights_is_the_default() {
        let m = voters(&[1, 2, 3, 4, 5]);
        assert_eq!((m.election_quorum(), m.commit_quorum()), (3, 3));
        m.validate().unwrap();
    }

    #[test]
    fn flexible_quorums_must_intersect() {
        let mut m = voters(&[1, 2, 3, 4, 5]);
        m.election_quorum_weight = Some(4);
        m.commit_quorum_weight = Some(2);
        m.validate().unwrap();
        m.commit_quorum_weight = Some(1);
        assert!(matches!(m.validate(), Err(ConfigError::QuorumsDoNotIntersect { .. })));
        m.election_quorum_weight = Some(2);
        m.commit_quorum_weight = Some(4);
        assert!(matches!(m.validate(), Err(ConfigError::ElectionQuorumTooSmall { .. })));
    }

    #[test]
    fn weights_count_toward_quorums() {
        let mut m = voters(&[1, 2, 3]);
        m.voters.insert(NodeId(1), 3);
        assert_eq!(m.total_weight(), 5);
        assert_eq!(m.commit_quorum(), 3);
        assert_eq!(m.weight_of(&[NodeId(1)]), 3);
        m.validate().unwrap();
    }

    #[test]
    fn single_server_changes_are_safe_and_double_ones_are_not() {
        assert!(voters(&[1, 2, 3]).change_is_safe(&voters(&[1, 2, 3, 4])));
        assert!(voters(&[1, 2, 3]).change_is_safe(&voters(&[1, 2])));
        assert!(!voters(&[1, 2, 3]).change_is_safe(&voters(&[1, 2, 3, 4, 5])));
        assert!(!voters(&[1, 2]).change_is_safe(&voters(&[3, 4])));
    }

    #[test]
    fn invalid_configurations_are_refused() {
        assert!(matches!(Membership::default().validate(), Err(ConfigError::NoVoters)));
        let mut m = voters(&[1]);
        m.learners.insert(NodeId(1));
        assert!(matches!(m.validate(), Err(ConfigError::LearnerIsVoter(_))));
        let mut m = voters(&[1, 2]);
        m.voters.insert(NodeId(2), 0);
        assert!(matches!(m.validate(), Err(ConfigError::ZeroWeight(_))));
    }
}
