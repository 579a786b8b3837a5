//! One Concord node: the TCP transport, one Raft actor per group over a
//! durable write-ahead log (`WalStore`), the proposal forwarder, and the gossip actor (joined
//! through the Raft peers and the configured seeds).

use crate::config::{NodeConfig, Peer, RaftTiming};
use crate::forward::{propose_local, Forward, Forwarder, Outcome, Request};
use crate::latency::LatencyHistogram;
use crate::machine::{decode, encode, Applied, ConcordMachine, Query, QueryAnswer};
use crate::state::{Command, Response};
use actix::prelude::*;
use concord_gossip::{GossipActor, GossipConfig, GossipCore, MemberMeta};
use concord_membership::actor::gossip::bridge_gossip;
use concord_membership::actor::{ManagerConfig, QuorumManager};
use concord_raft::actor::{
    bootstrap_store, ActorConfig, GetStatus, RaftActor, Read, ReadKind, Shutdown, StepDown, UpdateConfig,
};
use concord_raft::core::{ClientTag, Membership, Role};
use concord_raft::storage::wal::WalStore;
use concord_raft::storage::StorageError;
use concord_transport::{GroupId, NodeId, TcpConfig, TcpTransport, Transport};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The Raft actor of a group on a node.
pub type GroupActor = RaftActor<WalStore, ConcordMachine>;

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// A socket or directory could not be opened.
    #[error("{what}: {source}")]
    Io {
        /// What was being opened.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A group's store could not be opened or is damaged.
    #[error("group {group}: {source}")]
    Storage {
        /// The group.
        group: String,
        /// The cause.
        source: StorageError,
    },
    /// A group's Raft actor refused its recovered state.
    #[error("group {group}: {message}")]
    Raft {
        /// The group.
        group: String,
        /// Why.
        message: String,
    },
}

/// Why a proposal did not apply.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProposeError {
    /// No such group on this node.
    #[error("unknown group {0:?}")]
    UnknownGroup(String),
    /// No leader could take it before the deadline.
    #[error("no leader accepted the proposal within {0:?}: {1}")]
    Timeout(Duration, String),
    /// The request itself is invalid.
    #[error("{0}")]
    Invalid(String),
    /// Refused for good.
    #[error("{0}")]
    Failed(String),
    /// An untagged proposal that may or may not have been applied: it is
    /// not proposed again, since that could apply it twice (a put twice, a
    /// compare-and-swap that reports a conflict with its own write). Read
    /// to learn what happened, as after etcd's "request timed out,
    /// possibly due to previous leader failure".
    #[error("the write may or may not have been applied ({0}); read to learn its outcome")]
    OutcomeUnknown(String),
}

/// A group served by a node.
#[derive(Clone)]
pub struct Group {
    /// Its name.
    pub name: String,
    /// Its id on the wire.
    pub id: GroupId,
    /// Its Raft actor.
    pub raft: Addr<GroupActor>,
    /// Its quorum manager.
    pub manager: Addr<QuorumManager>,
    /// Latency of the proposals made through this node (submitted to
    /// applied, forwarding and retries included), successful ones only.
    pub proposal_latency: Arc<LatencyHistogram>,
}

/// Where a group of the cluster runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupRoute {
    /// Its id on the wire.
    pub id: GroupId,
    /// The nodes that run it (its initial voters), ordered.
    pub members: Vec<NodeId>,
    /// Whether the configuration names them (`members = [..]`): then no
    /// other node ever runs the group, so none can join it.
    pub members_named: bool,
}

impl GroupRoute {
    /// The member `turn` places along [`GroupRoute::members`], wrapping,
    /// and moves `turn` past it: with no leader known, each attempt asks
    /// the next member in turn.
    fn next_member(&self, turn: &mut usize) -> NodeId {
        let member = self.members.get(*turn % self.members.len().max(1)).copied().unwrap_or(NodeId(0));
        *turn += 1;
        member
    }
}

