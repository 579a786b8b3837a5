//! Benchmarks of the Raft actor (a bench binary, not timed tests):
//!
//! 1. `memory`: 3 nodes in one process over the in-memory transport with the
//!    in-memory store: proposals/s with 1, 64 and 256 concurrent proposers.
//! 2. `tcp`: 3 nodes over TCP loopback with a durable store (fsync per
//!    batch): proposals/s and p50/p99 commit latency with 1 and 64 proposers.
//!    `CONCORD_BENCH_STORE` (default `wal,redb`) names the stores; their runs
//!    alternate, so that both see the same machine load.
//! 3. `failover`: 3 nodes, election timeout 150–300 ms, heartbeat 50 ms; the
//!    leader is stopped; time to a new leader and to the first committed
//!    write after it, over many trials.
//!
//! `cargo bench -p concord-raft --bench raft_bench -- [memory|tcp|failover]`;
//! `CONCORD_BENCH_SECONDS` (default 3) sets each throughput run's length,
//! `CONCORD_BENCH_RUNS` (default 3) how many runs give the median, and
//! `CONCORD_BENCH_TRIALS` (default 100) the failover trials and
//! `CONCORD_BENCH_PROPOSERS` (e.g. `64,256`) the proposer counts. `storage`
//! measures the fsync floor of the disk the benchmark runs on: one-entry
//! writes of each store (the WAL with each [`Preallocation`]), and raw
//! writes + `fdatasync` into a file preallocated with written zeros, one
//! extended with `set_len` (sparse), and one growing by appends.

use actix::Addr;
use bytes::Bytes;
use concord_raft::actor::{
    bootstrap_snapshot, bootstrap_store, ActorConfig, GetStatus, Propose, RaftActor, RaftError, Shutdown,
};
use concord_raft::core::{Index, Membership, Role};
use concord_raft::machine::StateMachine;
use concord_raft::storage::memory::MemoryStore;
use concord_raft::storage::redb::RedbStore;
use concord_raft::storage::wal::{Preallocation, WalOptions, WalStore};
use concord_raft::storage::{LogStore, Storage, WriteBatch};
use concord_transport::{ClusterId, GroupId, MemoryNetwork, NodeId, TcpConfig, TcpTransport, Transport};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A state machine that only counts: the benchmark measures Raft, not the machine.
#[derive(Default)]
struct Count(u64);

impl StateMachine for Count {
    fn apply(&mut self, _: Index, _: &[u8]) -> Bytes {
        self.0 += 1;
        Bytes::new()
    }
    fn query(&self, _: &[u8]) -> Bytes {
        Bytes::copy_from_slice(&self.0.to_le_bytes())
    }
    fn snapshot(&self) -> Bytes {
        Bytes::copy_from_slice(&self.0.to_le_bytes())
    }
    fn restore(&mut self, data: &[u8]) -> Result<(), String> {
        self.0 = u64::from_le_bytes(data.try_into().map_err(|_| "bad snapshot".to_string())?);
        Ok(())
    }
    fn digest(&self) -> u64 {
        self.0
    }
}

