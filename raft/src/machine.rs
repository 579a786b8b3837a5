//! The state machine a host plugs into a [`crate::actor::RaftActor`], and the
//! session layer the actor wraps around it for exactly-once commands.

use crate::core::types::{ClientTag, Entry, Index, Payload};
use crate::session::{SessionCheck, Sessions};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A deterministic state machine: applying the same commands in the same
/// order gives the same state on every replica.
pub trait StateMachine: Send + Unpin + 'static {
    /// Applies a committed command and returns its response.
    fn apply(&mut self, index: Index, command: &[u8]) -> Bytes;
    /// Answers a read-only query against the current state.
    fn query(&self, query: &[u8]) -> Bytes;
    /// Serializes the whole state.
    fn snapshot(&self) -> Bytes;
    /// Captures the state now and returns the work that serializes it. The
    /// actor calls this on its event loop and runs the returned job on the
    /// blocking pool while it goes on applying, so only the capture costs
    /// the loop. The default serializes at once with [`StateMachine::snapshot`]
    /// (the job only hands the bytes over); a machine whose state is cheap to
    /// capture (an `Arc` of a persistent map, a copy-on-write clone)
    /// overrides it to serialize inside the job.
    fn snapshot_job(&self) -> SnapshotJob {
        let data = self.snapshot();
        Box::new(move || data)
    }
    /// Replaces the state with a snapshot's. Bad data is an error, never a panic.
    fn restore(&mut self, data: &[u8]) -> Result<(), String>;
    /// A digest of the state, equal on replicas that applied the same log:
    /// compared across replicas for consistency verification.
    fn digest(&self) -> u64;

    /// For a state machine that keeps its own state durably: the last index
    /// it applied before this start, so that entries up to it are not applied
    /// again (exactly once across restarts). `None` (the default) for a
    /// machine rebuilt from the snapshot and the log at every start.
    ///
    /// Sessions after such a restart: the session table is the last
    /// snapshot's, replayed with the tags of the log entries after the
    /// snapshot through this index. So a retry of any command applied before
    /// the restart is still recognized and never applied twice (replicas do
    /// not diverge). For a command applied after the snapshot the response is
    /// not kept: this node answers its retry with
    /// [`crate::actor::RaftError::ResponseLost`] until the client's next
    /// command, and a snapshot this node takes meanwhile carries an empty
    /// response for it.
    fn durable_applied_index(&self) -> Option<Index> {
        None
    }
}

/// The serialization of a state captured by [`StateMachine::snapshot_job`],
/// run off the actor's event loop.
pub type SnapshotJob = Box<dyn FnOnce() -> Bytes + Send>;

/// What applying one command gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Applied {
    /// The command ran (or, a retry, ran before) and responded this.
    Response(Bytes),
    /// A retry of a command applied before a restart of a durable machine,
    /// whose response was not kept (see
    /// [`StateMachine::durable_applied_index`]): not run.
    ResponseLost,
    /// A retry of a command older than the client's latest: not run.
    Stale,
}

/// A state machine with the client-session table (thesis §6.3).
pub struct Sessioned<M> {
    /// The host's state machine.
    pub machine: M,
    sessions: Sessions,
    /// Per client, the sequence replayed at start whose response is lost;
    /// at most one per client of the replayed entries (so bounded by
    /// `max_log_entries`), dropped at the client's next command.
    responses_lost: BTreeMap<u64, u64>,
}

#[derive(Serialize, Deserialize)]
struct SnapshotImage {
    sessions: Sessions,
    /// `Bytes` serializes as one byte string (one copy), where a `Vec<u8>`
    /// goes through serde one element at a time; bincode writes both the
    /// same way (length, then the bytes), so stored snapshots still read.
    machine: Bytes,
}

impl<M: StateMachine> Sessioned<M> {
    /// Wraps `machine` with an empty session table.
    pub fn new(machine: M) -> Sessioned<M> {
        Sessioned { machine, sessions: Sessions::default(), responses_lost: BTreeMap::new() }
    }

