//! Rounds for one update to reach 95% and 100% of a 1,000-node cluster, for
//! push, pull and push-pull, over several seeds (CONCORD_SIM_SEEDS, default 5).
//! CONCORD_GOSSIP_NODES changes the cluster size; above 3,000 nodes the
//! cluster is dissemination-only with one shared, preloaded peer list
//! (`sim::dissemination_cluster`), so `CONCORD_GOSSIP_NODES=10000` runs in
//! well under a GB. The peak resident memory is printed.

use concord_gossip::sim::{dissemination_cluster, holders, median, spread_rounds, TICK_MS};
use concord_gossip::{GossipConfig, Mode, Operation};
use concord_transport::sim::{run_seeds, seeds, SimConfig, Simulation};
use concord_transport::NodeId;

/// Peak resident memory of this process (Linux), for the printout.
fn peak_memory() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
        })
        .unwrap_or_else(|| "unknown".into())
}

const ROUNDS_MAX: u64 = 60;

fn nodes() -> u64 {
    std::env::var("CONCORD_GOSSIP_NODES").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000)
}

/// Median rounds to 95% and to all, over the seeds.
fn measure(mode: Mode, name: &str) -> (u64, u64) {
    let n = nodes();
    let mut threshold = Vec::new();
    let mut all = Vec::new();
    run_seeds(name, 5, |seed| {
        let spread = spread_rounds(mode, n, seed, ROUNDS_MAX)?;
        match (spread.to_threshold, spread.to_all) {
            (Some(a), Some(b)) => {
                threshold.push(a);
                all.push(b);
                Ok(())
            }
            _ => Err(format!("{mode:?}: not everywhere after {ROUNDS_MAX} rounds: {spread:?}")),
        }
    });
    let result = (median(&threshold), median(&all));
    println!(
        "{mode:?} n={n} seeds={}: rounds to 95% {threshold:?} (median {}), to 100% {all:?} (median {}); peak memory {}",
        seeds(5).len(),
        result.0,
        result.1,
        peak_memory()
    );
    result
}

#[test]
fn push_pull_informs_all_of_1000_nodes_within_6_rounds_at_the_median() {
    let (to_threshold, to_all) =
        measure(Mode::PushPull, "push_pull_informs_all_of_1000_nodes_within_6_rounds_at_the_median");
    let goal = if nodes() > 1_000 { 8 } else { 6 };
    assert!(to_all <= goal, "median rounds to all {to_all} > {goal}");
    assert!(to_threshold <= to_all);
}

#[test]
fn push_spreads_to_every_node() {
    let (to_threshold, to_all) = measure(Mode::Push, "push_spreads_to_every_node");
    // Push alone grows at most (1 + fanout)-fold per round: log4(1000) ≈ 5.
    assert!(to_threshold >= 5, "faster than push can be: {to_threshold}");
    assert!(to_threshold <= to_all);
}

#[test]
fn pull_spreads_to_every_node() {
    let (to_threshold, to_all) = measure(Mode::Pull, "pull_spreads_to_every_node");
    assert!(to_threshold <= to_all);
}

#[test]
fn a_dissemination_cluster_shares_its_peer_list_and_still_spreads_to_all() {
    run_seeds("a_dissemination_cluster_shares_its_peer_list_and_still_spreads_to_all", 2, |seed| {
        let n = 300;
        let config = GossipConfig { anti_entropy_interval_ticks: 1_000_000, ..GossipConfig::default() };
        let mut sim =
            Simulation::new(seed, SimConfig::default(), TICK_MS, dissemination_cluster(n, &config, seed));
        let dot = sim
            .with_node(NodeId(7), |node, now, out| {
                node.with_core(now, out, |core| core.update("k", Operation::Grow { by: 1 }))
            })
            .ok_or("node 7 is down")?
            .map_err(|e| e.to_string())?;
        sim.run_until(20 * TICK_MS, |_| Ok(()))?;
        let node = &sim.nodes()[&NodeId(1)].core;
        if node.members().count() != 0 || node.cluster_size() != n as usize {
            return Err(format!(
                "{} members held, cluster size {}",
                node.members().count(),
                node.cluster_size()
            ));
        }
        let have = holders(&sim, "k", &dot);
        if have != n as usize {
            return Err(format!("{have} of {n} hold the update after 20 rounds"));
        }
        Ok(())
    });
}
