//! Drops, duplicates and reordering: every acknowledged counter increment
//! still reaches every node, and all nodes end with equal Merkle roots.

use concord_gossip::sim::{formed_cluster, TICK_MS};
use concord_gossip::{GossipConfig, Operation, ReadValue};
use concord_transport::sim::{run_seeds, SimConfig, Simulation};
use concord_transport::NodeId;
use rand::Rng;
use std::collections::BTreeMap;

#[test]
fn lossy_reordering_network_still_converges_to_the_sum_of_every_increment() {
    run_seeds("lossy_reordering_network_still_converges_to_the_sum_of_every_increment", 2, |seed| {
        let network = SimConfig {
            delay_min_ms: 1,
            delay_max_ms: 150,
            drop_rate: 0.1,
            duplicate_rate: 0.05,
            ..SimConfig::default()
        };
        let mut sim =
            Simulation::new(seed, network, TICK_MS, formed_cluster(100, &GossipConfig::default(), seed));
        let mut expected: BTreeMap<String, i64> = BTreeMap::new();
        for _ in 0..200 {
            sim.run_for(25, |_| Ok(()))?;
            let node = NodeId(sim.network().rng().random_range(1..=100));
            let key = format!("c{}", sim.network().rng().random_range(0..10));
            let by = sim.network().rng().random_range(-5..=20);
            let accepted = sim
                .with_node(node, |n, now, out| {
                    n.with_core(now, out, |core| core.update(&key, Operation::Add64 { by }))
                })
                .ok_or("node down")?;
            accepted.map_err(|e| e.to_string())?;
            *expected.entry(key).or_default() += by;
        }
        let roots_equal = |sim: &Simulation<_>| {
            let roots: std::collections::BTreeSet<u64> = sim
                .nodes()
                .values()
                .map(|n: &concord_gossip::sim::SimGossipNode| n.core.store().tree().root())
                .collect();
            roots.len() == 1
        };
        let start = sim.now();
        let at = sim.run_until_condition(start + 120_000, |_| Ok(()), roots_equal)?;
        for (id, node) in sim.nodes() {
            for (key, sum) in &expected {
                if node.core.read(key) != Some(ReadValue::Counter(*sum)) {
                    return Err(format!("{id}: {key} = {:?}, expected {sum}", node.core.read(key)));
                }
            }
        }
        println!("seed {seed}: equal roots {} ms after the last write", at - start);
        Ok(())
    });
}
