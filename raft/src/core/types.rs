//! The values the core reasons about: terms, indexes, log entries, the hard
//! state that must survive a crash, and snapshot metadata.

use crate::core::quorum::Membership;
use bytes::Bytes;
use concord_transport::NodeId;
use serde::{Deserialize, Serialize};

/// A Raft term: a logical clock that grows with every election.
pub type Term = u64;
/// A position in the replicated log; the first entry has index 1.
pub type Index = u64;

/// The identity of a client command for exactly-once application (thesis
/// §6.3): a client numbers its commands and reuses the number when it retries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ClientTag {
    /// The client, unique across the cluster.
    pub client_id: u64,
    /// The client's sequence number of this command, starting at 1.
    pub sequence: u64,
}

/// What a log entry carries.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Payload {
    /// The no-op a new leader appends to commit entries of earlier terms
    /// (paper §5.4.2, §8).
    Empty,
    /// A command for the state machine, optionally tagged for exactly-once.
    Command {
        /// Set for commands of a client session.
        client: Option<ClientTag>,
        /// The command, opaque to Raft.
        data: Bytes,
    },
    /// A new configuration; it takes effect as soon as it is in the log.
    Membership(Membership),
}

/// One entry of the replicated log.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Entry {
    /// The term of the leader that created it.
    pub term: Term,
    /// Its position.
    pub index: Index,
    /// What it carries.
    pub payload: Payload,
}

/// Bytes an entry is counted as in batches and inflight windows: its data
/// plus a fixed estimate for the header.
pub const ENTRY_HEADER_BYTES: usize = 32;

impl Entry {
    /// The size counted against byte bounds.
    pub fn size_bytes(&self) -> usize {
        ENTRY_HEADER_BYTES
            + match &self.payload {
                Payload::Empty => 0,
                Payload::Command { data, .. } => data.len(),
                Payload::Membership(m) => 16 * (m.voters.len() + m.learners.len()),
            }
    }
}

/// The state that must be on stable storage before any message that depends
/// on it is sent (paper Figure 2, "persistent state on all servers").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HardState {
    /// The latest term this node has seen.
    pub term: Term,
    /// The candidate it voted for in `term`, if any.
    pub vote: Option<NodeId>,
    /// The highest index known committed. Not required for safety; kept so
    /// that a restarted node can apply without waiting for a leader.
    pub commit: Index,
}

/// What a snapshot covers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMeta {
    /// The last index it includes.
    pub index: Index,
    /// The term of that entry.
    pub term: Term,
    /// The configuration as of `index`.
    pub membership: Membership,
}

/// A state-machine snapshot and what it covers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// What it covers.
    pub meta: SnapshotMeta,
    /// The state machine's serialized state, opaque to Raft.
    pub data: Bytes,
}
