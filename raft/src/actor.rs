//! `RaftActor`: the actix shell around the pure core. It turns one timer
//! into ticks, hands messages to the transport, persists each ready batch
//! off the event loop (on the actor's own persistence thread, one batch at a
//! time: a single writer, and the inputs that arrive meanwhile form the next
//! batch — group commit), applies committed entries in order and answers its
//! public messages. It holds no protocol logic.
//!
//! A store that stages its snapshots (`StateStore::snapshot_stager`, as
//! the WAL does) writes a snapshot's data on the blocking pool beside the
//! log's batches, and the persistence thread only records it. While a store
//! saves a whole snapshot itself, appends and heartbeats still leave
//! (`Raft::take_immediate_messages`); while a batch is written, heartbeats
//! and their answers do (`Raft::take_heartbeat_messages`), for at most
//! [`ActorConfig::write_heartbeats_max`]: so a slow disk does not cost the
//! leader, and a stuck one still does. The entries a snapshot compacts are
//! freed on the blocking pool, not the loop; a snapshot received from the
//! leader is decoded there too, while its file is written
//! (`StateMachine::restore_job`), and only swapped in on the loop. A tick
//! later than
//! [`TICK_LATE_WARN_TICKS`] is logged as a warning.

use crate::core::types::{ClientTag, Entry, Index, Payload, Snapshot, Term};
use crate::core::{
    Config, ElectionRecord, ElectionTrigger, Event, Membership, RaftWire, ReadState, Ready, Role,
};
use crate::core::{Raft, Recovered};
use crate::error::RequestError;
use crate::machine::{Applied, Install, Sessioned, StateMachine};
use crate::storage::{SnapshotStager, StagedSnapshot, Storage, StorageError, WriteBatch};
use crate::waiters::Waiters;
use actix::prelude::*;
use bytes::Bytes;
use concord_transport::{Envelope, GroupId, Inbound, NodeId, PeerDown, Transport};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio::sync::oneshot;

/// Settings of a [`RaftActor`].
#[derive(Clone, Debug)]
pub struct ActorConfig {
    /// The group this actor serves.
    pub group: GroupId,
    /// How its log lines name the group (default: the group's id; the
    /// runtime sets the name from its configuration).
    pub name: String,
    /// The timer period; the core counts everything in these ticks.
    pub tick: Duration,
    /// The core's settings, in ticks.
    pub core: Config,
    /// While a follower, write each batch on the actor's thread instead of
    /// the persistence thread. A follower answers an append only once it is
    /// durable, so nothing waits on the loop that would not wait anyway, and
    /// two thread hand-offs per append go away (on a 2-core VM, one-client
    /// commits 0.49 → 0.45 ms, 64 clients +5–8% puts/s). The cost: the
    /// arbiter is blocked for each `fsync`, so leave it off (the default)
    /// when other latency-sensitive actors, another group's leader say,
    /// share the actor's arbiter. Followers write batches past
    /// `follower_inline_bytes_max` off the loop (for leaders, see
    /// `leader_inline_entries_max`).
    pub follower_writes_inline: bool,
    /// The largest batch (in [`Entry::size_bytes`]) a follower writes inline
    /// when `follower_writes_inline` is set (default
    /// [`FOLLOWER_INLINE_BYTES_MAX_DEFAULT`]); a larger one goes to the
    /// persistence thread, as a leader's does.
    pub follower_inline_bytes_max: usize,
    /// While the leader, write a batch (of at most
    /// `follower_inline_bytes_max` bytes) on the actor's thread, once its
    /// appends have left, when it leaves at most this many entries
    /// uncommitted, instead of handing it to the persistence thread; 0 (the
    /// default) never. A lone put then waits for no thread wake-up: on a
    /// 2-core VM one client's median went from 0.356 to 0.340 ms (means of
    /// 8 alternating rounds). While more proposals are in flight, batches go
    /// to the persistence thread, which lets the loop go on answering and
    /// replicating meanwhile, and commit what a quorum of followers has
    /// durable before its own write ends (`Raft::take_committed_early`).
    /// Writing every batch inline cost 64 clients about 11% of their puts/s,
    /// and every one-entry batch 7%. The arbiter is blocked for
    /// each inline `fsync`, as with `follower_writes_inline`; after a write
    /// slower than [`INLINE_WRITE_SLOW`], batches go to the persistence
    /// thread until one is fast again.
    pub leader_inline_entries_max: usize,
    /// How long a node keeps sending heartbeats, or answering them, while
    /// one batch's write (and, for a received snapshot, its decoding) is
    /// outstanding (default
    /// [`WRITE_HEARTBEATS_MAX_DEFAULT`]); see
    /// [`crate::core::Raft::take_heartbeat_messages`]. A write that takes
    /// longer is taken for a stuck disk: the node falls silent, so that a
    /// leader that can write nothing is replaced.
    pub write_heartbeats_max: Duration,
}

/// Default of [`ActorConfig::write_heartbeats_max`]: 2 s, well past the
/// `fsync`s of a busy disk (up to about 0.6 s were seen beside 1 MB puts and
/// snapshot writes) and a few election timeouts short of a stalled service.
pub const WRITE_HEARTBEATS_MAX_DEFAULT: Duration = Duration::from_secs(2);

/// A write slower than this sends a leader's next batches to the
/// persistence thread (see [`ActorConfig::leader_inline_entries_max`]): a
/// busy disk should not hold the loop, and with it heartbeats and answers.
pub const INLINE_WRITE_SLOW: Duration = Duration::from_millis(10);

/// Default of [`ActorConfig::follower_inline_bytes_max`]: 64 KiB. The hand-offs
/// an inline write saves cost about 0.1 ms, a 64 KiB batch's write about as
/// much as a small one's; 1 MB batches of large values held the loop 126–585
/// ms per write on a busy disk, past the election timeout, and their
/// followers lost their leader.
pub const FOLLOWER_INLINE_BYTES_MAX_DEFAULT: usize = 64 * 1024;

impl ActorConfig {
    /// Defaults for `group`: 10 ms ticks, election timeout 150–300 ms,
    /// heartbeat 50 ms.
    pub fn new(group: GroupId) -> ActorConfig {
        ActorConfig {
            group,
            name: group.to_string(),
            tick: Duration::from_millis(crate::core::config::TICK_MS_DEFAULT),
            core: Config::default(),
            follower_writes_inline: false,
            follower_inline_bytes_max: FOLLOWER_INLINE_BYTES_MAX_DEFAULT,
            leader_inline_entries_max: 0,
            write_heartbeats_max: WRITE_HEARTBEATS_MAX_DEFAULT,
        }
    }

    /// Sets the timeouts in milliseconds, rounded to ticks.
    pub fn with_timeouts_ms(mut self, election_min: u64, election_max: u64, heartbeat: u64) -> ActorConfig {
        let tick = (self.tick.as_millis() as u64).max(1);
        self.core.election_ticks_min = election_min.div_ceil(tick);
        self.core.election_ticks_max = election_max.div_ceil(tick);
        self.core.heartbeat_ticks = heartbeat.div_ceil(tick).max(1);
        self
    }
}

