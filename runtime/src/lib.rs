#![warn(missing_docs)]
//! The `concord` runtime: one process is one node running Raft groups, gossip
//! and the quorum manager over the TCP transport.
//!
//! Layout:
//! - [`config`]: the node configuration (TOML file and flags).
//! - [`http`]: the JSON HTTP API.
//! - [`state`]: the replicated state machines (key-value store, task queue).
//!
//! The node, its HTTP API, `concord ctl` and `concord demo` come as the
//! protocol crates land (issue 6).

pub mod config;
pub mod http;
pub mod state;
