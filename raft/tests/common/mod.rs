//! Test harness shared by the paper tests and the simulations: a node that
//! drives the pure core synchronously over in-memory "durable" state and a
//! key-value state machine with client sessions, plus the invariant checker.
#![allow(dead_code)]

use bytes::Bytes;
use concord_raft::core::{
    ClientTag, Config, Entry, Event, HardState, Index, Membership, Message, Payload, Raft, ReadState, Ready,
    Recovered, Role, Snapshot, SnapshotMeta, Term,
};
use concord_raft::session::{SessionCheck, Sessions};
use concord_raft::storage::memory::MemoryStore;
use concord_raft::storage::{
    LogStore, SnapshotStager, StagedSnapshot, StateStore, Storage, StorageError, WriteBatch,
};
use concord_transport::sim::{Outbox, SimNode, Time};
use concord_transport::NodeId;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Encodes a put of `value` under `key`.
pub fn put(key: u8, value: u64) -> Bytes {
    let mut data = vec![key];
    data.extend_from_slice(&value.to_le_bytes());
    Bytes::from(data)
}

fn decode_put(data: &[u8]) -> Option<(u8, u64)> {
    let (&key, rest) = data.split_first()?;
    Some((key, u64::from_le_bytes(rest.try_into().ok()?)))
}

/// The replicated key-value state machine.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kv {
    pub map: BTreeMap<u8, u64>,
    pub sessions: Sessions,
    /// How many times each value was written: exactly-once means ≤ 1.
    pub effects: BTreeMap<u64, u32>,
    pub applied: Index,
}

impl Kv {
    fn apply(&mut self, entry: &Entry) -> Option<ClientTag> {
        assert_eq!(entry.index, self.applied + 1, "entries are applied in order, once each");
        self.applied = entry.index;
        let Payload::Command { client, data } = &entry.payload else { return None };
        if let Some(tag) = client {
            if self.sessions.check(*tag) != SessionCheck::Apply {
                return Some(*tag);
            }
        }
        if let Some((key, value)) = decode_put(data) {
            self.map.insert(key, value);
            *self.effects.entry(value).or_default() += 1;
        }
        if let Some(tag) = client {
            self.sessions.record(*tag, entry.index, Bytes::new());
        }
        *client
    }

    fn encode(&self) -> Bytes {
        Bytes::from(bincode::serde::encode_to_vec(self, bincode::config::standard()).expect("encodable"))
    }

    fn decode(data: &[u8]) -> Kv {
        if data.is_empty() {
            return Kv::default();
        }
        bincode::serde::decode_from_slice(data, bincode::config::standard()).expect("our own snapshot").0
    }
}

/// A node of the tests.
pub struct TestNode {
    pub id: NodeId,
    pub raft: Raft,
    config: Config,
    seed: u64,
    /// What survives a crash.
    pub durable: MemoryStore,
    pub kv: Kv,
    /// Client proposals made at this node: (index, term) → tag.
    proposals: BTreeMap<Index, (Term, ClientTag)>,
    /// Puts this node saw applied for its own proposals, with the time.
    pub acks: Vec<(ClientTag, Time)>,
    /// Reads: id → key, waiting for confirmation.
    reads: BTreeMap<u64, u8>,
    confirmed_reads: Vec<(ReadState, u8)>,
    /// Reads answered: (id, value seen, time).
    pub read_results: Vec<(u64, Option<u64>, Time)>,
    pub events: Vec<Event>,
    pub incarnation: u64,
    pub now: Time,
    /// Before each batch, send what may leave early
    /// (`Raft::take_immediate_messages`), and while it is written the
    /// heartbeats and their answers (`Raft::take_heartbeat_messages`), as an
    /// actor whose store is busy does.
    pub early_messages: bool,
    /// Leave each batch's write in flight until the next tick, as an actor
    /// writing on its persistence thread does, and meanwhile apply what the
    /// leader may apply early (`Raft::take_committed_early`). A crash loses
    /// the write in flight.
    pub writes_in_flight: bool,
    /// The batch being written, with `writes_in_flight`.
    writing: Option<Ready>,
    /// Entries applied while this node's own write of them was in flight.
    pub applied_early: u64,
    /// A snapshot takes this long to build (ms), as a large state does on
    /// an actor's blocking pool: it captures the state when it is due and
    /// compacts the log once built, applying going on meanwhile. Then it
    /// takes as long to save, the store busy as an actor's is: no batch is
    /// taken meanwhile, only what needs nothing durable leaves
    /// (`Raft::take_immediate_messages`), and a leader applies what its
    /// followers committed (`Raft::take_committed_early`). `None` takes and
    /// saves it at once.
    pub snapshot_build_ms: Option<Time>,
    /// The snapshot being built: its index, its data, when it is built.
    building: Option<(Index, Bytes, Time)>,
    /// The snapshot being saved, and when the save ends.
    saving: Option<(Snapshot, Time)>,
    /// The longest this node's log has been, in entries that
    /// `max_log_entries` bounds (see `bounded_log_len`).
    pub log_len_max: u64,
}

