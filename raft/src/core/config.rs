//! Settings of the core, in ticks. Each bound has a named default; the actor
//! converts milliseconds to ticks.

use crate::error::ConfigError;

/// Settings of a [`crate::core::Raft`]. Change them at run time with
/// [`crate::core::Raft::set_config`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Smallest election timeout, in ticks (150 ms at 10 ms ticks).
    pub election_ticks_min: u64,
    /// Largest election timeout, in ticks (300 ms at 10 ms ticks).
    pub election_ticks_max: u64,
    /// Ticks between heartbeats (50 ms at 10 ms ticks).
    pub heartbeat_ticks: u64,
    /// Campaign first with a pre-vote that does not disturb the term (thesis §9.6).
    pub pre_vote: bool,
    /// A leader steps down if it has not heard from a commit quorum within
    /// an election timeout, and followers ignore votes while they hear from
    /// a leader (thesis §6.2).
    pub check_quorum: bool,
    /// Entries per AppendEntries message and per proposal batch.
    pub batch_size: usize,
    /// Bytes per AppendEntries message.
    pub batch_bytes_max: usize,
    /// AppendEntries messages in flight to one follower.
    pub inflight_messages_max: usize,
    /// Entry bytes in flight to one follower.
    pub inflight_bytes_max: usize,
    /// Entries applied since the last snapshot before the next one may be
    /// taken. It is taken then only if the log since the last snapshot holds
    /// [`SNAPSHOT_LOG_BYTES_PERCENT`] of its bytes, or the log nears
    /// `max_log_entries` (see [`crate::core::Raft::snapshot_due`]).
    ///
    /// [`SNAPSHOT_LOG_BYTES_PERCENT`]: crate::core::snapshot::SNAPSHOT_LOG_BYTES_PERCENT
    pub snapshot_threshold_entries: u64,
    /// Entries the log may hold; proposals past it are refused until a
    /// snapshot compacts the log. A snapshot is due, whatever its size, once
    /// the log is within a tenth of this
    /// ([`SNAPSHOT_LOG_FULL_MARGIN_DIVISOR`]). The log is held in memory:
    /// this bounds its entries, each at most `batch_bytes_max` bytes.
    /// A follower whose snapshot is due (or will be once its committed
    /// entries are applied) takes only the entries that fit
    /// ([`AppendOutcome::Full`]). Two exceptions, both for liveness: a new
    /// leader appends its no-op whatever the bound (it is what commits the
    /// entries before it), and a follower that knows too few of its
    /// entries committed for a snapshot to be due (fewer than
    /// `snapshot_threshold_entries`) takes entries past the bound: refusing
    /// them would wait for a compaction that nothing would bring.
    ///
    /// [`AppendOutcome::Full`]: crate::core::AppendOutcome::Full
    /// [`SNAPSHOT_LOG_FULL_MARGIN_DIVISOR`]: crate::core::snapshot::SNAPSHOT_LOG_FULL_MARGIN_DIVISOR
    pub max_log_entries: u64,
    /// Bytes of entries the log may hold ([`RaftLog::bytes`]): the bound on
    /// its memory, which `max_log_entries` alone leaves at that many
    /// commands of up to `batch_bytes_max` each. A proposal that would take
    /// the log past it is refused until a snapshot compacts the log, and a
    /// snapshot is due once the log is within a tenth of it
    /// ([`SNAPSHOT_LOG_FULL_MARGIN_DIVISOR`]), before
    /// `snapshot_threshold_entries` if need be. At least `batch_bytes_max`.
    /// A follower holds to it as to `max_log_entries`, with the same
    /// exceptions.
    ///
    /// [`RaftLog::bytes`]: crate::core::log::RaftLog::bytes
    /// [`SNAPSHOT_LOG_FULL_MARGIN_DIVISOR`]: crate::core::snapshot::SNAPSHOT_LOG_FULL_MARGIN_DIVISOR
    pub max_log_bytes: u64,
    /// Bytes of one snapshot chunk sent to a lagging follower.
    pub snapshot_chunk_bytes_max: usize,
    /// Bytes of a snapshot a follower accepts to assemble.
    pub snapshot_bytes_max: u64,
    /// Committed entries handed to the state machine in one batch.
    pub apply_entries_max: usize,
    /// Bytes of committed entries ([`Entry::size_bytes`]) handed to the
    /// state machine in one batch; a larger entry goes alone. The actor
    /// returns to its event loop between batches once it has applied this
    /// much (see [`crate::actor::RaftActor`]): the runtime's state machine
    /// took 150-165 ms to apply 100 puts of 1 MB, and up to 4,096 entries
    /// were applied in one go before.
    ///
    /// [`Entry::size_bytes`]: crate::core::types::Entry::size_bytes
    pub apply_bytes_max: usize,
    /// Reads waiting for leadership confirmation.
    pub read_pending_max: usize,
    /// Ticks of clock drift the lease allows for: a lease read is served only
    /// while `election_ticks_min - lease_drift_ticks` have not passed since
    /// a quorum acknowledged.
    pub lease_drift_ticks: u64,
    /// Elections remembered by the history.
    pub election_history_len_max: usize,
    /// Campaign as soon as the lease allows when the transport finds the
    /// leader down, instead of after a random timeout
    /// ([`crate::core::Raft::peer_down`]).
    pub elect_on_leader_down: bool,
}

