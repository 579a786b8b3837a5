//! The core's view of the log: the snapshot it starts after, the entries
//! since, what is durable, committed and applied, and the configurations
//! the entries carry.

use crate::core::quorum::Membership;
use crate::core::types::{Entry, Index, Payload, SnapshotMeta, Term};
use std::collections::VecDeque;

/// The log held by the core. Indexes satisfy
/// `snapshot.index <= applied <= commit <= last_index()` and
/// `stable_index <= last_index()`.
#[derive(Debug)]
pub struct RaftLog {
    snapshot: SnapshotMeta,
    entries: VecDeque<Entry>,
    /// Highest index known committed.
    pub commit: Index,
    /// Highest index handed to the state machine.
    pub applied: Index,
    /// Entries up to here are durable.
    pub stable_index: Index,
    /// First index not yet handed out in a ready batch.
    pub unstable_from: Index,
    /// Configuration entries after the snapshot, in index order.
    configs: Vec<(Index, Membership)>,
    /// Sum of [`Entry::size_bytes`] over `entries`: added on every push,
    /// subtracted for every entry a truncation or compaction drops, so
    /// reading it is O(1) and keeping it costs O(1) per entry.
    bytes: u64,
}

impl RaftLog {
    /// A log that starts after `snapshot`, holds `entries` (all durable) and
    /// has applied through `applied`.
    pub fn restore(snapshot: SnapshotMeta, entries: Vec<Entry>, commit: Index, applied: Index) -> RaftLog {
        let mut log = RaftLog {
            stable_index: snapshot.index,
            unstable_from: snapshot.index + 1,
            commit: snapshot.index,
            applied: snapshot.index,
            snapshot,
            entries: VecDeque::new(),
            configs: Vec::new(),
            bytes: 0,
        };
        for entry in entries {
            log.push(entry);
        }
        log.stable_index = log.last_index();
        log.unstable_from = log.last_index() + 1;
        log.commit = commit.clamp(log.snapshot.index, log.last_index());
        log.applied = applied.clamp(log.snapshot.index, log.commit);
        log
    }

    fn push(&mut self, entry: Entry) {
        assert_eq!(entry.index, self.last_index() + 1, "log entries must be contiguous");
        assert!(entry.term >= self.last_term(), "terms in a log never decrease");
        if let Payload::Membership(m) = &entry.payload {
            self.configs.push((entry.index, m.clone()));
        }
        self.bytes += entry.size_bytes() as u64;
        self.entries.push_back(entry);
    }

    /// What the snapshot covers.
    pub fn snapshot(&self) -> &SnapshotMeta {
        &self.snapshot
    }

    /// First index held as an entry.
    pub fn first_index(&self) -> Index {
        self.snapshot.index + 1
    }

    /// Last index, counting the snapshot.
    pub fn last_index(&self) -> Index {
        self.snapshot.index + self.entries.len() as u64
    }

    /// Term of the last index.
    pub fn last_term(&self) -> Term {
        self.entries.back().map_or(self.snapshot.term, |e| e.term)
    }

    /// Entries held.
    pub fn len(&self) -> u64 {
        self.entries.len() as u64
    }

    /// Bytes of the entries held (the entries since the snapshot), counted
    /// as [`Entry::size_bytes`]: payload plus a fixed header estimate.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Bytes of the entries held from `index` on (as [`RaftLog::bytes`]
    /// counts them).
    pub fn bytes_from(&self, index: Index) -> u64 {
        let skip = index.saturating_sub(self.first_index());
        let skip = usize::try_from(skip).unwrap_or(usize::MAX);
        self.entries.iter().skip(skip).map(|e| e.size_bytes() as u64).sum()
    }

    /// Whether no entry is held (all compacted or none yet).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The term at `index`, if known (the snapshot's last index included).
    pub fn term(&self, index: Index) -> Option<Term> {
        if index == self.snapshot.index {
            return Some(self.snapshot.term);
        }
        self.entry(index).map(|e| e.term)
    }

    /// The entry at `index`, if held.
    pub fn entry(&self, index: Index) -> Option<&Entry> {
        let offset = index.checked_sub(self.first_index())?;
        self.entries.get(usize::try_from(offset).ok()?)
    }

    /// Entries from `from` on, at most `count` of them and `bytes_max` bytes
    /// (at least one if any).
    pub fn slice(&self, from: Index, count: usize, bytes_max: usize) -> Vec<Entry> {
        let available = (self.last_index() + 1).saturating_sub(from.max(self.first_index()));
        let mut out = Vec::with_capacity(count.min(usize::try_from(available).unwrap_or(usize::MAX)));
        let mut bytes = 0;
        let mut index = from;
        while out.len() < count {
            let Some(entry) = self.entry(index) else { break };
            bytes += entry.size_bytes();
            if !out.is_empty() && bytes > bytes_max {
                break;
            }
            out.push(entry.clone());
            index += 1;
        }
        out
    }

    /// Whether a log ending at (`index`, `term`) is at least as up-to-date
    /// as this one (paper §5.4.1).
    pub fn is_up_to_date(&self, index: Index, term: Term) -> bool {
        term > self.last_term() || (term == self.last_term() && index >= self.last_index())
    }