impl TestNode {
    pub fn new(id: NodeId, membership: Membership, config: Config, seed: u64) -> TestNode {
        let durable = MemoryStore::new(Snapshot {
            meta: SnapshotMeta { index: 0, term: 0, membership },
            data: Bytes::new(),
        });
        let raft = Self::boot(id, &config, &durable, seed);
        TestNode {
            id,
            raft,
            config,
            seed,
            durable,
            kv: Kv::default(),
            proposals: BTreeMap::new(),
            acks: Vec::new(),
            reads: BTreeMap::new(),
            confirmed_reads: Vec::new(),
            read_results: Vec::new(),
            events: Vec::new(),
            incarnation: 0,
            now: 0,
            early_messages: false,
            writes_in_flight: false,
            writing: None,
            applied_early: 0,
            snapshot_build_ms: None,
            building: None,
            saving: None,
            log_len_max: 0,
        }
    }

    fn boot(id: NodeId, config: &Config, durable: &MemoryStore, seed: u64) -> Raft {
        let recovered: Recovered = durable.recover().expect("the memory store recovers");
        Raft::new(id, config.clone(), recovered, seed).expect("valid test config")
    }

    /// Proposes a tagged put at this node.
    pub fn propose(&mut self, tag: ClientTag, key: u8, value: u64) -> bool {
        match self.raft.propose(put(key, value), Some(tag)) {
            Ok((index, term)) => {
                self.proposals.insert(index, (term, tag));
                true
            }
            Err(_) => false,
        }
    }

    /// Starts a linearizable read of `key`.
    pub fn read(&mut self, id: u64, key: u8) -> bool {
        if self.raft.read_index(id).is_err() {
            return false;
        }
        self.reads.insert(id, key);
        true
    }

    /// Reads `key` from the leader lease; `false` if the lease is not held.
    pub fn read_lease(&mut self, id: u64, key: u8) -> bool {
        match self.raft.read_lease(id) {
            Ok(read) => {
                self.confirmed_reads.push((read, key));
                self.answer_reads();
                true
            }
            Err(_) => false,
        }
    }

    /// Queues the confirmed reads and answers those whose index is applied.
    fn confirm_reads(&mut self, reads: Vec<ReadState>) {
        for read in reads {
            if let Some(key) = self.reads.remove(&read.id) {
                self.confirmed_reads.push((read, key));
            }
        }
        self.answer_reads();
    }

    fn answer_reads(&mut self) {
        let applied = self.kv.applied;
        let (ready_reads, waiting): (Vec<_>, Vec<_>) =
            self.confirmed_reads.drain(..).partition(|(r, _)| r.index <= applied);
        self.confirmed_reads = waiting;
        for (read, key) in ready_reads {
            self.read_results.push((read.id, self.kv.map.get(&key).copied(), self.now));
        }
    }

