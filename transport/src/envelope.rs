//! The envelope every protocol's message travels in, and the typed layer that
//! turns a protocol's own message type into an envelope body and back.

use crate::codec;
use crate::error::CodecError;
use crate::ids::{GroupId, NodeId};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::any::Any;
use std::fmt;
use std::sync::Arc;

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

/// One message between two nodes. The body is the protocol message, carried
/// without being decoded by the transport, so Raft, gossip and membership
/// traffic to one peer shares one connection.
///
/// A body made by [`Envelope::wrap`] holds the typed message itself: the
/// in-memory transport hands it to the receiver as it is, and only a
/// transport that writes to a socket encodes it (into its frame). A body read
/// from a socket holds the bytes. Either way [`Envelope::open`] gives the
/// typed message back, and the bytes on the wire are the same.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// The sender. A TCP receiver checks it against the peer's handshake.
    pub from: NodeId,
    /// The addressee.
    pub to: NodeId,
    /// Where the addressee delivers it.
    pub channel: Channel,
    /// The protocol message.
    pub body: EnvelopeBody,
}

impl Envelope {
    /// Wraps a typed message, encoding it into the body now.
    pub fn wrap<M: WireMessage>(
        from: NodeId,
        to: NodeId,
        group: GroupId,
        message: &M,
    ) -> Result<Envelope, CodecError> {
        let body = EnvelopeBody::Encoded(message.to_body()?);
        Ok(Envelope { from, to, channel: Channel { protocol: M::PROTOCOL, group }, body })
    }

    /// Wraps a typed message without encoding it: in process it is handed
    /// over as it is, and a socket transport encodes it when it writes the
    /// frame. A message that cannot be encoded, or is larger than the frame
    /// bound, is then dropped and counted as `dropped_write_failed`, like any
    /// frame that cannot be written.
    pub fn typed<M: WireMessage>(from: NodeId, to: NodeId, group: GroupId, message: M) -> Envelope {
        let body = EnvelopeBody::Value(Arc::new(message));
        Envelope { from, to, channel: Channel { protocol: M::PROTOCOL, group }, body }
    }

    /// Decodes the body as a typed message, checking that the channel is that
    /// message type's protocol. The envelope is kept, so a typed body is
    /// copied (through its encoding); [`Envelope::into_message`] moves it
    /// out instead.
    pub fn open<M: WireMessage>(&self) -> Result<M, CodecError> {
        self.check_protocol::<M>()?;
        match &self.body {
            EnvelopeBody::Encoded(bytes) => M::from_body(bytes),
            EnvelopeBody::Value(value) => M::from_body(&value.encode()?),
        }
    }

    /// Takes the typed message out of the envelope, checking that the channel
    /// is that message type's protocol. A typed body that this envelope alone
    /// holds is moved out without encoding; a body shared with a copy of the
    /// envelope (a duplicate injected by faults) or of another type of the
    /// same protocol goes through its encoding, as it would over a socket.
    pub fn into_message<M: WireMessage>(self) -> Result<M, CodecError> {
        self.check_protocol::<M>()?;
        match self.body {
            EnvelopeBody::Encoded(bytes) => M::from_body(&bytes),
            EnvelopeBody::Value(value) => {
                if !value.as_any().is::<M>() {
                    // Another type of the same protocol: its encoding is what
                    // a receiver over a socket would decode.
                    return M::from_body(&value.encode()?);
                }
                match value.into_any().downcast::<M>() {
                    Ok(typed) => match Arc::try_unwrap(typed) {
                        Ok(message) => Ok(message),
                        Err(shared) => M::from_body(&shared.to_body()?),
                    },
                    Err(_) => Err(CodecError::Malformed("typed body changed type".into())),
                }
            }
        }
    }

    fn check_protocol<M: WireMessage>(&self) -> Result<(), CodecError> {
        if self.channel.protocol != M::PROTOCOL {
            return Err(CodecError::WrongProtocol { expected: M::PROTOCOL, found: self.channel.protocol });
        }
        Ok(())
    }

