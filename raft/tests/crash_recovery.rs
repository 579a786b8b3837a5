//! Crash recovery on the durable store: a child process appends batches
//! and reports each acknowledged (committed) batch; the parent kills it with
//! SIGKILL at an arbitrary moment, reopens the file and finds every
//! acknowledged entry.

use concord_raft::core::HardState;
use concord_raft::storage::conformance::entries;
use concord_raft::storage::redb::RedbStore;
use concord_raft::storage::{LogStore, Storage, WriteBatch};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

const CHILD_ENV: &str = "CONCORD_CRASH_CHILD_PATH";
const BATCH_ENTRIES: u64 = 10;
/// Batches the parent waits to see acknowledged before it kills the child.
const ACKED_BATCHES_BEFORE_KILL: u64 = 30;

/// In the child: write batches until killed, printing each acknowledged one.
#[test]
fn crash_child_writer() {
    let Ok(path) = std::env::var(CHILD_ENV) else { return };
    let mut store = RedbStore::open(&path).expect("open");
    let mut stdout = std::io::stdout();
    for batch in 0.. {
        let from = batch * BATCH_ENTRIES + 1;
        let written = entries(from, from + BATCH_ENTRIES - 1, 1);
        let hard_state = HardState { term: 1, vote: None, commit: from + BATCH_ENTRIES - 1 };
        store
            .write(WriteBatch { entries: &written, hard_state: Some(hard_state), snapshot: None })
            .expect("write");
        writeln!(stdout, "acked {}", from + BATCH_ENTRIES - 1).expect("stdout");
        stdout.flush().expect("flush");
    }
}

#[test]
fn a_killed_writer_restarts_with_every_acknowledged_entry() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.redb");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_child_writer", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut acked = 0;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(index) = line.strip_prefix("acked ") {
            acked = index.trim().parse().unwrap();
            if acked >= ACKED_BATCHES_BEFORE_KILL * BATCH_ENTRIES {
                child.kill().unwrap();
                break;
            }
        }
    }
    child.wait().unwrap();
    assert!(acked >= ACKED_BATCHES_BEFORE_KILL * BATCH_ENTRIES, "the child acknowledged {acked}");
    let store = RedbStore::open(&path).expect("reopen after the kill");
    let recovered = store.recover().unwrap();
    assert!(store.last_index().unwrap() >= acked);
    assert_eq!(recovered.entries[..acked as usize], entries(1, acked, 1)[..]);
    assert!(recovered.hard_state.commit >= acked);
}

/// A new store gets the initial configuration as its index-0 snapshot; a
/// reopened one keeps what it has, so a restart never re-bootstraps.
#[test]
fn a_store_is_bootstrapped_once_and_recovers_its_configuration_after() {
    use concord_raft::actor::bootstrap_store;
    use concord_raft::core::Membership;
    use concord_raft::storage::StateStore;
    use concord_transport::NodeId;

    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("group.redb");
    let three = Membership::with_voters((1..=3).map(NodeId));
    let mut store = RedbStore::open(&path).expect("open");
    assert!(bootstrap_store(&mut store, three.clone()).expect("bootstrap"));
    drop(store);
    let mut store = RedbStore::open(&path).expect("reopen");
    let five = Membership::with_voters((1..=5).map(NodeId));
    assert!(!bootstrap_store(&mut store, five).expect("second bootstrap"), "an existing store is left alone");
    assert_eq!(store.snapshot().expect("snapshot").meta.membership, three);
}
