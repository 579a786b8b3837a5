//! The `QuorumManager` actor wired to real Raft actors over the in-memory
//! transport: health as nodes die, a node joining through gossip, a failed
//! voter replaced (or removed) once, a leader removed by its own manager
//! in one request, a minority (dead or partitioned) that reports quorum lost and
//! proposes nothing, and recovery after a partition heals; the health and replacement scenarios again over TCP
//! on 127.0.0.1. Waits poll the actors' answers against a deadline.

mod support;

use actix::{Actor, Addr};
use bytes::Bytes;
use concord_membership::actor::{
    ManagerConfig, ManagerError, MemberLiveness, Notice, QuorumManager, Subscribe,
};
use concord_membership::core::{Event, HistoryRecord, Outcome, RequestError};
use concord_membership::health::{ClusterHealth, HealthStatus, Liveness};
use concord_membership::messages::{AddNode, Health, History, RemoveNode, VerifyQuorum};
use concord_raft::actor::{bootstrap_snapshot, ActorConfig, GetStatus, Propose, RaftActor, Shutdown, Status};
use concord_raft::core::{Membership, Role};
use concord_raft::storage::memory::MemoryStore;
use concord_transport::fault::{FaultConfig, Faults};
use concord_transport::{ClusterId, GroupId, MemoryNetwork, NodeId, TcpConfig, TcpTransport, Transport};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{Collected, Collector, Tally};

type Raft = Addr<RaftActor<MemoryStore, Tally>>;

/// Longest wait for any expected outcome.
const DEADLINE: Duration = Duration::from_secs(20);
/// Period of the managers' timer: short, so tests run fast.
const MANAGER_TICK: Duration = Duration::from_millis(20);
/// The failure window of tests that expect a replacement.
const SHORT_WINDOW_MS: u64 = 300;

struct Node {
    raft: Raft,
    manager: Addr<QuorumManager>,
}

/// The network the nodes share, and how to cut one node off it.
enum Network {
    Memory(MemoryNetwork),
    /// In memory, through one shared set of faults that can partition.
    Partitionable(MemoryNetwork, Faults),
    Tcp(BTreeMap<NodeId, TcpTransport>),
}

impl Network {
    fn memory(nodes: u64) -> (Network, Vec<Arc<dyn Transport>>) {
        let network = MemoryNetwork::new();
        let transports =
            (1..=nodes).map(|i| Arc::new(network.join(NodeId(i))) as Arc<dyn Transport>).collect();
        (Network::Memory(network), transports)
    }

    fn partitionable(nodes: u64) -> (Network, Vec<Arc<dyn Transport>>) {
        let network = MemoryNetwork::new();
        let faults = Faults::new(1, FaultConfig::default());
        let transports = (1..=nodes)
            .map(|i| Arc::new(faults.wrap(network.join(NodeId(i)))) as Arc<dyn Transport>)
            .collect();
        (Network::Partitionable(network, faults), transports)
    }

    async fn tcp(nodes: u64) -> (Network, Vec<Arc<dyn Transport>>) {
        let mut tcp = Vec::new();
        for i in 1..=nodes {
            let listen = "127.0.0.1:0".parse().expect("an address");
            tcp.push(
                TcpTransport::bind(TcpConfig::new(ClusterId(7), NodeId(i), listen)).await.expect("bind"),
            );
        }
        for a in &tcp {
            for b in tcp.iter().filter(|b| b.local_id() != a.local_id()) {
                a.add_peer(b.local_id(), b.local_addr());
            }
        }
        let transports = tcp.iter().map(|t| Arc::new(t.clone()) as Arc<dyn Transport>).collect();
        (Network::Tcp(tcp.into_iter().map(|t| (t.local_id(), t)).collect()), transports)
    }

    fn cut(&self, id: NodeId) {
        match self {
            Network::Memory(network) | Network::Partitionable(network, _) => network.leave(id),
            Network::Tcp(transports) => {
                if let Some(transport) = transports.get(&id) {
                    transport.shutdown();
                }
            }
        }
    }
}

