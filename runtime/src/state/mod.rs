//! The replicated state machines of a Concord node: a key-value store and the
//! task queue of the reference scenario. Both are pure: commands come from the
//! Raft log in order, each applied exactly once per log index, and the state
//! can be snapshotted, restored and digested for consistency checks.
//!
//! Their collections are persistent (`imbl`): cloning a [`GroupState`] is
//! O(1), so a Raft snapshot captures it on the actor's event loop and
//! serializes it on the blocking pool (`ConcordMachine::snapshot_job`).

pub mod kv;
pub mod tasks;

use serde::{Deserialize, Serialize};
use std::hash::{Hash, Hasher};

/// FNV-1a, 64 bits: the digest's hash, fixed so that every replica and
/// every build of Concord computes the same digest.
#[derive(Clone, Copy, Debug)]
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0 ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

/// The hash of one item of a keyed collection. A collection's digest is the
/// wrapping sum of its items' hashes: order-independent, and kept up to date
/// in O(1) per change by subtracting the old item and adding the new one.
pub fn item_hash<K: Hash + ?Sized, V: Hash>(key: &K, value: &V) -> u64 {
    let mut hasher = Fnv::default();
    key.hash(&mut hasher);
    value.hash(&mut hasher);
    hasher.finish()
}

/// A command carried by one Raft log entry of a Concord group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// A key-value command.
    Kv(kv::KvCommand),
    /// A task-queue command.
    Task(tasks::TaskCommand),
}

impl Command {
    /// Whether applying it a second time changes nothing, so that a retry
    /// whose first attempt's outcome is unknown is safe without a client
    /// tag: a task submission (a second one of the same id is a no-op). Not
    /// a put: applied again after another client's put, it would undo that
    /// one.
    pub fn is_idempotent(&self) -> bool {
        matches!(self, Command::Task(tasks::TaskCommand::Submit { .. }))
    }
}

/// What applying a [`Command`] produced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]

pub enum Response {
    /// Answer of a key-value command.
    Kv(kv::KvResponse),
    /// Answer of a task-queue command.
    Task(tasks::TaskResponse),
}

/// The state of one group: the KV store and the task queue.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupState {
    /// The key-value store.
    pub kv: kv::KvStore,
    /// The task queue.
    pub tasks: tasks::TaskQueue,
    /// The last log index applied; commands at or below it are refused.
    pub applied_index: u64,
}

/// Errors restoring a snapshot.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The snapshot bytes do not decode.
    #[error("corrupt state snapshot: {0}")]
    CorruptSnapshot(String),
}

impl GroupState {
    /// Applies the command of log entry `index`. Indexes must increase:
    /// re-applying an index is a bug in the caller and panics.
    pub fn apply(&mut self, index: u64, command: &Command) -> Response {
        assert!(
            index > self.applied_index,
            "entry {index} applied twice (applied through {})",
            self.applied_index
        );
        self.applied_index = index;
        match command {
            Command::Kv(command) => Response::Kv(self.kv.apply(index, command)),
            Command::Task(command) => Response::Task(self.tasks.apply(command)),
        }
    }

    /// The whole state as bytes, for a Raft snapshot (bincode: compact and
    /// fast to write, since a snapshot is taken every few thousand entries).
    pub fn snapshot(&self) -> Vec<u8> {
        // Maps, strings and integers: encoding cannot fail.
        bincode::serde::encode_to_vec(self, bincode::config::standard()).unwrap_or_default()
    }

    /// Restores a state from [`GroupState::snapshot`] bytes; trailing bytes
    /// are refused as corruption.
    pub fn restore(bytes: &[u8]) -> Result<GroupState, StateError> {
        let (mut state, read): (GroupState, usize) =
            bincode::serde::decode_from_slice(bytes, bincode::config::standard())
                .map_err(|e| StateError::CorruptSnapshot(e.to_string()))?;
        if read != bytes.len() {
            return Err(StateError::CorruptSnapshot(format!("{} trailing bytes", bytes.len() - read)));
        }
        state.kv.rehash();
        state.tasks.rehash();
        Ok(state)
    }

