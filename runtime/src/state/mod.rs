//! The replicated state machines of a Concord node: a key-value store and the
//! task queue of the reference scenario. Both are pure: commands come from the
//! Raft log in order, each applied exactly once per log index, and the state
//! can be snapshotted, restored and digested for consistency checks.

pub mod kv;
pub mod tasks;

use serde::{Deserialize, Serialize};

/// A command carried by one Raft log entry of a Concord group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// A key-value command.
    Kv(kv::KvCommand),
    /// A task-queue command.
    Task(tasks::TaskCommand),
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

    /// The whole state as bytes, for a Raft snapshot.
    pub fn snapshot(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Restores a state from [`GroupState::snapshot`] bytes.
    pub fn restore(bytes: &[u8]) -> Result<GroupState, StateError> {
        serde_json::from_slice(bytes).map_err(|e| StateError::CorruptSnapshot(e.to_string()))
    }

    /// A digest of the state, equal on replicas that applied the same entries
    /// (FNV-1a over the snapshot encoding, whose maps are ordered).
    pub fn digest(&self) -> u64 {
        self.snapshot()
            .iter()
            .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3))
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

    #[test]
    fn a_corrupt_snapshot_is_an_error() {
        assert!(matches!(GroupState::restore(b"{not json"), Err(StateError::CorruptSnapshot(_))));
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
