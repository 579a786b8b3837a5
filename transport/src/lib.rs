#![warn(missing_docs)]
//! Concord's shared transport: every protocol (Raft groups, gossip, the quorum
//! manager, a host's own) reaches a peer through one connection per peer.
//!
//! Layout:
//! - [`ids`]: `NodeId`, `ClusterId`, `GroupId`.
//! - [`envelope`]: the [`Envelope`] every message travels in, the [`Channel`]
//!   it is delivered to, and [`WireMessage`], the typed layer a protocol's
//!   message enum implements.
//! - [`codec`]: bincode inside length-delimited frames, the handshake, and
//!   `frame_size_max`. The only module that knows the wire format.
//! - [`transport`]: the [`Transport`] trait, [`Inbound`] deliveries, the
//!   [`Router`] from channel to actor, and [`PeerDown`] notices.
//! - [`memory`]: the in-memory implementation (one process, actix mailboxes).
//! - [`tcp`]: the TCP implementation (lazy connect, reconnect with backoff,
//!   bounded per-peer queues, batched writes, authenticated handshake).
//! - [`fault`]: drop, delay, duplication, reordering and partitions over any
//!   transport, for tests.
//! - [`sim`]: a deterministic simulated network and clock for the pure
//!   protocol cores, driven by one seed.

pub mod codec;
pub mod envelope;
pub mod error;
pub mod fault;
pub mod ids;
pub mod memory;
pub mod sim;
pub mod tcp;
pub mod transport;

pub use envelope::{Channel, Envelope, EnvelopeBody, Protocol, WireMessage};
pub use error::{CodecError, ConnectionError, SendError};
pub use ids::{ClusterId, GroupId, NodeId};
pub use memory::{MemoryNetwork, MemoryTransport};
pub use tcp::{TcpConfig, TcpTransport};
pub use transport::{Inbound, PeerDown, Router, Transport, TransportStats};