/// Runs of each throughput configuration; the median is reported.
fn runs() -> usize {
    std::env::var("CONCORD_BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(3)
}

/// Prints each run and the medians of rate, p50 and p99.
fn report(label: &str, results: &mut [(f64, Duration, Duration)]) {
    let runs: Vec<String> = results.iter().map(|r| format!("{:.0}", r.0)).collect();
    let median = |mut values: Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    let rate = median(results.iter().map(|r| r.0).collect());
    let p50 = median(results.iter().map(|r| r.1.as_secs_f64()).collect());
    let p99 = median(results.iter().map(|r| r.2.as_secs_f64()).collect());
    println!(
        "{label}  median proposals/s={rate:>9.0}  p50={:.3}ms  p99={:.3}ms  (runs: {})",
        p50 * 1e3,
        p99 * 1e3,
        runs.join(", ")
    );
}

/// The proposer counts to run, from `CONCORD_BENCH_PROPOSERS` (comma
/// separated) or `default`.
fn proposer_counts(default: &[usize]) -> Vec<usize> {
    std::env::var("CONCORD_BENCH_PROPOSERS")
        .ok()
        .map(|v| v.split(',').filter_map(|p| p.trim().parse().ok()).collect())
        .unwrap_or_else(|| default.to_vec())
}

fn seconds() -> f64 {
    std::env::var("CONCORD_BENCH_SECONDS").ok().and_then(|v| v.parse().ok()).unwrap_or(3.0)
}

fn start<S: Storage>(
    transports: &[Arc<dyn Transport>],
    config: &ActorConfig,
    mut store: impl FnMut(NodeId, Membership) -> S,
) -> BTreeMap<NodeId, Addr<RaftActor<S, Count>>> {
    let membership = Membership::with_voters(transports.iter().map(|t| t.local_id()));
    transports
        .iter()
        .map(|t| {
            let id = t.local_id();
            let actor =
                RaftActor::new(config.clone(), t.clone(), store(id, membership.clone()), Count::default())
                    .expect("valid configuration");
            (id, actix::Actor::start(actor))
        })
        .collect()
}

async fn wait_leader<S: Storage>(nodes: &BTreeMap<NodeId, Addr<RaftActor<S, Count>>>) -> NodeId {
    loop {
        for (id, node) in nodes {
            if let Ok(status) = node.send(GetStatus).await {
                if status.role == Role::Leader {
                    return *id;
                }
            }
        }
        actix_rt::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Runs `proposers` loops of propose-and-wait for `duration`; returns
/// proposals/s and each proposal's latency.
async fn load<S: Storage>(
    leader: Addr<RaftActor<S, Count>>,
    proposers: usize,
    duration: Duration,
) -> (f64, Vec<Duration>) {
    let end = Instant::now() + duration;
    let tasks: Vec<_> = (0..proposers)
        .map(|_| {
            let leader = leader.clone();
            actix_rt::spawn(async move {
                let mut latencies = Vec::new();
                let data = Bytes::from_static(&[0u8; 64]);
                while Instant::now() < end {
                    let sent = Instant::now();
                    let pending = match leader.send(Propose { data: data.clone(), client: None }).await {
                        Ok(Ok(pending)) => pending,
                        Ok(Err(_)) | Err(_) => break,
                    };
                    match pending.await {
                        Ok(_) => latencies.push(sent.elapsed()),
                        Err(RaftError::LeadershipLost) => {}
                        Err(_) => break,
                    }
                }
                latencies
            })
        })
        .collect();
    let started = Instant::now();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("proposer task"));
    }
    let rate = latencies.len() as f64 / started.elapsed().as_secs_f64();
    latencies.sort();
    (rate, latencies)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn bench_memory() {
    println!("## 1. in-process, 3 nodes, in-memory transport and store, 64-byte commands");
    for proposers in proposer_counts(&[1, 64, 256]) {
        let mut results = Vec::new();
        for _ in 0..runs() {
            let network = MemoryNetwork::new();
            let transports: Vec<Arc<dyn Transport>> =
                (1..=3).map(|i| Arc::new(network.join(NodeId(i))) as Arc<dyn Transport>).collect();
            let config = ActorConfig::new(GroupId(1));
            let nodes = start(&transports, &config, |_, m| MemoryStore::new(bootstrap_snapshot(m)));
            let leader = wait_leader(&nodes).await;
            let (rate, latencies) =
                load(nodes[&leader].clone(), proposers, Duration::from_secs_f64(seconds())).await;
            results.push((rate, percentile(&latencies, 0.5), percentile(&latencies, 0.99)));
            for node in nodes.values() {
                let _ = node.send(Shutdown).await;
            }
        }
        report(&format!("proposers={proposers:>3}"), &mut results);
    }
}

async fn tcp_cluster(size: u64) -> (Vec<Arc<dyn Transport>>, Vec<TcpTransport>) {
    let mut tcp = Vec::new();
    for i in 1..=size {
        let config = TcpConfig::new(ClusterId(9), NodeId(i), "127.0.0.1:0".parse().expect("address"));
        tcp.push(TcpTransport::bind(config).await.expect("bind"));
    }
    for a in &tcp {
        for b in &tcp {
            if a.local_id() != b.local_id() {
                a.add_peer(b.local_id(), b.local_addr());
            }
        }
    }
    let transports = tcp.iter().map(|t| Arc::new(t.clone()) as Arc<dyn Transport>).collect();
    (transports, tcp)
}

/// The durable stores section 2 runs, from `CONCORD_BENCH_STORE`.
fn stores() -> Vec<String> {
    std::env::var("CONCORD_BENCH_STORE")
        .unwrap_or_else(|_| "wal,redb".to_string())
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// One run of section 2 on stores made by `open`: proposals/s, p50, p99.
async fn tcp_run<S: Storage>(
    proposers: usize,
    open: impl Fn(&std::path::Path, NodeId) -> S,
) -> (f64, Duration, Duration) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (transports, tcp) = tcp_cluster(3).await;
    let config = ActorConfig::new(GroupId(1));
    let nodes = start(&transports, &config, |id, m| {
        let mut store = open(dir.path(), id);
        bootstrap_store(&mut store, m).expect("bootstrap");
        store
    });
    let leader = wait_leader(&nodes).await;
    let (rate, latencies) = load(nodes[&leader].clone(), proposers, Duration::from_secs_f64(seconds())).await;
    for node in nodes.values() {
        let _ = node.send(Shutdown).await;
    }
    for t in tcp {
        t.shutdown();
    }
    (rate, percentile(&latencies, 0.5), percentile(&latencies, 0.99))
}

async fn bench_tcp() {
    let stores = stores();
    println!(
        "## 2. 3 nodes over TCP loopback, durable stores {stores:?} (one fsync per batch), 64-byte commands"
    );
    for proposers in proposer_counts(&[1, 64]) {
        let mut results: BTreeMap<&str, Vec<(f64, Duration, Duration)>> = BTreeMap::new();
        for _ in 0..runs() {
            for store in &stores {
                let result = match store.as_str() {
                    "redb" => {
                        tcp_run(proposers, |dir, id| {
                            RedbStore::open(dir.join(format!("{id}.redb"))).expect("open store")
                        })
                        .await
                    }
                    "wal" => {
                        tcp_run(proposers, |dir, id| {
                            WalStore::open(dir.join(format!("{id}.wal"))).expect("open store")
                        })
                        .await
                    }
                    other => panic!("CONCORD_BENCH_STORE: unknown store {other} (redb or wal)"),
                };
                results.entry(store.as_str()).or_default().push(result);
            }
        }
        for (store, results) in &mut results {
            report(&format!("{store:<4} proposers={proposers:>3}"), results);
        }
    }
}

async fn bench_failover() {
    let trials: usize =
        std::env::var("CONCORD_BENCH_TRIALS").ok().and_then(|v| v.parse().ok()).unwrap_or(100);
    println!("## 3. failover, 3 nodes, in-memory transport, election timeout 150-300 ms, heartbeat 50 ms, {trials} trials");
    let mut to_leader = Vec::new();
    let mut to_write = Vec::new();
    for _ in 0..trials {
        let network = MemoryNetwork::new();
        let transports: Vec<Arc<dyn Transport>> =
            (1..=3).map(|i| Arc::new(network.join(NodeId(i))) as Arc<dyn Transport>).collect();
        let config = ActorConfig::new(GroupId(1)).with_timeouts_ms(150, 300, 50);
        let mut nodes = start(&transports, &config, |_, m| MemoryStore::new(bootstrap_snapshot(m)));
        let first = wait_leader(&nodes).await;
        // Let followers settle into the steady heartbeat rhythm, then lose the leader at a random phase.
        actix_rt::time::sleep(Duration::from_millis(300 + rand::random_range(0..50))).await;
        let _ = nodes[&first].send(Shutdown).await;
        network.leave(first);
        let lost = Instant::now();
        nodes.remove(&first);
        let second = wait_leader(&nodes).await;
        to_leader.push(lost.elapsed());
        loop {
            let result = nodes[&second].send(Propose { data: Bytes::from_static(b"x"), client: None }).await;
            if let Ok(Ok(pending)) = result {
                if pending.await.is_ok() {
                    break;
                }
            }
        }
        to_write.push(lost.elapsed());
        for node in nodes.values() {
            let _ = node.send(Shutdown).await;
        }
    }
    to_leader.sort();
    to_write.sort();
    for (what, sorted) in [("new leader", &to_leader), ("first committed write", &to_write)] {
        println!(
            "{what:<22} median={:?}  p99={:?}  max={:?}",
            percentile(sorted, 0.5),
            percentile(sorted, 0.99),
            sorted.last().copied().unwrap_or_default()
        );
    }
}

/// Times `write` 500 times; returns p50 and p99.
fn time_500(mut write: impl FnMut(u64)) -> (Duration, Duration) {
    let mut times = Vec::new();
    for i in 0..500u64 {
        let started = Instant::now();
        write(i);
        times.push(started.elapsed());
    }
    times.sort();
    (percentile(&times, 0.5), percentile(&times, 0.99))
}

/// 256-byte writes + `fdatasync` at increasing offsets of a file prepared by `prepare`.
fn raw_syncs(path: &std::path::Path, prepare: impl FnOnce(&std::fs::File)) -> (Duration, Duration) {
    use std::os::unix::fs::FileExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .expect("create");
    prepare(&file);
    file.sync_all().expect("fsync");
    std::fs::File::open(path.parent().expect("a directory")).and_then(|d| d.sync_all()).expect("sync dir");
    time_500(|i| {
        file.write_all_at(&[1u8; 256], i * 256).expect("write");
        file.sync_data().expect("fdatasync");
    })
}

/// The floor under benchmark 2: one-entry writes of each store, against
/// raw writes + `fdatasync` of a small file in the same directory.
fn bench_storage() {
    println!("## 0. storage floor: one-entry write of each store vs raw 256-byte write+fdatasync, 500 each");
    let dir = tempfile::tempdir().expect("temporary directory");
    let entry = |index| concord_raft::storage::conformance::entry(index, 1);
    let mut redb = RedbStore::open(dir.path().join("floor.redb")).expect("open");
    let (p50, p99) = time_500(|i| {
        let entry = entry(i + 1);
        redb.write(WriteBatch { entries: std::slice::from_ref(&entry), ..WriteBatch::default() })
            .expect("write");
    });
    println!("redb commit                 p50={p50:?} p99={p99:?}");
    for (name, preallocation) in
        [("set_len", Preallocation::SetLen), ("written zeros", Preallocation::WrittenZeros)]
    {
        let options = WalOptions { preallocation, ..WalOptions::default() };
        let mut wal =
            WalStore::open_with(dir.path().join(format!("floor-{name}.wal")), options).expect("open");
        let (p50, p99) = time_500(|i| {
            let entry = entry(i + 1);
            wal.write(WriteBatch { entries: std::slice::from_ref(&entry), ..WriteBatch::default() })
                .expect("write");
        });
        println!("wal write, {name:<16} p50={p50:?} p99={p99:?}");
    }
    const FILE_BYTES: usize = 1 << 20;
    type Prepare = fn(&std::fs::File);
    let preallocations: [(&str, Prepare); 3] = [
        ("written zeros", |file| {
            std::io::Write::write_all(&mut &*file, &vec![0u8; FILE_BYTES]).expect("zeros")
        }),
        ("set_len (sparse)", |file| file.set_len(FILE_BYTES as u64).expect("set_len")),
        ("append (growing)", |_| {}),
    ];
    for (name, prepare) in preallocations {
        let (p50, p99) = raw_syncs(&dir.path().join("raw"), prepare);
        println!("fdatasync, {name:<16} p50={p50:?} p99={p99:?}");
    }
}

fn main() {
    let filter: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let wanted = |name: &str| filter.is_empty() || filter.iter().any(|f| f == name);
    if wanted("storage") {
        bench_storage();
    }
    actix::System::new().block_on(async move {
        if wanted("memory") {
            bench_memory().await;
        }
        if wanted("tcp") {
            bench_tcp().await;
        }
        if wanted("failover") {
            bench_failover().await;
        }
    });
}