    /// Applies a command, at most once per client tag.
    pub fn apply(&mut self, index: Index, client: Option<ClientTag>, command: &[u8]) -> Applied {
        let Some(tag) = client else { return Applied::Response(self.machine.apply(index, command)) };
        match self.sessions.check(tag) {
            SessionCheck::Apply => {
                let response = self.machine.apply(index, command);
                self.sessions.record(tag, index, response.clone());
                self.responses_lost.remove(&tag.client_id);
                Applied::Response(response)
            }
            SessionCheck::Duplicate(_) if self.responses_lost.get(&tag.client_id) == Some(&tag.sequence) => {
                Applied::ResponseLost
            }
            SessionCheck::Duplicate(response) => Applied::Response(response),
            SessionCheck::Stale => Applied::Stale,
        }
    }

    /// The snapshot of machine and sessions together.
    pub fn snapshot(&self) -> Bytes {
        self.snapshot_job()()
    }

    /// Captures machine and sessions now (the session table's clone shares
    /// its persistent maps: O(1)) and returns the job that serializes them
    /// together, for the blocking pool.
    pub fn snapshot_job(&self) -> SnapshotJob {
        let sessions = self.sessions.clone();
        let machine = self.machine.snapshot_job();
        Box::new(move || {
            let image = SnapshotImage { sessions, machine: machine() };
            let encoded = bincode::serde::encode_to_vec(&image, bincode::config::standard());
            Bytes::from(encoded.expect("sessions and bytes always encode"))
        })
    }

    /// For a machine that kept its own state through a restart: takes the
    /// session table from `snapshot` data (not the machine's state, which is
    /// newer) and replays the client tags of `applied`, the entries after the
    /// snapshot that the machine applied before the restart, as applying
    /// them would, with their responses marked lost.
    pub fn recover_sessions<'a>(
        &mut self,
        snapshot: &[u8],
        applied: impl IntoIterator<Item = &'a Entry>,
    ) -> Result<(), String> {
        if !snapshot.is_empty() {
            self.sessions = decode_image(snapshot)?.sessions;
        }
        for entry in applied {
            let Payload::Command { client: Some(tag), .. } = &entry.payload else { continue };
            if self.sessions.check(*tag) == SessionCheck::Apply {
                self.sessions.record(*tag, entry.index, Bytes::new());
                self.responses_lost.insert(tag.client_id, tag.sequence);
            }
        }
        Ok(())
    }

    /// Restores machine and sessions from [`Sessioned::snapshot`] data.
    pub fn restore(&mut self, data: &[u8]) -> Result<(), String> {
        if data.is_empty() {
            return Ok(());
        }
        let image = decode_image(data)?;
        self.machine.restore(&image.machine)?;
        self.sessions = image.sessions;
        self.responses_lost.clear();
        Ok(())
    }
}

fn decode_image(data: &[u8]) -> Result<SnapshotImage, String> {
    let (image, _): (SnapshotImage, usize) =
        bincode::serde::decode_from_slice(data, bincode::config::standard()).map_err(|e| e.to_string())?;
    Ok(image)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_image_encodes_as_its_earlier_vec_shape_did_and_reads_back() {
        #[derive(Serialize)]
        struct VecImage {
            sessions: Sessions,
            machine: Vec<u8>,
        }
        let data: Vec<u8> = (0..=255u8).cycle().take(1_000).collect();
        let config = bincode::config::standard();
        let image = SnapshotImage { sessions: Sessions::default(), machine: Bytes::from(data.clone()) };
        let now = bincode::serde::encode_to_vec(&image, config).unwrap();
        let before = bincode::serde::encode_to_vec(
            VecImage { sessions: Sessions::default(), machine: data.clone() },
            config,
        )
        .unwrap();
        assert_eq!(now, before);
        assert_eq!(&decode_image(&before).unwrap().machine[..], &data[..]);
    }
}
