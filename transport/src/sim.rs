//! A deterministic simulated network and clock for the pure protocol cores.
//!
//! Everything is driven by one seed: message delays, drops, duplicates and
//! the order of events. Time is virtual milliseconds; nothing here reads a
//! clock or touches a socket, so thousands of steps run per millisecond of
//! real time and the same seed always gives the same [trace](SimNetwork::trace_digest).
//!
//! Two layers:
//! - [`SimNetwork`]: messages in flight between nodes, with faults,
//!   partitions, crash and restart. A protocol's test harness can drive it
//!   directly.
//! - [`Simulation`]: a driver for nodes implementing [`SimNode`] that ticks
//!   every live node each `tick_ms`, delivers messages in time order, and runs
//!   an invariant check after every step.
//!
//! [`run_seeds`] runs a test body over many seeds, prints the seed of a
//! failure and the command that replays it.

use crate::ids::NodeId;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};
use std::fmt::Debug;

/// Virtual time in milliseconds.
pub type Time = u64;

/// The faults of a simulated network.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SimConfig {
    /// Smallest one-way delay.
    pub delay_min_ms: u64,
    /// Largest one-way delay (uniform in between: this alone reorders).
    pub delay_max_ms: u64,
    /// Probability that a message is lost.
    pub drop_rate: f64,
    /// Probability that a message is delivered twice (the copy at its own delay).
    pub duplicate_rate: f64,
    /// Bound on messages in flight; past it, new messages are dropped and counted.
    pub in_flight_max: usize,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            delay_min_ms: 1,
            delay_max_ms: 5,
            drop_rate: 0.0,
            duplicate_rate: 0.0,
            in_flight_max: IN_FLIGHT_MAX_DEFAULT,
        }
    }
}

/// Default bound on messages in flight in a [`SimNetwork`].
pub const IN_FLIGHT_MAX_DEFAULT: usize = 1_000_000;

/// A message handed out by the network.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivery<M> {
    /// Virtual time of delivery.
    pub at: Time,
    /// Sender.
    pub from: NodeId,
    /// Addressee.
    pub to: NodeId,
    /// The message.
    pub message: M,
}

/// Counters of a simulated network.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Messages handed to `send`.
    pub sent: u64,
    /// Messages delivered.
    pub delivered: u64,
    /// Messages lost to the drop rate.
    pub dropped_random: u64,
    /// Messages lost to a partition (at send or delivery time).
    pub dropped_partition: u64,
    /// Messages lost because their sender or addressee was crashed.
    pub dropped_crashed: u64,
    /// Messages lost to the in-flight bound.
    pub dropped_overflow: u64,
    /// Extra copies made by the duplicate rate.
    pub duplicated: u64,
}

struct InFlight<M> {
    from: NodeId,
    to: NodeId,
    message: M,
}

/// A seeded network of messages in flight between simulated nodes.
pub struct SimNetwork<M> {
    config: SimConfig,
    now: Time,
    rng: StdRng,
    next_seq: u64,
    queue: BinaryHeap<Reverse<(Time, u64)>>,
    in_flight: HashMap<u64, InFlight<M>>,
    blocked: BTreeSet<(NodeId, NodeId)>,
    crashed: BTreeSet<NodeId>,
    digest: u64,
    stats: SimStats,
}

const TRACE_SEND: u64 = 1;
const TRACE_DELIVER: u64 = 2;
const TRACE_DROP: u64 = 3;
const TRACE_NOTE: u64 = 4;

impl<M: Clone> SimNetwork<M> {
    /// An empty network at time 0 whose randomness all comes from `seed`.
    pub fn new(seed: u64, config: SimConfig) -> SimNetwork<M> {
        assert!(config.delay_min_ms <= config.delay_max_ms, "delay_min_ms > delay_max_ms");
        SimNetwork {
            config,
            now: 0,
            rng: StdRng::seed_from_u64(seed),
            next_seq: 0,
            queue: BinaryHeap::new(),
            in_flight: HashMap::new(),
            blocked: BTreeSet::new(),
            crashed: BTreeSet::new(),
            digest: 0xcbf2_9ce4_8422_2325 ^ seed,
            stats: SimStats::default(),
        }
    }

    /// The current virtual time.
    pub fn now(&self) -> Time {
        self.now
    }

