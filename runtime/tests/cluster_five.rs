//! Five real `concord node` processes on 127.0.0.1, driven through their
//! HTTP API: writes through every node with linearizable reads through
//! another, SIGKILL of the leader, writes continuing on the four survivors,
//! the killed node restarting from its data directory and catching up, and
//! every acknowledged write, with its value, on every node at the end.

mod common;

use common::*;

/// Writes before and after the failover, each.
const WRITES: usize = 25;

#[actix::test]
async fn five_processes_survive_sigkill_of_the_leader_and_the_victim_catches_up() {
    let data = tempfile::tempdir().unwrap();
    let specs = specs(5);
    let mut processes: Vec<Process> = specs
        .iter()
        .map(|s| Process {
            spec: Spec { id: s.id, listen: s.listen, http: s.http },
            child: spawn(s, &specs, data.path()),
        })
        .collect();
    let first = eventually("a leader", async || leader(&processes.iter().collect::<Vec<_>>()).await).await;

    // Writes through every node (followers forward to the leader); each is
    // read back linearizably through the next node.
    let mut acknowledged = Vec::new();
    for i in 0..WRITES {
        let (key, value) = (format!("k{i}"), format!("v{i}"));
        let http = processes[i % 5].spec.http;
        eventually("a write", async || put(http, &key, &value).await.then_some(())).await;
        acknowledged.push((key, value));
        let (status, body) = call("GET", processes[(i + 1) % 5].spec.http, &format!("/kv/k{i}"), None)
            .await
            .expect("an answer");
        assert_eq!((status, body["value"].as_str()), (200, Some(format!("v{i}").as_str())), "read {i}");
    }

    // SIGKILL the leader; the four survivors elect another.
    let victim = processes.iter().position(|p| p.spec.id == first).unwrap();
    processes[victim].child.kill().unwrap();
    processes[victim].child.wait().unwrap();
    let survivors: Vec<&Process> = processes.iter().filter(|p| p.spec.id != first).collect();
    let second = eventually("a new leader", async || leader(&survivors).await).await;
    assert_ne!(second, first);

    // Writes continue through every survivor, read back linearizably.
    for i in WRITES..2 * WRITES {
        let (key, value) = (format!("k{i}"), format!("v{i}"));
        let http = survivors[i % 4].spec.http;
        eventually("a write after failover", async || put(http, &key, &value).await.then_some(())).await;
        let reader = survivors[(i + 1) % 4].spec.http;
        let (status, body) = call("GET", reader, &format!("/kv/{key}"), None).await.expect("an answer");
        assert_eq!((status, body["value"].as_str()), (200, Some(value.as_str())), "read {i} after failover");
        acknowledged.push((key, value));
    }

    // The killed node restarts from its data directory and catches up: every
    // acknowledged write, with its value, is on every node's own replica.
    processes[victim].child = spawn(&specs[victim], &specs, data.path());
    for p in &processes {
        for (key, value) in &acknowledged {
            let path = format!("/kv/{key}?consistency=stale");
            eventually("every acknowledged write on every node", async || {
                let (200, body) = call("GET", p.spec.http, &path, None).await? else { return None };
                (body["value"].as_str() == Some(value)).then_some(())
            })
            .await;
        }
    }
    let leader_http = processes.iter().find(|p| p.spec.id == second).unwrap().spec.http;
    let (status, log) = call("GET", leader_http, "/raft/log-status", None).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(log["followers"].as_array().unwrap().len(), 4, "{log}");
}
