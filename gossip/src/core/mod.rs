//! The pure gossip core: no IO, no clock, no async. Inputs are
//! [`GossipCore::tick`], [`GossipCore::receive`] and the local operations;
//! outputs are taken with [`GossipCore::take_output`].
//!
//! - [`dissemination`]: the rumor queue (what to spread, how often).
//! - [`swim`]: membership and failure detection.
//! - [`merkle`]: the Merkle tree over the key space.
//! - [`anti_entropy`]: the Merkle comparison protocol between two nodes.
//! - [`convergence`]: exact convergence of our recent updates, from acknowledgements.

pub mod anti_entropy;
pub mod convergence;
pub mod dissemination;
pub mod merkle;
pub mod swim;

use crate::config::{GossipConfig, Mode};
use crate::error::GossipError;
use crate::state::{Conflict, MergeOutcome, Operation, ReadValue, Store};
use crate::wire::{
    encoded_len, AntiEntropy, Exchange, GossipWire, MemberMeta, MemberStatus, MemberUpdate, Message,
    Suspicion, WireEntry, MESSAGE_OVERHEAD_BYTES,
};
use concord_transport::NodeId;
use convergence::{ConvergenceReport, Marks, Tracked, MARKS_PER_KEY_MAX};
use crdts::Dot;
use dissemination::{RumorItem, RumorQueue};
use merkle::{hash_bytes, mix, version_hash};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::Rng;
use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use swim::{Change, Member, Membership};

/// Something the host may want to know about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A member was added or changed status (its metadata carries its address).
    Member(MemberUpdate),
    /// A key changed by a local write or a merge.
    KeyChanged(String),
    /// Concurrent versions of a key were resolved (see the conflict history).
    Conflict(String),
    /// Fewer than half of the known members are reachable.
    PartitionSuspected,
    /// Reachability is back to at least half.
    PartitionHealed,
    /// Degraded (read-only) mode was entered (`true`) or left (`false`).
    Degraded(bool),
}

/// What the core produced since the last [`GossipCore::take_output`].
///
/// Messages may be sent in any order, and losing some is harmless: the core
/// never waits for a message, and gossip state is soft (a restarted node
/// rejoins and anti-entropy refills it), so nothing must be persisted first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Output {
    /// Messages to send, each to one peer.
    pub messages: Vec<(NodeId, Message)>,
    /// Events, in the order they happened.
    pub events: Vec<Event>,
}

/// Counters since start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Metrics {
    /// Messages produced.
    pub messages_sent: u64,
    /// Messages received.
    pub messages_received: u64,
    /// Encoded bytes of the messages produced.
    pub bytes_sent: u64,
    /// Encoded bytes of the messages received.
    pub bytes_received: u64,
    /// Key versions sent as rumors.
    pub rumor_entries_sent: u64,
    /// Key versions sent by anti-entropy.
    pub anti_entropy_entries_sent: u64,
    /// Anti-entropy sessions started.
    pub anti_entropy_sessions: u64,
    /// Inbound entries that could not be decoded (skipped).
    pub bad_entries: u64,
    /// Items dropped because alone they exceed `message_size_max`.
    pub oversized_dropped: u64,
    /// Conflicts detected.
    pub conflicts: u64,
    /// Acknowledgements of tracked updates sent ([`Message::Held`]).
    pub held_sent: u64,
    /// Acknowledgements received that matched no tracked update (expired
    /// or unknown), dropped.
    pub held_dropped: u64,
}

/// The gossip state machine of one node.
pub struct GossipCore {
    id: NodeId,
    config: GossipConfig,
    rng: StdRng,
    tick: u64,
    store: Store,
    membership: Membership,
    member_rumors: RumorQueue,
    key_rumors: RumorQueue,
    tracked: VecDeque<Tracked>,
    marks: Marks,
    live: HashSet<NodeId>,
    output: Output,
    metrics: Metrics,
    next_anti_entropy_tick: u64,
    anti_entropy_with: Option<NodeId>,
    partition_suspected: bool,
    degraded: bool,
    seeds: Vec<NodeId>,
    urgent_pending: bool,
    shared_peers: Option<Arc<[NodeId]>>,
    next_member_sync_tick: u64,
}

