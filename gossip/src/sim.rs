//! Running gossip cores on the transport's deterministic simulator.
//!
//! [`SimGossipNode`] adapts a [`GossipCore`] to [`SimNode`]; [`formed_cluster`]
//! builds `n` nodes that already know each other (as after a join), so
//! simulations of thousands of nodes start without join traffic;
//! [`dissemination_cluster`] shares one preloaded peer list among all nodes
//! so that 10,000 fit in memory. The
//! measurement functions ([`spread_rounds`], [`detection_ms`],
//! [`steady_state_bytes_per_second`]) are shared by tests and benchmarks.

use crate::config::{GossipConfig, Mode};
use crate::core::{Event, GossipCore};
use crate::state::Operation;
use crate::wire::{MemberMeta, MemberStatus, MemberUpdate, Message};
use concord_transport::sim::{Outbox, SimConfig, SimNode, Simulation, Time};
use concord_transport::NodeId;
use crdts::Dot;
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::sync::Arc;

/// A gossip core as a simulated node. Events are kept until the harness takes them.
///
/// Gossip state is soft: a crash loses all of it. On restart the node comes
/// back as a new, empty core (incarnation 0, a fresh seeded RNG) and joins
/// through `rejoin_seeds`; its state returns by anti-entropy, and its old
/// incarnation by the refutation of what the cluster says of it.
pub struct SimGossipNode {
    /// The core.
    pub core: GossipCore,
    /// Events not yet taken by the harness, with their virtual time.
    pub events: Vec<(Time, Event)>,
    /// Whether to keep events (large runs turn it off to save memory).
    pub keep_events: bool,
    /// Members to join through after a restart.
    pub rejoin_seeds: Vec<NodeId>,
    restarts: u64,
}

impl SimGossipNode {
    /// Wraps a core.
    pub fn new(core: GossipCore) -> SimGossipNode {
        SimGossipNode { core, events: Vec::new(), keep_events: true, rejoin_seeds: Vec::new(), restarts: 0 }
    }

    fn flush(&mut self, now: Time, out: &mut Outbox<Message>) {
        let output = self.core.take_output();
        for (to, message) in output.messages {
            out.send(to, message);
        }
        if self.keep_events {
            self.events.extend(output.events.into_iter().map(|e| (now, e)));
        }
    }

    /// Runs `f` on the core and sends what it produced.
    pub fn with_core<R>(
        &mut self,
        now: Time,
        out: &mut Outbox<Message>,
        f: impl FnOnce(&mut GossipCore) -> R,
    ) -> R {
        let result = f(&mut self.core);
        self.flush(now, out);
        result
    }
}

impl SimNode for SimGossipNode {
    type Message = Message;

    fn tick(&mut self, now: Time, out: &mut Outbox<Message>) {
        self.core.tick();
        self.flush(now, out);
    }

    fn receive(&mut self, now: Time, from: NodeId, message: Message, out: &mut Outbox<Message>) {
        self.core.receive(from, message);
        self.flush(now, out);
    }

    fn crash(&mut self) {
        self.restarts += 1;
        let id = self.core.id();
        let rng = StdRng::seed_from_u64(id.0.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ self.restarts);
        self.core = GossipCore::new(id, self.core.me().meta.clone(), self.core.config().clone(), rng);
    }

    fn restart(&mut self, now: Time, out: &mut Outbox<Message>) {
        let seeds = self.rejoin_seeds.clone();
        self.with_core(now, out, |core| core.join(&seeds));
    }
}

/// The member update of node `id` alive at incarnation 0.
pub fn alive(id: NodeId) -> MemberUpdate {
    MemberUpdate { node: id, incarnation: 0, status: MemberStatus::Alive, meta: MemberMeta::default() }
}

/// `n` nodes with ids `1..=n` that all know each other, each core seeded
/// from `seed` and its id.
pub fn formed_cluster(n: u64, config: &GossipConfig, seed: u64) -> Vec<(NodeId, SimGossipNode)> {
    (1..=n)
        .map(|i| {
            let id = NodeId(i);
            let rng = StdRng::seed_from_u64(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ i);
            let mut core = GossipCore::new(id, MemberMeta::default(), config.clone(), rng);
            core.add_members((1..=n).filter(|j| *j != i).map(|j| alive(NodeId(j))));
            core.take_output();
            (id, SimGossipNode::new(core))
        })
        .collect()
}

/// `n` dissemination-only nodes with ids `1..=n` sharing one preloaded
/// peer list ([`GossipCore::with_shared_peers`]): memory grows linearly
/// with `n` (a few KiB per node) instead of quadratically, at the price of
/// no failure detection.
pub fn dissemination_cluster(n: u64, config: &GossipConfig, seed: u64) -> Vec<(NodeId, SimGossipNode)> {
    let peers: Arc<[NodeId]> = (1..=n).map(NodeId).collect();
    (1..=n)
        .map(|i| {
            let id = NodeId(i);
            let rng = StdRng::seed_from_u64(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ i);
            let core = GossipCore::with_shared_peers(
                id,
                MemberMeta::default(),
                config.clone(),
                rng,
                Arc::clone(&peers),
            );
            let mut node = SimGossipNode::new(core);
            node.keep_events = false;
            (id, node)
        })
        .collect()
}

