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
