//! Snapshots: compaction after the state machine took one, and chunked
//! transfer to followers that need entries the log no longer holds.

use crate::core::message::Body;
use crate::core::replication::ProgressState;
use crate::core::types::{Entry, Index, Snapshot, SnapshotMeta};
use crate::core::{Raft, Role};
use bytes::Bytes;
use concord_transport::NodeId;
use std::collections::VecDeque;

/// Before the next snapshot is due, the log since the last one must hold
/// at least this percent of the last snapshot's bytes ([`RaftLog::bytes`]
/// against the snapshot's data). Every snapshot rewrites the whole state
/// machine, so a fixed entry count makes a large state cost far more to
/// snapshot than its log cost to write (a 19 MB state every 1,000 puts of
/// ~300 bytes: ~60x). At 100 % the bytes written by snapshots are at most
/// about the bytes written to the log (one more log's worth of writes, not a
/// multiple that grows with the state), and the log kept in memory and
/// replayed at restart stays about the size of the state it rebuilds.
/// CockroachDB truncates its Raft log by the same measure (once the log
/// outgrows the range). A state small next to its log snapshots at
/// `snapshot_threshold_entries`, as before.
///
/// [`RaftLog::bytes`]: crate::core::log::RaftLog::bytes
pub const SNAPSHOT_LOG_BYTES_PERCENT: u64 = 100;

/// The last `max_log_entries / SNAPSHOT_LOG_FULL_MARGIN_DIVISOR` entries
/// (rounded up) before the log is full are a margin: once the log holds
/// more than `max_log_entries` minus the margin, a snapshot is due whatever
/// the byte rule says (once `snapshot_threshold_entries` were applied), so
/// that proposals, refused when the log is full, are not refused because a
/// large state deferred its snapshot. The margin is room for the proposals
/// accepted while the snapshot is built (the log is compacted as soon as it
/// is built, before it is saved): a tenth of 100,000 entries is half a
/// second at 20,000 puts/s.
pub const SNAPSHOT_LOG_FULL_MARGIN_DIVISOR: u64 = 10;

/// Once the log's bytes are within the margin of `max_log_bytes` (a tenth
/// of it, [`SNAPSHOT_LOG_FULL_MARGIN_DIVISOR`]), a snapshot is due before
/// `snapshot_threshold_entries` if need be, but only once this percent of
/// the entries held are applied: so that each snapshot frees a good part of
/// the log, and a log filled with entries that cannot commit yet (a quorum
/// lost) does not ask for a snapshot at every entry applied.
pub const SNAPSHOT_LOG_FULL_APPLIED_PERCENT: u64 = 50;

impl Raft {
    /// Whether the driver should take a snapshot now: at least
    /// `snapshot_threshold_entries` entries were applied since the last one,
    /// and either the log since it holds [`SNAPSHOT_LOG_BYTES_PERCENT`] of
    /// its size or the log is within [`SNAPSHOT_LOG_FULL_MARGIN_DIVISOR`]'s
    /// margin of `max_log_entries`. Or else the log's bytes are within that
    /// margin of `max_log_bytes` and [`SNAPSHOT_LOG_FULL_APPLIED_PERCENT`]
    /// of its entries are applied, however few they are. O(1): the log
    /// keeps its byte count.
    pub fn snapshot_due(&self) -> bool {
        self.snapshot_due_at(self.log.applied)
    }

    /// Whether a snapshot will be due once the log is applied through
    /// `applied` (at least the applied index, at most the commit index), the
    /// log otherwise as it is: [`Raft::snapshot_due`] ahead of the apply.
    pub(crate) fn snapshot_due_at(&self, applied: Index) -> bool {
        let applied_since = applied.saturating_sub(self.log.snapshot().index);
        let bytes_margin = self.config.max_log_bytes.div_ceil(SNAPSHOT_LOG_FULL_MARGIN_DIVISOR);
        if self.log.bytes().saturating_add(bytes_margin) >= self.config.max_log_bytes
            && applied_since > 0
            && u128::from(applied_since) * 100
                >= u128::from(self.log.len()) * u128::from(SNAPSHOT_LOG_FULL_APPLIED_PERCENT)
        {
            return true;
        }
        if applied_since < self.config.snapshot_threshold_entries {
            return false;
        }
        let snapshot_bytes = self.snapshot.data.len() as u128;
        let log_bytes = u128::from(self.log.bytes());
        let margin = self.config.max_log_entries.div_ceil(SNAPSHOT_LOG_FULL_MARGIN_DIVISOR);
        log_bytes * 100 >= snapshot_bytes * u128::from(SNAPSHOT_LOG_BYTES_PERCENT)
            || self.log.len().saturating_add(margin) >= self.config.max_log_entries
    }

    /// The driver took a snapshot of the state machine at `index`, which it
    /// has applied: compact the log through it. Returns the snapshot with its
    /// metadata, for the driver to make durable and then compact its store
    /// (a crash in between leaves the old snapshot and the full log: safe).
    pub fn snapshot_taken(&mut self, index: Index, data: Bytes) -> Snapshot {
        assert!(index <= self.log.applied, "a snapshot covers applied entries only");
        if index <= self.log.snapshot().index {
            return self.snapshot.clone();
        }
        let term = self.log.term(index).expect("an applied index is in the log");
        let meta = SnapshotMeta { index, term, membership: self.log.membership_at(index).clone() };
        self.compacted = self.log.compact_through(meta.clone());
        self.replace_snapshot(Snapshot { meta, data });
        self.snapshot.clone()
    }