/// Why a request to the actor failed.
#[derive(Debug, Error)]
pub enum RaftError {
    /// The core refused it.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// The settings are invalid.
    #[error(transparent)]
    Config(#[from] crate::error::ConfigError),
    /// Leadership changed before the outcome was known. Retry with the same
    /// client tag: sessions make the retry exactly-once.
    #[error("leadership changed before the outcome was known; retry with the same client tag")]
    LeadershipLost,
    /// A retry older than the client's latest command.
    #[error("a stale retry: the client has newer commands applied")]
    StaleRetry,
    /// A retry of a command applied before this node restarted with a
    /// durable state machine: it is not applied again, but its response was
    /// not kept (see [`StateMachine::durable_applied_index`]).
    #[error("the command was applied before a restart; its response was not kept")]
    ResponseLost,
    /// Storage failed; the actor stopped.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The actor stopped before answering.
    #[error("the raft actor stopped")]
    Stopped,
}

/// The result of an applied proposal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proposed {
    /// Its log index.
    pub index: Index,
    /// The state machine's response.
    pub response: Bytes,
}

/// Proposes a command. The actor answers at once with the log position
/// (or a refusal); awaiting the returned [`Pending`] gives the outcome once
/// the entry is applied. Waiting happens in the caller's task, not on the
/// Raft actor's event loop.
#[derive(Debug, Message)]
#[rtype(result = "Result<Pending, RaftError>")]
pub struct Propose {
    /// The command.
    pub data: Bytes,
    /// Set for exactly-once retries.
    pub client: Option<ClientTag>,
}

/// Proposes an empty entry that the state machine never sees. Awaiting the
/// returned [`Pending`] shows that a quorum commits in the leader's term
/// (the answer's `response` is empty), without a command that host state
/// machines must recognize and ignore.
#[derive(Debug, Message)]
#[rtype(result = "Result<Pending, RaftError>")]
pub struct ProposeEmpty;

/// A proposal in the log, not yet known to be applied. Await it for the
/// state machine's response.
#[derive(Debug)]
pub struct Pending {
    /// Its log index.
    pub index: Index,
    /// The term it was proposed in.
    pub term: Term,
    receiver: oneshot::Receiver<Result<Proposed, RaftError>>,
}

impl std::future::Future for Pending {
    type Output = Result<Proposed, RaftError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.receiver).poll(cx).map(|r| r.unwrap_or(Err(RaftError::Stopped)))
    }
}

/// How a read is served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadKind {
    /// ReadIndex: confirmed by a quorum, linearizable.
    Linearizable,
    /// From the leader lease: no round trip, safe while clocks drift less
    /// than `lease_drift_ticks`.
    Lease,
    /// From this replica's state, possibly stale.
    Stale,
}

/// Runs a read-only query against the state machine.
#[derive(Debug, Message)]
#[rtype(result = "Result<Bytes, RaftError>")]
pub struct Read {
    /// How.
    pub kind: ReadKind,
    /// The query, passed to [`StateMachine::query`].
    pub query: Bytes,
}

/// The node's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// This node.
    pub id: NodeId,
    /// Its role.
    pub role: Role,
    /// Its term.
    pub term: Term,
    /// The leader it knows.
    pub leader: Option<NodeId>,
    /// Commit index.
    pub commit: Index,
    /// Applied index.
    pub applied: Index,
    /// Last log index.
    pub last_index: Index,
    /// Last index durable in this node's log. A leader's commit and applied
    /// indexes may pass it while its write is in flight (its followers made
    /// the quorum, see [`crate::core::Raft::take_committed_early`]).
    pub durable_index: Index,
    /// Last index the latest snapshot covers (the log holds the entries
    /// after it).
    pub snapshot_index: Index,
    /// Bytes of the entries the log holds in memory (bounded by
    /// `max_log_bytes`).
    pub log_bytes: u64,
    /// Latest configuration.
    pub membership: Membership,
    /// [`StateMachine::digest`] at `applied`.
    pub digest: u64,
}

/// Asks for [`Status`].
#[derive(Debug, Message)]
#[rtype(result = "Status")]
pub struct GetStatus;

/// The leader as this node knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderInfo {
    /// The leader.
    pub leader_id: Option<NodeId>,
    /// The term.
    pub term: Term,
    /// Who voted for it (known on the leader).
    pub voted_by: Vec<NodeId>,
    /// How long its election took.
    pub election_duration_ms: u64,
    /// Followers that answered the last heartbeat round (leader only).
    pub heartbeat_status: Vec<NodeId>,
}

/// Asks for [`LeaderInfo`].
#[derive(Debug, Message)]
#[rtype(result = "LeaderInfo")]
pub struct Leader;

/// One follower's replication.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FollowerStatus {
    /// The follower.
    pub agent_id: NodeId,
    /// Highest index known replicated.
    pub match_index: Index,
    /// Next index to send.
    pub next_index: Index,
    /// Time since the heartbeat it last answered was sent.
    pub replication_lag_ms: u64,
}

/// Replication state (meaningful on the leader).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogStatusReport {
    /// The leader.
    pub leader: Option<NodeId>,
    /// Each follower.
    pub followers: Vec<FollowerStatus>,
    /// Entries committed (the commit index).
    pub committed_entries: u64,
    /// Entries in the log past the commit index.
    pub uncommitted_entries: u64,
}

/// Asks for [`LogStatusReport`].
#[derive(Debug, Message)]
#[rtype(result = "LogStatusReport")]
pub struct LogStatus;

/// One election, with durations in milliseconds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ElectionEvent {
    /// The previous leader, if known.
    pub old_leader: Option<NodeId>,
    /// The new leader.
    pub new_leader: NodeId,
    /// Its term.
    pub term: Term,
    /// How long the election took.
    pub election_duration_ms: u64,
    /// Who voted for it (known on the leader).
    pub voted_by: Vec<NodeId>,
    /// What started the winning campaign (`Observed` on other nodes).
    pub trigger: ElectionTrigger,
}

/// Asks for the elections this node remembers, oldest first.
#[derive(Debug, Message)]
#[rtype(result = "Vec<ElectionEvent>")]
pub struct ElectionHistory;

/// Asks the leader to hand over to the most up-to-date voter.
#[derive(Debug, Message)]
#[rtype(result = "Result<NodeId, RaftError>")]
pub struct StepDown;

/// Asks the leader to hand over to a given voter.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), RaftError>")]
pub struct TransferLeader(pub NodeId);

/// Makes this node campaign now.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), RaftError>")]
pub struct TriggerElection;

/// Proposes a new configuration; answers once it is applied.
#[derive(Debug, Message)]
#[rtype(result = "Result<Index, RaftError>")]
pub struct ChangeMembership(pub Membership);

