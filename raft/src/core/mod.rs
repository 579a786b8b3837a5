//! The pure Raft core: no IO, no clock, no async. Inputs are
//! [`Raft::step`], [`Raft::tick`], [`Raft::propose`], [`Raft::read_index`],
//! [`Raft::change_membership`] and friends; outputs are taken as one
//! [`Ready`] batch and acknowledged with [`Raft::advance`].
//!
//! Files: [`election`] (timeouts, pre-vote, check-quorum, votes, history),
//! [`replication`] (appends, progress, commit), [`read`] (ReadIndex and lease
//! reads), [`membership`] (configuration changes, leadership transfer),
//! [`snapshot`] (compaction and chunked transfer), [`log`], [`quorum`],
//! [`message`], [`ready`], [`types`], [`config`].

pub mod config;
pub mod election;
pub mod log;
pub mod membership;
pub mod message;
pub mod quorum;
pub mod read;
pub mod ready;
pub mod replication;
pub mod snapshot;
pub mod types;

pub use config::Config;
pub use election::{ElectionRecord, ElectionTrigger, LEADER_DOWN_MARGIN_TICKS, LEADER_DOWN_TURN_TICKS};
pub use message::{AppendOutcome, Body, Message, RaftWire};
pub use quorum::Membership;
pub use ready::{Event, ReadState, Ready};
pub use replication::{Progress, ProgressState};
pub use types::{ClientTag, Entry, HardState, Index, Payload, Snapshot, SnapshotMeta, Term};

use crate::error::{ConfigError, RequestError};
use bytes::Bytes;
use concord_transport::NodeId;
use log::RaftLog;
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::collections::{BTreeMap, VecDeque};

/// The role of a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Follows a leader (or waits for one).
    Follower,
    /// Asks for pre-votes without changing its term.
    PreCandidate,
    /// Asks for votes in a new term.
    Candidate,
    /// Leads its term.
    Leader,
}

/// What a node recovers from durable storage at start.
#[derive(Clone, Debug, Default)]
pub struct Recovered {
    /// Term, vote and commit.
    pub hard_state: HardState,
    /// The latest snapshot (its metadata is enough for the core; its data is
    /// kept to send to lagging followers).
    pub snapshot: Snapshot,
    /// Entries after the snapshot.
    pub entries: Vec<Entry>,
    /// The last index the state machine has applied (the snapshot's index
    /// for a state machine rebuilt from the snapshot).
    pub applied: Index,
}

/// A read waiting for a quorum to confirm leadership.
#[derive(Clone, Copy, Debug)]
struct PendingRead {
    id: u64,
    index: Index,
    round: u64,
}

/// One Raft node's protocol state.
#[derive(Debug)]
pub struct Raft {
    id: NodeId,
    config: Config,
    rng: StdRng,
    term: Term,
    vote: Option<NodeId>,
    role: Role,
    leader: Option<NodeId>,
    log: RaftLog,
    /// Ticks since start: the core's only notion of time.
    ticks: u64,
    election_elapsed: u64,
    heartbeat_elapsed: u64,
    randomized_timeout: u64,
    /// The timeout was cut short because the leader was found down.
    leader_down: bool,
    /// What started the current (or last) campaign.
    campaign_trigger: ElectionTrigger,
    elections_failed: u32,
    election_started_tick: Option<u64>,
    /// The last leader known, kept across the leaderless gap of an election.
    last_known_leader: Option<NodeId>,
    /// When a message from the leader last arrived.
    leader_contact_tick: u64,
    votes: BTreeMap<NodeId, bool>,
    progress: BTreeMap<NodeId, Progress>,
    transfer: Option<(NodeId, u64)>,
    round: u64,
    round_sent_tick: BTreeMap<u64, u64>,
    reads_pending: VecDeque<PendingRead>,
    read_round_wanted: bool,
    reads_waiting_for_term_commit: Vec<u64>,
    snapshot: Snapshot,
    incoming_snapshot: Option<(SnapshotMeta, Vec<u8>)>,
    snapshot_to_install: Option<Snapshot>,
    /// Entries the last local snapshot removed from the log, until the
    /// driver takes them ([`Raft::take_compacted`]) or the next one replaces
    /// them.
    compacted: VecDeque<Entry>,
    /// The data of the snapshot the last one replaced, until the driver
    /// takes it ([`Raft::take_replaced_snapshot`]) or the next replaces it.
    replaced_snapshot: Option<Bytes>,
    outbox: Vec<(NodeId, Message)>,
    read_states: Vec<ReadState>,
    events: Vec<Event>,
    persisted: HardState,
    ready_number: u64,
    outstanding: Option<Outstanding>,
    history: VecDeque<ElectionRecord>,
    /// Appends this node, a follower with a full log, took only in part
    /// ([`AppendOutcome::Full`]).
    appends_refused_full: u64,
}

