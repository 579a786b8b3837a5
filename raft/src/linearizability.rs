//! A linearizability checker for client histories (Wing & Gong's search
//! with Lowe's memoization of visited configurations), used by the
//! simulation tests. Linearizability is local (Herlihy & Wing), so a
//! key-value history is checked one key — one register — at a time.

use std::collections::{BTreeMap, HashSet};
use std::hash::Hash;

/// A sequential specification: the state after applying `op`, if `op` (with
/// the result it observed) is legal in this state.
pub trait Model: Clone + Eq + Hash {
    /// An operation together with what it returned.
    type Op;
    /// The next state, or `None` if `op` cannot happen here.
    fn step(&self, op: &Self::Op) -> Option<Self>;
}

/// One operation of a history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation<Op> {
    /// When the client invoked it.
    pub invoke: u64,
    /// When it returned; `None` if it never did (it may or may not have
    /// taken effect, at any time after `invoke`).
    pub response: Option<u64>,
    /// The operation and its result.
    pub op: Op,
}

/// A history that has no linearization.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("history of {operations} operations is not linearizable (longest linearizable prefix: {prefix})")]
pub struct NotLinearizable {
    /// Operations in the history.
    pub operations: usize,
    /// Most operations linearized by any path of the search.
    pub prefix: usize,
}

/// Bound on configurations the search visits before it gives up and
/// reports the history as unverified (an error too: never a silent pass).
pub const SEARCH_STATES_MAX: usize = 5_000_000;

/// Checks that `history`, starting from `initial`, is linearizable.
pub fn check<M: Model>(initial: &M, history: &[Operation<M::Op>]) -> Result<(), NotLinearizable> {
    let n = history.len();
    let words = n.div_ceil(64);
    let completed: usize = history.iter().filter(|o| o.response.is_some()).count();
    let end = |o: &Operation<M::Op>| o.response.unwrap_or(u64::MAX);
    let fail = |prefix| Err(NotLinearizable { operations: n, prefix });
    let mut visited: HashSet<(Vec<u64>, M)> = HashSet::new();
    // Depth-first: (linearized set, state, completed ops linearized).
    let mut stack: Vec<(Vec<u64>, M, usize)> = vec![(vec![0; words], initial.clone(), 0)];
    let mut best = 0;
    while let Some((done, state, done_completed)) = stack.pop() {
        if done_completed == completed {
            return Ok(());
        }
        let is_done = |i: usize| done[i / 64] & (1 << (i % 64)) != 0;
        // An operation can go next unless some pending operation returned
        // before it was invoked (equal times count as concurrent).
        let horizon = (0..n).filter(|&i| !is_done(i)).map(|i| end(&history[i])).min().unwrap_or(u64::MAX);
        for i in (0..n).filter(|&i| !is_done(i) && history[i].invoke <= horizon) {
            let Some(next) = state.step(&history[i].op) else { continue };
            let mut next_done = done.clone();
            next_done[i / 64] |= 1 << (i % 64);
            let next_completed = done_completed + usize::from(history[i].response.is_some());
            best = best.max(next_done.iter().map(|w| w.count_ones() as usize).sum());
            if visited.insert((next_done.clone(), next.clone())) {
                if visited.len() > SEARCH_STATES_MAX {
                    return fail(best);
                }
                stack.push((next_done, next, next_completed));
            }
        }
    }
    fail(best)
}

/// A register: the model of one key of a key-value store.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Register(pub Option<u64>);

/// An operation on a [`Register`] with its result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegisterOp {
    /// Writes a value.
    Write(u64),
    /// Read and saw this value.
    Read(Option<u64>),
}

impl Model for Register {
    type Op = RegisterOp;

    fn step(&self, op: &RegisterOp) -> Option<Register> {
        match *op {
            RegisterOp::Write(v) => Some(Register(Some(v))),
            RegisterOp::Read(seen) => (seen == self.0).then_some(*self),
        }
    }
}

/// Checks a key-value history key by key; each key starts empty.
pub fn check_kv<K: Ord + Clone>(history: &[(K, Operation<RegisterOp>)]) -> Result<(), (K, NotLinearizable)> {
    let mut by_key: BTreeMap<K, Vec<Operation<RegisterOp>>> = BTreeMap::new();
    for (key, op) in history {
        by_key.entry(key.clone()).or_default().push(op.clone());
    }
    for (key, ops) in by_key {
        check(&Register::default(), &ops).map_err(|e| (key, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(invoke: u64, response: Option<u64>, op: RegisterOp) -> Operation<RegisterOp> {
        Operation { invoke, response, op }
    }

    use RegisterOp::{Read, Write};

    #[test]
    fn concurrent_operations_may_take_effect_in_either_order() {
        let history = [op(0, Some(10), Write(1)), op(1, Some(11), Write(2)), op(12, Some(13), Read(Some(1)))];
        check(&Register::default(), &history).unwrap();
    }

    #[test]
    fn a_stale_read_after_a_completed_write_is_rejected() {
        let history = [op(0, Some(1), Write(1)), op(2, Some(3), Write(2)), op(4, Some(5), Read(Some(1)))];
        let err = check(&Register::default(), &history).unwrap_err();
        assert_eq!(err.operations, 3);
    }

    #[test]
    fn a_read_of_a_value_never_written_is_rejected() {
        assert!(check(&Register::default(), &[op(0, Some(1), Read(Some(9)))]).is_err());
    }

    #[test]
    fn reads_cannot_go_back_in_time() {
        // Write(2) overlaps both reads, but once a read saw 2 a later read
        // cannot see 1 again.
        let history = [
            op(0, Some(1), Write(1)),
            op(2, Some(20), Write(2)),
            op(3, Some(4), Read(Some(2))),
            op(5, Some(6), Read(Some(1))),
        ];
        assert!(check(&Register::default(), &history).is_err());
    }

    #[test]
    fn an_instant_operation_is_linearizable() {
        let history = [op(0, Some(1), Write(1)), op(5, Some(5), Read(Some(1)))];
        check(&Register::default(), &history).unwrap();
    }

    #[test]
    fn a_write_that_never_returned_may_or_may_not_have_happened() {
        let took_effect = [op(0, None, Write(7)), op(5, Some(6), Read(Some(7)))];
        check(&Register::default(), &took_effect).unwrap();
        let did_not = [op(0, None, Write(7)), op(5, Some(6), Read(None))];
        check(&Register::default(), &did_not).unwrap();
    }

    #[test]
    fn keys_are_checked_independently() {
        let history = [
            ("a", op(0, Some(1), Write(1))),
            ("b", op(0, Some(1), Write(2))),
            ("a", op(2, Some(3), Read(Some(1)))),
            ("b", op(2, Some(3), Read(Some(1)))),
        ];
        assert_eq!(check_kv(&history).unwrap_err().0, "b");
    }
}
