//! The quorum manager replacing a failed voter.
//!
//! Six nodes in one process on the in-memory transport, each with a Raft
//! actor and a `QuorumManager`. Nodes 1–5 are the voters; node 6 starts
//! empty. Gossip is played by hand here: we tell the managers what gossip
//! would (`MemberLiveness`).
//!
//! 1. Node 6 is announced alive: the leader's manager adds it as a learner
//!    and Raft brings its log up to date.
//! 2. A follower is killed and announced dead. Once it has been dead for the
//!    failure window (60 s in the reference; shortened to 500 ms here) the
//!    manager replaces it: one audited operation that removes the dead
//!    voter and promotes the caught-up learner, each step a Raft
//!    configuration change.
//! 3. We print the manager's history.
//!
//! Run: `cargo run -p concord-examples --example quorum_replace`

use actix::prelude::*;
use bytes::Bytes;
use concord_membership::actor::{ManagerConfig, MemberLiveness, QuorumManager};
use concord_membership::health::Liveness;
use concord_membership::messages::{Health, History};
use concord_raft::actor::{bootstrap_snapshot, ActorConfig, GetStatus, RaftActor, Shutdown, Status};
use concord_raft::core::{Index, Membership, Role};
use concord_raft::machine::StateMachine;
use concord_raft::storage::memory::MemoryStore;
use concord_transport::{GroupId, MemoryNetwork, NodeId, Transport};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Voters of the initial configuration.
const VOTERS: u64 = 5;
/// How long a voter must stay dead before it is replaced (shortened).
const FAILED_WINDOW_MS: u64 = 500;
/// Period of the managers' timer.
const MANAGER_TICK: Duration = Duration::from_millis(20);
/// Longest wait for each step.
const STEP_DEADLINE: Duration = Duration::from_secs(15);

/// A state machine with nothing in it: this example is about membership.
#[derive(Default)]
struct Nothing;

impl StateMachine for Nothing {
    fn apply(&mut self, _: Index, _: &[u8]) -> Bytes {
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
        0
    }
}

struct Node {
    raft: Addr<RaftActor<MemoryStore, Nothing>>,
    manager: Addr<QuorumManager>,
}

/// Polls `check` until it answers, or fails after [`STEP_DEADLINE`].
async fn wait_for<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> Result<T, String> {
    let start = Instant::now();
    loop {
        if let Some(value) = check().await {
            return Ok(value);
        }
        if start.elapsed() > STEP_DEADLINE {
            return Err(format!("timed out waiting for {what}"));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn status(node: &Node) -> Result<Status, String> {
    node.raft.send(GetStatus).await.map_err(|e| e.to_string())
}

/// Voter ids of a Raft membership, as a readable list.
fn voters(membership: &Membership) -> Vec<u64> {
    membership.voters.keys().map(|id| id.0).collect()
}

#[actix::main]
async fn main() -> Result<(), String> {
    let network = MemoryNetwork::new();
    let initial = Membership::with_voters((1..=VOTERS).map(NodeId));
    let mut nodes = BTreeMap::new();
    for i in 1..=VOTERS + 1 {
        let id = NodeId(i);
        let transport: Arc<dyn Transport> = Arc::new(network.join(id));
        // Node 6 knows no configuration: it waits to be added.
        let membership = if i <= VOTERS { initial.clone() } else { Membership::default() };
        let store = MemoryStore::new(bootstrap_snapshot(membership));
        let raft = RaftActor::new(ActorConfig::new(GroupId(1)), transport, store, Nothing)
            .map_err(|e| e.to_string())?
            .start();
        let mut config = ManagerConfig::new(id);
        config.tick = MANAGER_TICK;
        config.core.failed_window_ms = FAILED_WINDOW_MS;
        let manager = QuorumManager::new(config, raft.clone()).map_err(|e| e.to_string())?.start();
        nodes.insert(id, Node { raft, manager });
    }

    let leader = wait_for("a leader that committed", async || {
        for node in nodes.values() {
            let status = status(node).await.ok()?;
            if status.role == Role::Leader && status.commit > 0 {
                return Some(status.id);
            }
        }
        None
    })
    .await?;
    println!("voters {:?}, leader {leader}", voters(&initial));

    // 1. Gossip reports node 6 alive: it joins as a learner and catches up.
    let newcomer = NodeId(VOTERS + 1);
    for node in nodes.values() {
        node.manager.do_send(MemberLiveness { node: newcomer, state: Liveness::Alive });
    }
    wait_for("node 6 a caught-up learner", async || {
        let leader_status = status(&nodes[&leader]).await.ok()?;
        let newcomer_status = status(&nodes[&newcomer]).await.ok()?;
        (leader_status.membership.learners.contains(&newcomer)
            && newcomer_status.applied >= leader_status.commit)
            .then_some(())
    })
    .await?;
    println!("node {newcomer} joined as a learner and caught up");

    // 2. Kill a follower; gossip would declare it dead.
    let dead = *nodes.keys().find(|&&id| id != leader && id != newcomer).ok_or("no follower")?;
    if let Some(node) = nodes.remove(&dead) {
        node.raft.send(Shutdown).await.map_err(|e| e.to_string())?;
    }
    network.leave(dead);
    let killed_at = Instant::now();
    for node in nodes.values() {
        node.manager.do_send(MemberLiveness { node: dead, state: Liveness::Dead });
    }
    let health = nodes[&leader].manager.send(Health).await.map_err(|e| e.to_string())?;
    println!(
        "killed voter {dead}: status {:?}, {} of {} voters reachable, quorum available: {}",
        health.status, health.reachable_voters, health.voters, health.quorum_available
    );

    let membership = wait_for("the dead voter replaced", async || {
        let membership = status(&nodes[&leader]).await.ok()?.membership;
        (!membership.is_voter(dead) && membership.is_voter(newcomer)).then_some(membership)
    })
    .await?;
    println!(
        "after {} ms (window {FAILED_WINDOW_MS} ms) the voters are {:?}",
        killed_at.elapsed().as_millis(),
        voters(&membership)
    );

    // 3. The audit history of the leader's manager.
    let history = nodes[&leader].manager.send(History { limit: None }).await.map_err(|e| e.to_string())?;
    println!("history of the manager on node {leader}:");
    for record in &history {
        println!(
            "  #{:?} {:?}: {} — {} step(s) committed, {:?}, {} ms",
            record.operation,
            record.origin,
            record.description,
            record.steps_committed,
            record.outcome,
            record.finished_ms.saturating_sub(record.started_ms)
        );
    }
    let health = nodes[&leader].manager.send(Health).await.map_err(|e| e.to_string())?;
    println!(
        "health now: {:?}, {} voters, quorum {}, {} failure(s) tolerated",
        health.status, health.voters, health.quorum_size, health.failures_tolerated
    );
    System::current().stop();
    Ok(())
}