/// Takes a snapshot of what is applied now; answers with its index once it
/// is serialized (off the event loop) and handed to the core.
#[derive(Debug, Message)]
#[rtype(result = "Result<Index, RaftError>")]
pub struct TakeSnapshot;

/// Replaces the core settings at run time (timeouts, batch size, bounds).
#[derive(Debug, Message)]
#[rtype(result = "Result<(), RaftError>")]
pub struct UpdateConfig(pub Config);

/// Stops the actor (and unregisters it from the transport).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Shutdown;

/// Counters since start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MetricsReport {
    /// Proposals accepted by the core.
    pub proposals: u64,
    /// Entries applied.
    pub applied_entries: u64,
    /// Of those, entries a leader applied before its own write of them had
    /// ended, its followers having made the quorum
    /// ([`crate::core::Raft::take_committed_early`]).
    pub applied_early: u64,
    /// Ready batches persisted (group commits).
    pub batches_persisted: u64,
    /// Entries persisted.
    pub entries_persisted: u64,
    /// Messages handed to the transport.
    pub messages_sent: u64,
    /// Messages the transport refused.
    pub messages_refused: u64,
    /// Inbound messages that failed to decode.
    pub messages_undecodable: u64,
    /// Times this node became leader.
    pub leaderships: u64,
    /// Snapshots taken.
    pub snapshots_taken: u64,
    /// Snapshots received from a leader and installed.
    pub snapshots_installed: u64,
    /// Appends this node took only in part, its log being full while its
    /// snapshot was due ([`crate::core::Raft::appends_refused_full`]).
    pub appends_refused_full: u64,
}

/// Asks for [`MetricsReport`].
#[derive(Debug, Message)]
#[rtype(result = "MetricsReport")]
pub struct Metrics;

enum Waiter {
    Proposal(Term, oneshot::Sender<Result<Proposed, RaftError>>),
    Membership(Term, oneshot::Sender<Result<Index, RaftError>>),
}

impl Waiter {
    fn fail(self, error: RaftError) {
        match self {
            Waiter::Proposal(_, reply) => {
                let _ = reply.send(Err(error));
            }
            Waiter::Membership(_, reply) => {
                let _ = reply.send(Err(error));
            }
        }
    }
}

type ReadReply = oneshot::Sender<Result<Bytes, RaftError>>;
type SnapshotReply = oneshot::Sender<Result<Index, RaftError>>;

/// Bound on [`TakeSnapshot`] requests waiting for a snapshot to be built;
/// one build answers them all.
pub const SNAPSHOT_REQUESTS_WAITING_MAX: usize = 1_024;

/// A gap between two ticks longer than this many ticks is logged as a
/// warning: the event loop was blocked (ticks are late by that much, and so
/// are heartbeats).
pub const TICK_LATE_WARN_TICKS: u32 = 10;

/// Jobs queued to an actor's persistence thread. A job owns the store, so
/// only one (a batch or a snapshot save) is ever outstanding.
pub const PERSIST_JOBS_MAX: usize = 1;

type PersistJob = Box<dyn FnOnce() + Send>;

/// The thread that runs one actor's blocking store writes, in order. A
/// thread of its own is woken faster than the blocking pool's. It ends once
/// the actor (the sender) is gone and its last job is done.
struct PersistThread {
    jobs: std::sync::mpsc::SyncSender<PersistJob>,
}

impl PersistThread {
    fn spawn(name: String) -> Result<PersistThread, StorageError> {
        let (jobs, queue) = std::sync::mpsc::sync_channel::<PersistJob>(PERSIST_JOBS_MAX);
        std::thread::Builder::new()
            .name(name)
            .spawn(move || {
                for job in queue {
                    job();
                }
            })
            .map_err(|e| StorageError::Engine(format!("start the persistence thread: {e}")))?;
        Ok(PersistThread { jobs })
    }

    /// Runs `job` on the thread; the receiver gets its result.
    fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<oneshot::Receiver<T>, StorageError> {
        let (reply, result) = oneshot::channel();
        self.jobs
            .try_send(Box::new(move || {
                let _ = reply.send(job());
            }))
            .map_err(|e| StorageError::Engine(format!("queue a persistence job: {e}")))?;
        Ok(result)
    }
}

/// The Raft actor of one group on one node.
pub struct RaftActor<S: Storage, M: StateMachine> {
    config: ActorConfig,
    core: Raft,
    transport: Arc<dyn Transport>,
    /// `None` while a batch is being persisted on the persistence thread.
    storage: Option<S>,
    /// Started at the first blocking write.
    persist_thread: Option<PersistThread>,
    machine: Sessioned<M>,
    applied: Index,
    /// Bounded by `max_log_entries`: one per unapplied entry.
    waiters: Waiters<Waiter>,
    reads: BTreeMap<u64, (Bytes, ReadReply)>,
    confirmed_reads: VecDeque<(ReadState, Bytes, ReadReply)>,
    next_read_id: u64,
    /// A snapshot taken while a batch was being persisted, saved next.
    snapshot_unsaved: Option<Snapshot>,
    /// A state machine snapshot is being serialized on the blocking pool.
    snapshot_building: bool,
    /// A serialized snapshot and the applied index it captured, handed to
    /// the core once no batch is outstanding.
    snapshot_built: Option<(Index, Bytes)>,
    /// [`TakeSnapshot`] requests answered by the build in progress.
    snapshot_requests_building: Vec<SnapshotReply>,
    /// [`TakeSnapshot`] requests waiting for the next build (at most
    /// [`SNAPSHOT_REQUESTS_WAITING_MAX`]).
    snapshot_requests: Vec<SnapshotReply>,
    /// A [`Drive`] is queued in the mailbox.
    drive_queued: bool,
    /// The store is saving a snapshot on the persistence thread.
    saving_snapshot: bool,
    /// The state machine keeps its state durably
    /// ([`StateMachine::durable_applied_index`]): it applies only entries
    /// durable in this node's log, never early, so that a crash cannot
    /// leave it past its log.
    machine_durable: bool,
    /// When the batch being written on the persistence thread was handed
    /// to it.
    write_started: Option<std::time::Instant>,
    /// The last batch's write took longer than [`INLINE_WRITE_SLOW`]: the
    /// leader writes off the loop until one is fast again.
    disk_slow: bool,
    /// The store's [`SnapshotStager`] is writing a snapshot on the blocking
    /// pool, beside the log's writes.
    snapshot_staging: bool,
    /// A staged snapshot, recorded once no batch is outstanding.
    snapshot_staged: Option<StagedSnapshot>,
    metrics: MetricsReport,
}

