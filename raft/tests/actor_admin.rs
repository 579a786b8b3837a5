//! The actor's administrative messages over the in-memory transport, and a
//! restart from the durable store.

mod common;

use actix::Addr;
use bytes::Bytes;
use common::{Gate, GateCounts, GatedStore, Sum};
use concord_raft::actor::*;
use concord_raft::core::{Config, Index, Membership, Role};
use concord_raft::error::RequestError;
use concord_raft::machine::StateMachine;
use concord_raft::storage::memory::MemoryStore;
use concord_raft::storage::redb::RedbStore;
use concord_raft::storage::wal::WalStore;
use concord_raft::storage::{Storage, StorageError};
use concord_transport::{GroupId, MemoryNetwork, NodeId, Transport};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(10);

async fn eventually<T>(what: &str, check: impl AsyncFnMut() -> Option<T>) -> T {
    common::eventually(what, DEADLINE, check).await
}

async fn leader_of<S: Storage, M: StateMachine>(nodes: &BTreeMap<NodeId, Addr<RaftActor<S, M>>>) -> NodeId {
    common::leader_of(nodes, DEADLINE).await
}

fn memory_cluster(
    network: &MemoryNetwork,
    voters: &[u64],
    others: &[u64],
) -> BTreeMap<NodeId, Addr<RaftActor<MemoryStore, Sum>>> {
    let membership = Membership::with_voters(voters.iter().map(|&i| NodeId(i)));
    voters
        .iter()
        .chain(others)
        .map(|&i| {
            let transport: Arc<dyn Transport> = Arc::new(network.join(NodeId(i)));
            let initial = if voters.contains(&i) { membership.clone() } else { Membership::default() };
            let store = MemoryStore::new(bootstrap_snapshot(initial));
            let actor =
                RaftActor::new(ActorConfig::new(GroupId(1)), transport, store, Sum::default()).unwrap();
            (NodeId(i), actix::Actor::start(actor))
        })
        .collect()
}

fn command(value: u8) -> Propose {
    Propose { data: Bytes::from(vec![value]), client: None }
}

#[actix::test]
async fn leader_log_status_history_reads_and_metrics_report_the_cluster() {
    let network = MemoryNetwork::new();
    let nodes = memory_cluster(&network, &[1, 2, 3], &[]);
    let leader = leader_of(&nodes).await;
    for v in 1..=10 {
        nodes[&leader].send(command(v)).await.unwrap().unwrap().await.unwrap();
    }
    let info = nodes[&leader].send(Leader).await.unwrap();
    assert_eq!(info.leader_id, Some(leader));
    assert!(info.voted_by.contains(&leader) && info.voted_by.len() >= 2, "{info:?}");
    let history = nodes[&leader].send(ElectionHistory).await.unwrap();
    assert_eq!(history.last().map(|e| e.new_leader), Some(leader));
    let report = eventually("followers caught up", async || {
        let report = nodes[&leader].send(LogStatus).await.ok()?;
        report.followers.iter().all(|f| f.match_index == report.committed_entries).then_some(report)
    })
    .await;
    assert_eq!(report.followers.len(), 2);
    assert_eq!(report.uncommitted_entries, 0);
    let sum = 55u64.to_le_bytes();
    for kind in [ReadKind::Linearizable, ReadKind::Lease] {
        let answer = nodes[&leader].send(Read { kind, query: Bytes::new() }).await.unwrap().unwrap();
        assert_eq!(answer[..], sum, "{kind:?}");
    }
    let follower = *nodes.keys().find(|id| **id != leader).unwrap();
    let refused =
        nodes[&follower].send(Read { kind: ReadKind::Linearizable, query: Bytes::new() }).await.unwrap();
    assert!(matches!(refused, Err(RaftError::Request(_))));
    let metrics = nodes[&leader].send(Metrics).await.unwrap();
    assert_eq!(metrics.proposals, 10);
    assert!(metrics.batches_persisted >= 1 && metrics.leaderships == 1, "{metrics:?}");
    let snapshot = nodes[&leader].send(TakeSnapshot).await.unwrap().unwrap();
    assert!(snapshot >= 11);
    let bad = Config { election_ticks_max: 1, ..Config::default() };
    assert!(nodes[&leader].send(UpdateConfig(bad)).await.unwrap().is_err());
}