/// What an outstanding ready handed out, for `advance`.
#[derive(Debug)]
struct Outstanding {
    number: u64,
    hard_state: HardState,
    last_entry: Option<Index>,
    applied_to: Index,
    /// Whether some of the batch's committed entries wait for its write
    /// (a snapshot, or entries not yet durable here): nothing committed
    /// after them may be applied before they are.
    applies_after_write: bool,
}

impl Raft {
    /// A node that starts from `recovered` (use `Recovered::default()` with a
    /// snapshot whose membership is the initial configuration to bootstrap).
    /// `seed` feeds the election timeouts.
    pub fn new(id: NodeId, config: Config, recovered: Recovered, seed: u64) -> Result<Raft, ConfigError> {
        config.validate()?;
        let Recovered { hard_state, snapshot, entries, applied } = recovered;
        let log = RaftLog::restore(snapshot.meta.clone(), entries, hard_state.commit, applied);
        let mut raft = Raft {
            id,
            config,
            rng: StdRng::seed_from_u64(seed),
            term: hard_state.term,
            vote: hard_state.vote,
            role: Role::Follower,
            leader: None,
            log,
            ticks: 0,
            election_elapsed: 0,
            heartbeat_elapsed: 0,
            randomized_timeout: 0,
            elections_failed: 0,
            election_started_tick: None,
            last_known_leader: None,
            leader_contact_tick: 0,
            leader_down: false,
            campaign_trigger: ElectionTrigger::Timeout,
            votes: BTreeMap::new(),
            progress: BTreeMap::new(),
            transfer: None,
            round: 0,
            round_sent_tick: BTreeMap::new(),
            reads_pending: VecDeque::new(),
            read_round_wanted: false,
            reads_waiting_for_term_commit: Vec::new(),
            snapshot,
            incoming_snapshot: None,
            snapshot_to_install: None,
            compacted: VecDeque::new(),
            replaced_snapshot: None,
            outbox: Vec::new(),
            read_states: Vec::new(),
            events: Vec::new(),
            persisted: HardState { commit: hard_state.commit, ..hard_state },
            ready_number: 0,
            outstanding: None,
            history: VecDeque::new(),
            appends_refused_full: 0,
        };
        raft.persisted.commit = raft.log.commit;
        raft.reset_election_timeout();
        Ok(raft)
    }

    /// Appends this node took only in part because its log was at
    /// `max_log_entries` or `max_log_bytes` while a snapshot was due
    /// (answered [`AppendOutcome::Full`]): a follower whose snapshots lag
    /// the leader's.
    pub fn appends_refused_full(&self) -> u64 {
        self.appends_refused_full
    }

    /// This node.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// Current term.
    pub fn term(&self) -> Term {
        self.term
    }

    /// Current role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The leader this node knows of.
    pub fn leader(&self) -> Option<NodeId> {
        self.leader
    }

    /// The vote cast in the current term.
    pub fn vote(&self) -> Option<NodeId> {
        self.vote
    }

