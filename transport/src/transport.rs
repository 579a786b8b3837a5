//! The `Transport` interface shared by the in-memory and TCP implementations,
//! and the router that hands each inbound envelope to its protocol's actor.

use crate::envelope::{Channel, Envelope};
use crate::error::SendError;
use crate::ids::NodeId;
use actix::{Message, Recipient};
use dashmap::DashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A mailbox capacity for actors registered with a transport: actix's default
/// of 16 would drop most of a burst. Set it before the actor's first message,
/// with `Actor::create(|ctx| { ctx.set_mailbox_capacity(..); .. })`; set in
/// `started()` it comes too late for a burst sent right after `start()`.
pub const INBOUND_MAILBOX_CAPACITY_DEFAULT: usize = 65_536;

/// An envelope delivered to the actor registered for its channel.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Inbound(pub Envelope);

/// A peer was found down: its process is gone, not merely slow or cut off.
///
/// The TCP transport sends it when a connection to the peer broke and the
/// peer's address then refused a new one (nothing listens there: the process
/// exited or was killed). A silent peer (a partition, a frozen host) gives no
/// such sign; protocols keep their timeouts for that. Advisory only: a
/// protocol may act sooner on it, never less safely.
#[derive(Clone, Copy, Debug, Message, PartialEq, Eq)]
#[rtype(result = "()")]
pub struct PeerDown(pub NodeId);

/// Sends envelopes to peers and delivers inbound ones to registered actors.
///
/// `send` never blocks and never waits for the network: it queues the envelope
/// (bounded, see each implementation), writes it to an idle connection with a
/// non-blocking write, or refuses it with a [`SendError`].
/// Delivery is at most once and, per pair of nodes, in order, unless faults are
/// injected. Protocols retry what they need.
pub trait Transport: Send + Sync + 'static {
    /// This node's id.
    fn local_id(&self) -> NodeId;

    /// Queues one envelope for `envelope.to`.
    fn send(&self, envelope: Envelope) -> Result<(), SendError>;

    /// Delivers envelopes arriving on `channel` to `recipient`, replacing any
    /// earlier registration for that channel.
    fn register(&self, channel: Channel, recipient: Recipient<Inbound>);

    /// Stops delivering `channel`; its envelopes are then counted as unroutable.
    /// Also ends the channel's [`Transport::watch_peers`] registration.
    fn unregister(&self, channel: Channel);

    /// Tells `recipient` of every [`PeerDown`] until `channel` is
    /// unregistered. Transports that cannot tell a dead peer from a silent
    /// one never send any (the default does nothing).
    fn watch_peers(&self, _channel: Channel, _recipient: Recipient<PeerDown>) {}

    /// Records the address of a peer. Transports without addresses ignore it.
    fn add_peer(&self, _node: NodeId, _address: SocketAddr) {}

    /// Forgets a peer and drops what is queued for it.
    fn remove_peer(&self, _node: NodeId) {}

    /// Counters since start.
    fn stats(&self) -> TransportStats;
}

/// Counters of one transport endpoint since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TransportStats {
    /// Envelopes accepted by `send`.
    pub sent: u64,
    /// Of those, envelopes the sender wrote to an idle connection itself
    /// instead of queueing them (TCP only).
    pub sent_direct: u64,
    /// Envelopes handed to a registered actor.
    pub delivered: u64,
    /// Envelopes refused because a peer's outbound queue was full.
    pub dropped_queue_full: u64,
    /// Envelopes lost because a write failed or the connection broke.
    pub dropped_write_failed: u64,
    /// Inbound envelopes with no registered actor for their channel, or whose
    /// actor's mailbox was full.
    pub dropped_unroutable: u64,
    /// Payload bytes written to sockets.
    pub bytes_sent: u64,
    /// Payload bytes read from sockets.
    pub bytes_received: u64,
    /// Connections accepted and authenticated.
    pub connections_accepted: u64,
    /// Connections closed for bad input or a failed handshake.
    pub connections_rejected: u64,
    /// Outbound connections established (the first one and every reconnect).
    pub connections_established: u64,
    /// Connections a peer opened to us that our link to it writes on
    /// instead of dialing its own (one socket carries both directions).
    pub connections_adopted: u64,
    /// Outbound dials that failed (refused, timed out, or a bad handshake);
    /// each is followed by a backoff.
    pub connections_failed: u64,
}

/// Atomic counters behind [`TransportStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub sent: AtomicU64,
    pub sent_direct: AtomicU64,
    pub delivered: AtomicU64,
    pub dropped_queue_full: AtomicU64,
    pub dropped_write_failed: AtomicU64,
    pub dropped_unroutable: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub bytes_received: AtomicU64,
    pub connections_accepted: AtomicU64,
    pub connections_rejected: AtomicU64,
    pub connections_established: AtomicU64,
    pub connections_adopted: AtomicU64,
    pub connections_failed: AtomicU64,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> TransportStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        TransportStats {
            sent: get(&self.sent),
            sent_direct: get(&self.sent_direct),
            delivered: get(&self.delivered),
            dropped_queue_full: get(&self.dropped_queue_full),
            dropped_write_failed: get(&self.dropped_write_failed),
            dropped_unroutable: get(&self.dropped_unroutable),
            bytes_sent: get(&self.bytes_sent),
            bytes_received: get(&self.bytes_received),
            connections_accepted: get(&self.connections_accepted),
            connections_rejected: get(&self.connections_rejected),
            connections_established: get(&self.connections_established),
            connections_adopted: get(&self.connections_adopted),
            connections_failed: get(&self.connections_failed),
        }
    }
}

/// Routes inbound envelopes to the actor registered for their channel.
///
/// Delivery uses `try_send`: the receiving actor's mailbox capacity is the
/// bound on what waits for it (see [`INBOUND_MAILBOX_CAPACITY_DEFAULT`]), and
/// an envelope that finds it full is dropped and counted rather than buffered
/// without limit.
#[derive(Clone, Debug, Default)]
pub struct Router {
    routes: Arc<DashMap<Channel, Recipient<Inbound>>>,
    watchers: Arc<DashMap<Channel, Recipient<PeerDown>>>,
    pub(crate) counters: Arc<Counters>,
}

impl Router {
    /// An empty router.
    pub fn new() -> Router {
        Router::default()
    }

    /// Registers `recipient` for `channel`.
    pub fn register(&self, channel: Channel, recipient: Recipient<Inbound>) {
        self.routes.insert(channel, recipient);
    }

    /// Removes the registration of `channel`, and its peer watch.
    pub fn unregister(&self, channel: Channel) {
        self.routes.remove(&channel);
        self.watchers.remove(&channel);
    }

    /// Tells `recipient` of every [`PeerDown`] until `channel` is unregistered.
    pub fn watch_peers(&self, channel: Channel, recipient: Recipient<PeerDown>) {
        self.watchers.insert(channel, recipient);
    }

    /// Tells every watcher that `peer` is down. A watcher whose mailbox is
    /// full misses it (the notice is advisory).
    pub fn peer_down(&self, peer: NodeId) {
        for watcher in self.watchers.iter() {
            let _ = watcher.value().try_send(PeerDown(peer));
        }
    }

    /// Hands `envelope` to its channel's actor. Returns whether it was accepted.
    pub fn deliver(&self, envelope: Envelope) -> bool {
        let accepted = match self.routes.get(&envelope.channel) {
            Some(recipient) => recipient.try_send(Inbound(envelope)).is_ok(),
            None => false,
        };
        let counter = if accepted { &self.counters.delivered } else { &self.counters.dropped_unroutable };
        Counters::add(counter, 1);
        accepted
    }
}
