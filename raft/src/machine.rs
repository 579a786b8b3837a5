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
    /// Returns the work that decodes a snapshot's data (the job's argument)
    /// into a state, and the installer that puts that state in place. The
    /// actor calls this on its event loop, runs the job on the blocking
    /// pool while the snapshot's file is written, and runs the installer
    /// back on the loop, so only the installer costs the loop. The default
    /// job decodes nothing and its installer calls
    /// [`StateMachine::restore`]; a machine with a large state overrides it
    /// to decode in the job and swap the decoded state in.
    fn restore_job(&self) -> RestoreJob<Self>
    where
        Self: Sized,
    {
        Box::new(|data: Bytes| {
            let install: Install<Self> = Box::new(move |machine: &mut Self| machine.restore(&data));
            Ok(install)
        })
    }
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

/// The decoding of a snapshot's data returned by
/// [`StateMachine::restore_job`], run off the actor's event loop: bad data
/// is an error, never a panic.
pub type RestoreJob<M> = Box<dyn FnOnce(Bytes) -> Result<Install<M>, String> + Send>;

/// Puts a state decoded by a [`RestoreJob`] in place, on the actor's event
/// loop: meant to be cheap (a swap).
pub type Install<M> = Box<dyn FnOnce(&mut M) -> Result<(), String> + Send>;

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

    /// Restores machine and sessions from [`Sessioned::snapshot`] data, on
    /// the caller's thread (at start; see [`Sessioned::restore_job`]).
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

    /// The job that decodes [`Sessioned::snapshot`] data, the session table
    /// and the machine's state (with [`StateMachine::restore_job`]), off the
    /// event loop; its installer puts both in place.
    pub fn restore_job(&self) -> RestoreJob<Sessioned<M>> {
        let machine_job = self.machine.restore_job();
        Box::new(move |data: Bytes| {
            let install: Install<Sessioned<M>> = if data.is_empty() {
                Box::new(|_| Ok(()))
            } else {
                let image = decode_image(&data)?;
                let machine = machine_job(image.machine)?;
                let sessions = image.sessions;
                Box::new(move |sessioned: &mut Sessioned<M>| {
                    machine(&mut sessioned.machine)?;
                    sessioned.sessions = sessions;
                    sessioned.responses_lost.clear();
                    Ok(())
                })
            };
            Ok(install)
        })
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

    /// Counts the bytes of its commands; restores from a count.
    #[derive(Default)]
    struct Count(u64);

    impl StateMachine for Count {
        fn apply(&mut self, _: Index, command: &[u8]) -> Bytes {
            self.0 += command.len() as u64;
            Bytes::new()
        }
        fn query(&self, _: &[u8]) -> Bytes {
            Bytes::new()
        }
        fn snapshot(&self) -> Bytes {
            Bytes::copy_from_slice(&self.0.to_le_bytes())
        }
        fn restore(&mut self, data: &[u8]) -> Result<(), String> {
            self.0 = u64::from_le_bytes(data.try_into().map_err(|_| "not a count".to_string())?);
            Ok(())
        }
        fn digest(&self) -> u64 {
            self.0
        }
    }

    /// The restore job (decoding off the loop, with the trait's default for
    /// the machine) gives what `restore` gives: the machine's state and the
    /// session table, so a retry is still answered, not applied. Bad data
    /// fails in the job, before anything is replaced.
    #[test]
    fn a_restore_job_installs_the_machine_and_the_sessions() {
        let tag = ClientTag { client_id: 7, sequence: 1 };
        let mut source = Sessioned::new(Count::default());
        source.apply(1, Some(tag), b"abc");
        let data = source.snapshot();
        let mut target = Sessioned::new(Count(100));
        assert!(target.restore_job()(Bytes::from_static(b"garbage")).is_err());
        assert_eq!(target.machine.0, 100);
        let install = target.restore_job()(data.clone()).unwrap();
        install(&mut target).unwrap();
        assert_eq!(target.machine.0, 3);
        assert_eq!(target.apply(2, Some(tag), b"abc"), Applied::Response(Bytes::new()), "a retry");
        assert_eq!(target.machine.0, 3, "the retry was not applied");
        let mut restored = Sessioned::new(Count(100));
        restored.restore(&data).unwrap();
        assert_eq!(restored.machine.0, target.machine.0);
    }

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