/// What this node knows of how to reach a group it does not run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct RemoteRoute {
    /// The member that last applied a request, or that a member named as
    /// the leader.
    leader: Option<NodeId>,
    /// Where, along the members, a request with no leader known starts:
    /// past the last member that gave no answer or knew no leader. A
    /// member that died is then not asked first by every later request
    /// (each of which would wait out its forwarding timeout there).
    turn: usize,
}

/// [`RemoteRoute`]s by group: one entry per group this node does not run.
#[derive(Debug, Default)]
struct RemoteRoutes(HashMap<GroupId, RemoteRoute>);

impl RemoteRoutes {
    /// Where a request to `route` starts.
    fn start(&self, route: &GroupRoute) -> RemoteRoute {
        self.0.get(&route.id).copied().unwrap_or_default()
    }

    /// Learns from `asked`'s `outcome`: the leader, when it applied the
    /// request or a member named one; otherwise to start past `asked`.
    fn learn(&mut self, route: &GroupRoute, asked: NodeId, outcome: &Outcome) {
        let entry = self.0.entry(route.id).or_default();
        let leader = match outcome {
            Outcome::Applied { .. } => Some(asked),
            Outcome::NotLeader { leader } => leader.filter(|l| route.members.contains(l)),
            // A definite refusal (an invalid command, say) says nothing of
            // where the leader is.
            Outcome::Failed(_) => return,
            Outcome::Retry(_) | Outcome::Unknown(_) => None,
        };
        entry.leader = leader;
        if leader.is_none() {
            if let Some(at) = route.members.iter().position(|m| *m == asked) {
                entry.turn = at + 1;
            }
        }
    }
}

/// Where one attempt of a proposal or read goes.
#[derive(Clone, Copy)]
enum Via<'a> {
    /// This node's replica of the group.
    Local(&'a Group),
    /// Another node, over the transport.
    Peer(NodeId),
}

/// A node whose transport is bound but whose groups have not started: the
/// address is known, so a cluster in one process can learn every address
/// before starting.
pub struct BoundNode {
    config: NodeConfig,
    transport: TcpTransport,
    /// Gossip seeds known only by address, identified by a handshake.
    seed_ids: Vec<NodeId>,
}

/// A running node. Cheap to clone.
#[derive(Clone)]
pub struct Node {
    inner: Arc<NodeInner>,
}

struct NodeInner {
    config: NodeConfig,
    transport: TcpTransport,
    /// The groups this node runs.
    groups: BTreeMap<String, Group>,
    /// Every group of the cluster, run here or not.
    routes: BTreeMap<String, GroupRoute>,
    /// How to reach each group this node does not run.
    remote_routes: Mutex<RemoteRoutes>,
    forwarder: Addr<Forwarder>,
    gossip: Addr<GossipActor>,
    timing: Mutex<RaftTiming>,
    stopped: AtomicBool,
}

/// The Raft actor settings for a group with the given timing.
///
/// Every group's actor shares the node's thread, so followers write inline
/// ([`ActorConfig::follower_writes_inline`]), and leaders a lone proposal
/// ([`ActorConfig::leader_inline_entries_max`]), only when the node
/// runs one group: an `fsync` would otherwise hold up another group's leader.
fn actor_config(group: GroupId, timing: &RaftTiming) -> ActorConfig {
    let mut config = ActorConfig::new(group).with_timeouts_ms(
        timing.election_timeout_min_ms,
        timing.election_timeout_max_ms,
        timing.heartbeat_ms,
    );
    config.core.batch_size = timing.batch_size;
    config.core.snapshot_threshold_entries = timing.snapshot_entries;
    config.core.max_log_entries = timing.max_log_entries;
    config.core.max_log_bytes = timing.max_log_bytes;
    config
}

/// How long [`Node::hand_over_leadership`] waits for the groups to step down.
pub const HANDOVER_TIMEOUT: Duration = Duration::from_secs(2);

/// How often it checks.
const HANDOVER_POLL: Duration = Duration::from_millis(5);

