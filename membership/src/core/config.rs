//! The core's settings and bounds, with defaults.

use crate::health::ObservationLimits;
use concord_transport::NodeId;
use serde::{Deserialize, Serialize};

/// Settings of a [`super::QuorumCore`]. Every queue and window has its bound
/// here.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoreConfig {
    /// The node this core runs on.
    pub local: NodeId,
    /// A voter dead this long counts as permanently failed and is replaced
    /// (or removed). Gossip can flap; the window keeps one missed heartbeat
    /// from costing a configuration change.
    pub failed_window_ms: u64,
    /// A learner within this many entries of the commit index is caught up
    /// and may be promoted.
    pub learner_lag_max: u64,
    /// Automatic removals never take the voter count below this.
    pub voters_min: usize,
    /// Learners are promoted automatically while there are fewer voters than
    /// this; odd, because an even count tolerates no more failures than the
    /// odd count below it.
    pub voters_target: usize,
    /// Whether nodes gossip reports alive join the group as learners.
    pub join_automatically: bool,
    /// Learners at most; automatic joins stop there.
    pub learners_max: usize,
    /// An automatic operation that failed once proposed (Raft refused it for
    /// a passing reason, such as a new leader that has not committed in its
    /// term yet, or it timed out) is tried again after this long, doubled
    /// after each further failure.
    pub automatic_retry_ms: u64,
    /// Bound on that backoff.
    pub automatic_retry_ms_max: u64,
    /// Operator requests queued behind the operation in flight; more are
    /// refused.
    pub pending_requests_max: usize,
    /// Quorum verifications awaiting their answer; more are refused.
    pub verifications_max: usize,
    /// Finished operations kept in the history.
    pub history_len_max: usize,
    /// Longest plan of single steps.
    pub plan_steps_max: usize,
    /// A proposed change not answered within this is reported overdue (it
    /// is still awaited: Raft may yet commit it). Also how long a step waits
    /// for a reachable quorum before the operation fails.
    pub change_timeout_ms: u64,
    /// A verification not answered within this is taken as failed.
    pub verify_timeout_ms: u64,
    /// A learner not caught up within this fails the operation promoting it.
    pub catch_up_timeout_ms: u64,
    /// Performance recommendations must win at least this share of latency.
    pub latency_gain_min_percent: u64,
    /// Outputs held between two [`super::QuorumCore::take_outputs`] calls;
    /// exceeding it means the caller stopped taking them, a broken contract.
    pub outputs_max: usize,
    /// Bounds on observations.
    pub observations: ObservationLimits,
}

impl CoreConfig {
    /// Defaults for node `local`: 60 s failure window, 5 voters targeted, at
    /// least 3.
    pub fn new(local: NodeId) -> CoreConfig {
        CoreConfig {
            local,
            failed_window_ms: 60_000,
            learner_lag_max: 100,
            voters_min: 3,
            voters_target: 5,
            join_automatically: true,
            learners_max: 16,
            automatic_retry_ms: 1_000,
            automatic_retry_ms_max: 30_000,
            pending_requests_max: 16,
            verifications_max: 16,
            history_len_max: 256,
            plan_steps_max: crate::quorum::PLAN_STEPS_MAX_DEFAULT,
            change_timeout_ms: 30_000,
            verify_timeout_ms: 10_000,
            catch_up_timeout_ms: 120_000,
            latency_gain_min_percent: 20,
            outputs_max: 4_096,
            observations: ObservationLimits::default(),
        }
    }

    /// Refuses settings the core cannot honour.
    pub fn validate(&self) -> Result<(), CoreConfigError> {
        if self.voters_min == 0 || self.voters_min > self.voters_target {
            return Err(CoreConfigError::VotersMin {
                voters_min: self.voters_min,
                voters_target: self.voters_target,
            });
        }
        if self.voters_target % 2 == 0 {
            return Err(CoreConfigError::EvenVotersTarget(self.voters_target));
        }
        if self.outputs_max == 0
            || self.history_len_max == 0
            || self.plan_steps_max == 0
            || self.automatic_retry_ms == 0
        {
            return Err(CoreConfigError::ZeroBound);
        }
        if self.automatic_retry_ms_max < self.automatic_retry_ms {
            return Err(CoreConfigError::RetryBound {
                retry_ms: self.automatic_retry_ms,
                retry_ms_max: self.automatic_retry_ms_max,
            });
        }
        Ok(())
    }
}

/// Why [`CoreConfig::validate`] refuses settings.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CoreConfigError {
    /// `voters_min` must be at least 1 and at most `voters_target`.
    #[error("voters_min {voters_min} must be within 1..={voters_target} (voters_target)")]
    VotersMin {
        /// The minimum.
        voters_min: usize,
        /// The target.
        voters_target: usize,
    },
    /// An even target adds a voter without adding tolerance.
    #[error("voters_target {0} is even")]
    EvenVotersTarget(usize),
    /// `outputs_max`, `history_len_max`, `plan_steps_max` and
    /// `automatic_retry_ms` must be positive.
    #[error("a bound is 0")]
    ZeroBound,
    /// The retry backoff's bound is below its start.
    #[error("automatic_retry_ms_max {retry_ms_max} is below automatic_retry_ms {retry_ms}")]
    RetryBound {
        /// The first backoff.
        retry_ms: u64,
        /// The bound.
        retry_ms_max: u64,
    },
}