    /// Bytes this envelope takes on the wire: the encoded body plus a fixed
    /// header estimate. A typed body is measured without being encoded (or
    /// counted as 0 if it cannot be encoded at all).
    pub fn size_bytes(&self) -> usize {
        self.body.encoded_len().unwrap_or(0) + ENVELOPE_HEADER_BYTES
    }
}

/// The fixed part of an envelope counted by [`Envelope::size_bytes`].
pub const ENVELOPE_HEADER_BYTES: usize = 32;

/// The body of an [`Envelope`].
#[derive(Clone)]
pub enum EnvelopeBody {
    /// The encoded message ([`WireMessage::to_body`]), as read from a socket.
    Encoded(Bytes),
    /// The typed message itself, encoded only where it must become bytes.
    Value(Arc<dyn TypedBody>),
}

impl EnvelopeBody {
    /// The encoded message: the bytes themselves, or a typed message encoded now.
    pub fn encoded(&self) -> Result<Bytes, CodecError> {
        match self {
            EnvelopeBody::Encoded(bytes) => Ok(bytes.clone()),
            EnvelopeBody::Value(value) => value.encode(),
        }
    }

    /// Bytes of the encoded message, counted without encoding a typed one.
    pub fn encoded_len(&self) -> Result<usize, CodecError> {
        match self {
            EnvelopeBody::Encoded(bytes) => Ok(bytes.len()),
            EnvelopeBody::Value(value) => value.encoded_len(),
        }
    }
}

impl From<Bytes> for EnvelopeBody {
    fn from(bytes: Bytes) -> EnvelopeBody {
        EnvelopeBody::Encoded(bytes)
    }
}

impl fmt::Debug for EnvelopeBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EnvelopeBody::Encoded(bytes) => f.debug_tuple("Encoded").field(bytes).finish(),
            EnvelopeBody::Value(_) => f.write_str("Value(..)"),
        }
    }
}

/// Bodies are equal when their encodings are (a typed body that cannot be
/// encoded equals only itself).
impl PartialEq for EnvelopeBody {
    fn eq(&self, other: &EnvelopeBody) -> bool {
        if let (EnvelopeBody::Value(a), EnvelopeBody::Value(b)) = (self, other) {
            if Arc::ptr_eq(a, b) {
                return true;
            }
        }
        match (self.encoded(), other.encoded()) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for EnvelopeBody {}

/// Serialized as the encoded message's bytes, whichever the variant: the
/// wire format does not depend on how the body was carried.
impl Serialize for EnvelopeBody {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            EnvelopeBody::Encoded(bytes) => bytes.serialize(serializer),
            EnvelopeBody::Value(value) => {
                value.encode().map_err(serde::ser::Error::custom)?.serialize(serializer)
            }
        }
    }
}

impl<'de> Deserialize<'de> for EnvelopeBody {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<EnvelopeBody, D::Error> {
        Bytes::deserialize(deserializer).map(EnvelopeBody::Encoded)
    }
}

/// A typed message in an [`EnvelopeBody`]; implemented for every
/// [`WireMessage`].
pub trait TypedBody: Any + Send + Sync {
    /// Encodes the message ([`WireMessage::to_body`]).
    fn encode(&self) -> Result<Bytes, CodecError>;
    /// Bytes of that encoding, counted without allocating.
    fn encoded_len(&self) -> Result<usize, CodecError>;
    /// The message, to check its type.
    fn as_any(&self) -> &dyn Any;
    /// The message, to take it out.
    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
}

impl<M: WireMessage> TypedBody for M {
    fn encode(&self) -> Result<Bytes, CodecError> {
        self.to_body()
    }

    fn encoded_len(&self) -> Result<usize, CodecError> {
        codec::encoded_len(self)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }
}

