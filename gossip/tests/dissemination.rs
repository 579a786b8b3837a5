//! Rounds for one update to reach 95% and 100% of a 1,000-node cluster, for
//! push, pull and push-pull, over several seeds (CONCORD_SIM_SEEDS, default 5).
//! CONCORD_GOSSIP_NODES changes the cluster size.

use concord_gossip::sim::{median, spread_rounds};
use concord_gossip::Mode;
use concord_transport::sim::{run_seeds, seeds};

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
    // Push alone grows at most (1 + fanout)-fold per round: log4(1000) ≈ 5.
    assert!(to_threshold >= 5, "faster than push can be: {to_threshold}");
    assert!(to_threshold <= to_all);
}

#[test]
fn pull_spreads_to_every_node() {
    let (to_threshold, to_all) = measure(Mode::Pull, "pull_spreads_to_every_node");
    assert!(to_threshold <= to_all);
}
