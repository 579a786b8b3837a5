//! Several nodes in the test's own process, over TCP on 127.0.0.1.
#![allow(dead_code)] // each test binary uses part of it

use actix_web::dev::{Service, ServiceResponse};
use actix_web::{test, web, App};
use concord_raft::actor::GetStatus;
use concord_raft::core::Role;
use concord_runtime::config::{NodeConfig, Peer};
use concord_runtime::http::{errors, routes};
use concord_runtime::node::{BoundNode, Node};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How long [`leader`] waits.
pub const LEADER_DEADLINE: Duration = Duration::from_secs(20);

/// Waits for the node that leads the default group and has committed in
/// its term.
pub async fn leader(nodes: &[Node]) -> Node {
    let start = Instant::now();
    loop {
        let mut found = None;
        for node in nodes {
            let status = node.group("default").unwrap().raft.send(GetStatus).await.unwrap();
            if status.role == Role::Leader && status.commit > 0 {
                found = Some(node.clone());
            }
        }
        if let Some(leader) = found {
            return leader;
        }
        assert!(start.elapsed() < LEADER_DEADLINE, "no leader");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The HTTP API of `node`, as the node serves it (bodies up to 64 KiB),
/// for `actix_web::test::call_service`.
pub async fn api(
    node: Node,
) -> impl Service<actix_http::Request, Response = ServiceResponse, Error = actix_web::Error> {
    let (json, payload) = errors::extractor_configs(64 * 1024);
    let (path, query) = errors::path_and_query_configs();
    test::init_service(
        App::new()
            .app_data(web::Data::new(node))
            .app_data(json)
            .app_data(payload)
            .app_data(path)
            .app_data(query)
            .configure(routes),
    )
    .await
}

/// Starts `n` nodes with ids `1..=n`, each the others' peer, data under `data`.
pub async fn cluster(n: u64, data: &std::path::Path) -> Vec<Node> {
    let mut bound = Vec::new();
    for id in 1..=n {
        let config = NodeConfig {
            id,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: data.join(format!("node{id}")),
            ..NodeConfig::default()
        };
        bound.push(BoundNode::bind(config).await.unwrap());
    }
    let addresses: Vec<Peer> =
        bound.iter().zip(1..).map(|(b, id)| Peer { id, address: b.address() }).collect();
    bound
        .into_iter()
        .zip(1..)
        .map(|(b, id)| {
            let peers: Vec<Peer> = addresses.iter().filter(|p| p.id != id).copied().collect();
            b.start(&peers).unwrap()
        })
        .collect()
}
