//! Real actors end to end over TCP on 127.0.0.1: on every node a Raft
//! actor, a gossip actor and a quorum manager share one transport, and the
//! managers hear liveness only from gossip (a bridge polls each gossip
//! actor's member list, as the runtime's node does). Nothing is announced by
//! hand and no node is added by an operator:
//! - a 6th node knows only the voters' addresses; gossip spreads its own, it
//!   joins the group as a learner and catches up;
//! - a voter is killed (its Raft actor stopped, its sockets shut): gossip
//!   finds it dead, and after the failure window the leader's manager puts
//!   the learner in its seat, once.
//!
//! Waits poll the actors' answers against a deadline.

mod support;

use actix::{Actor, Addr};
use bytes::Bytes;
use concord_gossip::{GossipActor, GossipConfig, GossipCore, MemberMeta};
use concord_membership::actor::gossip::bridge_gossip;
use concord_membership::actor::{ManagerConfig, Notice, QuorumManager, Subscribe};
use concord_membership::core::{Event, HistoryRecord, Outcome};
use concord_membership::health::HealthStatus;
use concord_membership::messages::{Health, History};
use concord_raft::actor::{bootstrap_snapshot, ActorConfig, GetStatus, Propose, RaftActor, Shutdown, Status};
use concord_raft::core::{Membership, Role};
use concord_raft::storage::memory::MemoryStore;
use concord_transport::{ClusterId, GroupId, NodeId, TcpConfig, TcpTransport, Transport};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{Collected, Collector, Tally};

type Raft = Addr<RaftActor<MemoryStore, Tally>>;

/// Longest wait for any expected outcome.
const DEADLINE: Duration = Duration::from_secs(30);
/// Period of the managers' timer.
const MANAGER_TICK: Duration = Duration::from_millis(20);
/// Gossip round: short, so that failures are found within a second or two.
const GOSSIP_TICK_MS: u64 = 50;
/// How often the bridge reads a gossip actor's member list.
const BRIDGE_POLL: Duration = Duration::from_millis(50);
/// A voter dead this long is replaced.
const FAILED_WINDOW_MS: u64 = 1_000;

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

struct Node {
    transport: TcpTransport,
    raft: Raft,
    manager: Addr<QuorumManager>,
}

struct Cluster {
    nodes: BTreeMap<NodeId, Node>,
}

impl Cluster {
    /// Nodes `1..=voters` form the group and know each other's addresses;
    /// the `newcomers` after them know only the voters' addresses and start
    /// with no configuration. Every node runs Raft, gossip (seeded with the
    /// voters) and a manager fed by its gossip.
    async fn start(voters: u64, newcomers: u64) -> Cluster {
        let mut transports = Vec::new();
        for i in 1..=voters + newcomers {
            let listen = "127.0.0.1:0".parse().expect("an address");
            let config = TcpConfig::new(ClusterId(11), NodeId(i), listen);
            transports.push(TcpTransport::bind(config).await.expect("bind on loopback"));
        }
        let seeds: Vec<NodeId> = (1..=voters).map(NodeId).collect();
        for a in &transports {
            for b in
                transports.iter().filter(|b| b.local_id() != a.local_id() && seeds.contains(&b.local_id()))
            {
                a.add_peer(b.local_id(), b.local_addr());
            }
        }
        let membership = Membership::with_voters(seeds.iter().copied());
        let mut nodes = BTreeMap::new();
        for transport in transports {
            let id = transport.local_id();
            let shared: Arc<dyn Transport> = Arc::new(transport.clone());
            let initial = if membership.is_voter(id) { membership.clone() } else { Membership::default() };
            let store = MemoryStore::new(bootstrap_snapshot(initial));
            let raft = RaftActor::new(ActorConfig::new(GroupId(1)), shared.clone(), store, Tally::default())
                .expect("valid raft settings")
                .start();
            let mut config = ManagerConfig::new(id);
            config.tick = MANAGER_TICK;
            config.core.failed_window_ms = FAILED_WINDOW_MS;
            let manager = QuorumManager::new(config, raft.clone()).expect("valid manager settings").start();
            let meta = MemberMeta { address: Some(transport.local_addr()), tags: Default::default() };
            let gossip_config = GossipConfig { tick_ms: GOSSIP_TICK_MS, ..GossipConfig::default() };
            let core = GossipCore::new(id, meta, gossip_config, StdRng::seed_from_u64(id.0));
            let gossip = GossipActor::new(core, shared, seeds.clone()).start();
            bridge_gossip(gossip, vec![manager.clone()], BRIDGE_POLL);
            nodes.insert(id, Node { transport, raft, manager });
        }
        Cluster { nodes }
    }

    async fn status(&self, id: NodeId) -> Status {
        self.nodes[&id].raft.send(GetStatus).await.expect("raft alive")
    }

