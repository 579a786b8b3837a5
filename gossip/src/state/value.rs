//! The values of the replicated store: `crdts` types behind one enum, the
//! operations that change them, and what a read returns.

use concord_transport::NodeId;
use crdts::{CmRDT, CvRDT, GCounter, LWWReg, MVReg, Map, Orswot, PNCounter};
use num_traits::{Signed, ToPrimitive};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// The marker of a last-writer-wins register: a timestamp, then the writer's
/// id as the deterministic tie-break, then the writer's per-key counter so
/// that one writer never reuses a marker.
pub type LwwMarker = (u64, NodeId, u64);

/// A field of a [`Value::Map`]: the set of its concurrent values. A write
/// removes the values it has seen and adds its own, so a field reads like a
/// multi-value register. (An `MVReg` nested in crdts 7.3's `Map` is not
/// associative under three-way merges; the property tests caught it.)
pub type MapField = Orswot<Vec<u8>, NodeId>;

/// The kind of a value, fixed by the first write to a key; it is also the
/// key's conflict policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ValueKind {
    /// Last writer wins (timestamp, then node id).
    LastWriterWins,
    /// Concurrent writes are all kept as siblings for the application to merge.
    MultiValue,
    /// Observed-remove set: concurrent add and remove keep the element.
    Set,
    /// Grow-only counter.
    GrowCounter,
    /// Counter that goes up and down.
    Counter,
    /// Map of fields, each keeping concurrent writes as siblings.
    Map,
}

/// A value in the store.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// See [`ValueKind::LastWriterWins`].
    LastWriterWins(LWWReg<Vec<u8>, LwwMarker>),
    /// See [`ValueKind::MultiValue`].
    MultiValue(MVReg<Vec<u8>, NodeId>),
    /// See [`ValueKind::Set`].
    Set(Orswot<String, NodeId>),
    /// See [`ValueKind::GrowCounter`].
    GrowCounter(GCounter<NodeId>),
    /// See [`ValueKind::Counter`].
    Counter(PNCounter<NodeId>),
    /// See [`ValueKind::Map`].
    Map(Map<String, MapField, NodeId>),
}

/// A change to one key, applied by the node that accepts it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Operation {
    /// Last-writer-wins write. `timestamp` comes from the caller (the actor
    /// passes wall-clock milliseconds); it is raised past the stored one so a
    /// causally later write always wins.
    Assign {
        /// The new value.
        value: Vec<u8>,
        /// The writer's timestamp.
        timestamp: u64,
    },
    /// Multi-value write: replaces every sibling this node has seen.
    Write {
        /// The new value.
        value: Vec<u8>,
    },
    /// Adds an element to a set.
    Add {
        /// The element.
        element: String,
    },
    /// Removes an element from a set (only the adds this node has seen).
    Remove {
        /// The element.
        element: String,
    },
    /// Adds to a grow-only counter.
    Grow {
        /// The amount.
        by: u64,
    },
    /// Adds to (or, negative, subtracts from) a counter.
    Add64 {
        /// The amount.
        by: i64,
    },
    /// Writes one field of a map.
    MapWrite {
        /// The field.
        field: String,
        /// The value.
        value: Vec<u8>,
    },
    /// Removes one field of a map.
    MapRemove {
        /// The field.
        field: String,
    },
}

impl Operation {
    /// The kind of value this operation works on.
    pub fn kind(&self) -> ValueKind {
        match self {
            Operation::Assign { .. } => ValueKind::LastWriterWins,
            Operation::Write { .. } => ValueKind::MultiValue,
            Operation::Add { .. } | Operation::Remove { .. } => ValueKind::Set,
            Operation::Grow { .. } => ValueKind::GrowCounter,
            Operation::Add64 { .. } => ValueKind::Counter,
            Operation::MapWrite { .. } | Operation::MapRemove { .. } => ValueKind::Map,
        }
    }
}

/// What a read of one key returns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReadValue {
    /// A register's value.
    Register(Vec<u8>),
    /// Concurrent siblings of a multi-value register (one when there is no conflict).
    Siblings(Vec<Vec<u8>>),
    /// A set's elements.
    Set(BTreeSet<String>),
    /// A counter's value (saturated to `i64`).
    Counter(i64),
    /// A map's fields, each with its siblings.
    Map(Vec<(String, Vec<Vec<u8>>)>),
}

impl Value {
    /// An empty value of `kind`.
    pub fn empty(kind: ValueKind) -> Value {
        match kind {
            ValueKind::LastWriterWins => Value::LastWriterWins(LWWReg::default()),
            ValueKind::MultiValue => Value::MultiValue(MVReg::new()),
            ValueKind::Set => Value::Set(Orswot::new()),
            ValueKind::GrowCounter => Value::GrowCounter(GCounter::new()),
            ValueKind::Counter => Value::Counter(PNCounter::new()),
            ValueKind::Map => Value::Map(Map::new()),
        }
    }

