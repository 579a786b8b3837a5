//! Who votes, with what weight, and under which quorum rule.

use super::error::{EditError, QuorumKind};
use concord_transport::NodeId;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// A voter's weight: how many votes it casts under [`QuorumPolicy::Weighted`]
/// and [`QuorumPolicy::Flexible`]. Ignored under [`QuorumPolicy::Majority`].
pub type Weight = u32;

/// The weight of a voter added without one.
pub const WEIGHT_DEFAULT: Weight = 1;

/// Most voters one configuration may hold: Raft's own bound
/// ([`concord_raft::core::quorum::VOTERS_MAX`]), the source of truth, since
/// a configuration the manager accepted but Raft refused could never be
/// applied. The exact intersection checks track voters in a 64-bit mask.
pub const VOTERS_MAX: usize = concord_raft::core::quorum::VOTERS_MAX;

const _: () = assert!(VOTERS_MAX <= 64, "the intersection checks track voters in a 64-bit mask");

/// Largest weight one voter may carry; keeps the pseudo-polynomial
/// intersection checks (linear in total weight) small.
pub const WEIGHT_MAX: Weight = 1_000;

/// The members of a Raft group as the quorum manager sees them: voters with
/// their weights, and learners, which replicate the log but never vote.
///
/// Edits only check membership (a node is a voter, a learner or absent);
/// whether the result is safe is [`QuorumConfig::validate`]'s job.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VotingConfig {
    voters: BTreeMap<NodeId, Weight>,
    learners: BTreeSet<NodeId>,
}

impl VotingConfig {
    /// Voters of weight [`WEIGHT_DEFAULT`], no learners.
    pub fn with_voters(voters: impl IntoIterator<Item = NodeId>) -> VotingConfig {
        VotingConfig::with_weighted_voters(voters.into_iter().map(|id| (id, WEIGHT_DEFAULT)))
    }

    /// Voters with the given weights, no learners.
    pub fn with_weighted_voters(voters: impl IntoIterator<Item = (NodeId, Weight)>) -> VotingConfig {
        VotingConfig { voters: voters.into_iter().collect(), learners: BTreeSet::new() }
    }

    /// This configuration with `learners` added as learners; a node that is
    /// already a voter stays a voter.
    pub fn and_learners(mut self, learners: impl IntoIterator<Item = NodeId>) -> VotingConfig {
        for id in learners {
            if !self.voters.contains_key(&id) {
                self.learners.insert(id);
            }
        }
        self
    }

    /// Voters and their weights, ordered by node id.
    pub fn voters(&self) -> &BTreeMap<NodeId, Weight> {
        &self.voters
    }

    /// Voter ids, ordered.
    pub fn voter_ids(&self) -> BTreeSet<NodeId> {
        self.voters.keys().copied().collect()
    }

    /// Learners, ordered.
    pub fn learners(&self) -> &BTreeSet<NodeId> {
        &self.learners
    }

    /// Whether `id` votes.
    pub fn is_voter(&self, id: NodeId) -> bool {
        self.voters.contains_key(&id)
    }

    /// Whether `id` is a learner.
    pub fn is_learner(&self, id: NodeId) -> bool {
        self.learners.contains(&id)
    }

    /// Whether `id` is a voter or a learner.
    pub fn contains(&self, id: NodeId) -> bool {
        self.is_voter(id) || self.is_learner(id)
    }

    /// The weight of voter `id`, `None` for a learner or a stranger.
    pub fn weight(&self, id: NodeId) -> Option<Weight> {
        self.voters.get(&id).copied()
    }

    /// Sum of all voters' weights.
    pub fn total_weight(&self) -> u64 {
        self.voters.values().map(|&w| u64::from(w)).sum()
    }

    /// Adds a stranger as a learner.
    pub fn add_learner(&mut self, id: NodeId) -> Result<(), EditError> {
        if self.contains(id) {
            return Err(EditError::AlreadyMember(id));
        }
        self.learners.insert(id);
        Ok(())
    }