impl<S: Storage, M: StateMachine> RaftActor<S, M> {
    /// Recovers from `storage` and builds the actor; start it with `.start()`.
    pub fn new(
        config: ActorConfig,
        transport: Arc<dyn Transport>,
        storage: S,
        machine: M,
    ) -> Result<RaftActor<S, M>, RaftError> {
        let mut recovered: Recovered = storage.recover()?;
        let durable_applied = machine.durable_applied_index();
        let mut machine = Sessioned::new(machine);
        match durable_applied {
            // The machine is at least as new as the snapshot: skip what it
            // applied. Only entries durable in this log are applied (rule 4
            // of `Ready`), so they are all here; and being applied, they were
            // committed, though the commit index written may lag (it is
            // written only along with entries).
            Some(index) if index >= recovered.snapshot.meta.index => {
                let last = recovered.entries.last().map_or(recovered.snapshot.meta.index, |e| e.index);
                let applied = index.min(last);
                recovered.hard_state.commit = recovered.hard_state.commit.max(applied);
                recovered.applied = applied;
                let skipped = recovered.entries.iter().take_while(|e| e.index <= applied);
                machine
                    .recover_sessions(&recovered.snapshot.data, skipped)
                    .map_err(|e| StorageError::Corrupted(format!("snapshot sessions: {e}")))?;
            }
            _ if recovered.snapshot.meta.index > 0 => machine
                .restore(&recovered.snapshot.data)
                .map_err(|e| StorageError::Corrupted(format!("snapshot: {e}")))?,
            _ => {}
        }
        let applied = recovered.applied;
        let core = Raft::new(transport.local_id(), config.core.clone(), recovered, rand::random())?;
        Ok(RaftActor {
            config,
            core,
            transport,
            storage: Some(storage),
            persist_thread: None,
            machine,
            applied,
            waiters: Waiters::default(),
            reads: BTreeMap::new(),
            confirmed_reads: VecDeque::new(),
            next_read_id: 1,
            snapshot_unsaved: None,
            snapshot_building: false,
            snapshot_built: None,
            snapshot_requests_building: Vec::new(),
            snapshot_requests: Vec::new(),
            drive_queued: false,
            saving_snapshot: false,
            machine_durable: durable_applied.is_some(),
            write_started: None,
            disk_slow: false,
            snapshot_staging: false,
            snapshot_staged: None,
            metrics: MetricsReport::default(),
        })
    }

    fn tick_ms(&self) -> u64 {
        self.config.tick.as_millis() as u64
    }

    fn send_all(&mut self, messages: Vec<(NodeId, crate::core::Message)>) {
        for (to, message) in messages {
            let envelope =
                Envelope::typed(self.transport.local_id(), to, self.config.group, RaftWire::V1(message));
            match self.transport.send(envelope) {
                Ok(()) => self.metrics.messages_sent += 1,
                Err(_) => self.metrics.messages_refused += 1,
            }
        }
    }

    /// Steps the core's outputs: the one driver every handler ends with.
    /// Once it has applied [`Config::apply_bytes_max`] bytes of entries, it
    /// goes on only after the messages waiting meanwhile (ticks,
    /// heartbeats, reads), so that a long backlog of large entries does not
    /// hold the loop.
    fn drive(&mut self, ctx: &mut Context<Self>) {
        let mut applied_bytes = 0;
        loop {
            if self.storage.is_none() {
                // Saving a snapshot writes the whole state machine and may
                // take longer than an election timeout: what needs nothing
                // durable leaves meanwhile (`Raft::take_immediate_messages`),
                // so that followers keep hearing from their leader. (Doing so
                // during every batch's write too split the appends into many
                // small ones: 64 clients went from 23-25k to 15-17k puts/s.)
                // While a batch is written, only heartbeats and their
                // answers leave (`Raft::take_heartbeat_messages`): an `fsync`
                // behind a busy disk's writeback (1 MB puts while snapshots
                // were written) outlasted the election timeout, and the
                // leader's check-quorum stepped it down.
                // A write outstanding past `write_heartbeats_max` is taken
                // for a stuck disk: the node falls silent.
                // A leader whose followers have made a quorum without its
                // own write (a batch's write in flight, or none yet because
                // a snapshot is being saved) applies what they committed,
                // and answers its proposers, now
                // (`Raft::take_committed_early`), unless its
                // state machine is durable: a crash could leave that past
                // the log, which recovery relies on.
                // Reads confirmed meanwhile are answered once applied too
                // (`Raft::take_read_states`), during a snapshot's save as well.
                // (Neither after a storage failure.)
                if self.write_started.is_some() || self.saving_snapshot {
                    let early =
                        if self.machine_durable { Vec::new() } else { self.core.take_committed_early() };
                    for entry in &early {
                        self.apply(entry);
                    }
                    self.metrics.applied_early += early.len() as u64;
                    let reads = self.core.take_read_states();
                    self.confirm_reads(reads);
                }
                let messages = if self.saving_snapshot {
                    self.core.take_immediate_messages()
                } else if self.write_started.is_some_and(|t| t.elapsed() <= self.config.write_heartbeats_max)
                {
                    self.core.take_heartbeat_messages()
                } else {
                    Vec::new()
                };
                self.send_all(messages);
                return;
            }
            // No batch is outstanding here: the core's applied index is the
            // actor's, so the built snapshot's index is one the core applied.
            if let Some((index, data)) = self.snapshot_built.take() {
                self.snapshot_taken(index, data, ctx);
            }
            if let Some(staged) = self.snapshot_staged.take() {
                return self.save_snapshot(move |storage| storage.save_staged_snapshot(staged), ctx);
            }
            let Some(storage) = self.storage.as_mut() else { return };
            if !self.snapshot_staging {
                if let Some(snapshot) = self.snapshot_unsaved.take() {
                    if !storage.writes_block() {
                        if let Err(e) = storage.save_snapshot(&snapshot) {
                            return self.fail(e, ctx);
                        }
                    } else if let Some(stager) = storage.snapshot_stager() {
                        self.stage_snapshot(stager, snapshot, ctx);
                    } else {
                        return self.save_snapshot(move |storage| storage.save_snapshot(&snapshot), ctx);
                    }
                }
            }
            if !self.core.has_ready() {
                return;
            }
            let mut ready = self.core.ready();
            applied_bytes += ready.committed_entries.iter().map(Entry::size_bytes).sum::<usize>();
            self.free_replaced_snapshot();
            self.send_all(std::mem::take(&mut ready.messages));
            // A follower's acknowledgement waits for its write anyway:
            // writing here saves two thread hand-offs (see
            // `ActorConfig::follower_writes_inline`); so does a leader's
            // small batch, whose appends have just left (see
            // `ActorConfig::leader_inline_entries_max`). Received snapshots
            // and large batches still go to the persistence thread.
            let small = ready.snapshot.is_none()
                && ready.entries.iter().map(Entry::size_bytes).sum::<usize>()
                    <= self.config.follower_inline_bytes_max;
            let inline = small
                && match self.core.role() {
                    Role::Follower => self.config.follower_writes_inline,
                    Role::Leader => {
                        // Only when no other proposal waits on the loop.
                        let log = self.core.log();
                        let uncommitted = log.last_index().saturating_sub(log.commit);
                        let max = self.config.leader_inline_entries_max as u64;
                        max > 0 && !self.disk_slow && uncommitted <= max
                    }
                    _ => false,
                };
            // Entries durable here already are applied (and their proposers
            // answered) now, not after this batch's write (rule 4 of `Ready`).
            // A follower writing inline applies them after it has acknowledged
            // the batch instead (`finish` applies every committed entry); a
            // leader's appends have left already, so it answers first.
            let follower_inline = inline && self.core.role() == Role::Follower;
            let durable = if follower_inline { 0 } else { ready.committed_entries_durable };
            for entry in &ready.committed_entries[..durable] {
                self.apply(entry);
            }
            ready.committed_entries.drain(..durable);
            ready.committed_entries_durable = 0;
            if durable > 0 {
                self.answer_reads();
            }
            let needs_write =
                ready.hard_state.is_some() || ready.snapshot.is_some() || !ready.entries.is_empty();
            if needs_write {
                self.metrics.batches_persisted += 1;
                self.metrics.entries_persisted += ready.entries.len() as u64;
                let storage = self.storage.as_mut().expect("checked above");
                if storage.writes_block() && !inline {
                    return self.persist_off_loop(ready, ctx);
                }
                let batch = WriteBatch {
                    snapshot: ready.snapshot.as_ref(),
                    entries: &ready.entries,
                    hard_state: ready.hard_state,
                };
                let started = std::time::Instant::now();
                if let Err(e) = storage.write(batch) {
                    return self.fail(e, ctx);
                }
                self.disk_slow = started.elapsed() > INLINE_WRITE_SLOW;
            }
            self.finish(ready, None, ctx);
            if applied_bytes >= self.core.config().apply_bytes_max && self.core.has_ready() {
                return self.drive_soon(ctx);
            }
        }
    }