/// Default `apply_bytes_max`: 4 MiB, a few milliseconds of applying. Small
/// commands reach `apply_entries_max` first (4,096 of 256 bytes are about
/// 1.4 MB).
pub const APPLY_BYTES_MAX_DEFAULT: usize = 4 * 1024 * 1024;

/// Default `max_log_bytes`: 512 MiB of entries in memory. Commands of a
/// few hundred bytes reach `max_log_entries` long before it; it matters for
/// large ones (10,000 commands of 1 MiB, one entry threshold's worth, would
/// be 10 GiB).
pub const MAX_LOG_BYTES_DEFAULT: u64 = 512 << 20;

/// Default ticks: 10 ms per tick.
pub const TICK_MS_DEFAULT: u64 = 10;

impl Default for Config {
    fn default() -> Config {
        Config {
            election_ticks_min: 15,
            election_ticks_max: 30,
            heartbeat_ticks: 5,
            pre_vote: true,
            check_quorum: true,
            batch_size: 100,
            batch_bytes_max: 1024 * 1024,
            inflight_messages_max: 256,
            inflight_bytes_max: 16 * 1024 * 1024,
            snapshot_threshold_entries: 1_000,
            max_log_entries: 10_000,
            max_log_bytes: MAX_LOG_BYTES_DEFAULT,
            snapshot_chunk_bytes_max: 256 * 1024,
            snapshot_bytes_max: 1 << 30,
            apply_entries_max: 4_096,
            apply_bytes_max: APPLY_BYTES_MAX_DEFAULT,
            read_pending_max: 65_536,
            lease_drift_ticks: 2,
            election_history_len_max: 100,
            elect_on_leader_down: true,
        }
    }
}

impl Config {
    /// Checks the settings are consistent.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |name, reason| Err(ConfigError::Setting { name, reason });
        if self.heartbeat_ticks == 0 {
            return fail("heartbeat_ticks", "must be positive");
        }
        if self.election_ticks_min <= self.heartbeat_ticks {
            return fail("election_ticks_min", "must exceed heartbeat_ticks");
        }
        if self.election_ticks_max <= self.election_ticks_min {
            return fail("election_ticks_max", "must exceed election_ticks_min");
        }
        if self.lease_drift_ticks >= self.election_ticks_min {
            return fail("lease_drift_ticks", "must be below election_ticks_min");
        }
        let positive = [
            ("batch_size", self.batch_size),
            ("batch_bytes_max", self.batch_bytes_max),
            ("inflight_messages_max", self.inflight_messages_max),
            ("inflight_bytes_max", self.inflight_bytes_max),
            ("snapshot_chunk_bytes_max", self.snapshot_chunk_bytes_max),
            ("apply_entries_max", self.apply_entries_max),
            ("apply_bytes_max", self.apply_bytes_max),
            ("read_pending_max", self.read_pending_max),
            ("election_history_len_max", self.election_history_len_max),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return fail(name, "must be positive");
        }
        if self.snapshot_threshold_entries == 0 || self.max_log_entries <= self.snapshot_threshold_entries {
            return fail("max_log_entries", "must exceed snapshot_threshold_entries, which must be positive");
        }
        if self.max_log_bytes < self.batch_bytes_max as u64 {
            return fail("max_log_bytes", "must be at least batch_bytes_max, the largest command");
        }
        Ok(())
    }
}
