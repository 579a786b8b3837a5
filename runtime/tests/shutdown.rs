//! SIGTERM: a `concord node` process stops cleanly (exit status 0) in both
//! ways of serving HTTP, on its own thread (the default) and on actix-web
//! worker threads, and what it acknowledged is there when it restarts.

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
    let mut process = Process { child: spawn_with(&spec, &[], data.path(), &extra), spec };
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
