//! The quorum manager's public messages, as plain serde request structs with
//! their response types: actix messages of [`crate::actor::QuorumManager`]
//! as they are (queries answer [`ManagerMessage::Response`]; changes answer
//! [`crate::actor::ManagerResult`], which adds "the manager stopped"), and
//! JSON for HTTP or CLI.
//!
//! Queries ([`Health`], [`Recommend`], [`History`]) are answered at once from
//! the core's state ([`Query::answer`]). Changes ([`AddNode`], [`RemoveNode`],
//! [`PromoteLearner`], [`SetWeights`], [`SetPolicy`], [`Adjust`]) and
//! [`VerifyQuorum`] become a core [`Request`]; their answer is the
//! [`Output::Reply`](crate::core::Output::Reply) carrying the same
//! [`RequestId`](crate::core::RequestId), possibly many inputs later.

use crate::core::{HistoryRecord, Outcome, QuorumCore, Request, RequestError};
use crate::health::ClusterHealth;
use crate::quorum::{QuorumConfig, QuorumPolicy, Weight};
use crate::recommend::CombinedRecommendation;
use concord_transport::NodeId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A message and the type of its answer.
pub trait ManagerMessage {
    /// The answer.
    type Response;
}

/// A message answered from the core's state, without an operation.
pub trait Query: ManagerMessage {
    /// The answer now.
    fn answer(&self, core: &QuorumCore) -> Self::Response;
}

/// The answer to every change request and to [`VerifyQuorum`].
pub type OperationResult = Result<Outcome, RequestError>;

/// Asks for the cluster-health report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health;

impl ManagerMessage for Health {
    type Response = ClusterHealth;
}

impl Query for Health {
    fn answer(&self, core: &QuorumCore) -> ClusterHealth {
        core.health()
    }
}

/// Asks for the combined recommendation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recommend;

impl ManagerMessage for Recommend {
    type Response = CombinedRecommendation;
}

impl Query for Recommend {
    fn answer(&self, core: &QuorumCore) -> CombinedRecommendation {
        core.recommend()
    }
}

/// Asks for the audit history, newest last.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    /// Only the newest this many records; all kept ones when `None`.
    pub limit: Option<usize>,
}

impl ManagerMessage for History {
    type Response = Vec<HistoryRecord>;
}

impl Query for History {
    fn answer(&self, core: &QuorumCore) -> Vec<HistoryRecord> {
        let mut records = core.history();
        let keep = self.limit.unwrap_or(records.len()).min(records.len());
        records.split_off(records.len() - keep)
    }
}

/// Moves to a target configuration (for instance a recommendation's).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Adjust {
    /// The configuration to reach.
    pub target: QuorumConfig,
}

/// Adds a node as a learner, then, when `voter`, promotes it once caught up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddNode {
    /// The node.
    pub node: NodeId,
    /// Whether it ends as a voter.
    pub voter: bool,
    /// Its weight as a voter; 1 when `None`.
    pub weight: Option<Weight>,
}

/// Removes a node; a leader hands leadership over first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoveNode {
    /// The node.
    pub node: NodeId,
}

/// Promotes a learner once caught up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromoteLearner {
    /// The learner.
    pub node: NodeId,
    /// Its weight; 1 when `None`.
    pub weight: Option<Weight>,
}

/// Sets voters' weights (one audited operation, planned as safe steps).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetWeights {
    /// The new weight of each voter named.
    pub weights: BTreeMap<NodeId, Weight>,
}

/// Sets the quorum policy, refused with the reason when unsafe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetPolicy {
    /// The policy.
    pub policy: QuorumPolicy,
}

/// Checks that the configuration in force commits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyQuorum;

/// Change messages answered by an [`OperationResult`], each one core
/// [`Request`].
macro_rules! operation_messages {
    ($($message:ident => |$m:ident| $request:expr;)*) => {
        $(
            impl ManagerMessage for $message {
                type Response = OperationResult;
            }

            impl From<$message> for Request {
                fn from($m: $message) -> Request {
                    $request
                }
            }
        )*
    };
}

operation_messages! {
    Adjust => |m| Request::Adjust { target: m.target };
    AddNode => |m| Request::AddNode { node: m.node, voter: m.voter, weight: m.weight };
    RemoveNode => |m| Request::RemoveNode { node: m.node };
    PromoteLearner => |m| Request::PromoteLearner { node: m.node, weight: m.weight };
    SetWeights => |m| Request::SetWeights { weights: m.weights };
    SetPolicy => |m| Request::SetPolicy { policy: m.policy };
    VerifyQuorum => |_m| Request::VerifyQuorum;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{CoreConfig, Input, Output, RequestId};
    use crate::health::RaftProgress;

    #[test]
    fn change_messages_become_core_requests_and_round_trip_as_json() {
        let message = SetPolicy { policy: QuorumPolicy::Flexible { election_weight: 4, commit_weight: 2 } };
        let json = serde_json::to_string(&message).expect("serializable");
        assert_eq!(json, r#"{"policy":{"flexible":{"election_weight":4,"commit_weight":2}}}"#);
        assert_eq!(serde_json::from_str::<SetPolicy>(&json).expect("parses"), message);
        assert_eq!(Request::from(RemoveNode { node: NodeId(3) }), Request::RemoveNode { node: NodeId(3) });
        assert_eq!(Request::from(VerifyQuorum), Request::VerifyQuorum);
    }

    #[test]
    fn queries_answer_from_the_core() {
        let mut core = QuorumCore::new(CoreConfig::new(NodeId(1))).expect("valid settings");
        let config = QuorumConfig::majority([NodeId(1), NodeId(2), NodeId(3)]);
        core.step(
            0,
            Input::Progress(RaftProgress { leader: Some(NodeId(1)), config, ..RaftProgress::default() }),
        );
        core.step(
            0,
            Input::Request {
                id: RequestId(1),
                request: Request::from(AddNode { node: NodeId(4), voter: false, weight: None }),
            },
        );
        core.step(1, Input::Committed(crate::core::Token(1)));
        core.step(2, Input::Verified { token: crate::core::Token(2), committed: true });
        assert!(core
            .take_outputs()
            .contains(&Output::Reply { request: RequestId(1), result: Ok(Outcome::Completed { steps: 1 }) }));
        assert_eq!(Health.answer(&core).quorum_size, 2);
        assert_eq!(History { limit: Some(5) }.answer(&core).len(), 1);
        assert_eq!(History { limit: Some(0) }.answer(&core).len(), 0);
        assert!(!Recommend.answer(&core).chosen.change);
    }
}