    /// The network's generator, for the harness's own random choices (which
    /// node to crash, what a client writes), so one seed drives everything.
    pub fn rng(&mut self) -> &mut StdRng {
        &mut self.rng
    }

    /// The fault configuration.
    pub fn config(&self) -> SimConfig {
        self.config
    }

    /// Replaces the fault configuration (e.g. to stop drops before checking liveness).
    pub fn set_config(&mut self, config: SimConfig) {
        assert!(config.delay_min_ms <= config.delay_max_ms, "delay_min_ms > delay_max_ms");
        self.config = config;
    }

    /// Counters so far.
    pub fn stats(&self) -> SimStats {
        self.stats
    }

    /// Messages currently in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    fn trace(&mut self, kind: u64, a: u64, b: u64) {
        for word in [kind, self.now, a, b] {
            self.digest = (self.digest ^ word).wrapping_mul(0x0000_0100_0000_01b3);
            self.digest ^= self.digest >> 29;
        }
    }

    /// Mixes a harness observation (say, a hash of a node's state) into the trace.
    pub fn trace_note(&mut self, value: u64) {
        self.trace(TRACE_NOTE, value, 0);
    }

    /// A digest of every send, delivery, drop and note so far. Equal seeds and
    /// equal inputs give equal digests.
    pub fn trace_digest(&self) -> u64 {
        self.digest
    }

    /// Sends `message`; it will be delivered after a random delay unless a
    /// fault, a partition or a crash takes it.
    pub fn send(&mut self, from: NodeId, to: NodeId, message: M) {
        self.stats.sent += 1;
        self.trace(TRACE_SEND, from.0, to.0);
        if self.crashed.contains(&from) || self.crashed.contains(&to) {
            self.stats.dropped_crashed += 1;
            self.trace(TRACE_DROP, from.0, to.0);
            return;
        }
        if self.blocked.contains(&(from, to)) {
            self.stats.dropped_partition += 1;
            self.trace(TRACE_DROP, from.0, to.0);
            return;
        }
        if self.config.drop_rate > 0.0 && self.rng.random_bool(self.config.drop_rate.min(1.0)) {
            self.stats.dropped_random += 1;
            self.trace(TRACE_DROP, from.0, to.0);
            return;
        }
        let copies = if self.config.duplicate_rate > 0.0
            && self.rng.random_bool(self.config.duplicate_rate.min(1.0))
        {
            self.stats.duplicated += 1;
            2
        } else {
            1
        };
        for _ in 0..copies {
            if self.in_flight.len() >= self.config.in_flight_max {
                self.stats.dropped_overflow += 1;
                self.trace(TRACE_DROP, from.0, to.0);
                continue;
            }
            let delay = self.rng.random_range(self.config.delay_min_ms..=self.config.delay_max_ms);
            let seq = self.next_seq;
            self.next_seq += 1;
            self.queue.push(Reverse((self.now + delay, seq)));
            self.in_flight.insert(seq, InFlight { from, to, message: message.clone() });
        }
    }

    /// The time of the earliest message in flight.
    pub fn next_delivery_time(&self) -> Option<Time> {
        self.queue.peek().map(|Reverse((at, _))| *at)
    }

    /// Advances the clock to `time` (never backwards) without delivering.
    pub fn advance_to(&mut self, time: Time) {
        self.now = self.now.max(time);
    }

    /// Takes the earliest message due at or before `until`, advancing the
    /// clock to its time. Messages cut by a partition or crash while in
    /// flight are dropped on the way.
    pub fn pop_due(&mut self, until: Time) -> Option<Delivery<M>> {
        while let Some(&Reverse((at, seq))) = self.queue.peek() {
            if at > until {
                return None;
            }
            self.queue.pop();
            self.now = self.now.max(at);
            let Some(flight) = self.in_flight.remove(&seq) else { continue };
            if self.crashed.contains(&flight.to) {
                self.stats.dropped_crashed += 1;
                self.trace(TRACE_DROP, flight.from.0, flight.to.0);
                continue;
            }
            if self.blocked.contains(&(flight.from, flight.to)) {
                self.stats.dropped_partition += 1;
                self.trace(TRACE_DROP, flight.from.0, flight.to.0);
                continue;
            }
            self.stats.delivered += 1;
            self.trace(TRACE_DELIVER, flight.from.0, flight.to.0);
            return Some(Delivery { at, from: flight.from, to: flight.to, message: flight.message });
        }
        None
    }

    /// Cuts every link between a node of `a` and a node of `b`, both ways.
    pub fn partition(&mut self, a: &[NodeId], b: &[NodeId]) {
        for &x in a {
            for &y in b {
                self.blocked.insert((x, y));
                self.blocked.insert((y, x));
            }
        }
    }

    /// Cuts the link from `from` to `to` only.
    pub fn partition_one_way(&mut self, from: NodeId, to: NodeId) {
        self.blocked.insert((from, to));
    }

    /// Isolates `node` from every node in `others`, both ways.
    pub fn isolate(&mut self, node: NodeId, others: &[NodeId]) {
        self.partition(&[node], others);
    }

    /// Restores every link.
    pub fn heal(&mut self) {
        self.blocked.clear();
    }

    /// Whether the link from `from` to `to` is cut.
    pub fn is_blocked(&self, from: NodeId, to: NodeId) -> bool {
        self.blocked.contains(&(from, to))
    }

    /// Whether `from` can currently reach `to`.
    pub fn can_reach(&self, from: NodeId, to: NodeId) -> bool {
        !self.blocked.contains(&(from, to)) && !self.crashed.contains(&from) && !self.crashed.contains(&to)
    }

    /// Marks `node` crashed: it sends and receives nothing until restarted;
    /// messages in flight to it are lost.
    pub fn crash(&mut self, node: NodeId) {
        self.crashed.insert(node);
    }

    /// Marks `node` running again.
    pub fn restart(&mut self, node: NodeId) {
        self.crashed.remove(&node);
    }

    /// Whether `node` is crashed.
    pub fn is_crashed(&self, node: NodeId) -> bool {
        self.crashed.contains(&node)
    }
}