    /// Drives once the messages already in the mailbox are handled, so that
    /// proposals and acknowledgements arriving together form one batch.
    fn drive_soon(&mut self, ctx: &mut Context<Self>) {
        if !self.drive_queued {
            self.drive_queued = true;
            ctx.notify(Drive);
        }
    }

    /// Runs `job` with the store on the persistence thread (started on first
    /// use), off the event loop.
    fn on_persist_thread<T: Send + 'static>(
        &mut self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<oneshot::Receiver<T>, StorageError> {
        if self.persist_thread.is_none() {
            let name = format!("raft-persist-{}", self.config.group);
            self.persist_thread = Some(PersistThread::spawn(name)?);
        }
        match &self.persist_thread {
            Some(thread) => thread.run(job),
            None => Err(StorageError::Engine("no persistence thread".into())),
        }
    }

    /// Persists a batch on the persistence thread; the actor keeps taking
    /// inputs, which form the next batch (group commit). A received
    /// snapshot's data is decoded on the blocking pool meanwhile
    /// ([`StateMachine::restore_job`]), so that installing it costs the loop
    /// only a swap: decoding the runtime's state of 480 values of 1 MB took
    /// 0.6 s (1.7 s cold), past any election timeout, during which the
    /// node neither ticked nor answered.
    fn persist_off_loop(&mut self, mut ready: Ready, ctx: &mut Context<Self>) {
        let decoding = ready.snapshot.as_ref().map(|snapshot| {
            let (job, data) = (self.machine.restore_job(), snapshot.data.clone());
            actix_rt::task::spawn_blocking(move || job(data))
        });
        let mut storage = self.storage.take().expect("the caller checked");
        let snapshot = ready.snapshot.clone();
        let entries = std::mem::take(&mut ready.entries);
        let hard_state = ready.hard_state;
        let job = self.on_persist_thread(move || {
            let result =
                storage.write(WriteBatch { snapshot: snapshot.as_ref(), entries: &entries, hard_state });
            (storage, result)
        });
        let job = match job {
            Ok(job) => job,
            Err(e) => return self.fail(e, ctx),
        };
        self.write_started = Some(std::time::Instant::now());
        // Both run already: awaiting one after the other takes the longer.
        let written_and_decoded = async move {
            let written = job.await;
            let decoded = match decoding {
                Some(handle) => Some(handle.await.map_err(|e| format!("decoding task: {e}")).and_then(|r| r)),
                None => None,
            };
            (written, decoded)
        };
        written_and_decoded
            .into_actor(self)
            .map(move |(joined, decoded), actor, ctx| match joined {
                Ok((storage, Ok(()))) => {
                    actor.storage = Some(storage);
                    actor.disk_slow = actor.write_started.is_some_and(|t| t.elapsed() > INLINE_WRITE_SLOW);
                    actor.write_started = None;
                    actor.finish(ready, decoded, ctx);
                    actor.drive(ctx);
                }
                Ok((_, Err(e))) => actor.fail(e, ctx),
                Err(e) => actor.fail(StorageError::Engine(format!("persistence thread: {e}")), ctx),
            })
            .spawn(ctx);
    }

    /// A node that cannot persist must not go on: stop loudly.
    fn fail(&mut self, error: StorageError, ctx: &mut Context<Self>) {
        tracing::error!(error = %error, "raft storage failed; stopping the actor");
        self.storage = None;
        self.saving_snapshot = false;
        self.write_started = None;
        ctx.stop();
    }

    /// The rest of a batch once it is durable. A received snapshot is
    /// installed from `decoded` when it was decoded off the loop, else
    /// restored here.
    fn finish(
        &mut self,
        ready: Ready,
        decoded: Option<Result<Install<Sessioned<M>>, String>>,
        ctx: &mut Context<Self>,
    ) {
        if self.storage.is_none() {
            return; // stopped after a storage failure
        }
        self.send_all(ready.persisted_messages);
        if let Some(snapshot) = &ready.snapshot {
            let restored = match decoded {
                Some(decoded) => decoded.and_then(|install| install(&mut self.machine)),
                None => self.machine.restore(&snapshot.data),
            };
            if let Err(e) = restored {
                return self.fail(StorageError::Corrupted(format!("snapshot from the leader: {e}")), ctx);
            }
            self.applied = snapshot.meta.index;
            self.metrics.snapshots_installed += 1;
            for (_, waiter) in self.waiters.take_through(self.applied) {
                waiter.fail(RaftError::LeadershipLost);
            }
        }
        for entry in &ready.committed_entries {
            self.apply(entry);
        }
        self.confirm_reads(ready.read_states);
        for event in ready.events {
            self.on_event(event);
        }
        self.core.advance(ready.number);
        if self.core.snapshot_due() {
            self.build_snapshot(ctx);
        }
    }

