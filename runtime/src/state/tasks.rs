//! The distributed task queue of the reference scenario.
//!
//! Every state change goes through the Raft log, so all replicas agree on
//! which worker holds which task. A task is submitted once (idempotent by id),
//! claimed by a worker under a lease, and completed once: the first completion
//! is applied, any later one is refused and counted as a duplicate. A worker
//! that dies loses its leases when they expire, and its tasks go back to the
//! queue; time comes from the claiming command, never from a local clock, so
//! every replica decides the same.

use super::item_hash;
use imbl::{OrdMap, OrdSet, Vector};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Bound on tasks handed out by one claim.
pub const CLAIM_BATCH_MAX: usize = 256;

/// A worker: the node id of the node that runs it.
pub type WorkerId = u64;

/// A task-queue command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskCommand {
    /// Adds a task; a second submission of the same id changes nothing.
    Submit {
        /// Unique task id chosen by the client.
        task_id: String,
        /// What the worker needs to run it.
        payload: String,
    },
    /// Hands up to `count` pending tasks to `worker` until `now_ms + lease_ms`,
    /// after returning every expired lease to the queue.
    Claim {
        /// The claiming worker.
        worker: WorkerId,
        /// How many tasks it wants (at most [`CLAIM_BATCH_MAX`]).
        count: usize,
        /// The proposer's clock at proposal time.
        now_ms: u64,
        /// How long the worker may hold the tasks.
        lease_ms: u64,
    },
    /// Reports a task done.
    Complete {
        /// The task.
        task_id: String,
        /// The worker that ran it.
        worker: WorkerId,
        /// The result.
        result: String,
    },
    /// Reports a task failed; it is not retried.
    Fail {
        /// The task.
        task_id: String,
        /// The worker that ran it.
        worker: WorkerId,
        /// Why.
        error: String,
    },
}

/// Where a task is.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    /// Waiting for a worker.
    Pending,
    /// Held by a worker until its lease ends.
    Claimed {
        /// The worker.
        worker: WorkerId,
        /// End of the lease, on the claimer's clock.
        lease_until_ms: u64,
    },
    /// Done, once.
    Completed {
        /// The worker whose completion was applied.
        worker: WorkerId,
        /// Its result (shared, as [`Task::payload`]).
        result: Arc<str>,
    },
    /// Failed.
    Failed {
        /// The worker that reported it.
        worker: WorkerId,
        /// Why (shared, as [`Task::payload`]).
        error: Arc<str>,
    },
}

/// One task.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Task {
    /// What the worker needs to run it: shared (encoded as a string), so
    /// that copying the map's nodes, as a write does while a snapshot holds a
    /// clone, copies no payload (see [`super::kv::Versioned::value`]).
    pub payload: Arc<str>,
    /// Where it is.
    pub state: TaskState,
    /// How many times it was handed to a worker.
    pub claims: u32,
}

/// The answer to a task command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskResponse {
    /// The submission: `created` is false when the id existed.
    Submitted {
        /// The task id.
        task_id: String,
        /// Whether this submission created it.
        created: bool,
    },
    /// Tasks handed to the claimer: (id, payload).
    Claimed {
        /// The tasks.
        tasks: Vec<(String, Arc<str>)>,
    },
    /// A completion or failure report: `applied` is false when the task was
    /// already finished (a duplicate) or unknown.
    Reported {
        /// The task id.
        task_id: String,
        /// Whether the report changed the task.
        applied: bool,
    },
}

/// Totals in the shape of the reference `task results` answer (the Raft
/// figures — elections, leader failures — are added by the node).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskTotals {
    /// Tasks ever submitted.
    pub total_tasks: u64,
    /// Waiting.
    pub pending: u64,
    /// Held by workers.
    pub claimed: u64,
    /// Completed exactly once.
    pub completed: u64,
    /// Failed.
    pub failed: u64,
    /// Completions refused because the task was already finished.
    pub duplicates: u64,
    /// Completed tasks per worker.
    pub completed_by_worker: BTreeMap<WorkerId, u64>,
}