/// A protocol message that can travel in an [`Envelope`]. Implemented by each
/// protocol's versioned wire enum. `Sync` because a typed body may be shared
/// by copies of an envelope (duplicates injected by faults).
pub trait WireMessage: Serialize + DeserializeOwned + Send + Sync + 'static {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Frame, FrameCodec, FRAME_SIZE_MAX_DEFAULT};
    use bytes::BytesMut;
    use tokio_util::codec::Decoder;

    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
    enum TestWire {
        V1 { text: String, number: u64, data: Bytes },
    }

    impl WireMessage for TestWire {
        const PROTOCOL: Protocol = Protocol::Application(3);
    }

    /// Another message type of the same protocol, with the same layout.
    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
    enum SameLayout {
        V1 { text: String, number: u64, data: Bytes },
    }

    impl WireMessage for SameLayout {
        const PROTOCOL: Protocol = Protocol::Application(3);
    }

    fn message() -> TestWire {
        TestWire::V1 { text: "hello".into(), number: 1 << 40, data: Bytes::from_static(&[1, 2, 3]) }
    }

    fn typed() -> Envelope {
        Envelope::typed(NodeId(1), NodeId(2), GroupId(4), message())
    }

    fn wrapped() -> Envelope {
        Envelope::wrap(NodeId(1), NodeId(2), GroupId(4), &message()).unwrap()
    }

    #[test]
    fn a_typed_body_is_moved_out_without_encoding() {
        let envelope = typed();
        assert!(matches!(envelope.body, EnvelopeBody::Value(_)));
        assert_eq!(envelope.into_message::<TestWire>().unwrap(), message());
    }

    #[test]
    fn typed_and_encoded_bodies_frame_to_the_same_bytes() {
        let codec = FrameCodec::new(FRAME_SIZE_MAX_DEFAULT);
        let (mut typed_frame, mut wrapped_frame) = (BytesMut::new(), BytesMut::new());
        codec.encode_frame(&Frame::Message(typed()), &mut typed_frame).unwrap();
        codec.encode_frame(&Frame::Message(wrapped()), &mut wrapped_frame).unwrap();
        assert_eq!(typed_frame, wrapped_frame);
        let mut decoder = codec;
        let Some(Frame::Message(received)) = decoder.decode(&mut typed_frame).unwrap() else {
            panic!("expected a message frame");
        };
        assert!(matches!(received.body, EnvelopeBody::Encoded(_)));
        assert_eq!(received, typed());
        assert_eq!(received.into_message::<TestWire>().unwrap(), message());
    }

    #[test]
    fn sizes_agree_whichever_the_body() {
        assert_eq!(typed().size_bytes(), wrapped().size_bytes());
        assert_eq!(typed().body.encoded_len().unwrap(), message().to_body().unwrap().len());
    }

    #[test]
    fn copies_of_a_typed_envelope_each_open() {
        let first = typed();
        let second = first.clone();
        assert_eq!(first.open::<TestWire>().unwrap(), message());
        assert_eq!(first.into_message::<TestWire>().unwrap(), message());
        assert_eq!(second.into_message::<TestWire>().unwrap(), message());
    }

    #[test]
    fn another_type_of_the_protocol_opens_through_the_encoding() {
        let TestWire::V1 { text, number, data } = message();
        assert_eq!(typed().into_message::<SameLayout>().unwrap(), SameLayout::V1 { text, number, data });
    }

    #[test]
    fn the_wrong_protocol_is_refused_for_both_bodies() {
        #[derive(Debug, Serialize, Deserialize)]
        struct Other;
        impl WireMessage for Other {
            const PROTOCOL: Protocol = Protocol::Gossip;
        }
        for envelope in [typed(), wrapped()] {
            assert!(matches!(envelope.open::<Other>(), Err(CodecError::WrongProtocol { .. })));
            assert!(matches!(envelope.into_message::<Other>(), Err(CodecError::WrongProtocol { .. })));
        }
    }
}
