//! Gossip figures on the deterministic simulator (virtual time, so the
//! figures do not depend on the machine; wall-clock time is printed too):
//! - rounds to 95% / 100% against cluster size, push-pull, fanout 3;
//! - bytes sent per node per second at steady state against cluster size;
//! - update throughput: updates per second injected cluster-wide, and the
//!   average and worst virtual time until each update is everywhere;
//! - failure-detection time against cluster size;
//! - local writes a single core accepts per second of wall time.
//!
//! `cargo bench -p concord-gossip --bench gossip`. Environment:
//! CONCORD_BENCH_SIZES (default 10,100,1000,3000), CONCORD_BENCH_SEEDS
//! (default 3), CONCORD_BENCH_SECTIONS (default spread,bytes,throughput,detection,local).

use concord_gossip::sim::{
    detection_ms, median, simulation, spread_rounds, steady_state_bytes_per_second, TICK_MS,
};
use concord_gossip::{Event, GossipConfig, Mode, Operation};
use concord_transport::sim::SimConfig;
use concord_transport::NodeId;
use rand::Rng;
use std::collections::HashMap;
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
    let sections = env_list("CONCORD_BENCH_SECTIONS", "spread,bytes,throughput,detection,local");
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

    if has("local") {
        println!("## local writes: updates one core accepts per second of wall time (release)");
        let mut core = concord_gossip::GossipCore::new(
            NodeId(1),
            concord_gossip::MemberMeta::default(),
            GossipConfig::default(),
            <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(1),
        );
        core.add_members((2..=100).map(|i| concord_gossip::sim::alive(NodeId(i))));
        for (label, distinct) in [("distinct keys", true), ("one key", false)] {
            let count = 100_000u64;
            let start = Instant::now();
            for i in 0..count {
                let key = if distinct { format!("{label}-{i}") } else { label.to_string() };
                core.update(&key, Operation::Add64 { by: 1 }).expect("a counter write fits");
                if i % 1_000 == 0 {
                    core.take_output();
                }
            }
            let seconds = start.elapsed().as_secs_f64();
            println!("{label}: {count} updates in {seconds:.2} s = {:.0} updates/s", count as f64 / seconds);
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
/// everywhere or 60 s more pass. An update is everywhere when every node has
/// reported its key changed. Returns the mean and worst virtual ms from write
/// to everywhere, how many got everywhere, the count and the wall time.
fn throughput(
    n: u64,
    rate: u64,
    seconds: u64,
) -> Result<(u64, u64, usize, usize, std::time::Duration), String> {
    let start = Instant::now();
    let mut sim = simulation(n, &GossipConfig::default(), 3, SimConfig::default());
    let ids: Vec<NodeId> = sim.nodes().keys().copied().collect();
    for id in &ids {
        if let Some(node) = sim.node_mut(*id) {
            node.keep_events = true;
        }
    }
    let per_tick = rate * TICK_MS / 1_000;
    // key -> (written at, nodes that have it)
    let mut pending: HashMap<String, (u64, u64)> = HashMap::new();
    let mut latencies = Vec::new();
    let mut count = 0;
    let injection_ticks = seconds * 1_000 / TICK_MS;
    let mut tick = 0;
    while tick < injection_ticks + 600 && (tick < injection_ticks || !pending.is_empty()) {
        if tick < injection_ticks {
            for i in 0..per_tick {
                let node = NodeId(sim.network().rng().random_range(1..=n));
                let key = format!("k{tick}-{i}");
                pending.insert(key.clone(), (sim.now(), 0));
                count += 1;
                sim.with_node(node, |node, now, out| {
                    node.with_core(now, out, |core| core.update(&key, Operation::Grow { by: 1 }))
                })
                .ok_or("node down")?
                .map_err(|e| e.to_string())?;
            }
        }
        sim.run_for(TICK_MS, |_| Ok(()))?;
        let now = sim.now();
        for id in &ids {
            let Some(node) = sim.node_mut(*id) else { continue };
            for (_, event) in node.events.drain(..) {
                let Event::KeyChanged(key) = event else { continue };
                if let Some((written_at, have)) = pending.get_mut(&key) {
                    *have += 1;
                    if *have == n {
                        latencies.push(now - *written_at);
                        pending.remove(&key);
                    }
                }
            }
        }
        tick += 1;
    }
    let everywhere = latencies.len();
    let mean = if latencies.is_empty() { 0 } else { latencies.iter().sum::<u64>() / latencies.len() as u64 };
    Ok((mean, latencies.iter().copied().max().unwrap_or(0), everywhere, count, start.elapsed()))
}