#[actix::test]
async fn transfer_step_down_and_trigger_election_move_leadership() {
    let network = MemoryNetwork::new();
    let nodes = memory_cluster(&network, &[1, 2, 3], &[]);
    let first = leader_of(&nodes).await;
    nodes[&first].send(command(1)).await.unwrap().unwrap().await.unwrap();
    let target = *nodes.keys().find(|id| **id != first).unwrap();
    nodes[&first].send(TransferLeader(target)).await.unwrap().unwrap();
    eventually("the transfer", async || (leader_of(&nodes).await == target).then_some(())).await;
    let next = nodes[&target].send(StepDown).await.unwrap().unwrap();
    eventually("the step-down", async || (leader_of(&nodes).await == next).then_some(())).await;
    let third = *nodes.keys().find(|id| **id != next).unwrap();
    nodes[&third].send(TriggerElection).await.unwrap().unwrap();
    eventually("the triggered election", async || (leader_of(&nodes).await == third).then_some(())).await;
    let answer = nodes[&third].send(command(2)).await.unwrap().unwrap().await.unwrap();
    assert_eq!(answer.response[..], 3u64.to_le_bytes());
}

#[actix::test]
async fn a_learner_catches_up_and_is_promoted() {
    let network = MemoryNetwork::new();
    let nodes = memory_cluster(&network, &[1, 2, 3], &[4]);
    let leader = leader_of(&nodes).await;
    for v in 1..=5 {
        nodes[&leader].send(command(v)).await.unwrap().unwrap().await.unwrap();
    }
    let mut next = Membership::with_voters([1, 2, 3].map(NodeId));
    next.learners.insert(NodeId(4));
    nodes[&leader].send(ChangeMembership(next)).await.unwrap().unwrap();
    eventually("the learner caught up", async || {
        let status = nodes[&NodeId(4)].send(GetStatus).await.ok()?;
        (status.applied >= 7 && status.digest == 15).then_some(())
    })
    .await;
    let current = nodes[&leader].send(GetStatus).await.unwrap().membership;
    let mut promoted = current.clone();
    promoted.learners.remove(&NodeId(4));
    promoted.voters.insert(NodeId(4), 1);
    nodes[&leader].send(ChangeMembership(promoted)).await.unwrap().unwrap();
    eventually("the promotion to reach the new voter", async || {
        let status = nodes[&NodeId(4)].send(GetStatus).await.ok()?;
        status.membership.is_voter(NodeId(4)).then_some(())
    })
    .await;
    let applied = nodes[&leader].send(command(1)).await.unwrap().unwrap().await.unwrap();
    assert_eq!(applied.response[..], 16u64.to_le_bytes());
}

#[actix::test]
async fn a_node_restarted_from_its_redb_file_recovers_and_catches_up() {
    restarted_node_recovers_and_catches_up("redb", |path| RedbStore::open(path), false).await;
}

#[actix::test]
async fn a_node_restarted_from_its_wal_recovers_and_catches_up() {
    restarted_node_recovers_and_catches_up("wal", |path| WalStore::open(path), false).await;
}

/// The same with followers writing on the actor's thread.
#[actix::test]
async fn a_node_whose_follower_writes_ran_inline_recovers_from_its_wal_and_catches_up() {
    restarted_node_recovers_and_catches_up("wal", |path| WalStore::open(path), true).await;
}