struct Cluster {
    network: Network,
    nodes: BTreeMap<NodeId, Node>,
}

impl Cluster {
    /// Over the in-memory transport: see [`Cluster::start`].
    fn memory(voters: u64, newcomers: u64, failed_window_ms: u64) -> Cluster {
        let (network, transports) = Network::memory(voters + newcomers);
        Cluster::start(network, transports, voters, failed_window_ms)
    }

    /// In memory, with partitions: see [`Cluster::start`].
    fn partitionable(voters: u64, failed_window_ms: u64) -> (Cluster, Faults) {
        let (network, transports) = Network::partitionable(voters);
        let Network::Partitionable(_, faults) = &network else { unreachable!("built partitionable") };
        let faults = faults.clone();
        (Cluster::start(network, transports, voters, failed_window_ms), faults)
    }

    /// Over TCP on 127.0.0.1: see [`Cluster::start`].
    async fn tcp(voters: u64, newcomers: u64, failed_window_ms: u64) -> Cluster {
        let (network, transports) = Network::tcp(voters + newcomers).await;
        Cluster::start(network, transports, voters, failed_window_ms)
    }

    /// The first `voters` transports' nodes form the group; the others
    /// start with no configuration (they wait to be added). Every node runs
    /// a manager with `failed_window_ms`.
    fn start(
        network: Network,
        transports: Vec<Arc<dyn Transport>>,
        voters: u64,
        failed_window_ms: u64,
    ) -> Cluster {
        let membership = Membership::with_voters((1..=voters).map(NodeId));
        let mut nodes = BTreeMap::new();
        for transport in transports {
            let id = transport.local_id();
            let initial = if membership.is_voter(id) { membership.clone() } else { Membership::default() };
            let store = MemoryStore::new(bootstrap_snapshot(initial));
            let raft = RaftActor::new(ActorConfig::new(GroupId(1)), transport, store, Tally::default())
                .expect("valid raft settings")
                .start();
            let mut config = ManagerConfig::new(id);
            config.tick = MANAGER_TICK;
            config.core.failed_window_ms = failed_window_ms;
            let manager = QuorumManager::new(config, raft.clone()).expect("valid manager settings").start();
            nodes.insert(id, Node { raft, manager });
        }
        Cluster { network, nodes }
    }

    async fn statuses(&self) -> Vec<Status> {
        let mut out = Vec::new();
        for node in self.nodes.values() {
            out.push(node.raft.send(GetStatus).await.expect("raft alive"));
        }
        out
    }

    /// The leader once every live node follows it and it committed in its
    /// term (so that it accepts configuration changes).
    async fn leader(&self) -> NodeId {
        eventually("a settled leader", async || {
            let statuses = self.statuses().await;
            let leader = statuses.iter().find(|s| s.role == Role::Leader && s.commit > 0)?;
            let voters = statuses.iter().filter(|s| s.membership.is_voter(s.id));
            voters
                .into_iter()
                .all(|s| s.leader == Some(leader.id) && s.term == leader.term)
                .then_some(leader.id)
        })
        .await
    }

    async fn membership(&self, id: NodeId) -> Membership {
        self.nodes[&id].raft.send(GetStatus).await.expect("raft alive").membership
    }

    async fn health(&self, id: NodeId) -> ClusterHealth {
        self.nodes[&id].manager.send(Health).await.expect("manager alive")
    }

    /// A collector subscribed to `id`'s manager.
    async fn subscribe(&self, id: NodeId) -> Addr<Collector> {
        let collector = Collector::default().start();
        let subscribed = self.nodes[&id].manager.send(Subscribe(collector.clone().recipient())).await;
        subscribed.expect("manager alive").expect("room for a subscriber");
        collector
    }

    async fn history(&self, id: NodeId) -> Vec<HistoryRecord> {
        self.nodes[&id].manager.send(History { limit: None }).await.expect("manager alive")
    }