    /// Adds a stranger directly as a voter. Raft would then replicate the
    /// whole log to it while it already counts in quorums, so the planner
    /// never does this: it adds a learner, then promotes it.
    pub fn add_voter(&mut self, id: NodeId, weight: Weight) -> Result<(), EditError> {
        if self.contains(id) {
            return Err(EditError::AlreadyMember(id));
        }
        self.voters.insert(id, weight);
        Ok(())
    }

    /// Makes learner `id` a voter of `weight`.
    pub fn promote(&mut self, id: NodeId, weight: Weight) -> Result<(), EditError> {
        if !self.learners.remove(&id) {
            return Err(EditError::NotLearner(id));
        }
        self.voters.insert(id, weight);
        Ok(())
    }

    /// Makes voter `id` a learner.
    pub fn demote(&mut self, id: NodeId) -> Result<(), EditError> {
        if self.voters.remove(&id).is_none() {
            return Err(EditError::NotVoter(id));
        }
        self.learners.insert(id);
        Ok(())
    }

    /// Removes voter or learner `id`.
    pub fn remove(&mut self, id: NodeId) -> Result<(), EditError> {
        if self.voters.remove(&id).is_none() && !self.learners.remove(&id) {
            return Err(EditError::NotMember(id));
        }
        Ok(())
    }

    /// Sets voter `id`'s weight.
    pub fn set_weight(&mut self, id: NodeId, weight: Weight) -> Result<(), EditError> {
        match self.voters.get_mut(&id) {
            Some(w) => {
                *w = weight;
                Ok(())
            }
            None => Err(EditError::NotVoter(id)),
        }
    }
}

/// How votes add up to a quorum.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuorumPolicy {
    /// One vote per voter, weights ignored; a quorum is more than half of
    /// the voters, for elections and commits alike.
    #[default]
    Majority,
    /// A voter casts its weight; a quorum is more than half of the total
    /// weight, for elections and commits alike.
    Weighted,
    /// Flexible quorums: a voter casts its weight; an election needs
    /// `election_weight`, a commit `commit_weight`. Safe when election +
    /// commit > total (an election sees every commit) and 2 × election >
    /// total (two elections of one term meet).
    Flexible {
        /// Weight an election quorum must reach.
        election_weight: u64,
        /// Weight a commit quorum must reach.
        commit_weight: u64,
    },
}

/// A voting configuration under a policy: the unit the quorum manager
/// validates, plans between and proposes to Raft.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuorumConfig {
    /// Voters, weights and learners.
    pub voting: VotingConfig,
    /// How votes add up to a quorum.
    pub policy: QuorumPolicy,
}

/// How much failure a configuration takes, given which voters are up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultTolerance {
    /// Whether the up voters can both elect a leader and commit.
    pub quorum_available: bool,
    /// How many more up voters may fail, whichever they are, with quorum
    /// still available. 0 when quorum is not available.
    pub failures_tolerated: usize,
    /// The smallest set of up voters whose loss loses quorum (the heaviest
    /// ones); empty when quorum is already lost.
    pub worst_case: Vec<NodeId>,
}

impl QuorumConfig {
    /// A configuration under `policy`.
    pub fn new(voting: VotingConfig, policy: QuorumPolicy) -> QuorumConfig {
        QuorumConfig { voting, policy }
    }

    /// Equal voters under [`QuorumPolicy::Majority`].
    pub fn majority(voters: impl IntoIterator<Item = NodeId>) -> QuorumConfig {
        QuorumConfig::new(VotingConfig::with_voters(voters), QuorumPolicy::Majority)
    }

    /// Votes `id` casts under this policy (0 for a non-voter).
    pub fn votes(&self, id: NodeId) -> u64 {
        match (self.voting.weight(id), self.policy) {
            (None, _) => 0,
            (Some(_), QuorumPolicy::Majority) => 1,
            (Some(w), _) => u64::from(w),
        }
    }