async fn restarted_node_recovers_and_catches_up<S: Storage>(
    kind: &str,
    open_store: fn(&std::path::Path) -> Result<S, StorageError>,
    follower_writes_inline: bool,
) {
    let dir = tempfile::tempdir().unwrap();
    let network = MemoryNetwork::new();
    let membership = Membership::with_voters([1, 2, 3].map(NodeId));
    let open = |id: u64| {
        let mut store = open_store(&dir.path().join(format!("{id}.{kind}"))).unwrap();
        if store.last_index().unwrap() == 0
            && store.recover().unwrap().snapshot.meta.membership.voters.is_empty()
        {
            bootstrap_store(&mut store, membership.clone()).unwrap();
        }
        store
    };
    let start = |id: u64, store: S| {
        let transport: Arc<dyn Transport> = Arc::new(network.join(NodeId(id)));
        let config = ActorConfig { follower_writes_inline, ..ActorConfig::new(GroupId(1)) };
        let actor = RaftActor::new(config, transport, store, Sum::default()).unwrap();
        actix::Actor::start(actor)
    };
    let mut nodes: BTreeMap<NodeId, _> = (1..=3).map(|i| (NodeId(i), start(i, open(i)))).collect();
    let leader = leader_of(&nodes).await;
    for v in 1..=20 {
        nodes[&leader].send(command(v)).await.unwrap().unwrap().await.unwrap();
    }
    let victim = *nodes.keys().find(|id| **id != leader).unwrap();
    // A follower outside the quorum may lag: wait until it applied (so made
    // durable) everything acknowledged.
    eventually("the victim to apply everything", async || {
        (nodes[&victim].send(GetStatus).await.ok()?.applied >= 21).then_some(())
    })
    .await;
    // The victim restarts from a snapshot of its own plus the log after it.
    let snapshot = nodes[&victim].send(TakeSnapshot).await.unwrap().unwrap();
    assert!(snapshot >= 21, "snapshot at {snapshot}");
    nodes[&victim].send(Shutdown).await.unwrap();
    network.leave(victim);
    nodes.remove(&victim);
    for v in 1..=5 {
        nodes[&leader].send(command(v)).await.unwrap().unwrap().await.unwrap();
    }
    // The store is released once the stopped actor is dropped.
    let store = eventually("the store to be released", async || {
        open_store(&dir.path().join(format!("{}.{kind}", victim.0))).ok()
    })
    .await;
    assert!(store.last_index().unwrap() >= 21, "acknowledged entries survived the stop");
    nodes.insert(victim, start(victim.0, store));
    let expected = (210u64 + 15).to_le_bytes();
    eventually("the restarted node to catch up", async || {
        let status = nodes[&victim].send(GetStatus).await.ok()?;
        (status.digest.to_le_bytes() == expected).then_some(())
    })
    .await;
}

/// A state machine whose state outlives the actor, as one kept on disk would.
#[derive(Clone, Default)]
struct Durable(Arc<std::sync::Mutex<(Index, BTreeMap<u8, u32>)>>);

impl StateMachine for Durable {
    fn apply(&mut self, index: Index, command: &[u8]) -> Bytes {
        let mut state = self.0.lock().unwrap();
        assert!(index > state.0, "index {index} applied again after {}", state.0);
        state.0 = index;
        *state.1.entry(command.first().copied().unwrap_or(0)).or_default() += 1;
        Bytes::new()
    }
    fn query(&self, _: &[u8]) -> Bytes {
        Bytes::new()
    }
    fn snapshot(&self) -> Bytes {
        Bytes::new()
    }
    fn restore(&mut self, _: &[u8]) -> Result<(), String> {
        Ok(())
    }
    fn digest(&self) -> u64 {
        self.0.lock().unwrap().1.values().map(|c| u64::from(*c)).sum()
    }
    fn durable_applied_index(&self) -> Option<Index> {
        Some(self.0.lock().unwrap().0)
    }
}

type DurableNode = Addr<RaftActor<RedbStore, Durable>>;

/// Node `id` of a three-voter group on its redb file in `dir` (bootstrapped
/// at its first start), running `machine`.
fn start_durable(dir: &Path, network: &MemoryNetwork, id: u64, machine: &Durable) -> DurableNode {
    let mut store = RedbStore::open(dir.join(format!("{id}.redb"))).unwrap();
    if store.recover().unwrap().snapshot.meta.membership.voters.is_empty() {
        bootstrap_store(&mut store, Membership::with_voters([1, 2, 3].map(NodeId))).unwrap();
    }
    let transport: Arc<dyn Transport> = Arc::new(network.join(NodeId(id)));
    let actor = RaftActor::new(ActorConfig::new(GroupId(1)), transport, store, machine.clone()).unwrap();
    actix::Actor::start(actor)
}

/// Stops `victim`, takes it off the network and waits until its file can
/// be opened again.
async fn stop_durable(
    dir: &Path,
    network: &MemoryNetwork,
    nodes: &mut BTreeMap<NodeId, DurableNode>,
    victim: NodeId,
) {
    nodes[&victim].send(Shutdown).await.unwrap();
    network.leave(victim);
    nodes.remove(&victim);
    eventually("the file to be released", async || {
        RedbStore::open(dir.join(format!("{}.redb", victim.0))).ok()
    })
    .await;
}

