//! `concord load`: the load generator of `bench/compare.sh`, driving a
//! Concord cluster through its HTTP API the way `bench/etcd-load` drives
//! etcd through gRPC, and printing the same JSON lines.
//!
//! - `concord load puts --endpoints A,B,C --clients N --seconds S --value-bytes 256`:
//!   N clients, each with its own keep-alive connection to the leader, put in
//!   a closed loop for S seconds.
//! - `concord load failover --endpoints A,B,C --pids P1,P2,P3`: finds the
//!   leader, SIGKILLs its process, and reports the time to a new leader and
//!   to the first committed put.

use serde_json::{json, Value};
use std::time::{Duration, Instant};

async fn get_json(client: &awc::Client, url: &str) -> Option<Value> {
    let mut response = client.get(url).send().await.ok()?;
    if !response.status().is_success() {
        return None;
    }
    response.json::<Value>().await.ok()
}

/// The index of the endpoint whose node reports itself leader.
async fn leader_index(client: &awc::Client, endpoints: &[String]) -> Option<(usize, u64)> {
    for (i, endpoint) in endpoints.iter().enumerate() {
        let Some(status) = get_json(client, &format!("http://{endpoint}/raft/status")).await else {
            continue;
        };
        if status["role"] == "leader" {
            return Some((i, status["term"].as_u64().unwrap_or(0)));
        }
    }
    None
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank].as_secs_f64() * 1_000.0
}

/// N closed-loop clients putting 256-byte (by default) values for a fixed time.
pub async fn puts(
    endpoints: &[String],
    clients: u64,
    seconds: u64,
    value_bytes: usize,
) -> Result<Value, String> {
    let probe = awc::Client::default();
    let (leader, _) = leader_index(&probe, endpoints).await.ok_or("no leader")?;
    let base = format!("http://{}", endpoints[leader]);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let value = "v".repeat(value_bytes);
    let mut tasks = Vec::new();
    for client_index in 0..clients {
        let base = base.clone();
        let body = json!({ "value": value });
        tasks.push(actix_rt::spawn(async move {
            // One connection per client, as etcd's benchmark with --conns=clients.
            let client = awc::Client::builder()
                .connector(awc::Connector::new().limit(1))
                .timeout(Duration::from_secs(5))
                .finish();
            let mut latencies = Vec::new();
            let mut n = 0u64;
            while Instant::now() < deadline {
                let url = format!("{base}/kv/bench-{client_index}-{}", n % 1_000);
                let start = Instant::now();
                let mut response = client.put(url).send_json(&body).await.map_err(|e| e.to_string())?;
                if !response.status().is_success() {
                    return Err(format!("put answered {}", response.status()));
                }
                // Read the answer to its end: a connection with an unread
                // body is closed rather than reused, and every put would then
                // pay for a new TCP connection.
                response.body().await.map_err(|e| e.to_string())?;
                latencies.push(start.elapsed());
                n += 1;
            }
            Ok::<_, String>(latencies)
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.map_err(|e| e.to_string())??);
    }
    all.sort();
    Ok(json!({
        "system": "concord",
        "clients": clients,
        "puts": all.len(),
        "puts_per_s": (all.len() as f64 / seconds as f64).round(),
        "p50_ms": (percentile(&all, 0.50) * 1_000.0).round() / 1_000.0,
        "p99_ms": (percentile(&all, 0.99) * 1_000.0).round() / 1_000.0,
    }))
}

/// SIGKILL of the leader's process; time to a new leader and to the first put.
pub async fn failover(endpoints: &[String], pids: &[u32]) -> Result<Value, String> {
    if endpoints.len() != pids.len() {
        return Err("--pids must list one pid per endpoint".into());
    }
    let client = awc::Client::builder().timeout(Duration::from_millis(500)).finish();
    let (leader, term) = leader_index(&client, endpoints).await.ok_or("no leader")?;
    let survivors: Vec<String> =
        endpoints.iter().enumerate().filter(|(i, _)| *i != leader).map(|(_, e)| e.clone()).collect();
    let killed = Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-9", &pids[leader].to_string()])
        .status()
        .map_err(|e| e.to_string())?;
    if !status.success() {
        return Err("kill failed".into());
    }
    let deadline = killed + Duration::from_secs(10);
    let new_leader = loop {
        if Instant::now() > deadline {
            return Err("no new leader within 10 s".into());
        }
        if let Some((i, new_term)) = leader_index(&client, &survivors).await {
            if new_term > term {
                break i;
            }
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    let elected = killed.elapsed();
    let url = format!("http://{}/kv/bench-failover", survivors[new_leader]);
    let written = loop {
        if Instant::now() > deadline {
            return Err("no write committed within 10 s".into());
        }
        if let Ok(response) = client.put(&url).send_json(&json!({"value": "x"})).await {
            if response.status().is_success() {
                break killed.elapsed();
            }
        }
    };
    Ok(json!({
        "system": "concord",
        "killed_endpoint": endpoints[leader],
        "election_ms": (elected.as_secs_f64() * 10_000.0).round() / 10.0,
        "first_write_ms": (written.as_secs_f64() * 10_000.0).round() / 10.0,
    }))
}