/// Bound on member states sent back to correct one stale message.
pub const CORRECTIONS_LEN_MAX: usize = 16;

/// Which rumors an exchange carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rumors {
    None,
    Membership,
    All,
}

fn member_rumor_id(update: &MemberUpdate) -> u64 {
    mix(mix(update.node.0 ^ 0x6d65_6d62) ^ mix(update.incarnation) ^ update.status as u64)
}

fn suspicion_rumor_id(suspicion: &Suspicion) -> u64 {
    mix(mix(suspicion.node.0 ^ 0x7375_7370) ^ mix(suspicion.incarnation) ^ mix(suspicion.accuser.0 ^ 0x61))
}

impl GossipCore {
    /// A node alone in its cluster. All randomness comes from `rng`.
    pub fn new(id: NodeId, meta: MemberMeta, config: GossipConfig, mut rng: StdRng) -> GossipCore {
        let next_anti_entropy_tick = rng.random_range(1..=config.anti_entropy_interval_ticks.max(1));
        GossipCore {
            id,
            store: Store::new(config.conflict_history_len_max),
            membership: Membership::new(id, meta),
            member_rumors: RumorQueue::new(config.rumor_queue_len_max),
            key_rumors: RumorQueue::new(config.rumor_queue_len_max),
            tracked: VecDeque::new(),
            marks: Marks::default(),
            live: HashSet::new(),
            output: Output::default(),
            metrics: Metrics::default(),
            next_anti_entropy_tick,
            anti_entropy_with: None,
            partition_suspected: false,
            degraded: false,
            seeds: Vec::new(),
            urgent_pending: false,
            shared_peers: None,
            next_member_sync_tick: 0,
            tick: 0,
            rng,
            config,
        }
    }

    /// A node of a dissemination-only cluster: its peers are the shared,
    /// preloaded `peers` (every node of the cluster, ourselves included,
    /// held once for all nodes), its member list stays empty and the
    /// failure detector idle. For simulations of very large clusters, where
    /// a member list per node would take memory quadratic in the cluster
    /// size; rumors, pulls and anti-entropy behave as in a full node.
    pub fn with_shared_peers(
        id: NodeId,
        meta: MemberMeta,
        config: GossipConfig,
        rng: StdRng,
        peers: Arc<[NodeId]>,
    ) -> GossipCore {
        let mut core = GossipCore::new(id, meta, config, rng);
        core.shared_peers = Some(peers);
        core
    }

    /// Cluster size as seen here (ourselves included).
    pub fn cluster_size(&self) -> usize {
        match &self.shared_peers {
            Some(peers) => peers.len().max(1),
            None => self.membership.cluster_size(),
        }
    }

