//! Running gossip cores on the transport's deterministic simulator.
//!
//! [`SimGossipNode`] adapts a [`GossipCore`] to [`SimNode`]; [`formed_cluster`]
//! builds `n` nodes that already know each other (as after a join), so
//! simulations of thousands of nodes start without join traffic.

use crate::config::GossipConfig;
use crate::core::{Event, GossipCore};
use crate::wire::{MemberMeta, MemberStatus, MemberUpdate, Message};
use concord_transport::sim::{Outbox, SimNode, Time};
use concord_transport::NodeId;
use rand::rngs::StdRng;
use rand::SeedableRng;

/// A gossip core as a simulated node. Events are kept until the harness takes them.
pub struct SimGossipNode {
    /// The core.
    pub core: GossipCore,
    /// Events not yet taken by the harness, with their virtual time.
    pub events: Vec<(Time, Event)>,
    /// Whether to keep events (large runs turn it off to save memory).
    pub keep_events: bool,
}

impl SimGossipNode {
    /// Wraps a core.
    pub fn new(core: GossipCore) -> SimGossipNode {
        SimGossipNode { core, events: Vec::new(), keep_events: true }
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