#[actix::test]
async fn a_durable_state_machine_is_not_reapplied_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let network = MemoryNetwork::new();
    let machines: BTreeMap<u64, Durable> = (1..=3).map(|i| (i, Durable::default())).collect();
    let start = |id: u64| start_durable(dir.path(), &network, id, &machines[&id]);
    let mut nodes: BTreeMap<NodeId, _> = (1..=3).map(|i| (NodeId(i), start(i))).collect();
    let leader = leader_of(&nodes).await;
    for v in 1..=20 {
        nodes[&leader].send(command(v)).await.unwrap().unwrap().await.unwrap();
    }
    let victim = *nodes.keys().find(|id| **id != leader).unwrap();
    eventually("the victim to apply everything", async || (machines[&victim.0].digest() == 20).then_some(()))
        .await;
    stop_durable(dir.path(), &network, &mut nodes, victim).await;
    nodes.insert(victim, start(victim.0));
    for v in 21..=25 {
        nodes[&leader].send(command(v)).await.unwrap().unwrap().await.unwrap();
    }
    eventually("the restarted node to apply the new entries", async || {
        (machines[&victim.0].digest() == 25).then_some(())
    })
    .await;
    let counts = machines[&victim.0].0.lock().unwrap().1.clone();
    assert!(counts.values().all(|c| *c == 1), "applied once each: {counts:?}");
}

#[actix::test]
async fn an_empty_proposal_commits_without_reaching_the_state_machine() {
    let network = MemoryNetwork::new();
    let nodes = memory_cluster(&network, &[1, 2, 3], &[]);
    let leader = leader_of(&nodes).await;
    nodes[&leader].send(command(7)).await.unwrap().unwrap().await.unwrap();
    let pending = nodes[&leader].send(ProposeEmpty).await.unwrap().unwrap();
    let index = pending.index;
    let applied = pending.await.unwrap();
    assert_eq!(applied, Proposed { index, response: Bytes::new() });
    let status = nodes[&leader].send(GetStatus).await.unwrap();
    assert!(status.applied >= index && status.commit >= index, "{status:?}");
    assert_eq!(status.digest, 7, "the state machine saw only the command");
    let next = nodes[&leader].send(command(1)).await.unwrap().unwrap().await.unwrap();
    assert_eq!((next.index, &next.response[..]), (index + 1, &8u64.to_le_bytes()[..]));
    let follower = *nodes.keys().find(|id| **id != leader).unwrap();
    let refused = nodes[&follower].send(ProposeEmpty).await.unwrap();
    assert!(matches!(refused, Err(RaftError::Request(RequestError::NotLeader { .. }))), "{refused:?}");
}

/// A restarted node with a durable machine recognizes retries of commands
/// it applied both before and after its last snapshot: none is applied
/// twice. As leader it answers the first with the kept response and the
/// second with `ResponseLost` (its response was not kept).
#[actix::test]
async fn a_durable_machine_recognizes_retries_across_a_restart() {
    use concord_raft::core::ClientTag;
    let dir = tempfile::tempdir().unwrap();
    let network = MemoryNetwork::new();
    let machines: BTreeMap<u64, Durable> = (1..=3).map(|i| (i, Durable::default())).collect();
    let start = |id: u64| start_durable(dir.path(), &network, id, &machines[&id]);
    let tagged = |client_id: u64, value: u8| Propose {
        data: Bytes::from(vec![value]),
        client: Some(ClientTag { client_id, sequence: 1 }),
    };
    let mut nodes: BTreeMap<NodeId, _> = (1..=3).map(|i| (NodeId(i), start(i))).collect();
    let leader = leader_of(&nodes).await;
    let victim = *nodes.keys().find(|id| **id != leader).unwrap();
    nodes[&leader].send(tagged(1, 1)).await.unwrap().unwrap().await.unwrap();
    eventually("the victim to apply the first", async || (machines[&victim.0].digest() == 1).then_some(()))
        .await;
    nodes[&victim].send(TakeSnapshot).await.unwrap().unwrap();
    nodes[&leader].send(tagged(2, 2)).await.unwrap().unwrap().await.unwrap();
    eventually("the victim to apply the second", async || (machines[&victim.0].digest() == 2).then_some(()))
        .await;
    stop_durable(dir.path(), &network, &mut nodes, victim).await;
    nodes.insert(victim, start(victim.0));
    eventually("the restarted node to lead", async || {
        let status = nodes[&victim].send(GetStatus).await.ok()?;
        if status.role == Role::Leader {
            return Some(());
        }
        // Refused or abandoned while the restarted node catches up: ask again.
        let _ = nodes[&leader].send(TransferLeader(victim)).await;
        None
    })
    .await;
    let before_snapshot = nodes[&victim].send(tagged(1, 1)).await.unwrap().unwrap().await;
    assert!(before_snapshot.is_ok(), "{before_snapshot:?}");
    let after_snapshot = nodes[&victim].send(tagged(2, 2)).await.unwrap().unwrap().await;
    assert!(matches!(after_snapshot, Err(RaftError::ResponseLost)), "{after_snapshot:?}");
    nodes[&victim].send(tagged(3, 3)).await.unwrap().unwrap().await.unwrap();
    for (id, machine) in &machines {
        eventually("every replica to apply the third", async || (machine.digest() == 3).then_some(())).await;
        let counts = machine.0.lock().unwrap().1.clone();
        assert!(counts.values().all(|c| *c == 1), "node {id} applied once each: {counts:?}");
    }
}

