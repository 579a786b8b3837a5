//! `/tasks`: the task queue of the reference scenario.

use super::errors::{method_not_allowed, ApiError};
use super::GroupParam;
use crate::machine::{Query, QueryAnswer};
use crate::node::Node;
use crate::state::tasks::{TaskCommand, TaskResponse};
use crate::state::{Command, Response};
use actix_web::{web, HttpResponse};
use concord_raft::actor::{ElectionHistory, ReadKind};
use serde::Deserialize;
use serde_json::json;
use std::time::Duration;

/// Bound on a task id's length in bytes.
pub const TASK_ID_BYTES_MAX: usize = 256;

type Result = std::result::Result<HttpResponse, ApiError>;

/// Body of a submission.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Submit {
    task_id: String,
    payload: String,
}

async fn submit(node: web::Data<Node>, group: web::Query<GroupParam>, body: web::Json<Submit>) -> Result {
    let body = body.into_inner();
    if body.task_id.is_empty() || body.task_id.len() > TASK_ID_BYTES_MAX {
        return Err(ApiError::BadRequest(format!("a task id has 1 to {TASK_ID_BYTES_MAX} bytes")));
    }
    let command = Command::Task(TaskCommand::Submit { task_id: body.task_id, payload: body.payload });
    let (index, response) = node.propose(group.name(), &command, None, Duration::from_secs(5)).await?;
    match response {
        Response::Task(TaskResponse::Submitted { task_id, created }) => {
            Ok(HttpResponse::Ok().json(json!({"task_id": task_id, "created": created, "revision": index})))
        }
        other => Err(ApiError::Internal(format!("unexpected answer {other:?}"))),
    }
}

async fn status(node: web::Data<Node>, task_id: web::Path<String>, group: web::Query<GroupParam>) -> Result {
    let query = Query::Task { task_id: task_id.clone() };
    match node.query(group.name(), ReadKind::Linearizable, &query).await? {
        QueryAnswer::Task(Some(task)) => {
            Ok(HttpResponse::Ok().json(json!({"task_id": *task_id, "task": task})))
        }
        QueryAnswer::Task(None) => Err(ApiError::NotFound(format!("no task {:?}", *task_id))),
        other => Err(ApiError::Internal(format!("unexpected answer {other:?}"))),
    }
}

async fn results(node: web::Data<Node>, group: web::Query<GroupParam>) -> Result {
    let handle = group.resolve(&node)?;
    let totals = match node.query(group.name(), ReadKind::Linearizable, &Query::TaskTotals).await? {
        QueryAnswer::Totals(totals) => totals,
        other => return Err(ApiError::Internal(format!("unexpected answer {other:?}"))),
    };
    let history = handle.raft.send(ElectionHistory).await.unwrap_or_default();
    let leader_failures = history.iter().filter(|e| e.old_leader.is_some()).count();
    Ok(HttpResponse::Ok().json(json!({
        "total_tasks": totals.total_tasks,
        "completed": totals.completed,
        "failed": totals.failed,
        "duplicates": totals.duplicates,
        "pending": totals.pending,
        "claimed": totals.claimed,
        "leader_failures": leader_failures,
        "elections": history.len(),
        "execution_guarantee": "exactly-once",
        "completed_by_node": totals.completed_by_worker,
    })))
}

/// Registers `/tasks*`.
pub fn routes(config: &mut web::ServiceConfig) {
    config
        .service(
            web::resource("/tasks")
                .route(web::post().to(submit))
                .default_service(web::to(method_not_allowed)),
        )
        .service(
            web::resource("/tasks/results")
                .route(web::get().to(results))
                .default_service(web::to(method_not_allowed)),
        )
        .service(
            web::resource("/tasks/{task_id}")
                .route(web::get().to(status))
                .default_service(web::to(method_not_allowed)),
        );
}