/// The queue. Tasks and the pending queue are persistent collections: a
/// clone shares them and costs O(1), so a snapshot captures the queue
/// without copying it. Serialized as a sorted map and a sequence, like a
/// `BTreeMap` and a `VecDeque`.
///
/// An index of the live leases, by end, and a tally kept change by change
/// make every read independent of how many tasks the queue has ever held:
/// a claim and the `claimable` count visit only the leases that ended, and
/// the totals are read, not counted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskQueue {
    tasks: OrdMap<String, Task>,
    pending: Vector<String>,
    duplicates: u64,
    /// Digest, counts by state and the lease index; rebuilt on restore.
    #[serde(skip)]
    tally: Tally,
}

/// What the queue keeps up to date on every change of a task.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Tally {
    /// Wrapping sum of every task's [`item_hash`].
    digest: u64,
    /// Tasks by state (`total_tasks` and `duplicates` are left at zero).
    totals: TaskTotals,
    /// `(lease_until_ms, task id)` of every claimed task.
    leases: OrdSet<(u64, String)>,
}

impl Tally {
    /// Counts `task` in.
    fn add(&mut self, id: &str, task: &Task) {
        self.digest = self.digest.wrapping_add(item_hash(id, task));
        match &task.state {
            TaskState::Pending => self.totals.pending += 1,
            TaskState::Claimed { lease_until_ms, .. } => {
                self.totals.claimed += 1;
                self.leases.insert((*lease_until_ms, id.to_string()));
            }
            TaskState::Completed { worker, .. } => {
                self.totals.completed += 1;
                *self.totals.completed_by_worker.entry(*worker).or_default() += 1;
            }
            TaskState::Failed { .. } => self.totals.failed += 1,
        }
    }

    /// Counts `task` out (it was counted in).
    fn remove(&mut self, id: &str, task: &Task) {
        self.digest = self.digest.wrapping_sub(item_hash(id, task));
        let count = match &task.state {
            TaskState::Pending => &mut self.totals.pending,
            TaskState::Claimed { lease_until_ms, .. } => {
                self.leases.remove(&(*lease_until_ms, id.to_string()));
                &mut self.totals.claimed
            }
            TaskState::Completed { worker, .. } => {
                if let Some(done) = self.totals.completed_by_worker.get_mut(worker) {
                    *done = done.saturating_sub(1);
                    if *done == 0 {
                        self.totals.completed_by_worker.remove(worker);
                    }
                }
                &mut self.totals.completed
            }
            TaskState::Failed { .. } => &mut self.totals.failed,
        };
        *count = count.saturating_sub(1);
    }
}

/// Changes `task` through `change`, keeping the tally up to date.
fn change<R>(tally: &mut Tally, id: &str, task: &mut Task, change: impl FnOnce(&mut Task) -> R) -> R {
    tally.remove(id, task);
    let result = change(task);
    tally.add(id, task);
    result
}

impl TaskQueue {
    /// Applies one command.
    pub fn apply(&mut self, command: &TaskCommand) -> TaskResponse {
        match command {
            TaskCommand::Submit { task_id, payload } => {
                let created = !self.tasks.contains_key(task_id);
                if created {
                    let task =
                        Task { payload: Arc::from(payload.as_str()), state: TaskState::Pending, claims: 0 };
                    self.tally.add(task_id, &task);
                    self.tasks.insert(task_id.clone(), task);
                    self.pending.push_back(task_id.clone());
                }
                TaskResponse::Submitted { task_id: task_id.clone(), created }
            }
            TaskCommand::Claim { worker, count, now_ms, lease_ms } => {
                self.expire(*now_ms);
                let mut tasks = Vec::new();
                while tasks.len() < (*count).min(CLAIM_BATCH_MAX) {
                    let Some(id) = self.pending.pop_front() else { break };
                    if let Some(task) = self.tasks.get_mut(&id) {
                        let lease_until_ms = now_ms.saturating_add(*lease_ms);
                        let state = TaskState::Claimed { worker: *worker, lease_until_ms };
                        change(&mut self.tally, &id, task, |task| {
                            task.state = state;
                            task.claims += 1;
                        });
                        tasks.push((id, task.payload.clone()));
                    }
                }
                TaskResponse::Claimed { tasks }
            }
            TaskCommand::Complete { task_id, worker, result } => {
                let state = TaskState::Completed { worker: *worker, result: Arc::from(result.as_str()) };
                self.finish(task_id, state)
            }
            TaskCommand::Fail { task_id, worker, error } => {
                let state = TaskState::Failed { worker: *worker, error: Arc::from(error.as_str()) };
                self.finish(task_id, state)
            }
        }
    }

