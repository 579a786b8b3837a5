//! `/health`, `/quorum/*`, `/members/*`: the quorum manager of a group.
//! Changes go through Raft as configuration changes; the manager refuses
//! unsafe ones with the reason.
//!
//! Change bodies:
//! - `POST /quorum/adjust`: the target configuration,
//!   `{"voters": {"1": 2, "2": 1, "3": 1}, "learners": [6], "policy": "weighted"}`
//!   (voter id → weight; `learners` optional; `policy` one of `"majority"`,
//!   `"weighted"`, `{"flexible": {"election_weight": E, "commit_weight": C}}`).
//! - `POST /quorum/weights`: `{"weights": {"1": 3}}`, the voters named only.
//! - `POST /quorum/policy`: `{"policy": ...}` as above.
//!
//! A node outside the `members` a group's configuration names cannot be
//! added to it (it never runs the group).
//!
//! A malformed body, or a target that is unsafe, unreachable by safe single
//! steps or inapplicable to the configuration in force, is a 400; a request
//! the group cannot take now (not the leader, quorum lost, queue full, a
//! step without a reachable quorum) a 409.

use super::errors::{method_not_allowed, ApiError};
use super::GroupParam;
use crate::node::Node;
use actix_web::{web, HttpResponse};
use concord_membership::actor::{ManagerError, ManagerResult};
use concord_membership::core::RequestError;
use concord_membership::messages::{
    AddNode, Adjust, Health, History, PromoteLearner, Recommend, RemoveNode, SetPolicy, SetWeights,
    VerifyQuorum,
};
use concord_membership::quorum::{QuorumConfig, QuorumPolicy, VotingConfig, Weight, VOTERS_MAX, WEIGHT_MAX};
use concord_transport::NodeId;
use serde::Deserialize;
use serde_json::json;
use std::collections::BTreeMap;

type Result = std::result::Result<HttpResponse, ApiError>;

fn mailbox(e: actix::MailboxError) -> ApiError {
    ApiError::Internal(format!("quorum manager unavailable: {e}"))
}

fn outcome(result: ManagerResult) -> Result {
    match result {
        Ok(outcome) => Ok(HttpResponse::Ok().json(json!({ "outcome": format!("{outcome:?}") }))),
        Err(
            error @ ManagerError::Request(
                RequestError::Unsafe(_)
                | RequestError::NoPlan(_)
                | RequestError::BelowVotersMin { .. }
                | RequestError::Edit(_),
            ),
        ) => Err(ApiError::BadRequest(error.to_string())),
        Err(error) => Err(ApiError::Conflict(error.to_string())),
    }
}

async fn health(node: web::Data<Node>, group: web::Query<GroupParam>) -> Result {
    let health = group.resolve(&node)?.manager.send(Health).await.map_err(mailbox)?;
    Ok(HttpResponse::Ok().json(health))
}

async fn recommend(node: web::Data<Node>, group: web::Query<GroupParam>) -> Result {
    let recommendation = group.resolve(&node)?.manager.send(Recommend).await.map_err(mailbox)?;
    Ok(HttpResponse::Ok().json(recommendation))
}

async fn history(node: web::Data<Node>, group: web::Query<GroupParam>) -> Result {
    let history = group.resolve(&node)?.manager.send(History { limit: None }).await.map_err(mailbox)?;
    Ok(HttpResponse::Ok().json(json!({ "history": history })))
}

async fn verify(node: web::Data<Node>, group: web::Query<GroupParam>) -> Result {
    outcome(group.resolve(&node)?.manager.send(VerifyQuorum).await.map_err(mailbox)?)
}

/// Body naming a node, with optional voter flag and weight.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeBody {
    node: u64,
    #[serde(default)]
    voter: bool,
    weight: Option<u32>,
}

/// Refuses nodes that can never run a group whose members the
/// configuration names: added, they would never catch up.
fn check_runs(
    node: &Node,
    group: &GroupParam,
    ids: impl IntoIterator<Item = u64>,
) -> std::result::Result<(), ApiError> {
    let Some(route) = node.route(group.name()).filter(|r| r.members_named) else { return Ok(()) };
    match ids.into_iter().find(|id| !route.members.contains(&NodeId(*id))) {
        Some(stranger) => Err(ApiError::BadRequest(format!(
            "node {stranger} does not run group {:?}, whose members are {:?}",
            group.name(),
            route.members.iter().map(|m| m.0).collect::<Vec<_>>()
        ))),
        None => Ok(()),
    }
}