    /// Carries out every ready batch, as a driver must.
    pub fn process(&mut self, out: &mut dyn FnMut(NodeId, Message)) {
        if self.writing.is_some() {
            return self.while_writing(out);
        }
        if self.saving.is_some() {
            return self.while_saving(out);
        }
        if self.early_messages {
            for (to, m) in self.raft.take_immediate_messages() {
                out(to, m);
            }
        }
        while self.raft.has_ready() {
            let mut ready = self.raft.ready();
            for (to, m) in std::mem::take(&mut ready.messages) {
                out(to, m);
            }
            // Rule 4: what may be applied before this write is durable already.
            let durable = ready.committed_entries_durable;
            for entry in ready.committed_entries.drain(..durable) {
                let stored = self.durable.entries(entry.index, entry.index);
                assert_eq!(
                    stored.ok().as_deref(),
                    Some(std::slice::from_ref(&entry)),
                    "entry {} durable",
                    entry.index
                );
                self.apply(&entry);
            }
            ready.committed_entries_durable = 0;
            if self.writes_in_flight {
                self.writing = Some(ready);
                return self.while_writing(out);
            }
            if self.early_messages {
                // As an actor does while this batch is written.
                for (to, m) in self.raft.take_heartbeat_messages() {
                    out(to, m);
                }
            }
            self.written(ready, out);
            if self.saving.is_some() {
                return self.while_saving(out);
            }
        }
    }

    /// While a snapshot is saved: as an actor whose store is busy saving.
    fn while_saving(&mut self, out: &mut dyn FnMut(NodeId, Message)) {
        self.apply_early();
        for (to, m) in self.raft.take_immediate_messages() {
            out(to, m);
        }
    }

    /// While a batch is written: what the leader's followers committed
    /// without it is applied, and heartbeats leave (with `early_messages`).
    fn while_writing(&mut self, out: &mut dyn FnMut(NodeId, Message)) {
        self.apply_early();
        if self.early_messages {
            for (to, m) in self.raft.take_heartbeat_messages() {
                out(to, m);
            }
        }
    }

    /// While the store is busy (a write in flight, or a snapshot's save):
    /// a leader applies what its followers committed without it, and reads
    /// confirmed meanwhile are answered once applied.
    fn apply_early(&mut self) {
        for entry in self.raft.take_committed_early() {
            self.apply(&entry);
            self.applied_early += 1;
        }
        let reads = self.raft.take_read_states();
        self.confirm_reads(reads);
    }

    /// Ends the write in flight, if any, and carries out what follows.
    fn finish_write(&mut self, out: &mut dyn FnMut(NodeId, Message)) {
        if let Some(ready) = self.writing.take() {
            self.written(ready, out);
            self.process(out);
        }
    }

    /// Makes `ready` durable and carries out the rest of it (its durable
    /// committed entries applied already).
    fn written(&mut self, ready: Ready, out: &mut dyn FnMut(NodeId, Message)) {
        let batch = WriteBatch {
            snapshot: ready.snapshot.as_ref(),
            entries: &ready.entries,
            hard_state: ready.hard_state,
        };
        self.durable.write(batch).expect("the core hands out writable batches");
        for (to, m) in ready.persisted_messages {
            out(to, m);
        }
        if let Some(snapshot) = &ready.snapshot {
            self.kv = Kv::decode(&snapshot.data);
            assert_eq!(self.kv.applied, snapshot.meta.index, "snapshot data matches its index");
        }
        for entry in &ready.committed_entries {
            self.apply(entry);
        }
        self.confirm_reads(ready.read_states);
        for event in &ready.events {
            if let Event::ReadsDropped(ids) = event {
                for id in ids {
                    self.reads.remove(id);
                }
            }
            if let Event::SteppedDown { .. } = event {
                self.proposals.clear();
            }
        }
        self.events.extend(ready.events);
        self.raft.advance(ready.number);
        self.log_len_max = self.log_len_max.max(self.bounded_log_len());
        self.snapshot_when_due();
    }

    /// The entries of the log that `max_log_entries` bounds: all but the
    /// uncommitted no-ops new leaders appended whatever the bound.
    fn bounded_log_len(&self) -> u64 {
        let log = self.raft.log();
        let no_ops = (log.commit + 1..=log.last_index())
            .filter(|&i| log.entry(i).is_some_and(|e| matches!(e.payload, Payload::Empty)))
            .count();
        log.len() - no_ops as u64
    }