    fn finish(&mut self, task_id: &str, state: TaskState) -> TaskResponse {
        let applied = match self.tasks.get_mut(task_id) {
            Some(task) => match task.state {
                TaskState::Completed { .. } | TaskState::Failed { .. } => {
                    self.duplicates += 1;
                    false
                }
                TaskState::Pending => {
                    // Its lease expired and it was queued again, but the
                    // first worker finished after all: take its result.
                    self.pending.retain(|id| id != task_id);
                    change(&mut self.tally, task_id, task, |task| task.state = state);
                    true
                }
                TaskState::Claimed { .. } => {
                    change(&mut self.tally, task_id, task, |task| task.state = state);
                    true
                }
            },
            None => false,
        };
        TaskResponse::Reported { task_id: task_id.to_string(), applied }
    }

    /// Returns every task whose lease ended before `now_ms` to the queue.
    /// They join it in task-id order (every replica must queue them alike,
    /// whatever version of this code it runs).
    fn expire(&mut self, now_ms: u64) {
        let mut expired: Vec<String> =
            self.tally.leases.range(..(now_ms, String::new())).map(|(_, id)| id.clone()).collect();
        expired.sort_unstable();
        for id in expired {
            if let Some(task) = self.tasks.get_mut(&id) {
                change(&mut self.tally, &id, task, |task| task.state = TaskState::Pending);
                self.pending.push_back(id);
            }
        }
    }

    /// The digest of every task with the queue's length and duplicate
    /// count, in O(1). (The pending queue's order is not part of it.)
    pub fn digest(&self) -> u64 {
        let mut hasher = super::Fnv::default();
        std::hash::Hash::hash(&(self.tally.digest, self.pending.len(), self.duplicates), &mut hasher);
        std::hash::Hasher::finish(&hasher)
    }

    /// Recomputes the digest, the counts and the lease index from the tasks
    /// (after a restore).
    pub fn rehash(&mut self) {
        self.tally = Tally::default();
        for (id, task) in &self.tasks {
            self.tally.add(id, task);
        }
    }

    /// How many tasks a claim at `now_ms` would find: the pending ones plus
    /// the claimed ones whose lease ended before `now_ms`.
    pub fn claimable(&self, now_ms: u64) -> u64 {
        let expired = self.tally.leases.range(..(now_ms, String::new())).count();
        (self.pending.len() + expired) as u64
    }

    /// One task.
    pub fn get(&self, task_id: &str) -> Option<&Task> {
        self.tasks.get(task_id)
    }

