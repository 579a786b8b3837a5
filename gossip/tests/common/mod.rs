//! Shared helpers of the simulation tests.
#![allow(dead_code)]

use concord_gossip::sim::{formed_cluster, SimGossipNode};
use concord_gossip::{GossipConfig, Operation};
use concord_transport::sim::{SimConfig, Simulation};
use concord_transport::NodeId;
use crdts::Dot;

/// Virtual milliseconds per tick (the default gossip interval).
pub const TICK_MS: u64 = 100;

/// A formed cluster of `n` nodes on a network with 1–5 ms delays.
pub fn cluster(n: u64, config: &GossipConfig, seed: u64, network: SimConfig) -> Simulation<SimGossipNode> {
    let mut nodes = formed_cluster(n, config, seed);
    for (_, node) in nodes.iter_mut() {
        node.keep_events = false;
    }
    Simulation::new(seed, network, TICK_MS, nodes)
}

/// Writes `key` at `node`, returning the update's dot.
pub fn write(sim: &mut Simulation<SimGossipNode>, node: NodeId, key: &str, value: &[u8]) -> Dot<NodeId> {
    let timestamp = sim.now();
    sim.with_node(node, |n, now, out| {
        n.with_core(now, out, |core| core.update(key, Operation::Assign { value: value.to_vec(), timestamp }))
    })
    .expect("node is live")
    .expect("write accepted")
}

/// How many live nodes hold update `dot` of `key`.
pub fn holders(sim: &Simulation<SimGossipNode>, key: &str, dot: &Dot<NodeId>) -> usize {
    sim.nodes()
        .iter()
        .filter(|(id, _)| !sim.network_ref().is_crashed(**id))
        .filter(|(_, node)| node.core.store().has_update(key, dot))
        .count()
}

/// The median of `values` (the lower middle for even counts).
pub fn median(values: &mut [u64]) -> u64 {
    values.sort_unstable();
    values[(values.len() - 1) / 2]
}
