//! Typed errors of the crate. Expected failures (not the leader, a change
//! already in flight, a damaged file) are values of these types, never panics.

use crate::core::types::Index;
use concord_transport::NodeId;
use thiserror::Error;

/// A configuration ([`crate::core::Config`] or a membership) that cannot be used.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    /// A configuration needs at least one voter.
    #[error("the configuration has no voters")]
    NoVoters,
    /// More voters than the intersection check supports.
    #[error("{voters} voters exceed the bound of {max}")]
    TooManyVoters {
        /// Voters given.
        voters: usize,
        /// The bound.
        max: usize,
    },
    /// Every voter needs a positive weight.
    #[error("voter {0} has weight 0")]
    ZeroWeight(NodeId),
    /// A node cannot be a voter and a learner.
    #[error("{0} is both a voter and a learner")]
    LearnerIsVoter(NodeId),
    /// A quorum is zero or larger than the total weight.
    #[error("quorums election={election} commit={commit} out of range for total weight {total}")]
    QuorumOutOfRange {
        /// Election quorum weight.
        election: u64,
        /// Commit quorum weight.
        commit: u64,
        /// Total voting weight.
        total: u64,
    },
    /// election + commit must exceed the total weight.
    #[error("election quorum {election} + commit quorum {commit} must exceed total weight {total}")]
    QuorumsDoNotIntersect {
        /// Election quorum weight.
        election: u64,
        /// Commit quorum weight.
        commit: u64,
        /// Total voting weight.
        total: u64,
    },
    /// Two election quorums must intersect.
    #[error("election quorum {election} must exceed half the total weight {total}")]
    ElectionQuorumTooSmall {
        /// Election quorum weight.
        election: u64,
        /// Total voting weight.
        total: u64,
    },
    /// A timing or bound setting is out of range.
    #[error("invalid setting {name}: {reason}")]
    Setting {
        /// The setting's name.
        name: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
}

/// Why a proposal, read or administrative request was refused.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum RequestError {
    /// Only the leader accepts it; `leader` is the last known one.
    #[error("not the leader (leader: {leader:?})")]
    NotLeader {
        /// The leader this node knows of, if any.
        leader: Option<NodeId>,
    },
    /// A leadership transfer is under way; retry after it ends.
    #[error("a leadership transfer to {0} is in progress")]
    TransferInProgress(NodeId),
    /// The log holds `max_log_entries` entries not yet compacted.
    #[error("the log is full ({entries} entries, bound {max})")]
    LogFull {
        /// Entries in the log.
        entries: u64,
        /// The bound `max_log_entries`.
        max: u64,
    },
    /// The entries in the log and a new one would hold more than
    /// `max_log_bytes` bytes.
    #[error("the log is full ({bytes} bytes of entries and {size} more, bound max_log_bytes {max})")]
    LogBytesFull {
        /// Bytes of the entries in the log.
        bytes: u64,
        /// Bytes of the refused entry.
        size: u64,
        /// The bound `max_log_bytes`.
        max: u64,
    },
    /// One command is larger than `batch_bytes_max`.
    #[error("a command of {size} bytes exceeds batch_bytes_max {max}")]
    CommandTooLarge {
        /// Its size.
        size: usize,
        /// The bound.
        max: usize,
    },
    /// Too many reads wait for confirmation.
    #[error("{0} reads are pending, the bound read_pending_max")]
    TooManyReads(usize),
    /// Too many snapshot requests wait for the build in progress.
    #[error("{0} snapshot requests are waiting, the bound SNAPSHOT_REQUESTS_WAITING_MAX")]
    TooManySnapshotRequests(usize),
    /// A lease read was asked for but the lease is not held.
    #[error("the leader lease is not held (lease reads need check_quorum and a recent quorum)")]
    LeaseNotHeld,
    /// One membership change at a time: the last one is not committed.
    #[error("membership change at index {0} is not committed yet")]
    ChangeInProgress(Index),
    /// A new leader must commit an entry of its term before changing membership.
    #[error("the leader has not committed an entry of its term yet")]
    LeaderNotReady,
    /// The new configuration is invalid.
    #[error("invalid configuration: {0}")]
    InvalidMembership(#[from] ConfigError),
    /// Some quorum of the old configuration would not meet some quorum of the new.
    #[error("the change is too large to be safe in one step; change one voter at a time")]
    UnsafeChange,
    /// The transfer target is not a voter of the configuration.
    #[error("{0} is not a voter")]
    NotAVoter(NodeId),
}
