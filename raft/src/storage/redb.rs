//! The durable store on redb: one file, one fsync'd write transaction per
//! batch (group commit). Entries are keyed by index; each value is the
//! bincode encoding of the entry. Opening verifies redb's page checksums
//! and the log's structure, so a damaged file is refused at start.

use crate::core::types::{Entry, HardState, Index, Snapshot};
use crate::storage::{LogStore, StateStore, StorageError, WriteBatch};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::path::Path;

const ENTRIES: TableDefinition<u64, &[u8]> = TableDefinition::new("entries");
const STATE: TableDefinition<&str, &[u8]> = TableDefinition::new("state");
const HARD_STATE_KEY: &str = "hard_state";
const SNAPSHOT_KEY: &str = "snapshot";

/// A store in one redb file.
pub struct RedbStore {
    db: Database,
    /// Cached: first and last index stored, and the snapshot's index.
    snapshot_index: Index,
    last_index: Index,
}

fn engine(e: impl std::fmt::Display) -> StorageError {
    let text = e.to_string();
    if text.to_lowercase().contains("corrupt") {
        StorageError::Corrupted(text)
    } else {
        StorageError::Engine(text)
    }
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StorageError> {
    bincode::serde::encode_to_vec(value, bincode::config::standard()).map_err(engine)
}

fn decode<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, StorageError> {
    let (value, read) = bincode::serde::decode_from_slice(bytes, bincode::config::standard())
        .map_err(|e| StorageError::Corrupted(format!("{what}: {e}")))?;
    if read != bytes.len() {
        return Err(StorageError::Corrupted(format!("{what}: {} trailing bytes", bytes.len() - read)));
    }
    Ok(value)
}

impl RedbStore {
    /// Opens (or creates) the store at `path`, checking redb's checksums and
    /// the log's structure. A damaged or truncated file is an error.
    pub fn open(path: impl AsRef<Path>) -> Result<RedbStore, StorageError> {
        let db = Database::builder().set_check_integrity_on_open(true).create(path).map_err(engine)?;
        let write = db.begin_write().map_err(engine)?;
        write.open_table(ENTRIES).map_err(engine)?;
        write.open_table(STATE).map_err(engine)?;
        write.commit().map_err(engine)?;
        let mut store = RedbStore { db, snapshot_index: 0, last_index: 0 };
        let snapshot = store.snapshot()?;
        store.snapshot_index = snapshot.meta.index;
        let read = store.db.begin_read().map_err(engine)?;
        let table = read.open_table(ENTRIES).map_err(engine)?;
        let last = table.last().map_err(engine)?.map(|(k, _)| k.value());
        let first = table.first().map_err(engine)?.map(|(k, _)| k.value());
        drop(table);
        store.last_index = last.unwrap_or(snapshot.meta.index).max(snapshot.meta.index);
        if let Some(first) = first {
            if first <= snapshot.meta.index {
                return Err(StorageError::Corrupted(format!(
                    "entry {first} is covered by the snapshot at {}",
                    snapshot.meta.index
                )));
            }
        }
        // Decode and check everything once: refuse now rather than serve garbage later.
        crate::storage::Storage::recover(&store)?;
        Ok(store)
    }

    fn read_state<T: DeserializeOwned + Default>(&self, key: &str) -> Result<T, StorageError> {
        let read = self.db.begin_read().map_err(engine)?;
        let table = read.open_table(STATE).map_err(engine)?;
        match table.get(key).map_err(engine)? {
            Some(bytes) => decode(bytes.value(), key),
            None => Ok(T::default()),
        }
    }
}

impl LogStore for RedbStore {
    fn write(&mut self, batch: WriteBatch<'_>) -> Result<(), StorageError> {
        if let Some(first) = batch.entries.first() {
            let snapshot_index = batch.snapshot.map_or(self.snapshot_index, |s| s.meta.index);
            let last =
                if batch.snapshot.is_some() { snapshot_index.max(self.last_index) } else { self.last_index };
            if first.index <= snapshot_index || first.index > last + 1 {
                return Err(StorageError::Unavailable(first.index));
            }
        }
        let write = self.db.begin_write().map_err(engine)?;
        let (mut snapshot_index, mut last_index) = (self.snapshot_index, self.last_index);
        {
            let mut entries = write.open_table(ENTRIES).map_err(engine)?;
            let mut state = write.open_table(STATE).map_err(engine)?;
            if let Some(snapshot) = batch.snapshot {
                let index = snapshot.meta.index;
                let keep = match entries.get(index).map_err(engine)? {
                    Some(bytes) => decode::<Entry>(bytes.value(), "entry")?.term == snapshot.meta.term,
                    None => false,
                };
                if keep {
                    entries.retain_in(..=index, |_, _| false).map_err(engine)?;
                } else {
                    entries.retain(|_, _| false).map_err(engine)?;
                    last_index = index;
                }
                state.insert(SNAPSHOT_KEY, encode(snapshot)?.as_slice()).map_err(engine)?;
                snapshot_index = index;
                last_index = last_index.max(index);
            }
            if let Some(first) = batch.entries.first() {
                entries.retain_in(first.index.., |_, _| false).map_err(engine)?;
                for entry in batch.entries {
                    entries.insert(entry.index, encode(entry)?.as_slice()).map_err(engine)?;
                }
                last_index = batch.entries.last().map_or(last_index, |e| e.index);
            }
            if let Some(hard_state) = batch.hard_state {
                state.insert(HARD_STATE_KEY, encode(&hard_state)?.as_slice()).map_err(engine)?;
            }
        }
        write.commit().map_err(engine)?;
        self.snapshot_index = snapshot_index;
        self.last_index = last_index;
        Ok(())
    }

    fn entries(&self, from: Index, to: Index) -> Result<Vec<Entry>, StorageError> {
        if from > to {
            return Ok(Vec::new());
        }
        if from <= self.snapshot_index {
            return Err(StorageError::Unavailable(from));
        }
        if to > self.last_index {
            return Err(StorageError::Unavailable(to));
        }
        let read = self.db.begin_read().map_err(engine)?;
        let table = read.open_table(ENTRIES).map_err(engine)?;
        let mut out = Vec::with_capacity((to - from + 1) as usize);
        for item in table.range(from..=to).map_err(engine)? {
            let (key, value) = item.map_err(engine)?;
            let entry: Entry = decode(value.value(), "entry")?;
            if entry.index != key.value() {
                return Err(StorageError::Corrupted(format!(
                    "entry {} stored under key {}",
                    entry.index,
                    key.value()
                )));
            }
            out.push(entry);
        }
        if out.len() as u64 != to - from + 1 {
            return Err(StorageError::Corrupted(format!("entries {from}..={to} have gaps")));
        }
        Ok(out)
    }

    fn last_index(&self) -> Result<Index, StorageError> {
        Ok(self.last_index)
    }
}

impl StateStore for RedbStore {
    fn hard_state(&self) -> Result<HardState, StorageError> {
        self.read_state(HARD_STATE_KEY)
    }

    fn snapshot(&self) -> Result<Snapshot, StorageError> {
        self.read_state(SNAPSHOT_KEY)
    }

    fn save_snapshot(&mut self, snapshot: &Snapshot) -> Result<(), StorageError> {
        let index = snapshot.meta.index;
        if index <= self.snapshot_index {
            return Ok(());
        }
        let write = self.db.begin_write().map_err(engine)?;
        {
            let mut entries = write.open_table(ENTRIES).map_err(engine)?;
            entries.retain_in(..=index, |_, _| false).map_err(engine)?;
            let mut state = write.open_table(STATE).map_err(engine)?;
            state.insert(SNAPSHOT_KEY, encode(snapshot)?.as_slice()).map_err(engine)?;
        }
        write.commit().map_err(engine)?;
        self.snapshot_index = index;
        self.last_index = self.last_index.max(index);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::conformance::{self, entries};
    use crate::storage::Storage;

    #[test]
    fn redb_store_passes_the_conformance_suite() {
        let dir = tempfile::tempdir().unwrap();
        let mut n = 0;
        conformance::run_all(&mut || {
            n += 1;
            RedbStore::open(dir.path().join(format!("{n}.redb"))).unwrap()
        });
    }

    #[test]
    fn everything_written_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.redb");
        let hard_state = HardState { term: 3, vote: Some(concord_transport::NodeId(2)), commit: 40 };
        {
            let mut store = RedbStore::open(&path).unwrap();
            for batch in 0..10 {
                let written = entries(batch * 10 + 1, batch * 10 + 10, 3);
                store
                    .write(WriteBatch { entries: &written, hard_state: Some(hard_state), snapshot: None })
                    .unwrap();
            }
            store.save_snapshot(&conformance::snapshot(20, 3)).unwrap();
        }
        let store = RedbStore::open(&path).unwrap();
        let recovered = store.recover().unwrap();
        assert_eq!(recovered.hard_state, hard_state);
        assert_eq!(recovered.snapshot.meta.index, 20);
        assert_eq!(recovered.entries, entries(21, 100, 3));
    }

    fn damaged(edit: impl FnOnce(&mut Vec<u8>)) -> StorageError {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.redb");
        {
            let mut store = RedbStore::open(&path).unwrap();
            let written = entries(1, 200, 1);
            store.write(WriteBatch { entries: &written, ..WriteBatch::default() }).unwrap();
        }
        let mut bytes = std::fs::read(&path).unwrap();
        edit(&mut bytes);
        std::fs::write(&path, &bytes).unwrap();
        match RedbStore::open(&path) {
            Ok(store) => panic!("a damaged file opened: last index {:?}", store.last_index()),
            Err(e) => e,
        }
    }

    #[test]
    fn a_corrupted_file_is_refused_at_open() {
        let error = damaged(|bytes| {
            let middle = bytes.len() / 2;
            for b in &mut bytes[middle..middle + 64] {
                *b ^= 0xff;
            }
        });
        assert!(matches!(error, StorageError::Corrupted(_)), "{error}");
    }

    #[test]
    fn a_truncated_file_is_refused_at_open() {
        let error = damaged(|bytes| bytes.truncate(bytes.len() / 3));
        assert!(matches!(error, StorageError::Corrupted(_)), "{error}");
    }
}
