//! `concord demo`: the reference scenario on an embedded default. Starts an
//! N-node cluster in this process over real loopback TCP with temporary
//! data directories, elects a leader, submits tasks that workers on every
//! node process through the log, kills the leader part-way, measures the
//! failover, and reports the task results, the log status and a check that
//! every surviving replica holds the same state.

use crate::config::{NodeConfig, Peer, DEFAULT_GROUP};
use crate::machine::{Query, QueryAnswer};
use crate::node::{BoundNode, Node, NodeError};
use crate::report;
use crate::state::kv::KvCommand;
use crate::state::tasks::{TaskCommand, TaskTotals};
use crate::state::Command;
use crate::worker::{self, WorkerConfig};
use concord_raft::actor::{ElectionHistory, GetStatus, Leader, LogStatus, ReadKind};
use concord_raft::core::ClientTag;
use concord_transport::NodeId;
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::io::Write;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Settings of a demo run.
#[derive(Clone, Debug)]
pub struct DemoConfig {
    /// Cluster size.
    pub nodes: u64,
    /// Tasks to submit.
    pub tasks: u64,
    /// Kill the leader part-way.
    pub kill_leader: bool,
    /// Print progress for people (off for `--json`).
    pub progress: bool,
}

/// Bound on task submissions in flight.
const SUBMIT_CONCURRENCY_MAX: usize = 64;
/// Bound on the whole run.
const RUN_DEADLINE: Duration = Duration::from_secs(120);
/// How often progress is polled.
const POLL: Duration = Duration::from_millis(2);

/// Why the demo failed.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// A node did not start.
    #[error(transparent)]
    Node(#[from] NodeError),
    /// A step did not finish in time.
    #[error("{0}")]
    Stalled(String),
    /// The temporary directory could not be made.
    #[error("temporary directory: {0}")]
    TempDir(std::io::Error),
}

