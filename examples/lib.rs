//! Runnable examples, one per protocol and per way of embedding:
//! `cargo run -p concord-examples --example NAME`.
//!
//! - `raft_embedded`: Raft alone in a host application, with the host's own
//!   state machine, over the in-memory transport.
//! - `raft_task_queue`: the task queue of the reference scenario on three
//!   nodes over loopback TCP, surviving the loss of its leader.
//! - `raft_two_groups`: a 5-member `critical` and a 3-member `background`
//!   Raft group on five nodes sharing one transport, tasks routed by group
//!   name (non-members forward).
//! - `gossip_cluster`: 200 gossip nodes in one process converging on an
//!   update and resolving a concurrent write the same way everywhere.
//! - `quorum_replace`: the quorum manager replacing a dead voter of five by a
//!   caught-up learner once the failure window has passed.
//!
//! `cargo test -p concord-examples` builds every example and runs the last
//! three, checking what they print.
