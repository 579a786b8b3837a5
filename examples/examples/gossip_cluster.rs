//! Two hundred gossip nodes in one process, on the in-memory transport.
//!
//! Each `GossipActor` gossips every 100 ms with fanout 3 (the reference
//! configuration). The nodes start already knowing each other, as after a
//! join, so what we watch is dissemination alone:
//!
//! 1. node 1 writes `color = blue`; we count the rounds and the time until
//!    every node holds it;
//! 2. nodes 7 and 150 write `leader` at the same moment, neither having seen
//!    the other's write: their vector clocks are concurrent, and every node
//!    resolves the conflict the same way (last writer wins on the writers'
//!    timestamps, node id breaking ties), so all 200 end up with one value.
//!
//! Run: `cargo run -p concord-examples --example gossip_cluster`

use actix::prelude::*;
use concord_gossip::actor::{Conflicts, Metrics, QueryState, StateUpdate};
use concord_gossip::sim::alive;
use concord_gossip::{GossipActor, GossipConfig, GossipCore, MemberMeta, Operation, ReadValue};
use concord_transport::{MemoryNetwork, NodeId, Transport};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Nodes in the cluster.
const NODES: u64 = 200;
/// How long each phase may take before the example gives up.
const PHASE_DEADLINE: Duration = Duration::from_secs(20);
/// How often the nodes are read while waiting.
const POLL: Duration = Duration::from_millis(20);

/// How many nodes read `expected` under `key`.
async fn holding(nodes: &[Addr<GossipActor>], key: &str, expected: &[u8]) -> usize {
    let mut count = 0;
    for node in nodes {
        if let Ok(Some(ReadValue::Register(value))) = node.send(QueryState { key: key.into() }).await {
            count += usize::from(value == expected);
        }
    }
    count
}

/// Waits until every node reads `expected` under `key`; answers the time taken
/// and the gossip rounds node 1 ran meanwhile.
async fn converge(
    nodes: &[Addr<GossipActor>],
    key: &str,
    expected: &[u8],
) -> Result<(Duration, u64), String> {
    let rounds = |m: concord_gossip::actor::GossipMetrics| m.rounds;
    let start = Instant::now();
    let rounds_before = nodes[0].send(Metrics).await.map(rounds).map_err(|e| e.to_string())?;
    loop {
        let have = holding(nodes, key, expected).await;
        if have == nodes.len() {
            let rounds_after = nodes[0].send(Metrics).await.map(rounds).map_err(|e| e.to_string())?;
            return Ok((start.elapsed(), rounds_after - rounds_before));
        }
        if start.elapsed() > PHASE_DEADLINE {
            return Err(format!("{key}: only {have} of {} nodes converged", nodes.len()));
        }
        tokio::time::sleep(POLL).await;
    }
}

#[actix::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let network = MemoryNetwork::new();
    let config = GossipConfig::default();
    let nodes: Vec<Addr<GossipActor>> = (1..=NODES)
        .map(|i| {
            let transport: Arc<dyn Transport> = Arc::new(network.join(NodeId(i)));
            let rng = StdRng::seed_from_u64(i);
            let mut core = GossipCore::new(NodeId(i), MemberMeta::default(), config.clone(), rng);
            core.add_members((1..=NODES).filter(|j| *j != i).map(|j| alive(NodeId(j))));
            GossipActor::new(core, transport, Vec::new()).start()
        })
        .collect();
    println!("{NODES} nodes, fanout {}, a round every {} ms", config.fanout, config.tick_ms);

    // 1. One update spreads to everyone.
    nodes[0].send(StateUpdate::assign("color", b"blue".to_vec())).await??;
    let (took, rounds) = converge(&nodes, "color", b"blue").await?;
    println!("update color=blue reached all {NODES} nodes in {rounds} rounds, {} ms", took.as_millis());

    // 2. Two concurrent writes of one key: both are sent before either
    //    node can hear of the other (no round runs between two sends to
    //    different actors), so their clocks are concurrent. The timestamps
    //    are given explicitly so the outcome is predictable: 2,000 > 1,000.
    let write = |value: &str, timestamp| StateUpdate {
        key: "leader".into(),
        operation: Operation::Assign { value: value.as_bytes().to_vec(), timestamp },
    };
    // `send` queues the message at once; awaiting comes after both are queued.
    let first = nodes[6].send(write("node-7", 1_000));
    let second = nodes[149].send(write("node-150", 2_000));
    first.await??;
    second.await??;
    let (took, rounds) = converge(&nodes, "leader", b"node-150").await?;
    let mut detected = 0;
    for node in &nodes {
        detected += node.send(Conflicts).await?.len();
    }
    println!(
        "concurrent writes leader=node-7 (t=1000) and leader=node-150 (t=2000): \
         {detected} nodes detected the conflict; all {NODES} resolved it to \"node-150\" \
         (last writer wins) in {rounds} rounds, {} ms",
        took.as_millis()
    );
    System::current().stop();
    Ok(())
}
