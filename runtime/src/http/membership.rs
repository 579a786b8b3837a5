//! `/health`, `/quorum/*`, `/members/*`: the quorum manager of a group.
//! Changes go through Raft as configuration changes; the manager refuses
//! unsafe ones with the reason.

use super::errors::{method_not_allowed, ApiError};
use super::GroupParam;
use crate::node::Node;
use actix_web::{web, HttpResponse};
use concord_membership::actor::ManagerResult;
use concord_membership::messages::{
    AddNode, Health, History, PromoteLearner, Recommend, RemoveNode, VerifyQuorum,
};
use concord_transport::NodeId;
use serde::Deserialize;
use serde_json::json;

type Result = std::result::Result<HttpResponse, ApiError>;

fn mailbox(e: actix::MailboxError) -> ApiError {
    ApiError::Internal(format!("quorum manager unavailable: {e}"))
}

fn outcome(result: ManagerResult) -> Result {
    match result {
        Ok(outcome) => Ok(HttpResponse::Ok().json(json!({ "outcome": format!("{outcome:?}") }))),
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

async fn add(node: web::Data<Node>, group: web::Query<GroupParam>, body: web::Json<NodeBody>) -> Result {
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
        .service(one("/members/add", web::post().to(add)))
        .service(one("/members/remove", web::post().to(remove)))
        .service(one("/members/promote", web::post().to(promote)));
}