/// How long a read may look for a leader that confirms it.
pub const READ_TIMEOUT: Duration = Duration::from_secs(3);

/// How long a retried proposal waits between attempts.
const PROPOSE_RETRY_DELAY: Duration = Duration::from_millis(5);

impl BoundNode {
    /// Binds the transport. Must run inside an actix system.
    pub async fn bind(config: NodeConfig) -> Result<BoundNode, NodeError> {
        config.validate_settings()?;
        let tcp = TcpConfig::new(config.cluster(), config.node_id(), config.listen);
        let transport = TcpTransport::bind(tcp)
            .await
            .map_err(|source| NodeError::Io { what: format!("listen on {}", config.listen), source })?;
        Ok(BoundNode { config, transport, seed_ids: Vec::new() })
    }

    /// Identifies the configured gossip seeds by a handshake with each.
    /// Unreachable seeds are skipped (logged): the node still starts, and
    /// Raft peers are gossip seeds too.
    pub async fn discover_seeds(&mut self) {
        for &address in &self.config.seeds {
            match self.transport.discover(address).await {
                Ok(id) => self.seed_ids.push(id),
                Err(error) => tracing::warn!(%address, %error, "gossip seed unreachable"),
            }
        }
    }

    /// The transport address actually bound.
    pub fn address(&self) -> SocketAddr {
        self.transport.local_addr()
    }

    /// Starts the groups with `peers` as the other voters of a new cluster
    /// (ignored by groups that recover an existing configuration).
    pub fn start(mut self, peers: &[Peer]) -> Result<Node, NodeError> {
        self.config.peers = peers.to_vec();
        self.config.validate()?;
        let config = self.config;
        let transport = self.transport;
        for peer in &config.peers {
            transport.add_peer(NodeId(peer.id), peer.address);
        }
        std::fs::create_dir_all(&config.data_dir).map_err(|source| NodeError::Io {
            what: format!("create {}", config.data_dir.display()),
            source,
        })?;
        let everyone: Vec<NodeId> =
            std::iter::once(config.node_id()).chain(config.peers.iter().map(|p| NodeId(p.id))).collect();
        let shared: Arc<dyn Transport> = Arc::new(transport.clone());
        let mut groups = BTreeMap::new();
        let mut routes = BTreeMap::new();
        // Followers write inline only when no other group shares the thread.
        let one_group_here = config.groups.iter().filter(|g| g.runs_on(config.id)).count() == 1;
        for spec in &config.groups {
            let name = &spec.name;
            let mut members: Vec<NodeId> = match &spec.members {
                Some(members) => members.iter().copied().map(NodeId).collect(),
                None => everyone.clone(),
            };
            members.sort();
            let id = GroupId::from_name(name);
            let members_named = spec.members.is_some();
            routes.insert(name.clone(), GroupRoute { id, members: members.clone(), members_named });
            if !spec.runs_on(config.id) {
                continue;
            }
            let storage_error = |source| NodeError::Storage { group: name.clone(), source };
            let mut store =
                WalStore::open(config.data_dir.join(format!("{name}.wal"))).map_err(storage_error)?;
            // A new cluster starts from the members as voters; an existing store recovers.
            bootstrap_store(&mut store, Membership::with_voters(members)).map_err(storage_error)?;
            let mut actor_config = actor_config(id, &config.raft);
            actor_config.follower_writes_inline = one_group_here;
            actor_config.leader_inline_entries_max = usize::from(one_group_here);
            actor_config.name = name.clone();
            let actor = RaftActor::new(actor_config, shared.clone(), store, ConcordMachine::default())
                .map_err(|e| NodeError::Raft { group: name.clone(), message: e.to_string() })?;
            let raft = actor.start();
            let mut manager_config = ManagerConfig::new(config.node_id());
            // A group with named members keeps them: gossip's other nodes
            // do not join it on their own.
            manager_config.core.join_automatically = spec.members.is_none();
            manager_config.group_name = name.clone();
            let manager = QuorumManager::new(manager_config, raft.clone())
                .map_err(|e| NodeError::Raft { group: name.clone(), message: e.to_string() })?
                .start();
            let proposal_latency = Arc::default();
            groups.insert(name.clone(), Group { name: name.clone(), id, raft, manager, proposal_latency });
        }
        let by_id: HashMap<GroupId, Addr<GroupActor>> =
            groups.values().map(|g| (g.id, g.raft.clone())).collect();
        let forwarder = Forwarder::new(shared.clone(), by_id).start();
        let meta = MemberMeta { address: Some(transport.local_addr()), tags: Default::default() };
        let rng = StdRng::seed_from_u64(rand::random());
        let core = GossipCore::new(config.node_id(), meta, GossipConfig::default(), rng);
        let mut seeds: Vec<NodeId> = config.peers.iter().map(|p| NodeId(p.id)).chain(self.seed_ids).collect();
        seeds.sort();
        seeds.dedup();
        let gossip = GossipActor::new(core, shared, seeds).start();
        let managers: Vec<Addr<QuorumManager>> = groups.values().map(|g| g.manager.clone()).collect();
        bridge_gossip(gossip.clone(), managers, LIVENESS_POLL);
        let timing = Mutex::new(config.raft);
        let stopped = AtomicBool::new(false);
        let remote_routes = Mutex::default();
        let inner = NodeInner {
            config,
            transport,
            groups,
            routes,
            remote_routes,
            forwarder,
            gossip,
            timing,
            stopped,
        };
        Ok(Node { inner: Arc::new(inner) })
    }
}

