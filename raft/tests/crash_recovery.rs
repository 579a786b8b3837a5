//! Crash recovery on the durable stores (redb, and the WAL with small
//! segments so that the child rotates and the parent replays several): a
//! child process appends batches and reports each acknowledged (committed)
//! batch; the parent kills it with SIGKILL at an arbitrary moment, reopens
//! the store and finds every acknowledged entry.

use concord_raft::core::HardState;
use concord_raft::storage::conformance::entries;
use concord_raft::storage::redb::RedbStore;
use concord_raft::storage::wal::{Preallocation, WalOptions, WalStore};
use concord_raft::storage::{Storage, WriteBatch};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

const CHILD_ENV: &str = "CONCORD_CRASH_CHILD_PATH";
const CHILD_STORE_ENV: &str = "CONCORD_CRASH_CHILD_STORE";
/// WAL segments small enough that the child rotates every few batches.
const WAL_OPTIONS: WalOptions = WalOptions {
    segment_bytes_max: 8 * 1024,
    preallocate_bytes: 4 * 1024,
    preallocation: Preallocation::SetLen,
};

/// Opens the store the test names: `redb` (a file) or `wal` (a directory).
fn open(kind: &str, path: &Path) -> Box<dyn Storage> {
    match kind {
        "redb" => Box::new(RedbStore::open(path).expect("open redb")),
        "wal" => Box::new(WalStore::open_with(path, WAL_OPTIONS).expect("open wal")),
        other => panic!("unknown store {other}"),
    }
}
const BATCH_ENTRIES: u64 = 10;
/// Batches the parent waits to see acknowledged before it kills the child.
const ACKED_BATCHES_BEFORE_KILL: u64 = 30;

/// In the child: write batches until killed, printing each acknowledged one.
#[test]
fn crash_child_writer() {
    let Ok(path) = std::env::var(CHILD_ENV) else { return };
    let kind = std::env::var(CHILD_STORE_ENV).expect("store kind");
    let mut store = open(&kind, Path::new(&path));
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
    killed_writer_restarts("redb");
}

#[test]
fn a_killed_wal_writer_restarts_with_every_acknowledged_entry() {
    killed_writer_restarts("wal");
}

fn killed_writer_restarts(kind: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("log.{kind}"));
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_child_writer", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, &path)
        .env(CHILD_STORE_ENV, kind)
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
    let store = open(kind, &path);
    let recovered = store.recover().unwrap();
    assert!(store.last_index().unwrap() >= acked);
    assert_eq!(recovered.entries[..acked as usize], entries(1, acked, 1)[..]);
    assert!(recovered.hard_state.commit >= acked);
}

/// A new store gets the initial configuration as its index-0 snapshot; a
/// reopened one keeps what it has, so a restart never re-bootstraps.
#[test]
fn a_store_is_bootstrapped_once_and_recovers_its_configuration_after() {
    bootstrapped_once("redb", |path| RedbStore::open(path).expect("open"));
    bootstrapped_once("wal", |path| WalStore::open(path).expect("open"));
}

fn bootstrapped_once<S: Storage>(kind: &str, open: impl Fn(&Path) -> S) {
    use concord_raft::actor::bootstrap_store;
    use concord_raft::core::Membership;
    use concord_transport::NodeId;

    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join(format!("group.{kind}"));
    let three = Membership::with_voters((1..=3).map(NodeId));
    let mut store = open(&path);
    assert!(bootstrap_store(&mut store, three.clone()).expect("bootstrap"));
    drop(store);
    let mut store = open(&path);
    let five = Membership::with_voters((1..=5).map(NodeId));
    assert!(!bootstrap_store(&mut store, five).expect("second bootstrap"), "an existing store is left alone");
    assert_eq!(store.snapshot().expect("snapshot").meta.membership, three, "{kind}");
}