    /// Up to `count` distinct live peers, chosen at random.
    fn random_peers(&mut self, count: usize) -> Vec<NodeId> {
        match &self.shared_peers {
            Some(peers) => {
                let own = self.id;
                let picked = peers.choose_multiple(&mut self.rng, count + 1);
                picked.copied().filter(|p| *p != own).take(count).collect()
            }
            None => {
                let live: Vec<NodeId> = self.membership.live().collect();
                live.choose_multiple(&mut self.rng, count).copied().collect()
            }
        }
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The configuration.
    pub fn config(&self) -> &GossipConfig {
        &self.config
    }

    /// Ticks so far.
    pub fn now(&self) -> u64 {
        self.tick
    }

    /// Takes everything produced so far.
    pub fn take_output(&mut self) -> Output {
        std::mem::take(&mut self.output)
    }

    fn send(&mut self, to: NodeId, message: Message) {
        let wire = GossipWire::V2(message);
        let size = encoded_len(&wire);
        if size > self.config.message_size_max {
            // Builders cut to the budget; only metadata larger than a whole
            // message (a member's tags) can get here. Dropped, never sent.
            self.metrics.oversized_dropped += 1;
            tracing::warn!(%to, size, "message over message_size_max dropped");
            return;
        }
        self.metrics.messages_sent += 1;
        self.metrics.bytes_sent += size as u64;
        let GossipWire::V2(message) = wire else { unreachable!("wrapped as version 2 above") };
        self.output.messages.push((to, message));
    }

    /// Joins through `seeds`: introduces ourselves; each seed answers with
    /// its member list and spreads our arrival.
    pub fn join(&mut self, seeds: &[NodeId]) {
        self.seeds = seeds.iter().copied().filter(|s| *s != self.id).collect();
        let me = self.membership.me().clone();
        // We spread our own arrival too, in case the seed's rumor misses someone.
        self.member_rumors.push(RumorItem::Member(self.id), member_rumor_id(&me), false);
        let own = self.id;
        for seed in seeds.iter().filter(|s| **s != own) {
            self.send(*seed, Message::Join { member: me.clone() });
        }
    }

    /// Adds members directly, as if learned at join (for hosts that know
    /// the cluster, and for simulations that start from a formed cluster).
    pub fn add_members(&mut self, members: impl IntoIterator<Item = MemberUpdate>) {
        for update in members {
            self.apply_member(update, false);
        }
    }

    /// Leaves the cluster: the leave is spread as a rumor; writes are then refused.
    pub fn leave(&mut self) {
        let me = self.membership.leave();
        self.member_rumors.push(RumorItem::Member(self.id), member_rumor_id(&me), true);
        // A leave is spread eagerly to more peers than one round's fanout.
        let chosen = self.random_peers(self.config.fanout * 3);
        for peer in chosen {
            let exchange = self.build_exchange(false, Rumors::Membership, None, false);
            self.send(peer, Message::Gossip(exchange));
        }
    }

    /// Whether this node has left.
    pub fn has_left(&self) -> bool {
        self.membership.me().status == MemberStatus::Left
    }

    /// Applies a local write and starts spreading it. Refused, with nothing
    /// changed, in degraded mode, after leaving, on a kind mismatch, or if
    /// the new version would not fit in one message.
    pub fn update(&mut self, key: &str, operation: Operation) -> Result<Dot<NodeId>, GossipError> {
        if self.has_left() {
            return Err(GossipError::Left);
        }
        if self.degraded {
            return Err(GossipError::Degraded);
        }
        let (candidate, _) = self.store.candidate(self.id, key, &operation)?;
        let size = encoded_len(&WireEntry::encode(key, &candidate));
        let max = self.config.message_size_max.saturating_sub(MESSAGE_OVERHEAD_BYTES);
        if size > max {
            return Err(GossipError::TooLarge { size, max });
        }
        let dot = self.store.apply(self.id, key, operation)?;
        self.key_changed(key);
        if self.tracked.len() >= self.config.tracked_updates_max.max(1) {
            self.tracked.pop_front();
        }
        self.tracked.push_back(Tracked::new(key.to_string(), dot, self.tick));
        self.marks.add(key, self.id, dot.counter);
        self.refresh_live();
        Ok(dot)
    }

    fn key_changed(&mut self, key: &str) {
        if let Some(entry) = self.store.get(key) {
            self.key_rumors.push(RumorItem::Key(key.to_string()), version_hash(key, &entry.clock), false);
        }
        self.output.events.push(Event::KeyChanged(key.to_string()));
    }

    /// Reads one key.
    pub fn read(&self, key: &str) -> Option<ReadValue> {
        self.store.read(key)
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Conflicts detected, oldest first.
    pub fn conflicts(&self) -> impl Iterator<Item = &Conflict> {
        self.store.conflicts()
    }

    /// Our own member state.
    pub fn me(&self) -> &MemberUpdate {
        self.membership.me()
    }

    /// Other members as seen here, tombstones included.
    pub fn members(&self) -> impl Iterator<Item = &Member> {
        self.membership.members().values()
    }

    /// The membership (failure detector state, local health).
    pub fn membership(&self) -> &Membership {
        &self.membership
    }

    /// Counters since start.
    pub fn metrics(&self) -> Metrics {
        self.metrics
    }

    /// Whether a partition is suspected (reachability below half).
    pub fn partition_suspected(&self) -> bool {
        self.partition_suspected
    }

    /// Whether writes are refused.
    pub fn degraded(&self) -> bool {
        self.degraded
    }

    /// Turns read-only degraded mode on or off by hand.
    pub fn set_degraded(&mut self, on: bool) {
        if self.degraded != on {
            self.degraded = on;
            self.output.events.push(Event::Degraded(on));
        }
    }

    /// Starts anti-entropy with a random live peer at the next tick.
    pub fn anti_entropy_now(&mut self) {
        self.next_anti_entropy_tick = self.tick + 1;
    }

    /// The exact convergence of one of our updates, if still tracked: its
    /// holders among the members held live now.
    pub fn convergence(&self, key: &str, dot: &Dot<NodeId>) -> Option<ConvergenceReport> {
        let live = self.live_members();
        self.tracked
            .iter()
            .find(|t| t.key == key && &t.dot == dot)
            .map(|t| t.report(&live, self.config.tick_ms))
    }

    /// The exact convergence of every tracked update, oldest first.
    pub fn convergence_all(&self) -> Vec<ConvergenceReport> {
        let live = self.live_members();
        self.tracked.iter().map(|t| t.report(&live, self.config.tick_ms)).collect()
    }

    /// The members held live (alive or suspect), ourselves excluded.
    fn live_members(&self) -> HashSet<NodeId> {
        match &self.shared_peers {
            Some(peers) => peers.iter().copied().filter(|p| *p != self.id).collect(),
            None => self.membership.live().collect(),
        }
    }

    /// Refreshes the live members that acknowledgements are counted among,
    /// while some tracked update has not reached every member (the set is
    /// rebuilt at most once per tick, not per acknowledgement), and records
    /// the progress a membership change made.
    fn refresh_live(&mut self) {
        if self.tracked.iter().all(|t| t.all_tick.is_some()) {
            self.live.clear();
            return;
        }
        self.live = self.live_members();
        let (tick, threshold) = (self.tick, self.config.convergence_threshold);
        for tracked in self.tracked.iter_mut() {
            tracked.recount(&self.live);
            tracked.progress(&self.live, tick, threshold);
        }
    }

    /// `from` holds our update of `key` numbered `counter` (and our earlier
    /// updates of it).
    fn held(&mut self, from: NodeId, key: &str, counter: u64) {
        let (tick, threshold, me) = (self.tick, self.config.convergence_threshold, self.id);
        let mut counted = false;
        for tracked in self.tracked.iter_mut().filter(|t| t.covered_by(key, me, counter)) {
            tracked.held_by(from, &self.live);
            tracked.progress(&self.live, tick, threshold);
            counted = true;
        }
        if !counted {
            self.metrics.held_dropped += 1;
        }
    }

    /// One tick: failure detection, a gossip round, anti-entropy when due.
    pub fn tick(&mut self) {
        self.tick += 1;
        let mut out = Vec::new();
        let changes = self.membership.tick(self.tick, &self.config, &mut self.rng, &mut out);
        for (to, message) in out {
            self.send(to, message);
        }
        for change in changes {
            self.spread_change(change, None);
        }
        self.refresh_live();
        // This tick's gossip round carries the urgent rumors.
        self.urgent_pending = false;
        self.check_partition();
        let alone = self.cluster_size() == 1;
        if alone && !self.seeds.is_empty() && self.tick % self.config.join_retry_interval_ticks.max(1) == 0 {
            // No seed answered yet (lost message, seed not up): ask again.
            let seeds = self.seeds.clone();
            self.join(&seeds);
        }
        self.gossip_round();
        if self.has_left() {
            return;
        }
        let target = match self.anti_entropy_with.take() {
            Some(peer) => Some(peer),
            None if self.tick >= self.next_anti_entropy_tick => {
                self.next_anti_entropy_tick = self.tick + self.config.anti_entropy_interval_ticks.max(1);
                self.random_peers(1).first().copied()
            }
            None => None,
        };
        if let Some(peer) = target {
            self.metrics.anti_entropy_sessions += 1;
            let start = anti_entropy::start(&self.store);
            self.send(peer, Message::AntiEntropy(start));
        }
    }

    fn gossip_round(&mut self) {
        let targets = self.random_peers(self.config.fanout);
        if self.config.dead_gossip_interval_ticks > 0
            && self.tick % self.config.dead_gossip_interval_ticks == 0
        {
            let dead: Vec<NodeId> = self.membership.dead().collect();
            if let Some(target) = dead.choose(&mut self.rng).copied() {
                self.tell_dead(target);
            }
        }
        let (push, pull) = match self.config.mode {
            Mode::Push => (true, false),
            Mode::Pull => (false, true),
            Mode::PushPull => (true, true),
        };
        let rumors = if push { Rumors::All } else { Rumors::None };
        for target in targets {
            let exchange = self.build_exchange(pull, rumors, None, pull);
            if !pull && exchange.members.is_empty() && exchange.entries.is_empty() {
                continue;
            }
            self.send(target, Message::Gossip(exchange));
        }
    }

    /// Sends the urgent membership rumors at once to `fanout` live peers,
    /// instead of waiting for the next round: liveness news (a suspicion,
    /// an accusation, a death, a refutation) then spreads at network speed,
    /// each node forwarding it once when it first learns it.
    fn push_urgent(&mut self) {
        if !self.urgent_pending {
            return;
        }
        self.urgent_pending = false;
        let targets = self.random_peers(self.config.fanout);
        for target in targets {
            let exchange = self.build_exchange(false, Rumors::Membership, None, false);
            if exchange.members.is_empty() && exchange.suspicions.is_empty() {
                break;
            }
            self.send(target, Message::Gossip(exchange));
        }
    }

    /// Builds one exchange, most urgent first: membership rumors (liveness
    /// news first), state rumors (least transmitted first), then the digest.
    /// Rumors whose ids are in `known` are left out.
    fn build_exchange(
        &mut self,
        wants_reply: bool,
        rumors: Rumors,
        known: Option<&HashSet<u64>>,
        digest: bool,
    ) -> Exchange {
        let mut exchange = Exchange {
            wants_reply,
            root: self.store.tree().root(),
            members_digest: self.members_digest(),
            ..Exchange::default()
        };
        let mut budget = self.config.message_size_max.saturating_sub(MESSAGE_OVERHEAD_BYTES);
        let transmissions_max = self.config.transmissions_max(self.cluster_size());
        if rumors != Rumors::None {
            for item in self.member_rumors.by_urgency(known) {
                let node = match &item {
                    RumorItem::Member(node) => node,
                    RumorItem::Suspicion(suspicion) => {
                        let size = encoded_len(suspicion);
                        if size > budget {
                            break;
                        }
                        budget -= size;
                        exchange.suspicions.push(*suspicion);
                        self.member_rumors.sent(&item, transmissions_max);
                        continue;
                    }
                    RumorItem::Key(_) => continue,
                };
                let update = if *node == self.id {
                    self.membership.me().clone()
                } else {
                    match self.membership.members().get(node) {
                        Some(member) => member.state.clone(),
                        None => continue,
                    }
                };
                let size = encoded_len(&update);
                if size > budget {
                    break;
                }
                budget -= size;
                exchange.members.push(update);
                self.member_rumors.sent(&item, transmissions_max);
            }
        }
        if rumors == Rumors::All {
            for item in self.key_rumors.by_urgency(known) {
                let RumorItem::Key(key) = &item else { continue };
                let Some(entry) = self.store.get(key) else { continue };
                let wire = WireEntry::encode(key, entry).with_tracked(self.marks.of(key));
                let size = encoded_len(&wire);
                if size > budget {
                    break;
                }
                budget -= size;
                exchange.entries.push(wire);
                self.metrics.rumor_entries_sent += 1;
                self.key_rumors.sent(&item, transmissions_max);
            }
        }
        if digest {
            let ids = self.member_rumors.ids().into_iter().chain(self.key_rumors.ids());
            for id in ids {
                let size = encoded_len(&id);
                if size > budget {
                    break;
                }
                budget -= size;
                exchange.digest.push(id);
            }
        }
        exchange
    }

    /// Handles one message from `from`.
    pub fn receive(&mut self, from: NodeId, message: Message) {
        self.metrics.messages_received += 1;
        let wire = GossipWire::V2(message);
        self.metrics.bytes_received += encoded_len(&wire) as u64;
        let GossipWire::V2(message) = wire else { unreachable!("wrapped as version 2 above") };
        if self.has_left() {
            return;
        }
        match message {
            Message::Gossip(exchange) => {
                let reply = exchange.wants_reply;
                let known: HashSet<u64> = exchange.digest.iter().copied().collect();
                self.absorb(from, exchange);
                if reply {
                    let answer = self.build_exchange(false, Rumors::All, Some(&known), true);
                    self.send(from, Message::GossipReply(answer));
                }
            }
            Message::GossipReply(exchange) => self.absorb(from, exchange),
            Message::Ping { sequence, on_behalf_of } => {
                self.send(from, Message::Ack { sequence, on_behalf_of })
            }
            Message::Ack { sequence, on_behalf_of: Some(requester) } => {
                self.membership.relay_answered(requester, sequence);
                self.send(requester, Message::Ack { sequence, on_behalf_of: None })
            }
            Message::Ack { sequence, on_behalf_of: None } => self.membership.acked(sequence),
            Message::Nack { sequence } => self.membership.nacked(sequence),
            Message::PingRequest { sequence, target } => {
                self.membership.relay(from, sequence, self.tick, &self.config);
                self.send(target, Message::Ping { sequence, on_behalf_of: Some(from) })
            }
            Message::Join { member } => {
                let joiner = member.node;
                // A member that restarted empty joins at incarnation 0; if
                // we reaped it at a higher one, we tell it so it can refute
                // (its list below carries any other record of it).
                let reaped = self.membership.reaped_incarnation(joiner).map(|incarnation| MemberUpdate {
                    status: MemberStatus::Dead,
                    incarnation,
                    ..member.clone()
                });
                self.apply_member(member, true);
                let mut list: Vec<MemberUpdate> = vec![self.membership.me().clone()];
                list.extend(reaped);
                list.extend(self.membership.members().values().map(|m| m.state.clone()));
                let budget = self.config.message_size_max.saturating_sub(MESSAGE_OVERHEAD_BYTES);
                let (chunks, oversized) = crate::wire::chunk(list, budget);
                self.metrics.oversized_dropped += oversized as u64;
                for members in chunks {
                    self.send(joiner, Message::JoinReply { members });
                }
            }
            Message::JoinReply { members } => {
                for update in members {
                    self.apply_member(update, true);
                }
                self.anti_entropy_with = Some(from);
            }
            Message::AntiEntropy(step) => self.anti_entropy(from, step),
            Message::Held { key, counter } => self.held(from, &key, counter),
            Message::MemberSync { members, reply } => {
                for update in members {
                    self.apply_member(update, true);
                }
                if reply {
                    self.send_member_list(from, false);
                }
            }
        }
        self.push_urgent();
    }

    /// Tells a member we hold dead that we do, and how we are: if it is in
    /// fact up (a partition between us healed), it refutes with a higher
    /// incarnation and its refutation spreads. It does not answer in kind
    /// (the message carries our own state), so two nodes that hold each
    /// other dead cannot ping-pong.
    fn tell_dead(&mut self, target: NodeId) {
        let Some(member) = self.membership.members().get(&target) else { return };
        let exchange = Exchange {
            members: vec![member.state.clone(), self.membership.me().clone()],
            root: self.store.tree().root(),
            ..Exchange::default()
        };
        self.send(target, Message::Gossip(exchange));
    }

    /// The order-independent hash of the (member, incarnation) pairs held
    /// up, ourselves included (see [`Exchange::members_digest`]); 0 for a
    /// dissemination-only node, whose member list is shared.
    pub fn members_digest(&self) -> u64 {
        if self.shared_peers.is_some() {
            return 0;
        }
        let pair = |node: NodeId, incarnation: u64| mix(mix(node.0 ^ 0x6c69_7374) ^ incarnation);
        let me = self.membership.me();
        let mut digest = pair(me.node, me.incarnation);
        for member in self.membership.members().values() {
            if matches!(member.state.status, MemberStatus::Alive | MemberStatus::Suspect) {
                digest ^= pair(member.state.node, member.state.incarnation);
            }
        }
        digest.max(1)
    }

    /// Sends our whole member list (ourselves first) to `to`, in chunks
    /// that fit `message_size_max`.
    fn send_member_list(&mut self, to: NodeId, reply: bool) {
        let mut list: Vec<MemberUpdate> = vec![self.membership.me().clone()];
        list.extend(self.membership.members().values().map(|m| m.state.clone()));
        let budget = self.config.message_size_max.saturating_sub(MESSAGE_OVERHEAD_BYTES);
        let (chunks, oversized) = crate::wire::chunk(list, budget);
        self.metrics.oversized_dropped += oversized as u64;
        for members in chunks {
            self.send(to, Message::MemberSync { members, reply });
        }
    }

    fn absorb(&mut self, from: NodeId, exchange: Exchange) {
        let differs = exchange.members_digest != 0 && exchange.members_digest != self.members_digest();
        if differs && self.tick >= self.next_member_sync_tick && !self.has_left() {
            self.next_member_sync_tick = self.tick + self.config.member_sync_interval_ticks.max(1);
            self.send_member_list(from, true);
        }
        let sender_dead =
            self.membership.members().get(&from).is_some_and(|m| m.state.status == MemberStatus::Dead);
        if sender_dead && !exchange.members.iter().any(|m| m.node == from) {
            self.tell_dead(from);
        }
        let corrections = self.corrections(&exchange);
        if !corrections.is_empty() {
            let members = corrections.into_iter().take(CORRECTIONS_LEN_MAX).collect();
            let exchange = Exchange { members, root: self.store.tree().root(), ..Exchange::default() };
            self.send(from, Message::Gossip(exchange));
        }
        for update in exchange.members {
            self.apply_member(update, true);
        }
        for suspicion in exchange.suspicions {
            let previous = self.membership.members().get(&suspicion.node).map(|m| m.state.status);
            let changes = self.membership.accuse(suspicion, self.tick, &self.config);
            for change in changes {
                self.spread_change(change, previous);
            }
        }
        for wire in &exchange.entries {
            self.merge_entry(wire);
        }
    }

    /// Newer states of members that `exchange` calls suspect, dead or gone
    /// at an older incarnation (ourselves included): the sender missed a
    /// refutation, and the rumor of it may have stopped spreading, so we
    /// answer it directly. It does not loop: the answer supersedes what the
    /// sender holds.
    fn corrections(&self, exchange: &Exchange) -> Vec<MemberUpdate> {
        let newer = |node: NodeId, incarnation: u64| -> Option<MemberUpdate> {
            let current = if node == self.id {
                self.membership.me()
            } else {
                &self.membership.members().get(&node)?.state
            };
            (current.status == MemberStatus::Alive && current.incarnation > incarnation)
                .then(|| current.clone())
        };
        let mut out: Vec<MemberUpdate> = Vec::new();
        let accused = exchange
            .members
            .iter()
            .filter(|m| m.status != MemberStatus::Alive)
            .map(|m| (m.node, m.incarnation))
            .chain(exchange.suspicions.iter().map(|s| (s.node, s.incarnation)));
        for (node, incarnation) in accused {
            if let Some(update) = newer(node, incarnation) {
                if !out.iter().any(|m| m.node == update.node) {
                    out.push(update);
                }
            }
        }
        out
    }

    fn merge_entry(&mut self, wire: &WireEntry) {
        let entry = match wire.decode() {
            Ok(entry) => entry,
            Err(error) => {
                self.metrics.bad_entries += 1;
                tracing::warn!(key = %wire.key, %error, "undecodable entry skipped");
                return;
            }
        };
        let marks = &wire.tracked[..wire.tracked.len().min(MARKS_PER_KEY_MAX)];
        let counter =
            |store: &Store, origin: &NodeId| store.get(&wire.key).map_or(0, |e| e.clock.get(origin));
        let before: Vec<u64> = marks.iter().map(|(origin, _)| counter(&self.store, origin)).collect();
        match self.store.merge(&wire.key, entry, self.tick) {
            MergeOutcome::Unchanged => {}
            MergeOutcome::Advanced => self.key_changed(&wire.key),
            MergeOutcome::Conflict => {
                self.metrics.conflicts += 1;
                self.output.events.push(Event::Conflict(wire.key.clone()));
                self.key_changed(&wire.key);
            }
        }
        for ((origin, marked), before) in marks.iter().zip(before) {
            if counter(&self.store, origin) < *marked {
                continue; // a mark the entry does not cover: ignored
            }
            self.marks.add(&wire.key, *origin, *marked);
            // Once per update: only the merge that first covers it acknowledges.
            if before < *marked && *origin != self.id {
                self.metrics.held_sent += 1;
                self.send(*origin, Message::Held { key: wire.key.clone(), counter: *marked });
            }
        }
    }

    fn apply_member(&mut self, update: MemberUpdate, spread: bool) {
        let previous = self.membership.members().get(&update.node).map(|m| m.state.status);
        match self.membership.apply(update, self.tick, &self.config) {
            Some(change) if spread => self.spread_change(change, previous),
            Some(Change::Member(update)) => self.output.events.push(Event::Member(update)),
            Some(Change::Refuted(_) | Change::Accused(_)) | None => {}
        }
    }

    fn spread_change(&mut self, change: Change, previous: Option<MemberStatus>) {
        let urgent = change.is_urgent(previous);
        self.urgent_pending |= urgent;
        match change {
            Change::Member(update) => {
                let revived = previous == Some(MemberStatus::Dead) && update.status == MemberStatus::Alive;
                if revived && self.anti_entropy_with.is_none() {
                    self.anti_entropy_with = Some(update.node);
                }
                self.member_rumors.push(RumorItem::Member(update.node), member_rumor_id(&update), urgent);
                self.output.events.push(Event::Member(update));
            }
            Change::Refuted(me) => {
                self.member_rumors.push(RumorItem::Member(me.node), member_rumor_id(&me), urgent);
            }
            Change::Accused(suspicion) => {
                self.member_rumors.push(
                    RumorItem::Suspicion(suspicion),
                    suspicion_rumor_id(&suspicion),
                    urgent,
                );
            }
        }
    }

    fn check_partition(&mut self) {
        let suspected = self.membership.reachability() < 0.5;
        if suspected == self.partition_suspected {
            return;
        }
        self.partition_suspected = suspected;
        if suspected {
            self.output.events.push(Event::PartitionSuspected);
            if self.config.degraded_mode_on_partition {
                self.set_degraded(true);
            }
        } else {
            self.output.events.push(Event::PartitionHealed);
            if self.config.degraded_mode_on_partition {
                self.set_degraded(false);
            }
            self.anti_entropy_now();
        }
    }

    fn anti_entropy(&mut self, from: NodeId, step: AntiEntropy) {
        let answer = anti_entropy::answer(&self.store, &self.marks, step, self.config.message_size_max);
        self.metrics.anti_entropy_entries_sent += answer.entries_sent as u64;
        self.metrics.oversized_dropped += answer.oversized as u64;
        for wire in &answer.received {
            self.merge_entry(wire);
        }
        for reply in answer.replies {
            self.send(from, Message::AntiEntropy(reply));
        }
    }

    /// A stable hash of this node's whole state (root and key count), for traces.
    pub fn state_digest(&self) -> u64 {
        mix(self.store.tree().root() ^ hash_bytes(&(self.store.len() as u64).to_le_bytes()))
    }
}
