//! Concord's quorum membership manager. To come (issue 5): a pure core that
//! computes quorum health and recommendations inside a `QuorumManager` actor
//! that changes Raft configurations only through Raft.
