//! The replicated key-value store: CRDT values with a vector clock per key,
//! conflict detection and history, and the Merkle tree over versions.
//!
//! - [`value`]: the value kinds (`crdts` types), operations and reads.
//! - [`conflict`]: conflict records and resolutions.

pub mod conflict;
pub mod value;

pub use conflict::{Conflict, Resolution};
pub use value::{LwwMarker, MapField, Operation, ReadValue, Value, ValueKind};

use crate::core::merkle::{bucket_of, version_hash, MerkleTree};
use crate::error::GossipError;
use concord_transport::NodeId;
use crdts::{CmRDT, CvRDT, Dot, VClock};
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// One key's state: its value and the vector clock of the updates it holds.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// The value.
    pub value: Value,
    /// One dot per update applied, per writer.
    pub clock: VClock<NodeId>,
}

/// What merging a remote entry did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MergeOutcome {
    /// The remote entry brought nothing new.
    Unchanged,
    /// The remote entry descended from ours (or the key was new): taken.
    Advanced,
    /// Concurrent versions: resolved by the key's policy and recorded.
    Conflict,
}

/// The store.
#[derive(Clone, Debug)]
pub struct Store {
    entries: BTreeMap<String, Entry>,
    buckets: BTreeMap<u32, BTreeSet<String>>,
    tree: MerkleTree,
    conflicts: VecDeque<Conflict>,
    conflict_history_len_max: usize,
}

impl Store {
    /// An empty store keeping at most `conflict_history_len_max` conflicts.
    pub fn new(conflict_history_len_max: usize) -> Store {
        Store {
            entries: BTreeMap::new(),
            buckets: BTreeMap::new(),
            tree: MerkleTree::new(),
            conflicts: VecDeque::new(),
            conflict_history_len_max,
        }
    }

    /// The entry `key` would hold after `actor` applies `operation`, and the
    /// update's dot, without storing it. A kind mismatch is refused.
    pub fn candidate(
        &self,
        actor: NodeId,
        key: &str,
        operation: &Operation,
    ) -> Result<(Entry, Dot<NodeId>), GossipError> {
        let mut entry = self
            .entries
            .get(key)
            .cloned()
            .unwrap_or_else(|| Entry { value: Value::empty(operation.kind()), clock: VClock::new() });
        if entry.value.kind() != operation.kind() {
            return Err(GossipError::KindMismatch {
                key: key.to_string(),
                expected: operation.kind(),
                found: entry.value.kind(),
            });
        }
        let dot = entry.clock.inc(actor);
        entry.clock.apply(dot);
        entry.value.apply(actor, dot.counter, operation.clone());
        Ok((entry, dot))
    }

    /// Applies a local operation as `actor`'s next update of `key`; returns
    /// the update's dot. A kind mismatch is refused and changes nothing.
    pub fn apply(
        &mut self,
        actor: NodeId,
        key: &str,
        operation: Operation,
    ) -> Result<Dot<NodeId>, GossipError> {
        let (entry, dot) = self.candidate(actor, key, &operation)?;
        self.put(key, entry);
        Ok(dot)
    }

    /// Merges a remote version of `key`, detected at `tick`.
    pub fn merge(&mut self, key: &str, remote: Entry, tick: u64) -> MergeOutcome {
        let Some(local) = self.entries.get(key) else {
            self.put(key, remote);
            return MergeOutcome::Advanced;
        };
        match remote.clock.partial_cmp(&local.clock) {
            Some(Ordering::Less) | Some(Ordering::Equal) => MergeOutcome::Unchanged,
            Some(Ordering::Greater) => {
                let mut merged = local.clone();
                merged.value.merge(remote.value);
                merged.clock = remote.clock;
                self.put(key, merged);
                MergeOutcome::Advanced
            }
            None => {
                let mut merged = local.clone();
                let kinds_differ = local.value.kind() != remote.value.kind();
                merged.value.merge(remote.value);
                merged.clock.merge(remote.clock.clone());
                let resolution = if kinds_differ {
                    Resolution::KindResolved { kept: merged.value.kind() }
                } else {
                    match &merged.value {
                        Value::LastWriterWins(reg) => Resolution::LastWriterWins { winner: reg.marker.1 },
                        Value::MultiValue(reg) => Resolution::Siblings { count: reg.read().val.len() },
                        _ => Resolution::Joined,
                    }
                };
                self.record(Conflict {
                    key: key.to_string(),
                    tick,
                    local: local.clock.clone(),
                    remote: remote.clock,
                    resolution,
                });
                self.put(key, merged);
                MergeOutcome::Conflict
            }
        }
    }

    fn record(&mut self, conflict: Conflict) {
        if self.conflict_history_len_max == 0 {
            return;
        }
        while self.conflicts.len() >= self.conflict_history_len_max {
            self.conflicts.pop_front();
        }
        self.conflicts.push_back(conflict);
    }

    fn put(&mut self, key: &str, entry: Entry) {
        let old = self.entries.get(key).map(|e| version_hash(key, &e.clock));
        if old.is_none() {
            self.buckets.entry(bucket_of(key)).or_default().insert(key.to_string());
        }
        self.tree.update(key, old, version_hash(key, &entry.clock));
        self.entries.insert(key.to_string(), entry);
    }

    /// One key's entry.
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.get(key)
    }

    /// Reads one key.
    pub fn read(&self, key: &str) -> Option<ReadValue> {
        self.entries.get(key).map(|e| e.value.read())
    }

    /// Every key and entry, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Entry)> {
        self.entries.iter()
    }

    /// The keys of one Merkle bucket with their entries, so anti-entropy
    /// reads only the buckets that differ.
    pub fn bucket(&self, bucket: u32) -> impl Iterator<Item = (&String, &Entry)> {
        self.buckets.get(&bucket).into_iter().flatten().filter_map(|key| self.entries.get_key_value(key))
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The Merkle tree over every key's version.
    pub fn tree(&self) -> &MerkleTree {
        &self.tree
    }

    /// Conflicts detected, oldest first, at most `conflict_history_len_max`.
    pub fn conflicts(&self) -> impl Iterator<Item = &Conflict> {
        self.conflicts.iter()
    }

    /// Whether this store holds the update `dot` of `key`.
    pub fn has_update(&self, key: &str, dot: &Dot<NodeId>) -> bool {
        self.entries.get(key).is_some_and(|e| e.clock.get(&dot.actor) >= dot.counter)
    }
}
