//! Crash with state loss: a node restarts empty (incarnation 0) and rejoins
//! through a seed. Its state returns by anti-entropy, and it is not kept dead
//! by what the cluster remembers of it (a dead record, or a reaped one at a
//! higher incarnation): it refutes with a higher incarnation.

use concord_gossip::sim::{formed_cluster, SimGossipNode, TICK_MS};
use concord_gossip::{GossipConfig, MemberStatus, Operation, ReadValue};
use concord_transport::sim::{run_seeds, SimConfig, Simulation};
use concord_transport::NodeId;

const NODES: u64 = 30;
const VICTIM: NodeId = NodeId(5);

fn alive_everywhere(sim: &Simulation<SimGossipNode>) -> bool {
    sim.nodes().iter().filter(|(id, _)| **id != VICTIM).all(|(_, node)| {
        node.core.members().any(|m| m.state.node == VICTIM && m.state.status == MemberStatus::Alive)
    })
}

/// Crashes the victim, waits `down_ms`, restarts it, and checks it comes back.
fn crash_and_restart(seed: u64, down_ms: u64, config: &GossipConfig) -> Result<String, String> {
    let mut nodes = formed_cluster(NODES, config, seed);
    for (_, node) in nodes.iter_mut() {
        node.rejoin_seeds = vec![NodeId(1)];
        node.keep_events = false;
    }
    let mut sim = Simulation::new(seed, SimConfig::default(), TICK_MS, nodes);
    sim.run_until(2_000, |_| Ok(()))?;
    for i in 0..20u64 {
        let node = NodeId(1 + i % NODES);
        sim.with_node(node, |n, now, out| {
            n.with_core(now, out, |core| core.update(&format!("k{i}"), Operation::Grow { by: i + 1 }))
        })
        .ok_or("node down")?
        .map_err(|e| e.to_string())?;
    }
    sim.run_for(3_000, |_| Ok(()))?;
    sim.crash(VICTIM);
    sim.run_for(down_ms, |_| Ok(()))?;
    let remembered = sim.nodes()[&NodeId(1)]
        .core
        .members()
        .find(|m| m.state.node == VICTIM)
        .map(|m| format!("{:?}@{}", m.state.status, m.state.incarnation))
        .unwrap_or_else(|| "reaped".into());
    sim.restart(VICTIM);
    if !sim.nodes()[&VICTIM].core.store().is_empty() {
        return Err("the restarted node kept its state".into());
    }
    let restarted_at = sim.now();
    let at = sim.run_until_condition(
        restarted_at + 60_000,
        |_| Ok(()),
        |sim| {
            let roots: std::collections::BTreeSet<u64> =
                sim.nodes().values().map(|n| n.core.store().tree().root()).collect();
            roots.len() == 1 && alive_everywhere(sim)
        },
    )?;
    for i in 0..20u64 {
        let value = sim.nodes()[&VICTIM].core.read(&format!("k{i}"));
        if value != Some(ReadValue::Counter((i + 1) as i64)) {
            return Err(format!("k{i} = {value:?} at the restarted node"));
        }
    }
    let incarnation = sim.nodes()[&VICTIM].core.me().incarnation;
    if incarnation == 0 {
        return Err("rejoined at incarnation 0: the old record was not refuted".into());
    }
    Ok(format!(
        "{remembered} before restart; alive everywhere with its state {} ms after, incarnation {incarnation}",
        at - restarted_at
    ))
}

#[test]
fn a_node_restarted_empty_gets_its_state_back_and_is_not_kept_dead() {
    run_seeds("a_node_restarted_empty_gets_its_state_back_and_is_not_kept_dead", 2, |seed| {
        let outcome = crash_and_restart(seed, 5_000, &GossipConfig::default())?;
        println!("seed {seed}, declared dead then restarted: {outcome}");
        Ok(())
    });
}

#[test]
fn a_node_restarted_after_it_was_reaped_is_not_kept_out_by_the_reaped_record() {
    run_seeds("a_node_restarted_after_it_was_reaped_is_not_kept_out_by_the_reaped_record", 2, |seed| {
        let config = GossipConfig { member_reap_ticks: 30, ..GossipConfig::default() };
        let outcome = crash_and_restart(seed, 8_000, &config)?;
        println!("seed {seed}, reaped then restarted: {outcome}");
        Ok(())
    });
}