/// Where a [`SimNode`] puts the messages it sends.
#[derive(Debug)]
pub struct Outbox<M> {
    messages: Vec<(NodeId, M)>,
}

impl<M> Default for Outbox<M> {
    fn default() -> Self {
        Outbox { messages: Vec::new() }
    }
}

impl<M> Outbox<M> {
    /// Sends `message` to `to`.
    pub fn send(&mut self, to: NodeId, message: M) {
        self.messages.push((to, message));
    }

    /// Takes every message queued so far.
    pub fn drain(&mut self) -> std::vec::Drain<'_, (NodeId, M)> {
        self.messages.drain(..)
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }
}

/// A node run by [`Simulation`]: usually a thin adapter around a protocol's
/// pure core that also keeps its simulated durable storage.
pub trait SimNode {
    /// The messages nodes exchange.
    type Message: Clone + Debug;

    /// One tick of the node's logical clock.
    fn tick(&mut self, now: Time, out: &mut Outbox<Self::Message>);

    /// A message from `from`.
    fn receive(&mut self, now: Time, from: NodeId, message: Self::Message, out: &mut Outbox<Self::Message>);

    /// The node crashes: it must forget everything that is not durable.
    fn crash(&mut self) {}

    /// The node restarts from its durable state.
    fn restart(&mut self, _now: Time, _out: &mut Outbox<Self::Message>) {}
}

/// What one [`Simulation::step`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Every live node ticked at this time.
    Tick(Time),
    /// A message was delivered.
    Delivered {
        /// Time of delivery.
        at: Time,
        /// Sender.
        from: NodeId,
        /// Addressee.
        to: NodeId,
    },
}

/// Runs [`SimNode`]s over a [`SimNetwork`] in virtual time.
///
/// Events happen in a fixed order: at equal times, deliveries come before the
/// tick, nodes tick in id order, and messages are sent in the order nodes put
/// them in their outbox. So one seed gives one run.
pub struct Simulation<N: SimNode> {
    network: SimNetwork<N::Message>,
    nodes: BTreeMap<NodeId, N>,
    tick_ms: u64,
    next_tick: Time,
    outbox: Outbox<N::Message>,
    steps: u64,
}

impl<N: SimNode> Simulation<N> {
    /// A simulation of `nodes` ticking every `tick_ms` virtual milliseconds.
    pub fn new(
        seed: u64,
        config: SimConfig,
        tick_ms: u64,
        nodes: impl IntoIterator<Item = (NodeId, N)>,
    ) -> Self {
        assert!(tick_ms > 0, "tick_ms must be positive");
        Simulation {
            network: SimNetwork::new(seed, config),
            nodes: nodes.into_iter().collect(),
            tick_ms,
            next_tick: tick_ms,
            outbox: Outbox::default(),
            steps: 0,
        }
    }

