//! Fault injection over any [`Transport`], for tests: drop, delay with jitter,
//! duplication, reordering, and symmetric or one-way partitions that can be
//! healed. One [`Faults`] is shared by every node of a test so that a partition
//! cuts both directions at once.

use crate::envelope::{Channel, Envelope};
use crate::error::SendError;
use crate::ids::NodeId;
use crate::transport::{Inbound, PeerDown, Transport, TransportStats};
use actix::Recipient;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Probabilities and delays applied to every envelope.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct FaultConfig {
    /// Probability that an envelope is lost.
    pub drop_rate: f64,
    /// Probability that an envelope is delivered twice.
    pub duplicate_rate: f64,
    /// Smallest added delay.
    pub delay_min: Duration,
    /// Largest added delay; the delay is uniform in `[delay_min, delay_max]`.
    pub delay_max: Duration,
    /// Probability that an envelope is held back by an extra `delay_max`, so
    /// that later envelopes overtake it.
    pub reorder_rate: f64,
}

#[derive(Debug)]
struct FaultState {
    config: FaultConfig,
    blocked: BTreeSet<(NodeId, NodeId)>,
    rng: StdRng,
    dropped: u64,
}

/// Faults shared by the nodes of one test.
#[derive(Clone, Debug)]
pub struct Faults {
    state: Arc<Mutex<FaultState>>,
}

/// What happens to one envelope.
enum Fate {
    Drop,
    Deliver { copies: usize, delay: Duration },
}

impl Faults {
    /// Faults drawn from a seeded generator.
    pub fn new(seed: u64, config: FaultConfig) -> Faults {
        let state =
            FaultState { config, blocked: BTreeSet::new(), rng: StdRng::seed_from_u64(seed), dropped: 0 };
        Faults { state: Arc::new(Mutex::new(state)) }
    }

    fn lock(&self) -> MutexGuard<'_, FaultState> {
        // A test that panicked while holding the lock leaves valid state.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Replaces the probabilities and delays.
    pub fn set_config(&self, config: FaultConfig) {
        self.lock().config = config;
    }

    /// Cuts every link between a node of `a` and a node of `b`, both ways.
    pub fn partition(&self, a: &[NodeId], b: &[NodeId]) {
        let mut state = self.lock();
        for &x in a {
            for &y in b {
                state.blocked.insert((x, y));
                state.blocked.insert((y, x));
            }
        }
    }

    /// Cuts the link from `from` to `to` only.
    pub fn partition_one_way(&self, from: NodeId, to: NodeId) {
        self.lock().blocked.insert((from, to));
    }

    /// Restores every link.
    pub fn heal(&self) {
        self.lock().blocked.clear();
    }

    /// Whether the link from `from` to `to` is cut.
    pub fn is_blocked(&self, from: NodeId, to: NodeId) -> bool {
        self.lock().blocked.contains(&(from, to))
    }

    /// Envelopes dropped by faults or partitions so far.
    pub fn dropped(&self) -> u64 {
        self.lock().dropped
    }

    fn fate(&self, from: NodeId, to: NodeId) -> Fate {
        let mut state = self.lock();
        let config = state.config;
        if state.blocked.contains(&(from, to)) || state.rng.random_bool(config.drop_rate.clamp(0.0, 1.0)) {
            state.dropped += 1;
            return Fate::Drop;
        }
        let copies = if state.rng.random_bool(config.duplicate_rate.clamp(0.0, 1.0)) { 2 } else { 1 };
        let mut delay = if config.delay_max > config.delay_min {
            state.rng.random_range(config.delay_min..=config.delay_max)
        } else {
            config.delay_min
        };
        if state.rng.random_bool(config.reorder_rate.clamp(0.0, 1.0)) {
            delay += config.delay_max.max(Duration::from_millis(1));
        }
        Fate::Deliver { copies, delay }
    }

    /// Wraps a node's transport so that its outgoing envelopes suffer these faults.
    pub fn wrap<T: Transport>(&self, inner: T) -> FaultyTransport<T> {
        FaultyTransport { inner: Arc::new(inner), faults: self.clone() }
    }
}

/// A transport whose outgoing envelopes pass through [`Faults`].
///
/// Delayed envelopes are sent from a timer on the current tokio runtime; with
/// no runtime around, they go at once.
#[derive(Debug)]
pub struct FaultyTransport<T> {
    inner: Arc<T>,
    faults: Faults,
}

impl<T> Clone for FaultyTransport<T> {
    fn clone(&self) -> Self {
        FaultyTransport { inner: self.inner.clone(), faults: self.faults.clone() }
    }
}

impl<T: Transport> FaultyTransport<T> {
    /// The wrapped transport.
    pub fn inner(&self) -> &T {
        &self.inner
    }
}

impl<T: Transport> Transport for FaultyTransport<T> {
    fn local_id(&self) -> NodeId {
        self.inner.local_id()
    }

    fn send(&self, envelope: Envelope) -> Result<(), SendError> {
        let (copies, delay) = match self.faults.fate(envelope.from, envelope.to) {
            Fate::Drop => return Ok(()),
            Fate::Deliver { copies, delay } => (copies, delay),
        };
        let runtime = tokio::runtime::Handle::try_current().ok();
        for _ in 0..copies {
            match &runtime {
                Some(handle) if !delay.is_zero() => {
                    let inner = self.inner.clone();
                    let faults = self.faults.clone();
                    let envelope = envelope.clone();
                    handle.spawn(async move {
                        tokio::time::sleep(delay).await;
                        // A partition that began while the envelope was in
                        // flight cuts it too.
                        if !faults.is_blocked(envelope.from, envelope.to) {
                            let _ = inner.send(envelope);
                        }
                    });
                }
                _ => self.inner.send(envelope.clone())?,
            }
        }
        Ok(())
    }

    fn register(&self, channel: Channel, recipient: Recipient<Inbound>) {
        self.inner.register(channel, recipient);
    }

    fn unregister(&self, channel: Channel) {
        self.inner.unregister(channel);
    }

    fn watch_peers(&self, channel: Channel, recipient: Recipient<PeerDown>) {
        self.inner.watch_peers(channel, recipient);
    }

    fn add_peer(&self, node: NodeId, address: SocketAddr) {
        self.inner.add_peer(node, address);
    }

    fn remove_peer(&self, node: NodeId) {
        self.inner.remove_peer(node);
    }

    fn stats(&self) -> TransportStats {
        self.inner.stats()
    }
}
