//! Rounds for one update to reach 95% and 100% of a 1,000-node cluster, for
//! push, pull and push-pull, over several seeds (CONCORD_SIM_SEEDS, default 5).
//! CONCORD_GOSSIP_NODES changes the cluster size (10,000 for the large run).

mod common;

use common::{cluster, holders, median, write, TICK_MS};
use concord_gossip::{GossipConfig, Mode};
use concord_transport::sim::{run_seeds, seeds, SimConfig};
use concord_transport::NodeId;

const ROUNDS_MAX: u64 = 60;

fn nodes() -> u64 {
    std::env::var("CONCORD_GOSSIP_NODES").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000)
}

/// Rounds until 95% and until all nodes hold one update written at node 1.
fn rounds(mode: Mode, n: u64, seed: u64) -> Result<(u64, u64), String> {
    // Anti-entropy is pushed out of the window: this measures rumors alone.
    let config = GossipConfig { mode, anti_entropy_interval_ticks: 1_000_000, ..GossipConfig::default() };
    let mut sim = cluster(n, &config, seed, SimConfig::default());
    let dot = write(&mut sim, NodeId(1), "k", b"v");
    let (mut to_threshold, mut to_all) = (None, None);
    for round in 1..=ROUNDS_MAX {
        // The round's tick is at round * TICK_MS; its messages land within 5 ms.
        sim.run_until(round * TICK_MS + TICK_MS / 2, |_| Ok(()))?;
        let have = holders(&sim, "k", &dot) as u64;
        if to_threshold.is_none() && have * 100 >= n * 95 {
            to_threshold = Some(round);
        }
        if have == n {
            to_all = Some(round);
            break;
        }
    }
    match (to_threshold, to_all) {
        (Some(a), Some(b)) => Ok((a, b)),
        _ => Err(format!("{mode:?}: not everywhere after {ROUNDS_MAX} rounds")),
    }
}

fn measure(mode: Mode, name: &str) -> (u64, u64) {
    let n = nodes();
    let mut threshold = Vec::new();
    let mut all = Vec::new();
    run_seeds(name, 5, |seed| {
        let (a, b) = rounds(mode, n, seed)?;
        threshold.push(a);
        all.push(b);
        Ok(())
    });
    let result = (median(&mut threshold), median(&mut all));
    println!(
        "{mode:?} n={n} seeds={}: rounds to 95% {threshold:?} (median {}), to 100% {all:?} (median {})",
        seeds(5).len(),
        result.0,
        result.1
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
    // Push alone grows by at most (1 + fanout) per round: log4(1000) ≈ 5 rounds.
    assert!(to_threshold >= 5, "faster than push can be: {to_threshold}");
    assert!(to_threshold <= to_all);
}

#[test]
fn pull_spreads_to_every_node() {
    let (to_threshold, to_all) = measure(Mode::Pull, "pull_spreads_to_every_node");
    assert!(to_threshold <= to_all);
}