    fn apply(&mut self, entry: &Entry) {
        assert_eq!(entry.index, self.applied + 1, "entries are applied in order, each once");
        self.applied = entry.index;
        self.metrics.applied_entries += 1;
        let outcome = match &entry.payload {
            Payload::Command { client, data } => Some(self.machine.apply(entry.index, *client, data)),
            // Answers a `ProposeEmpty` (a leader's own no-op has no waiter).
            Payload::Empty => Some(Applied::Response(Bytes::new())),
            Payload::Membership(_) => None,
        };
        let Some(waiter) = self.waiters.remove(entry.index) else { return };
        match waiter {
            Waiter::Proposal(term, reply) => {
                let result = match outcome {
                    _ if term != entry.term => Err(RaftError::LeadershipLost),
                    Some(Applied::Response(response)) => Ok(Proposed { index: entry.index, response }),
                    Some(Applied::Stale) => Err(RaftError::StaleRetry),
                    Some(Applied::ResponseLost) => Err(RaftError::ResponseLost),
                    None => Err(RaftError::LeadershipLost),
                };
                let _ = reply.send(result);
            }
            Waiter::Membership(term, reply) => {
                let result =
                    if term == entry.term { Ok(entry.index) } else { Err(RaftError::LeadershipLost) };
                let _ = reply.send(result);
            }
        }
    }

    /// Queues the confirmed reads and answers those whose index is applied.
    fn confirm_reads(&mut self, reads: Vec<ReadState>) {
        for read in reads {
            if let Some((query, reply)) = self.reads.remove(&read.id) {
                self.confirmed_reads.push_back((read, query, reply));
            }
        }
        self.answer_reads();
    }

    fn answer_reads(&mut self) {
        while self.confirmed_reads.front().is_some_and(|(read, _, _)| read.index <= self.applied) {
            let (_, query, reply) = self.confirmed_reads.pop_front().expect("checked");
            let _ = reply.send(Ok(self.machine.machine.query(&query)));
        }
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::BecameLeader(record) => {
                self.metrics.leaderships += 1;
                tracing::info!(
                    group = %self.config.name, term = record.term, voted_by = ?record.voted_by,
                    "became leader"
                );
            }
            Event::SteppedDown { term } => {
                tracing::info!(group = %self.config.name, term, "stepped down");
                for (_, waiter) in self.waiters.take_all() {
                    waiter.fail(RaftError::LeadershipLost);
                }
            }
            Event::ReadsDropped(ids) => {
                for id in ids {
                    if let Some((_, reply)) = self.reads.remove(&id) {
                        let _ = reply.send(Err(RaftError::LeadershipLost));
                    }
                }
            }
            Event::LeaderChanged { term, leader } => {
                tracing::info!(group = %self.config.name, term, ?leader, "leader changed");
            }
            Event::MembershipChanged { index } => {
                tracing::info!(group = %self.config.name, index, membership = ?self.core.membership(), "membership changed");
            }
        }
    }

    /// Captures the state machine at the applied index and serializes it on
    /// the blocking pool while applying goes on; [`Self::drive`] hands the
    /// result to the core. One build at a time. The store keeps the full log
    /// until the snapshot is saved, which is safe.
    fn build_snapshot(&mut self, ctx: &mut Context<Self>) {
        if self.snapshot_building || self.snapshot_built.is_some() {
            return;
        }
        self.snapshot_building = true;
        self.snapshot_requests_building.append(&mut self.snapshot_requests);
        let index = self.applied;
        let job = self.machine.snapshot_job();
        actix_rt::task::spawn_blocking(job)
            .into_actor(self)
            .map(move |joined, actor, ctx| {
                actor.snapshot_building = false;
                match joined {
                    Ok(data) => {
                        actor.snapshot_built = Some((index, data));
                        actor.drive(ctx);
                    }
                    Err(e) => {
                        actor.fail(StorageError::Engine(format!("snapshot serialization task: {e}")), ctx)
                    }
                }
            })
            .spawn(ctx);
    }

    /// Hands a built snapshot to the core (which compacts its log), answers
    /// the requests it serves and queues it to be saved.
    fn snapshot_taken(&mut self, index: Index, data: Bytes, ctx: &mut Context<Self>) {
        let snapshot = self.core.snapshot_taken(index, data);
        // Freeing the compacted entries one by one took tens of milliseconds
        // of the event loop after a 100,000-entry snapshot.
        let compacted = self.core.take_compacted();
        if !compacted.is_empty() {
            actix_rt::task::spawn_blocking(move || drop(compacted));
        }
        self.free_replaced_snapshot();
        self.metrics.snapshots_taken += 1;
        for reply in self.snapshot_requests_building.drain(..) {
            let _ = reply.send(Ok(snapshot.meta.index));
        }
        if snapshot.meta.index == index {
            self.snapshot_unsaved = Some(snapshot);
        }
        if !self.snapshot_requests.is_empty() {
            self.build_snapshot(ctx);
        }
    }

    /// Frees the data of the snapshot the core's last one replaced on the
    /// blocking pool: returning a state of 0.5-1 GB to the system took the
    /// loop 100-450 ms, past the election timeout.
    fn free_replaced_snapshot(&mut self) {
        if let Some(data) = self.core.take_replaced_snapshot() {
            actix_rt::task::spawn_blocking(move || drop(data));
        }
    }

    /// Writes a snapshot's data with the store's stager on the blocking
    /// pool, while the log's batches go on; the staged snapshot is recorded
    /// once it is written and no batch is outstanding. (Saving a 480 MB
    /// snapshot on the persistence thread held every log write up for
    /// seconds, and nodes saving together lost their leader.)
    fn stage_snapshot(&mut self, stager: SnapshotStager, snapshot: Snapshot, ctx: &mut Context<Self>) {
        self.snapshot_staging = true;
        actix_rt::task::spawn_blocking(move || stager(&snapshot))
            .into_actor(self)
            .map(|joined, actor, ctx| {
                actor.snapshot_staging = false;
                match joined {
                    Ok(Ok(staged)) => {
                        actor.snapshot_staged = Some(staged);
                        actor.drive(ctx);
                    }
                    Ok(Err(e)) => actor.fail(e, ctx),
                    Err(e) => actor.fail(StorageError::Engine(format!("snapshot staging task: {e}")), ctx),
                }
            })
            .spawn(ctx);
    }

    /// Runs a snapshot save (`save`, given the store) on the persistence
    /// thread; the caller checked that no batch is outstanding.
    fn save_snapshot(
        &mut self,
        save: impl FnOnce(&mut S) -> Result<(), StorageError> + Send + 'static,
        ctx: &mut Context<Self>,
    ) {
        let Some(mut storage) = self.storage.take() else {
            return self.fail(StorageError::Engine("a snapshot saved while a batch is written".into()), ctx);
        };
        self.saving_snapshot = true;
        let job = self.on_persist_thread(move || {
            let result = save(&mut storage);
            (storage, result)
        });
        let job = match job {
            Ok(job) => job,
            Err(e) => return self.fail(e, ctx),
        };
        job.into_actor(self)
            .map(|joined, actor, ctx| match joined {
                Ok((storage, Ok(()))) => {
                    actor.storage = Some(storage);
                    actor.saving_snapshot = false;
                    actor.drive(ctx);
                }
                Ok((_, Err(e))) => actor.fail(e, ctx),
                Err(e) => actor.fail(StorageError::Engine(format!("persistence thread: {e}")), ctx),
            })
            .spawn(ctx);
    }

    fn last_round_responders(&self) -> Vec<NodeId> {
        let best = self.core.progress().values().map(|p| p.acked_round).max().unwrap_or(0);
        self.core
            .progress()
            .iter()
            .filter(|(_, p)| p.acked_round == best && best > 0)
            .map(|(id, _)| *id)
            .collect()
    }

    fn election_event(&self, record: &ElectionRecord) -> ElectionEvent {
        ElectionEvent {
            old_leader: record.old_leader,
            new_leader: record.leader,
            term: record.term,
            election_duration_ms: record.election_duration_ticks * self.tick_ms(),
            voted_by: record.voted_by.clone(),
            trigger: record.trigger,
        }
    }
}