/// Puts `value` through `leader` and waits until the leader's own write of
/// it has ended: the leader may answer first (its followers made the
/// quorum, `Raft::take_committed_early`), and a gate armed next must hold
/// the next write, not that one.
async fn put_durable<M: StateMachine>(leader: &Addr<RaftActor<GatedStore, M>>, value: u8) {
    let put = leader.send(command(value)).await.unwrap().unwrap().await.unwrap();
    eventually("the leader's own write of the put", async || {
        let status = leader.send(GetStatus).await.ok()?;
        (status.durable_index >= put.index).then_some(())
    })
    .await;
}

const HEARTBEAT_MS: u64 = 30;
const ELECTION_MAX_MS: u64 = 300;

/// Three nodes over one memory network; each store is armed by its entry of
/// `armed`, and all share `gate` and `counts`.
struct GatedCluster {
    nodes: BTreeMap<NodeId, Addr<RaftActor<GatedStore, Sum>>>,
    transports: BTreeMap<NodeId, Arc<dyn Transport>>,
    armed: BTreeMap<NodeId, Arc<AtomicBool>>,
    gate: Gate,
    counts: GateCounts,
}

fn gated_cluster(network: &MemoryNetwork, write_heartbeats_max: Duration) -> GatedCluster {
    gated_cluster_timed(network, write_heartbeats_max, (150, ELECTION_MAX_MS))
}

