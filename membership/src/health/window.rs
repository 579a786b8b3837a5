//! A bounded window of recent samples.

use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// The newest `len_max` samples: pushing into a full window drops the oldest,
/// so memory stays bounded however long the cluster runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window<T> {
    samples: VecDeque<T>,
    len_max: usize,
}

impl<T> Window<T> {
    /// An empty window of at most `len_max` samples (at least 1).
    pub fn new(len_max: usize) -> Window<T> {
        let len_max = len_max.max(1);
        Window { samples: VecDeque::with_capacity(len_max.min(1024)), len_max }
    }

    /// Adds `sample`, dropping the oldest when full.
    pub fn push(&mut self, sample: T) {
        if self.samples.len() == self.len_max {
            self.samples.pop_front();
        }
        self.samples.push_back(sample);
    }

    /// Samples, oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &T> + ExactSizeIterator {
        self.samples.iter()
    }

    /// The newest sample.
    pub fn last(&self) -> Option<&T> {
        self.samples.back()
    }

    /// Number of samples held.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether no sample is held.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }
}

/// The nearest-rank percentile `p` (0..=100) of `values`; `None` when empty.
pub fn percentile(values: impl IntoIterator<Item = u64>, p: u32) -> Option<u64> {
    let mut sorted: Vec<u64> = values.into_iter().collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_unstable();
    // Nearest rank: ceil(p / 100 × n), as a 1-based index.
    let rank = (sorted.len() * p.min(100) as usize).div_ceil(100).max(1);
    Some(sorted[rank - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_window_forgets_its_oldest_sample() {
        let mut window = Window::new(3);
        for sample in 1..=5 {
            window.push(sample);
        }
        assert_eq!(window.iter().copied().collect::<Vec<_>>(), vec![3, 4, 5]);
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let values: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(values.iter().copied(), 50), Some(50));
        assert_eq!(percentile(values.iter().copied(), 99), Some(99));
        assert_eq!(percentile([7], 99), Some(7));
        assert_eq!(percentile([], 50), None);
    }
}
