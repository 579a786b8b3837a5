//! Property tests: merges of every value kind are commutative, associative
//! and idempotent, also through the store's clock-aware merge; vector-clock
//! comparison matches the happens-before relation of a random history.

use concord_gossip::state::{Entry, Operation, Store, Value, ValueKind};
use concord_transport::NodeId;
use crdts::{CmRDT, CvRDT, VClock};
use proptest::prelude::*;

const REPLICAS: usize = 3;

fn operation(kind: ValueKind, choice: u8, small: u8) -> Operation {
    let bytes = vec![small];
    let element = format!("e{}", small % 4);
    match kind {
        ValueKind::LastWriterWins => Operation::Assign { value: bytes, timestamp: u64::from(small % 3) },
        ValueKind::MultiValue => Operation::Write { value: bytes },
        ValueKind::Set if choice % 3 == 0 => Operation::Remove { element },
        ValueKind::Set => Operation::Add { element },
        ValueKind::GrowCounter => Operation::Grow { by: u64::from(small) },
        ValueKind::Counter => Operation::Add64 { by: i64::from(small) - 128 },
        ValueKind::Map if choice % 3 == 0 => Operation::MapRemove { field: element },
        ValueKind::Map => Operation::MapWrite { field: element, value: bytes },
    }
}

/// One step of a history: replica `at` writes, or merges what `from` holds.
#[derive(Clone, Debug)]
enum Step {
    Write { at: usize, choice: u8, small: u8 },
    Merge { at: usize, from: usize },
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    let step = prop_oneof![
        3 => (0..REPLICAS, any::<u8>(), any::<u8>()).prop_map(|(at, choice, small)| Step::Write { at, choice, small }),
        1 => (0..REPLICAS, 0..REPLICAS).prop_map(|(at, from)| Step::Merge { at, from }),
    ];
    prop::collection::vec(step, 1..40)
}

fn kinds() -> impl Strategy<Value = ValueKind> {
    prop_oneof![
        Just(ValueKind::LastWriterWins),
        Just(ValueKind::MultiValue),
        Just(ValueKind::Set),
        Just(ValueKind::GrowCounter),
        Just(ValueKind::Counter),
        Just(ValueKind::Map),
    ]
}

/// Runs a history; returns each replica's entry for the key.
fn replicas(kind: ValueKind, history: &[Step]) -> Vec<Entry> {
    let mut stores: Vec<Store> = (0..REPLICAS).map(|_| Store::new(16)).collect();
    for (tick, step) in history.iter().enumerate() {
        match step {
            Step::Write { at, choice, small } => {
                stores[*at].apply(NodeId(*at as u64 + 1), "k", operation(kind, *choice, *small)).unwrap();
            }
            Step::Merge { at, from } => {
                if let Some(entry) = stores[*from].get("k").cloned() {
                    stores[*at].merge("k", entry, tick as u64);
                }
            }
        }
    }
    stores
        .iter()
        .map(|s| s.get("k").cloned().unwrap_or(Entry { value: Value::empty(kind), clock: VClock::new() }))
        .collect()
}

fn join(a: &Entry, b: &Entry) -> Entry {
    let mut store = Store::new(16);
    store.merge("k", a.clone(), 0);
    store.merge("k", b.clone(), 0);
    store.get("k").cloned().unwrap()
}

fn join_values(a: &Value, b: &Value) -> Value {
    let mut out = a.clone();
    out.merge(b.clone());
    out
}

proptest! {
    #[test]
    fn value_merges_are_commutative_associative_idempotent(kind in kinds(), history in steps()) {
        let r = replicas(kind, &history);
        let (a, b, c) = (&r[0].value, &r[1].value, &r[2].value);
        prop_assert_eq!(join_values(a, b).read(), join_values(b, a).read());
        prop_assert_eq!(join_values(&join_values(a, b), c).read(), join_values(a, &join_values(b, c)).read());
        prop_assert_eq!(join_values(a, a).read(), a.read());
    }

    #[test]
    fn store_merges_agree_in_any_order(kind in kinds(), history in steps()) {
        let r = replicas(kind, &history);
        let (a, b, c) = (&r[0], &r[1], &r[2]);
        let ab = join(a, b);
        let ba = join(b, a);
        prop_assert_eq!(&ab.clock, &ba.clock);
        prop_assert_eq!(ab.value.read(), ba.value.read());
        let left = join(&ab, c);
        let right = join(a, &join(b, c));
        prop_assert_eq!(&left.clock, &right.clock);
        prop_assert_eq!(left.value.read(), right.value.read());
        prop_assert_eq!(join(a, a).value.read(), a.value.read());
    }
}

/// An event of a random distributed history, with its vector clock.
struct Event {
    clock: VClock<usize>,
    /// Events that immediately precede this one (process order, message receipt).
    parents: Vec<usize>,
}

proptest! {
    #[test]
    fn vector_clock_order_matches_happens_before(
        actions in prop::collection::vec((0..3usize, 0..3usize, any::<bool>()), 1..40)
    ) {
        let mut events: Vec<Event> = Vec::new();
        let mut last: [Option<usize>; 3] = [None; 3];
        for (process, peer, receive) in actions {
            let mut clock = last[process].map(|e| events[e].clock.clone()).unwrap_or_default();
            let mut parents: Vec<usize> = last[process].into_iter().collect();
            // A receipt of the peer's latest event as a message.
            if receive && peer != process {
                if let Some(sent) = last[peer] {
                    clock.merge(events[sent].clock.clone());
                    parents.push(sent);
                }
            }
            clock.apply(clock.inc(process));
            events.push(Event { clock, parents });
            last[process] = Some(events.len() - 1);
        }
        let n = events.len();
        // happens-before: transitive closure of the parent edges.
        let mut before = vec![vec![false; n]; n];
        for f in 0..n {
            for &p in &events[f].parents.clone() {
                before[p][f] = true;
                for row in before.iter_mut() {
                    if row[p] {
                        row[f] = true;
                    }
                }
            }
        }
        for e in 0..n {
            for f in 0..n {
                let (ce, cf) = (&events[e].clock, &events[f].clock);
                prop_assert_eq!(before[e][f], ce < cf, "e{} {:?} f{} {:?}", e, ce, f, cf);
                let concurrent = e != f && !before[e][f] && !before[f][e];
                prop_assert_eq!(concurrent, ce.concurrent(cf));
            }
        }
    }
}
