//! Real `concord node` processes on 127.0.0.1 driven through their HTTP API:
//! writes and linearizable reads, SIGKILL of the leader, writes continuing
//! after failover, the killed node restarting and catching up, and every
//! acknowledged write present on every node at the end.

mod common;

use common::*;
use serde_json::{json, Value};

#[actix::test]
async fn three_processes_survive_sigkill_of_the_leader_and_the_victim_catches_up() {
    let data = tempfile::tempdir().unwrap();
    let specs: Vec<Spec> =
        (1..=3).map(|id| Spec { id, listen: free_address(), http: free_address() }).collect();
    let mut processes = spawn_all(&specs, data.path(), &[]);

    let first = eventually("a leader", async || leader(&processes.iter().collect::<Vec<_>>()).await).await;

    // Gossip runs beside Raft: every node sees the three members alive, and
    // a state update on one node reaches another.
    for p in &processes {
        eventually("three alive members", async || {
            let (200, body) = call("GET", p.spec.http, "/gossip/members", None).await? else { return None };
            let members = body["members"].as_array()?;
            (members.len() == 3 && members.iter().all(|m| m["status"] == "alive")).then_some(())
        })
        .await;
    }
    let update =
        call("PUT", processes[0].spec.http, "/gossip/state/color", Some(json!({"value": "blue"}))).await;
    assert_eq!(update.map(|(status, _)| status), Some(200));
    eventually("the gossip update on node 3", async || {
        let (200, body) = call("GET", processes[2].spec.http, "/gossip/state/color", None).await? else {
            return None;
        };
        (body["value"]["register"] == "blue").then_some(())
    })
    .await;

    // Writes through every node (followers forward) and linearizable reads.
    let mut acknowledged = Vec::new();
    for i in 0..30 {
        let p = &processes[i % 3];
        let key = format!("k{i}");
        assert!(put(p.spec.http, &key, &format!("v{i}")).await, "write {i} through node {}", p.spec.id);
        acknowledged.push(key);
        let (status, body) =
            call("GET", processes[(i + 1) % 3].spec.http, &format!("/kv/k{i}"), None).await.unwrap();
        assert_eq!(
            (status, body["value"].as_str()),
            (200, Some(format!("v{i}").as_str())),
            "read your write {i}"
        );
    }

    // The quorum manager reports a healthy group of three.
    let leader_http = processes.iter().find(|p| p.spec.id == first).unwrap().spec.http;
    let healthy = eventually("a healthy report", async || {
        let (200, body) = call("GET", leader_http, "/health", None).await? else { return None };
        (body["status"] == "healthy").then_some(body)
    })
    .await;
    assert_eq!(
        (healthy["voters"].as_u64(), healthy["quorum_size"].as_u64()),
        (Some(3), Some(2)),
        "{healthy}"
    );
    assert_eq!(healthy["failures_tolerated"].as_u64(), Some(1), "{healthy}");

    // SIGKILL the leader.
    let victim = processes.iter().position(|p| p.spec.id == first).unwrap();
    processes[victim].child.kill().unwrap();
    processes[victim].child.wait().unwrap();
    let survivors: Vec<&Process> = processes.iter().filter(|p| p.spec.id != first).collect();
    let second = eventually("a new leader", async || leader(&survivors).await).await;
    assert_ne!(second, first);
    // The survivors saw the victim's connections break and its port refuse
    // them: the new leader campaigned because the old one was found down,
    // not because a random timeout ran out.
    let second_http = survivors.iter().find(|p| p.spec.id == second).unwrap().spec.http;
    let (status, history) = call("GET", second_http, "/raft/election-history", None).await.unwrap();
    let won = history["elections"].as_array().and_then(|h| h.last()).cloned().unwrap_or_default();
    assert_eq!(
        (status, won["new_leader"].as_u64(), won["old_leader"].as_u64()),
        (200, Some(second), Some(first)),
        "{history}"
    );
    assert_eq!(won["trigger"], "leader_down", "{history}");
    // Once gossip declares the victim dead, the new leader's manager reports
    // the group degraded, with no failure left to tolerate.
    let degraded = eventually("a degraded report", async || {
        let (200, body) = call("GET", second_http, "/health", None).await? else { return None };
        (body["status"] == "degraded" && body["failures_tolerated"] == 0).then_some(body)
    })
    .await;
    assert_eq!(degraded["quorum_available"], true, "{degraded}");

    // Writes continue on the survivors.
    for i in 30..60 {
        let key = format!("k{i}");
        let http = survivors[i % 2].spec.http;
        eventually("a write after failover", async || put(http, &key, &format!("v{i}")).await.then_some(()))
            .await;
        acknowledged.push(key);
    }

    // The killed node restarts from its data directory and catches up.
    let spec = &specs[victim];
    processes[victim].child = spawn(spec, &specs, data.path());
    for p in &processes {
        for key in &acknowledged {
            let path = format!("/kv/{key}?consistency=stale");
            eventually("every acknowledged write on every node", async || {
                matches!(call("GET", p.spec.http, &path, None).await, Some((200, _))).then_some(())
            })
            .await;
        }
    }
    // Whichever node leads by now (load may have moved leadership) tracks
    // both followers, the restarted one included.
    let log = leader_log_status(&processes.iter().collect::<Vec<_>>(), "default", 2).await;
    assert_eq!(log["followers"].as_array().map(Vec::len), Some(2), "{log}");
}