    /// This value's kind.
    pub fn kind(&self) -> ValueKind {
        match self {
            Value::LastWriterWins(_) => ValueKind::LastWriterWins,
            Value::MultiValue(_) => ValueKind::MultiValue,
            Value::Set(_) => ValueKind::Set,
            Value::GrowCounter(_) => ValueKind::GrowCounter,
            Value::Counter(_) => ValueKind::Counter,
            Value::Map(_) => ValueKind::Map,
        }
    }

    /// Applies `operation` written by `actor` as its `counter`-th update of
    /// this key. The caller has checked that the kinds match.
    pub(crate) fn apply(&mut self, actor: NodeId, counter: u64, operation: Operation) {
        match (self, operation) {
            (Value::LastWriterWins(reg), Operation::Assign { value, timestamp }) => {
                let timestamp = timestamp.max(reg.marker.0.saturating_add(1));
                reg.update(value, (timestamp, actor, counter));
            }
            (Value::MultiValue(reg), Operation::Write { value }) => {
                let op = reg.write(value, reg.read_ctx().derive_add_ctx(actor));
                reg.apply(op);
            }
            (Value::Set(set), Operation::Add { element }) => {
                let op = set.add(element, set.read_ctx().derive_add_ctx(actor));
                set.apply(op);
            }
            (Value::Set(set), Operation::Remove { element }) => {
                let op = set.rm(element.clone(), set.contains(&element).derive_rm_ctx());
                set.apply(op);
            }
            (Value::GrowCounter(counter_value), Operation::Grow { by }) => {
                counter_value.apply(counter_value.inc_many(actor, by));
            }
            (Value::Counter(counter_value), Operation::Add64 { by }) => {
                let op = if by >= 0 {
                    counter_value.inc_many(actor, by.unsigned_abs())
                } else {
                    counter_value.dec_many(actor, by.unsigned_abs())
                };
                counter_value.apply(op);
            }
            (Value::Map(map), Operation::MapWrite { field, value }) => {
                let seen = map.get(&field).val.map(|set| set.read().val).unwrap_or_default();
                if !seen.is_empty() {
                    let op = map.update(field.clone(), map.read_ctx().derive_add_ctx(actor), |set, _| {
                        set.rm_all(seen, set.read_ctx().derive_rm_ctx())
                    });
                    map.apply(op);
                }
                let op =
                    map.update(field, map.read_ctx().derive_add_ctx(actor), |set, ctx| set.add(value, ctx));
                map.apply(op);
            }
            (Value::Map(map), Operation::MapRemove { field }) => {
                let op = map.rm(field.clone(), map.get(&field).derive_rm_ctx());
                map.apply(op);
            }
            (value, operation) => {
                panic!("kind checked by the caller: {:?} cannot take {operation:?}", value.kind())
            }
        }
    }

    /// Joins `other` into this value. Values of different kinds (a key first
    /// written concurrently as two kinds) resolve to the greater kind, which
    /// keeps the join commutative, associative and idempotent.
    pub fn merge(&mut self, other: Value) {
        match (self, other) {
            (Value::LastWriterWins(a), Value::LastWriterWins(b)) => a.merge(b),
            (Value::MultiValue(a), Value::MultiValue(b)) => a.merge(b),
            (Value::Set(a), Value::Set(b)) => a.merge(b),
            (Value::GrowCounter(a), Value::GrowCounter(b)) => a.merge(b),
            (Value::Counter(a), Value::Counter(b)) => a.merge(b),
            (Value::Map(a), Value::Map(b)) => a.merge(b),
            (this, other) => {
                if other.kind() > this.kind() {
                    *this = other;
                }
            }
        }
    }

    /// Reads the value.
    pub fn read(&self) -> ReadValue {
        match self {
            Value::LastWriterWins(reg) => ReadValue::Register(reg.val.clone()),
            Value::MultiValue(reg) => ReadValue::Siblings(sorted(reg.read().val)),
            Value::Set(set) => ReadValue::Set(set.read().val.into_iter().collect()),
            Value::GrowCounter(counter) => ReadValue::Counter(counter.read().to_i64().unwrap_or(i64::MAX)),
            Value::Counter(counter) => {
                let value = counter.read();
                let saturated = if value.is_negative() { i64::MIN } else { i64::MAX };
                ReadValue::Counter(value.to_i64().unwrap_or(saturated))
            }
            Value::Map(map) => ReadValue::Map(
                map.iter()
                    .map(|entry| (entry.val.0.clone(), sorted(entry.val.1.read().val.into_iter().collect())))
                    .collect(),
            ),
        }
    }
}

/// Siblings in a canonical order, so that equal registers read equal.
fn sorted(mut values: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    values.sort();
    values
}
