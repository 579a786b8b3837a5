//! `/raft/*`: the operator verbs of the reference documents.

use super::errors::{method_not_allowed, ApiError};
use super::GroupParam;
use crate::config::RaftTiming;
use crate::machine::Query;
use crate::node::Node;
use crate::report;
use actix_web::{web, HttpResponse};
use concord_raft::actor::{
    ElectionHistory, GetStatus, Leader, LogStatus, ReadKind, StepDown, TriggerElection,
};
use serde::Deserialize;
use serde_json::json;

type Result = std::result::Result<HttpResponse, ApiError>;

fn mailbox(e: actix::MailboxError) -> ApiError {
    ApiError::Internal(format!("raft actor unavailable: {e}"))
}

async fn status(node: web::Data<Node>, group: web::Query<GroupParam>) -> Result {
    let status = group.resolve(&node)?.raft.send(GetStatus).await.map_err(mailbox)?;
    Ok(HttpResponse::Ok().json(report::status(&status)))
}

async fn leader(node: web::Data<Node>, group: web::Query<GroupParam>) -> Result {
    let info = group.resolve(&node)?.raft.send(Leader).await.map_err(mailbox)?;
    Ok(HttpResponse::Ok().json(report::leader(&info)))
}

async fn log_status(node: web::Data<Node>, group: web::Query<GroupParam>) -> Result {
    let log = group.resolve(&node)?.raft.send(LogStatus).await.map_err(mailbox)?;
    Ok(HttpResponse::Ok().json(report::log_status(&log)))
}

async fn election_history(node: web::Data<Node>, group: web::Query<GroupParam>) -> Result {
    let history = group.resolve(&node)?.raft.send(ElectionHistory).await.map_err(mailbox)?;
    let events: Vec<_> = history.iter().map(report::election).collect();
    Ok(HttpResponse::Ok().json(json!({ "elections": events })))
}

async fn step_down(node: web::Data<Node>, group: web::Query<GroupParam>) -> Result {
    let to = group.resolve(&node)?.raft.send(StepDown).await.map_err(mailbox)?;
    let to = to.map_err(|e| ApiError::Conflict(e.to_string()))?;
    Ok(HttpResponse::Ok().json(json!({ "transferring_to": to.0 })))
}

async fn trigger_election(node: web::Data<Node>, group: web::Query<GroupParam>) -> Result {
    group
        .resolve(&node)?
        .raft
        .send(TriggerElection)
        .await
        .map_err(mailbox)?
        .map_err(|e| ApiError::Conflict(e.to_string()))?;
    Ok(HttpResponse::Ok().json(json!({ "campaigning": node.id().0 })))
}

/// A linearizable read succeeds only if a quorum confirms this leader.
async fn verify_quorum(node: web::Data<Node>, group: web::Query<GroupParam>) -> Result {
    let name = group.name().to_string();
    let handle = group.resolve(&node)?;
    let status = handle.raft.send(GetStatus).await.map_err(mailbox)?;
    let verified = node.query(&name, ReadKind::Linearizable, &Query::TaskTotals).await;
    Ok(HttpResponse::Ok().json(json!({
        "quorum_verified": verified.is_ok(),
        "reason": verified.err().map(|e| e.to_string()),
        "leader": status.leader.map(|n| n.0),
        "term": status.term,
        "voters": status.membership.voters.len(),
    })))
}

async fn config_get(node: web::Data<Node>) -> Result {
    Ok(HttpResponse::Ok().json(node.timing()))
}

/// Fields to change; absent ones keep their value.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigChange {
    heartbeat_ms: Option<u64>,
    election_timeout_min_ms: Option<u64>,
    election_timeout_max_ms: Option<u64>,
    batch_size: Option<usize>,
    snapshot_entries: Option<u64>,
    max_log_entries: Option<u64>,
    max_log_bytes: Option<u64>,
}

async fn config_set(node: web::Data<Node>, change: web::Json<ConfigChange>) -> Result {
    let current = node.timing();
    let timing = RaftTiming {
        heartbeat_ms: change.heartbeat_ms.unwrap_or(current.heartbeat_ms),
        election_timeout_min_ms: change.election_timeout_min_ms.unwrap_or(current.election_timeout_min_ms),
        election_timeout_max_ms: change.election_timeout_max_ms.unwrap_or(current.election_timeout_max_ms),
        batch_size: change.batch_size.unwrap_or(current.batch_size),
        snapshot_entries: change.snapshot_entries.unwrap_or(current.snapshot_entries),
        max_log_entries: change.max_log_entries.unwrap_or(current.max_log_entries),
        max_log_bytes: change.max_log_bytes.unwrap_or(current.max_log_bytes),
    };
    node.set_timing(timing).await?;
    Ok(HttpResponse::Ok().json(timing))
}

/// Registers `/raft/*`.
pub fn routes(config: &mut web::ServiceConfig) {
    let get = |path: &str, handler| {
        web::resource(path.to_string()).route(handler).default_service(web::to(method_not_allowed))
    };
    config
        .service(get("/raft/status", web::get().to(status)))
        .service(get("/raft/leader", web::get().to(leader)))
        .service(get("/raft/log-status", web::get().to(log_status)))
        .service(get("/raft/election-history", web::get().to(election_history)))
        .service(get("/raft/step-down", web::post().to(step_down)))
        .service(get("/raft/trigger-election", web::post().to(trigger_election)))
        .service(get("/raft/verify-quorum", web::get().to(verify_quorum)))
        .service(
            web::resource("/raft/config")
                .route(web::get().to(config_get))
                .route(web::put().to(config_set))
                .default_service(web::to(method_not_allowed)),
        );
}
