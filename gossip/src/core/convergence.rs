//! Local estimate of how far one of our updates has spread.
//!
//! A node cannot see the whole cluster, but its gossip peers are uniform
//! random samples of it: each exchange tells whether that peer holds the
//! update (its root equals ours, or it sent or listed the version). The
//! fraction of holders among the last `SAMPLES_LEN` samples estimates the
//! fraction of the cluster that has it. Exact figures come from the
//! simulator, which sees every node.

use concord_transport::NodeId;
use crdts::Dot;
use std::collections::VecDeque;

/// Samples kept per tracked update.
pub const SAMPLES_LEN: usize = 16;

/// One tracked update.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tracked {
    /// The key.
    pub key: String,
    /// The update.
    pub dot: Dot<NodeId>,
    /// Tick the update was made.
    pub started_tick: u64,
    samples: VecDeque<bool>,
    /// First tick the estimate reached the threshold.
    pub threshold_tick: Option<u64>,
    /// First tick every one of `SAMPLES_LEN` consecutive samples held it.
    pub all_tick: Option<u64>,
}

/// A report on one update, for the `Convergence` query.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvergenceReport {
    /// The key.
    pub key: String,
    /// The update.
    pub dot: Dot<NodeId>,
    /// Estimated fraction of the cluster holding it.
    pub fraction_estimate: f64,
    /// Estimated number of nodes holding it.
    pub nodes_estimate: usize,
    /// Ticks from the update until the estimate reached the threshold.
    pub ticks_to_threshold: Option<u64>,
    /// Ticks from the update until every recent sample held it.
    pub ticks_to_all: Option<u64>,
    /// Milliseconds until the threshold (ticks times `tick_ms`).
    pub ms_to_threshold: Option<u64>,
    /// Milliseconds until every recent sample held it.
    pub ms_to_all: Option<u64>,
}

impl Tracked {
    /// Starts tracking an update made at `tick`.
    pub fn new(key: String, dot: Dot<NodeId>, tick: u64) -> Tracked {
        Tracked {
            key,
            dot,
            started_tick: tick,
            samples: VecDeque::new(),
            threshold_tick: None,
            all_tick: None,
        }
    }

    /// Records whether one sampled peer holds the update.
    pub fn sample(&mut self, holds: bool, tick: u64, threshold: f64) {
        if self.samples.len() == SAMPLES_LEN {
            self.samples.pop_front();
        }
        self.samples.push_back(holds);
        if self.samples.len() == SAMPLES_LEN {
            let fraction = self.fraction();
            if fraction >= threshold && self.threshold_tick.is_none() {
                self.threshold_tick = Some(tick);
            }
            if fraction >= 1.0 && self.all_tick.is_none() {
                self.all_tick = Some(tick);
            }
        }
    }

    /// Fraction of holders among the samples (we hold it, so 1 sample of 1 with none).
    pub fn fraction(&self) -> f64 {
        if self.samples.is_empty() {
            return 0.0;
        }
        self.samples.iter().filter(|h| **h).count() as f64 / self.samples.len() as f64
    }

    /// The report for a cluster of `cluster_size` nodes ticking every `tick_ms`.
    pub fn report(&self, cluster_size: usize, tick_ms: u64) -> ConvergenceReport {
        let fraction = self.fraction();
        let ticks_to_threshold = self.threshold_tick.map(|t| t - self.started_tick);
        let ticks_to_all = self.all_tick.map(|t| t - self.started_tick);
        ConvergenceReport {
            key: self.key.clone(),
            dot: self.dot,
            fraction_estimate: fraction,
            nodes_estimate: ((fraction * cluster_size as f64).round() as usize).max(1),
            ticks_to_threshold,
            ticks_to_all,
            ms_to_threshold: ticks_to_threshold.map(|t| t * tick_ms),
            ms_to_all: ticks_to_all.map(|t| t * tick_ms),
        }
    }
}
