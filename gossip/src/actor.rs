//! `GossipActor`: the actix shell around a [`GossipCore`]. It turns one
//! `run_interval` into ticks, hands outgoing messages to the [`Transport`],
//! records peers' addresses from membership, and answers the public
//! messages. It holds no protocol logic: every handler steps the core and
//! then calls `GossipActor::drive`, which sends what the core produced.

use crate::core::convergence::ConvergenceReport;
use crate::core::{Event, GossipCore, Metrics as CoreMetrics};
use crate::error::GossipError;
use crate::state::{Conflict, Operation, ReadValue};
use crate::wire::{GossipWire, MemberUpdate};
use actix::{Actor, AsyncContext, Context, Handler, Message, MessageResult};
use concord_transport::{Channel, Envelope, GroupId, Inbound, NodeId, Protocol, Transport, TransportStats};
use crdts::Dot;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The gossip actor of one node.
pub struct GossipActor {
    core: GossipCore,
    transport: Arc<dyn Transport>,
    seeds: Vec<NodeId>,
    bad_messages: u64,
    send_failures: u64,
}

impl GossipActor {
    /// An actor around `core`, sending through `transport`, that joins
    /// through `seeds` when it starts (none for the first node).
    pub fn new(core: GossipCore, transport: Arc<dyn Transport>, seeds: Vec<NodeId>) -> GossipActor {
        GossipActor { core, transport, seeds, bad_messages: 0, send_failures: 0 }
    }

    /// Carries out what the core produced: sends its messages, records the
    /// addresses of members it learned.
    fn drive(&mut self) {
        let output = self.core.take_output();
        for event in &output.events {
            if let Event::Member(MemberUpdate { node, meta, .. }) = event {
                if let Some(address) = meta.address {
                    self.transport.add_peer(*node, address);
                }
            }
        }
        let from = self.core.id();
        for (to, body) in output.messages {
            let envelope = Envelope::typed(from, to, GroupId(0), GossipWire::V2(body));
            let sent = self.transport.send(envelope).map_err(|e| e.to_string());
            if let Err(error) = sent {
                // Gossip tolerates loss; a peer that stays unreachable is
                // found out by the failure detector.
                self.send_failures += 1;
                tracing::debug!(%to, %error, "gossip send failed");
            }
        }
    }
}

impl Actor for GossipActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.transport.register(Channel::single(Protocol::Gossip), ctx.address().recipient());
        let seeds = std::mem::take(&mut self.seeds);
        self.core.join(&seeds);
        self.drive();
        ctx.run_interval(Duration::from_millis(self.core.config().tick_ms.max(1)), |actor, _| {
            actor.core.tick();
            actor.drive();
        });
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.transport.unregister(Channel::single(Protocol::Gossip));
    }
}

impl Handler<Inbound> for GossipActor {
    type Result = ();

    fn handle(&mut self, Inbound(envelope): Inbound, _: &mut Context<Self>) {
        let from = envelope.from;
        match envelope.into_message::<GossipWire>() {
            Ok(GossipWire::V2(body)) => {
                self.core.receive(from, body);
                self.drive();
            }
            Ok(GossipWire::V1(_)) => {
                self.bad_messages += 1;
                tracing::warn!(from = %from, "gossip wire version 1 is no longer spoken; message dropped");
            }
            Err(error) => {
                self.bad_messages += 1;
                tracing::warn!(from = %from, %error, "undecodable gossip message dropped");
            }
        }
    }
}

/// Applies a local write and starts spreading it; answers the update's dot.
#[derive(Debug, Message)]
#[rtype(result = "Result<Dot<NodeId>, GossipError>")]
pub struct StateUpdate {
    /// The key.
    pub key: String,
    /// The change.
    pub operation: Operation,
}

impl StateUpdate {
    /// A last-writer-wins write stamped with the wall clock.
    pub fn assign(key: impl Into<String>, value: Vec<u8>) -> StateUpdate {
        let timestamp =
            SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
        StateUpdate { key: key.into(), operation: Operation::Assign { value, timestamp } }
    }
}

impl Handler<StateUpdate> for GossipActor {
    type Result = Result<Dot<NodeId>, GossipError>;

    fn handle(&mut self, message: StateUpdate, _: &mut Context<Self>) -> Self::Result {
        let result = self.core.update(&message.key, message.operation);
        self.drive();
        result
    }
}

