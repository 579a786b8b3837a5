//! A fixed-bucket latency histogram for `/metrics`: lock-free counters, one
//! per bucket, so recording on the proposal path costs a few atomic adds.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the proposal-latency buckets, in microseconds (the
/// Prometheus `le` labels, in seconds, are these divided by 1,000,000).
/// They start at 100 µs because a commit on a local disk takes well under a
/// millisecond. The last, implicit bucket is `+Inf`.
pub const PROPOSAL_LATENCY_BUCKETS_US: [u64; 15] = [
    100, 250, 500, 1_000, 2_000, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
    2_500_000, 5_000_000,
];

/// Counts of durations falling in each of [`PROPOSAL_LATENCY_BUCKETS_US`]
/// (plus `+Inf`), their sum and their number.
#[derive(Debug, Default)]
pub struct LatencyHistogram {
    /// Non-cumulative counts: `buckets[i]` holds durations in
    /// `(bound[i-1], bound[i]]`; the last slot is `+Inf`.
    buckets: [AtomicU64; PROPOSAL_LATENCY_BUCKETS_US.len() + 1],
    sum_us: AtomicU64,
    count: AtomicU64,
}

/// A histogram read at one moment, in Prometheus' cumulative form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistogramSnapshot {
    /// `(upper bound in µs, durations at or below it)`, one per bound of
    /// [`PROPOSAL_LATENCY_BUCKETS_US`], cumulative.
    pub cumulative: Vec<(u64, u64)>,
    /// Every duration recorded (the `+Inf` bucket).
    pub count: u64,
    /// Sum of the durations, in microseconds.
    pub sum_us: u64,
}

impl LatencyHistogram {
    /// Records one duration.
    pub fn record(&self, elapsed: Duration) {
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let slot = PROPOSAL_LATENCY_BUCKETS_US
            .iter()
            .position(|&bound_us| micros <= bound_us)
            .unwrap_or(PROPOSAL_LATENCY_BUCKETS_US.len());
        self.buckets[slot].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(micros, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// The counts now, cumulative.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut running = 0;
        let cumulative = PROPOSAL_LATENCY_BUCKETS_US
            .iter()
            .zip(&self.buckets)
            .map(|(&bound, count)| {
                running += count.load(Ordering::Relaxed);
                (bound, running)
            })
            .collect();
        let count = running + self.buckets[PROPOSAL_LATENCY_BUCKETS_US.len()].load(Ordering::Relaxed);
        HistogramSnapshot { cumulative, count, sum_us: self.sum_us.load(Ordering::Relaxed) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_land_in_the_first_bucket_that_holds_them_and_counts_are_cumulative() {
        let histogram = LatencyHistogram::default();
        histogram.record(Duration::from_micros(80)); // <= 100 µs
        histogram.record(Duration::from_micros(500)); // <= 500 µs (bounds are inclusive)
        histogram.record(Duration::from_millis(1)); // <= 1 ms
        histogram.record(Duration::from_millis(7)); // <= 10 ms
        histogram.record(Duration::from_secs(60)); // +Inf only
        let snapshot = histogram.snapshot();
        assert_eq!(snapshot.cumulative[0], (100, 1));
        assert_eq!(snapshot.cumulative[1], (250, 1));
        assert_eq!(snapshot.cumulative[2], (500, 2));
        assert_eq!(snapshot.cumulative[3], (1_000, 3));
        assert_eq!(snapshot.cumulative[6], (10_000, 4));
        assert_eq!(snapshot.cumulative.last(), Some(&(5_000_000, 4)));
        assert_eq!(snapshot.count, 5);
        assert_eq!(snapshot.sum_us, 80 + 500 + 1_000 + 7_000 + 60_000_000);
    }
}
