//! The conformance suite every [`Storage`] implementation must pass. Call
//! [`run_all`] from a test with a function that makes an empty store; each
//! check panics with a message naming what broke.

use crate::core::quorum::Membership;
use crate::core::types::{Entry, HardState, Payload, Snapshot, SnapshotMeta, Term};
use crate::storage::{Storage, StorageError, WriteBatch};
use bytes::Bytes;
use concord_transport::NodeId;

/// An entry of `term` at `index` carrying its index as data.
pub fn entry(index: u64, term: Term) -> Entry {
    Entry {
        index,
        term,
        payload: Payload::Command { client: None, data: Bytes::from(index.to_le_bytes().to_vec()) },
    }
}

/// Entries `from..=to` of `term`.
pub fn entries(from: u64, to: u64, term: Term) -> Vec<Entry> {
    (from..=to).map(|i| entry(i, term)).collect()
}

/// A snapshot at `index` of `term` with some data.
pub fn snapshot(index: u64, term: Term) -> Snapshot {
    Snapshot {
        meta: SnapshotMeta { index, term, membership: Membership::with_voters([NodeId(1), NodeId(2)]) },
        data: Bytes::from(vec![7u8; 100]),
    }
}

/// Runs every check on fresh stores from `fresh`.
pub fn run_all<S: Storage>(fresh: &mut dyn FnMut() -> S) {
    empty_store_recovers_nothing(fresh());
    entries_and_hard_state_read_back(fresh());
    a_batch_cuts_the_log_at_its_first_entry(fresh());
    a_received_snapshot_replaces_the_log_or_keeps_a_matching_suffix(fresh());
    a_saved_snapshot_compacts_the_log(fresh());
    a_staged_snapshot_changes_nothing_until_it_is_saved(fresh());
    a_write_leaving_a_gap_is_refused_and_loses_nothing(fresh());
}

/// An empty store recovers the default state.
pub fn empty_store_recovers_nothing<S: Storage>(store: S) {
    let recovered = store.recover().expect("recover an empty store");
    assert_eq!(recovered.hard_state, HardState::default());
    assert!(recovered.entries.is_empty());
    assert_eq!(store.last_index().unwrap(), 0);
}

/// Entries and hard state written in one batch read back.
pub fn entries_and_hard_state_read_back<S: Storage>(mut store: S) {
    let hard_state = HardState { term: 2, vote: Some(NodeId(1)), commit: 3 };
    let written = entries(1, 5, 2);
    store.write(WriteBatch { entries: &written, hard_state: Some(hard_state), snapshot: None }).unwrap();
    assert_eq!(store.entries(1, 5).unwrap(), written);
    assert_eq!(store.entries(2, 3).unwrap(), written[1..3].to_vec());
    assert!(store.entries(4, 3).unwrap().is_empty());
    assert!(matches!(store.entries(4, 6), Err(StorageError::Unavailable(6))));
    let recovered = store.recover().unwrap();
    assert_eq!(recovered.hard_state, hard_state);
    assert_eq!(recovered.entries, written);
}

/// Writing from an index inside the log replaces the suffix.
pub fn a_batch_cuts_the_log_at_its_first_entry<S: Storage>(mut store: S) {
    store.write(WriteBatch { entries: &entries(1, 5, 1), ..WriteBatch::default() }).unwrap();
    let replacement = entries(3, 4, 2);
    let hard_state = HardState { term: 2, vote: None, commit: 0 };
    store.write(WriteBatch { entries: &replacement, hard_state: Some(hard_state), snapshot: None }).unwrap();
    assert_eq!(store.last_index().unwrap(), 4);
    let all = store.entries(1, 4).unwrap();
    assert_eq!(all[..2], entries(1, 2, 1)[..]);
    assert_eq!(all[2..], replacement[..]);
}