    /// Takes a snapshot when one is due, at once or after
    /// `snapshot_build_ms`.
    fn snapshot_when_due(&mut self) {
        if self.saving.is_some() {
            return;
        }
        let built = match (self.snapshot_build_ms, &self.building) {
            (_, Some((_, _, done))) if *done <= self.now => self.building.take(),
            (_, Some(_)) => None,
            (None, None) if self.raft.snapshot_due() => Some((self.kv.applied, self.kv.encode(), self.now)),
            (Some(ms), None) if self.raft.snapshot_due() => {
                self.building = Some((self.kv.applied, self.kv.encode(), self.now + ms));
                None
            }
            _ => None,
        };
        if let Some((index, data, _)) = built {
            let snapshot = self.raft.snapshot_taken(index, data);
            // As the actor: only the snapshot built here is saved. One
            // received while it was built (and still to be written) is the
            // core's current one, and saving it now would compact the store
            // before the write that installs it.
            if snapshot.meta.index == index {
                match self.snapshot_build_ms {
                    Some(ms) => self.saving = Some((snapshot, self.now + ms)),
                    None => self.durable.save_snapshot(&snapshot).expect("memory store"),
                }
            }
        }
    }

    /// Applies one committed entry and records the acknowledgement of a
    /// proposal made here.
    fn apply(&mut self, entry: &Entry) {
        let applied = self.kv.apply(entry);
        if let (Some(tag), Some((term, mine))) = (applied, self.proposals.get(&entry.index)) {
            if *term == entry.term && *mine == tag {
                self.acks.push((tag, self.now));
            }
        }
        self.proposals.remove(&entry.index);
    }

    pub fn is_leader(&self) -> bool {
        self.raft.role() == Role::Leader
    }
}

impl SimNode for TestNode {
    type Message = Message;

    fn tick(&mut self, now: Time, out: &mut Outbox<Message>) {
        self.now = now;
        self.finish_write(&mut |to, m| out.send(to, m));
        if self.saving.as_ref().is_some_and(|(_, done)| *done <= now) {
            let (snapshot, _) = self.saving.take().expect("checked");
            self.durable.save_snapshot(&snapshot).expect("memory store");
        }
        if self.writing.is_none() {
            self.snapshot_when_due();
        }
        self.raft.tick();
        self.process(&mut |to, m| out.send(to, m));
    }

    fn receive(&mut self, now: Time, from: NodeId, message: Message, out: &mut Outbox<Message>) {
        self.now = now;
        self.raft.step(from, message);
        self.process(&mut |to, m| out.send(to, m));
    }

    fn crash(&mut self) {
        self.incarnation += 1;
        self.writing = None;
        self.building = None;
        self.saving = None;
        self.proposals.clear();
        self.reads.clear();
        self.confirmed_reads.clear();
        // The replaced core and state machine are what a crash loses.
        self.raft = Self::boot(self.id, &self.config, &self.durable, self.seed ^ self.incarnation);
        self.kv = Kv::decode(&self.durable.snapshot().expect("memory store").data);
    }

    fn restart(&mut self, now: Time, out: &mut Outbox<Message>) {
        self.now = now;
        self.process(&mut |to, m| out.send(to, m));
    }
}

/// The safety properties of Raft (paper Figure 3), checked across all nodes
/// after every step.
#[derive(Default)]
pub struct Checker {
    leaders: BTreeMap<Term, NodeId>,
    /// Every entry ever seen committed: index → entry.
    committed: BTreeMap<Index, Entry>,
    /// Per node: last term, incarnation, last commit (per incarnation),
    /// committed entries checked through.
    seen: BTreeMap<NodeId, (Term, u64, Index, Index)>,
    /// Per node: the last durable term seen.
    durable_terms: BTreeMap<NodeId, Term>,
    leader_checked: BTreeSet<(Term, NodeId)>,
    pub steps: u64,
}