    /// Gossip's verdict on `node`, told to every live manager.
    fn announce(&self, node: NodeId, state: Liveness) {
        self.announce_to(self.nodes.keys().copied(), node, state);
    }

    /// Gossip's verdict on `node`, as the managers of `to` hear it.
    fn announce_to(&self, to: impl IntoIterator<Item = NodeId>, node: NodeId, state: Liveness) {
        for id in to {
            self.nodes[&id].manager.do_send(MemberLiveness { node, state });
        }
    }

    /// Stops `id`'s Raft actor and cuts it off, then tells the others it
    /// is dead, as gossip would.
    async fn kill(&mut self, id: NodeId) {
        let node = self.nodes.remove(&id).expect("a live node");
        node.raft.send(Shutdown).await.expect("raft alive");
        self.network.cut(id);
        self.announce(id, Liveness::Dead);
    }

    /// Voters other than `leader`, lowest first.
    fn followers(&self, leader: NodeId, count: usize) -> Vec<NodeId> {
        self.nodes.keys().copied().filter(|&id| id != leader).take(count).collect()
    }
}

/// Polls until `check` holds, failing after [`DEADLINE`].
async fn eventually<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        actix_rt::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Checks `invariant` repeatedly for `period`: for outcomes that must *not*
/// happen, such as a second replacement.
async fn throughout(what: &str, period: Duration, mut invariant: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < period {
        assert!(invariant().await, "{what} broke");
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Proposes and waits until the entry is applied: `Propose` answers with a
/// `Pending` once the entry is in the leader's log, which a minority leader
/// still does; only awaiting it shows whether it commits.
async fn write(raft: &Raft, value: u64) -> Result<(), String> {
    let data = Bytes::copy_from_slice(&value.to_le_bytes());
    let pending = match raft.send(Propose { data, client: None }).await {
        Ok(Ok(pending)) => pending,
        Ok(Err(error)) => return Err(error.to_string()),
        Err(error) => return Err(error.to_string()),
    };
    match tokio::time::timeout(WRITE_DEADLINE, pending).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err(format!("not applied within {WRITE_DEADLINE:?}")),
    }
}

/// How long a test write may take to apply.
const WRITE_DEADLINE: Duration = Duration::from_secs(3);

fn voters(membership: &Membership) -> BTreeSet<NodeId> {
    membership.voters.keys().copied().collect()
}

/// (a) 5 voters, then 2 dead: degraded, no failure left, still writable.
async fn two_dead_of_five(mut cluster: Cluster) {
    let leader = cluster.leader().await;
    let healthy = eventually("a healthy report", async || {
        let health = cluster.health(leader).await;
        (health.status == HealthStatus::Healthy && health.has_leader).then_some(health)
    })
    .await;
    assert_eq!((healthy.voters, healthy.quorum_size, healthy.failures_tolerated), (5, 3, 2));
    let collector = cluster.subscribe(leader).await;

    let dead = cluster.followers(leader, 2);
    for &id in &dead {
        cluster.kill(id).await;
    }
    for &id in cluster.nodes.keys() {
        let health = eventually("a degraded report", async || {
            let health = cluster.health(id).await;
            (health.status == HealthStatus::Degraded).then_some(health)
        })
        .await;
        assert!(health.quorum_available);
        assert_eq!((health.voters, health.reachable_voters, health.failures_tolerated), (5, 3, 0));
        assert_eq!(health.failed_agents, dead);
    }
    eventually("a degraded notice", async || {
        let notices = collector.send(Collected).await.expect("collector alive");
        notices
            .iter()
            .any(|n| matches!(n, Notice::Health(h) if h.status == HealthStatus::Degraded))
            .then_some(())
    })
    .await;
    write(&cluster.nodes[&leader].raft, 7).await.expect("three of five still commit");
    let verified = cluster.nodes[&leader].manager.send(VerifyQuorum).await.expect("manager alive");
    assert_eq!(verified, Ok(Outcome::Verified { committed: true }));
    assert!(
        cluster.health(leader).await.commit_latency_p50.is_some(),
        "the verification's latency is observed"
    );
    assert!(cluster.history(leader).await.is_empty(), "nothing changed within the failure window");
}

#[actix::test]
async fn two_dead_of_five_is_degraded_with_no_failure_left_and_writes_still_commit() {
    two_dead_of_five(Cluster::memory(5, 0, 60_000)).await;
}

#[actix::test]
async fn over_tcp_two_dead_of_five_is_degraded_with_no_failure_left() {
    two_dead_of_five(Cluster::tcp(5, 0, 60_000).await).await;
}

#[actix::test]
async fn three_dead_of_five_reports_quorum_lost_and_proposes_nothing() {
    let mut cluster = Cluster::memory(5, 0, SHORT_WINDOW_MS);
    let leader = cluster.leader().await;
    let before = cluster.membership(leader).await;
    for id in cluster.followers(leader, 3) {
        cluster.kill(id).await;
    }
    let survivors: Vec<NodeId> = cluster.nodes.keys().copied().collect();
    for &id in &survivors {
        let health = eventually("a quorum-lost report", async || {
            let health = cluster.health(id).await;
            (health.status == HealthStatus::QuorumLost).then_some(health)
        })
        .await;
        assert!(!health.quorum_available);
        assert_eq!((health.reachable_voters, health.failures_tolerated), (2, 0));
    }
    let refused =
        cluster.nodes[&leader].manager.send(AddNode { node: NodeId(9), voter: false, weight: None });
    let refused = refused.await.expect("manager alive");
    assert!(
        matches!(
            refused,
            Err(ManagerError::Request(RequestError::QuorumLost | RequestError::NotLeader { .. }))
        ),
        "{refused:?}"
    );
    // Well past the failure window: the dead voters are neither replaced
    // nor removed, since no change can commit.
    throughout("an unchanged configuration", Duration::from_millis(4 * SHORT_WINDOW_MS), async || {
        let mut unchanged = true;
        for &id in &survivors {
            unchanged &= cluster.membership(id).await == before && cluster.history(id).await.is_empty();
        }
        unchanged
    })
    .await;
}

#[actix::test]
async fn a_new_node_joins_as_a_learner_catches_up_and_is_promoted() {
    let cluster = Cluster::memory(4, 1, 60_000);
    let leader = cluster.leader().await;
    let newcomer = NodeId(5);
    cluster.announce(newcomer, Liveness::Alive);
    let promoted = eventually("the newcomer promoted", async || {
        let membership = cluster.membership(leader).await;
        (membership.is_voter(newcomer) && membership.learners.is_empty()).then_some(membership)
    })
    .await;
    assert_eq!(voters(&promoted), (1..=5).map(NodeId).collect());
    // An operation enters the history once its verification commits, a
    // little after the configuration it applied.
    let history = eventually("both operations recorded", async || {
        let history = cluster.history(leader).await;
        (history.len() >= 2).then_some(history)
    })
    .await;
    let steps: Vec<(bool, bool, &Outcome)> = history
        .iter()
        .map(|r| (r.target.voting.is_learner(newcomer), r.target.voting.is_voter(newcomer), &r.outcome))
        .collect();
    assert_eq!(
        steps,
        [(true, false, &Outcome::Completed { steps: 1 }), (false, true, &Outcome::Completed { steps: 1 })],
        "joined as a learner, then promoted: {history:#?}"
    );
    let status = eventually("the newcomer caught up", async || {
        let status = cluster.nodes[&newcomer].raft.send(GetStatus).await.expect("raft alive");
        status.membership.is_voter(newcomer).then_some(status)
    })
    .await;
    assert_eq!(status.leader, Some(leader));
}

/// How many operations took `dead` out of the voters, with their outcomes.
fn removals_of(dead: NodeId, history: &[HistoryRecord]) -> Vec<Outcome> {
    history
        .iter()
        .filter(|r| r.from.voting.is_voter(dead) && !r.target.voting.is_voter(dead))
        .map(|r| r.outcome.clone())
        .collect()
}

/// (c) 5 voters and a 6th node that joins as a learner; a voter dead past
/// the window is replaced by it, once.
async fn replaced_once(mut cluster: Cluster) {
    let leader = cluster.leader().await;
    let learner = NodeId(6);
    cluster.announce(learner, Liveness::Alive);
    eventually("the learner caught up", async || {
        let leader_status = cluster.nodes[&leader].raft.send(GetStatus).await.expect("raft alive");
        let status = cluster.nodes[&learner].raft.send(GetStatus).await.expect("raft alive");
        (leader_status.membership.learners.contains(&learner) && status.applied >= leader_status.commit)
            .then_some(())
    })
    .await;
    assert_eq!(voters(&cluster.membership(leader).await).len(), 5, "an odd count waits for a second learner");

    let collector = cluster.subscribe(leader).await;
    let dead = cluster.followers(leader, 1)[0];
    cluster.kill(dead).await;
    let expected: BTreeSet<NodeId> = (1..=6).map(NodeId).filter(|&id| id != dead).collect();
    eventually("the dead voter replaced", async || {
        let membership = cluster.membership(leader).await;
        (voters(&membership) == expected && membership.learners.is_empty()).then_some(())
    })
    .await;
    let replacements = async || removals_of(dead, &cluster.history(leader).await);
    eventually("the replacement recorded", async || (!replacements().await.is_empty()).then_some(())).await;
    assert_eq!(
        replacements().await,
        [Outcome::Completed { steps: 2 }],
        "removed and promoted in one operation"
    );
    throughout("one replacement", Duration::from_millis(3 * SHORT_WINDOW_MS), async || {
        let membership = cluster.membership(leader).await;
        voters(&membership) == expected && replacements().await.len() == 1
    })
    .await;
    let notices = collector.send(Collected).await.expect("collector alive");
    let failures: Vec<&Notice> = notices
        .iter()
        .filter(|n| matches!(n, Notice::Event(Event::VoterFailed { node }) if *node == dead))
        .collect();
    assert_eq!(failures.len(), 1, "the failure is reported once: {notices:#?}");
    write(&cluster.nodes[&learner].raft, 1).await.expect_err("only the leader takes writes");
    write(&cluster.nodes[&leader].raft, 1).await.expect("the new configuration commits");
}

#[actix::test]
async fn a_voter_dead_past_the_window_is_replaced_exactly_once_by_a_caught_up_learner() {
    replaced_once(Cluster::memory(5, 1, SHORT_WINDOW_MS)).await;
}

#[actix::test]
async fn over_tcp_a_voter_dead_past_the_window_is_replaced_exactly_once() {
    replaced_once(Cluster::tcp(5, 1, SHORT_WINDOW_MS).await).await;
}

#[actix::test]
async fn a_voter_dead_past_the_window_with_no_learner_is_removed_exactly_once() {
    let mut cluster = Cluster::memory(5, 0, SHORT_WINDOW_MS);
    let leader = cluster.leader().await;
    let dead = cluster.followers(leader, 1)[0];
    cluster.kill(dead).await;
    let expected: BTreeSet<NodeId> = (1..=5).map(NodeId).filter(|&id| id != dead).collect();
    eventually("the dead voter removed", async || {
        (voters(&cluster.membership(leader).await) == expected).then_some(())
    })
    .await;
    let removals = async || removals_of(dead, &cluster.history(leader).await);
    eventually("the removal recorded", async || (!removals().await.is_empty()).then_some(())).await;
    assert_eq!(removals().await, [Outcome::Completed { steps: 1 }]);
    let health = cluster.health(leader).await;
    assert_eq!((health.voters, health.quorum_size, health.failures_tolerated), (4, 3, 1));
    throughout("one removal, four voters", Duration::from_millis(3 * SHORT_WINDOW_MS), async || {
        voters(&cluster.membership(leader).await) == expected && removals().await.len() == 1
    })
    .await;
}

#[actix::test]
async fn removing_the_leader_is_answered_by_its_manager_and_the_others_elect_a_new_leader() {
    let mut cluster = Cluster::memory(5, 0, 60_000);
    let leader = cluster.leader().await;
    eventually("the leader's manager to see its leadership", async || {
        (cluster.health(leader).await.leader == Some(leader)).then_some(())
    })
    .await;
    // One request, one answer: Raft keeps the leader until its removal
    // commits (counted by the new configuration's quorum), then steps it down.
    let answer =
        cluster.nodes[&leader].manager.send(RemoveNode { node: leader }).await.expect("manager alive");
    assert_eq!(answer, Ok(Outcome::Completed { steps: 1 }));
    let removed = cluster.nodes.remove(&leader).expect("the old leader");
    let remaining: BTreeSet<NodeId> = (1..=5).map(NodeId).filter(|&id| id != leader).collect();
    let successor = cluster.leader().await;
    assert_ne!(successor, leader);
    assert_eq!(voters(&cluster.membership(successor).await), remaining);
    let old = removed.raft.send(GetStatus).await.expect("raft alive");
    assert_ne!(old.role, Role::Leader, "the removed leader stepped down");
    write(&cluster.nodes[&successor].raft, 1).await.expect("the new configuration commits");
}

#[actix::test]
async fn a_minority_partition_reports_quorum_lost_and_recovers_after_the_heal_unaided() {
    let (cluster, faults) = Cluster::partitionable(5, 60_000);
    let first = cluster.leader().await;
    // The first leader ends up in the minority, the harder side.
    let minority: Vec<NodeId> = [first].into_iter().chain(cluster.followers(first, 1)).collect();
    let majority: Vec<NodeId> = cluster.nodes.keys().copied().filter(|id| !minority.contains(id)).collect();
    faults.partition(&minority, &majority);
    // Before gossip reports anything, the cut-off leader's manager still
    // tries; its verification must fail, since no quorum commits the no-op.
    let verified = cluster.nodes[&first].manager.send(VerifyQuorum).await.expect("manager alive");
    assert_ne!(
        verified,
        Ok(Outcome::Verified { committed: true }),
        "a minority leader cannot verify its quorum"
    );
    for (side, other) in [(&minority, &majority), (&majority, &minority)] {
        for &node in other {
            cluster.announce_to(side.iter().copied(), node, Liveness::Dead);
        }
    }
    for &id in &minority {
        eventually("quorum lost in the minority", async || {
            (cluster.health(id).await.status == HealthStatus::QuorumLost).then_some(())
        })
        .await;
    }
    let majority_leader = eventually("a majority leader", async || {
        let health = cluster.health(majority[0]).await;
        health.leader.filter(|l| majority.contains(l) && health.status == HealthStatus::Degraded)
    })
    .await;
    write(&cluster.nodes[&majority_leader].raft, 1).await.expect("the majority commits");
    write(&cluster.nodes[&first].raft, 2).await.expect_err("the minority refuses writes");

    faults.heal();
    for &node in &minority {
        cluster.announce(node, Liveness::Alive);
    }
    for &node in &majority {
        cluster.announce(node, Liveness::Alive);
    }
    let leader = cluster.leader().await;
    for &id in cluster.nodes.keys() {
        let health = eventually("healthy after the heal", async || {
            let health = cluster.health(id).await;
            (health.status == HealthStatus::Healthy && health.leader == Some(leader)).then_some(health)
        })
        .await;
        assert_eq!((health.voters, health.failures_tolerated), (5, 2));
        assert!(cluster.history(id).await.is_empty(), "recovered with no configuration change");
    }
    write(&cluster.nodes[&leader].raft, 3).await.expect("the healed group commits");
}
