//! Durable state of a Raft node: the log ([`LogStore`]) and the term, vote
//! and snapshot ([`StateStore`]). A driver writes each [`crate::core::Ready`]
//! batch with one [`LogStore::write`] — one durable transaction (group
//! commit) — and recovers with [`Storage::recover`].
//!
//! Implementations: [`memory`] (tests, simulation), [`redb`] (durable, one
//! file) and [`wal`] (durable, a segmented write-ahead log: one `fdatasync`
//! per batch).
//! [`conformance`] is the test suite every implementation must pass.

pub mod conformance;
pub mod memory;
pub mod redb;
pub mod wal;

use crate::core::types::{Entry, HardState, Index, Snapshot, SnapshotMeta};
use crate::core::Recovered;
use std::path::PathBuf;
use thiserror::Error;

/// What one ready batch asks to make durable, in this order and atomically:
/// the snapshot replaces the log through its index; the log is cut at
/// `entries[0].index` and the entries written; the hard state replaced.
#[derive(Clone, Copy, Debug, Default)]
pub struct WriteBatch<'a> {
    /// A snapshot received from the leader.
    pub snapshot: Option<&'a Snapshot>,
    /// Entries to write after cutting the log at the first one's index.
    pub entries: &'a [Entry],
    /// The new term, vote and commit.
    pub hard_state: Option<HardState>,
}

/// A storage failure. Corruption is reported, never served.
#[derive(Debug, Error)]
pub enum StorageError {
    /// The engine failed (IO, lock held by another process, ...).
    #[error("storage engine: {0}")]
    Engine(String),
    /// The stored data is damaged or inconsistent.
    #[error("storage corrupted: {0}")]
    Corrupted(String),
    /// An entry asked for is not stored (compacted or beyond the end).
    #[error("entry {0} is not stored")]
    Unavailable(Index),
}

/// The replicated log.
pub trait LogStore {
    /// Makes one batch durable in one transaction (see [`WriteBatch`]).
    fn write(&mut self, batch: WriteBatch<'_>) -> Result<(), StorageError>;
    /// Entries `from..=to`.
    fn entries(&self, from: Index, to: Index) -> Result<Vec<Entry>, StorageError>;
    /// The last index stored (the snapshot's if no entries).
    fn last_index(&self) -> Result<Index, StorageError>;

    /// Whether writes block on IO, so that a driver must run them off its
    /// event loop. Stores that only touch memory return `false`.
    fn writes_block(&self) -> bool {
        true
    }
}

/// Term, vote, commit and the latest snapshot.
pub trait StateStore {
    /// The hard state (default if never written).
    fn hard_state(&self) -> Result<HardState, StorageError>;
    /// The latest snapshot (default — index 0 — if none).
    fn snapshot(&self) -> Result<Snapshot, StorageError>;
    /// Stores a snapshot the state machine took and drops the entries it
    /// covers, in one transaction.
    fn save_snapshot(&mut self, snapshot: &Snapshot) -> Result<(), StorageError>;

    /// For a store whose [`StateStore::save_snapshot`] spends most of its
    /// time writing the snapshot's data: a job that writes it without the
    /// store, so that a driver can run it beside the log's writes and then
    /// record it with [`StateStore::save_staged_snapshot`]. `None` (the
    /// default): the driver calls `save_snapshot`.
    fn snapshot_stager(&self) -> Option<SnapshotStager> {
        None
    }

    /// Records a snapshot written by this store's [`SnapshotStager`] and
    /// drops the entries it covers, as [`StateStore::save_snapshot`] does. A
    /// snapshot no newer than the store's is discarded.
    fn save_staged_snapshot(&mut self, staged: StagedSnapshot) -> Result<(), StorageError> {
        Err(StorageError::Engine(format!(
            "a snapshot staged at {} for a store that stages none",
            staged.path.display()
        )))
    }
}

/// Writes a snapshot's data where its store will find it, without borrowing
/// the store (see [`StateStore::snapshot_stager`]). Until it is recorded,
/// the store ignores what the job wrote, and a crash loses it.
pub type SnapshotStager = Box<dyn FnOnce(&Snapshot) -> Result<StagedSnapshot, StorageError> + Send>;

/// A snapshot written by a [`SnapshotStager`], not yet part of its store.
#[derive(Debug)]
pub struct StagedSnapshot {
    /// The snapshot's index, term and membership.
    pub meta: SnapshotMeta,
    /// The file the stager wrote, synced.
    pub path: PathBuf,
}

/// A complete store.
pub trait Storage: LogStore + StateStore + Send + Unpin + 'static {
    /// Everything the core needs to restart, checked for consistency.
    fn recover(&self) -> Result<Recovered, StorageError> {
        let hard_state = self.hard_state()?;
        let snapshot = self.snapshot()?;
        let last = self.last_index()?;
        let entries = self.entries(snapshot.meta.index + 1, last)?;
        check_recovered(&snapshot, &entries, &hard_state)?;
        let applied = snapshot.meta.index;
        Ok(Recovered { hard_state, snapshot, entries, applied })
    }
}

impl<T: LogStore + StateStore + Send + Unpin + 'static> Storage for T {}

/// Structural checks on what was read back: contiguous indexes after the
/// snapshot, terms that never decrease, a commit index inside the log.
fn check_recovered(
    snapshot: &Snapshot,
    entries: &[Entry],
    hard_state: &HardState,
) -> Result<(), StorageError> {
    let mut expected = snapshot.meta.index + 1;
    let mut term = snapshot.meta.term;
    for entry in entries {
        if entry.index != expected {
            return Err(StorageError::Corrupted(format!(
                "entry {} found where {expected} belongs",
                entry.index
            )));
        }
        if entry.term < term {
            return Err(StorageError::Corrupted(format!("term goes back at index {}", entry.index)));
        }
        expected += 1;
        term = entry.term;
    }
    if hard_state.commit > expected - 1 {
        return Err(StorageError::Corrupted(format!(
            "commit index {} beyond the last entry {}",
            hard_state.commit,
            expected - 1
        )));
    }
    if hard_state.term < term {
        return Err(StorageError::Corrupted(format!(
            "stored term {} below a log term {term}",
            hard_state.term
        )));
    }
    Ok(())
}
