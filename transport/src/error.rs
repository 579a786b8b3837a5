//! Typed errors. Bad input from a peer is an error that closes that one
//! connection; it is never a panic.

use crate::envelope::Protocol;
use crate::ids::{ClusterId, NodeId};
use std::io;

/// A frame or body could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// A frame announced a length above the configured maximum.
    #[error("frame of {size} bytes is larger than frame_size_max {max}")]
    FrameTooLarge {
        /// The announced or encoded size.
        size: usize,
        /// The configured bound.
        max: usize,
    },
    /// The bytes are not a valid encoding.
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// A valid value was followed by bytes that belong to no field.
    #[error("malformed frame: {0} trailing bytes after the message")]
    TrailingBytes(usize),
    /// A value could not be encoded.
    #[error("cannot encode message: {0}")]
    Encode(String),
    /// An envelope body was opened as the wrong protocol's message.
    #[error("envelope carries a {found:?} message, not {expected:?}")]
    WrongProtocol {
        /// The protocol asked for.
        expected: Protocol,
        /// The protocol on the envelope.
        found: Protocol,
    },
    /// The underlying socket failed.
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
}

/// Why a connection was refused or closed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// The peer sent a frame that could not be decoded.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The first frame was not a handshake.
    #[error("expected a handshake as the first frame")]
    MissingHandshake,
    /// The handshake did not start with Concord's magic bytes.
    #[error("not a Concord peer (bad magic)")]
    BadMagic,
    /// The peer speaks a protocol version this build does not.
    #[error("unsupported protocol version {found} (this node speaks {supported})")]
    UnsupportedVersion {
        /// The peer's version.
        found: u32,
        /// Ours.
        supported: u32,
    },
    /// The peer belongs to another cluster.
    #[error("peer is in cluster {found}, this node is in {expected}")]
    WrongCluster {
        /// Our cluster.
        expected: ClusterId,
        /// The peer's.
        found: ClusterId,
    },
    /// The peer claimed an identity it may not use: ours, or not the node we dialed.
    #[error("peer claims to be {claimed}, expected {expected}")]
    WrongNode {
        /// The id in the handshake.
        claimed: NodeId,
        /// The id it had to be (for inbound connections, any id but ours).
        expected: NodeId,
    },
    /// After the handshake, a message named another node as its sender.
    #[error("peer {authenticated} sent a message claiming to be from {claimed}")]
    SpoofedSender {
        /// The id proven by the handshake.
        authenticated: NodeId,
        /// The id on the envelope.
        claimed: NodeId,
    },
    /// The handshake did not arrive in time.
    #[error("handshake timed out")]
    HandshakeTimeout,
    /// The peer closed the connection.
    #[error("connection closed by peer")]
    Closed,
    /// The socket failed.
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
}

/// Why [`crate::Transport::send`] did not accept a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// No address is known for the addressee.
    #[error("no address known for {0}")]
    UnknownPeer(NodeId),
    /// The addressee's outbound queue is at its bound; the message was dropped
    /// and counted.
    #[error("outbound queue to {0} is full; message dropped")]
    QueueFull(NodeId),
    /// The transport has been shut down.
    #[error("transport is shut down")]
    Shutdown,
}