    /// The current virtual time.
    pub fn now(&self) -> Time {
        self.network.now()
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// The network, to inject faults or draw random numbers.
    pub fn network(&mut self) -> &mut SimNetwork<N::Message> {
        &mut self.network
    }

    /// The network, read-only.
    pub fn network_ref(&self) -> &SimNetwork<N::Message> {
        &self.network
    }

    /// All nodes, crashed ones included, by id.
    pub fn nodes(&self) -> &BTreeMap<NodeId, N> {
        &self.nodes
    }

    /// One node.
    pub fn node(&self, id: NodeId) -> Option<&N> {
        self.nodes.get(&id)
    }

    /// One node, to drive it from the test (a client proposal, say). Messages
    /// it should send go through [`Simulation::with_node`] instead.
    pub fn node_mut(&mut self, id: NodeId) -> Option<&mut N> {
        self.nodes.get_mut(&id)
    }

    /// Runs `f` on a live node with an outbox whose messages are then sent.
    /// Returns `None` if the node is unknown or crashed.
    pub fn with_node<R>(
        &mut self,
        id: NodeId,
        f: impl FnOnce(&mut N, Time, &mut Outbox<N::Message>) -> R,
    ) -> Option<R> {
        if self.network.is_crashed(id) {
            return None;
        }
        let now = self.network.now();
        let node = self.nodes.get_mut(&id)?;
        let result = f(node, now, &mut self.outbox);
        self.flush(id);
        Some(result)
    }

    /// Adds a node (a new member) at the current time.
    pub fn add_node(&mut self, id: NodeId, node: N) {
        self.nodes.insert(id, node);
    }

    /// Crashes a node: volatile state lost, messages to it dropped.
    pub fn crash(&mut self, id: NodeId) {
        if let Some(node) = self.nodes.get_mut(&id) {
            node.crash();
            self.network.crash(id);
        }
    }

    /// Restarts a crashed node from its durable state.
    pub fn restart(&mut self, id: NodeId) {
        if !self.network.is_crashed(id) {
            return;
        }
        self.network.restart(id);
        let now = self.network.now();
        if let Some(node) = self.nodes.get_mut(&id) {
            node.restart(now, &mut self.outbox);
            self.flush(id);
        }
    }

    fn flush(&mut self, from: NodeId) {
        let messages: Vec<_> = self.outbox.drain().collect();
        for (to, message) in messages {
            self.network.send(from, to, message);
        }
    }

    /// Takes the next event: a delivery due no later than the next tick, or
    /// else the tick itself.
    pub fn step(&mut self) -> Step {
        self.steps += 1;
        if let Some(delivery) = self.network.pop_due(self.next_tick) {
            let now = delivery.at;
            if let Some(node) = self.nodes.get_mut(&delivery.to) {
                node.receive(now, delivery.from, delivery.message, &mut self.outbox);
                self.flush(delivery.to);
            }
            return Step::Delivered { at: now, from: delivery.from, to: delivery.to };
        }
        let now = self.next_tick;
        self.network.advance_to(now);
        self.next_tick += self.tick_ms;
        let live: Vec<NodeId> =
            self.nodes.keys().copied().filter(|id| !self.network.is_crashed(*id)).collect();
        for id in live {
            if let Some(node) = self.nodes.get_mut(&id) {
                node.tick(now, &mut self.outbox);
                self.flush(id);
            }
        }
        Step::Tick(now)
    }

    /// Steps until virtual time reaches `deadline`, calling `check` after
    /// every step; stops at the first error, which names the time and step.
    pub fn run_until(
        &mut self,
        deadline: Time,
        mut check: impl FnMut(&Self) -> Result<(), String>,
    ) -> Result<(), String> {
        while self.now() < deadline {
            self.step();
            check(self).map_err(|e| format!("at t={}ms step {}: {e}", self.now(), self.steps))?;
        }
        Ok(())
    }

    /// Runs for `duration_ms` more virtual milliseconds, checking after every step.
    pub fn run_for(
        &mut self,
        duration_ms: u64,
        check: impl FnMut(&Self) -> Result<(), String>,
    ) -> Result<(), String> {
        let deadline = self.now() + duration_ms;
        self.run_until(deadline, check)
    }

    /// Steps until `condition` holds or `deadline` passes, checking after
    /// every step. Returns the time the condition first held.
    pub fn run_until_condition(
        &mut self,
        deadline: Time,
        mut check: impl FnMut(&Self) -> Result<(), String>,
        mut condition: impl FnMut(&Self) -> bool,
    ) -> Result<Time, String> {
        loop {
            if condition(self) {
                return Ok(self.now());
            }
            if self.now() >= deadline {
                return Err(format!("condition not reached by t={deadline}ms"));
            }
            self.step();
            check(self).map_err(|e| format!("at t={}ms step {}: {e}", self.now(), self.steps))?;
        }
    }
}

/// Environment variable: how many seeds [`run_seeds`] runs.
pub const SEEDS_ENV: &str = "CONCORD_SIM_SEEDS";
/// Environment variable: run exactly this one seed (a replay).
pub const SEED_ENV: &str = "CONCORD_SIM_SEED";

/// The seeds a simulation test should run: the one in `CONCORD_SIM_SEED` if
/// set (a replay), else `0..n` with `n` from `CONCORD_SIM_SEEDS` or `default_count`.
pub fn seeds(default_count: u64) -> Vec<u64> {
    if let Some(seed) = std::env::var(SEED_ENV).ok().and_then(|v| v.trim().parse().ok()) {
        return vec![seed];
    }
    let count = std::env::var(SEEDS_ENV).ok().and_then(|v| v.trim().parse().ok()).unwrap_or(default_count);
    (0..count).collect()
}

/// Runs `body` once per seed of [`seeds`]. A failure (an `Err` or a panic)
/// prints the seed and the command that replays it, then fails the test.
pub fn run_seeds(test_name: &str, default_count: u64, mut body: impl FnMut(u64) -> Result<(), String>) {
    for seed in seeds(default_count) {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(seed)));
        let failure = match outcome {
            Ok(Ok(())) => continue,
            Ok(Err(message)) => message,
            Err(panic) => panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panic".to_string()),
        };
        panic!(
            "simulation {test_name} failed with seed {seed}: {failure}\n\
             replay: {SEED_ENV}={seed} cargo test {test_name} -- --nocapture"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each node forwards a counter to a random peer: enough traffic to make
    /// traces depend on every random choice.
    #[derive(Debug)]
    struct Relay {
        id: NodeId,
        peers: Vec<NodeId>,
        received: Vec<(NodeId, u64)>,
        counter: u64,
    }

    impl SimNode for Relay {
        type Message = u64;

        fn tick(&mut self, _now: Time, out: &mut Outbox<u64>) {
            self.counter += 1;
            for &peer in &self.peers {
                if peer != self.id {
                    out.send(peer, self.counter);
                }
            }
        }

        fn receive(&mut self, _now: Time, from: NodeId, message: u64, _out: &mut Outbox<u64>) {
            self.received.push((from, message));
        }

        fn crash(&mut self) {
            self.received.clear();
        }
    }

    fn cluster(seed: u64, config: SimConfig) -> Simulation<Relay> {
        let ids: Vec<NodeId> = (1..=4).map(NodeId).collect();
        let nodes =
            ids.iter().map(|&id| (id, Relay { id, peers: ids.clone(), received: Vec::new(), counter: 0 }));
        Simulation::new(seed, config, 10, nodes)
    }

    fn lossy() -> SimConfig {
        SimConfig {
            delay_min_ms: 1,
            delay_max_ms: 30,
            drop_rate: 0.2,
            duplicate_rate: 0.1,
            ..SimConfig::default()
        }
    }

    #[test]
    fn equal_seeds_give_equal_traces() {
        let mut a = cluster(42, lossy());
        let mut b = cluster(42, lossy());
        a.run_until(2_000, |_| Ok(())).unwrap();
        b.run_until(2_000, |_| Ok(())).unwrap();
        assert_eq!(a.network_ref().trace_digest(), b.network_ref().trace_digest());
        assert_eq!(a.network_ref().stats(), b.network_ref().stats());
        for id in (1..=4).map(NodeId) {
            assert_eq!(a.node(id).unwrap().received, b.node(id).unwrap().received);
        }
        let mut c = cluster(43, lossy());
        c.run_until(2_000, |_| Ok(())).unwrap();
        assert_ne!(a.network_ref().trace_digest(), c.network_ref().trace_digest());
    }

    #[test]
    fn faults_drop_duplicate_and_reorder() {
        let mut sim = cluster(7, lossy());
        sim.run_until(5_000, |_| Ok(())).unwrap();
        let stats = sim.network_ref().stats();
        assert!(stats.dropped_random > 0 && stats.duplicated > 0, "{stats:?}");
        let received = &sim.node(NodeId(1)).unwrap().received;
        let from_two: Vec<u64> = received.iter().filter(|(f, _)| *f == NodeId(2)).map(|(_, m)| *m).collect();
        assert!(from_two.windows(2).any(|w| w[0] > w[1]), "delays up to 30ms over 10ms ticks reorder");
    }

    #[test]
    fn partition_blocks_exactly_the_cut_links_and_heal_restores_them() {
        let mut sim = cluster(1, SimConfig::default());
        let (left, right) = ([NodeId(1), NodeId(2)], [NodeId(3), NodeId(4)]);
        sim.network().partition(&left, &right);
        sim.run_until(1_000, |_| Ok(())).unwrap();
        let senders = |sim: &Simulation<Relay>, id: u64| -> BTreeSet<NodeId> {
            sim.node(NodeId(id)).unwrap().received.iter().map(|(f, _)| *f).collect()
        };
        assert_eq!(senders(&sim, 1), BTreeSet::from([NodeId(2)]));
        assert_eq!(senders(&sim, 3), BTreeSet::from([NodeId(4)]));
        for id in 1..=4 {
            sim.node_mut(NodeId(id)).unwrap().received.clear();
        }
        sim.network().heal();
        sim.run_for(1_000, |_| Ok(())).unwrap();
        for id in 1..=4u64 {
            let expected: BTreeSet<NodeId> = (1..=4).filter(|&p| p != id).map(NodeId).collect();
            assert_eq!(senders(&sim, id), expected, "node {id} hears everyone after heal");
        }
    }

    #[test]
    fn one_way_partition_cuts_one_direction() {
        let mut sim = cluster(1, SimConfig::default());
        sim.network().partition_one_way(NodeId(1), NodeId(2));
        sim.run_until(500, |_| Ok(())).unwrap();
        let heard = |sim: &Simulation<Relay>, at: u64, from: u64| {
            sim.node(NodeId(at)).unwrap().received.iter().any(|(f, _)| *f == NodeId(from))
        };
        assert!(!heard(&sim, 2, 1));
        assert!(heard(&sim, 1, 2));
    }

    #[test]
    fn crashed_nodes_neither_tick_nor_receive_until_restart() {
        let mut sim = cluster(3, SimConfig::default());
        sim.run_until(200, |_| Ok(())).unwrap();
        sim.crash(NodeId(4));
        let counter = sim.node(NodeId(4)).unwrap().counter;
        sim.run_for(500, |_| Ok(())).unwrap();
        assert_eq!(sim.node(NodeId(4)).unwrap().counter, counter);
        assert!(sim.node(NodeId(4)).unwrap().received.is_empty());
        assert!(!sim.node(NodeId(1)).unwrap().received.iter().any(|(f, m)| *f == NodeId(4) && *m > counter));
        sim.restart(NodeId(4));
        sim.run_for(500, |_| Ok(())).unwrap();
        assert!(sim.node(NodeId(4)).unwrap().counter > counter);
        assert!(!sim.node(NodeId(4)).unwrap().received.is_empty());
    }

    #[test]
    fn check_failure_names_time_and_step() {
        let mut sim = cluster(1, SimConfig::default());
        let err =
            sim.run_until(1_000, |s| if s.now() >= 100 { Err("boom".into()) } else { Ok(()) }).unwrap_err();
        assert!(err.starts_with("at t=100ms step "), "{err}");
        assert!(err.ends_with("boom"));
    }

    #[test]
    fn run_seeds_reports_the_failing_seed() {
        let result = std::panic::catch_unwind(|| {
            run_seeds("demo", 5, |seed| if seed == 3 { Err("bad".into()) } else { Ok(()) })
        });
        let panic = result.unwrap_err();
        let message = panic.downcast_ref::<String>().unwrap();
        assert!(message.contains("seed 3"), "{message}");
        assert!(message.contains("CONCORD_SIM_SEED=3"), "{message}");
    }
}
