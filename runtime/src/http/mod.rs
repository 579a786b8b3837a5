//! The JSON HTTP API of a node (actix-web).
//!
//! - [`errors`]: the error body and the bounded, error-mapped extractors.
//! - [`raft`]: `/raft/*` — status, leader, log status, election history,
//!   step-down, trigger-election, verify-quorum, config get/set.
//! - [`kv`]: `/kv/{key}` — get (linearizable by default), put, delete,
//!   compare-and-swap. Writes sent to a follower are forwarded to the leader
//!   over the transport, so any node accepts them.
//! - [`tasks`]: `/tasks` — submit (idempotent by id), status, results.
//! - [`gossip`]: `/gossip/*` — state-update, query-state, members,
//!   convergence, conflicts, anti-entropy, degraded-mode, metrics.
//! - [`membership`]: `/health`, `/quorum/{recommend,history,verify}`,
//!   `/members/{add,remove,promote}` — the group's quorum manager.
//! - [`metrics`]: `/metrics` in Prometheus' text format.
//! - [`local`]: serving on the node's own thread (the default), beside Raft
//!   and the transport; [`serve`] starts actix-web worker threads instead.
//!
//! Every Raft route takes `?group=NAME` (default `default`). Key-value
//! reads and writes and task submissions and lookups for a group this node
//! does not run are forwarded to a member; the routes that report one
//! replica's state (`/raft/*`, `/health`, `/quorum/*`, `/members/*`,
//! `/tasks/results`) answer 404 naming the group's members.

pub mod errors;
pub mod gossip;
pub mod kv;
pub mod local;
pub mod membership;
pub mod metrics;
pub mod raft;
pub mod tasks;

use crate::config::DEFAULT_GROUP;
use crate::node::{Group, Node, ProposeError};
use actix_web::{web, App, HttpServer};
use errors::ApiError;
use serde::Deserialize;
use std::net::SocketAddr;
use std::time::Duration;

/// The `?group=` parameter shared by the Raft, KV and task routes.
#[derive(Debug, Deserialize)]
pub struct GroupParam {
    /// The group's name.
    pub group: Option<String>,
}

impl GroupParam {
    /// The named group's actors on `node`, or a 404 saying why: no such
    /// group, or a group this node does not run (naming its members).
    pub fn resolve<'a>(&self, node: &'a Node) -> Result<&'a Group, ApiError> {
        let name = self.name();
        if let Some(group) = node.group(name) {
            return Ok(group);
        }
        Err(match node.route(name) {
            Some(route) => ApiError::NotFound(format!(
                "group {name:?} does not run on node {}; ask one of its members {:?}",
                node.id().0,
                route.members.iter().map(|m| m.0).collect::<Vec<_>>()
            )),
            None => ApiError::NotFound(format!("unknown group {name:?}")),
        })
    }

    /// The group's name, `default` when absent.
    pub fn name(&self) -> &str {
        self.group.as_deref().unwrap_or(DEFAULT_GROUP)
    }
}

impl From<ProposeError> for ApiError {
    fn from(error: ProposeError) -> ApiError {
        match error {
            ProposeError::UnknownGroup(name) => ApiError::NotFound(format!("unknown group {name:?}")),
            ProposeError::Timeout(..) => ApiError::Unavailable { message: error.to_string(), leader: None },
            ProposeError::Invalid(message) => ApiError::BadRequest(message),
            ProposeError::Failed(message) => ApiError::Internal(message),
            ProposeError::OutcomeUnknown(_) => ApiError::OutcomeUnknown(error.to_string()),
        }
    }
}

/// Registers every route of the API on `config`.
pub fn routes(config: &mut web::ServiceConfig) {
    // Resources are tried in order, and no other resource matches a `/kv`
    // path: the key-value routes, which every put and get takes, come first.
    kv::routes(config);
    raft::routes(config);
    tasks::routes(config);
    gossip::routes(config);
    membership::routes(config);
    config.service(
        web::resource("/metrics")
            .route(web::get().to(metrics::metrics))
            .default_service(web::to(errors::method_not_allowed)),
    );
}

/// How long a client has to send a request's head once connected.
pub const HTTP_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a connection closing after an answer waits for the client, so
/// that a client still sending a body it was refused (413, say) reads the
/// answer instead of a reset.
pub const HTTP_DISCONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// The whole API for `node`: its routes, the bounded extractors, and the
/// JSON 404 for unknown paths. Both ways of serving use it.
pub fn api(node: Node) -> impl FnOnce(&mut web::ServiceConfig) {
    move |config| {
        let (json, payload) = errors::extractor_configs(node.config().http_body_bytes_max);
        let (path, query) = errors::path_and_query_configs();
        config
            .app_data(web::Data::new(node))
            .app_data(json)
            .app_data(payload)
            .app_data(path)
            .app_data(query)
            .configure(routes)
            .default_service(web::to(errors::not_found));
    }
}

/// Starts actix-web worker threads (`http_workers` of them) serving `node`
/// on `address`; returns the server (to await or stop) and the address
/// bound. See [`local`] for serving on the node's own thread instead.
pub fn serve(node: Node, address: SocketAddr) -> std::io::Result<(actix_web::dev::Server, SocketAddr)> {
    let workers = node.config().http_workers.max(1);
    let server = HttpServer::new(move || App::new().configure(api(node.clone())))
        .client_request_timeout(HTTP_REQUEST_TIMEOUT)
        .client_disconnect_timeout(HTTP_DISCONNECT_TIMEOUT)
        .workers(workers)
        .disable_signals()
        .bind(address)?;
    let bound = server.addrs().first().copied().unwrap_or(address);
    Ok((server.run(), bound))
}
