//! Gossip figures on the deterministic simulator (virtual time, so the
//! figures do not depend on the machine; wall-clock time is printed too):
//! - rounds to 95% / 100% against cluster size, push-pull, fanout 3;
//! - bytes sent per node per second at steady state against cluster size;
//! - update throughput: updates per second injected cluster-wide, and the
//!   average and worst virtual time until each update is everywhere;
//! - failure-detection time against cluster size.
//!
//! `cargo bench -p concord-gossip --bench gossip`. Environment:
//! CONCORD_BENCH_SIZES (default 10,100,1000,3000), CONCORD_BENCH_SEEDS
//! (default 3), CONCORD_BENCH_SECTIONS (default spread,bytes,throughput,detection).

use concord_gossip::sim::{
    detection_ms, median, simulation, spread_rounds, steady_state_bytes_per_second, TICK_MS,
};
use concord_gossip::{GossipConfig, Mode, Operation};
use concord_transport::sim::SimConfig;
use concord_transport::NodeId;
use rand::Rng;
use std::time::Instant;

fn env_list(name: &str, default: &str) -> Vec<String> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_string())
        .split(',')
        .map(|s| s.trim().to_string())
        .collect()
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs it as a smoke test.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let default_sizes = if smoke { "10,100" } else { "10,100,1000,3000" };
    let sizes: Vec<u64> =
        env_list("CONCORD_BENCH_SIZES", default_sizes).iter().filter_map(|s| s.parse().ok()).collect();
    let seeds: u64 = std::env::var("CONCORD_BENCH_SEEDS").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
    let sections = env_list("CONCORD_BENCH_SECTIONS", "spread,bytes,throughput,detection");
    let has = |name: &str| sections.iter().any(|s| s == name);

    if has("spread") {
        println!("## rounds to 95% / 100%, fanout 3, {seeds} seeds (median [all])");
        for mode in [Mode::PushPull, Mode::Push, Mode::Pull] {
            for &n in &sizes {
                let start = Instant::now();
                let (mut threshold, mut all) = (Vec::new(), Vec::new());
                for seed in 0..seeds {
                    match spread_rounds(mode, n, seed, 100) {
                        Ok(spread) => {
                            threshold.push(spread.to_threshold.unwrap_or(u64::MAX));
                            all.push(spread.to_all.unwrap_or(u64::MAX));
                        }
                        Err(e) => println!("{mode:?} n={n} seed={seed}: {e}"),
                    }
                }
                println!(
                    "{mode:?} n={n}: 95% in {} rounds {threshold:?}, 100% in {} rounds {all:?}  ({:.1?} wall)",
                    median(&threshold),
                    median(&all),
                    start.elapsed()
                );
            }
        }
    }

    if has("bytes") {
        println!("## steady state: bytes sent per node per second (no updates, tick {TICK_MS} ms)");
        for &n in &sizes {
            match steady_state_bytes_per_second(n, 1, 100) {
                Ok(bytes) => println!("n={n}: {bytes:.0} B/node/s"),
                Err(e) => println!("n={n}: {e}"),
            }
        }
    }

    if has("throughput") {
        println!("## update throughput, 100 nodes: updates/s injected at random nodes for 5 s");
        for rate in [100u64, 1_000, 8_333] {
            match throughput(100, rate, 5) {
                Ok((mean, worst, everywhere, count, wall)) => println!(
                    "{rate} updates/s: {count} updates, {everywhere} everywhere by the end; \
                     time to everywhere mean {mean} ms, worst {worst} ms ({wall:.1?} wall)"
                ),
                Err(e) => println!("{rate} updates/s: {e}"),
            }
        }
    }

    if has("detection") {
        println!("## failure detection: crashed node dead at first / at every live node, {seeds} seeds (median ms)");
        for &n in &sizes {
            let (mut first, mut all) = (Vec::new(), Vec::new());
            for seed in 0..seeds {
                match detection_ms(n, seed, SimConfig::default(), 120_000) {
                    Ok((a, b)) => {
                        first.push(a);
                        all.push(b);
                    }
                    Err(e) => println!("n={n} seed={seed}: {e}"),
                }
            }
            println!("n={n}: first {} ms {first:?}, everywhere {} ms {all:?}", median(&first), median(&all));
        }
    }
}

/// Injects `rate` updates per second (spread evenly over ticks, at random
/// nodes, distinct keys) for `seconds`, then runs until every update is
/// everywhere or 60 s more pass. Returns the mean and worst virtual ms from
/// write to everywhere, how many updates got everywhere, the count and wall time.
fn throughput(
    n: u64,
    rate: u64,
    seconds: u64,
) -> Result<(u64, u64, usize, usize, std::time::Duration), String> {
    let start = Instant::now();
    let mut sim = simulation(n, &GossipConfig::default(), 3, SimConfig::default());
    let per_tick = rate * TICK_MS / 1_000;
    let mut pending = Vec::new();
    let mut done = Vec::new();
    for tick in 0..seconds * 1_000 / TICK_MS {
        for i in 0..per_tick {
            let node = NodeId(sim.network().rng().random_range(1..=n));
            let key = format!("k{tick}-{i}");
            let written_at = sim.now();
            let dot = sim
                .with_node(node, |node, now, out| {
                    node.with_core(now, out, |core| core.update(&key, Operation::Grow { by: 1 }))
                })
                .ok_or("node down")?
                .map_err(|e| e.to_string())?;
            pending.push((key, dot, written_at));
        }
        sim.run_for(TICK_MS, |_| Ok(()))?;
        settle(&sim, &mut pending, &mut done);
    }
    let count = pending.len() + done.len();
    let deadline = sim.now() + 60_000;
    while sim.now() < deadline && !pending.is_empty() {
        sim.run_for(TICK_MS, |_| Ok(()))?;
        settle(&sim, &mut pending, &mut done);
    }
    let latencies = done;
    let everywhere = count - pending.len();
    let mean = if latencies.is_empty() { 0 } else { latencies.iter().sum::<u64>() / latencies.len() as u64 };
    Ok((mean, latencies.iter().copied().max().unwrap_or(0), everywhere, count, start.elapsed()))
}

type Pending = (String, crdts::Dot<NodeId>, u64);

fn settle(
    sim: &concord_transport::sim::Simulation<concord_gossip::sim::SimGossipNode>,
    pending: &mut Vec<Pending>,
    done: &mut Vec<u64>,
) {
    let now = sim.now();
    pending.retain(|(key, dot, written_at)| {
        let everywhere = sim.nodes().values().all(|n| n.core.store().has_update(key, dot));
        if everywhere {
            done.push(now - written_at);
        }
        !everywhere
    });
}