    /// The log.
    pub fn log(&self) -> &RaftLog {
        &self.log
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Changes the settings at run time (timeouts, batch sizes, bounds).
    pub fn set_config(&mut self, config: Config) -> Result<(), ConfigError> {
        config.validate()?;
        self.config = config;
        self.reset_election_timeout();
        Ok(())
    }

    /// The configuration in force (the latest in the log).
    pub fn membership(&self) -> &Membership {
        self.log.membership()
    }

    /// Per-follower replication progress (leader only; empty otherwise).
    pub fn progress(&self) -> &BTreeMap<NodeId, Progress> {
        &self.progress
    }

    /// Ticks since start.
    pub fn ticks(&self) -> u64 {
        self.ticks
    }

    /// The hard state as of now (not necessarily durable yet).
    pub fn hard_state(&self) -> HardState {
        HardState { term: self.term, vote: self.vote, commit: self.log.commit }
    }

    /// The latest snapshot this node holds.
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// One tick of logical time.
    pub fn tick(&mut self) {
        self.ticks += 1;
        if self.role == Role::Leader {
            self.tick_leader();
        } else {
            self.tick_election();
        }
    }

    /// Handles a message from `from`. Messages are never trusted to be
    /// well-formed beyond their types: stale, duplicated and reordered ones
    /// are expected.
    pub fn step(&mut self, from: NodeId, message: Message) {
        if from == self.id {
            return;
        }
        if let Err(reason) = message.validate() {
            tracing::warn!(%from, reason, "malformed raft message dropped");
            return;
        }
        if message.term > self.term {
            let pre_vote_request = matches!(message.body, Body::VoteRequest { pre_vote: true, .. });
            let pre_vote_grant = matches!(message.body, Body::VoteResponse { pre_vote: true, granted: true });
            if let Body::VoteRequest { force: false, .. } = message.body {
                if self.in_lease() {
                    // Check-quorum: a node that hears from a leader ignores
                    // disruptive candidates (thesis §4.2.3).
                    return;
                }
            }
            if !pre_vote_request && !pre_vote_grant {
                let leader = if message.is_from_leader() { Some(from) } else { None };
                self.become_follower(message.term, leader);
            }
        } else if message.term < self.term {
            self.step_lower_term(from, &message);
            return;
        }
        match message.body {
            Body::VoteRequest { pre_vote, last_log_index, last_log_term, .. } => {
                self.handle_vote_request(from, message.term, pre_vote, last_log_index, last_log_term)
            }
            Body::VoteResponse { pre_vote, granted } => self.handle_vote_response(from, pre_vote, granted),
            Body::Append { prev_index, prev_term, entries, commit } => {
                self.accept_leader(from);
                self.handle_append(from, prev_index, prev_term, entries, commit);
            }
            Body::AppendResponse(outcome) => self.handle_append_response(from, outcome),
            Body::Heartbeat { commit, round } => {
                self.accept_leader(from);
                self.handle_heartbeat(from, commit, round);
            }
            Body::HeartbeatResponse { round } => self.handle_heartbeat_response(from, round),
            Body::Snapshot { meta, offset, total_bytes, chunk } => {
                self.accept_leader(from);
                self.handle_snapshot_chunk(from, meta, offset, total_bytes, chunk);
            }
            Body::SnapshotResponse { index, next_offset, done } => {
                self.handle_snapshot_response(from, index, next_offset, done)
            }
            Body::TimeoutNow => self.handle_timeout_now(),
        }
    }

    /// A message of an older term: usually ignored, but answered where
    /// silence would leave a node stuck (etcd's pre-vote/check-quorum cases).
    fn step_lower_term(&mut self, from: NodeId, message: &Message) {
        match message.body {
            // A leader of an older term, or a node whose term grew while it
            // was partitioned: with check-quorum it would never learn our
            // term from votes, so tell it now.
            Body::Append { .. } | Body::Heartbeat { .. }
                if self.config.check_quorum || self.config.pre_vote =>
            {
                self.send(from, Body::HeartbeatResponse { round: 0 })
            }
            // A pre-candidate of an older term must learn it cannot win.
            Body::VoteRequest { pre_vote: true, .. } => {
                self.send(from, Body::VoteResponse { pre_vote: true, granted: false })
            }
            _ => {}
        }
    }

    /// Proposes a command; returns its index and term. The entry is
    /// committed when an entry of that index and term is applied.
    pub fn propose(&mut self, data: Bytes, client: Option<ClientTag>) -> Result<(Index, Term), RequestError> {
        if data.len() > self.config.batch_bytes_max {
            return Err(RequestError::CommandTooLarge { size: data.len(), max: self.config.batch_bytes_max });
        }
        self.append_new(Payload::Command { client, data })
    }

    /// Proposes an empty entry, which no state machine sees: once it is
    /// applied, a quorum committed in this leader's term. Returns its index
    /// and term, as [`Raft::propose`] does.
    pub fn propose_empty(&mut self) -> Result<(Index, Term), RequestError> {
        self.append_new(Payload::Empty)
    }

    /// Appends a new entry as leader.
    fn append_new(&mut self, payload: Payload) -> Result<(Index, Term), RequestError> {
        if self.role != Role::Leader {
            return Err(RequestError::NotLeader { leader: self.leader });
        }
        if let Some((target, _)) = self.transfer {
            return Err(RequestError::TransferInProgress(target));
        }
        if self.log.len() >= self.config.max_log_entries {
            return Err(RequestError::LogFull { entries: self.log.len(), max: self.config.max_log_entries });
        }
        let entry = Entry { term: self.term, index: self.log.last_index() + 1, payload };
        let (bytes, size) = (self.log.bytes(), entry.size_bytes() as u64);
        if bytes.saturating_add(size) > self.config.max_log_bytes {
            return Err(RequestError::LogBytesFull { bytes, size, max: self.config.max_log_bytes });
        }
        let index = entry.index;
        let is_membership = matches!(entry.payload, Payload::Membership(_));
        self.log.append_own(entry);
        if is_membership {
            self.on_membership_appended();
        }
        // A single voter commits on its own once the entry is durable.
        Ok((index, self.term))
    }

    /// Whether [`Raft::ready`] has anything to hand out.
    pub fn has_ready(&self) -> bool {
        if self.outstanding.is_some() {
            return false;
        }
        // A commit index alone is never worth a write: it rides along with
        // the next entries (see `Ready::hard_state`).
        self.term != self.persisted.term
            || self.vote != self.persisted.vote
            || self.snapshot_to_install.is_some()
            || self.log.unstable_from <= self.log.last_index()
            || !self.outbox.is_empty()
            || self.log.commit > self.log.applied
            || !self.read_states.is_empty()
            || !self.events.is_empty()
            || self.read_round_wanted
            || self.replication_pending()
    }

    /// Takes the next batch of work. Panics if the previous batch was not
    /// acknowledged: one batch at a time is the contract.
    pub fn ready(&mut self) -> Ready {
        assert!(self.outstanding.is_none(), "ready() called before advance() of the previous batch");
        self.flush_read_round();
        self.flush_replication();
        self.ready_number += 1;
        let hard_state = self.hard_state();
        let term_or_vote_changed =
            hard_state.term != self.persisted.term || hard_state.vote != self.persisted.vote;
        let snapshot = self.snapshot_to_install.take();
        let entries = self.log.take_unstable();
        if let (Some(s), Some(first)) = (&snapshot, entries.first()) {
            assert!(first.index > s.meta.index, "entries after a snapshot follow it");
        }
        let mut messages = Vec::new();
        let mut persisted_messages = Vec::new();
        for (to, message) in self.outbox.drain(..) {
            let immediate = !term_or_vote_changed && snapshot.is_none() && leaves_before_write(&message.body);
            if immediate {
                messages.push((to, message));
            } else {
                persisted_messages.push((to, message));
            }
        }
        let committed_entries =
            self.log.next_committed(self.config.apply_entries_max, self.config.apply_bytes_max);
        if let Some(first) = committed_entries.first() {
            assert_eq!(first.index, self.log.applied + 1, "committed entries are applied in order");
        }
        // Entries already durable here may be applied while this batch
        // persists (rule 4 of `Ready`); a snapshot in the batch comes first.
        let committed_entries_durable = if snapshot.is_some() {
            0
        } else {
            committed_entries.iter().take_while(|e| e.index <= self.log.stable_index).count()
        };
        let applied_to = committed_entries.last().map_or(self.log.applied, |e| e.index);
        assert!(applied_to <= self.log.commit, "only committed entries are applied");
        for read in &self.read_states {
            assert!(read.index <= self.log.commit, "a read waits for a committed index");
        }
        // The commit index is written only with something else that must be
        // durable: losing it loses nothing (it is volatile in the paper) and
        // a write for it alone would delay applying by one fsync.
        let write_hard_state = term_or_vote_changed || snapshot.is_some() || !entries.is_empty();
        let hard_state_written = (write_hard_state && hard_state != self.persisted).then_some(hard_state);
        self.outstanding = Some(Outstanding {
            number: self.ready_number,
            hard_state: hard_state_written.unwrap_or(self.persisted),
            last_entry: entries.last().map(|e| e.index),
            applied_to,
            applies_after_write: snapshot.is_some() || committed_entries_durable < committed_entries.len(),
        });
        Ready {
            number: self.ready_number,
            hard_state: hard_state_written,
            snapshot,
            entries,
            messages,
            persisted_messages,
            committed_entries,
            committed_entries_durable,
            read_states: std::mem::take(&mut self.read_states),
            events: std::mem::take(&mut self.events),
        }
    }

    /// Takes the messages that may leave before anything more is durable,
    /// between two batches: what the next [`Raft::ready`] would put in
    /// [`Ready::messages`] (appends, heartbeats, snapshot chunks,
    /// `TimeoutNow`), flushing pending replication first, and a follower's
    /// heartbeat responses (they confirm only the term). Nothing while a
    /// term or vote still waits to be durable (in the outstanding batch or
    /// not yet handed out) or a received snapshot waits to be installed:
    /// those messages leave after the write, with the next `Ready`.
    ///
    /// A leader may send entries before it has made them durable itself (it
    /// counts itself towards a commit only once they are), so an actor whose
    /// store is busy with a long write calls this to keep its followers
    /// hearing from it, and a follower to keep its leader hearing from it:
    /// otherwise a write longer than an election timeout would depose a
    /// healthy leader (the followers time out, or the leader's check-quorum
    /// steps it down when both followers are busy).
    pub fn take_immediate_messages(&mut self) -> Vec<(NodeId, Message)> {
        if !self.may_send_early() {
            return Vec::new();
        }
        self.flush_read_round();
        self.flush_replication();
        self.take_outbox(|body| leaves_before_write(body) || matches!(body, Body::HeartbeatResponse { .. }))
    }

    /// Takes the heartbeats and heartbeat responses waiting to leave, on
    /// the terms of [`Raft::take_immediate_messages`] but nothing else: no
    /// appends, no replication flushed. A leader starts the heartbeat round
    /// that reads wait for, if any do, so that they are confirmed (see
    /// [`Raft::take_read_states`]) during the write. An actor calls this
    /// while a batch is being written, so that a write longer than an
    /// election timeout (an `fsync` behind a busy disk's writeback) neither
    /// lets the followers time out nor the leader's check-quorum step it
    /// down, while appends still wait to form the next batch.
    pub fn take_heartbeat_messages(&mut self) -> Vec<(NodeId, Message)> {
        if !self.may_send_early() {
            return Vec::new();
        }
        self.flush_read_round();
        let heartbeat = |body: &Body| matches!(body, Body::Heartbeat { .. } | Body::HeartbeatResponse { .. });
        if !self.outbox.iter().any(|(_, message)| heartbeat(&message.body)) {
            return Vec::new();
        }
        self.take_outbox(heartbeat)
    }

    /// Takes the reads a commit quorum has confirmed so far, for a driver
    /// that answers them while a batch is being written (rule 5 of
    /// [`Ready`]: each once the state machine has applied its index, which
    /// needs nothing durable here); the next [`Raft::ready`] hands out
    /// those not taken.
    pub fn take_read_states(&mut self) -> Vec<ReadState> {
        std::mem::take(&mut self.read_states)
    }

    /// Whether messages may leave before the next batch: the term and vote
    /// are durable (written, not only in the outstanding batch) and no
    /// received snapshot waits to be installed.
    fn may_send_early(&self) -> bool {
        let durable = self.outstanding.as_ref().map_or(self.persisted, |o| o.hard_state);
        let unchanged = |h: HardState| h.term == self.term && h.vote == self.vote;
        unchanged(durable) && unchanged(self.persisted) && self.snapshot_to_install.is_none()
    }

    /// Takes the outbox's messages whose body passes `leaves`, in order,
    /// and keeps the others.
    fn take_outbox(&mut self, leaves: impl Fn(&Body) -> bool) -> Vec<(NodeId, Message)> {
        let (taken, kept): (Vec<_>, Vec<_>) =
            self.outbox.drain(..).partition(|(_, message)| leaves(&message.body));
        self.outbox = kept;
        taken
    }

    /// Committed entries a leader may apply while its outstanding batch is
    /// still being written: those committed since the batch was handed out,
    /// after its own `committed_entries`. A leader's entry is committed once
    /// a quorum has it durable; when the followers' acknowledgements make
    /// that quorum without the leader, the entry may be applied, and its
    /// proposer answered, before the leader's own write ends (its log
    /// catches up when the write does; a crash meanwhile loses nothing
    /// committed). Taking them moves the outstanding batch's applied index,
    /// so [`Raft::advance`] and the next [`Ready`] follow on from them.
    ///
    /// The driver must have applied the outstanding batch's committed
    /// entries already: nothing is handed out while any of them wait for the
    /// write (rule 4 of [`Ready`]), nor on a node that is not the leader.
    /// Between batches (a driver whose store is busy saving a snapshot, so
    /// that it takes no [`Ready`]), it hands out what the next
    /// [`Raft::ready`] would have, the leader's own copies of them perhaps
    /// not yet written. At most [`Config::apply_entries_max`] (and
    /// [`Config::apply_bytes_max`]) at a time. A
    /// driver whose state machine keeps its state durably should not call
    /// this: after a crash, that state could be past the entries its log
    /// kept.
    pub fn take_committed_early(&mut self) -> Vec<Entry> {
        if self.role != Role::Leader {
            return Vec::new();
        }
        let Some(outstanding) = self.outstanding.as_mut() else {
            let entries = self.log.next_committed(self.config.apply_entries_max, self.config.apply_bytes_max);
            if let Some(last) = entries.last() {
                self.log.applied = last.index;
            }
            return entries;
        };
        if outstanding.applies_after_write || self.log.commit <= outstanding.applied_to {
            return Vec::new();
        }
        let entries = self.log.committed_after(
            outstanding.applied_to,
            self.config.apply_entries_max,
            self.config.apply_bytes_max,
        );
        if let Some(last) = entries.last() {
            assert_eq!(
                entries[0].index,
                outstanding.applied_to + 1,
                "committed entries are applied in order"
            );
            outstanding.applied_to = last.index;
        }
        entries
    }

    /// Acknowledges batch `number`: persisted, sent and applied.
    pub fn advance(&mut self, number: u64) {
        let outstanding = self.outstanding.take().expect("advance() without an outstanding ready");
        assert_eq!(outstanding.number, number, "advance() must acknowledge the outstanding batch");
        self.persisted = outstanding.hard_state;
        if let Some(last) = outstanding.last_entry {
            // Entries cut by a truncation since the batch are not durable.
            self.log.stable_index = last.min(self.log.unstable_from - 1).max(self.log.snapshot().index);
        }
        self.log.applied = self.log.applied.max(outstanding.applied_to);
        if self.role == Role::Leader {
            self.maybe_commit();
        }
    }

    fn send(&mut self, to: NodeId, body: Body) {
        self.outbox.push((to, Message { term: self.term, body }));
    }

    /// Whether `self` is a voter of the latest configuration.
    fn is_voter(&self) -> bool {
        self.log.membership().is_voter(self.id)
    }
}

/// Whether a message may leave before the batch it comes with is durable
/// (once the term and vote are): a leader's appends, heartbeats, snapshot
/// chunks and `TimeoutNow`. Everything else waits for the write.
fn leaves_before_write(body: &Body) -> bool {
    matches!(body, Body::Append { .. } | Body::Heartbeat { .. } | Body::Snapshot { .. } | Body::TimeoutNow)
}

#[cfg(test)]
mod tests;