/// Reads one key; `None` if absent.
#[derive(Debug, Message)]
#[rtype(result = "Option<ReadValue>")]
pub struct QueryState {
    /// The key.
    pub key: String,
}

impl Handler<QueryState> for GossipActor {
    type Result = Option<ReadValue>;

    fn handle(&mut self, message: QueryState, _: &mut Context<Self>) -> Self::Result {
        self.core.read(&message.key)
    }
}

/// This node and every member it knows, with their states and metadata.
#[derive(Debug, Message)]
#[rtype(result = "Vec<MemberUpdate>")]
pub struct Members;

impl Handler<Members> for GossipActor {
    type Result = MessageResult<Members>;

    fn handle(&mut self, _: Members, _: &mut Context<Self>) -> Self::Result {
        let mut members = vec![self.core.me().clone()];
        members.extend(self.core.members().map(|m| m.state.clone()));
        MessageResult(members)
    }
}

/// Exact convergence of this node's recent tracked updates (or of one
/// update): holders among the live members, rounds and time to the
/// threshold and to all.
#[derive(Debug, Message)]
#[rtype(result = "Vec<ConvergenceReport>")]
pub struct Convergence {
    /// One update (key and dot), or every tracked one.
    pub update: Option<(String, Dot<NodeId>)>,
}

impl Handler<Convergence> for GossipActor {
    type Result = MessageResult<Convergence>;

    fn handle(&mut self, message: Convergence, _: &mut Context<Self>) -> Self::Result {
        MessageResult(match message.update {
            Some((key, dot)) => self.core.convergence(&key, &dot).into_iter().collect(),
            None => self.core.convergence_all(),
        })
    }
}

/// The conflict history, oldest first.
#[derive(Debug, Message)]
#[rtype(result = "Vec<Conflict>")]
pub struct Conflicts;

impl Handler<Conflicts> for GossipActor {
    type Result = MessageResult<Conflicts>;

    fn handle(&mut self, _: Conflicts, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.core.conflicts().cloned().collect())
    }
}

/// Starts anti-entropy with a random peer at the next tick.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct AntiEntropyNow;

impl Handler<AntiEntropyNow> for GossipActor {
    type Result = ();

    fn handle(&mut self, _: AntiEntropyNow, _: &mut Context<Self>) {
        self.core.anti_entropy_now();
    }
}

/// Turns read-only degraded mode on or off.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct DegradedMode {
    /// On or off.
    pub on: bool,
}

impl Handler<DegradedMode> for GossipActor {
    type Result = ();

    fn handle(&mut self, message: DegradedMode, _: &mut Context<Self>) {
        self.core.set_degraded(message.on);
        self.drive();
    }
}

/// Leaves the cluster gracefully; the leave is broadcast. The actor keeps
/// running so the leave keeps spreading; stop it afterwards.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Leave;

impl Handler<Leave> for GossipActor {
    type Result = ();

    fn handle(&mut self, _: Leave, _: &mut Context<Self>) {
        self.core.leave();
        self.drive();
    }
}

/// Counters of this node.
#[derive(Clone, Debug, PartialEq)]
pub struct GossipMetrics {
    /// The core's counters (messages and bytes sent and received, ...).
    pub core: CoreMetrics,
    /// The transport endpoint's counters (shared by every protocol).
    pub transport: TransportStats,
    /// Inbound messages that could not be decoded.
    pub bad_messages: u64,
    /// Messages the transport refused.
    pub send_failures: u64,
    /// The Merkle root of this node's state.
    pub root: u64,
    /// Keys held.
    pub keys: usize,
    /// Whether a partition is suspected.
    pub partition_suspected: bool,
    /// Whether writes are refused.
    pub degraded: bool,
    /// Gossip rounds (ticks) run since start.
    pub rounds: u64,
}

/// Asks for [`GossipMetrics`].
#[derive(Debug, Message)]
#[rtype(result = "GossipMetrics")]
pub struct Metrics;

impl Handler<Metrics> for GossipActor {
    type Result = MessageResult<Metrics>;

    fn handle(&mut self, _: Metrics, _: &mut Context<Self>) -> Self::Result {
        MessageResult(GossipMetrics {
            core: self.core.metrics(),
            transport: self.transport.stats(),
            bad_messages: self.bad_messages,
            send_failures: self.send_failures,
            root: self.core.store().tree().root(),
            keys: self.core.store().len(),
            partition_suspected: self.core.partition_suspected(),
            degraded: self.core.degraded(),
            rounds: self.core.now(),
        })
    }
}