impl<S: Storage, M: StateMachine> Actor for RaftActor<S, M> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Inbound envelopes beyond the mailbox bound are dropped by the router.
        ctx.set_mailbox_capacity(MAILBOX_CAPACITY_DEFAULT);
        let channel = concord_transport::Channel::raft(self.config.group);
        self.transport.register(channel, ctx.address().recipient());
        self.transport.watch_peers(channel, ctx.address().recipient());
        let mut last_tick = std::time::Instant::now();
        let late = self.config.tick * TICK_LATE_WARN_TICKS;
        ctx.run_interval(self.config.tick, move |actor, ctx| {
            let now = std::time::Instant::now();
            let gap = now - last_tick;
            last_tick = now;
            if gap > late {
                // What held the thread up delays heartbeats and answers alike:
                // long enough, and followers elect another leader.
                tracing::warn!(
                    group = %actor.config.name,
                    gap_ms = gap.as_millis() as u64,
                    role = ?actor.core.role(),
                    "raft tick late: the event loop was blocked"
                );
            }
            actor.core.tick();
            actor.drive(ctx);
        });
        tracing::debug!(node = %self.transport.local_id(), group = %self.config.name, "raft actor started");
    }

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        self.transport.unregister(concord_transport::Channel::raft(self.config.group));
        for (_, waiter) in self.waiters.take_all() {
            waiter.fail(RaftError::Stopped);
        }
    }
}

/// Queued behind the mailbox's current messages to drive the core once for all of them.
#[derive(Message)]
#[rtype(result = "()")]
struct Drive;

impl<S: Storage, M: StateMachine> Handler<Drive> for RaftActor<S, M> {
    type Result = ();

    fn handle(&mut self, _: Drive, ctx: &mut Context<Self>) {
        self.drive_queued = false;
        self.drive(ctx);
    }
}

/// Default bound on messages waiting in a Raft actor's mailbox.
pub const MAILBOX_CAPACITY_DEFAULT: usize = 65_536;

impl<S: Storage, M: StateMachine> Handler<Inbound> for RaftActor<S, M> {
    type Result = ();

    fn handle(&mut self, Inbound(envelope): Inbound, ctx: &mut Context<Self>) {
        let from = envelope.from;
        match envelope.into_message::<RaftWire>() {
            Ok(RaftWire::V1(message)) => {
                self.core.step(from, message);
                self.drive_soon(ctx);
            }
            Err(e) => {
                self.metrics.messages_undecodable += 1;
                tracing::warn!(%from, error = %e, "undecodable raft message dropped");
            }
        }
    }
}

/// The transport found a peer down: if it led this group, campaign as soon as
/// the lease allows ([`crate::core::Raft::peer_down`]).
impl<S: Storage, M: StateMachine> Handler<PeerDown> for RaftActor<S, M> {
    type Result = ();

    fn handle(&mut self, PeerDown(peer): PeerDown, _ctx: &mut Context<Self>) {
        if self.core.leader() == Some(peer) {
            tracing::info!(group = %self.config.name, %peer, "leader found down: campaigning when the lease ends");
        }
        self.core.peer_down(peer);
    }
}

fn reply_later<T: Send + 'static>(
    receiver: oneshot::Receiver<Result<T, RaftError>>,
) -> ResponseFuture<Result<T, RaftError>> {
    Box::pin(async move { receiver.await.unwrap_or(Err(RaftError::Stopped)) })
}

fn reply_now<T: Send + 'static>(result: Result<T, RaftError>) -> ResponseFuture<Result<T, RaftError>> {
    Box::pin(async move { result })
}

impl<S: Storage, M: StateMachine> Handler<Propose> for RaftActor<S, M> {
    type Result = Result<Pending, RaftError>;

    fn handle(&mut self, message: Propose, ctx: &mut Context<Self>) -> Self::Result {
        let (index, term) = self.core.propose(message.data, message.client)?;
        self.metrics.proposals += 1;
        let (sender, receiver) = oneshot::channel();
        self.waiters.insert(index, Waiter::Proposal(term, sender));
        self.drive_soon(ctx);
        Ok(Pending { index, term, receiver })
    }
}

impl<S: Storage, M: StateMachine> Handler<ProposeEmpty> for RaftActor<S, M> {
    type Result = Result<Pending, RaftError>;

    fn handle(&mut self, _: ProposeEmpty, ctx: &mut Context<Self>) -> Self::Result {
        let (index, term) = self.core.propose_empty()?;
        self.metrics.proposals += 1;
        let (sender, receiver) = oneshot::channel();
        self.waiters.insert(index, Waiter::Proposal(term, sender));
        self.drive_soon(ctx);
        Ok(Pending { index, term, receiver })
    }
}

impl<S: Storage, M: StateMachine> Handler<Read> for RaftActor<S, M> {
    type Result = ResponseFuture<Result<Bytes, RaftError>>;

    fn handle(&mut self, message: Read, ctx: &mut Context<Self>) -> Self::Result {
        let id = self.next_read_id;
        self.next_read_id += 1;
        let (sender, receiver) = oneshot::channel();
        match message.kind {
            ReadKind::Stale => return reply_now(Ok(self.machine.machine.query(&message.query))),
            ReadKind::Lease => match self.core.read_lease(id) {
                Ok(read) => self.confirmed_reads.push_back((read, message.query, sender)),
                Err(e) => return reply_now(Err(e.into())),
            },
            ReadKind::Linearizable => match self.core.read_index(id) {
                Ok(()) => {
                    self.reads.insert(id, (message.query, sender));
                }
                Err(e) => return reply_now(Err(e.into())),
            },
        }
        self.answer_reads();
        self.drive_soon(ctx);
        reply_later(receiver)
    }
}

