#![warn(missing_docs)]
//! Concord's Raft manager: a pure Raft core inside an actix actor, with
//! in-memory and durable log stores.
//!
//! Layout:
//! - [`core`]: the deterministic protocol state machine — no IO, no clock,
//!   no async. Inputs (`step`, `tick`, `propose`, `read_index`, membership
//!   changes) produce one [`core::Ready`] batch, acknowledged by `advance`.
//!   One file per concern: `election`, `replication`, `read`, `membership`,
//!   `snapshot`, the in-memory `log`, `quorum` (weights, flexible quorums).
//! - [`actor`]: `RaftActor`, the actix shell — one timer for ticks,
//!   persistence off the event loop, ordered apply, the public messages
//!   (`Propose`, `ProposeEmpty`, `Read`, `GetStatus`, `Leader`, `LogStatus`,
//!   `ElectionHistory`, `StepDown`, `TransferLeader`, `TriggerElection`,
//!   `ChangeMembership`, `TakeSnapshot`, `UpdateConfig`, `Metrics`). Several
//!   groups share one transport, addressed by `GroupId`.
//! - [`machine`]: the `StateMachine` trait a host implements, wrapped with
//!   client sessions.
//! - [`session`]: client sessions for exactly-once commands.
//! - [`consistency`]: comparing replicas' state digests.
//! - [`storage`]: the `LogStore` / `StateStore` interface, in-memory,
//!   write-ahead-log (`storage::wal`) and redb implementations, and the
//!   conformance suite.
//! - [`linearizability`]: a checker for client histories, used by the
//!   simulation tests.
//! - [`error`]: typed errors.
pub mod actor;
pub mod consistency;
pub mod core;
pub mod error;
pub mod linearizability;
pub mod machine;
pub mod session;
pub mod storage;
mod waiters;
