//! Typed errors of the gossip crate. Bad input gives one of these and changes nothing.

use crate::state::ValueKind;
use concord_transport::CodecError;

/// Why an operation or an inbound message was refused.
#[derive(Debug, thiserror::Error)]
pub enum GossipError {
    /// The key holds a value of another kind than the operation needs.
    #[error("key {key:?} holds a {found:?}, the operation needs a {expected:?}")]
    KindMismatch {
        /// The key.
        key: String,
        /// The kind the operation works on.
        expected: ValueKind,
        /// The kind stored.
        found: ValueKind,
    },
    /// The node is in read-only degraded mode (a partition is suspected).
    #[error("degraded mode: writes are refused while a partition is suspected")]
    Degraded,
    /// The node has left the cluster.
    #[error("this node has left the cluster")]
    Left,
    /// A value could not be decoded from its wire form.
    #[error("bad value encoding: {0}")]
    BadValue(String),
    /// An inbound message could not be decoded.
    #[error("bad message: {0}")]
    Codec(#[from] CodecError),
    /// An item alone is larger than `message_size_max`.
    #[error("item of {size} bytes exceeds message_size_max {max}")]
    TooLarge {
        /// Encoded size of the item.
        size: usize,
        /// The bound.
        max: usize,
    },
}