/// [`gated_cluster`] with election timeouts of `election_ms` (min, max).
fn gated_cluster_timed(
    network: &MemoryNetwork,
    write_heartbeats_max: Duration,
    election_ms: (u64, u64),
) -> GatedCluster {
    let voters = Membership::with_voters([1, 2, 3].map(NodeId));
    let (gate, counts) = (Gate::default(), GateCounts::default());
    let (mut nodes, mut transports, mut armed) = (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
    for id in [1, 2, 3].map(NodeId) {
        let transport: Arc<dyn Transport> = Arc::new(network.join(id));
        let arm = Arc::new(AtomicBool::new(false));
        let store = GatedStore::new(voters.clone(), &gate, &counts).gating_writes(arm.clone());
        let config = ActorConfig {
            write_heartbeats_max,
            ..ActorConfig::new(GroupId(1)).with_timeouts_ms(election_ms.0, election_ms.1, HEARTBEAT_MS)
        };
        let actor = RaftActor::new(config, transport.clone(), store, Sum::default()).unwrap();
        nodes.insert(id, actix::Actor::start(actor));
        transports.insert(id, transport);
        armed.insert(id, arm);
    }
    GatedCluster { nodes, transports, armed, gate, counts }
}

/// Every node's write is held past twice the longest election timeout:
/// meanwhile the leader sends heartbeats and the followers answer them, so
/// no follower campaigns and the leader's check-quorum keeps it; once the
/// writes end, the entry commits in the same term. (Before, nothing left a
/// node while its batch was written.)
#[actix::test]
async fn writes_slower_than_the_election_timeout_keep_the_leader() {
    let network = MemoryNetwork::new();
    let cluster = gated_cluster(&network, WRITE_HEARTBEATS_MAX_DEFAULT);
    let nodes = &cluster.nodes;
    let leader = leader_of(nodes).await;
    put_durable(&nodes[&leader], 1).await;
    let before = nodes[&leader].send(GetStatus).await.unwrap();
    for arm in cluster.armed.values() {
        arm.store(true, Ordering::SeqCst);
    }
    let pending = nodes[&leader].send(command(2)).await.unwrap().unwrap();
    eventually("every node to be held in a write", async || {
        (GateCounts::get(&cluster.counts.writes_held) >= nodes.len()).then_some(())
    })
    .await;
    let enough = 2 * ELECTION_MAX_MS / HEARTBEAT_MS;
    let delivered = |id: &NodeId| cluster.transports[id].stats().delivered;
    let start: BTreeMap<NodeId, u64> = nodes.keys().map(|id| (*id, delivered(id))).collect();
    eventually("heartbeats and their answers during the writes", async || {
        nodes.keys().all(|id| delivered(id) >= start[id] + enough).then_some(())
    })
    .await;
    for (id, node) in nodes {
        let status = node.send(GetStatus).await.unwrap();
        assert_eq!((status.term, status.leader), (before.term, Some(leader)), "node {id} kept its leader");
    }
    for arm in cluster.armed.values() {
        arm.store(false, Ordering::SeqCst);
    }
    cluster.gate.open();
    pending.await.unwrap();
    let status = nodes[&leader].send(GetStatus).await.unwrap();
    assert_eq!((status.term, status.role), (before.term, Role::Leader));
}

/// A leader whose own write is held still answers a proposal once both
/// followers have it durable: they make the quorum without it
/// (`Raft::take_committed_early`); and a linearizable read
/// (`Raft::take_read_states`). Its write then ends and it goes on.
#[actix::test]
async fn a_leader_answers_puts_its_followers_committed_and_reads_while_its_own_write_is_held() {
    let network = MemoryNetwork::new();
    // Election timeouts of 1-2 s: on a loaded machine a late heartbeat
    // must not elect another leader while the test holds this one's write.
    let cluster = gated_cluster_timed(&network, WRITE_HEARTBEATS_MAX_DEFAULT, (1_000, 2_000));
    let nodes = &cluster.nodes;
    let leader = leader_of(nodes).await;
    put_durable(&nodes[&leader], 1).await;
    let before = nodes[&leader].send(Metrics).await.unwrap();
    cluster.armed[&leader].store(true, Ordering::SeqCst);
    let pending = nodes[&leader].send(command(2)).await.unwrap().unwrap();
    let answered =
        actix_rt::time::timeout(DEADLINE, pending).await.expect("answered while the write is held");
    let answered = answered.unwrap();
    // The gate is still shut: the leader's write of entry `answered.index`
    // has not ended.
    eventually("the leader's write held", async || {
        (GateCounts::get(&cluster.counts.writes_held) == 1).then_some(())
    })
    .await;
    let status = nodes[&leader].send(GetStatus).await.unwrap();
    assert_eq!(status.commit, answered.index);
    assert_eq!(answered.response, Bytes::copy_from_slice(&3u64.to_le_bytes()));
    let metrics = nodes[&leader].send(Metrics).await.unwrap();
    assert_eq!(metrics.applied_early, before.applied_early + 1);
    // A linearizable read is confirmed by a heartbeat round and answered
    // meanwhile too, and sees the put.
    let read = nodes[&leader].send(Read { kind: ReadKind::Linearizable, query: Bytes::new() });
    let read = actix_rt::time::timeout(DEADLINE, read).await.expect("read while the write is held");
    assert_eq!(read.unwrap().unwrap(), Bytes::copy_from_slice(&3u64.to_le_bytes()));
    assert_eq!(GateCounts::get(&cluster.counts.writes_held), 1, "the leader's write is still held");
    cluster.armed[&leader].store(false, Ordering::SeqCst);
    cluster.gate.open();
    nodes[&leader].send(command(3)).await.unwrap().unwrap().await.unwrap();
    let status = nodes[&leader].send(GetStatus).await.unwrap();
    assert_eq!((status.role, status.leader), (Role::Leader, Some(leader)));
    let sum = nodes[&leader].send(Read { kind: ReadKind::Linearizable, query: Bytes::new() }).await.unwrap();
    assert_eq!(sum.unwrap(), Bytes::copy_from_slice(&6u64.to_le_bytes()));
}

/// A durable state machine applies only what its own log holds (recovery
/// relies on it): a leader running one, its write held, applies nothing
/// its followers committed meanwhile, and answers once the write ends.
#[actix::test]
async fn a_leader_with_a_durable_state_machine_applies_nothing_before_its_own_write() {
    let network = MemoryNetwork::new();
    let voters = Membership::with_voters([1, 2, 3].map(NodeId));
    let (gate, counts) = (Gate::default(), GateCounts::default());
    let mut armed = BTreeMap::new();
    let mut nodes = BTreeMap::new();
    for id in [1, 2, 3].map(NodeId) {
        let transport: Arc<dyn Transport> = Arc::new(network.join(id));
        let arm = Arc::new(AtomicBool::new(false));
        armed.insert(id, arm.clone());
        let store = GatedStore::new(voters.clone(), &gate, &counts).gating_writes(arm);
        let config = ActorConfig::new(GroupId(1)).with_timeouts_ms(1_000, 2_000, HEARTBEAT_MS);
        let actor = RaftActor::new(config, transport, store, Durable::default()).unwrap();
        nodes.insert(id, actix::Actor::start(actor));
    }
    let leader = leader_of(&nodes).await;
    put_durable(&nodes[&leader], 1).await;
    armed[&leader].store(true, Ordering::SeqCst);
    let pending = nodes[&leader].send(command(2)).await.unwrap().unwrap();
    let index = pending.index;
    eventually("the followers to commit the put", async || {
        let status = nodes[&leader].send(GetStatus).await.ok()?;
        (status.commit >= index).then_some(())
    })
    .await;
    let status = nodes[&leader].send(GetStatus).await.unwrap();
    assert!(status.durable_index < index && status.applied < index, "{status:?}");
    assert_eq!(nodes[&leader].send(Metrics).await.unwrap().applied_early, 0);
    armed[&leader].store(false, Ordering::SeqCst);
    gate.open();
    assert_eq!(pending.await.unwrap().index, index);
}

/// A leader whose write never ends (a stuck disk) sends heartbeats only for
/// `write_heartbeats_max`, then falls silent, and the others elect a leader
/// of a later term.
#[actix::test]
async fn a_leader_whose_write_is_stuck_falls_silent_and_is_replaced() {
    let network = MemoryNetwork::new();
    let cluster = gated_cluster(&network, Duration::from_millis(200));
    let nodes = &cluster.nodes;
    let leader = leader_of(nodes).await;
    put_durable(&nodes[&leader], 1).await;
    let before = nodes[&leader].send(GetStatus).await.unwrap();
    cluster.armed[&leader].store(true, Ordering::SeqCst);
    let _pending = nodes[&leader].send(command(2)).await.unwrap().unwrap();
    let (successor, term) = eventually("another leader", async || {
        for (id, node) in nodes.iter().filter(|(id, _)| **id != leader) {
            let status = node.send(GetStatus).await.ok()?;
            if status.role == Role::Leader {
                return Some((*id, status.term));
            }
        }
        None
    })
    .await;
    assert!(term > before.term, "node {successor} leads term {term}, after {}", before.term);
    cluster.gate.open();
}

/// A leader with `leader_inline_entries_max` writes a lone proposal on its
/// own thread, batches with other proposals in flight on the persistence
/// thread, and, after a slow write, the next batch there too.
#[actix::test]
async fn a_leader_writes_a_lone_proposal_inline_and_busy_or_slow_batches_off_the_loop() {
    let network = MemoryNetwork::new();
    let (gate, counts) = (Gate::default(), GateCounts::default());
    let membership = Membership::with_voters([1, 2, 3].map(NodeId));
    // One flag per node: a follower still writing the busy batches' tail
    // must not take the leader's slow write.
    let slow: BTreeMap<NodeId, Arc<AtomicBool>> = (1..=3).map(|i| (NodeId(i), Default::default())).collect();
    let seen: BTreeMap<NodeId, common::WritesSeen> =
        (1..=3).map(|i| (NodeId(i), Default::default())).collect();
    let nodes: BTreeMap<NodeId, _> = (1..=3)
        .map(|i| {
            let id = NodeId(i);
            let transport: Arc<dyn Transport> = Arc::new(network.join(id));
            let store = GatedStore::new(membership.clone(), &gate, &counts)
                .recording(&seen[&id])
                .slowing_once(&slow[&id]);
            let config = ActorConfig { leader_inline_entries_max: 1, ..ActorConfig::new(GroupId(1)) };
            (id, actix::Actor::start(RaftActor::new(config, transport, store, Sum::default()).unwrap()))
        })
        .collect();
    let leader = leader_of(&nodes).await;
    let writes = &seen[&leader];
    let take = || std::mem::take(&mut *writes.lock().unwrap());
    // Every entry the leader holds is durable and applied, so no write is
    // left in flight to be recorded in the next phase (early apply lets
    // proposers be answered before the leader's own write ends).
    let settled = async || {
        eventually("the leader's writes to end", async || {
            let status = nodes[&leader].send(GetStatus).await.ok()?;
            (status.durable_index == status.last_index && status.applied == status.last_index).then_some(())
        })
        .await
    };
    // Lone proposals, one at a time: written inline.
    settled().await;
    take();
    for v in 1..=5 {
        nodes[&leader].send(command(v)).await.unwrap().unwrap().await.unwrap();
    }
    let lone = take();
    assert_eq!(lone.iter().filter(|w| w.entries > 0).count(), 5, "{lone:?}");
    assert!(lone.iter().all(|w| !w.on_persist_thread), "{lone:?}");
    // Fifty at once, queued in the mailbox before the leader drives: while
    // others are in flight, batches leave the loop.
    let queued: Vec<_> = (0..50).map(|v| nodes[&leader].send(command(v))).collect();
    let mut waiting = Vec::new();
    for proposal in queued {
        waiting.push(proposal.await.unwrap().unwrap());
    }
    for applied in waiting {
        applied.await.unwrap();
    }
    settled().await;
    let busy = take();
    assert!(busy.iter().any(|w| w.on_persist_thread && w.entries > 0), "{busy:?}");
    // A slow inline write sends the next batch to the persistence thread;
    // once that one is fast, the one after is inline again.
    slow[&leader].store(true, Ordering::SeqCst);
    for v in 1..=3 {
        nodes[&leader].send(command(v)).await.unwrap().unwrap().await.unwrap();
    }
    settled().await;
    let threads: Vec<bool> = take().iter().filter(|w| w.entries > 0).map(|w| w.on_persist_thread).collect();
    assert_eq!(threads, [false, true, false]);
}

/// With `apply_bytes_max` below one entry, every node applies its
/// committed entries one batch at a time, returning to its loop between
/// batches (`RaftActor::drive`): all of a burst of proposals are still
/// applied everywhere, in order, and answered.
#[actix::test]
async fn entries_applied_one_batch_per_turn_of_the_loop_all_arrive() {
    let network = MemoryNetwork::new();
    let membership = Membership::with_voters([1, 2, 3].map(NodeId));
    let nodes: BTreeMap<NodeId, Addr<RaftActor<MemoryStore, Sum>>> = (1..=3)
        .map(|i| {
            let transport: Arc<dyn Transport> = Arc::new(network.join(NodeId(i)));
            let store = MemoryStore::new(bootstrap_snapshot(membership.clone()));
            let mut config = ActorConfig::new(GroupId(1));
            config.core.apply_bytes_max = 1;
            config.follower_writes_inline = i % 2 == 0;
            (
                NodeId(i),
                actix::Actor::start(RaftActor::new(config, transport, store, Sum::default()).unwrap()),
            )
        })
        .collect();
    let leader = leader_of(&nodes).await;
    let queued: Vec<_> = (1..=60).map(|v| nodes[&leader].send(command(v))).collect();
    let mut waiting = Vec::new();
    for proposal in queued {
        waiting.push(proposal.await.unwrap().unwrap());
    }
    let mut sums = Vec::new();
    for applied in waiting {
        let response = applied.await.unwrap().response;
        sums.push(u64::from_le_bytes(response[..].try_into().unwrap()));
    }
    let expected: Vec<u64> = (1..=60u64).map(|v| v * (v + 1) / 2).collect();
    assert_eq!(sums, expected, "each proposer answered with the sum through its entry");
    for (id, node) in &nodes {
        eventually("every node to apply the burst", async || {
            let status = node.send(GetStatus).await.ok()?;
            (status.digest == (1..=60).sum::<u64>()).then_some(())
        })
        .await;
        assert!(node.connected(), "node {id} is running");
    }
}
