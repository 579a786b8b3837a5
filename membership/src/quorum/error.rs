//! Why a configuration, an edit or a change is refused.

use concord_transport::NodeId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;

/// The two quorums of a configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuorumKind {
    /// Enough votes to elect a leader.
    Election,
    /// Enough acknowledgements to commit an entry.
    Commit,
}

impl fmt::Display for QuorumKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            QuorumKind::Election => "election",
            QuorumKind::Commit => "commit",
        })
    }
}

/// Two quorums that share no node: the proof that a rule is really broken.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisjointQuorums {
    /// A quorum of the first kind (of the old configuration, for a change).
    pub first: BTreeSet<NodeId>,
    /// A quorum of the second kind, disjoint from `first`.
    pub second: BTreeSet<NodeId>,
}

impl fmt::Display for DisjointQuorums {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |set: &BTreeSet<NodeId>| set.iter().map(|id| id.to_string()).collect::<Vec<_>>().join(",");
        write!(f, "{{{}}} and {{{}}}", list(&self.first), list(&self.second))
    }
}

/// Shows an optional witness in an error message.
struct Witness<'a>(&'a Option<DisjointQuorums>);

impl fmt::Display for Witness<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(w) => write!(f, " (e.g. {w})"),
            None => f.write_str(" (no disjoint pair with these weights, but the rule is what Raft checks)"),
        }
    }
}

/// Why [`super::QuorumConfig::validate`] refuses a configuration.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum UnsafeConfig {
    /// Nobody votes, so nothing can ever commit.
    #[error("no voters")]
    NoVoters,
    /// More voters than [`super::VOTERS_MAX`].
    #[error("{count} voters, at most {max} allowed")]
    TooManyVoters {
        /// Voters in the configuration.
        count: usize,
        /// The bound.
        max: usize,
    },
    /// A voter of weight 0 would count as a voter yet never change a quorum.
    #[error("voter {node} has weight 0")]
    ZeroWeight {
        /// The voter.
        node: NodeId,
    },
    /// A weight above [`super::WEIGHT_MAX`].
    #[error("voter {node} has weight {weight}, at most {max} allowed")]
    WeightTooLarge {
        /// The voter.
        node: NodeId,
        /// Its weight.
        weight: u32,
        /// The bound.
        max: u32,
    },
    /// A node listed both as voter and learner.
    #[error("node {node} is both a voter and a learner")]
    VoterIsLearner {
        /// The node.
        node: NodeId,
    },
    /// A flexible quorum of weight 0 is met by nobody.
    #[error("the {kind} quorum weight is 0")]
    ZeroQuorum {
        /// Which quorum.
        kind: QuorumKind,
    },
    /// A flexible quorum heavier than all voters together: never reachable.
    #[error("the {kind} quorum weight {weight} exceeds the total weight {total_weight}")]
    QuorumUnreachable {
        /// Which quorum.
        kind: QuorumKind,
        /// Its weight.
        weight: u64,
        /// All voters' weight.
        total_weight: u64,
    },
    /// Rule 2 × election > total broken: two leaders could be elected in one
    /// term.
    #[error(
        "election quorums may not intersect: 2 x {election_weight} <= total weight {total_weight}{}",
        Witness(witness)
    )]
    ElectionQuorumsMayNotIntersect {
        /// Election quorum weight.
        election_weight: u64,
        /// All voters' weight.
        total_weight: u64,
        /// Two disjoint election quorums, when the weights allow them.
        witness: Option<DisjointQuorums>,
    },
    /// Rule election + commit > total broken: a leader could be elected
    /// without a committed entry.
    #[error(
        "election and commit quorums may not intersect: {election_weight} + {commit_weight} <= total weight {total_weight}{}",
        Witness(witness)
    )]
    ElectionCommitMayNotIntersect {
        /// Election quorum weight.
        election_weight: u64,
        /// Commit quorum weight.
        commit_weight: u64,
        /// All voters' weight.
        total_weight: u64,
        /// A disjoint election quorum (`first`) and commit quorum (`second`),
        /// when the weights allow them.
        witness: Option<DisjointQuorums>,
    },
}

/// Why a membership edit does not apply.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum EditError {
    /// The node is already a voter or a learner.
    #[error("node {0} is already a member")]
    AlreadyMember(NodeId),
    /// The node is neither voter nor learner.
    #[error("node {0} is not a member")]
    NotMember(NodeId),
    /// The node is not a learner.
    #[error("node {0} is not a learner")]
    NotLearner(NodeId),
    /// The node is not a voter.
    #[error("node {0} is not a voter")]
    NotVoter(NodeId),
}

/// Why one step from an old to a new configuration is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum UnsafeChange {
    /// The current configuration fails validation, so no step from it can
    /// be proven safe.
    #[error("the current configuration is unsafe: {0}")]
    UnsafeCurrent(UnsafeConfig),
    /// The new configuration is unsafe on its own.
    #[error("the new configuration is unsafe: {0}")]
    UnsafeTarget(#[from] UnsafeConfig),
    /// An old and a new quorum may be disjoint, so during the change two
    /// leaders could coexist or a committed entry could be lost.
    #[error("an old {old_kind} quorum and a new {new_kind} quorum may be disjoint: {witness}")]
    QuorumsMayNotIntersect {
        /// Kind of the old quorum.
        old_kind: QuorumKind,
        /// Kind of the new quorum.
        new_kind: QuorumKind,
        /// The old quorum (`first`) and the new one (`second`).
        witness: DisjointQuorums,
    },
}

/// Why no plan leads from one configuration to another.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum PlanError {
    /// The target is unsafe on its own.
    #[error("the target configuration is unsafe: {0}")]
    UnsafeTarget(UnsafeConfig),
    /// No single safe step makes progress from the configuration reached.
    #[error("no safe single step after {steps} steps: {reason}")]
    NoSafeStep {
        /// Steps planned before getting stuck.
        steps: usize,
        /// Why the most preferred next step is unsafe.
        reason: UnsafeChange,
    },
    /// The plan would be longer than the bound.
    #[error("the plan needs more than {max} steps")]
    TooManySteps {
        /// The bound (`plan_steps_max`).
        max: usize,
    },
}
