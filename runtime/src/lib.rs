#![warn(missing_docs)]
//! The `concord` runtime: one process is one node running Raft groups, gossip
//! and the quorum manager over the TCP transport.
//!
//! Layout:
//! - [`cli`]: the command line.
//! - [`ctl`]: `concord ctl`, one HTTP request per verb.
//! - [`config`]: the node configuration (TOML file and flags).
//! - [`demo`]: `concord demo`, the reference scenario in one process.
//! - [`node`]: one node — transport, a Raft actor per group on its write-ahead log, the forwarder.
//! - [`forward`]: proposals forwarded to the leader over the shared transport.
//! - [`latency`]: the proposal-latency histogram behind `/metrics`.
//! - [`load`]: `concord load`, the benchmark load generator.
//! - [`http`]: the JSON HTTP API.
//! - [`machine`]: the state behind Raft's `StateMachine` trait; queries.
//! - [`worker`]: task workers that claim and complete tasks through the log.
//! - [`report`]: Raft reports in the reference JSON shapes.
//! - [`state`]: the replicated state machines (key-value store, task queue).
//!
//! The node, its HTTP API, `concord ctl` and `concord demo` come as the
//! protocol crates land (issue 6).

pub mod cli;
pub mod config;
pub mod ctl;
pub mod demo;
pub mod forward;
pub mod http;
pub mod latency;
pub mod load;
pub mod machine;
pub mod node;
pub mod report;
pub mod state;
pub mod worker;
