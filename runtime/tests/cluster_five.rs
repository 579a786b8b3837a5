//! Five real `concord node` processes on 127.0.0.1 running two groups with
//! their own members: `critical` on all five, `background` on nodes 1–3.
//! Driven through the HTTP API: writes through every node with
//! linearizable reads through another (nodes 4 and 5 forward `background`
//! requests to its members and answer its replica routes with a 404 naming
//! them; its manager refuses them as members), SIGKILL of the `critical`
//! leader, writes continuing in both groups, the killed node restarting from
//! its data directory and catching up, and every acknowledged write, with its
//! value, on every member at the end.

mod common;

use common::*;

/// Writes before and after the failover, each, in `critical`.
const WRITES: usize = 25;
/// Writes before and after the failover, each, in `background`.
const BACKGROUND_WRITES: usize = 10;

const CRITICAL: &str = "critical";
const BACKGROUND: &str = "background";

#[actix::test]
async fn five_processes_survive_sigkill_of_the_leader_and_the_victim_catches_up() {
    let data = tempfile::tempdir().unwrap();
    let specs = specs(5);
    let groups: Vec<String> =
        ["--group", "critical=1,2,3,4,5", "--group", "background=1,2,3"].map(String::from).to_vec();
    let mut processes = spawn_all(&specs, data.path(), &groups);
    let all: Vec<&Process> = processes.iter().collect();
    let first = eventually("a critical leader", async || leader_of(&all, CRITICAL).await).await;
    let background_leader =
        eventually("a background leader", async || leader_of(&all, BACKGROUND).await).await;
    assert!((1..=3).contains(&background_leader), "background runs on 1-3 only");

    // Nodes 4 and 5 do not run `background`: its replica routes say where it runs.
    for p in &processes[3..] {
        let (status, body) = call("GET", p.spec.http, "/raft/status?group=background", None).await.unwrap();
        assert_eq!(status, 404, "{body}");
        let message = body["message"].as_str().unwrap();
        assert!(message.contains(&format!("does not run on node {}", p.spec.id)), "{message}");
        assert!(message.contains("[1, 2, 3]"), "{message}");
    }
    let (status, health) =
        call("GET", processes[0].spec.http, "/health?group=background", None).await.unwrap();
    assert_eq!((status, health["voters"].as_u64()), (200, Some(3)), "{health}");

    // Writes through every node (followers and non-members forward); each is
    // read back linearizably through the next node.
    let mut critical = Vec::new();
    let mut background = Vec::new();
    for i in 0..WRITES {
        let (key, value) = (format!("k{i}"), format!("v{i}"));
        let http = processes[i % 5].spec.http;
        eventually("a write", async || put_in(http, CRITICAL, &key, &value).await.then_some(())).await;
        let reader = processes[(i + 1) % 5].spec.http;
        assert_eq!(get_in(reader, CRITICAL, &key, "linearizable").await, Some(value.clone()), "read {i}");
        critical.push((key, value));
    }
    for i in 0..BACKGROUND_WRITES {
        let (key, value) = (format!("b{i}"), format!("w{i}"));
        let http = processes[3 + i % 2].spec.http;
        eventually("a forwarded write", async || put_in(http, BACKGROUND, &key, &value).await.then_some(()))
            .await;
        let reader = processes[4 - i % 2].spec.http;
        assert_eq!(get_in(reader, BACKGROUND, &key, "linearizable").await, Some(value.clone()), "b{i}");
        background.push((key, value));
    }

    // SIGKILL the critical leader; the four survivors elect another.
    let victim = processes.iter().position(|p| p.spec.id == first).unwrap();
    processes[victim].child.kill().unwrap();
    processes[victim].child.wait().unwrap();
    let survivors: Vec<&Process> = processes.iter().filter(|p| p.spec.id != first).collect();
    let second = eventually("a new critical leader", async || leader_of(&survivors, CRITICAL).await).await;
    assert_ne!(second, first);
    // Its log says so, in plain text, naming the group.
    let log = std::fs::read_to_string(&survivors.iter().find(|p| p.spec.id == second).unwrap().log).unwrap();
    assert!(log.lines().any(|l| l.contains("became leader") && l.contains("group=critical")), "{log}");

    // Writes continue through every survivor, read back linearizably; the
    // background group (which may have lost a member) keeps taking writes.
    for i in WRITES..2 * WRITES {
        let (key, value) = (format!("k{i}"), format!("v{i}"));
        let http = survivors[i % 4].spec.http;
        eventually("a write after failover", async || {
            put_in(http, CRITICAL, &key, &value).await.then_some(())
        })
        .await;
        let reader = survivors[(i + 1) % 4].spec.http;
        assert_eq!(get_in(reader, CRITICAL, &key, "linearizable").await, Some(value.clone()), "read {i}");
        critical.push((key, value));
    }
    for i in BACKGROUND_WRITES..2 * BACKGROUND_WRITES {
        let (key, value) = (format!("b{i}"), format!("w{i}"));
        let http = survivors[i % 4].spec.http;
        eventually("a background write after the kill", async || {
            put_in(http, BACKGROUND, &key, &value).await.then_some(())
        })
        .await;
        background.push((key, value));
    }

    // The killed node restarts from its data directory and catches up: every
    // acknowledged write, with its value, is on every member's own replica.
    processes[victim].child = spawn_with(&specs[victim], &specs, data.path(), &groups);
    for p in &processes {
        let mut expected: Vec<(&str, &(String, String))> = critical.iter().map(|w| (CRITICAL, w)).collect();
        if p.spec.id <= 3 {
            expected.extend(background.iter().map(|w| (BACKGROUND, w)));
        }
        for (group, (key, value)) in expected {
            eventually("every acknowledged write on every member", async || {
                (get_in(p.spec.http, group, key, "stale").await.as_ref() == Some(value)).then_some(())
            })
            .await;
        }
    }
    // Whichever node leads by now tracks the four others, the restarted one included.
    let log = leader_log_status(&processes.iter().collect::<Vec<_>>(), CRITICAL, 4).await;
    assert_eq!(log["followers"].as_array().map(Vec::len), Some(4), "{log}");
}

/// A node outside a group writes to it through whichever members are alive.
/// Node 2, the group's second member, is SIGKILLed before the node outside
/// sends anything: before, a node outside a group asked its second member
/// first on every request that knew no leader, so each one waited out the
/// forwarding timeout at the dead node and failed, for as long as it was down.
#[actix::test]
async fn a_node_outside_a_group_writes_past_a_dead_member() {
    let data = tempfile::tempdir().unwrap();
    let specs = specs(4);
    let groups = ["--group", "g=1,2,3"].map(String::from).to_vec();
    let mut processes = spawn_all(&specs, data.path(), &groups);
    let members: Vec<&Process> = processes[..3].iter().collect();
    eventually("a leader of g", async || leader_of(&members, "g").await).await;
    processes[1].child.kill().unwrap();
    processes[1].child.wait().unwrap();

    let http = processes[3].spec.http;
    eventually("a write through the node outside g", async || {
        put_in(http, "g", "k0", "v").await.then_some(())
    })
    .await;
    // Once it has found the leader, each write goes through at once.
    for i in 1..6 {
        assert!(put_in(http, "g", &format!("k{i}"), "v").await, "write k{i} on the first try");
    }
    let alive = [&processes[0], &processes[2]];
    let leader = eventually("a leader of g among the living", async || leader_of(&alive, "g").await).await;
    assert!([1, 3].contains(&leader), "{leader}");
    assert_eq!(get_in(processes[0].spec.http, "g", "k5", "linearizable").await.as_deref(), Some("v"));
}