/// Above this many nodes, [`spread_rounds`] runs a [`dissemination_cluster`]:
/// 3,000 full member lists take about 1 GB, 10,000 about 11 GB.
pub const FULL_MEMBER_LISTS_NODES_MAX: u64 = 3_000;

/// Virtual milliseconds per tick in the measurements below.
pub const TICK_MS: u64 = 100;

/// A formed cluster of `n` nodes on `network`, events not kept.
pub fn simulation(n: u64, config: &GossipConfig, seed: u64, network: SimConfig) -> Simulation<SimGossipNode> {
    let mut nodes = formed_cluster(n, config, seed);
    for (_, node) in nodes.iter_mut() {
        node.keep_events = false;
    }
    Simulation::new(seed, network, TICK_MS, nodes)
}

/// Live nodes holding update `dot` of `key`.
pub fn holders(sim: &Simulation<SimGossipNode>, key: &str, dot: &Dot<NodeId>) -> usize {
    sim.nodes()
        .iter()
        .filter(|(id, _)| !sim.network_ref().is_crashed(**id))
        .filter(|(_, node)| node.core.store().has_update(key, dot))
        .count()
}

/// Rounds one update took to reach 95% and all nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Spread {
    /// Rounds until at least 95% held it.
    pub to_threshold: Option<u64>,
    /// Rounds until every node held it.
    pub to_all: Option<u64>,
}

/// Writes one update at node 1 of a formed cluster of `n` and counts the
/// gossip rounds (ticks) until 95% and all nodes hold it, up to `rounds_max`.
/// Anti-entropy is pushed out of the window, so this measures rumors alone.
/// Above [`FULL_MEMBER_LISTS_NODES_MAX`] nodes the cluster is a
/// [`dissemination_cluster`] (same rumors, no member lists).
pub fn spread_rounds(mode: Mode, n: u64, seed: u64, rounds_max: u64) -> Result<Spread, String> {
    let config = GossipConfig { mode, anti_entropy_interval_ticks: 1_000_000, ..GossipConfig::default() };
    let mut sim = if n > FULL_MEMBER_LISTS_NODES_MAX {
        Simulation::new(seed, SimConfig::default(), TICK_MS, dissemination_cluster(n, &config, seed))
    } else {
        simulation(n, &config, seed, SimConfig::default())
    };
    let dot = sim
        .with_node(NodeId(1), |node, now, out| {
            node.with_core(now, out, |core| {
                core.update("k", Operation::Assign { value: b"v".to_vec(), timestamp: 1 })
            })
        })
        .ok_or("node 1 is down")?
        .map_err(|e| e.to_string())?;
    let mut spread = Spread { to_threshold: None, to_all: None };
    for round in 1..=rounds_max {
        // The round's tick is at round * TICK_MS; its messages land within 5 ms.
        sim.run_until(round * TICK_MS + TICK_MS / 2, |_| Ok(()))?;
        let have = holders(&sim, "k", &dot) as u64;
        if spread.to_threshold.is_none() && have * 100 >= n * 95 {
            spread.to_threshold = Some(round);
        }
        if have == n {
            spread.to_all = Some(round);
            break;
        }
    }
    Ok(spread)
}

/// Crashes one node of a formed, warmed-up cluster of `n` and returns the
/// virtual milliseconds until the first and until every live node holds it dead.
pub fn detection_ms(n: u64, seed: u64, network: SimConfig, deadline_ms: u64) -> Result<(u64, u64), String> {
    let mut sim = simulation(n, &GossipConfig::default(), seed, network);
    sim.run_until(2_000, |_| Ok(()))?;
    let victim = NodeId(1 + seed % n);
    let crashed_at = sim.now();
    sim.crash(victim);
    let mut first_at = None;
    let all_at = sim.run_until_condition(
        crashed_at + deadline_ms,
        |_| Ok(()),
        |sim| {
            let seen = sim
                .nodes()
                .iter()
                .filter(|(id, node)| **id != victim && node.core.membership().holds_dead(victim))
                .count();
            if seen > 0 && first_at.is_none() {
                first_at = Some(sim.now());
            }
            seen as u64 == n - 1
        },
    )?;
    Ok((first_at.unwrap_or(all_at) - crashed_at, all_at - crashed_at))
}

/// Bytes a node sends per second at steady state (no updates), averaged
/// over `ticks` ticks after a warm-up, in a formed cluster of `n`.
pub fn steady_state_bytes_per_second(n: u64, seed: u64, ticks: u64) -> Result<f64, String> {
    let mut sim = simulation(n, &GossipConfig::default(), seed, SimConfig::default());
    sim.run_until(50 * TICK_MS, |_| Ok(()))?;
    let sent = |sim: &Simulation<SimGossipNode>| {
        sim.nodes().values().map(|n| n.core.metrics().bytes_sent).sum::<u64>()
    };
    let before = sent(&sim);
    sim.run_for(ticks * TICK_MS, |_| Ok(()))?;
    let seconds = (ticks * TICK_MS) as f64 / 1_000.0;
    Ok((sent(&sim) - before) as f64 / n as f64 / seconds)
}

/// The median of `values` (the lower middle for even counts); 0 if empty.
pub fn median(values: &[u64]) -> u64 {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    sorted.get(sorted.len().saturating_sub(1) / 2).copied().unwrap_or(0)
}