    /// Makes `snapshot` the current one, keeping the data it replaces for
    /// [`Raft::take_replaced_snapshot`].
    fn replace_snapshot(&mut self, snapshot: Snapshot) {
        let replaced = std::mem::replace(&mut self.snapshot, snapshot);
        self.replaced_snapshot = Some(replaced.data);
    }

    /// Takes the data of the snapshot the last local or received one
    /// replaced, so that the driver frees it off its event loop: the core
    /// often holds its last reference, and freeing a state of 0.5-1 GB held
    /// the loop 100-450 ms. Left untaken, it is freed at the next snapshot.
    pub fn take_replaced_snapshot(&mut self) -> Option<Bytes> {
        self.replaced_snapshot.take()
    }

    /// Takes the entries the last [`Raft::snapshot_taken`] removed from the
    /// log, so that the driver frees them off its event loop (a snapshot
    /// after 100,000 entries removes that many, and freeing them took tens
    /// of milliseconds). Left untaken, they are freed at the next snapshot.
    pub fn take_compacted(&mut self) -> VecDeque<Entry> {
        std::mem::take(&mut self.compacted)
    }

    /// Sends the next chunk of the current snapshot to `id`.
    pub(crate) fn send_snapshot_chunk(&mut self, id: NodeId) -> bool {
        let meta = self.snapshot.meta.clone();
        let total = self.snapshot.data.len() as u64;
        let Some(p) = self.progress.get_mut(&id) else { return false };
        let offset = match p.state {
            ProgressState::Snapshot { index, offset } if index == meta.index => offset,
            _ => {
                p.become_probe();
                0
            }
        };
        p.state = ProgressState::Snapshot { index: meta.index, offset };
        p.paused = true;
        let start = offset.min(total) as usize;
        let end = (start + self.config.snapshot_chunk_bytes_max).min(total as usize);
        let chunk = self.snapshot.data.slice(start..end);
        self.send(id, Body::Snapshot { meta, offset, total_bytes: total, chunk });
        true
    }

    pub(crate) fn handle_snapshot_chunk(
        &mut self,
        from: NodeId,
        meta: SnapshotMeta,
        offset: u64,
        total_bytes: u64,
        chunk: Bytes,
    ) {
        let index = meta.index;
        let reply = |raft: &mut Raft, next_offset: u64, done: bool| {
            raft.send(from, Body::SnapshotResponse { index, next_offset, done });
        };
        if index <= self.log.commit {
            // Our log already holds everything it covers.
            return reply(self, total_bytes, true);
        }
        if total_bytes > self.config.snapshot_bytes_max {
            tracing::warn!(total_bytes, max = self.config.snapshot_bytes_max, "snapshot refused: too large");
            return;
        }
        let same = self.incoming_snapshot.as_ref().is_some_and(|(m, _)| *m == meta);
        if !same {
            if offset != 0 {
                return reply(self, 0, false);
            }
            self.incoming_snapshot = Some((meta.clone(), Vec::new()));
        }
        let (_, buffer) = self.incoming_snapshot.as_mut().expect("set above");
        if offset != buffer.len() as u64 {
            let expected = buffer.len() as u64;
            return reply(self, expected, false);
        }
        buffer.extend_from_slice(&chunk);
        let received = buffer.len() as u64;
        if received > total_bytes {
            self.incoming_snapshot = None;
            return reply(self, 0, false);
        }
        if received < total_bytes {
            return reply(self, received, false);
        }
        let (meta, data) = self.incoming_snapshot.take().expect("set above");
        self.log.install_snapshot(meta.clone());
        self.replace_snapshot(Snapshot { meta, data: Bytes::from(data) });
        self.snapshot_to_install = Some(self.snapshot.clone());
        reply(self, total_bytes, true);
    }

    pub(crate) fn handle_snapshot_response(
        &mut self,
        from: NodeId,
        index: Index,
        next_offset: u64,
        done: bool,
    ) {
        if self.role != Role::Leader {
            return;
        }
        // Only the snapshot this leader holds can have been installed from it.
        let known = index == self.snapshot.meta.index || index <= self.log.commit;
        let Some(p) = self.progress.get_mut(&from) else { return };
        p.recent_active = true;
        if done && known {
            p.match_index = p.match_index.max(index);
            p.next_index = p.match_index + 1;
            if matches!(p.state, ProgressState::Snapshot { .. }) {
                p.state = ProgressState::Probe;
                p.paused = false;
            }
            self.maybe_commit();
            return;
        }
        if done {
            return;
        }
        if let ProgressState::Snapshot { index: sending, .. } = p.state {
            if sending == index {
                p.state = ProgressState::Snapshot { index, offset: next_offset };
                p.paused = false;
            }
        }
    }
}
