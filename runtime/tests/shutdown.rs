//! SIGTERM: a `concord node` process stops cleanly (exit status 0) in both
//! ways of serving HTTP, on its own thread (the default) and on actix-web
//! worker threads, and what it acknowledged is there when it restarts; a
//! leader hands its leadership over before it stops.

mod common;

use common::*;
use std::time::{Duration, Instant};

/// Sends SIGTERM and waits for the exit; the exit status.
fn terminate(process: &mut Process) -> std::process::ExitStatus {
    let pid = process.child.id().to_string();
    let sent = std::process::Command::new("kill").args(["-TERM", &pid]).status().expect("run kill");
    assert!(sent.success(), "kill -TERM {pid}");
    let start = Instant::now();
    loop {
        if let Some(status) = process.child.try_wait().expect("wait") {
            return status;
        }
        assert!(start.elapsed() < DEADLINE, "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(10));
    }
}

async fn sigterm_stops_cleanly_and_keeps_acknowledged_writes(http_workers: usize) {
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("node.toml");
    std::fs::write(&config, format!("http_workers = {http_workers}\n")).unwrap();
    let extra = ["--config".to_string(), config.display().to_string()];
    let spec = Spec { id: 1, listen: free_address(), http: free_address() };
    let mut process = Process::start(spec, &[], data.path(), &extra);
    eventually("a single-node leader", async || leader(&[&process]).await).await;
    for i in 0..20 {
        assert!(put(process.spec.http, &format!("k{i}"), &format!("v{i}")).await, "put k{i}");
    }
    let status = terminate(&mut process);
    assert!(status.success(), "SIGTERM exits cleanly: {status}");

    process.child = spawn_with(&process.spec, &[], data.path(), &extra);
    eventually("the restarted leader", async || leader(&[&process]).await).await;
    for i in 0..20 {
        let value = get_in(process.spec.http, "default", &format!("k{i}"), "linearizable").await;
        assert_eq!(value.as_deref(), Some(format!("v{i}").as_str()), "k{i} after the restart");
    }
}

#[actix::test]
async fn sigterm_stops_a_node_serving_http_on_its_own_thread_cleanly() {
    sigterm_stops_cleanly_and_keeps_acknowledged_writes(0).await;
}

#[actix::test]
async fn sigterm_stops_a_node_with_http_worker_threads_cleanly() {
    sigterm_stops_cleanly_and_keeps_acknowledged_writes(2).await;
}

/// A leader stopped by SIGTERM hands over first: its successor was elected
/// by a transfer, not after a timeout or a report that it was down.
#[actix::test]
async fn a_leader_stopped_by_sigterm_hands_its_leadership_over() {
    let data = tempfile::tempdir().unwrap();
    let specs = specs(3);
    let mut processes = spawn_all(&specs, data.path(), &[]);
    let first = eventually("a leader", async || leader(&processes.iter().collect::<Vec<_>>()).await).await;
    let http = processes[0].spec.http;
    assert!(put(http, "before", "yes").await);
    let victim = processes.iter().position(|p| p.spec.id == first).unwrap();
    let status = terminate(&mut processes[victim]);
    assert!(status.success(), "SIGTERM exits cleanly: {status}");

    let survivors: Vec<&Process> = processes.iter().filter(|p| p.spec.id != first).collect();
    let second = eventually("a new leader", async || leader(&survivors).await).await;
    let second_http = survivors.iter().find(|p| p.spec.id == second).unwrap().spec.http;
    let (_, history) = call("GET", second_http, "/raft/election-history", None).await.unwrap();
    let won = history["elections"].as_array().and_then(|h| h.last()).cloned().unwrap_or_default();
    assert_eq!(
        (won["old_leader"].as_u64(), won["trigger"].as_str()),
        (Some(first), Some("forced")),
        "{history}"
    );
    assert!(put(second_http, "after", "yes").await, "writes go on");
}
