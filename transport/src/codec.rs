//! The wire codec, kept behind this one module so it can be swapped: bincode 2
//! (serde layout, standard configuration) inside length-delimited frames with a
//! 4-byte big-endian length, bounded by `frame_size_max`, framed through
//! tokio-util's `Decoder`/`Encoder` traits.
//!
//! A connection starts with one [`Frame::Hello`] in each direction, then
//! carries [`Frame::Message`]s.

use crate::envelope::Envelope;
use crate::error::CodecError;
use crate::ids::{ClusterId, NodeId};
use bytes::{BufMut, BytesMut};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio_util::codec::{Decoder, Encoder};

/// The default bound on one frame's payload: 16 MiB.
pub const FRAME_SIZE_MAX_DEFAULT: usize = 16 * 1024 * 1024;

/// The protocol version this build speaks. A peer with another version is
/// refused at the handshake.
pub const PROTOCOL_VERSION: u32 = 1;

/// Magic bytes opening every handshake: a non-Concord client is told apart
/// from a Concord node of another version.
pub const MAGIC: [u8; 4] = *b"CNCD";

/// Bytes of the length prefix of each frame.
pub const LENGTH_PREFIX_BYTES: usize = 4;

/// The first frame in each direction of a connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// Always [`MAGIC`].
    pub magic: [u8; 4],
    /// The sender's [`PROTOCOL_VERSION`].
    pub version: u32,
    /// The sender's cluster.
    pub cluster: ClusterId,
    /// The sender's node id.
    pub node: NodeId,
}

impl Hello {
    /// This build's handshake for the given node.
    pub fn new(cluster: ClusterId, node: NodeId) -> Hello {
        Hello { magic: MAGIC, version: PROTOCOL_VERSION, cluster, node }
    }
}

/// One frame on a connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Frame {
    /// The handshake.
    Hello(Hello),
    /// A protocol message.
    Message(Envelope),
}

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// Encodes one value with the wire configuration, into a buffer of
/// exactly its size: a counting pass first, then one allocation. (Growing
/// the buffer from empty took about seven reallocations for a 300-byte
/// Raft append, and left the buffers that stay in the log cache up to
/// twice as large as their bytes.)
pub fn encode_value<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::with_capacity(encoded_len(value)?);
    bincode::serde::encode_into_std_write(value, &mut out, config())
        .map_err(|e| CodecError::Encode(e.to_string()))?;
    Ok(out)
}

/// Bytes [`encode_value`] would produce for `value`, counted without
/// allocating.
pub fn encoded_len<T: Serialize + ?Sized>(value: &T) -> Result<usize, CodecError> {
    struct Counter(usize);
    impl bincode::enc::write::Writer for Counter {
        fn write(&mut self, bytes: &[u8]) -> Result<(), bincode::error::EncodeError> {
            self.0 += bytes.len();
            Ok(())
        }
    }
    let mut counter = Counter(0);
    bincode::serde::encode_into_writer(value, &mut counter, config())
        .map_err(|e| CodecError::Encode(e.to_string()))?;
    Ok(counter.0)
}

/// Decodes one value that must fill `bytes` exactly.
pub fn decode_value<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let (value, used) = bincode::serde::decode_from_slice(bytes, config())
        .map_err(|e| CodecError::Malformed(e.to_string()))?;
    if used != bytes.len() {
        return Err(CodecError::TrailingBytes(bytes.len() - used));
    }
    Ok(value)
}

/// Frames [`Frame`]s for a socket: length-delimited, bincode inside.
///
/// Decoding refuses a length above `frame_size_max` before reading the body,
/// so a hostile length cannot make the node allocate.
#[derive(Clone, Copy, Debug)]
pub struct FrameCodec {
    frame_size_max: usize,
}

impl FrameCodec {
    /// A codec bounded by `frame_size_max` bytes of payload per frame.
    pub fn new(frame_size_max: usize) -> FrameCodec {
        FrameCodec { frame_size_max }
    }

    /// The bound on one frame's payload.
    pub fn frame_size_max(&self) -> usize {
        self.frame_size_max
    }

    /// Appends one frame to `dst` without an intermediate buffer: the length
    /// prefix is patched once the body is written. Writers append many frames
    /// to one buffer and write it once (batching).
    pub fn encode_frame(&self, frame: &Frame, dst: &mut BytesMut) -> Result<(), CodecError> {
        let start = dst.len();
        dst.put_u32(0);
        let mut writer = dst.writer();
        let written = bincode::serde::encode_into_std_write(frame, &mut writer, config());
        let dst = writer.into_inner();
        let size = match written {
            Ok(size) => size,
            Err(e) => {
                dst.truncate(start);
                return Err(CodecError::Encode(e.to_string()));
            }
        };
        if size > self.frame_size_max {
            dst.truncate(start);
            return Err(CodecError::FrameTooLarge { size, max: self.frame_size_max });
        }
        let prefix =
            u32::try_from(size).map_err(|_| CodecError::FrameTooLarge { size, max: self.frame_size_max })?;
        dst[start..start + LENGTH_PREFIX_BYTES].copy_from_slice(&prefix.to_be_bytes());
        Ok(())
    }
}