impl Checker {
    pub fn check<'a>(&mut self, nodes: impl IntoIterator<Item = &'a TestNode>) -> Result<(), String> {
        self.steps += 1;
        let nodes: Vec<&TestNode> = nodes.into_iter().collect();
        let full = self.steps.is_multiple_of(64);
        for node in &nodes {
            self.check_node(node, full)?;
        }
        self.check_log_matching(&nodes)
    }

    fn check_node(&mut self, node: &TestNode, full: bool) -> Result<(), String> {
        let raft = &node.raft;
        let log = raft.log();
        let id = node.id;
        // Election safety: at most one leader per term.
        if raft.role() == Role::Leader {
            if let Some(other) = self.leaders.insert(raft.term(), id) {
                if other != id {
                    return Err(format!("two leaders in term {}: {other} and {id}", raft.term()));
                }
            }
        }
        // The durable term never goes back; the term and commit do not
        // within one incarnation (a crash loses a write in flight, and
        // with it a term nothing was sent under yet).
        let durable_term = node.durable.hard_state().map_err(|e| format!("{id}: {e}"))?.term;
        let last_durable = self.durable_terms.entry(id).or_default();
        if durable_term < *last_durable {
            return Err(format!("{id}: durable term went back from {last_durable} to {durable_term}"));
        }
        *last_durable = durable_term;
        let entry = self.seen.entry(id).or_insert((0, node.incarnation, 0, 0));
        if entry.1 == node.incarnation && raft.term() < entry.0 {
            return Err(format!("{id}: term went back from {} to {}", entry.0, raft.term()));
        }
        entry.0 = raft.term();
        if entry.1 != node.incarnation {
            *entry = (raft.term(), node.incarnation, log.commit, log.snapshot().index);
            self.check_committed_range(node, log.first_index(), log.commit)?;
        }
        let entry = self.seen.get_mut(&id).expect("inserted");
        if log.commit < entry.2 {
            return Err(format!("{id}: commit went back from {} to {}", entry.2, log.commit));
        }
        entry.2 = log.commit;
        let from = if full { log.first_index() } else { entry.3.max(log.snapshot().index) + 1 };
        entry.3 = entry.3.max(log.commit);
        self.check_committed_range(node, from, log.commit)?;
        // Leader completeness: a leader holds every committed entry.
        if raft.role() == Role::Leader && self.leader_checked.insert((raft.term(), id)) {
            if let Some((&max, _)) = self.committed.last_key_value() {
                if log.last_index() < max {
                    return Err(format!("leader {id} of term {} lacks committed index {max}", raft.term()));
                }
            }
            self.check_committed_range(node, log.first_index(), log.last_index())?;
        }
        // State-machine safety: what was applied is what was committed.
        if node.kv.applied > log.commit.max(log.snapshot().index) {
            return Err(format!("{id} applied {} beyond commit {}", node.kv.applied, log.commit));
        }
        Ok(())
    }

    /// Entries of `node` in `from..=to` agree with every entry seen
    /// committed; those through its commit index join the committed set.
    fn check_committed_range(&mut self, node: &TestNode, from: Index, to: Index) -> Result<(), String> {
        let log = node.raft.log();
        for index in from.max(log.first_index())..=to.min(log.last_index()) {
            let Some(entry) = log.entry(index) else { continue };
            match self.committed.get(&index) {
                Some(known) if known != entry => {
                    return Err(format!(
                        "{} holds {entry:?} at committed index {index}, committed was {known:?}",
                        node.id
                    ))
                }
                Some(_) => {}
                None if index <= log.commit => {
                    self.committed.insert(index, entry.clone());
                }
                None => {}
            }
        }
        Ok(())
    }

    /// Log matching: equal (index, term) means equal entries and equal
    /// terms just before, checked over the uncommitted tails.
    fn check_log_matching(&self, nodes: &[&TestNode]) -> Result<(), String> {
        let mut seen: BTreeMap<(Index, Term), (&Entry, Option<Term>, NodeId)> = BTreeMap::new();
        for node in nodes {
            let log = node.raft.log();
            let start = log.commit.max(log.snapshot().index) + 1;
            for index in start..=log.last_index() {
                let entry = log.entry(index).expect("in range");
                let prev = log.term(index - 1);
                if let Some((other, other_prev, other_id)) = seen.get(&(index, entry.term)) {
                    if *other != entry || (prev.is_some() && other_prev.is_some() && prev != *other_prev) {
                        return Err(format!(
                            "log matching broken at {index} between {other_id} and {}",
                            node.id
                        ));
                    }
                } else {
                    seen.insert((index, entry.term), (entry, prev, node.id));
                }
            }
        }
        Ok(())
    }

    /// Every committed index seen.
    pub fn committed_len(&self) -> usize {
        self.committed.len()
    }
}

/// Default test configuration: small bounds so tests reach them (a few
/// entries per batch applied).
pub fn test_config() -> Config {
    Config { snapshot_threshold_entries: 50, max_log_entries: 400, apply_bytes_max: 256, ..Config::default() }
}

/// Drops a message (from, to, message) when it returns true.
pub type Filter = Box<dyn Fn(NodeId, NodeId, &Message) -> bool>;