    /// Totals over every task, from the tally (O(workers)).
    pub fn totals(&self) -> TaskTotals {
        TaskTotals {
            total_tasks: self.tasks.len() as u64,
            duplicates: self.duplicates,
            ..self.tally.totals.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn submit(queue: &mut TaskQueue, id: &str) -> TaskResponse {
        queue.apply(&TaskCommand::Submit { task_id: id.into(), payload: format!("payload-{id}") })
    }

    fn claim(queue: &mut TaskQueue, worker: WorkerId, count: usize, now_ms: u64) -> Vec<String> {
        match queue.apply(&TaskCommand::Claim { worker, count, now_ms, lease_ms: 1_000 }) {
            TaskResponse::Claimed { tasks } => tasks.into_iter().map(|(id, _)| id).collect(),
            other => panic!("{other:?}"),
        }
    }

    fn complete(queue: &mut TaskQueue, id: &str, worker: WorkerId) -> bool {
        let command = TaskCommand::Complete { task_id: id.into(), worker, result: "ok".into() };
        matches!(queue.apply(&command), TaskResponse::Reported { applied: true, .. })
    }

    #[test]
    fn submission_is_idempotent_by_task_id() {
        let mut queue = TaskQueue::default();
        assert_eq!(submit(&mut queue, "a"), TaskResponse::Submitted { task_id: "a".into(), created: true });
        assert_eq!(submit(&mut queue, "a"), TaskResponse::Submitted { task_id: "a".into(), created: false });
        assert_eq!(queue.totals().total_tasks, 1);
        assert_eq!(claim(&mut queue, 1, 10, 0), vec!["a"], "queued once");
    }

    #[test]
    fn claimable_counts_pending_tasks_and_ended_leases() {
        let mut queue = TaskQueue::default();
        assert_eq!(queue.claimable(0), 0, "an empty queue has nothing to claim");
        for id in ["a", "b", "c"] {
            submit(&mut queue, id);
        }
        assert_eq!(queue.claimable(0), 3);
        assert_eq!(claim(&mut queue, 1, 2, 0), vec!["a", "b"]);
        assert_eq!(queue.claimable(500), 1, "leases held until 1,000");
        assert_eq!(queue.claimable(1_001), 3, "both leases ended");
        assert!(complete(&mut queue, "a", 1));
        assert_eq!(queue.claimable(1_001), 2, "a finished task is never claimable");
    }

    #[test]
    fn tasks_are_claimed_in_submission_order_and_completed_once() {
        let mut queue = TaskQueue::default();
        for id in ["a", "b", "c"] {
            submit(&mut queue, id);
        }
        assert_eq!(claim(&mut queue, 1, 2, 0), vec!["a", "b"]);
        assert_eq!(claim(&mut queue, 2, 5, 0), vec!["c"]);
        assert!(complete(&mut queue, "a", 1));
        assert!(!complete(&mut queue, "a", 1), "second completion refused");
        let totals = queue.totals();
        assert_eq!((totals.completed, totals.claimed, totals.duplicates), (1, 2, 1));
        assert_eq!(totals.completed_by_worker, BTreeMap::from([(1, 1)]));
    }

    #[test]
    fn an_expired_lease_returns_the_task_to_another_worker_and_one_completion_wins() {
        let mut queue = TaskQueue::default();
        submit(&mut queue, "a");
        assert_eq!(claim(&mut queue, 1, 1, 0), vec!["a"]);
        assert_eq!(claim(&mut queue, 2, 1, 500), Vec::<String>::new(), "lease still held");
        assert_eq!(claim(&mut queue, 2, 1, 1_001), vec!["a"], "lease expired");
        assert!(complete(&mut queue, "a", 2));
        assert!(!complete(&mut queue, "a", 1), "the late first worker is a duplicate");
        let totals = queue.totals();
        assert_eq!((totals.completed, totals.duplicates), (1, 1));
        assert_eq!(queue.get("a").unwrap().claims, 2);
    }

    #[test]
    fn a_late_completion_of_a_requeued_task_is_taken_and_dequeued() {
        let mut queue = TaskQueue::default();
        submit(&mut queue, "a");
        submit(&mut queue, "b");
        claim(&mut queue, 1, 1, 0);
        // Worker 2's claim at 2,000 expires worker 1's lease on "a" first.
        assert_eq!(claim(&mut queue, 2, 1, 2_000), vec!["b"]);
        assert!(complete(&mut queue, "a", 1));
        assert_eq!(claim(&mut queue, 3, 10, 2_000), Vec::<String>::new(), "a is not handed out again");
    }

    #[test]
    fn expired_leases_rejoin_the_queue_in_task_id_order() {
        let mut queue = TaskQueue::default();
        for id in ["a", "b", "c", "d"] {
            submit(&mut queue, id);
        }
        // Leases ending in the reverse of the ids' order.
        for (lease_ms, id) in [(300, "a"), (200, "b"), (100, "c")] {
            let command = TaskCommand::Claim { worker: 1, count: 1, now_ms: 0, lease_ms };
            let claimed = vec![(id.to_string(), format!("payload-{id}").into())];
            assert_eq!(queue.apply(&command), TaskResponse::Claimed { tasks: claimed });
        }
        assert_eq!(queue.claimable(250), 3, "d, then c and b, whose leases ended");
        assert_eq!(claim(&mut queue, 2, 10, 1_000), vec!["d", "a", "b", "c"]);
    }

    #[test]
    fn a_lease_past_the_clock_s_end_saturates() {
        let mut queue = TaskQueue::default();
        submit(&mut queue, "a");
        let command = TaskCommand::Claim { worker: 1, count: 1, now_ms: 10, lease_ms: u64::MAX };
        queue.apply(&command);
        assert_eq!(queue.get("a").unwrap().state, TaskState::Claimed { worker: 1, lease_until_ms: u64::MAX });
        assert_eq!(queue.claimable(u64::MAX), 0, "held to the end of time");
    }

    /// The lease index and the tally kept change by change equal the ones
    /// rebuilt from the tasks, and `claimable` and the totals equal a scan
    /// of every task, after each command of a seeded mix (claims at a clock
    /// that moves, sometimes backwards, expire leases; late completions
    /// finish requeued tasks).
    #[test]
    fn the_lease_index_and_the_tally_follow_every_change() {
        use rand::{Rng, SeedableRng};
        let scan = |queue: &TaskQueue, now_ms: u64| {
            let ended = queue
                .tasks
                .values()
                .filter(|t| matches!(t.state, TaskState::Claimed { lease_until_ms, .. } if lease_until_ms < now_ms))
                .count();
            (queue.pending.len() + ended) as u64
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let mut queue = TaskQueue::default();
        let mut expiries = 0;
        for step in 0..5_000u64 {
            let task_id = format!("t{}", rng.random_range(0..60));
            let worker = rng.random_range(1..4);
            let now_ms = (step * 10).saturating_sub(rng.random_range(0..50));
            let command = match rng.random_range(0..4) {
                0 => TaskCommand::Submit { task_id, payload: "p".into() },
                1 => TaskCommand::Claim {
                    worker,
                    count: rng.random_range(1..4),
                    now_ms,
                    lease_ms: rng.random_range(0..300),
                },
                2 => TaskCommand::Complete { task_id, worker, result: "r".into() },
                _ => TaskCommand::Fail { task_id, worker, error: "e".into() },
            };
            if matches!(command, TaskCommand::Claim { .. })
                && scan(&queue, now_ms) > queue.pending.len() as u64
            {
                expiries += 1;
            }
            queue.apply(&command);
            let mut rebuilt = queue.clone();
            rebuilt.rehash();
            assert_eq!(queue.tally.leases, rebuilt.tally.leases, "step {step}: {command:?}");
            assert_eq!(queue.tally, rebuilt.tally, "step {step}: {command:?}");
            let mut counted = TaskTotals {
                total_tasks: queue.tasks.len() as u64,
                duplicates: queue.duplicates,
                ..TaskTotals::default()
            };
            for task in queue.tasks.values() {
                match &task.state {
                    TaskState::Pending => counted.pending += 1,
                    TaskState::Claimed { .. } => counted.claimed += 1,
                    TaskState::Completed { worker, .. } => {
                        counted.completed += 1;
                        *counted.completed_by_worker.entry(*worker).or_default() += 1;
                    }
                    TaskState::Failed { .. } => counted.failed += 1,
                }
            }
            assert_eq!(queue.totals(), counted, "step {step}: {command:?}");
            for probe in [now_ms.saturating_sub(100), now_ms, now_ms + 100] {
                assert_eq!(queue.claimable(probe), scan(&queue, probe), "step {step}, at {probe}");
            }
        }
        assert!(expiries >= 50, "the mix expired leases often ({expiries} claims did)");
    }

    #[test]
    fn unknown_tasks_and_failures_are_reported() {
        let mut queue = TaskQueue::default();
        assert!(!complete(&mut queue, "nope", 1));
        submit(&mut queue, "a");
        claim(&mut queue, 1, 1, 0);
        let fail = TaskCommand::Fail { task_id: "a".into(), worker: 1, error: "boom".into() };
        assert!(matches!(queue.apply(&fail), TaskResponse::Reported { applied: true, .. }));
        assert_eq!(queue.totals().failed, 1);
    }

    #[test]
    fn a_claim_is_bounded() {
        let mut queue = TaskQueue::default();
        for i in 0..(CLAIM_BATCH_MAX + 10) {
            submit(&mut queue, &format!("t{i}"));
        }
        assert_eq!(claim(&mut queue, 1, usize::MAX, 0).len(), CLAIM_BATCH_MAX);
    }
}
