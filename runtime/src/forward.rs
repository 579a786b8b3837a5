//! Forwarding proposals to the leader over the shared transport, so that a
//! client or worker on any node can write. Each node runs one [`Forwarder`]
//! on the `Application(FORWARD_PROTOCOL)` channel: it proposes requests
//! from peers to its local Raft actor and answers them, and it sends this
//! node's requests to the leader and matches the answers. Requests waiting
//! on a node the transport finds down are answered `Unknown` at once, not
//! after [`FORWARD_TIMEOUT`], so a write sent to a follower while the leader
//! dies moves on to the next leader as soon as there is one. Requests for a
//! node found down are then not sent to it for [`FORWARD_DOWN_HOLD`] (or
//! until it is heard from): they are answered `Retry`, so that the caller
//! asks another member at once instead of waiting out the timeout there.

use crate::node::GroupActor;
use actix::prelude::*;
use bytes::Bytes;
use concord_raft::actor::{Propose, RaftError, Read, ReadKind};
use concord_raft::core::ClientTag;
use concord_raft::error::RequestError;
use concord_transport::{
    Channel, Envelope, GroupId, Inbound, NodeId, PeerDown, Protocol, Transport, WireMessage,
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// The application protocol number of forwarding.
pub const FORWARD_PROTOCOL: u16 = 1;
/// The channel forwarding uses.
pub const FORWARD_CHANNEL: Channel = Channel::single(Protocol::Application(FORWARD_PROTOCOL));
/// Bound on forwarded requests awaiting an answer.
pub const FORWARD_PENDING_MAX: usize = 4_096;
/// How long a forwarded request waits for its answer.
pub const FORWARD_TIMEOUT: Duration = Duration::from_secs(2);
/// How long requests for a node the transport found down are refused
/// without being sent, unless the node is heard from sooner.
pub const FORWARD_DOWN_HOLD: Duration = Duration::from_secs(1);

/// What travels between forwarders. Version 1.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum ForwardWire {
    /// Propose this on your group.
    Request {
        /// Matches the reply.
        id: u64,
        /// The group.
        group: GroupId,
        /// The command.
        data: Bytes,
        /// The client's tag for exactly-once retries.
        client: Option<ClientTag>,
    },
    /// Run this read on your group (linearizable, or under the lease).
    Read {
        /// Matches the reply.
        id: u64,
        /// The group.
        group: GroupId,
        /// Under the leader lease rather than by ReadIndex.
        lease: bool,
        /// The query.
        query: Bytes,
    },
    /// The outcome of a request.
    Reply {
        /// The request's id.
        id: u64,
        /// What happened.
        outcome: Outcome,
    },
}

impl WireMessage for ForwardWire {
    const PROTOCOL: Protocol = Protocol::Application(FORWARD_PROTOCOL);
}

/// The outcome of a proposal, local or forwarded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// Applied at `index` with this state-machine response.
    Applied {
        /// The log index.
        index: u64,
        /// The response.
        response: Bytes,
    },
    /// The receiver is not the leader; it names the one it knows.
    NotLeader {
        /// The leader, if known.
        leader: Option<NodeId>,
    },
    /// Not done, and worth retrying: refused before it entered the log (a
    /// leadership transfer, a full log), or never sent.
    Retry(String),
    /// Failed for good.
    Failed(String),
    /// Perhaps done, perhaps not: leadership changed after the proposal
    /// entered the log, or the node asked was found down or stopped
    /// answering while it was pending. A retry is exactly-once only for a
    /// tagged proposal (the sessions answer a duplicate); a read may retry.
    /// (Last, so that the other variants keep their wire numbers.)
    Unknown(String),
}

impl Outcome {
    /// Maps the local Raft actor's answer.
    pub fn from_raft(
        result: Result<Result<concord_raft::actor::Proposed, RaftError>, MailboxError>,
    ) -> Outcome {
        match result {
            Ok(Ok(proposed)) => Outcome::Applied { index: proposed.index, response: proposed.response },
            Ok(Err(RaftError::Request(RequestError::NotLeader { leader }))) => Outcome::NotLeader { leader },
            Ok(Err(RaftError::LeadershipLost)) => {
                Outcome::Unknown("leadership changed before the proposal was known to be applied".into())
            }
            Ok(Err(RaftError::Request(RequestError::TransferInProgress(to)))) => {
                Outcome::Retry(format!("leadership transfer to {to} in progress"))
            }
            // Until a snapshot compacts the log, which one nearly full takes.
            Ok(Err(RaftError::Request(
                full @ (RequestError::LogFull { .. } | RequestError::LogBytesFull { .. }),
            ))) => Outcome::Retry(full.to_string()),
            Ok(Err(other)) => Outcome::Failed(other.to_string()),
            Err(e) => Outcome::Failed(format!("raft actor unavailable: {e}")),
        }
    }

