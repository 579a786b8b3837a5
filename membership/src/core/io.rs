//! What goes into the core and what comes out.
//!
//! Mapping for the actor: gossip member events become [`Input::Liveness`]
//! and [`Input::Domain`]; gossip probe round-trips become [`Input::Rtt`];
//! the Raft actor's metrics become [`Input::Progress`],
//! [`Input::CommitLatency`] and [`Input::Election`]. [`Output::Propose`] is
//! one Raft `ChangeMembership` (voters with weights, learners, policy),
//! whose fate comes back as [`Input::Committed`] or [`Input::Failed`];
//! [`Output::Verify`] asks Raft to commit a no-op under the current
//! configuration, answered by [`Input::Verified`].

use super::history::HistoryRecord;
use crate::health::{ClusterHealth, Liveness, RaftProgress};
use crate::quorum::{EditError, PlanError, QuorumConfig, QuorumPolicy, UnsafeConfig, Weight};
use concord_transport::NodeId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Names one proposal or verification, so that its result finds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Token(pub u64);

/// Names one operator request, chosen by the caller, echoed in its reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RequestId(pub u64);

/// Names one operation (one audited adjustment).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct OperationId(pub u64);

/// An input to [`super::QuorumCore::step`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Input {
    /// Gossip's verdict on a node.
    Liveness {
        /// The node.
        node: NodeId,
        /// Its state.
        liveness: Liveness,
    },
    /// A node's failure domain (zone or rack) from its gossip metadata.
    Domain {
        /// The node.
        node: NodeId,
        /// Its domain.
        domain: String,
    },
    /// A round-trip time measured between two nodes.
    Rtt {
        /// One end.
        a: NodeId,
        /// The other end.
        b: NodeId,
        /// The round trip.
        rtt_ms: u64,
    },
    /// The local Raft node's configuration and progress, in Raft's order: a
    /// report never goes back to a configuration older than one already
    /// reported or answered with [`Input::Committed`].
    Progress(RaftProgress),
    /// A commit latency measured by the leader.
    CommitLatency {
        /// Proposal to commit.
        latency_ms: u64,
    },
    /// An election completed.
    Election {
        /// Its term.
        term: u64,
        /// The winner.
        leader: NodeId,
    },
    /// A leadership claim seen elsewhere (e.g. in gossip metadata).
    LeaderClaim {
        /// The term.
        term: u64,
        /// The claimed leader.
        leader: NodeId,
    },
    /// An operator request.
    Request {
        /// Echoed in the reply.
        id: RequestId,
        /// The request.
        request: Request,
    },
    /// A proposed configuration change committed.
    Committed(Token),
    /// A proposed change or verification failed in Raft (not leader,
    /// refused, timed out).
    Failed {
        /// The proposal or verification.
        token: Token,
        /// Raft's reason.
        reason: String,
    },
    /// The answer to a verification: whether a no-op committed under the
    /// configuration in force.
    Verified {
        /// The verification.
        token: Token,
        /// Whether it committed.
        committed: bool,
    },
}

/// An operator request that changes, or checks, the configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Adds a node: as a learner, then (when `voter`) promoted once caught up.
    AddNode {
        /// The node.
        node: NodeId,
        /// Whether it should end as a voter.
        voter: bool,
        /// Its weight as a voter; default 1.
        weight: Option<Weight>,
    },
    /// Removes a voter or learner; the leader hands leadership over first.
    RemoveNode {
        /// The node.
        node: NodeId,
    },
    /// Makes a learner a voter once caught up.
    PromoteLearner {
        /// The learner.
        node: NodeId,
        /// Its weight; default 1.
        weight: Option<Weight>,
    },
    /// Sets voters' weights.
    SetWeights {
        /// New weight per voter.
        weights: BTreeMap<NodeId, Weight>,
    },
    /// Sets the quorum policy.
    SetPolicy {
        /// The policy.
        policy: QuorumPolicy,
    },
    /// Moves to a whole target configuration (e.g. a recommendation's).
    Adjust {
        /// The target.
        target: QuorumConfig,
    },
    /// Checks that the configuration in force commits.
    VerifyQuorum,
}

