//! A 40/60 partition of 100 nodes with writes on both sides, then heal: all
//! nodes end with equal Merkle roots, no acknowledged update is lost, and
//! concurrent updates resolve to the same value everywhere.

use concord_gossip::sim::{formed_cluster, SimGossipNode, TICK_MS};
use concord_gossip::{Event, GossipConfig, GossipError, Operation, ReadValue};
use concord_transport::sim::{run_seeds, SimConfig, Simulation};
use concord_transport::NodeId;
use crdts::Dot;
use rand::Rng;

const NODES: u64 = 100;
const MINORITY: u64 = 40;

fn write(
    sim: &mut Simulation<SimGossipNode>,
    node: NodeId,
    key: &str,
    operation: Operation,
) -> Result<Dot<NodeId>, GossipError> {
    sim.with_node(node, |n, now, out| n.with_core(now, out, |core| core.update(key, operation)))
        .expect("node is live")
}

fn sides() -> (Vec<NodeId>, Vec<NodeId>) {
    ((1..=MINORITY).map(NodeId).collect(), (MINORITY + 1..=NODES).map(NodeId).collect())
}

fn roots_equal(sim: &Simulation<SimGossipNode>) -> bool {
    let mut roots = sim.nodes().values().map(|n| n.core.store().tree().root());
    let first = roots.next();
    roots.all(|r| Some(r) == first)
}

#[test]
fn after_a_partition_heals_every_node_holds_every_acknowledged_update() {
    run_seeds("after_a_partition_heals_every_node_holds_every_acknowledged_update", 2, |seed| {
        let config = GossipConfig::default();
        let mut sim =
            Simulation::new(seed, SimConfig::default(), TICK_MS, formed_cluster(NODES, &config, seed));
        let (minority, majority) = sides();
        sim.run_until(1_000, |_| Ok(()))?;
        sim.network().partition(&minority, &majority);
        let mut acknowledged: Vec<(String, Dot<NodeId>)> = Vec::new();
        for step in 0..100u64 {
            sim.run_for(100, |_| Ok(()))?;
            let node = NodeId(sim.network().rng().random_range(1..=NODES));
            let key = format!("k{}", step % 30);
            let timestamp = sim.now();
            let operation = match step % 3 {
                0 => Operation::Assign { value: step.to_le_bytes().to_vec(), timestamp },
                1 => Operation::Add64 { by: 1 },
                _ => Operation::Add { element: format!("e{step}") },
            };
            let key = format!("{key}-{}", step % 3);
            acknowledged
                .push((key.clone(), write(&mut sim, node, &key, operation).map_err(|e| e.to_string())?));
        }
        // Concurrent writes of one key on both sides.
        for (node, value) in [(minority[0], b"left".to_vec()), (majority[0], b"right".to_vec())] {
            let dot = write(&mut sim, node, "both", Operation::Assign { value, timestamp: 1 })
                .map_err(|e| e.to_string())?;
            acknowledged.push(("both".into(), dot));
            let dot =
                write(&mut sim, node, "siblings", Operation::Write { value: node.0.to_le_bytes().to_vec() })
                    .map_err(|e| e.to_string())?;
            acknowledged.push(("siblings".into(), dot));
        }
        sim.run_for(5_000, |_| Ok(()))?;
        let suspected = sim.nodes()[&minority[0]].core.partition_suspected();
        if !suspected {
            return Err("the minority side does not suspect a partition".into());
        }
        if sim.nodes()[&majority[0]].core.partition_suspected() {
            return Err("the majority side suspects a partition".into());
        }
        sim.network().heal();
        let healed_at = sim.now();
        let converged_at =
            sim.run_until_condition(healed_at + 60_000, |_| Ok(()), roots_equal).map_err(|e| {
                let roots: std::collections::BTreeSet<u64> =
                    sim.nodes().values().map(|n| n.core.store().tree().root()).collect();
                format!("{e}: {} distinct roots", roots.len())
            })?;
        for (key, dot) in &acknowledged {
            for (id, node) in sim.nodes() {
                if !node.core.store().has_update(key, dot) {
                    return Err(format!("{id} lost update {dot:?} of {key}"));
                }
            }
        }
        let reads = |key: &str| sim.nodes().values().map(|n| n.core.read(key)).collect::<Vec<_>>();
        for key in ["both", "siblings"] {
            let values = reads(key);
            if values.windows(2).any(|w| w[0] != w[1]) {
                return Err(format!("{key} differs between nodes"));
            }
        }
        // Equal timestamps: the greater node id wins, everywhere.
        if reads("both")[0] != Some(ReadValue::Register(b"right".to_vec())) {
            return Err(format!("last-writer-wins tie-break: {:?}", reads("both")[0]));
        }
        let Some(ReadValue::Siblings(siblings)) = &reads("siblings")[0] else {
            return Err("siblings".into());
        };
        if siblings.len() != 2 {
            return Err(format!("both concurrent writes kept as siblings: {siblings:?}"));
        }
        let conflicts_seen =
            sim.nodes().values().filter(|n| n.core.conflicts().any(|c| c.key == "both")).count();
        if conflicts_seen == 0 {
            return Err("no node recorded the conflict".into());
        }
        let healed_events =
            sim.nodes()[&minority[0]].events.iter().any(|(_, e)| *e == Event::PartitionHealed);
        if !healed_events {
            return Err("the minority side did not report the heal".into());
        }
        println!("seed {seed}: roots equal {} ms after heal", converged_at - healed_at);
        Ok(())
    });
}

#[test]
fn degraded_mode_refuses_writes_on_the_minority_side_until_the_heal() {
    run_seeds("degraded_mode_refuses_writes_on_the_minority_side_until_the_heal", 1, |seed| {
        let config = GossipConfig { degraded_mode_on_partition: true, ..GossipConfig::default() };
        let mut sim =
            Simulation::new(seed, SimConfig::default(), TICK_MS, formed_cluster(NODES, &config, seed));
        let (minority, majority) = sides();
        sim.run_until(1_000, |_| Ok(()))?;
        sim.network().partition(&minority, &majority);
        sim.run_for(8_000, |_| Ok(()))?;
        let refused = write(&mut sim, minority[0], "k", Operation::Grow { by: 1 });
        if !matches!(refused, Err(GossipError::Degraded)) {
            return Err(format!("minority write during partition: {refused:?}"));
        }
        write(&mut sim, majority[0], "k", Operation::Grow { by: 1 }).map_err(|e| e.to_string())?;
        sim.network().heal();
        let deadline = sim.now() + 60_000;
        sim.run_until_condition(deadline, |_| Ok(()), |sim| !sim.nodes()[&minority[0]].core.degraded())?;
        write(&mut sim, minority[0], "k", Operation::Grow { by: 1 }).map_err(|e| e.to_string())?;
        Ok(())
    });
}
