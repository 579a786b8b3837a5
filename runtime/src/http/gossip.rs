//! `/gossip/*`: the eventually consistent state and membership of the gossip
//! coordinator.

use super::errors::{method_not_allowed, ApiError};
use crate::node::Node;
use actix_web::{web, HttpResponse};
use concord_gossip::actor::{
    AntiEntropyNow, Conflicts, Convergence, DegradedMode, Members, Metrics, QueryState, StateUpdate,
};
use concord_gossip::ReadValue;
use serde::Deserialize;
use serde_json::{json, Value};

type Result = std::result::Result<HttpResponse, ApiError>;

fn mailbox(e: actix::MailboxError) -> ApiError {
    ApiError::Internal(format!("gossip actor unavailable: {e}"))
}

fn text(bytes: &[u8]) -> Value {
    match std::str::from_utf8(bytes) {
        Ok(text) => json!(text),
        Err(_) => json!(bytes),
    }
}

fn read_value(value: &ReadValue) -> Value {
    match value {
        ReadValue::Register(bytes) => json!({ "register": text(bytes) }),
        ReadValue::Siblings(values) => {
            json!({ "siblings": values.iter().map(|v| text(v)).collect::<Vec<_>>() })
        }
        ReadValue::Set(elements) => json!({ "set": elements }),
        ReadValue::Counter(value) => json!({ "counter": value }),
        ReadValue::Map(fields) => json!({
            "map": fields.iter().map(|(k, vs)| (k.clone(), json!(vs.iter().map(|v| text(v)).collect::<Vec<_>>()))).collect::<serde_json::Map<_, _>>()
        }),
    }
}

/// Body of a state update: a last-writer-wins write.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Update {
    value: String,
}

async fn state_update(node: web::Data<Node>, key: web::Path<String>, body: web::Json<Update>) -> Result {
    let update = StateUpdate::assign(key.clone(), body.into_inner().value.into_bytes());
    let dot =
        node.gossip().send(update).await.map_err(mailbox)?.map_err(|e| ApiError::Conflict(e.to_string()))?;
    Ok(HttpResponse::Ok().json(json!({ "key": *key, "actor": dot.actor.0, "counter": dot.counter })))
}

async fn query_state(node: web::Data<Node>, key: web::Path<String>) -> Result {
    match node.gossip().send(QueryState { key: key.clone() }).await.map_err(mailbox)? {
        Some(value) => Ok(HttpResponse::Ok().json(json!({ "key": *key, "value": read_value(&value) }))),
        None => Err(ApiError::NotFound(format!("no gossip key {:?}", *key))),
    }
}

async fn members(node: web::Data<Node>) -> Result {
    let members = node.gossip().send(Members).await.map_err(mailbox)?;
    let members: Vec<Value> = members
        .iter()
        .map(|m| {
            json!({
                "node": m.node.0,
                "status": format!("{:?}", m.status).to_lowercase(),
                "incarnation": m.incarnation,
                "address": m.meta.address.map(|a| a.to_string()),
                "tags": m.meta.tags,
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "members": members })))
}

async fn convergence(node: web::Data<Node>) -> Result {
    let reports = node.gossip().send(Convergence { update: None }).await.map_err(mailbox)?;
    let reports: Vec<Value> = reports
        .iter()
        .map(|r| {
            json!({
                "key": r.key,
                "origin": r.dot.actor.0,
                "counter": r.dot.counter,
                "nodes": r.nodes,
                "members": r.members,
                "fraction": r.fraction,
                "ticks_to_threshold": r.ticks_to_threshold,
                "ticks_to_all": r.ticks_to_all,
                "ms_to_threshold": r.ms_to_threshold,
                "ms_to_all": r.ms_to_all,
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "updates": reports })))
}

async fn conflicts(node: web::Data<Node>) -> Result {
    let conflicts = node.gossip().send(Conflicts).await.map_err(mailbox)?;
    let conflicts: Vec<Value> = conflicts
        .iter()
        .map(|c| {
            json!({
                "key": c.key,
                "tick": c.tick,
                "local": format!("{:?}", c.local),
                "remote": format!("{:?}", c.remote),
                "resolution": format!("{:?}", c.resolution),
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "conflicts": conflicts })))
}

async fn anti_entropy(node: web::Data<Node>) -> Result {
    node.gossip().send(AntiEntropyNow).await.map_err(mailbox)?;
    Ok(HttpResponse::Ok().json(json!({ "anti_entropy": "started" })))
}

/// Body of `degraded-mode`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Degraded {
    on: bool,
}

async fn degraded_mode(node: web::Data<Node>, body: web::Json<Degraded>) -> Result {
    node.gossip().send(DegradedMode { on: body.on }).await.map_err(mailbox)?;
    Ok(HttpResponse::Ok().json(json!({ "degraded": body.on })))
}

async fn metrics(node: web::Data<Node>) -> Result {
    let m = node.gossip().send(Metrics).await.map_err(mailbox)?;
    Ok(HttpResponse::Ok().json(json!({
        "keys": m.keys,
        "merkle_root": format!("{:016x}", m.root),
        "partition_suspected": m.partition_suspected,
        "degraded": m.degraded,
        "bad_messages": m.bad_messages,
        "send_failures": m.send_failures,
        "core": format!("{:?}", m.core),
    })))
}

/// Registers `/gossip/*`.
pub fn routes(config: &mut web::ServiceConfig) {
    let one = |path: &str, route: actix_web::Route| {
        web::resource(path.to_string()).route(route).default_service(web::to(method_not_allowed))
    };
    config
        .service(
            web::resource("/gossip/state/{key}")
                .route(web::get().to(query_state))
                .route(web::put().to(state_update))
                .default_service(web::to(method_not_allowed)),
        )
        .service(one("/gossip/members", web::get().to(members)))
        .service(one("/gossip/convergence", web::get().to(convergence)))
        .service(one("/gossip/conflicts", web::get().to(conflicts)))
        .service(one("/gossip/anti-entropy", web::post().to(anti_entropy)))
        .service(one("/gossip/degraded-mode", web::put().to(degraded_mode)))
        .service(one("/gossip/metrics", web::get().to(metrics)));
}
