//! Rumor spreading: what is fresh, how often it has been sent, and which
//! rumors go into a message of bounded size.
//!
//! A rumor names a member or a key; its content is read when a message is
//! built, so a rumor always carries the latest version. Each node sends a
//! rumor at most `transmissions_max` times (which scales with log(cluster
//! size)), then leaves it to anti-entropy.

use crate::wire::Suspicion;
use concord_transport::NodeId;
use std::collections::{HashMap, HashSet};

/// What a rumor is about.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RumorItem {
    /// A member's latest state.
    Member(NodeId),
    /// A key's latest version.
    Key(String),
    /// An accusation of a suspect (self-contained: it never changes).
    Suspicion(Suspicion),
}

/// One rumor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rumor {
    /// The version it spreads, as a 64-bit id; digests list these.
    pub id: u64,
    /// Times this node has sent it.
    pub transmissions: u32,
    /// Insertion order, to send the freshest first among equals.
    pub sequence: u64,
    /// Liveness news (suspicions, deaths, refutations): sent before anything else.
    pub urgent: bool,
}

/// The sort key of a rumor: urgent first, then least transmitted, then freshest, then by
/// item so the order is total and deterministic. Borrowed, so sorting and
/// eviction do not allocate.
fn urgency<'a>(
    (item, rumor): &(&'a RumorItem, &'a Rumor),
) -> (bool, u32, std::cmp::Reverse<u64>, &'a RumorItem) {
    (!rumor.urgent, rumor.transmissions, std::cmp::Reverse(rumor.sequence), item)
}

/// Rumors waiting to be spread, bounded by `len_max`.
#[derive(Clone, Debug, Default)]
pub struct RumorQueue {
    rumors: HashMap<RumorItem, Rumor>,
    sequence: u64,
    len_max: usize,
}

impl RumorQueue {
    /// An empty queue holding at most `len_max` rumors.
    pub fn new(len_max: usize) -> RumorQueue {
        RumorQueue { rumors: HashMap::new(), sequence: 0, len_max: len_max.max(1) }
    }

    /// Queues (or refreshes) a rumor about `item` at version `id`. A new
    /// version restarts its transmission count. Past `len_max`, the most
    /// transmitted rumor is dropped. `urgent` rumors go first.
    pub fn push(&mut self, item: RumorItem, id: u64, urgent: bool) {
        self.sequence += 1;
        let sequence = self.sequence;
        match self.rumors.get_mut(&item) {
            Some(rumor) if rumor.id == id => {}
            Some(rumor) => *rumor = Rumor { id, transmissions: 0, sequence, urgent },
            None => {
                if self.rumors.len() >= self.len_max {
                    let worst = self
                        .rumors
                        .iter()
                        .max_by(|a, b| urgency(a).cmp(&urgency(b)))
                        .map(|(item, _)| item.clone());
                    if let Some(worst) = worst {
                        self.rumors.remove(&worst);
                    }
                }
                self.rumors.insert(item, Rumor { id, transmissions: 0, sequence, urgent });
            }
        }
    }

    /// Rumors in order of urgency (urgent, least transmitted, then freshest), leaving
    /// out those whose id is in `known`.
    pub fn by_urgency(&self, known: Option<&HashSet<u64>>) -> Vec<RumorItem> {
        let mut rumors: Vec<(&RumorItem, &Rumor)> =
            self.rumors.iter().filter(|(_, r)| known.is_none_or(|k| !k.contains(&r.id))).collect();
        rumors.sort_by(|a, b| urgency(a).cmp(&urgency(b)));
        rumors.into_iter().map(|(item, _)| item.clone()).collect()
    }

    /// Counts one transmission of `item`; retires it after `transmissions_max`.
    pub fn sent(&mut self, item: &RumorItem, transmissions_max: u32) {
        if let Some(rumor) = self.rumors.get_mut(item) {
            rumor.transmissions += 1;
            if rumor.transmissions >= transmissions_max {
                self.rumors.remove(item);
            }
        }
    }

    /// Ids of every queued rumor: the digest a pull sends.
    pub fn ids(&self) -> Vec<u64> {
        let mut ids: Vec<u64> = self.rumors.values().map(|r| r.id).collect();
        ids.sort_unstable();
        ids
    }

    /// The rumor about `item`, if queued.
    pub fn get(&self, item: &RumorItem) -> Option<&Rumor> {
        self.rumors.get(item)
    }

    /// Number of queued rumors.
    pub fn len(&self) -> usize {
        self.rumors.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.rumors.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> RumorItem {
        RumorItem::Key(k.to_string())
    }

    #[test]
    fn rumors_retire_after_transmissions_max_and_refresh_on_new_versions() {
        let mut queue = RumorQueue::new(8);
        queue.push(key("a"), 1, false);
        for _ in 0..2 {
            queue.sent(&key("a"), 3);
        }
        assert_eq!(queue.get(&key("a")).map(|r| r.transmissions), Some(2));
        queue.push(key("a"), 1, false);
        assert_eq!(queue.get(&key("a")).map(|r| r.transmissions), Some(2), "same version keeps its count");
        queue.push(key("a"), 2, false);
        assert_eq!(queue.get(&key("a")).map(|r| r.transmissions), Some(0), "new version restarts");
        for _ in 0..3 {
            queue.sent(&key("a"), 3);
        }
        assert!(queue.is_empty());
    }

    #[test]
    fn urgency_puts_least_sent_and_freshest_first_and_bound_evicts_most_sent() {
        let mut queue = RumorQueue::new(3);
        queue.push(key("old"), 1, false);
        queue.sent(&key("old"), 10);
        queue.push(key("mid"), 2, false);
        queue.push(key("new"), 3, false);
        assert_eq!(queue.by_urgency(None), vec![key("new"), key("mid"), key("old")]);
        let known = HashSet::from([3]);
        assert_eq!(queue.by_urgency(Some(&known)), vec![key("mid"), key("old")]);
        queue.push(key("newest"), 4, false);
        assert_eq!(queue.len(), 3);
        assert!(queue.get(&key("old")).is_none(), "the most transmitted is evicted");
    }

    #[test]
    fn urgent_rumors_go_first_even_when_sent_more() {
        let mut queue = RumorQueue::new(8);
        queue.push(key("dead"), 1, true);
        queue.sent(&key("dead"), 10);
        queue.sent(&key("dead"), 10);
        queue.push(key("fresh"), 2, false);
        assert_eq!(queue.by_urgency(None), vec![key("dead"), key("fresh")]);
    }
}
