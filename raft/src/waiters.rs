//! The actor's proposers waiting for their entries to be applied, by log
//! index. A leader hands out indexes in increasing order and entries are
//! applied in that order, so a queue sorted by index serves both ends in
//! constant time; an index arriving out of order is placed by binary search.
//!
//! Bound: one waiter per log entry not yet applied, so at most the core's
//! `max_log_entries` (proposals past it are refused).

use crate::core::types::Index;
use std::collections::VecDeque;

/// Values keyed by log index, kept in index order.
#[derive(Debug)]
pub(crate) struct Waiters<T> {
    queue: VecDeque<(Index, T)>,
}

impl<T> Default for Waiters<T> {
    fn default() -> Self {
        Waiters { queue: VecDeque::new() }
    }
}

impl<T> Waiters<T> {
    /// Adds the waiter of `index`; returns the one it replaces, if any.
    pub(crate) fn insert(&mut self, index: Index, value: T) -> Option<T> {
        if self.queue.back().is_none_or(|(last, _)| *last < index) {
            self.queue.push_back((index, value));
            return None;
        }
        match self.queue.binary_search_by_key(&index, |(i, _)| *i) {
            Ok(position) => Some(std::mem::replace(&mut self.queue[position].1, value)),
            Err(position) => {
                self.queue.insert(position, (index, value));
                None
            }
        }
    }

    /// Removes the waiter of `index`.
    pub(crate) fn remove(&mut self, index: Index) -> Option<T> {
        if self.queue.front().is_some_and(|(first, _)| *first == index) {
            return self.queue.pop_front().map(|(_, value)| value);
        }
        let position = self.queue.binary_search_by_key(&index, |(i, _)| *i).ok()?;
        self.queue.remove(position).map(|(_, value)| value)
    }

    /// Removes every waiter through `index`, in index order.
    pub(crate) fn take_through(&mut self, index: Index) -> Vec<(Index, T)> {
        let end = self.queue.partition_point(|(i, _)| *i <= index);
        self.queue.drain(..end).collect()
    }

    /// Removes every waiter, in index order.
    pub(crate) fn take_all(&mut self) -> Vec<(Index, T)> {
        self.queue.drain(..).collect()
    }

    /// Waiters held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// Follows a `BTreeMap` through any sequence of operations.
    #[test]
    fn behaves_as_an_ordered_map() {
        let mut waiters = Waiters::default();
        let mut model = BTreeMap::new();
        let mut state = 12_345u64;
        let mut next = || {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            state >> 33
        };
        for step in 0..20_000u64 {
            let index = next() % 64;
            match next() % 5 {
                0 | 1 => assert_eq!(waiters.insert(index, step), model.insert(index, step)),
                2 => assert_eq!(waiters.remove(index), model.remove(&index)),
                3 => {
                    let expected: Vec<(Index, u64)> = model.range(..=index).map(|(i, v)| (*i, *v)).collect();
                    model.retain(|i, _| *i > index);
                    assert_eq!(waiters.take_through(index), expected);
                }
                _ if step % 97 == 0 => {
                    let expected: Vec<(Index, u64)> = std::mem::take(&mut model).into_iter().collect();
                    assert_eq!(waiters.take_all(), expected);
                }
                _ => {
                    let index = model.keys().next_back().map_or(0, |last| last + 1);
                    assert_eq!(waiters.insert(index, step), model.insert(index, step));
                }
            }
            assert_eq!(waiters.len(), model.len());
        }
    }
}