impl Node {
    /// Binds and starts a node with the peers of its configuration.
    pub async fn start(config: NodeConfig) -> Result<Node, NodeError> {
        let peers = config.peers.clone();
        let mut bound = BoundNode::bind(config).await?;
        bound.discover_seeds().await;
        bound.start(&peers)
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.inner.config.node_id()
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &NodeConfig {
        &self.inner.config
    }

    /// The transport.
    pub fn transport(&self) -> &TcpTransport {
        &self.inner.transport
    }

    /// The gossip actor.
    pub fn gossip(&self) -> &Addr<GossipActor> {
        &self.inner.gossip
    }

    /// A group by name.
    pub fn group(&self, name: &str) -> Option<&Group> {
        self.inner.groups.get(name)
    }

    /// Every group this node runs.
    pub fn groups(&self) -> impl Iterator<Item = &Group> {
        self.inner.groups.values()
    }

    /// Where a group of the cluster runs, whether or not this node runs it.
    pub fn route(&self, name: &str) -> Option<&GroupRoute> {
        self.inner.routes.get(name)
    }

    /// The Raft timing in force.
    pub fn timing(&self) -> RaftTiming {
        *self.inner.timing.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Changes the Raft timing of every group at run time.
    pub async fn set_timing(&self, timing: RaftTiming) -> Result<(), ProposeError> {
        let config = NodeConfig { raft: timing, ..self.inner.config.clone() };
        config.validate().map_err(|e| ProposeError::Invalid(e.to_string()))?;
        for group in self.inner.groups.values() {
            let core = actor_config(group.id, &timing).core;
            group
                .raft
                .send(UpdateConfig(core))
                .await
                .map_err(|e| ProposeError::Failed(e.to_string()))?
                .map_err(|e| ProposeError::Invalid(e.to_string()))?;
        }
        *self.inner.timing.lock().unwrap_or_else(|p| p.into_inner()) = timing;
        Ok(())
    }

    /// Whether [`Node::stop`] was called.
    pub fn is_stopped(&self) -> bool {
        self.inner.stopped.load(Ordering::Relaxed)
    }

    /// Proposes `command` on `group` through whichever node leads it,
    /// retrying with the same client tag until `timeout`: sessions make the
    /// retries exactly-once. An untagged proposal is retried only while it is
    /// known not to be applied (refused, or never sent), or when it is
    /// idempotent ([`Command::is_idempotent`]); once its outcome is unknown
    /// it fails with [`ProposeError::OutcomeUnknown`] instead.
    pub async fn propose(
        &self,
        group: &str,
        command: &Command,
        client: Option<ClientTag>,
        timeout: Duration,
    ) -> Result<(u64, Response), ProposeError> {
        let (route, local) = self.target(group)?;
        let data = encode(command);
        let started = Instant::now();
        let deadline = started + timeout;
        let retry_is_safe = client.is_some() || command.is_idempotent();
        let RemoteRoute { mut leader, mut turn } = self.remote_start(route, local);
        let mut last = String::from("no attempt");
        while Instant::now() < deadline && !self.is_stopped() {
            let via = match (leader, local) {
                (Some(to), _) if to != self.id() => Via::Peer(to),
                (_, Some(local)) => Via::Local(local),
                (_, None) => Via::Peer(route.next_member(&mut turn)),
            };
            let outcome = match via {
                Via::Local(local) => propose_local(&local.raft, data.clone(), client).await,
                Via::Peer(to) => {
                    let request = Request::Propose { data: data.clone(), client };
                    self.forward(Forward { to, group: route.id, request }).await
                }
            };
            if local.is_none() {
                self.learn_route(route, via, &outcome);
            }
            match Self::settle(outcome, retry_is_safe, &mut leader, &mut last).await {
                Some(Ok((index, response))) => {
                    if let Some(local) = local {
                        local.proposal_latency.record(started.elapsed());
                    }
                    return match decode::<Applied>(&response) {
                        Ok(Applied::Ok(response)) => Ok((index, response)),
                        Ok(Applied::Invalid(e)) => Err(ProposeError::Failed(format!("invalid command: {e}"))),
                        Err(e) => Err(ProposeError::Failed(format!("undecodable response: {e}"))),
                    };
                }
                Some(Err(error)) => return Err(error),
                None => {}
            }
        }
        Err(ProposeError::Timeout(timeout, last))
    }

    async fn forward(&self, forward: Forward) -> Outcome {
        self.inner.forwarder.send(forward).await.unwrap_or_else(|e| Outcome::Failed(e.to_string()))
    }

    /// One attempt's outcome: `Some` to return, `None` to retry (after
    /// following a leader hint or waiting a moment). An unknown outcome is
    /// retried only if `retry_is_safe` (a tagged or idempotent proposal, or
    /// a read).
    async fn settle(
        outcome: Outcome,
        retry_is_safe: bool,
        leader: &mut Option<NodeId>,
        last: &mut String,
    ) -> Option<Result<(u64, bytes::Bytes), ProposeError>> {
        match outcome {
            Outcome::Unknown(reason) if !retry_is_safe => Some(Err(ProposeError::OutcomeUnknown(reason))),
            Outcome::Applied { index, response } => Some(Ok((index, response))),
            Outcome::NotLeader { leader: known } => {
                *last = format!("not the leader (leader: {known:?})");
                if known.is_none() || known == *leader {
                    tokio::time::sleep(PROPOSE_RETRY_DELAY).await;
                }
                *leader = known;
                None
            }
            Outcome::Retry(reason) | Outcome::Unknown(reason) => {
                *last = reason;
                *leader = None;
                tokio::time::sleep(PROPOSE_RETRY_DELAY).await;
                None
            }
            Outcome::Failed(reason) => Some(Err(ProposeError::Failed(reason))),
        }
    }

    /// Runs a query on `group`. Stale reads are served by this node's
    /// replica; linearizable and lease reads by the leader, which this node
    /// finds and asks over the transport, retrying until a deadline.
    pub async fn query(
        &self,
        group: &str,
        kind: ReadKind,
        query: &Query,
    ) -> Result<QueryAnswer, ProposeError> {
        let (route, local) = self.target(group)?;
        let query = encode(query);
        let deadline = Instant::now() + READ_TIMEOUT;
        let RemoteRoute { mut leader, mut turn } = self.remote_start(route, local);
        let mut last = String::from("no attempt");
        while Instant::now() < deadline && !self.is_stopped() {
            let via = match (leader, local) {
                (Some(to), Some(_)) if to != self.id() && kind != ReadKind::Stale => Via::Peer(to),
                (_, Some(local)) => Via::Local(local),
                // Not run here: a member's leader answers (a stale read is
                // served linearizably, which is stronger than asked).
                (Some(to), None) => Via::Peer(to),
                (None, None) => Via::Peer(route.next_member(&mut turn)),
            };
            let outcome = match via {
                Via::Local(local) => {
                    Outcome::from_read(local.raft.send(Read { kind, query: query.clone() }).await)
                }
                Via::Peer(to) => {
                    let request = Request::Read { lease: kind == ReadKind::Lease, query: query.clone() };
                    self.forward(Forward { to, group: route.id, request }).await
                }
            };
            if local.is_none() {
                self.learn_route(route, via, &outcome);
            }
            // Reads change nothing: any outcome may be retried.
            match Self::settle(outcome, true, &mut leader, &mut last).await {
                Some(Ok((_, answer))) => return decode(&answer).map_err(ProposeError::Failed),
                Some(Err(error)) => return Err(error),
                None => {}
            }
        }
        Err(ProposeError::Timeout(READ_TIMEOUT, last))
    }

    /// Where the first attempt for a group this node does not run goes:
    /// the leader it knows, else the member [`RemoteRoute::turn`] names.
    fn remote_start(&self, route: &GroupRoute, local: Option<&Group>) -> RemoteRoute {
        if local.is_some() {
            return RemoteRoute::default();
        }
        self.inner.remote_routes.lock().unwrap_or_else(|p| p.into_inner()).start(route)
    }

    /// Learns how to reach a group this node does not run from the
    /// outcome of asking a member ([`RemoteRoutes::learn`]).
    fn learn_route(&self, route: &GroupRoute, via: Via<'_>, outcome: &Outcome) {
        let Via::Peer(asked) = via else { return };
        self.inner.remote_routes.lock().unwrap_or_else(|p| p.into_inner()).learn(route, asked, outcome);
    }

    /// The route of `group` and, when this node runs it, its local actors.
    fn target(&self, group: &str) -> Result<(&GroupRoute, Option<&Group>), ProposeError> {
        let route = self.route(group).ok_or_else(|| ProposeError::UnknownGroup(group.to_string()))?;
        Ok((route, self.group(group)))
    }

    /// Hands the leadership of every group this node leads to its most
    /// up-to-date voter, as etcd does before it stops, so that stopping a
    /// leader costs no election timeout. Waits until each such group has
    /// stepped down or [`HANDOVER_TIMEOUT`] has passed; a group that cannot
    /// hand over (a single voter, say) is left as it is.
    pub async fn hand_over_leadership(&self) {
        let deadline = Instant::now() + HANDOVER_TIMEOUT;
        for group in self.inner.groups.values() {
            let Ok(Ok(target)) = group.raft.send(StepDown).await else { continue };
            tracing::info!(group = %group.name, to = %target, "handing leadership over before stopping");
            while Instant::now() < deadline {
                match group.raft.send(GetStatus).await {
                    Ok(status) if status.role == Role::Leader => {}
                    _ => break,
                }
                tokio::time::sleep(HANDOVER_POLL).await;
            }
        }
    }

    /// Stops everything this node runs, as a crash would: Raft actors, the
    /// forwarder, workers and every socket.
    pub fn stop(&self) {
        self.inner.stopped.store(true, Ordering::Relaxed);
        for group in self.inner.groups.values() {
            group.raft.do_send(Shutdown);
            group.manager.do_send(StopManager);
        }
        self.inner.forwarder.do_send(StopForwarder);
        self.inner.gossip.do_send(StopGossip);
        self.inner.transport.shutdown();
    }
}

/// How often gossip's member list is read for the quorum managers.
const LIVENESS_POLL: Duration = Duration::from_millis(200);

#[derive(Message)]
#[rtype(result = "()")]
struct StopForwarder;

/// Stops the gossip actor. (`Leave` would announce a departure; a stopped
/// node should be found out as failed, like a crash.)
#[derive(Message)]
#[rtype(result = "()")]
struct StopGossip;

/// Stops a quorum manager.
#[derive(Message)]
#[rtype(result = "()")]
struct StopManager;

impl Handler<StopManager> for QuorumManager {
    type Result = ();

    fn handle(&mut self, _: StopManager, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

impl Handler<StopGossip> for GossipActor {
    type Result = ();

    fn handle(&mut self, _: StopGossip, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

impl Handler<StopForwarder> for Forwarder {
    type Result = ();

    fn handle(&mut self, _: StopForwarder, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::kv::KvCommand;
    use crate::state::tasks::TaskCommand;

    async fn settle(
        outcome: Outcome,
        retry_is_safe: bool,
    ) -> Option<Result<(u64, bytes::Bytes), ProposeError>> {
        let (mut leader, mut last) = (Some(NodeId(2)), String::new());
        Node::settle(outcome, retry_is_safe, &mut leader, &mut last).await
    }

    #[actix::test]
    async fn an_unknown_outcome_is_retried_only_when_a_retry_cannot_apply_twice() {
        let unknown = || Outcome::Unknown("leadership changed".into());
        assert_eq!(
            settle(unknown(), false).await,
            Some(Err(ProposeError::OutcomeUnknown("leadership changed".into())))
        );
        assert_eq!(settle(unknown(), true).await, None, "tagged or idempotent: retried");
        assert_eq!(settle(Outcome::Retry("a full log".into()), false).await, None, "never applied: retried");
        let put = Command::Kv(KvCommand::Put { key: "k".into(), value: "v".into() });
        let submit = Command::Task(TaskCommand::Submit { task_id: "t".into(), payload: String::new() });
        assert!(!put.is_idempotent() && submit.is_idempotent());
    }

    /// A group on nodes 1-3, seen from a node that does not run it.
    fn remote() -> GroupRoute {
        GroupRoute { id: GroupId(7), members: vec![NodeId(1), NodeId(2), NodeId(3)], members_named: true }
    }

    #[test]
    fn a_member_that_gave_no_answer_is_not_asked_first_again() {
        let (route, mut routes) = (remote(), RemoteRoutes::default());
        assert_eq!(routes.start(&route), RemoteRoute { leader: None, turn: 0 });
        let applied = Outcome::Applied { index: 1, response: bytes::Bytes::new() };
        routes.learn(&route, NodeId(2), &applied);
        assert_eq!(routes.start(&route).leader, Some(NodeId(2)), "the member that applied leads");
        // The leader dies: its requests time out. The next request starts
        // at node 3, not at node 2 again.
        routes.learn(&route, NodeId(2), &Outcome::Unknown("node 2 is down".into()));
        let mut start = routes.start(&route);
        assert_eq!((start.leader, route.next_member(&mut start.turn)), (None, NodeId(3)));
        // Node 3 names the new leader; a name outside the members is ignored.
        routes.learn(&route, NodeId(3), &Outcome::NotLeader { leader: Some(NodeId(1)) });
        assert_eq!(routes.start(&route).leader, Some(NodeId(1)));
        routes.learn(&route, NodeId(1), &Outcome::Failed("invalid command".into()));
        assert_eq!(routes.start(&route).leader, Some(NodeId(1)), "a refusal keeps the leader");
        routes.learn(&route, NodeId(3), &Outcome::NotLeader { leader: Some(NodeId(9)) });
        let mut start = routes.start(&route);
        assert_eq!(
            (start.leader, route.next_member(&mut start.turn)),
            (None, NodeId(1)),
            "past node 3, wrapping"
        );
    }
}