    /// Appends entries from a leader after `prev_index`, truncating a
    /// conflicting suffix. Entries already present are skipped, so a
    /// duplicated or reordered append never shortens the log. Returns the
    /// index of the last entry of the message.
    pub fn append_from_leader(&mut self, prev_index: Index, entries: Vec<Entry>) -> Index {
        let last_new = prev_index + entries.len() as u64;
        for entry in entries {
            if entry.index <= self.snapshot.index {
                continue;
            }
            match self.term(entry.index) {
                Some(term) if term == entry.term => continue,
                Some(_) => {
                    assert!(entry.index > self.commit, "a committed entry conflicts: log matching broken");
                    self.truncate_from(entry.index);
                    self.push(entry);
                }
                None => self.push(entry),
            }
        }
        last_new
    }

    /// Appends a leader's own new entry.
    pub fn append_own(&mut self, entry: Entry) {
        self.push(entry);
    }

    fn truncate_from(&mut self, index: Index) {
        assert!(index > self.snapshot.index && index > self.commit, "truncating committed entries");
        let keep = (index - self.first_index()) as usize;
        let dropped: u64 = self.entries.range(keep..).map(|e| e.size_bytes() as u64).sum();
        self.bytes -= dropped;
        self.entries.truncate(keep);
        self.configs.retain(|(i, _)| *i < index);
        self.stable_index = self.stable_index.min(index - 1);
        self.unstable_from = self.unstable_from.min(index);
    }

    /// Entries not yet handed out in a ready batch; marks them handed out.
    pub fn take_unstable(&mut self) -> Vec<Entry> {
        let out = self.range(self.unstable_from, self.last_index());
        self.unstable_from = self.last_index() + 1;
        out
    }

    /// Committed entries not yet applied: at most `count`, of at most
    /// `bytes_max` bytes together, but at least one.
    pub fn next_committed(&self, count: usize, bytes_max: usize) -> Vec<Entry> {
        self.committed_after(self.applied, count, bytes_max)
    }

    /// Up to `count` committed entries after `index`, in order, of at most
    /// `bytes_max` bytes ([`Entry::size_bytes`]) together, but at least one.
    pub(crate) fn committed_after(&self, index: Index, count: usize, bytes_max: usize) -> Vec<Entry> {
        let to = self.commit.min(index + count as u64);
        // Clones share their payloads: cutting after the clone costs little.
        let mut entries = self.range(index + 1, to);
        let (mut bytes, mut fitting) = (0, 0);
        for entry in &entries {
            bytes += entry.size_bytes();
            if fitting > 0 && bytes > bytes_max {
                break;
            }
            fitting += 1;
        }
        entries.truncate(fitting);
        entries
    }

    /// Clones of the entries held in `from..=to` (one allocation).
    fn range(&self, from: Index, to: Index) -> Vec<Entry> {
        let first = from.max(self.first_index());
        let last = to.min(self.last_index());
        if first > last {
            return Vec::new();
        }
        let start = (first - self.first_index()) as usize;
        let end = (last - self.first_index()) as usize;
        self.entries.range(start..=end).cloned().collect()
    }

    /// The latest configuration in the log (possibly uncommitted).
    pub fn membership(&self) -> &Membership {
        self.configs.last().map_or(&self.snapshot.membership, |(_, m)| m)
    }

    /// Index of the latest configuration entry (the snapshot's index if none).
    pub fn membership_index(&self) -> Index {
        self.configs.last().map_or(self.snapshot.index, |(i, _)| *i)
    }

    /// The configuration in force at `index`.
    pub fn membership_at(&self, index: Index) -> &Membership {
        self.configs.iter().rev().find(|(i, _)| *i <= index).map_or(&self.snapshot.membership, |(_, m)| m)
    }

    /// Replaces everything through `meta.index` with a snapshot. Entries after
    /// it are kept only if the log agrees with the snapshot at its index
    /// (paper §7).
    pub fn install_snapshot(&mut self, meta: SnapshotMeta) {
        let keep_suffix = self.term(meta.index) == Some(meta.term);
        if keep_suffix {
            self.compact_through(meta.clone());
        } else {
            self.entries.clear();
            self.configs.clear();
            self.bytes = 0;
            self.snapshot = meta;
            self.stable_index = self.snapshot.index;
            self.unstable_from = self.snapshot.index + 1;
        }
        self.commit = self.commit.max(self.snapshot.index);
        self.applied = self.applied.max(self.snapshot.index);
    }

    /// Drops entries through `meta.index`, which must be applied (a local
    /// snapshot) or installed.
    ///
    /// Returns the entries removed, for the caller to free where it likes:
    /// after a snapshot of a large log they are many, and freeing them one
    /// by one took tens of milliseconds.
    pub fn compact_through(&mut self, meta: SnapshotMeta) -> VecDeque<Entry> {
        assert!(meta.index >= self.snapshot.index && meta.index <= self.last_index());
        assert_eq!(self.term(meta.index), Some(meta.term), "snapshot term mismatch");
        let drop = (meta.index - self.snapshot.index) as usize;
        let kept = self.entries.split_off(drop);
        let removed = std::mem::replace(&mut self.entries, kept);
        let dropped: u64 = removed.iter().map(|e| e.size_bytes() as u64).sum();
        self.bytes -= dropped;
        self.configs.retain(|(i, _)| *i > meta.index);
        self.snapshot = meta;
        self.stable_index = self.stable_index.max(self.snapshot.index);
        self.unstable_from = self.unstable_from.max(self.snapshot.index + 1);
        removed
    }
}
