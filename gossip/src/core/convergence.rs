//! Exact convergence of this node's recent updates, counted from acknowledgements.
//!
//! The origin of an update marks it tracked (at most its last
//! `tracked_updates_max` updates). The mark travels with the key's entry on
//! the wire ([`WireEntry::tracked`](crate::wire::WireEntry::tracked)) through
//! rumors, push/pull exchanges and anti-entropy, and every node keeps the
//! marks of the keys it holds ([`Marks`]). A node whose merge first covers a
//! marked update sends its origin one [`Message::Held`](crate::wire::Message::Held);
//! the origin counts the distinct holders among the members it holds live
//! (itself included) and records the tick at which they first reach the
//! threshold and then all of them.
//!
//! An acknowledgement of `(key, origin, counter)` covers every tracked
//! update of that key by that origin up to `counter`: the key's clock holds
//! the origin's counter, so a node holding a later update holds the earlier.

use concord_transport::NodeId;
use crdts::Dot;
use std::collections::{HashMap, HashSet, VecDeque};

/// Bound on keys whose tracked marks a node keeps (oldest key dropped first;
/// its later forwards then travel unmarked and are not acknowledged).
pub const MARKED_KEYS_LEN_MAX: usize = 4096;

/// Bound on tracked marks carried by one key's entry (one per origin, its
/// latest tracked update of the key).
pub const MARKS_PER_KEY_MAX: usize = 8;

/// Bound on the holders counted for one update (a cluster is smaller).
pub const HOLDERS_LEN_MAX: usize = 65_536;

/// One tracked update of ours.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tracked {
    /// The key.
    pub key: String,
    /// The update.
    pub dot: Dot<NodeId>,
    /// Tick the update was made.
    pub started_tick: u64,
    /// Nodes that acknowledged holding it (ourselves excluded).
    holders: HashSet<NodeId>,
    /// Holders among the live members at the last count (kept up to date
    /// per acknowledgement, recounted when the live members are refreshed).
    live_holders: usize,
    /// First tick the live holders reached the threshold of the live members.
    pub threshold_tick: Option<u64>,
    /// First tick every live member held it.
    pub all_tick: Option<u64>,
}

/// A report on one update, for the `Convergence` query.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvergenceReport {
    /// The key.
    pub key: String,
    /// The update.
    pub dot: Dot<NodeId>,
    /// Live members known to hold it, the origin included.
    pub nodes: usize,
    /// Live members counted, the origin included.
    pub members: usize,
    /// `nodes / members`.
    pub fraction: f64,
    /// Ticks (gossip rounds) from the update until the holders first reached
    /// the threshold of the live members.
    pub ticks_to_threshold: Option<u64>,
    /// Ticks from the update until every live member first held it.
    pub ticks_to_all: Option<u64>,
    /// Milliseconds until the threshold (ticks times `tick_ms`).
    pub ms_to_threshold: Option<u64>,
    /// Milliseconds until all.
    pub ms_to_all: Option<u64>,
}

impl Tracked {
    /// Starts tracking an update made at `tick`.
    pub fn new(key: String, dot: Dot<NodeId>, tick: u64) -> Tracked {
        Tracked {
            key,
            dot,
            started_tick: tick,
            holders: HashSet::new(),
            live_holders: 0,
            threshold_tick: None,
            all_tick: None,
        }
    }

    /// Whether an acknowledgement of `(key, origin, counter)` covers this update.
    pub fn covered_by(&self, key: &str, origin: NodeId, counter: u64) -> bool {
        self.key == key && self.dot.actor == origin && self.dot.counter <= counter
    }

    /// Records that `node` holds the update; `live` are the live members.
    pub fn held_by(&mut self, node: NodeId, live: &HashSet<NodeId>) {
        if node != self.dot.actor
            && self.holders.len() < HOLDERS_LEN_MAX
            && self.holders.insert(node)
            && live.contains(&node)
        {
            self.live_holders += 1;
        }
    }

    /// Recounts the holders among new `live` members.
    pub fn recount(&mut self, live: &HashSet<NodeId>) {
        self.live_holders = self.holders.iter().filter(|node| live.contains(node)).count();
    }

    /// (holders, members) among the `live` members (the origin excluded from
    /// `live`, counted once in both).
    pub fn count(&self, live: &HashSet<NodeId>) -> (usize, usize) {
        let nodes = 1 + self.holders.iter().filter(|node| live.contains(node)).count();
        (nodes, live.len() + 1)
    }

    /// Records the ticks at which the threshold and all are first reached
    /// (among the `live` members of the last [`Tracked::recount`]).
    pub fn progress(&mut self, live: &HashSet<NodeId>, tick: u64, threshold: f64) {
        if self.all_tick.is_some() {
            return;
        }
        let (nodes, members) = (1 + self.live_holders, live.len() + 1);
        if self.threshold_tick.is_none() && nodes as f64 >= threshold * members as f64 {
            self.threshold_tick = Some(tick);
        }
        if nodes >= members {
            self.all_tick = Some(tick);
        }
    }

