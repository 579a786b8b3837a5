//! Concord's versioned gossip wire messages.
//!
//! `crdts` types never travel in their own serde layout at the top level (it
//! changed between releases): a value travels as a [`WireValue`] that names
//! its kind and the format of its payload, and clocks travel as Concord's own
//! [`WireClock`]. A new layout is a new [`ValueFormat`] or a new
//! [`GossipWire`] version, never a silent change.
//!
//! Version 2 added [`WireEntry::tracked`] and [`Message::Held`] (exact
//! convergence monitoring); a version 1 message is recognised and refused.

use crate::error::GossipError;
use crate::state::{Entry, MapField, Value, ValueKind};
use concord_transport::{codec, NodeId, Protocol, WireMessage};
use crdts::{GCounter, LWWReg, MVReg, Map, Orswot, PNCounter, VClock};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// Every gossip message, by wire version.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum GossipWire {
    /// Version 1, no longer spoken: its body is not decoded, and the
    /// receiver drops the message as bad.
    V1(Retired),
    /// Version 2.
    V2(Message),
}

/// The place of a retired wire version (its body is left undecoded).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retired;

impl WireMessage for GossipWire {
    const PROTOCOL: Protocol = Protocol::Gossip;
}

/// A vector clock on the wire: (node, counter) pairs in node order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireClock(pub Vec<(NodeId, u64)>);

impl From<&VClock<NodeId>> for WireClock {
    fn from(clock: &VClock<NodeId>) -> Self {
        WireClock(clock.dots.iter().map(|(node, counter)| (*node, *counter)).collect())
    }
}

impl From<&WireClock> for VClock<NodeId> {
    fn from(clock: &WireClock) -> Self {
        let mut out = VClock::new();
        for (node, counter) in &clock.0 {
            let slot = out.dots.entry(*node).or_insert(0);
            *slot = (*slot).max(*counter);
        }
        out.dots.retain(|_, counter| *counter > 0);
        out
    }
}

/// The encoding of a [`WireValue`]'s payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ValueFormat {
    /// bincode 2 of the serde layout of `crdts` 7.3.
    Crdts7Bincode,
}

/// A value on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireValue {
    /// The value's kind.
    pub kind: ValueKind,
    /// How `payload` is encoded.
    pub format: ValueFormat,
    /// The encoded value.
    pub payload: Vec<u8>,
}

impl WireValue {
    /// Encodes a value.
    pub fn encode(value: &Value) -> WireValue {
        let payload = match value {
            Value::LastWriterWins(v) => codec::encode_value(v),
            Value::MultiValue(v) => codec::encode_value(v),
            Value::Set(v) => codec::encode_value(v),
            Value::GrowCounter(v) => codec::encode_value(v),
            Value::Counter(v) => codec::encode_value(v),
            Value::Map(v) => codec::encode_value(v),
        };
        // Encoding in-memory crdts values into a Vec cannot fail.
        let payload = payload.unwrap_or_else(|e| panic!("encoding a {:?}: {e}", value.kind()));
        WireValue { kind: value.kind(), format: ValueFormat::Crdts7Bincode, payload }
    }

    /// Decodes a value received from a peer.
    pub fn decode(&self) -> Result<Value, GossipError> {
        fn de<T: serde::de::DeserializeOwned>(payload: &[u8]) -> Result<T, GossipError> {
            codec::decode_value(payload).map_err(|e| GossipError::BadValue(e.to_string()))
        }
        let ValueFormat::Crdts7Bincode = self.format;
        Ok(match self.kind {
            ValueKind::LastWriterWins => Value::LastWriterWins(de::<LWWReg<_, _>>(&self.payload)?),
            ValueKind::MultiValue => Value::MultiValue(de::<MVReg<_, _>>(&self.payload)?),
            ValueKind::Set => Value::Set(de::<Orswot<_, _>>(&self.payload)?),
            ValueKind::GrowCounter => Value::GrowCounter(de::<GCounter<_>>(&self.payload)?),
            ValueKind::Counter => Value::Counter(de::<PNCounter<_>>(&self.payload)?),
            ValueKind::Map => Value::Map(de::<Map<String, MapField, NodeId>>(&self.payload)?),
        })
    }
}

/// One key's version on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireEntry {
    /// The key.
    pub key: String,
    /// Its clock.
    pub clock: WireClock,
    /// Its value.
    pub value: WireValue,
    /// Updates of this version whose origins track their convergence:
    /// (origin, counter), each origin's latest tracked one, at most
    /// [`MARKS_PER_KEY_MAX`](crate::core::convergence::MARKS_PER_KEY_MAX).
    /// A node whose merge first covers one acknowledges it with [`Message::Held`].
    pub tracked: Vec<(NodeId, u64)>,
}