impl Decoder for FrameCodec {
    type Item = Frame;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, CodecError> {
        if src.len() < LENGTH_PREFIX_BYTES {
            return Ok(None);
        }
        let mut prefix = [0u8; LENGTH_PREFIX_BYTES];
        prefix.copy_from_slice(&src[..LENGTH_PREFIX_BYTES]);
        let size = u32::from_be_bytes(prefix) as usize;
        if size > self.frame_size_max {
            return Err(CodecError::FrameTooLarge { size, max: self.frame_size_max });
        }
        if src.len() < LENGTH_PREFIX_BYTES + size {
            src.reserve(LENGTH_PREFIX_BYTES + size - src.len());
            return Ok(None);
        }
        let frame = src.split_to(LENGTH_PREFIX_BYTES + size);
        decode_value(&frame[LENGTH_PREFIX_BYTES..]).map(Some)
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, CodecError> {
        match self.decode(src)? {
            Some(frame) => Ok(Some(frame)),
            None if src.is_empty() => Ok(None),
            None => Err(CodecError::Malformed(format!(
                "connection closed inside a frame ({} bytes pending)",
                src.len()
            ))),
        }
    }
}

impl Encoder<&Frame> for FrameCodec {
    type Error = CodecError;

    fn encode(&mut self, frame: &Frame, dst: &mut BytesMut) -> Result<(), CodecError> {
        self.encode_frame(frame, dst)
    }
}

impl Encoder<Frame> for FrameCodec {
    type Error = CodecError;

    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> Result<(), CodecError> {
        self.encode_frame(&frame, dst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::{Channel, Protocol};
    use crate::ids::GroupId;
    use bytes::Bytes;
    use proptest::prelude::*;

    fn envelope_strategy() -> impl Strategy<Value = Envelope> {
        let protocol = prop_oneof![
            Just(Protocol::Raft),
            Just(Protocol::Gossip),
            Just(Protocol::Membership),
            any::<u16>().prop_map(Protocol::Application),
        ];
        (any::<u64>(), any::<u64>(), protocol, any::<u64>(), proptest::collection::vec(any::<u8>(), 0..512))
            .prop_map(|(from, to, protocol, group, body)| Envelope {
                from: NodeId(from),
                to: NodeId(to),
                channel: Channel { protocol, group: GroupId(group) },
                body: Bytes::from(body).into(),
            })
    }

    proptest! {
        #[test]
        fn envelopes_round_trip_through_frames(envelopes in proptest::collection::vec(envelope_strategy(), 1..8), split in any::<prop::sample::Index>()) {
            let mut codec = FrameCodec::new(FRAME_SIZE_MAX_DEFAULT);
            let mut wire = BytesMut::new();
            for envelope in &envelopes {
                codec.encode_frame(&Frame::Message(envelope.clone()), &mut wire).unwrap();
            }
            // Deliver the bytes in two arbitrary pieces: frames must reassemble.
            let cut = split.index(wire.len() + 1);
            let mut src = BytesMut::from(&wire[..cut]);
            let mut decoded = Vec::new();
            while let Some(Frame::Message(e)) = codec.decode(&mut src).unwrap() {
                decoded.push(e);
            }
            src.extend_from_slice(&wire[cut..]);
            while let Some(frame) = codec.decode_eof(&mut src).unwrap() {
                match frame {
                    Frame::Message(e) => decoded.push(e),
                    Frame::Hello(_) => prop_assert!(false, "no hello was sent"),
                }
            }
            prop_assert_eq!(decoded, envelopes);
        }

        #[test]
        fn values_encode_as_bincode_does_into_buffers_of_their_size(envelope in envelope_strategy()) {
            let frame = Frame::Message(envelope);
            let encoded = encode_value(&frame).unwrap();
            prop_assert_eq!(&encoded, &bincode::serde::encode_to_vec(&frame, config()).unwrap());
            prop_assert_eq!(encoded.capacity(), encoded.len());
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let mut codec = FrameCodec::new(1024);
            let mut src = BytesMut::from(&bytes[..]);
            // Any result is fine; a panic is not.
            while let Ok(Some(_)) = codec.decode(&mut src) {}
            let _ = codec.decode_eof(&mut src);
        }
    }

    #[test]
    fn oversized_length_is_refused_before_the_body_arrives() {
        let mut codec = FrameCodec::new(1024);
        let mut src = BytesMut::new();
        src.put_u32(1025);
        match codec.decode(&mut src) {
            Err(CodecError::FrameTooLarge { size: 1025, max: 1024 }) => {}
            other => panic!("expected FrameTooLarge, got {other:?}"),
        }
    }

    #[test]
    fn oversized_message_is_refused_at_encoding() {
        let codec = FrameCodec::new(64);
        let envelope = Envelope {
            from: NodeId(1),
            to: NodeId(2),
            channel: Channel::single(Protocol::Gossip),
            body: Bytes::from(vec![7u8; 100]).into(),
        };
        let mut dst = BytesMut::new();
        assert!(matches!(
            codec.encode_frame(&Frame::Message(envelope), &mut dst),
            Err(CodecError::FrameTooLarge { max: 64, .. })
        ));
        assert!(dst.is_empty(), "a refused frame leaves nothing half-written");
    }

    #[test]
    fn truncated_frame_is_an_error_at_end_of_stream() {
        let mut codec = FrameCodec::new(1024);
        let mut wire = BytesMut::new();
        codec.encode_frame(&Frame::Hello(Hello::new(ClusterId(1), NodeId(2))), &mut wire).unwrap();
        let mut src = BytesMut::from(&wire[..wire.len() - 1]);
        assert!(codec.decode(&mut src).unwrap().is_none());
        assert!(matches!(codec.decode_eof(&mut src), Err(CodecError::Malformed(_))));
    }

    #[test]
    fn trailing_bytes_inside_a_frame_are_refused() {
        let mut payload = encode_value(&Frame::Hello(Hello::new(ClusterId(1), NodeId(2)))).unwrap();
        payload.push(0);
        let mut src = BytesMut::new();
        src.put_u32(payload.len() as u32);
        src.extend_from_slice(&payload);
        let mut codec = FrameCodec::new(1024);
        assert!(matches!(codec.decode(&mut src), Err(CodecError::TrailingBytes(1))));
    }
}
