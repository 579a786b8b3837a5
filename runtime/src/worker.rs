//! A task worker: claims tasks through the Raft log, runs them, and reports
//! each completion through the log. It proposes a claim only when its own
//! replica shows a claimable task, so an idle queue writes nothing. Every write carries the worker's client
//! tag, so a retry after a leader failure takes effect once.

use crate::machine::{Query, QueryAnswer};
use crate::node::Node;
use crate::state::tasks::{TaskCommand, TaskResponse};
use crate::state::{Command, Response};
use concord_raft::actor::ReadKind;
use concord_raft::core::ClientTag;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Settings of a worker.
#[derive(Clone, Copy, Debug)]
pub struct WorkerConfig {
    /// Tasks asked for per claim.
    pub claim_batch: usize,
    /// How long a claimed task stays with this worker.
    pub lease_ms: u64,
    /// Pause when the queue is empty.
    pub idle_poll: Duration,
    /// Deadline of each proposal (retries included).
    pub propose_timeout: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            claim_batch: 16,
            lease_ms: 2_000,
            idle_poll: Duration::from_millis(20),
            propose_timeout: Duration::from_secs(5),
        }
    }
}

/// What a task "runs": a digest of its payload (FNV-1a), deterministic so
/// that every result can be checked.
pub fn run_task(payload: &str) -> String {
    let digest = payload
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3));
    format!("{digest:016x}")
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// Runs a worker for `group` on `node` until the node stops.
pub fn spawn(node: Node, group: String, config: WorkerConfig) {
    actix_rt::spawn(async move {
        let worker = node.id().0;
        // A fresh client id per run: sequence numbers restart at 1.
        let client_id = rand::random::<u64>();
        let mut sequence = 0u64;
        let mut tag = || {
            sequence += 1;
            Some(ClientTag { client_id, sequence })
        };
        while !node.is_stopped() {
            // Ask the local replica first: claims are log writes, and an
            // idle queue must not cost one per poll on every node.
            let probe = Query::Claimable { now_ms: now_ms() };
            match node.query(&group, ReadKind::Stale, &probe).await {
                Ok(QueryAnswer::Count(0)) => {
                    tokio::time::sleep(config.idle_poll).await;
                    continue;
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::debug!(%worker, %error, "queue probe failed");
                    tokio::time::sleep(config.idle_poll).await;
                    continue;
                }
            }
            let claim = Command::Task(TaskCommand::Claim {
                worker,
                count: config.claim_batch,
                now_ms: now_ms(),
                lease_ms: config.lease_ms,
            });
            let tasks = match node.propose(&group, &claim, tag(), config.propose_timeout).await {
                Ok((_, Response::Task(TaskResponse::Claimed { tasks }))) => tasks,
                Ok(_) => Vec::new(),
                Err(error) => {
                    tracing::debug!(%worker, %error, "claim failed");
                    Vec::new()
                }
            };
            if tasks.is_empty() {
                tokio::time::sleep(config.idle_poll).await;
                continue;
            }
            let completions = tasks.into_iter().map(|(task_id, payload)| {
                let command =
                    Command::Task(TaskCommand::Complete { task_id, worker, result: run_task(&payload) });
                let node = node.clone();
                let group = group.clone();
                let tag = tag();
                async move { node.propose(&group, &command, tag, config.propose_timeout).await }
            });
            for result in futures_util::future::join_all(completions).await {
                if let Err(error) = result {
                    // The lease expires and another worker takes the task.
                    tracing::debug!(%worker, %error, "completion not recorded");
                }
            }
        }
    });
}
