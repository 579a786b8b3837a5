//! Several nodes in the test's own process, over TCP on 127.0.0.1.

use concord_runtime::config::{NodeConfig, Peer};
use concord_runtime::node::{BoundNode, Node};
use std::net::SocketAddr;

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
