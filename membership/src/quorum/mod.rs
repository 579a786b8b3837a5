//! Quorum arithmetic: voting configurations, policies, validation,
//! intersection checks for single-step changes, and plans of safe steps.
//!
//! - [`config`]: [`VotingConfig`], [`QuorumPolicy`], [`QuorumConfig`] and the
//!   quorum sizes and fault tolerance they imply.
//! - [`validate`](QuorumConfig::validate) and
//!   [`check_change`](QuorumConfig::check_change): what is safe.
//! - [`plan()`]: a target reached through single safe steps.
//! - [`error`]: why something is refused.

pub mod config;
pub mod error;
mod intersection;
pub mod plan;
mod validate;

#[cfg(test)]
mod tests;

pub use config::{
    FaultTolerance, QuorumConfig, QuorumPolicy, VotingConfig, Weight, VOTERS_MAX, WEIGHT_DEFAULT, WEIGHT_MAX,
};
pub use error::{DisjointQuorums, EditError, PlanError, QuorumKind, UnsafeChange, UnsafeConfig};
pub use plan::{plan, plan_leaving_last, PLAN_STEPS_MAX_DEFAULT};