    /// Maps the local Raft actor's answer to a read (index 0: reads have none).
    pub fn from_read(result: Result<Result<Bytes, RaftError>, MailboxError>) -> Outcome {
        let proposed = result.map(|r| r.map(|response| concord_raft::actor::Proposed { index: 0, response }));
        match Outcome::from_raft(proposed) {
            // A read that failed for want of a confirmed quorum is worth
            // retrying, and one whose outcome is unknown changed nothing.
            Outcome::Failed(reason) | Outcome::Unknown(reason) => Outcome::Retry(reason),
            other => other,
        }
    }
}

/// Proposes on the local Raft actor and waits until the entry is applied.
pub async fn propose_local(raft: &Addr<GroupActor>, data: Bytes, client: Option<ClientTag>) -> Outcome {
    let applied = match raft.send(Propose { data, client }).await {
        Ok(Ok(pending)) => Ok(pending.await),
        Ok(Err(error)) => Ok(Err(error)),
        Err(error) => Err(error),
    };
    Outcome::from_raft(applied)
}

/// What this node asks a leader to do.
#[derive(Debug)]
pub enum Request {
    /// Propose a command.
    Propose {
        /// The command.
        data: Bytes,
        /// The client's tag.
        client: Option<ClientTag>,
    },
    /// Run a read.
    Read {
        /// Under the lease rather than by ReadIndex.
        lease: bool,
        /// The query.
        query: Bytes,
    },
}

/// This node's request to `to`.
#[derive(Debug, Message)]
#[rtype(result = "Outcome")]
pub struct Forward {
    /// The leader to ask.
    pub to: NodeId,
    /// The group.
    pub group: GroupId,
    /// What to do.
    pub request: Request,
}

/// The forwarding actor of one node.
pub struct Forwarder {
    transport: Arc<dyn Transport>,
    groups: HashMap<GroupId, Addr<GroupActor>>,
    /// By request id: the node asked, and who waits for the answer.
    pending: HashMap<u64, (NodeId, oneshot::Sender<Outcome>)>,
    next_id: u64,
    /// Peers the transport found down, and when: one entry per peer at most.
    down: HashMap<NodeId, Instant>,
}

impl Forwarder {
    /// A forwarder for the given local groups.
    pub fn new(transport: Arc<dyn Transport>, groups: HashMap<GroupId, Addr<GroupActor>>) -> Forwarder {
        Forwarder { transport, groups, pending: HashMap::new(), next_id: 1, down: HashMap::new() }
    }

    fn reply(&self, to: NodeId, id: u64, outcome: Outcome) {
        let message = ForwardWire::Reply { id, outcome };
        if let Ok(envelope) = Envelope::wrap(self.transport.local_id(), to, GroupId(0), &message) {
            // A lost reply times out at the requester, which retries.
            let _ = self.transport.send(envelope);
        }
    }
}

impl Actor for Forwarder {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(concord_transport::transport::INBOUND_MAILBOX_CAPACITY_DEFAULT);
        self.transport.register(FORWARD_CHANNEL, ctx.address().recipient());
        self.transport.watch_peers(FORWARD_CHANNEL, ctx.address().recipient());
    }

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        self.transport.unregister(FORWARD_CHANNEL);
    }
}

impl Handler<Inbound> for Forwarder {
    type Result = ();

    fn handle(&mut self, Inbound(envelope): Inbound, ctx: &mut Context<Self>) {
        let from = envelope.from;
        self.down.remove(&from);
        let message = match envelope.open::<ForwardWire>() {
            Ok(message) => message,
            Err(error) => {
                tracing::warn!(%from, %error, "undecodable forwarding message dropped");
                return;
            }
        };
        match message {
            ForwardWire::Request { id, group, data, client } => {
                let Some(raft) = self.groups.get(&group).cloned() else {
                    self.reply(from, id, Outcome::Failed(format!("no group {group} on this node")));
                    return;
                };
                async move { propose_local(&raft, data, client).await }
                    .into_actor(self)
                    .map(move |outcome, actor, _ctx| actor.reply(from, id, outcome))
                    .spawn(ctx);
            }
            ForwardWire::Read { id, group, lease, query } => {
                let Some(raft) = self.groups.get(&group).cloned() else {
                    self.reply(from, id, Outcome::Failed(format!("no group {group} on this node")));
                    return;
                };
                let kind = if lease { ReadKind::Lease } else { ReadKind::Linearizable };
                raft.send(Read { kind, query })
                    .into_actor(self)
                    .map(move |result, actor, _ctx| actor.reply(from, id, Outcome::from_read(result)))
                    .spawn(ctx);
            }
            ForwardWire::Reply { id, outcome } => {
                if let Some((_, waiter)) = self.pending.remove(&id) {
                    let _ = waiter.send(outcome);
                }
            }
        }
    }
}

/// A node found down answers nothing more: its requests are retried now.
impl Handler<PeerDown> for Forwarder {
    type Result = ();

