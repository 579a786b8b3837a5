//! Runnable examples, one per protocol and per way of embedding:
//! `cargo run -p concord-examples --example NAME`.
//!
//! - `raft_embedded`: Raft alone in a host application, with the host's own
//!   state machine, over the in-memory transport.
//! - `raft_task_queue`: the task queue of the reference scenario on three
//!   nodes over loopback TCP, surviving the loss of its leader.
//! - `raft_two_groups`: a `critical` and a `background` Raft group sharing
//!   one transport, tasks routed by group name.