    /// Votes all voters cast together.
    pub fn total_votes(&self) -> u64 {
        self.voting.voters.keys().map(|&id| self.votes(id)).sum()
    }

    /// Votes a quorum of `kind` must reach.
    pub fn threshold(&self, kind: QuorumKind) -> u64 {
        match (self.policy, kind) {
            (QuorumPolicy::Majority | QuorumPolicy::Weighted, _) => self.total_votes() / 2 + 1,
            (QuorumPolicy::Flexible { election_weight, .. }, QuorumKind::Election) => election_weight,
            (QuorumPolicy::Flexible { commit_weight, .. }, QuorumKind::Commit) => commit_weight,
        }
    }

    /// Votes a node set cast (non-voters cast none).
    pub fn votes_of<'a>(&self, nodes: impl IntoIterator<Item = &'a NodeId>) -> u64 {
        nodes.into_iter().map(|&id| self.votes(id)).sum()
    }

    /// Whether `nodes` form a quorum of `kind`.
    pub fn is_quorum(&self, kind: QuorumKind, nodes: &BTreeSet<NodeId>) -> bool {
        self.votes_of(nodes) >= self.threshold(kind)
    }

    /// Whether `nodes` can elect a leader.
    pub fn is_election_quorum(&self, nodes: &BTreeSet<NodeId>) -> bool {
        self.is_quorum(QuorumKind::Election, nodes)
    }

    /// Whether `nodes` can commit an entry.
    pub fn is_commit_quorum(&self, nodes: &BTreeSet<NodeId>) -> bool {
        self.is_quorum(QuorumKind::Commit, nodes)
    }

    /// Voters ordered heaviest first (ties by id): the worst-case failure
    /// order, and the best-case quorum order.
    pub(crate) fn heaviest_first<'a>(&self, among: impl IntoIterator<Item = &'a NodeId>) -> Vec<NodeId> {
        let mut ids: Vec<NodeId> =
            among.into_iter().copied().filter(|&id| self.voting.is_voter(id)).collect();
        ids.sort_by_key(|&id| (std::cmp::Reverse(self.votes(id)), id));
        ids
    }

    /// The fewest voters that can form a quorum of `kind` (heaviest first);
    /// `None` when even all voters together cannot.
    pub fn quorum_size(&self, kind: QuorumKind) -> Option<usize> {
        let threshold = self.threshold(kind);
        let mut votes = 0;
        for (count, id) in self.heaviest_first(self.voting.voters.keys()).into_iter().enumerate() {
            if votes >= threshold {
                return Some(count);
            }
            votes += self.votes(id);
        }
        (votes >= threshold).then_some(self.voting.voters.len())
    }

    /// The votes needed to both elect and commit.
    fn operating_threshold(&self) -> u64 {
        self.threshold(QuorumKind::Election).max(self.threshold(QuorumKind::Commit))
    }

    /// How many more failures the cluster takes when `up` are the voters
    /// that are up, and which failures are the worst: the heaviest voters go
    /// first because any other failure of as many voters removes fewer votes.
    pub fn fault_tolerance(&self, up: &BTreeSet<NodeId>) -> FaultTolerance {
        let threshold = self.operating_threshold();
        let mut votes = self.votes_of(up);
        if votes < threshold {
            return FaultTolerance { quorum_available: false, failures_tolerated: 0, worst_case: Vec::new() };
        }
        let mut worst_case = Vec::new();
        for id in self.heaviest_first(up) {
            worst_case.push(id);
            votes -= self.votes(id);
            if votes < threshold {
                break;
            }
        }
        // Only reached with votes still >= threshold when every up voter
        // failed and the threshold is 0, which validate refuses.
        let failures_tolerated = worst_case.len().saturating_sub(1);
        FaultTolerance { quorum_available: true, failures_tolerated, worst_case }
    }

    /// Fault tolerance with every voter up.
    pub fn fault_tolerance_all_up(&self) -> FaultTolerance {
        self.fault_tolerance(&self.voting.voter_ids())
    }
}
