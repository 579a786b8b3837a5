//! The in-memory store: for tests and the simulation. "Durable" means it
//! survives the core, not the process.

use crate::core::types::{Entry, HardState, Index, Snapshot};
use crate::storage::{LogStore, StateStore, StorageError, WriteBatch};
use std::collections::VecDeque;

/// A store kept in memory.
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    hard_state: HardState,
    snapshot: Snapshot,
    entries: VecDeque<Entry>,
}

impl MemoryStore {
    /// An empty store whose initial snapshot (index 0) carries `snapshot`'s
    /// configuration: how a new group is bootstrapped.
    pub fn new(snapshot: Snapshot) -> MemoryStore {
        MemoryStore { snapshot, ..MemoryStore::default() }
    }

    fn first_index(&self) -> Index {
        self.snapshot.meta.index + 1
    }

    fn cut_from(&mut self, index: Index) {
        let keep = index.saturating_sub(self.first_index());
        self.entries.truncate(usize::try_from(keep).unwrap_or(usize::MAX));
    }

    fn drop_through(&mut self, index: Index) {
        let drop = index.saturating_sub(self.snapshot.meta.index).min(self.entries.len() as u64);
        self.entries.drain(..drop as usize);
    }
}

impl LogStore for MemoryStore {
    fn write(&mut self, batch: WriteBatch<'_>) -> Result<(), StorageError> {
        if let Some(snapshot) = batch.snapshot {
            let keep =
                self.entries.iter().any(|e| e.index == snapshot.meta.index && e.term == snapshot.meta.term);
            if keep {
                self.drop_through(snapshot.meta.index);
            } else {
                self.entries.clear();
            }
            self.snapshot = snapshot.clone();
        }
        if let Some(first) = batch.entries.first() {
            if first.index < self.first_index()
                || first.index > self.first_index() + self.entries.len() as u64
            {
                return Err(StorageError::Unavailable(first.index));
            }
            self.cut_from(first.index);
            self.entries.extend(batch.entries.iter().cloned());
        }
        if let Some(hard_state) = batch.hard_state {
            self.hard_state = hard_state;
        }
        Ok(())
    }

    fn entries(&self, from: Index, to: Index) -> Result<Vec<Entry>, StorageError> {
        if from > to {
            return Ok(Vec::new());
        }
        if from < self.first_index() {
            return Err(StorageError::Unavailable(from));
        }
        let last = self.snapshot.meta.index + self.entries.len() as u64;
        if to > last {
            return Err(StorageError::Unavailable(to));
        }
        let start = (from - self.first_index()) as usize;
        Ok(self.entries.range(start..=start + (to - from) as usize).cloned().collect())
    }

    fn last_index(&self) -> Result<Index, StorageError> {
        Ok(self.snapshot.meta.index + self.entries.len() as u64)
    }

    fn writes_block(&self) -> bool {
        false
    }
}

impl StateStore for MemoryStore {
    fn hard_state(&self) -> Result<HardState, StorageError> {
        Ok(self.hard_state)
    }

    fn snapshot(&self) -> Result<Snapshot, StorageError> {
        Ok(self.snapshot.clone())
    }

    fn save_snapshot(&mut self, snapshot: &Snapshot) -> Result<(), StorageError> {
        if snapshot.meta.index <= self.snapshot.meta.index {
            return Ok(());
        }
        self.drop_through(snapshot.meta.index);
        self.snapshot = snapshot.clone();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::conformance;

    #[test]
    fn memory_store_passes_the_conformance_suite() {
        conformance::run_all(&mut || MemoryStore::default());
    }
}