    /// The report, counting among the `live` members, ticking every `tick_ms`.
    pub fn report(&self, live: &HashSet<NodeId>, tick_ms: u64) -> ConvergenceReport {
        let (nodes, members) = self.count(live);
        let ticks_to_threshold = self.threshold_tick.map(|t| t - self.started_tick);
        let ticks_to_all = self.all_tick.map(|t| t - self.started_tick);
        ConvergenceReport {
            key: self.key.clone(),
            dot: self.dot,
            nodes,
            members,
            fraction: nodes as f64 / members as f64,
            ticks_to_threshold,
            ticks_to_all,
            ms_to_threshold: ticks_to_threshold.map(|t| t * tick_ms),
            ms_to_all: ticks_to_all.map(|t| t * tick_ms),
        }
    }
}

/// The tracked marks of the keys this node holds: per key, (origin,
/// counter) of each origin's latest tracked update.
#[derive(Clone, Debug, Default)]
pub struct Marks {
    by_key: HashMap<String, Vec<(NodeId, u64)>>,
    order: VecDeque<String>,
}

impl Marks {
    /// The marks of `key`, for its wire entry.
    pub fn of(&self, key: &str) -> Vec<(NodeId, u64)> {
        self.by_key.get(key).cloned().unwrap_or_default()
    }

    /// Adds a mark, keeping the latest per origin and the bounds.
    pub fn add(&mut self, key: &str, origin: NodeId, counter: u64) {
        if !self.by_key.contains_key(key) {
            if self.order.len() >= MARKED_KEYS_LEN_MAX {
                if let Some(oldest) = self.order.pop_front() {
                    self.by_key.remove(&oldest);
                }
            }
            self.order.push_back(key.to_string());
        }
        let marks = self.by_key.entry(key.to_string()).or_default();
        if let Some((_, held)) = marks.iter_mut().find(|(node, _)| *node == origin) {
            *held = (*held).max(counter);
        } else if marks.len() < MARKS_PER_KEY_MAX {
            marks.push((origin, counter));
        }
    }

    /// Keys marked.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// Whether no key is marked.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_keep_the_latest_per_origin_within_their_bounds() {
        let mut marks = Marks::default();
        marks.add("k", NodeId(1), 3);
        marks.add("k", NodeId(1), 2);
        assert_eq!(marks.of("k"), vec![(NodeId(1), 3)]);
        for origin in 2..20 {
            marks.add("k", NodeId(origin), 1);
        }
        assert_eq!(marks.of("k").len(), MARKS_PER_KEY_MAX);
        for i in 0..MARKED_KEYS_LEN_MAX {
            marks.add(&format!("key-{i}"), NodeId(1), 1);
        }
        assert_eq!(marks.len(), MARKED_KEYS_LEN_MAX);
        assert!(marks.of("k").is_empty(), "the oldest key is dropped first");
    }

    #[test]
    fn holders_count_only_among_live_members_and_times_are_first_reached() {
        let origin = NodeId(1);
        let mut tracked = Tracked::new("k".into(), Dot::new(origin, 2), 10);
        assert!(tracked.covered_by("k", origin, 2) && tracked.covered_by("k", origin, 5));
        assert!(!tracked.covered_by("k", origin, 1) && !tracked.covered_by("k", NodeId(2), 9));
        let live: HashSet<NodeId> = (2..=20).map(NodeId).collect();
        for node in 2..=19 {
            tracked.held_by(NodeId(node), &live);
        }
        tracked.held_by(NodeId(2), &live); // counted once
        tracked.held_by(NodeId(99), &live); // not a live member: not counted
        tracked.progress(&live, 12, 0.95);
        assert_eq!(tracked.count(&live), (19, 20));
        assert_eq!((tracked.threshold_tick, tracked.all_tick), (Some(12), None));
        tracked.held_by(NodeId(20), &live);
        tracked.progress(&live, 13, 0.95);
        tracked.progress(&live, 14, 0.95);
        let report = tracked.report(&live, 100);
        assert_eq!((report.nodes, report.members, report.fraction), (20, 20, 1.0));
        assert_eq!((report.ticks_to_threshold, report.ticks_to_all), (Some(2), Some(3)));
        assert_eq!((report.ms_to_threshold, report.ms_to_all), (Some(200), Some(300)));
        // Node 99 joins: recounted, it is a holder already.
        let joined: HashSet<NodeId> = live.iter().copied().chain([NodeId(99)]).collect();
        tracked.recount(&joined);
        assert_eq!(tracked.count(&joined), (21, 21));
    }
}
