//! The node's state machine under a benchmark-sized state: 100,000 keys of
//! 256-byte values (what `concord load puts` leaves after a run).
//!
//! - `capture`: [`StateMachine::snapshot_job`], the part of a snapshot that
//!   runs on the Raft actor's event loop;
//! - `serialize`: running the job (on the blocking pool);
//! - `put`: applying an overwrite of an existing key, with no snapshot
//!   outstanding and right after a capture (the first writes after a
//!   capture copy the map nodes they touch).
//!
//! - `state_1mb_values`: 256 keys of 1 MiB values (what `concord load` with
//!   1 MB values leaves): an overwrite right after a capture, which copies
//!   the map nodes it touches but none of their values.
//!
//! - `sessions_100k`: the Raft client-session table, full (100,000
//!   clients): cloning it (what a snapshot's capture does) and recording a
//!   new client, which evicts the least recently active one.
//!
//! - `tasks_100k`: the task queue after 100,000 completed tasks, with 100
//!   claimed under live leases: submitting a task and claiming it (each
//!   claim first returns expired leases to the queue), and the `claimable`
//!   count a worker reads before it proposes a claim, and the totals that
//!   `task results` answers.
//!
//! Run: `cargo bench -p concord-runtime --bench state_bench`.

use bytes::Bytes;
use concord_raft::core::ClientTag;
use concord_raft::machine::StateMachine;
use concord_raft::session::{Sessions, SESSIONS_MAX_DEFAULT};
use concord_runtime::machine::{encode, ConcordMachine};
use concord_runtime::state::kv::KvCommand;
use concord_runtime::state::tasks::{TaskCommand, TaskQueue};
use concord_runtime::state::Command;
use criterion::{criterion_group, criterion_main, BatchSize, Bencher, Criterion};
use std::time::{Duration, Instant};

/// Keys in the benchmark state.
const KEYS: u64 = 100_000;
/// Bytes per value, as the load generator writes.
const VALUE_BYTES: usize = 256;

fn put(key: u64, value: &str) -> Bytes {
    encode(&Command::Kv(KvCommand::Put { key: format!("load-{key:08}"), value: value.to_string() }))
}

fn filled() -> ConcordMachine {
    let mut machine = ConcordMachine::default();
    let value = "v".repeat(VALUE_BYTES);
    for key in 0..KEYS {
        machine.apply(key + 1, &put(key, &value));
    }
    machine
}

fn benches(c: &mut Criterion) {
    let mut machine = filled();
    let mut index = KEYS;
    let mut group = c.benchmark_group("state_100k_keys");
    group.sample_size(20);
    group.bench_function("capture", |b| b.iter(|| machine.snapshot_job()));
    group.bench_function("serialize", |b| {
        b.iter_batched(|| machine.snapshot_job(), |job| job(), BatchSize::PerIteration)
    });
    let value = "w".repeat(VALUE_BYTES);
    let command = put(KEYS / 2, &value);
    group.bench_function("put", |b| {
        b.iter(|| {
            index += 1;
            machine.apply(index, &command)
        })
    });
    group.bench_function("put_after_capture", |b| put_after_capture(b, &mut machine, &mut index, &command));
    group.finish();
}

/// Times `command` applied right after a capture, a capture per put (the
/// first writes after one copy the map nodes they touch).
fn put_after_capture(b: &mut Bencher, machine: &mut ConcordMachine, index: &mut u64, command: &Bytes) {
    b.iter_custom(|iterations| {
        let mut total = Duration::ZERO;
        for _ in 0..iterations {
            let job = machine.snapshot_job();
            *index += 1;
            let start = Instant::now();
            machine.apply(*index, command);
            total += start.elapsed();
            drop(job);
        }
        total
    })
}

/// Keys of the large-value state.
const LARGE_KEYS: u64 = 256;
/// Bytes per value in the large-value state: the HTTP API's body bound.
const LARGE_VALUE_BYTES: usize = 1 << 20;

fn large_values(c: &mut Criterion) {
    let mut machine = ConcordMachine::default();
    let value = "v".repeat(LARGE_VALUE_BYTES);
    for key in 0..LARGE_KEYS {
        machine.apply(key + 1, &put(key, &value));
    }
    let mut index = LARGE_KEYS;
    let command = put(LARGE_KEYS / 2, &"w".repeat(LARGE_VALUE_BYTES));
    let mut group = c.benchmark_group("state_1mb_values");
    group.sample_size(20);
    group.bench_function("put_after_capture", |b| put_after_capture(b, &mut machine, &mut index, &command));
    group.finish();
}

fn sessions(c: &mut Criterion) {
    let clients = SESSIONS_MAX_DEFAULT as u64;
    let mut sessions = Sessions::default();
    for client_id in 0..clients {
        sessions.record(ClientTag { client_id, sequence: 1 }, client_id + 1, Bytes::from_static(b"ok"));
    }
    let mut next = clients;
    let mut group = c.benchmark_group("sessions_100k");
    group.sample_size(20);
    group.bench_function("clone", |b| b.iter(|| sessions.clone()));
    group.bench_function("record_evicting", |b| {
        b.iter(|| {
            next += 1;
            sessions.record(ClientTag { client_id: next, sequence: 1 }, next, Bytes::from_static(b"ok"))
        })
    });
    group.finish();
}

/// Completed tasks in the task-queue benchmark.
const TASKS_DONE: u64 = 100_000;
/// Tasks held under live leases in the task-queue benchmark.
const TASKS_CLAIMED: u64 = 100;

fn tasks(c: &mut Criterion) {
    let mut queue = TaskQueue::default();
    let submit = |id: String| TaskCommand::Submit { task_id: id, payload: "p".repeat(64) };
    for n in 0..TASKS_DONE + TASKS_CLAIMED {
        queue.apply(&submit(format!("task-{n:08}")));
    }
    // Leases until far beyond the bench's clock, so none ends during it.
    let claim = |now_ms| TaskCommand::Claim { worker: 1, count: 1, now_ms, lease_ms: u64::MAX / 2 };
    for n in 0..TASKS_DONE + TASKS_CLAIMED {
        queue.apply(&claim(n));
    }
    for n in 0..TASKS_DONE {
        let task_id = format!("task-{n:08}");
        queue.apply(&TaskCommand::Complete { task_id, worker: 1, result: "ok".into() });
    }
    let mut now_ms = TASKS_DONE + TASKS_CLAIMED;
    let mut group = c.benchmark_group("tasks_100k");
    group.sample_size(20);
    group.bench_function("submit_and_claim", |b| {
        b.iter(|| {
            now_ms += 1;
            queue.apply(&submit(format!("new-{now_ms}")));
            queue.apply(&claim(now_ms))
        })
    });
    group.bench_function("claimable", |b| b.iter(|| queue.claimable(now_ms)));
    group.bench_function("totals", |b| b.iter(|| queue.totals()));
    group.finish();
}

criterion_group!(state, benches, large_values, sessions, tasks);
criterion_main!(state);