async fn wait_for<T>(
    what: &str,
    deadline: Instant,
    mut probe: impl AsyncFnMut() -> Option<T>,
) -> Result<T, DemoError> {
    loop {
        if let Some(value) = probe().await {
            return Ok(value);
        }
        if Instant::now() > deadline {
            return Err(DemoError::Stalled(format!("timed out waiting for {what}")));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The leader as the given nodes agree on it: some node reports itself leader.
async fn current_leader(nodes: &[Node]) -> Option<(Node, concord_raft::actor::LeaderInfo)> {
    for node in nodes {
        let group = node.group(DEFAULT_GROUP)?;
        if let Ok(info) = group.raft.send(Leader).await {
            if info.leader_id == Some(node.id()) {
                return Some((node.clone(), info));
            }
        }
    }
    None
}

async fn totals(node: &Node) -> Option<TaskTotals> {
    match node.query(DEFAULT_GROUP, ReadKind::Stale, &Query::TaskTotals).await {
        Ok(QueryAnswer::Totals(totals)) => Some(totals),
        _ => None,
    }
}

fn progress_bar(done: u64, total: u64) {
    const WIDTH: u64 = 40;
    let filled = (done * WIDTH).checked_div(total).unwrap_or(WIDTH);
    let bar: String = (0..WIDTH).map(|i| if i < filled { '#' } else { '.' }).collect();
    eprint!("\r  [{bar}] {done}/{total} tasks completed");
    let _ = std::io::stderr().flush();
}

/// Runs the scenario and returns its report (the `--json` output).
pub async fn run(config: DemoConfig) -> Result<Value, DemoError> {
    let started = Instant::now();
    let deadline = started + RUN_DEADLINE;
    let dir = tempfile::tempdir().map_err(DemoError::TempDir)?;
    let say = |text: String| {
        if config.progress {
            eprintln!("{text}");
        }
    };

    // Bind every node first so that each learns the others' addresses.
    let mut bound = Vec::new();
    for id in 1..=config.nodes {
        let node_config = NodeConfig {
            id,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: dir.path().join(format!("node{id}")),
            ..NodeConfig::default()
        };
        bound.push(BoundNode::bind(node_config).await?);
    }
    let addresses: Vec<Peer> =
        bound.iter().zip(1..).map(|(b, id)| Peer { id, address: b.address() }).collect();
    let mut nodes = Vec::new();
    for (node, id) in bound.into_iter().zip(1u64..) {
        let peers: Vec<Peer> = addresses.iter().copied().filter(|p| p.id != id).collect();
        nodes.push(node.start(&peers)?);
    }
    say(format!("concord demo: {} nodes on 127.0.0.1 ({:?})", config.nodes, dir.path()));

    let (leader, info) = wait_for("a leader", deadline, async || current_leader(&nodes).await).await?;
    let election_ms = started.elapsed().as_millis() as u64;
    let leader_answer = report::leader(&info);
    say(format!("leader elected after {election_ms} ms: {leader_answer}"));

    for node in &nodes {
        worker::spawn(node.clone(), DEFAULT_GROUP.to_string(), WorkerConfig::default());
    }

    // Submit every task to the leader, idempotently by task id.
    let submit_started = Instant::now();
    let client_id = rand::random::<u64>();
    let submissions = futures_util::stream::iter(0..config.tasks)
        .map(|i| {
            let leader = leader.clone();
            async move {
                let command = Command::Task(TaskCommand::Submit {
                    task_id: format!("task-{i:05}"),
                    payload: format!("job {i}"),
                });
                let tag = Some(ClientTag { client_id, sequence: i + 1 });
                leader.propose(DEFAULT_GROUP, &command, tag, Duration::from_secs(10)).await
            }
        })
        .buffer_unordered(SUBMIT_CONCURRENCY_MAX);
    let mut submitted = 0u64;
    let mut submissions = std::pin::pin!(submissions);
    while let Some(result) = submissions.next().await {
        result.map_err(|e| DemoError::Stalled(format!("task submission failed: {e}")))?;
        submitted += 1;
    }
    say(format!("submitted {submitted} tasks in {} ms", submit_started.elapsed().as_millis()));

    // Let workers run; kill the leader once a third is done.
    let kill_at = config.tasks / 3;
    let mut survivors = nodes.clone();
    let mut failover = Value::Null;
    let mut leader_failures = 0;
    let mut observer = leader.clone();
    let mut shown = None;
    loop {
        let Some(now) = totals(&observer).await else {
            tokio::time::sleep(POLL).await;
            continue;
        };
        let done = now.completed + now.failed;
        if config.progress && shown != Some(done) {
            progress_bar(done, config.tasks);
            shown = Some(done);
        }
        if now.completed + now.failed >= config.tasks {
            break;
        }
        if config.kill_leader && leader_failures == 0 && now.completed >= kill_at {
            let old = leader.id();
            let term = info.term;
            leader.stop();
            let killed = Instant::now();
            leader_failures = 1;
            survivors.retain(|n| n.id() != old);
            observer = survivors[0].clone();
            if config.progress {
                eprintln!();
            }
            say(format!("killed the leader n{} at {} completed tasks", old.0, now.completed));
            let (new_leader, new_info) =
                wait_for("a new leader", deadline, async || current_leader(&survivors).await).await?;
            let elected_ms = killed.elapsed().as_secs_f64() * 1_000.0;
            let probe = Command::Kv(KvCommand::Put { key: "demo/failover".into(), value: "written".into() });
            new_leader
                .propose(DEFAULT_GROUP, &probe, None, Duration::from_secs(10))
                .await
                .map_err(|e| DemoError::Stalled(format!("first write after failover: {e}")))?;
            let first_write_ms = killed.elapsed().as_secs_f64() * 1_000.0;
            failover = json!({
                "old_leader": old.0,
                "old_term": term,
                "new_leader": new_leader.id().0,
                "term": new_info.term,
                "voted_by": report::leader(&new_info)["voted_by"],
                "election_ms": (elected_ms * 10.0).round() / 10.0,
                "first_commit_ms": (first_write_ms * 10.0).round() / 10.0,
                "tasks_lost": 0,
            });
            say(format!("failover: {failover}"));
        }
        if Instant::now() > deadline {
            return Err(DemoError::Stalled(format!("tasks not finished in {RUN_DEADLINE:?}: {now:?}")));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if config.progress {
        eprintln!();
    }

    // Every survivor must reach the same applied index with the same state.
    let (final_leader, _) =
        wait_for("a leader at the end", deadline, async || current_leader(&survivors).await).await?;
    let group = |n: &Node| n.group(DEFAULT_GROUP).map(|g| g.raft.clone());
    let digests = wait_for("replicas to converge", deadline, async || {
        let mut seen = Vec::new();
        for node in &survivors {
            let status = group(node)?.send(GetStatus).await.ok()?;
            seen.push((node.id(), status.applied, status.digest));
        }
        let (_, applied, digest) = seen[0];
        seen.iter().all(|(_, a, d)| *a == applied && *d == digest).then_some(seen)
    })
    .await?;
    let final_totals = totals(&final_leader).await.unwrap_or_default();
    let leader_group =
        group(&final_leader).ok_or_else(|| DemoError::Stalled("leader has no group".into()))?;
    let elections = leader_group.send(ElectionHistory).await.map(|h| h.len()).unwrap_or(0);
    let log_status =
        leader_group.send(LogStatus).await.map(|r| report::log_status(&r)).unwrap_or(Value::Null);

    Ok(json!({
        "nodes": config.nodes,
        "leader": leader_answer,
        "leader_election_ms": election_ms,
        "failover": failover,
        "task_results": {
            "total_tasks": final_totals.total_tasks,
            "completed": final_totals.completed,
            "failed": final_totals.failed,
            "duplicates": final_totals.duplicates,
            "leader_failures": leader_failures,
            "elections": elections,
            "execution_guarantee": "exactly-once: claims and completions go through the Raft log with client sessions",
            "completed_by_node": final_totals.completed_by_worker,
        },
        "log_status": log_status,
        "consistency": {
            "replicas": digests.iter().map(|(id, applied, digest)| json!({"node": id.0, "applied_index": applied, "state_digest": format!("{digest:016x}")})).collect::<Vec<_>>(),
            "identical": true,
        },
        "duration_ms": started.elapsed().as_millis() as u64,
    }))
}

/// The node ids of a report's surviving replicas (for tests).
pub fn replica_ids(report: &Value) -> Vec<NodeId> {
    report["consistency"]["replicas"]
        .as_array()
        .map(|r| r.iter().filter_map(|v| v["node"].as_u64()).map(NodeId).collect())
        .unwrap_or_default()
}