    /// A digest of the state, equal on replicas that applied the same
    /// entries: the KV store's and the task queue's item-hash sums (kept up
    /// to date on every change, so this is O(1)) with the queue's counters
    /// and the applied index.
    pub fn digest(&self) -> u64 {
        let mut hasher = Fnv::default();
        (self.kv.digest(), self.tasks.digest(), self.applied_index).hash(&mut hasher);
        hasher.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_restores_an_equal_state_with_an_equal_digest() {
        let mut state = GroupState::default();
        state.apply(1, &Command::Kv(kv::KvCommand::Put { key: "a".into(), value: "1".into() }));
        state.apply(
            2,
            &Command::Task(tasks::TaskCommand::Submit { task_id: "t1".into(), payload: "p".into() }),
        );
        let restored = GroupState::restore(&state.snapshot()).unwrap();
        assert_eq!(restored, state);
        assert_eq!(restored.digest(), state.digest());
        let mut other = restored.clone();
        other.apply(3, &Command::Kv(kv::KvCommand::Delete { key: "a".into() }));
        assert_ne!(other.digest(), state.digest());
    }

    /// The digest kept up to date change by change equals the one
    /// recomputed from scratch after a restore, over a seeded mix of every
    /// command (puts, overwrites, deletes, swaps, submits, claims, expiries,
    /// completions, duplicates).
    #[test]
    fn the_incremental_digest_equals_a_full_recomputation() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut state = GroupState::default();
        let mut digests = std::collections::HashSet::new();
        for index in 1..=3_000u64 {
            let key = format!("k{}", rng.random_range(0..50));
            let task_id = format!("t{}", rng.random_range(0..40));
            let command = match rng.random_range(0..7) {
                0 => Command::Kv(kv::KvCommand::Put { key, value: format!("v{index}") }),
                1 => Command::Kv(kv::KvCommand::Delete { key }),
                2 => Command::Kv(kv::KvCommand::CompareAndSwap {
                    key,
                    expected: rng.random_bool(0.5).then(|| format!("v{}", index - 1)),
                    new: rng.random_bool(0.8).then(|| format!("w{index}")),
                }),
                3 => Command::Task(tasks::TaskCommand::Submit { task_id, payload: format!("p{index}") }),
                4 => Command::Task(tasks::TaskCommand::Claim {
                    worker: rng.random_range(1..4),
                    count: rng.random_range(1..5),
                    now_ms: index * 10,
                    lease_ms: rng.random_range(1..200),
                }),
                5 => Command::Task(tasks::TaskCommand::Complete {
                    task_id,
                    worker: rng.random_range(1..4),
                    result: "r".into(),
                }),
                _ => Command::Task(tasks::TaskCommand::Fail {
                    task_id,
                    worker: rng.random_range(1..4),
                    error: "e".into(),
                }),
            };
            state.apply(index, &command);
            if index % 100 == 0 {
                let restored = GroupState::restore(&state.snapshot()).unwrap();
                assert_eq!(restored.digest(), state.digest(), "after entry {index}");
                digests.insert(state.digest());
            }
        }
        assert_eq!(digests.len(), 30, "every checkpoint's state differs, and so does its digest");
    }

    /// The persistent maps encode as the standard ones did (a sorted map,
    /// a sequence), so snapshots written before them still read, and
    /// snapshots written now read in older nodes.
    #[test]
    fn snapshots_encode_as_with_the_standard_collections() {
        use std::collections::{BTreeMap, VecDeque};
        #[derive(Serialize)]
        struct StdKv {
            entries: BTreeMap<String, kv::Versioned>,
        }
        #[derive(Serialize)]
        struct StdTasks {
            tasks: BTreeMap<String, tasks::Task>,
            pending: VecDeque<String>,
            duplicates: u64,
        }
        #[derive(Serialize)]
        struct StdState {
            kv: StdKv,
            tasks: StdTasks,
            applied_index: u64,
        }
        let mut state = GroupState::default();
        let put =
            |key: &str, value: &str| Command::Kv(kv::KvCommand::Put { key: key.into(), value: value.into() });
        let submit = |id: &str| {
            Command::Task(tasks::TaskCommand::Submit { task_id: id.into(), payload: format!("p-{id}") })
        };
        state.apply(1, &put("b", "2"));
        state.apply(2, &put("a", "1"));
        state.apply(3, &submit("t2"));
        state.apply(4, &submit("t1"));
        state.apply(
            5,
            &Command::Task(tasks::TaskCommand::Claim { worker: 1, count: 1, now_ms: 0, lease_ms: 10 }),
        );
        let versioned = |value: &str, revision| kv::Versioned { value: value.into(), revision };
        let task = |id: &str, state, claims| tasks::Task { payload: format!("p-{id}").into(), state, claims };
        let standard = StdState {
            kv: StdKv {
                entries: BTreeMap::from([("a".into(), versioned("1", 2)), ("b".into(), versioned("2", 1))]),
            },
            tasks: StdTasks {
                tasks: BTreeMap::from([
                    ("t1".into(), task("t1", tasks::TaskState::Pending, 0)),
                    ("t2".into(), task("t2", tasks::TaskState::Claimed { worker: 1, lease_until_ms: 10 }, 1)),
                ]),
                pending: VecDeque::from(["t1".to_string()]),
                duplicates: 0,
            },
            applied_index: 5,
        };
        let bytes = bincode::serde::encode_to_vec(&standard, bincode::config::standard()).unwrap();
        assert_eq!(state.snapshot(), bytes);
        assert_eq!(GroupState::restore(&bytes).unwrap(), state);
    }

    #[test]
    fn a_corrupt_snapshot_is_an_error() {
        assert!(matches!(GroupState::restore(b"\xff\xff\xff\xff"), Err(StateError::CorruptSnapshot(_))));
        let mut state = GroupState::default();
        state.apply(1, &Command::Kv(kv::KvCommand::Put { key: "a".into(), value: "1".into() }));
        let mut bytes = state.snapshot();
        bytes.push(0);
        assert!(matches!(GroupState::restore(&bytes), Err(StateError::CorruptSnapshot(_))), "trailing byte");
        bytes.truncate(bytes.len() - 3);
        assert!(matches!(GroupState::restore(&bytes), Err(StateError::CorruptSnapshot(_))), "truncated");
    }

    #[test]
    #[should_panic(expected = "applied twice")]
    fn applying_an_index_twice_is_a_bug() {
        let mut state = GroupState::default();
        let command = Command::Kv(kv::KvCommand::Delete { key: "a".into() });
        state.apply(1, &command);
        state.apply(1, &command);
    }
}
