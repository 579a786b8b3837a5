//! Drives a 3-member etcd cluster through its gRPC client API, for
//! `bench/compare.sh`, with the same measurements as Concord's load generator:
//!
//! - `etcd-load puts --endpoints A,B,C --clients N --seconds S --value-bytes 256`:
//!   N clients each put in a closed loop for S seconds; prints one JSON line
//!   `{"clients":N,"puts":..,"puts_per_s":..,"p50_ms":..,"p99_ms":..}`.
//! - `etcd-load failover --endpoints A,B,C --pids P1,P2,P3 [--signal kill|term]`:
//!   finds the leader, sends its process SIGKILL (default) or SIGTERM (etcd
//!   then hands leadership over before it stops), and prints one JSON line
//!   with the time from the signal to a new leader and to the first
//!   committed put.

use etcd_client::{Client, ConnectOptions};
use std::time::{Duration, Instant};

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

fn number(args: &[String], name: &str, default: u64) -> u64 {
    flag(args, name).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank].as_secs_f64() * 1_000.0
}

async fn connect(endpoints: &[String]) -> Result<Client, etcd_client::Error> {
    let options = ConnectOptions::new()
        .with_connect_timeout(Duration::from_millis(500))
        .with_timeout(Duration::from_secs(2));
    Client::connect(endpoints, Some(options)).await
}

async fn puts(endpoints: Vec<String>, clients: u64, seconds: u64, value_bytes: usize) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for client_index in 0..clients {
        let endpoints = endpoints.clone();
        tasks.push(tokio::spawn(async move {
            // One connection per client, as etcd's own benchmark does with --conns=clients.
            let mut client = connect(&endpoints).await.map_err(|e| e.to_string())?;
            let value = vec![b'v'; value_bytes];
            let mut latencies = Vec::new();
            let mut n = 0u64;
            while Instant::now() < deadline {
                let key = format!("bench/{client_index}/{}", n % 1_000);
                let start = Instant::now();
                client.put(key, value.clone(), None).await.map_err(|e| e.to_string())?;
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
    println!(
        "{{\"system\":\"etcd\",\"clients\":{clients},\"puts\":{},\"puts_per_s\":{:.0},\"p50_ms\":{:.3},\"p99_ms\":{:.3}}}",
        all.len(),
        all.len() as f64 / seconds as f64,
        percentile(&all, 0.50),
        percentile(&all, 0.99)
    );
    Ok(())
}

async fn failover(endpoints: Vec<String>, pids: Vec<u32>, signal: &str) -> Result<(), String> {
    let signal_arg = match signal {
        "kill" => "-KILL",
        "term" => "-TERM",
        other => return Err(format!("--signal {other}: expected kill or term")),
    };
    if endpoints.len() != pids.len() {
        return Err("--pids must list one pid per endpoint".into());
    }
    // Find the leader: the member whose status names itself as leader.
    let mut leader_index = None;
    let mut old_leader = 0;
    for (i, endpoint) in endpoints.iter().enumerate() {
        let mut client = connect(std::slice::from_ref(endpoint)).await.map_err(|e| e.to_string())?;
        let status = client.status().await.map_err(|e| e.to_string())?;
        let header = status.header().ok_or("status without header")?;
        if status.leader() == header.member_id() {
            leader_index = Some(i);
            old_leader = status.leader();
        }
    }
    let leader_index = leader_index.ok_or("no leader found")?;
    let survivors: Vec<String> =
        endpoints.iter().enumerate().filter(|(i, _)| *i != leader_index).map(|(_, e)| e.clone()).collect();
    let mut watchers = Vec::new();
    for endpoint in &survivors {
        watchers.push(connect(std::slice::from_ref(endpoint)).await.map_err(|e| e.to_string())?);
    }
    let mut writer = connect(&survivors).await.map_err(|e| e.to_string())?;

    let killed = Instant::now();
    let status = std::process::Command::new("kill")
        .args([signal_arg, &pids[leader_index].to_string()])
        .status()
        .map_err(|e| e.to_string())?;
    if !status.success() {
        return Err("kill failed".into());
    }
    let deadline = killed + Duration::from_secs(10);
    let elected = 'outer: loop {
        if Instant::now() > deadline {
            return Err("no new leader within 10 s".into());
        }
        for watcher in &mut watchers {
            if let Ok(status) = watcher.status().await {
                if status.leader() != 0 && status.leader() != old_leader {
                    break 'outer killed.elapsed();
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    let written = loop {
        if Instant::now() > deadline {
            return Err("no write committed within 10 s".into());
        }
        if writer.put("bench/failover", "x", None).await.is_ok() {
            break killed.elapsed();
        }
    };
    println!(
        "{{\"system\":\"etcd\",\"signal\":\"{signal}\",\"killed_endpoint\":\"{}\",\"election_ms\":{:.1},\"first_write_ms\":{:.1}}}",
        endpoints[leader_index],
        elected.as_secs_f64() * 1_000.0,
        written.as_secs_f64() * 1_000.0
    );
    Ok(())
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let endpoints: Vec<String> = flag(&args, "--endpoints")
        .unwrap_or_else(|| "127.0.0.1:23791,127.0.0.1:23792,127.0.0.1:23793".into())
        .split(',')
        .map(str::to_string)
        .collect();
    let result = match args.get(1).map(String::as_str) {
        Some("puts") => {
            puts(
                endpoints,
                number(&args, "--clients", 1),
                number(&args, "--seconds", 10),
                number(&args, "--value-bytes", 256) as usize,
            )
            .await
        }
        Some("failover") => {
            let pids = flag(&args, "--pids")
                .unwrap_or_default()
                .split(',')
                .filter_map(|p| p.parse().ok())
                .collect();
            failover(endpoints, pids, &flag(&args, "--signal").unwrap_or_else(|| "kill".into())).await
        }
        _ => Err("usage: etcd-load puts|failover [--endpoints A,B,C] [--clients N] [--seconds S] [--value-bytes B] [--pids P1,P2,P3] [--signal kill|term]".into()),
    };
    if let Err(error) = result {
        eprintln!("etcd-load: {error}");
        std::process::exit(1);
    }
}