impl WireEntry {
    /// Encodes one key's entry.
    pub fn encode(key: &str, entry: &Entry) -> WireEntry {
        WireEntry {
            key: key.to_string(),
            clock: (&entry.clock).into(),
            value: WireValue::encode(&entry.value),
            tracked: Vec::new(),
        }
    }

    /// The same entry carrying `tracked` marks.
    pub fn with_tracked(mut self, tracked: Vec<(NodeId, u64)>) -> WireEntry {
        self.tracked = tracked;
        self
    }

    /// Decodes an entry received from a peer.
    pub fn decode(&self) -> Result<Entry, GossipError> {
        Ok(Entry { value: self.value.decode()?, clock: (&self.clock).into() })
    }
}

/// A member's state as SWIM spreads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum MemberStatus {
    /// Answering probes.
    Alive,
    /// Missed a probe; dead unless it refutes in time.
    Suspect,
    /// Declared failed.
    Dead,
    /// Left gracefully.
    Left,
}

/// What a member says about itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberMeta {
    /// Where the member listens, for transports that need an address.
    pub address: Option<SocketAddr>,
    /// Free-form tags (role, zone, version...).
    pub tags: BTreeMap<String, String>,
}

/// One membership fact, spread as a rumor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberUpdate {
    /// The member.
    pub node: NodeId,
    /// The member's incarnation: only the member raises it, to refute suspicion.
    pub incarnation: u64,
    /// Its status at that incarnation.
    pub status: MemberStatus,
    /// Its metadata.
    pub meta: MemberMeta,
}

/// One member's independent accusation of another (Lifeguard): `accuser`
/// probed `node` at `incarnation` and got no ack, directly or indirectly.
/// Distinct accusers shorten the suspicion timeout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Suspicion {
    /// The suspected member.
    pub node: NodeId,
    /// Its incarnation when accused.
    pub incarnation: u64,
    /// Who accuses it.
    pub accuser: NodeId,
}

/// A gossip exchange's content. Fields are filled in order of urgency when a
/// message is cut to `message_size_max`: membership, then state rumors (the
/// least transmitted first), then the digest.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exchange {
    /// Whether the receiver should answer with the rumors missing from `digest`.
    pub wants_reply: bool,
    /// Membership rumors.
    pub members: Vec<MemberUpdate>,
    /// Accusations of suspects (confirmations of a suspicion).
    pub suspicions: Vec<Suspicion>,
    /// State rumors: keys' current versions.
    pub entries: Vec<WireEntry>,
    /// Ids of the rumors the sender holds (a summary of recent updates, bounded
    /// by the rumor queue, never a list of every key).
    pub digest: Vec<u64>,
    /// The sender's Merkle root.
    pub root: u64,
    /// An order-independent hash of the (member, incarnation) pairs the
    /// sender holds up, itself included; 0 when not comparable. Two nodes
    /// whose digests differ exchange member lists (at most once per
    /// `member_sync_interval_ticks` each), so a member whose arrival rumor
    /// missed a node is not missed for ever.
    pub members_digest: u64,
}

/// Anti-entropy steps.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AntiEntropy {
    /// The sender's hashes of these tree nodes at `level`; the receiver answers
    /// with the children of those that differ.
    Nodes {
        /// Tree level (0 is the root).
        level: u8,
        /// (index, hash) pairs.
        nodes: Vec<(u32, u64)>,
    },
    /// The sender's keys, with version hashes, in buckets that differ.
    Keys {
        /// (bucket, [(key, version hash)]) groups; a bucket is never split.
        buckets: Vec<(u32, Vec<(String, u64)>)>,
    },
    /// Versions the receiver lacks or holds differently.
    Entries {
        /// The entries.
        entries: Vec<WireEntry>,
    },
    /// Keys whose versions the sender asks for.
    Request {
        /// The keys.
        keys: Vec<String>,
    },
}

/// Version 1 of the gossip protocol.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Message {
    /// A gossip round's message to one peer.
    Gossip(Exchange),
    /// The answer to a gossip message that wants a reply.
    GossipReply(Exchange),
    /// SWIM probe; `on_behalf_of` is set when probing for another member.
    Ping {
        /// Probe sequence number of the original prober.
        sequence: u64,
        /// The original prober, for an indirect probe.
        on_behalf_of: Option<NodeId>,
    },
    /// Answer to a ping.
    Ack {
        /// The ping's sequence number.
        sequence: u64,
        /// The original prober, for an indirect probe.
        on_behalf_of: Option<NodeId>,
    },
    /// Sent by a member probing for another when the target did not answer
    /// within its probe timeout: the prober learns that its helper is
    /// reachable, so the missing ack is not its own slowness (Lifeguard).
    Nack {
        /// The original prober's sequence number.
        sequence: u64,
    },
    /// Asks the receiver to probe `target` for the sender.
    PingRequest {
        /// The sender's probe sequence number.
        sequence: u64,
        /// The member to probe.
        target: NodeId,
    },
    /// A new member introduces itself to a seed.
    Join {
        /// The joiner.
        member: MemberUpdate,
    },
    /// A chunk of the seed's member list.
    JoinReply {
        /// Members.
        members: Vec<MemberUpdate>,
    },
    /// An anti-entropy step.
    AntiEntropy(AntiEntropy),
    /// A chunk of the sender's member list, sent when member digests differ.
    MemberSync {
        /// Members (the sender included).
        members: Vec<MemberUpdate>,
        /// Whether the receiver should answer with its own list.
        reply: bool,
    },
    /// Tells the origin of a tracked update that the sender now holds it
    /// (and every earlier update of the key by the origin): sent once, when
    /// a merge first covers the update.
    Held {
        /// The key.
        key: String,
        /// The origin's (the receiver's) counter of the update.
        counter: u64,
    },
}