/// A synchronous network for scripted scenarios: messages queue up and are
/// delivered by [`Net::deliver_all`] unless a link is cut or a filter drops them.
pub struct Net {
    pub nodes: BTreeMap<NodeId, TestNode>,
    pub queue: std::collections::VecDeque<(NodeId, NodeId, Message)>,
    pub cut: BTreeSet<(NodeId, NodeId)>,
    pub down: BTreeSet<NodeId>,
    /// Drops a message when it returns true.
    pub filter: Option<Filter>,
}

impl Net {
    pub fn new(size: u64, config: Config) -> Net {
        let ids: Vec<NodeId> = (1..=size).map(NodeId).collect();
        let membership = Membership::with_voters(ids.iter().copied());
        let nodes =
            ids.iter().map(|&id| (id, TestNode::new(id, membership.clone(), config.clone(), id.0))).collect();
        Net { nodes, queue: Default::default(), cut: BTreeSet::new(), down: BTreeSet::new(), filter: None }
    }

    pub fn node(&self, id: u64) -> &TestNode {
        &self.nodes[&NodeId(id)]
    }

    pub fn raft(&self, id: u64) -> &Raft {
        &self.nodes[&NodeId(id)].raft
    }

    /// Runs `f` on node `id`, then queues what it sends.
    pub fn with<R>(&mut self, id: u64, f: impl FnOnce(&mut TestNode) -> R) -> R {
        let node = self.nodes.get_mut(&NodeId(id)).expect("known node");
        let result = f(node);
        let mut sent = Vec::new();
        node.process(&mut |to, m| sent.push((NodeId(id), to, m)));
        self.queue.extend(sent);
        result
    }

    pub fn isolate(&mut self, id: u64) {
        for other in self.nodes.keys().copied().collect::<Vec<_>>() {
            self.cut.insert((NodeId(id), other));
            self.cut.insert((other, NodeId(id)));
        }
    }

    pub fn heal(&mut self) {
        self.cut.clear();
    }

    /// Crashes a node: it loses volatile state and receives nothing.
    pub fn crash(&mut self, id: u64) {
        self.down.insert(NodeId(id));
        self.nodes.get_mut(&NodeId(id)).expect("known").crash();
    }

    pub fn restart(&mut self, id: u64) {
        self.down.remove(&NodeId(id));
    }

    /// Delivers until no message is left (bounded).
    pub fn deliver_all(&mut self) {
        for _ in 0..100_000 {
            let Some((from, to, message)) = self.queue.pop_front() else { return };
            if self.cut.contains(&(from, to)) || self.down.contains(&to) || self.down.contains(&from) {
                continue;
            }
            if self.filter.as_ref().is_some_and(|f| f(from, to, &message)) {
                continue;
            }
            self.with(to.0, |node| node.raft.step(from, message));
        }
        panic!("messages never quiesced");
    }

    /// Ticks every live node `ticks` times, delivering after each tick.
    pub fn tick_all(&mut self, ticks: u64) {
        for _ in 0..ticks {
            for id in self.nodes.keys().copied().collect::<Vec<_>>() {
                if !self.down.contains(&id) {
                    self.with(id.0, |node| node.raft.tick());
                }
            }
            self.deliver_all();
        }
    }

    /// Makes `id` campaign at once and delivers the election.
    pub fn elect(&mut self, id: u64) {
        self.with(id, |node| node.raft.trigger_election().expect("a voter"));
        self.deliver_all();
    }

    pub fn leader(&self) -> Option<NodeId> {
        self.nodes
            .values()
            .filter(|n| !self.down.contains(&n.id) && n.is_leader())
            .map(|n| n.id)
            .max_by_key(|id| self.nodes[id].raft.term())
    }

    /// Proposes an untagged command at `id`.
    pub fn propose(
        &mut self,
        id: u64,
        data: &[u8],
    ) -> Result<(Index, Term), concord_raft::error::RequestError> {
        let data = Bytes::copy_from_slice(data);
        let result = self.with(id, |node| node.raft.propose(data, None));
        self.deliver_all();
        result
    }

    pub fn terms(&self, id: u64) -> Vec<Term> {
        let log = self.raft(id).log();
        (log.first_index()..=log.last_index()).filter_map(|i| log.term(i)).collect()
    }
}

