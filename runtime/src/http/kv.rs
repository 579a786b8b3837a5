//! `/kv/{key}`: the replicated key-value store.

use super::errors::{method_not_allowed, ApiError};
use super::GroupParam;
use crate::machine::{Query, QueryAnswer};
use crate::node::Node;
use crate::state::kv::KvCommand;
use crate::state::{Command, Response};
use actix_web::{web, HttpResponse};
use concord_raft::actor::ReadKind;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Bound on a key's length in bytes.
pub const KEY_BYTES_MAX: usize = 1_024;
/// How long a write may wait for a leader.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

type Result = std::result::Result<HttpResponse, ApiError>;

/// A value and the revision that wrote it. The answers are typed structs,
/// not `serde_json::Value`s, so that they serialize without building a map
/// first; fields are declared in the alphabetical order a `Value` map would
/// print them, so the bytes are the same.
#[derive(Debug, Serialize)]
struct Revisioned<'a> {
    revision: u64,
    value: &'a str,
}

/// The answer to a read.
#[derive(Debug, Serialize)]
struct ReadAnswer<'a> {
    key: &'a str,
    revision: u64,
    value: &'a str,
}

/// The answer to a delete, a compare-and-swap, or a put asked for the
/// previous value.
#[derive(Debug, Serialize)]
struct WriteAnswer<'a> {
    previous: Option<Revisioned<'a>>,
    revision: u64,
    succeeded: bool,
}

/// The answer to a put: without the value it replaced unless asked
/// (`?prev_kv=true`), as etcd answers, so that a put of a large value is
/// not answered with another as large.
#[derive(Debug, Serialize)]
struct PutAnswer {
    revision: u64,
    succeeded: bool,
}

/// `?group=&prev_kv=` of a put.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PutParams {
    group: Option<String>,
    /// Answer with the value the put replaced.
    prev_kv: Option<bool>,
}

/// `?group=&consistency=` of a read.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadParams {
    group: Option<String>,
    /// `linearizable` (default), `lease` or `stale`.
    consistency: Option<String>,
}

/// A key has 1 to [`KEY_BYTES_MAX`] bytes.
pub(super) fn check_key(key: &str) -> std::result::Result<(), ApiError> {
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
            Ok(HttpResponse::Ok().json(ReadAnswer { key: &key, revision: v.revision, value: &v.value }))
        }
        QueryAnswer::Value(None) => Err(ApiError::NotFound(format!("no key {:?}", *key))),
        other => Err(ApiError::Internal(format!("unexpected answer {other:?}"))),
    }
}

/// Proposes `command`; answers with the value it replaced if `previous`.
async fn write(node: &Node, group: &GroupParam, command: KvCommand, previous: bool) -> Result {
    let (index, response) = node.propose(group.name(), &Command::Kv(command), None, WRITE_TIMEOUT).await?;
    let Response::Kv(response) = response else {
        return Err(ApiError::Internal("a key-value command got another answer".into()));
    };
    let mut answer = if response.succeeded { HttpResponse::Ok() } else { HttpResponse::Conflict() };
    if !previous {
        return Ok(answer.json(PutAnswer { revision: index, succeeded: response.succeeded }));
    }
    let previous = response.previous.as_ref().map(|p| Revisioned { revision: p.revision, value: &p.value });
    Ok(answer.json(WriteAnswer { previous, revision: index, succeeded: response.succeeded }))
}

/// Body of a put.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PutBody {
    value: String,
}

/// The value of `body` if it is a put's body (`{"value": "..."}` and no
/// other field); `None` for anything else, which the App then answers with
/// its own error. Used by the node-thread server's fast path for a plain
/// put ([`super::local`]).
pub(super) fn put_body_value(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<PutBody>(body).ok().map(|body| body.value)
}

/// Puts `value` at `key` in the default group and answers as [`put`] does
/// a put with no query: the node-thread server's fast path for a plain put
/// ([`super::local`]). `key` must already be a valid key.
pub(super) async fn put_plain(node: &Node, key: String, value: String) -> HttpResponse {
    let command = KvCommand::Put { key, value };
    match write(node, &GroupParam { group: None }, command, false).await {
        Ok(answer) => answer,
        Err(error) => actix_web::ResponseError::error_response(&error),
    }
}

async fn put(
    node: web::Data<Node>,
    key: web::Path<String>,
    params: web::Query<PutParams>,
    body: web::Json<PutBody>,
) -> Result {
    check_key(&key)?;
    let body = body.into_inner();
    let params = params.into_inner();
    let group = GroupParam { group: params.group };
    let command = KvCommand::Put { key: key.into_inner(), value: body.value };
    write(&node, &group, command, params.prev_kv.unwrap_or(false)).await
}

async fn delete(node: web::Data<Node>, key: web::Path<String>, group: web::Query<GroupParam>) -> Result {
    check_key(&key)?;
    write(&node, &group, KvCommand::Delete { key: key.into_inner() }, true).await
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
        true,
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
mod tests {
    use super::*;
    use actix_web::{test as actix_test, App};
    use serde_json::json;

    #[test]
    fn answers_print_as_the_json_maps_did() {
        let read = ReadAnswer { key: "k", revision: 7, value: "v \"quoted\"" };
        let as_map = json!({"key": "k", "value": "v \"quoted\"", "revision": 7});
        assert_eq!(serde_json::to_string(&read).unwrap(), as_map.to_string());
        let previous = Some(Revisioned { revision: 3, value: "old" });
        let write = WriteAnswer { previous, revision: 9, succeeded: true };
        let as_map = json!({"succeeded": true, "revision": 9, "previous": {"value": "old", "revision": 3}});
        assert_eq!(serde_json::to_string(&write).unwrap(), as_map.to_string());
        let write = WriteAnswer { previous: None, revision: 10, succeeded: false };
        let as_map = json!({"succeeded": false, "revision": 10, "previous": null});
        assert_eq!(serde_json::to_string(&write).unwrap(), as_map.to_string());
        let put = PutAnswer { revision: 11, succeeded: true };
        let as_map = json!({"succeeded": true, "revision": 11});
        assert_eq!(serde_json::to_string(&put).unwrap(), as_map.to_string());
    }

    /// Which resource each path reaches, seen through the methods it
    /// refuses (no request here gets as far as a handler).
    #[actix_web::test]
    async fn each_path_reaches_its_resource() {
        let app = actix_test::init_service(
            App::new().configure(routes).default_service(web::to(super::super::errors::not_found)),
        )
        .await;
        let cases = [
            (actix_test::TestRequest::get().uri("/kv/a/cas"), 405, "GET"),
            (actix_test::TestRequest::put().uri("/kv/a/cas"), 405, "PUT"),
            (actix_test::TestRequest::post().uri("/kv/a"), 405, "POST"),
            (actix_test::TestRequest::get().uri("/kv/a/b/cas"), 404, "no route"),
            (actix_test::TestRequest::get().uri("/kv/"), 404, "no route"),
        ];
        for (request, status, message) in cases {
            let response = actix_test::call_service(&app, request.to_request()).await;
            assert_eq!(response.status().as_u16(), status);
            let body: serde_json::Value = actix_test::read_body_json(response).await;
            assert!(body["message"].as_str().unwrap_or_default().contains(message), "{body}");
        }
    }
}