    /// The leader once every live voter follows it and it committed in its term.
    async fn leader(&self) -> NodeId {
        eventually("a settled leader", async || {
            let mut statuses = Vec::new();
            for &id in self.nodes.keys() {
                statuses.push(self.status(id).await);
            }
            let leader = statuses.iter().find(|s| s.role == Role::Leader && s.commit > 0)?;
            let voters = statuses.iter().filter(|s| s.membership.is_voter(s.id));
            voters
                .into_iter()
                .all(|s| s.leader == Some(leader.id) && s.term == leader.term)
                .then_some(leader.id)
        })
        .await
    }

    async fn history(&self, id: NodeId) -> Vec<HistoryRecord> {
        self.nodes[&id].manager.send(History { limit: None }).await.expect("manager alive")
    }

    /// Stops `id`'s Raft actor and shuts its sockets: a crash, as gossip sees it.
    async fn kill(&mut self, id: NodeId) {
        let node = self.nodes.remove(&id).expect("a live node");
        node.raft.send(Shutdown).await.expect("raft alive");
        node.transport.shutdown();
    }
}

fn voters(membership: &Membership) -> BTreeSet<NodeId> {
    membership.voters.keys().copied().collect()
}

#[actix::test]
async fn over_tcp_a_node_found_by_gossip_joins_catches_up_and_replaces_a_voter_killed_past_the_window() {
    let mut cluster = Cluster::start(5, 1).await;
    let leader = cluster.leader().await;
    let newcomer = NodeId(6);

    // Gossip alone brings node 6 in: a learner, not a voter (5 voters meet
    // the target), with its log caught up with the leader's.
    eventually("the newcomer a caught-up learner", async || {
        let leader_status = cluster.status(leader).await;
        let status = cluster.status(newcomer).await;
        (leader_status.membership.learners.contains(&newcomer) && status.applied >= leader_status.commit)
            .then_some(())
    })
    .await;
    assert_eq!(voters(&cluster.status(leader).await.membership), (1..=5).map(NodeId).collect());
    let joined = cluster.history(leader).await;
    assert!(
        joined.iter().any(|r| r.target.voting.is_learner(newcomer)
            && !r.from.voting.contains(newcomer)
            && r.outcome == Outcome::Completed { steps: 1 }),
        "the join is the leader's own, audited operation: {joined:#?}"
    );
    let health = cluster.nodes[&leader].manager.send(Health).await.expect("manager alive");
    assert_eq!((health.status, health.voters, health.failures_tolerated), (HealthStatus::Healthy, 5, 2));

    let collector = Collector::default().start();
    let subscribed = cluster.nodes[&leader].manager.send(Subscribe(collector.clone().recipient())).await;
    subscribed.expect("manager alive").expect("room for a subscriber");
    let dead = (1..=5).map(NodeId).find(|&id| id != leader).expect("a follower");
    let killed_at = Instant::now();
    cluster.kill(dead).await;

    let expected: BTreeSet<NodeId> = (1..=6).map(NodeId).filter(|&id| id != dead).collect();
    eventually("the dead voter replaced by the newcomer", async || {
        let membership = cluster.status(leader).await.membership;
        (voters(&membership) == expected && membership.learners.is_empty()).then_some(())
    })
    .await;
    assert!(
        killed_at.elapsed() >= Duration::from_millis(FAILED_WINDOW_MS),
        "replaced only after the failure window"
    );
    let replacements = async || -> Vec<Outcome> {
        let history = cluster.history(leader).await;
        history
            .iter()
            .filter(|r| r.from.voting.is_voter(dead) && !r.target.voting.is_voter(dead))
            .map(|r| r.outcome.clone())
            .collect()
    };
    eventually("the replacement recorded", async || (!replacements().await.is_empty()).then_some(())).await;
    assert_eq!(
        replacements().await,
        [Outcome::Completed { steps: 2 }],
        "promoted and removed in one operation"
    );

    // Three more windows: nothing else changes, the failure is reported once.
    let settle = Instant::now();
    while settle.elapsed() < Duration::from_millis(3 * FAILED_WINDOW_MS) {
        assert_eq!(voters(&cluster.status(leader).await.membership), expected);
        assert_eq!(replacements().await.len(), 1);
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
    let notices = collector.send(Collected).await.expect("collector alive");
    let failures = notices
        .iter()
        .filter(|n| matches!(n, Notice::Event(Event::VoterFailed { node }) if *node == dead))
        .count();
    assert_eq!(failures, 1, "{notices:#?}");

    // The new configuration commits, and the promoted node applies it.
    let data = Bytes::from_static(b"after");
    let pending = cluster.nodes[&leader].raft.send(Propose { data, client: None }).await;
    let pending = pending.expect("raft alive").expect("the leader takes writes");
    tokio::time::timeout(Duration::from_secs(5), pending)
        .await
        .expect("applied in time")
        .expect("the new quorum commits");
    let commit = cluster.status(leader).await.commit;
    eventually("the promoted node applied the write", async || {
        (cluster.status(newcomer).await.applied >= commit).then_some(())
    })
    .await;
}
