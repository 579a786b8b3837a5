#![warn(missing_docs)]
//! Concord's gossip coordinator: eventually consistent state and liveness for
//! clusters of hundreds to thousands of nodes.
//!
//! A pure, deterministic core inside a thin actix actor:
//! - [`config`]: every period and bound, with defaults ([`GossipConfig`]).
//! - [`core`]: the [`GossipCore`] state machine (no IO, no clock; ticks and
//!   a seeded RNG): [`core::dissemination`] (rumors), [`core::swim`]
//!   (membership, failure detection), [`core::merkle`] and
//!   [`core::anti_entropy`] (reconciliation), [`core::convergence`].
//! - [`state`]: the replicated key-value store of `crdts` values with a
//!   vector clock per key and a conflict history.
//! - [`wire`]: the versioned wire messages ([`GossipWire`]).
//! - [`sim`]: adapters that run cores on the transport's simulator, and a
//!   round-synchronous harness for large convergence measurements.
//! - [`actor`]: [`GossipActor`], the actix shell, and its public messages.
//! - [`error`]: typed errors.

pub mod actor;
pub mod config;
pub mod core;
pub mod error;
pub mod sim;
pub mod state;
pub mod wire;

pub use crate::actor::GossipActor;
pub use crate::config::{GossipConfig, Mode};
pub use crate::core::{Event, GossipCore, Metrics, Output};
pub use crate::error::GossipError;
pub use crate::state::{Operation, ReadValue, ValueKind};
pub use crate::wire::{GossipWire, MemberMeta, MemberStatus, MemberUpdate, Message};