impl<S: Storage, M: StateMachine> Handler<GetStatus> for RaftActor<S, M> {
    type Result = MessageResult<GetStatus>;

    fn handle(&mut self, _: GetStatus, _: &mut Context<Self>) -> Self::Result {
        let log = self.core.log();
        MessageResult(Status {
            id: self.core.id(),
            role: self.core.role(),
            term: self.core.term(),
            leader: self.core.leader(),
            commit: log.commit,
            applied: self.applied,
            last_index: log.last_index(),
            durable_index: log.stable_index,
            snapshot_index: log.snapshot().index,
            log_bytes: log.bytes(),
            membership: self.core.membership().clone(),
            digest: self.machine.machine.digest(),
        })
    }
}

impl<S: Storage, M: StateMachine> Handler<Leader> for RaftActor<S, M> {
    type Result = MessageResult<Leader>;

    fn handle(&mut self, _: Leader, _: &mut Context<Self>) -> Self::Result {
        let last = self.core.election_history().last().filter(|r| r.term == self.core.term());
        MessageResult(LeaderInfo {
            leader_id: self.core.leader(),
            term: self.core.term(),
            voted_by: last.map(|r| r.voted_by.clone()).unwrap_or_default(),
            election_duration_ms: last.map_or(0, |r| r.election_duration_ticks * self.tick_ms()),
            heartbeat_status: self.last_round_responders(),
        })
    }
}

impl<S: Storage, M: StateMachine> Handler<LogStatus> for RaftActor<S, M> {
    type Result = MessageResult<LogStatus>;

    fn handle(&mut self, _: LogStatus, _: &mut Context<Self>) -> Self::Result {
        let now = self.core.ticks();
        let followers = self
            .core
            .progress()
            .iter()
            .map(|(id, p)| FollowerStatus {
                agent_id: *id,
                match_index: p.match_index,
                next_index: p.next_index,
                replication_lag_ms: now.saturating_sub(p.acked_sent_tick.unwrap_or(0)) * self.tick_ms(),
            })
            .collect();
        let log = self.core.log();
        MessageResult(LogStatusReport {
            leader: self.core.leader(),
            followers,
            committed_entries: log.commit,
            uncommitted_entries: log.last_index() - log.commit,
        })
    }
}

impl<S: Storage, M: StateMachine> Handler<ElectionHistory> for RaftActor<S, M> {
    type Result = MessageResult<ElectionHistory>;

    fn handle(&mut self, _: ElectionHistory, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.core.election_history().map(|r| self.election_event(r)).collect())
    }
}

impl<S: Storage, M: StateMachine> Handler<StepDown> for RaftActor<S, M> {
    type Result = Result<NodeId, RaftError>;

    fn handle(&mut self, _: StepDown, ctx: &mut Context<Self>) -> Self::Result {
        let target = self.core.step_down()?;
        self.drive(ctx);
        Ok(target)
    }
}

impl<S: Storage, M: StateMachine> Handler<TransferLeader> for RaftActor<S, M> {
    type Result = Result<(), RaftError>;

    fn handle(&mut self, TransferLeader(target): TransferLeader, ctx: &mut Context<Self>) -> Self::Result {
        self.core.transfer_leader(target)?;
        self.drive(ctx);
        Ok(())
    }
}

impl<S: Storage, M: StateMachine> Handler<TriggerElection> for RaftActor<S, M> {
    type Result = Result<(), RaftError>;

    fn handle(&mut self, _: TriggerElection, ctx: &mut Context<Self>) -> Self::Result {
        self.core.trigger_election()?;
        self.drive(ctx);
        Ok(())
    }
}

impl<S: Storage, M: StateMachine> Handler<ChangeMembership> for RaftActor<S, M> {
    type Result = ResponseFuture<Result<Index, RaftError>>;

    fn handle(&mut self, ChangeMembership(next): ChangeMembership, ctx: &mut Context<Self>) -> Self::Result {
        match self.core.change_membership(next) {
            Ok(index) => {
                let (sender, receiver) = oneshot::channel();
                self.waiters.insert(index, Waiter::Membership(self.core.term(), sender));
                self.drive(ctx);
                reply_later(receiver)
            }
            Err(e) => reply_now(Err(e.into())),
        }
    }
}

impl<S: Storage, M: StateMachine> Handler<TakeSnapshot> for RaftActor<S, M> {
    type Result = ResponseFuture<Result<Index, RaftError>>;

    fn handle(&mut self, _: TakeSnapshot, ctx: &mut Context<Self>) -> Self::Result {
        if self.snapshot_requests.len() >= SNAPSHOT_REQUESTS_WAITING_MAX {
            let waiting = self.snapshot_requests.len();
            return reply_now(Err(RequestError::TooManySnapshotRequests(waiting).into()));
        }
        let (sender, receiver) = oneshot::channel();
        self.snapshot_requests.push(sender);
        self.build_snapshot(ctx);
        self.drive(ctx);
        reply_later(receiver)
    }
}

impl<S: Storage, M: StateMachine> Handler<UpdateConfig> for RaftActor<S, M> {
    type Result = Result<(), RaftError>;

    fn handle(&mut self, UpdateConfig(config): UpdateConfig, _: &mut Context<Self>) -> Self::Result {
        self.core
            .set_config(config.clone())
            .map_err(|e| RaftError::Request(RequestError::InvalidMembership(e)))?;
        self.config.core = config;
        Ok(())
    }
}

impl<S: Storage, M: StateMachine> Handler<Metrics> for RaftActor<S, M> {
    type Result = MessageResult<Metrics>;

    fn handle(&mut self, _: Metrics, _: &mut Context<Self>) -> Self::Result {
        MessageResult(MetricsReport {
            appends_refused_full: self.core.appends_refused_full(),
            ..self.metrics
        })
    }
}

impl<S: Storage, M: StateMachine> Handler<Shutdown> for RaftActor<S, M> {
    type Result = ();

    fn handle(&mut self, _: Shutdown, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

/// The snapshot a new group starts from: index 0 with `membership`.
pub fn bootstrap_snapshot(membership: Membership) -> Snapshot {
    Snapshot { meta: crate::core::SnapshotMeta { index: 0, term: 0, membership }, data: Bytes::new() }
}

/// Writes the initial configuration into a new store, as the snapshot at
/// index 0, through the same batch write a received snapshot takes
/// (`save_snapshot` keeps only snapshots past the current one, so it would
/// skip index 0). A store that already holds a configuration is left alone
/// and `false` is returned: a restarted node recovers instead.
pub fn bootstrap_store<S: Storage>(store: &mut S, membership: Membership) -> Result<bool, StorageError> {
    if !store.snapshot()?.meta.membership.voters.is_empty() {
        return Ok(false);
    }
    let snapshot = bootstrap_snapshot(membership);
    store.write(WriteBatch { snapshot: Some(&snapshot), ..WriteBatch::default() })?;
    Ok(true)
}
