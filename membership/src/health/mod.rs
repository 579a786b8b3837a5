//! Quorum health from observations.
//!
//! - [`observations`]: liveness, RTTs, Raft progress, commit latencies and
//!   elections as observed, each within a named bound, plus partition
//!   (reachability below half) and split-brain (two leaders in one term)
//!   detection.
//! - [`report`]: the [`ClusterHealth`] answer and its [`HealthStatus`].
//! - [`window`]: the bounded sample window and percentiles.

pub mod observations;
pub mod report;
pub mod window;

#[cfg(test)]
mod tests;

pub use observations::{Liveness, NodeLiveness, ObservationLimits, Observations, RaftProgress};
pub use report::{ClusterHealth, HealthStatus};
pub use window::{percentile, Window};
