//! The [`super::QuorumManager`]'s actix messages: the gossip-side facts it
//! is told (one `do_send` per gossip event), and the public requests of
//! [`crate::messages`], each answered from the core.

use crate::core::{Event, HistoryRecord, Outcome, RequestError};
use crate::health::{ClusterHealth, Liveness};
use crate::messages::{
    AddNode, Adjust, Health, History, ManagerMessage, PromoteLearner, Recommend, RemoveNode, SetPolicy,
    SetWeights, VerifyQuorum,
};
use actix::{Message, Recipient};
use concord_transport::NodeId;

/// Gossip's verdict on a node (SWIM alive / suspect / dead / left).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Message)]
#[rtype(result = "()")]
pub struct MemberLiveness {
    /// The node.
    pub node: NodeId,
    /// Its state.
    pub state: Liveness,
}

/// A node's failure domain (zone or rack) from its gossip metadata.
#[derive(Clone, Debug, PartialEq, Eq, Message)]
#[rtype(result = "()")]
pub struct MemberDomain {
    /// The node.
    pub node: NodeId,
    /// Its domain.
    pub domain: String,
}

/// A round-trip time gossip measured between two nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Message)]
#[rtype(result = "()")]
pub struct RttSample {
    /// The prober.
    pub from: NodeId,
    /// The probed node.
    pub to: NodeId,
    /// The round trip.
    pub rtt_ms: u64,
}

/// A report of the core, as subscribers receive it.
#[derive(Clone, Debug, PartialEq, Message)]
#[rtype(result = "()")]
pub enum Notice {
    /// The health report, sent when its status changes.
    Health(ClusterHealth),
    /// Something worth telling operators.
    Event(Event),
    /// A finished operation, as recorded in the history.
    Audit(HistoryRecord),
}

/// One line for an operator's log, e.g. `health degraded: 2/3 voters
/// reachable (quorum 2, 0 more failures tolerated), leader n1 in term 4;
/// failed: n3`.
impl std::fmt::Display for Notice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Notice::Health(h) => {
                let status = match h.status {
                    crate::health::HealthStatus::Healthy => "healthy",
                    crate::health::HealthStatus::Degraded => "degraded",
                    crate::health::HealthStatus::QuorumLost => "quorum lost",
                };
                write!(
                    f,
                    "health {status}: {}/{} voters reachable (quorum {}, {} more failures tolerated), ",
                    h.reachable_voters, h.voters, h.quorum_size, h.failures_tolerated
                )?;
                match h.leader {
                    Some(leader) => write!(f, "leader {leader} in term {}", h.term)?,
                    None => write!(f, "no leader in term {}", h.term)?,
                }
                if !h.failed_agents.is_empty() {
                    let failed: Vec<String> = h.failed_agents.iter().map(ToString::to_string).collect();
                    write!(f, "; failed: {}", failed.join(", "))?;
                }
                if h.partitioned {
                    write!(f, "; this node is partitioned from most of the cluster")?;
                }
                Ok(())
            }
            Notice::Event(Event::VoterFailed { node }) => write!(f, "voter {node} failed"),
            Notice::Event(Event::AutomaticChangeRefused { node, description, reason }) => {
                write!(f, "automatic change refused for node {node} ({description}): {reason}")
            }
            Notice::Event(Event::ChangeOverdue { token, waited_ms }) => {
                write!(f, "configuration change {} unanswered after {waited_ms} ms", token.0)
            }
            Notice::Event(Event::OperationStarted { operation, description }) => {
                write!(f, "operation {} started: {description}", operation.0)
            }
            Notice::Audit(record) => {
                let by = match record.origin {
                    crate::core::Origin::Operator(_) => "operator",
                    crate::core::Origin::Automatic => "automatic",
                };
                let took = record.finished_ms.saturating_sub(record.started_ms);
                write!(f, "operation {} ({by}) {}: ", record.operation.0, record.description)?;
                match &record.outcome {
                    Outcome::Completed { steps } => write!(f, "completed in {steps} steps")?,
                    Outcome::Unchanged => write!(f, "unchanged")?,
                    Outcome::RolledBack { reason } => write!(f, "rolled back: {reason}")?,
                    Outcome::Failed { reason } => write!(f, "failed: {reason}")?,
                    Outcome::Verified { committed } => write!(f, "verified (committed: {committed})")?,
                }
                write!(f, " after {took} ms")
            }
        }
    }
}

/// Subscribes a recipient to every later [`Notice`]. A subscriber whose
/// mailbox is full misses notices (they are logged); one that stopped is
/// dropped.
#[derive(Message)]
#[rtype(result = "Result<(), ManagerError>")]
pub struct Subscribe(pub Recipient<Notice>);

/// Why a change request to the manager has no outcome.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ManagerError {
    /// The core refused the request.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// The manager stopped before the operation ended.
    #[error("the quorum manager stopped before answering")]
    Stopped,
    /// `subscribers_max` recipients subscribe already.
    #[error("{max} subscribers already")]
    TooManySubscribers {
        /// The bound.
        max: usize,
    },
}

/// The answer to a change request or [`VerifyQuorum`] sent to the actor.
pub type ManagerResult = Result<Outcome, ManagerError>;

macro_rules! query_messages {
    ($($message:ident),*) => {$(
        impl Message for $message {
            type Result = <$message as ManagerMessage>::Response;
        }
    )*};
}

macro_rules! operation_messages {
    ($($message:ident),*) => {$(
        impl Message for $message {
            type Result = ManagerResult;
        }
    )*};
}

query_messages!(Health, Recommend, History);
operation_messages!(Adjust, AddNode, RemoveNode, PromoteLearner, SetWeights, SetPolicy, VerifyQuorum);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{OperationId, Origin, Token};
    use crate::health::HealthStatus;
    use crate::quorum::QuorumConfig;

    #[test]
    fn notices_read_as_one_line_each() {
        let health = ClusterHealth {
            status: HealthStatus::Degraded,
            total_agents: 3,
            alive_agents: 2,
            availability: 2.0 / 3.0,
            voters: 3,
            reachable_voters: 2,
            quorum_size: 2,
            quorum_available: true,
            failures_tolerated: 0,
            has_leader: true,
            leader: Some(NodeId(1)),
            term: 4,
            elections_per_hour: 1,
            commit_latency_p50: None,
            commit_latency_p99: None,
            failed_agents: vec![NodeId(3)],
            partitioned: false,
            partitions_detected: 0,
            split_brain_events: 0,
        };
        assert_eq!(
            Notice::Health(health).to_string(),
            "health degraded: 2/3 voters reachable (quorum 2, 0 more failures tolerated), \
             leader n1 in term 4; failed: n3"
        );
        assert_eq!(Notice::Event(Event::VoterFailed { node: NodeId(3) }).to_string(), "voter n3 failed");
        assert_eq!(
            Notice::Event(Event::ChangeOverdue { token: Token(7), waited_ms: 5000 }).to_string(),
            "configuration change 7 unanswered after 5000 ms"
        );
        let record = HistoryRecord {
            operation: OperationId(2),
            origin: Origin::Automatic,
            description: "replace failed voter 3 with 4".into(),
            from: QuorumConfig::default(),
            target: QuorumConfig::default(),
            steps_committed: 2,
            outcome: Outcome::Completed { steps: 2 },
            started_ms: 100,
            finished_ms: 340,
        };
        assert_eq!(
            Notice::Audit(record).to_string(),
            "operation 2 (automatic) replace failed voter 3 with 4: completed in 2 steps after 240 ms"
        );
    }
}