#[actix::test]
async fn bad_requests_get_json_errors_and_the_node_keeps_serving() {
    let data = tempfile::tempdir().unwrap();
    let spec = Spec { id: 1, listen: free_address(), http: free_address() };
    let process = Process::start(spec, &[], data.path(), &[]);
    let http = process.spec.http;
    eventually("a single-node leader", async || leader(&[&process]).await).await;

    let client = awc::Client::default();
    let raw = |method: awc::http::Method, path: &str| client.request(method, format!("http://{http}{path}"));
    let cases: Vec<(u16, &str, awc::ClientRequest, Option<String>)> = vec![
        (
            400,
            "invalid JSON body",
            raw(awc::http::Method::PUT, "/kv/a").insert_header(("content-type", "application/json")),
            Some("{oops".into()),
        ),
        (
            413,
            "larger than",
            raw(awc::http::Method::PUT, "/kv/a").insert_header(("content-type", "application/json")),
            Some(format!("{{\"value\":\"{}\"}}", "x".repeat(2 << 20))),
        ),
        (404, "unknown group", raw(awc::http::Method::GET, "/raft/status?group=nope"), None),
        (404, "no key", raw(awc::http::Method::GET, "/kv/missing"), None),
        (405, "not allowed", raw(awc::http::Method::PATCH, "/kv/a"), None),
        (400, "consistency", raw(awc::http::Method::GET, "/kv/a?consistency=eventual"), None),
        (
            400,
            "unknown field",
            raw(awc::http::Method::PUT, "/raft/config").insert_header(("content-type", "application/json")),
            Some("{\"heartbeat\": 1}".into()),
        ),
        (
            400,
            "election_timeout_max_ms",
            raw(awc::http::Method::PUT, "/raft/config").insert_header(("content-type", "application/json")),
            Some("{\"election_timeout_max_ms\": 10}".into()),
        ),
        (
            400,
            "invalid JSON body",
            raw(awc::http::Method::PUT, "/gossip/degraded-mode")
                .insert_header(("content-type", "application/json")),
            Some("{\"on\": \"maybe\"}".into()),
        ),
        (404, "no gossip key", raw(awc::http::Method::GET, "/gossip/state/absent"), None),
    ];
    for (expected, message, request, body) in cases {
        let mut response = match body {
            Some(body) => request.send_body(body).await.unwrap(),
            None => request.send().await.unwrap(),
        };
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, expected, "{body}");
        assert!(body["message"].as_str().unwrap().contains(message), "{body}");
        assert!(put(http, "alive", "yes").await, "still serving after a {expected}");
    }
    let (status, body) = call("GET", http, "/kv/alive", None).await.unwrap();
    assert_eq!((status, body["value"].as_str()), (200, Some("yes")));

    // `concord load reads` puts its keys, then reads them beside a writer.
    let endpoint = http.to_string();
    let output = actix_rt::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_concord"))
            .args([
                "load",
                "--endpoints",
                &endpoint,
                "reads",
                "--clients",
                "1",
                "--writers",
                "1",
                "--seconds",
                "1",
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let line: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        (line["op"].as_str(), line["consistency"].as_str()),
        (Some("reads"), Some("linearizable")),
        "{line}"
    );
    assert!(line["reads"].as_u64() > Some(0) && line["puts"].as_u64() > Some(0), "{line}");
    let (status, _) = call("GET", http, "/kv/read-99", None).await.unwrap();
    assert_eq!(status, 200, "the keys read were put first");
}