/// The encoded size of a value in bytes (bincode, as the transport encodes it).
pub fn encoded_len<T: Serialize + ?Sized>(value: &T) -> usize {
    codec::encoded_len(value).unwrap_or(usize::MAX)
}

/// Bytes reserved for a message's own framing when packing items under
/// `message_size_max`.
pub const MESSAGE_OVERHEAD_BYTES: usize = 64;

/// Splits `items` into groups whose encoded sizes each fit `budget` bytes.
/// An item larger than `budget` alone is dropped and counted in the result.
pub fn chunk<T: Serialize>(items: Vec<T>, budget: usize) -> (Vec<Vec<T>>, usize) {
    let mut chunks = Vec::new();
    let mut current = Vec::new();
    let mut used = 0;
    let mut oversized = 0;
    for item in items {
        let size = encoded_len(&item);
        if size > budget {
            oversized += 1;
            continue;
        }
        if used + size > budget && !current.is_empty() {
            chunks.push(std::mem::take(&mut current));
            used = 0;
        }
        used += size;
        current.push(item);
    }
    if !current.is_empty() {
        chunks.push(current);
    }
    (chunks, oversized)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Operation, Store};

    #[test]
    fn every_value_kind_round_trips_through_its_wire_form() {
        let mut store = Store::new(8);
        let operations = [
            ("lww", Operation::Assign { value: b"v".to_vec(), timestamp: 5 }),
            ("mv", Operation::Write { value: b"v".to_vec() }),
            ("set", Operation::Add { element: "e".into() }),
            ("grow", Operation::Grow { by: 3 }),
            ("counter", Operation::Add64 { by: -3 }),
            ("map", Operation::MapWrite { field: "f".into(), value: b"v".to_vec() }),
        ];
        for (key, operation) in operations {
            store.apply(NodeId(1), key, operation).unwrap();
            let entry = store.get(key).unwrap();
            let wire = WireEntry::encode(key, entry);
            let body =
                GossipWire::V2(Message::Gossip(Exchange { entries: vec![wire], ..Exchange::default() }))
                    .to_body()
                    .unwrap();
            let GossipWire::V2(Message::Gossip(exchange)) = GossipWire::from_body(&body).unwrap() else {
                panic!("wrong message")
            };
            assert_eq!(&exchange.entries[0].decode().unwrap(), entry, "{key}");
        }
    }

    #[test]
    fn tracked_marks_and_acknowledgements_round_trip_and_version_1_is_recognised() {
        let mut store = Store::new(8);
        store.apply(NodeId(1), "k", Operation::Grow { by: 1 }).unwrap();
        let wire = WireEntry::encode("k", store.get("k").unwrap()).with_tracked(vec![(NodeId(1), 1)]);
        for message in [
            Message::AntiEntropy(AntiEntropy::Entries { entries: vec![wire.clone()] }),
            Message::Held { key: "k".into(), counter: 1 },
        ] {
            let body = GossipWire::V2(message.clone()).to_body().unwrap();
            assert_eq!(GossipWire::from_body(&body).unwrap(), GossipWire::V2(message));
        }
        let retired = GossipWire::V1(Retired).to_body().unwrap();
        assert_eq!(GossipWire::from_body(&retired).unwrap(), GossipWire::V1(Retired));
    }

    #[test]
    fn garbage_gives_typed_errors() {
        assert!(GossipWire::from_body(&[0xff, 0x13, 0x07]).is_err());
        let bad = WireValue { kind: ValueKind::Set, format: ValueFormat::Crdts7Bincode, payload: vec![9; 3] };
        assert!(matches!(bad.decode(), Err(GossipError::BadValue(_))));
    }

    #[test]
    fn chunks_respect_the_budget_and_drop_oversized_items() {
        let items: Vec<Vec<u8>> = (0..50).map(|i| vec![0u8; i * 10]).collect();
        let (chunks, oversized) = chunk(items, 200);
        assert!(chunks.iter().all(|c| encoded_len(c) <= 200 + 8), "a chunk exceeds the budget");
        assert_eq!(chunks.iter().map(Vec::len).sum::<usize>() + oversized, 50);
        assert!(oversized > 0);
    }
}