/// A snapshot from the leader keeps entries after it only if the log agrees at its index.
pub fn a_received_snapshot_replaces_the_log_or_keeps_a_matching_suffix<S: Storage>(mut store: S) {
    store.write(WriteBatch { entries: &entries(1, 6, 1), ..WriteBatch::default() }).unwrap();
    let matching = snapshot(4, 1);
    store.write(WriteBatch { snapshot: Some(&matching), ..WriteBatch::default() }).unwrap();
    assert_eq!(store.snapshot().unwrap(), matching);
    assert_eq!(store.last_index().unwrap(), 6);
    assert_eq!(store.entries(5, 6).unwrap(), entries(5, 6, 1));
    let conflicting = snapshot(8, 3);
    let after = entries(9, 9, 3);
    let hard_state = HardState { term: 3, vote: None, commit: 8 };
    store
        .write(WriteBatch { snapshot: Some(&conflicting), entries: &after, hard_state: Some(hard_state) })
        .unwrap();
    assert_eq!(store.last_index().unwrap(), 9);
    assert!(store.entries(6, 6).is_err(), "entries the snapshot replaced are gone");
    let recovered = store.recover().unwrap();
    assert_eq!(recovered.snapshot, conflicting);
    assert_eq!(recovered.entries, after);
}

/// A snapshot the node took drops the entries it covers.
pub fn a_saved_snapshot_compacts_the_log<S: Storage>(mut store: S) {
    let hard_state = Some(HardState { term: 1, vote: None, commit: 7 });
    store.write(WriteBatch { entries: &entries(1, 10, 1), hard_state, snapshot: None }).unwrap();
    store.save_snapshot(&snapshot(7, 1)).unwrap();
    assert!(matches!(store.entries(7, 8), Err(StorageError::Unavailable(7))));
    assert_eq!(store.entries(8, 10).unwrap(), entries(8, 10, 1));
    let recovered = store.recover().unwrap();
    assert_eq!(recovered.snapshot.meta.index, 7);
    assert_eq!(recovered.applied, 7);
    assert_eq!(recovered.entries, entries(8, 10, 1));
    // An older snapshot changes nothing.
    store.save_snapshot(&snapshot(5, 1)).unwrap();
    assert_eq!(store.snapshot().unwrap().meta.index, 7);
}

/// For a store with a [`crate::storage::SnapshotStager`]: the log is written
/// to while a snapshot is staged, and is compacted only once it is saved; an
/// older staged snapshot changes nothing. (Nothing to check for the others.)
pub fn a_staged_snapshot_changes_nothing_until_it_is_saved<S: Storage>(mut store: S) {
    let Some(stage) = store.snapshot_stager() else { return };
    let hard_state = Some(HardState { term: 1, vote: None, commit: 7 });
    store.write(WriteBatch { entries: &entries(1, 10, 1), hard_state, snapshot: None }).unwrap();
    let staged = stage(&snapshot(7, 1)).expect("stage a snapshot");
    assert_eq!(staged.meta.index, 7);
    store.write(WriteBatch { entries: &entries(11, 12, 1), ..WriteBatch::default() }).unwrap();
    assert_eq!(store.snapshot().unwrap().meta.index, 0, "staged, not saved");
    assert_eq!(store.entries(1, 12).unwrap(), entries(1, 12, 1));
    store.save_staged_snapshot(staged).expect("save the staged snapshot");
    assert_eq!(store.snapshot().unwrap(), snapshot(7, 1));
    assert!(matches!(store.entries(7, 8), Err(StorageError::Unavailable(7))));
    let recovered = store.recover().unwrap();
    assert_eq!(recovered.applied, 7);
    assert_eq!(recovered.entries, entries(8, 12, 1));
    let older = store.snapshot_stager().expect("a stager")(&snapshot(5, 1)).unwrap();
    store.save_staged_snapshot(older).unwrap();
    assert_eq!(store.snapshot().unwrap(), snapshot(7, 1));
}

/// A batch starting past the end of the log is refused without damage.
pub fn a_write_leaving_a_gap_is_refused_and_loses_nothing<S: Storage>(mut store: S) {
    store.write(WriteBatch { entries: &entries(1, 3, 1), ..WriteBatch::default() }).unwrap();
    let result = store.write(WriteBatch { entries: &entries(6, 7, 1), ..WriteBatch::default() });
    assert!(matches!(result, Err(StorageError::Unavailable(6))), "{result:?}");
    assert_eq!(store.entries(1, 3).unwrap(), entries(1, 3, 1));
}
