//! Concord's Raft manager. To come (issue 3): a pure Raft core (election,
//! replication, snapshots, membership, reads) inside a `RaftActor`, with
//! in-memory and durable log stores.
