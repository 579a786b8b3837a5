//! The record of concurrent updates and how each key's policy resolved them.

use crate::state::value::ValueKind;
use concord_transport::NodeId;
use crdts::VClock;

/// How a conflict was resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolution {
    /// Last writer wins: the write with the greatest (timestamp, node id) was kept.
    LastWriterWins {
        /// The node whose write was kept.
        winner: NodeId,
    },
    /// Both writes kept as siblings for the application to merge.
    Siblings {
        /// Siblings after the merge.
        count: usize,
    },
    /// Joined by the CRDT (sets, counters, maps): nothing is lost.
    Joined,
    /// The key was created concurrently with two kinds; the greater kind was kept.
    KindResolved {
        /// The kind kept.
        kept: ValueKind,
    },
}

/// One detected conflict: a remote version concurrent with the local one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    /// The key.
    pub key: String,
    /// The core's tick when it was detected.
    pub tick: u64,
    /// The local version's clock before the merge.
    pub local: VClock<NodeId>,
    /// The remote version's clock.
    pub remote: VClock<NodeId>,
    /// What the key's policy did.
    pub resolution: Resolution,
}
