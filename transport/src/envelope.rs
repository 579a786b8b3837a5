//! The envelope every protocol's message travels in, and the typed layer that
//! turns a protocol's own message type into an envelope body and back.

use crate::codec;
use crate::error::CodecError;
use crate::ids::{GroupId, NodeId};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Which protocol a message belongs to. The transport routes on it and never
/// looks inside the body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Protocol {
    /// Raft replication, elections and snapshots.
    Raft,
    /// Gossip dissemination, anti-entropy and failure detection.
    Gossip,
    /// The quorum manager.
    Membership,
    /// A host application's own protocol, numbered by the host.
    Application(u16),
}

/// Where a message is delivered on the receiving node: a protocol and, for
/// protocols with several instances per process (Raft groups), the instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Channel {
    /// The protocol.
    pub protocol: Protocol,
    /// The instance: a Raft group id; `GroupId(0)` for single-instance protocols.
    pub group: GroupId,
}

impl Channel {
    /// The channel of a single-instance protocol (gossip, membership).
    pub const fn single(protocol: Protocol) -> Channel {
        Channel { protocol, group: GroupId(0) }
    }

    /// The channel of one Raft group.
    pub const fn raft(group: GroupId) -> Channel {
        Channel { protocol: Protocol::Raft, group }
    }
}

/// One message between two nodes. The body is the protocol message encoded by
/// [`WireMessage::to_body`]; the transport carries it without decoding it, so
/// Raft, gossip and membership traffic to one peer shares one connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// The sender. A TCP receiver checks it against the peer's handshake.
    pub from: NodeId,
    /// The addressee.
    pub to: NodeId,
    /// Where the addressee delivers it.
    pub channel: Channel,
    /// The encoded protocol message.
    pub body: Bytes,
}

impl Envelope {
    /// Wraps a typed message: encodes it into the body.
    pub fn wrap<M: WireMessage>(
        from: NodeId,
        to: NodeId,
        group: GroupId,
        message: &M,
    ) -> Result<Envelope, CodecError> {
        Ok(Envelope { from, to, channel: Channel { protocol: M::PROTOCOL, group }, body: message.to_body()? })
    }

    /// Decodes the body as a typed message, checking that the channel is that
    /// message type's protocol.
    pub fn open<M: WireMessage>(&self) -> Result<M, CodecError> {
        if self.channel.protocol != M::PROTOCOL {
            return Err(CodecError::WrongProtocol { expected: M::PROTOCOL, found: self.channel.protocol });
        }
        M::from_body(&self.body)
    }

    /// Bytes this envelope takes in memory queues: the body plus a fixed
    /// header estimate. Used by byte-bounded queues and inflight windows.
    pub fn size_bytes(&self) -> usize {
        self.body.len() + ENVELOPE_HEADER_BYTES
    }
}

/// The fixed part of an envelope counted by [`Envelope::size_bytes`].
pub const ENVELOPE_HEADER_BYTES: usize = 32;

/// A protocol message that can travel in an [`Envelope`]. Implemented by each
/// protocol's versioned wire enum.
pub trait WireMessage: Serialize + DeserializeOwned + Send + 'static {
    /// The protocol this message type belongs to.
    const PROTOCOL: Protocol;

    /// Encodes the message for an envelope body.
    fn to_body(&self) -> Result<Bytes, CodecError> {
        codec::encode_value(self).map(Bytes::from)
    }

    /// Decodes an envelope body. Garbage gives an error, never a panic.
    fn from_body(body: &[u8]) -> Result<Self, CodecError> {
        codec::decode_value(body)
    }
}