async fn add(node: web::Data<Node>, group: web::Query<GroupParam>, body: web::Json<NodeBody>) -> Result {
    check_runs(&node, &group, [body.node])?;
    let message = AddNode { node: NodeId(body.node), voter: body.voter, weight: body.weight };
    outcome(group.resolve(&node)?.manager.send(message).await.map_err(mailbox)?)
}

async fn remove(node: web::Data<Node>, group: web::Query<GroupParam>, body: web::Json<NodeBody>) -> Result {
    outcome(
        group.resolve(&node)?.manager.send(RemoveNode { node: NodeId(body.node) }).await.map_err(mailbox)?,
    )
}

async fn promote(node: web::Data<Node>, group: web::Query<GroupParam>, body: web::Json<NodeBody>) -> Result {
    let message = PromoteLearner { node: NodeId(body.node), weight: body.weight };
    outcome(group.resolve(&node)?.manager.send(message).await.map_err(mailbox)?)
}

/// Body of `/quorum/adjust`: the target configuration.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AdjustBody {
    voters: BTreeMap<u64, Weight>,
    #[serde(default)]
    learners: Vec<u64>,
    policy: QuorumPolicy,
}

/// Body of `/quorum/weights`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WeightsBody {
    weights: BTreeMap<u64, Weight>,
}

/// Body of `/quorum/policy`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyBody {
    policy: QuorumPolicy,
}

/// Checks voters' weights: at least one voter, at most [`VOTERS_MAX`],
/// each weight within `1..=WEIGHT_MAX`.
fn check_weights(weights: &BTreeMap<u64, Weight>) -> std::result::Result<(), ApiError> {
    if weights.is_empty() {
        return Err(ApiError::BadRequest("name at least one voter".into()));
    }
    if weights.len() > VOTERS_MAX {
        return Err(ApiError::BadRequest(format!("{} voters exceed the bound {VOTERS_MAX}", weights.len())));
    }
    match weights.iter().find(|(_, &w)| w == 0 || w > WEIGHT_MAX) {
        Some((node, weight)) => {
            Err(ApiError::BadRequest(format!("voter {node}: weight {weight} is not within 1..={WEIGHT_MAX}")))
        }
        None => Ok(()),
    }
}

/// The target of an adjustment, checked for what the body alone can get wrong.
fn target(body: AdjustBody) -> std::result::Result<QuorumConfig, ApiError> {
    check_weights(&body.voters)?;
    if let Some(both) = body.learners.iter().find(|l| body.voters.contains_key(l)) {
        return Err(ApiError::BadRequest(format!("node {both} is both a voter and a learner")));
    }
    let voting = VotingConfig::with_weighted_voters(body.voters.into_iter().map(|(id, w)| (NodeId(id), w)))
        .and_learners(body.learners.into_iter().map(NodeId));
    Ok(QuorumConfig::new(voting, body.policy))
}

async fn adjust(node: web::Data<Node>, group: web::Query<GroupParam>, body: web::Json<AdjustBody>) -> Result {
    check_runs(&node, &group, body.voters.keys().chain(&body.learners).copied())?;
    let message = Adjust { target: target(body.into_inner())? };
    outcome(group.resolve(&node)?.manager.send(message).await.map_err(mailbox)?)
}

async fn weights(
    node: web::Data<Node>,
    group: web::Query<GroupParam>,
    body: web::Json<WeightsBody>,
) -> Result {
    let body = body.into_inner();
    check_weights(&body.weights)?;
    let weights = body.weights.into_iter().map(|(id, w)| (NodeId(id), w)).collect();
    outcome(group.resolve(&node)?.manager.send(SetWeights { weights }).await.map_err(mailbox)?)
}

async fn policy(node: web::Data<Node>, group: web::Query<GroupParam>, body: web::Json<PolicyBody>) -> Result {
    let message = SetPolicy { policy: body.policy };
    outcome(group.resolve(&node)?.manager.send(message).await.map_err(mailbox)?)
}

/// Registers the quorum manager's routes.
pub fn routes(config: &mut web::ServiceConfig) {
    let one = |path: &str, route: actix_web::Route| {
        web::resource(path.to_string()).route(route).default_service(web::to(method_not_allowed))
    };
    config
        .service(one("/health", web::get().to(health)))
        .service(one("/quorum/recommend", web::get().to(recommend)))
        .service(one("/quorum/history", web::get().to(history)))
        .service(one("/quorum/verify", web::post().to(verify)))
        .service(one("/quorum/adjust", web::post().to(adjust)))
        .service(one("/quorum/weights", web::post().to(weights)))
        .service(one("/quorum/policy", web::post().to(policy)))
        .service(one("/members/add", web::post().to(add)))
        .service(one("/members/remove", web::post().to(remove)))
        .service(one("/members/promote", web::post().to(promote)));
}
