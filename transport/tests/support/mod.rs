//! Test helpers: an actor that records what the transport delivers, and
//! polling with a deadline (never a bare sleep).

#![allow(dead_code)]

use actix::{Actor, Addr, Context, Handler, Message, MessageResult};
use bytes::Bytes;
use concord_transport::transport::INBOUND_MAILBOX_CAPACITY_DEFAULT;
use concord_transport::{Channel, Envelope, GroupId, Inbound, NodeId, PeerDown, Protocol};
use std::future::Future;
use std::time::{Duration, Instant};

/// Records every envelope delivered to it.
#[derive(Default)]
pub struct Collector {
    received: Vec<Envelope>,
}

impl Actor for Collector {
    type Context = Context<Self>;
}

impl Collector {
    /// Starts a collector whose mailbox is sized before its first message:
    /// a capacity set in `started()` would come too late for a burst sent
    /// right after `start()`.
    pub fn spawn() -> Addr<Collector> {
        Collector::create(|ctx| {
            ctx.set_mailbox_capacity(INBOUND_MAILBOX_CAPACITY_DEFAULT);
            Collector::default()
        })
    }
}

impl Handler<Inbound> for Collector {
    type Result = ();

    fn handle(&mut self, msg: Inbound, _ctx: &mut Context<Self>) {
        self.received.push(msg.0);
    }
}

/// Takes what was received so far.
#[derive(Message)]
#[rtype(result = "Vec<Envelope>")]
pub struct Take;

impl Handler<Take> for Collector {
    type Result = MessageResult<Take>;

    fn handle(&mut self, _: Take, _ctx: &mut Context<Self>) -> MessageResult<Take> {
        MessageResult(std::mem::take(&mut self.received))
    }
}

/// How many envelopes were received and not yet taken.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct Count;

impl Handler<Count> for Collector {
    type Result = usize;

    fn handle(&mut self, _: Count, _ctx: &mut Context<Self>) -> usize {
        self.received.len()
    }
}

/// The channel the tests use.
pub const CHANNEL: Channel = Channel { protocol: Protocol::Application(7), group: GroupId(0) };

/// An envelope whose body is `seq` in 8 big-endian bytes followed by `padding` zeros.
pub fn numbered(from: u64, to: u64, seq: u64, padding: usize) -> Envelope {
    let mut body = seq.to_be_bytes().to_vec();
    body.resize(8 + padding, 0);
    Envelope { from: NodeId(from), to: NodeId(to), channel: CHANNEL, body: Bytes::from(body).into() }
}

/// The sequence number of a [`numbered`] envelope.
pub fn seq_of(envelope: &Envelope) -> u64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&envelope.body.encoded().expect("a byte body")[..8]);
    u64::from_be_bytes(bytes)
}

/// Polls `condition` every few milliseconds until it holds; panics with
/// `what` once `deadline` has passed.
pub async fn eventually<F, Fut>(deadline: Duration, what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while !condition().await {
        assert!(start.elapsed() < deadline, "timed out after {deadline:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A typed message on [`CHANNEL`]'s protocol.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Note(pub u64, pub String);

impl concord_transport::WireMessage for Note {
    const PROTOCOL: Protocol = Protocol::Application(7);
}

/// Records the peers reported down.
#[derive(Default)]
pub struct Downs(Vec<NodeId>);

impl Actor for Downs {
    type Context = Context<Self>;
}

impl Handler<PeerDown> for Downs {
    type Result = ();

    fn handle(&mut self, msg: PeerDown, _ctx: &mut Self::Context) {
        self.0.push(msg.0);
    }
}

/// Asks a [`Downs`] for the peers reported so far.
#[derive(Message)]
#[rtype(result = "Vec<NodeId>")]
pub struct ReportedDown;

impl Handler<ReportedDown> for Downs {
    type Result = MessageResult<ReportedDown>;

    fn handle(&mut self, _: ReportedDown, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(self.0.clone())
    }
}