/// What a finished request or operation came to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Every step committed and the new quorum committed a verification.
    Completed {
        /// Configuration changes applied.
        steps: usize,
    },
    /// The target was already in force.
    Unchanged,
    /// A step or the verification failed; the steps applied were undone.
    RolledBack {
        /// What failed.
        reason: String,
    },
    /// A step failed and could not be undone (or nothing was applied).
    Failed {
        /// What failed.
        reason: String,
    },
    /// The answer to [`Request::VerifyQuorum`].
    Verified {
        /// Whether the configuration in force committed.
        committed: bool,
    },
}

/// Why a request is refused before anything is proposed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum RequestError {
    /// Only the leader's manager changes the configuration.
    #[error("not the leader (leader: {leader:?})")]
    NotLeader {
        /// The leader, if known.
        leader: Option<NodeId>,
    },
    /// No quorum is reachable: the group is read-only.
    #[error("quorum lost: the group is read-only")]
    QuorumLost,
    /// `pending_requests_max` (or `verifications_max`) requests wait already.
    #[error("{max} requests already wait")]
    QueueFull {
        /// The bound.
        max: usize,
    },
    /// The edit does not apply to the configuration in force.
    #[error(transparent)]
    Edit(#[from] EditError),
    /// The target is unsafe.
    #[error(transparent)]
    Unsafe(#[from] UnsafeConfig),
    /// No plan of single safe steps reaches the target.
    #[error(transparent)]
    NoPlan(#[from] PlanError),
    /// The target has fewer voters than `voters_min`.
    #[error("{voters} voters is below voters_min {voters_min}")]
    BelowVotersMin {
        /// Voters the target would have.
        voters: usize,
        /// The bound.
        voters_min: usize,
    },
    /// A step's quorum could not be reached by the voters up now.
    #[error("step {step} would leave no reachable quorum")]
    WouldLoseQuorum {
        /// The step, from 1.
        step: usize,
    },
}

/// Something worth telling operators, beyond replies.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// A voter stayed dead for the failure window.
    VoterFailed {
        /// The voter.
        node: NodeId,
    },
    /// An automatic change was refused (e.g. a failed voter cannot be
    /// replaced or removed safely); it is not retried until the node is
    /// next seen alive, so an operator is needed.
    AutomaticChangeRefused {
        /// The node concerned.
        node: NodeId,
        /// The change attempted.
        description: String,
        /// Why it was refused.
        reason: RequestError,
    },
    /// A proposed change has not been answered within `change_timeout_ms`;
    /// nothing else is proposed until Raft answers it.
    ChangeOverdue {
        /// The proposal.
        token: Token,
        /// How long it has waited.
        waited_ms: u64,
    },
    /// An operation started.
    OperationStarted {
        /// The operation.
        operation: OperationId,
        /// What it does.
        description: String,
    },
}

/// An output of the core, taken in batches by
/// [`super::QuorumCore::take_outputs`].
///
/// Ordering rules: at most one [`Output::Propose`] is outstanding at any
/// time — the next is emitted only after the previous one's
/// [`Input::Committed`] or [`Input::Failed`] — so Raft always sees single
/// changes, each committed before the next. The caller must answer every
/// `Propose` exactly once, however late (Raft's `ChangeMembership` always
/// ends in a commit or an error). Apply outputs in batch order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Output {
    /// Propose this configuration to Raft as one `ChangeMembership`.
    Propose {
        /// Answer with [`Input::Committed`] or [`Input::Failed`].
        token: Token,
        /// The whole new configuration.
        config: QuorumConfig,
    },
    /// Ask Raft to commit a no-op under the configuration in force.
    Verify {
        /// Answer with [`Input::Verified`] or [`Input::Failed`].
        token: Token,
    },
    /// The answer to an operator request.
    Reply {
        /// The request.
        request: RequestId,
        /// Its outcome, or why it was refused.
        result: Result<Outcome, RequestError>,
    },
    /// The health report, emitted when its status changes.
    Health(ClusterHealth),
    /// An event.
    Event(Event),
    /// A finished operation, also kept in the history.
    Audit(HistoryRecord),
}