/// Polls `check` until it returns `Some`, failing after `deadline`: how the
/// actor tests wait, never by sleeping a fixed time.
pub async fn eventually<T>(
    what: &str,
    deadline: std::time::Duration,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> T {
    let start = std::time::Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(start.elapsed() < deadline, "timed out waiting for {what}");
        actix_rt::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// A state machine for actor tests: sums the applied commands' first byte.
#[derive(Default)]
pub struct Sum(pub u64);

impl concord_raft::machine::StateMachine for Sum {
    fn apply(&mut self, _: Index, command: &[u8]) -> Bytes {
        self.0 += u64::from(command.first().copied().unwrap_or(0));
        Bytes::copy_from_slice(&self.0.to_le_bytes())
    }
    fn query(&self, _: &[u8]) -> Bytes {
        Bytes::copy_from_slice(&self.0.to_le_bytes())
    }
    fn snapshot(&self) -> Bytes {
        Bytes::copy_from_slice(&self.0.to_le_bytes())
    }
    fn restore(&mut self, data: &[u8]) -> Result<(), String> {
        self.0 = u64::from_le_bytes(data.try_into().map_err(|_| "bad snapshot".to_string())?);
        Ok(())
    }
    fn digest(&self) -> u64 {
        self.0
    }
}

/// Waits up to `deadline` for one of `nodes` to report itself leader.
pub async fn leader_of<S, M>(
    nodes: &BTreeMap<NodeId, actix::Addr<concord_raft::actor::RaftActor<S, M>>>,
    deadline: std::time::Duration,
) -> NodeId
where
    S: concord_raft::storage::Storage,
    M: concord_raft::machine::StateMachine,
{
    eventually("a leader", deadline, async || {
        for (id, node) in nodes {
            let status = node.send(concord_raft::actor::GetStatus).await.ok()?;
            if status.role == Role::Leader {
                return Some(*id);
            }
        }
        None
    })
    .await
}

/// A gate that a store's or a state machine's job waits at, on its own
/// thread, until the test opens it.
#[derive(Clone, Default)]
pub struct Gate(std::sync::Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>);

impl Gate {
    /// Lets every waiter through, now and later.
    pub fn open(&self) {
        *self.0 .0.lock().unwrap() = true;
        self.0 .1.notify_all();
    }

    /// Waits until the gate is open.
    pub fn wait(&self) {
        let mut open = self.0 .0.lock().unwrap();
        while !*open {
            open = self.0 .1.wait(open).unwrap();
        }
    }
}

/// What the [`GatedStore`]s sharing these counters did so far, on every node.
#[derive(Clone, Default)]
pub struct GateCounts {
    /// Log writes that reached the gate while armed.
    pub writes_held: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// Plain snapshot saves entered (held at the gate when gated).
    pub saves: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// Snapshot stagings entered (each held at the gate).
    pub stagings: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// Staged snapshots recorded.
    pub recorded: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl GateCounts {
    fn bump(counter: &std::sync::atomic::AtomicUsize) {
        counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    /// Reads `counter`.
    pub fn get(counter: &std::sync::atomic::AtomicUsize) -> usize {
        counter.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// A memory store that writes off the actor's thread, as a disk store does,
/// and holds its slow steps at a [`Gate`] for as long as a test wants: log
/// writes while armed ([`GatedStore::gating_writes`]), plain snapshot saves
/// ([`GatedStore::gating_saves`]), and, when it stages its snapshots as the
/// write-ahead log does ([`GatedStore::staging`]), the staging of their data
/// (the recording is quick).
pub struct GatedStore {
    store: MemoryStore,
    gate: Gate,
    counts: GateCounts,
    writes_armed: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    saves_gated: bool,
    stages: bool,
    /// What the stager wrote: a memory store has no file to put it in.
    staged: std::sync::Arc<std::sync::Mutex<Option<Snapshot>>>,
    writes_seen: Option<WritesSeen>,
    slow_once: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

/// One log write as a [`GatedStore`] saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteSeen {
    /// Written on the actor's persistence thread (else on the actor's own).
    pub on_persist_thread: bool,
    /// Entries in the batch.
    pub entries: usize,
}

/// The log writes a [`GatedStore`] saw, in order.
pub type WritesSeen = std::sync::Arc<std::sync::Mutex<Vec<WriteSeen>>>;

/// How long a write takes when [`GatedStore::slowing_once`] asks.
pub const SLOW_WRITE: std::time::Duration = std::time::Duration::from_millis(20);

impl GatedStore {
    /// A store bootstrapped with `voters` that holds nothing yet.
    pub fn new(voters: Membership, gate: &Gate, counts: &GateCounts) -> GatedStore {
        GatedStore {
            store: MemoryStore::new(concord_raft::actor::bootstrap_snapshot(voters)),
            gate: gate.clone(),
            counts: counts.clone(),
            writes_armed: None,
            saves_gated: false,
            stages: false,
            staged: Default::default(),
            writes_seen: None,
            slow_once: None,
        }
    }

    /// Records each log write in `seen`.
    pub fn recording(mut self, seen: &WritesSeen) -> GatedStore {
        self.writes_seen = Some(seen.clone());
        self
    }

    /// The next log write after `slow` is set clears it and takes [`SLOW_WRITE`].
    pub fn slowing_once(mut self, slow: &std::sync::Arc<std::sync::atomic::AtomicBool>) -> GatedStore {
        self.slow_once = Some(slow.clone());
        self
    }

    /// Log writes wait at the gate while `armed` is set.
    pub fn gating_writes(mut self, armed: std::sync::Arc<std::sync::atomic::AtomicBool>) -> GatedStore {
        self.writes_armed = Some(armed);
        self
    }

    /// Plain snapshot saves wait at the gate.
    pub fn gating_saves(mut self) -> GatedStore {
        self.saves_gated = true;
        self
    }

    /// Snapshots are staged: the stager waits at the gate.
    pub fn staging(mut self) -> GatedStore {
        self.stages = true;
        self
    }
}

impl LogStore for GatedStore {
    fn write(&mut self, batch: WriteBatch<'_>) -> Result<(), StorageError> {
        if self.writes_armed.as_ref().is_some_and(|a| a.load(std::sync::atomic::Ordering::SeqCst)) {
            GateCounts::bump(&self.counts.writes_held);
            self.gate.wait();
        }
        if self.slow_once.as_ref().is_some_and(|s| s.swap(false, std::sync::atomic::Ordering::SeqCst)) {
            std::thread::sleep(SLOW_WRITE);
        }
        if let Some(seen) = &self.writes_seen {
            let on_persist_thread =
                std::thread::current().name().is_some_and(|name| name.starts_with("raft-persist"));
            seen.lock().unwrap().push(WriteSeen { on_persist_thread, entries: batch.entries.len() });
        }
        self.store.write(batch)
    }
    fn entries(&self, from: Index, to: Index) -> Result<Vec<Entry>, StorageError> {
        self.store.entries(from, to)
    }
    fn last_index(&self) -> Result<Index, StorageError> {
        self.store.last_index()
    }
    fn writes_block(&self) -> bool {
        true
    }
}

impl StateStore for GatedStore {
    fn hard_state(&self) -> Result<HardState, StorageError> {
        self.store.hard_state()
    }
    fn snapshot(&self) -> Result<Snapshot, StorageError> {
        self.store.snapshot()
    }
    fn save_snapshot(&mut self, snapshot: &Snapshot) -> Result<(), StorageError> {
        GateCounts::bump(&self.counts.saves);
        if self.saves_gated {
            self.gate.wait();
        }
        self.store.save_snapshot(snapshot)
    }
    fn snapshot_stager(&self) -> Option<SnapshotStager> {
        if !self.stages {
            return None;
        }
        let (counts, gate, staged) = (self.counts.clone(), self.gate.clone(), self.staged.clone());
        Some(Box::new(move |snapshot: &Snapshot| {
            GateCounts::bump(&counts.stagings);
            gate.wait();
            *staged.lock().unwrap() = Some(snapshot.clone());
            Ok(StagedSnapshot { meta: snapshot.meta.clone(), path: "staged".into() })
        }))
    }
    fn save_staged_snapshot(&mut self, staged: StagedSnapshot) -> Result<(), StorageError> {
        let snapshot = self.staged.lock().unwrap().take().expect("a staged snapshot");
        assert_eq!(snapshot.meta, staged.meta);
        self.store.save_snapshot(&snapshot)?;
        GateCounts::bump(&self.counts.recorded);
        Ok(())
    }
}
