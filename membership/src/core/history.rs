//! The audit history of operations.

use super::io::{OperationId, Outcome, RequestId};
use crate::quorum::QuorumConfig;
use serde::{Deserialize, Serialize};

/// Who asked for an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// An operator request.
    Operator(RequestId),
    /// The core itself (join, promotion, failed-voter replacement, leave).
    Automatic,
}

/// One finished operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryRecord {
    /// The operation.
    pub operation: OperationId,
    /// Who asked.
    pub origin: Origin,
    /// What it did, in words.
    pub description: String,
    /// The configuration before.
    pub from: QuorumConfig,
    /// The configuration aimed at.
    pub target: QuorumConfig,
    /// Configuration changes committed (rollback steps included).
    pub steps_committed: usize,
    /// How it ended.
    pub outcome: Outcome,
    /// When it started.
    pub started_ms: u64,
    /// When it ended.
    pub finished_ms: u64,
}