    fn handle(&mut self, PeerDown(peer): PeerDown, _ctx: &mut Context<Self>) {
        self.down.insert(peer, Instant::now());
        let dead: Vec<u64> =
            self.pending.iter().filter(|(_, (to, _))| *to == peer).map(|(id, _)| *id).collect();
        for id in dead {
            if let Some((_, waiter)) = self.pending.remove(&id) {
                let _ = waiter.send(Outcome::Unknown(format!("node {} is down", peer.0)));
            }
        }
    }
}

impl Handler<Forward> for Forwarder {
    type Result = ResponseFuture<Outcome>;

    fn handle(&mut self, request: Forward, ctx: &mut Context<Self>) -> ResponseFuture<Outcome> {
        if self.pending.len() >= FORWARD_PENDING_MAX {
            return Box::pin(async { Outcome::Retry("too many forwarded requests pending".into()) });
        }
        if let Some(since) = self.down.get(&request.to) {
            if since.elapsed() < FORWARD_DOWN_HOLD {
                let why = format!("node {} is down", request.to.0);
                return Box::pin(async move { Outcome::Retry(why) });
            }
            self.down.remove(&request.to);
        }
        let id = self.next_id;
        self.next_id += 1;
        let message = match request.request {
            Request::Propose { data, client } => {
                ForwardWire::Request { id, group: request.group, data, client }
            }
            Request::Read { lease, query } => ForwardWire::Read { id, group: request.group, lease, query },
        };
        let envelope = match Envelope::wrap(self.transport.local_id(), request.to, GroupId(0), &message) {
            Ok(envelope) => envelope,
            Err(e) => return Box::pin(async move { Outcome::Failed(e.to_string()) }),
        };
        if let Err(e) = self.transport.send(envelope) {
            return Box::pin(async move { Outcome::Retry(e.to_string()) });
        }
        let (tx, rx) = oneshot::channel();
        self.pending.insert(id, (request.to, tx));
        ctx.run_later(FORWARD_TIMEOUT, move |actor, _| {
            actor.pending.remove(&id);
        });
        Box::pin(async move {
            rx.await.unwrap_or_else(|_| Outcome::Unknown("forwarded request timed out".into()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use concord_transport::MemoryNetwork;

    fn propose_to(to: u64) -> Forward {
        Forward {
            to: NodeId(to),
            group: GroupId(1),
            request: Request::Propose { data: Bytes::new(), client: None },
        }
    }

    /// Nodes 2 and 3 never answer; node 2 is then found down.
    #[actix::test]
    async fn requests_to_a_node_found_down_are_retried_at_once() {
        let network = MemoryNetwork::new();
        let transport: Arc<dyn Transport> = Arc::new(network.join(NodeId(1)));
        let (_silent_2, _silent_3) = (network.join(NodeId(2)), network.join(NodeId(3)));
        let forwarder = Forwarder::new(transport.clone(), HashMap::new()).start();
        let to_2 = forwarder.send(propose_to(2));
        let mut to_3 = Box::pin(forwarder.send(propose_to(3)));
        forwarder.send(PeerDown(NodeId(2))).await.unwrap();
        match to_2.await.unwrap() {
            Outcome::Unknown(why) => assert_eq!(why, "node 2 is down"),
            other => panic!("expected an unknown outcome, got {other:?}"),
        }
        let still_waiting = futures_util::FutureExt::now_or_never(&mut to_3);
        assert!(still_waiting.is_none(), "node 3's request waits for its answer or its timeout");
        // Node 2 is not asked again for a while: the caller asks another
        // member at once, and nothing is sent.
        let sent = transport.stats().sent;
        match forwarder.send(propose_to(2)).await.unwrap() {
            Outcome::Retry(why) => assert_eq!(why, "node 2 is down"),
            other => panic!("expected a retry, got {other:?}"),
        }
        assert_eq!(transport.stats().sent, sent);
        // Once heard from, node 2 is asked again.
        let heard = ForwardWire::Reply { id: u64::MAX, outcome: Outcome::Retry(String::new()) };
        let envelope = Envelope::wrap(NodeId(2), NodeId(1), GroupId(0), &heard).unwrap();
        forwarder.send(Inbound(envelope)).await.unwrap();
        let _to_2 = forwarder.send(propose_to(2));
        forwarder.send(PeerDown(NodeId(4))).await.unwrap(); // handled after the request
        assert_eq!(transport.stats().sent, sent + 1, "node 2's request was sent");
    }

    #[test]
    fn a_full_log_is_retried_and_an_oversized_command_is_not() {
        let refused = |error| Outcome::from_raft(Ok(Err(RaftError::Request(error))));
        match refused(RequestError::LogBytesFull { bytes: 900, size: 200, max: 1_000 }) {
            Outcome::Retry(why) => assert!(why.contains("bound max_log_bytes 1000"), "{why}"),
            other => panic!("expected a retry, got {other:?}"),
        }
        assert!(matches!(refused(RequestError::LogFull { entries: 4, max: 4 }), Outcome::Retry(_)));
        let too_large = refused(RequestError::CommandTooLarge { size: 2, max: 1 });
        assert!(matches!(too_large, Outcome::Failed(_)), "{too_large:?}");
    }
}
