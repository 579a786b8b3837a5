//! The in-memory transport: nodes in one process exchange envelopes through
//! actix mailboxes. A typed body ([`crate::Envelope::typed`]) is handed to the
//! receiver as it is, never encoded. For tests and for embedding several
//! nodes in one process. A node that leaves the network is reported down to
//! the others ([`MemoryNetwork::leave`]).

use crate::envelope::{Channel, Envelope};
use crate::error::SendError;
use crate::ids::NodeId;
use crate::transport::{Counters, Inbound, PeerDown, Router, Transport, TransportStats};
use actix::Recipient;
use dashmap::DashMap;
use std::sync::Arc;

/// A set of in-memory nodes that can reach each other.
#[derive(Clone, Debug, Default)]
pub struct MemoryNetwork {
    nodes: Arc<DashMap<NodeId, Router>>,
}

impl MemoryNetwork {
    /// An empty network.
    pub fn new() -> MemoryNetwork {
        MemoryNetwork::default()
    }

    /// Adds a node and returns its transport. A node that joins again replaces
    /// its earlier registration (a restart).
    pub fn join(&self, node: NodeId) -> MemoryTransport {
        let router = Router::new();
        self.nodes.insert(node, router.clone());
        MemoryTransport { node, router, network: self.clone() }
    }

    /// Removes a node, as if its process were gone: envelopes sent to it are
    /// refused as to an unknown peer, and every other node's watchers get a
    /// [`PeerDown`] for it (what a TCP peer learns from a refused dial).
    pub fn leave(&self, node: NodeId) {
        self.nodes.remove(&node);
        for other in self.nodes.iter() {
            other.value().peer_down(node);
        }
    }
}

/// One node's endpoint on a [`MemoryNetwork`].
#[derive(Clone, Debug)]
pub struct MemoryTransport {
    node: NodeId,
    router: Router,
    network: MemoryNetwork,
}

impl Transport for MemoryTransport {
    fn local_id(&self) -> NodeId {
        self.node
    }

    fn send(&self, envelope: Envelope) -> Result<(), SendError> {
        let router = self
            .network
            .nodes
            .get(&envelope.to)
            .map(|r| r.clone())
            .ok_or(SendError::UnknownPeer(envelope.to))?;
        Counters::add(&self.router.counters.sent, 1);
        router.deliver(envelope);
        Ok(())
    }

    fn register(&self, channel: Channel, recipient: Recipient<Inbound>) {
        self.router.register(channel, recipient);
    }

    fn unregister(&self, channel: Channel) {
        self.router.unregister(channel);
    }

    fn watch_peers(&self, channel: Channel, recipient: Recipient<PeerDown>) {
        self.router.watch_peers(channel, recipient);
    }

    fn stats(&self) -> TransportStats {
        self.router.counters.snapshot()
    }
}
