//! `/kv/{key}`: the replicated key-value store.

use super::errors::{method_not_allowed, ApiError};
use super::GroupParam;
use crate::machine::{Query, QueryAnswer};
use crate::node::Node;
use crate::state::kv::KvCommand;
use crate::state::{Command, Response};
use actix_web::{web, HttpResponse};
use concord_raft::actor::ReadKind;
use serde::Deserialize;
use serde_json::json;
use std::time::Duration;

/// Bound on a key's length in bytes.
pub const KEY_BYTES_MAX: usize = 1_024;
/// How long a write may wait for a leader.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

type Result = std::result::Result<HttpResponse, ApiError>;

/// `?group=&consistency=` of a read.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadParams {
    group: Option<String>,
    /// `linearizable` (default), `lease` or `stale`.
    consistency: Option<String>,
}

fn check_key(key: &str) -> std::result::Result<(), ApiError> {
    if key.is_empty() || key.len() > KEY_BYTES_MAX {
        return Err(ApiError::BadRequest(format!("a key has 1 to {KEY_BYTES_MAX} bytes")));
    }
    Ok(())
}

async fn get(node: web::Data<Node>, key: web::Path<String>, params: web::Query<ReadParams>) -> Result {
    check_key(&key)?;
    let kind = match params.consistency.as_deref() {
        None | Some("linearizable") => ReadKind::Linearizable,
        Some("lease") => ReadKind::Lease,
        Some("stale") => ReadKind::Stale,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "consistency {other:?} is not one of linearizable, lease, stale"
            )))
        }
    };
    let group = GroupParam { group: params.group.clone() };
    let answer = node
        .query(group.name(), kind, &Query::Get { key: key.clone() })
        .await
        .map_err(|e| ApiError::Unavailable { message: format!("read failed: {e}"), leader: None })?;
    match answer {
        QueryAnswer::Value(Some(v)) => {
            Ok(HttpResponse::Ok().json(json!({"key": *key, "value": v.value, "revision": v.revision})))
        }
        QueryAnswer::Value(None) => Err(ApiError::NotFound(format!("no key {:?}", *key))),
        other => Err(ApiError::Internal(format!("unexpected answer {other:?}"))),
    }
}

async fn write(node: &Node, group: &GroupParam, command: KvCommand) -> Result {
    let (index, response) = node.propose(group.name(), &Command::Kv(command), None, WRITE_TIMEOUT).await?;
    let Response::Kv(response) = response else {
        return Err(ApiError::Internal("a key-value command got another answer".into()));
    };
    let previous = response.previous.map(|p| json!({"value": p.value, "revision": p.revision}));
    let body = json!({"succeeded": response.succeeded, "revision": index, "previous": previous});
    if response.succeeded {
        Ok(HttpResponse::Ok().json(body))
    } else {
        Ok(HttpResponse::Conflict().json(body))
    }
}

/// Body of a put.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PutBody {
    value: String,
}

async fn put(
    node: web::Data<Node>,
    key: web::Path<String>,
    group: web::Query<GroupParam>,
    body: web::Json<PutBody>,
) -> Result {
    check_key(&key)?;
    let body = body.into_inner();
    write(&node, &group, KvCommand::Put { key: key.into_inner(), value: body.value }).await
}

async fn delete(node: web::Data<Node>, key: web::Path<String>, group: web::Query<GroupParam>) -> Result {
    check_key(&key)?;
    write(&node, &group, KvCommand::Delete { key: key.into_inner() }).await
}

/// Body of a compare-and-swap: `null` means "absent".
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CasBody {
    expected: Option<String>,
    new: Option<String>,
}

async fn compare_and_swap(
    node: web::Data<Node>,
    key: web::Path<String>,
    group: web::Query<GroupParam>,
    body: web::Json<CasBody>,
) -> Result {
    check_key(&key)?;
    let body = body.into_inner();
    write(
        &node,
        &group,
        KvCommand::CompareAndSwap { key: key.into_inner(), expected: body.expected, new: body.new },
    )
    .await
}

/// Registers `/kv/*`.
pub fn routes(config: &mut web::ServiceConfig) {
    // `{key}` is one segment, so the two patterns never match the same
    // path; the one every get and put takes is tried first.
    config
        .service(
            web::resource("/kv/{key}")
                .route(web::get().to(get))
                .route(web::put().to(put))
                .route(web::delete().to(delete))
                .default_service(web::to(method_not_allowed)),
        )
        .service(
            web::resource("/kv/{key}/cas")
                .route(web::post().to(compare_and_swap))
                .default_service(web::to(method_not_allowed)),
        );
}

#[cfg(test)]
mod routing_tests {
    use super::*;
    use actix_web::{test, App};

    /// Which resource each path reaches, seen through the methods it
    /// refuses (no request here gets as far as a handler).
    #[actix_web::test]
    async fn each_path_reaches_its_resource() {
        let app = test::init_service(
            App::new().configure(routes).default_service(web::to(super::super::errors::not_found)),
        )
        .await;
        let cases = [
            (test::TestRequest::get().uri("/kv/a/cas"), 405, "GET"),
            (test::TestRequest::put().uri("/kv/a/cas"), 405, "PUT"),
            (test::TestRequest::post().uri("/kv/a"), 405, "POST"),
            (test::TestRequest::get().uri("/kv/a/b/cas"), 404, "no route"),
            (test::TestRequest::get().uri("/kv/"), 404, "no route"),
        ];
        for (request, status, message) in cases {
            let response = test::call_service(&app, request.to_request()).await;
            assert_eq!(response.status().as_u16(), status);
            let body: serde_json::Value = test::read_body_json(response).await;
            assert!(body["message"].as_str().unwrap_or_default().contains(message), "{body}");
        }
    }
}
