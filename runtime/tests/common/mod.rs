//! The harness of the multi-process tests: real `concord node` processes on
//! 127.0.0.1, their HTTP API, and waits that poll against a deadline.
#![allow(dead_code)] // each test binary uses part of it

use serde_json::{json, Value};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Longest wait for any expected outcome.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// Ports handed out below the kernel's ephemeral range (32768–60999 by
/// default). A port picked by binding port 0 comes from that range, and
/// between the pick and the node's own bind (or while a node restarts on it)
/// any outgoing connection, the tests' HTTP clients' included, may take it
/// as its local port: the node then fails to start.
const TEST_PORTS: std::ops::Range<u16> = 20_000..32_000;

/// A port on 127.0.0.1, free now, outside the ephemeral range, and never
/// handed out before by this test binary.
pub fn free_address() -> SocketAddr {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    for _ in 0..TEST_PORTS.len() {
        let port = rand::random_range(TEST_PORTS);
        if given.contains(&port) {
            continue;
        }
        if let Ok(listener) = TcpListener::bind(("127.0.0.1", port)) {
            given.push(port);
            return listener.local_addr().expect("a bound address");
        }
    }
    panic!("no free port in {TEST_PORTS:?}");
}

/// Where one node listens.
pub struct Spec {
    pub id: u64,
    pub listen: SocketAddr,
    pub http: SocketAddr,
}

/// A running node process, killed when dropped.
pub struct Process {
    pub spec: Spec,
    pub child: Child,
    /// Where its standard error goes (see [`spawn_with`]).
    pub log: PathBuf,
}

impl Process {
    /// Starts `concord node` for `spec` with the others of `all` as peers
    /// and `extra` arguments (see [`spawn_with`]).
    pub fn start(spec: Spec, all: &[Spec], data: &Path, extra: &[String]) -> Process {
        let child = spawn_with(&spec, all, data, extra);
        Process { log: log_path(&spec, data), spec, child }
    }
}

/// Lines of a node's log printed when a test fails.
const LOG_TAIL_LINES: usize = 60;

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..];
            eprintln!("--- node {} log, last {} lines ---\n{}", self.spec.id, tail.len(), tail.join("\n"));
        }
    }
}

/// `n` nodes with ids `1..=n` on free ports.
pub fn specs(n: u64) -> Vec<Spec> {
    (1..=n).map(|id| Spec { id, listen: free_address(), http: free_address() }).collect()
}

/// Starts `concord node` for `spec` with the others of `all` as peers.
pub fn spawn(spec: &Spec, all: &[Spec], data: &Path) -> Child {
    spawn_with(spec, all, data, &[])
}

/// The file a node's standard error is appended to, beside its data
/// directory, across restarts; printed by [`Process`] when a test fails.
pub fn log_path(spec: &Spec, data: &Path) -> PathBuf {
    data.join(format!("node{}.log", spec.id))
}

/// As [`spawn`], with `extra` arguments (a `--config` file, say). The node
/// logs (at `info` unless `RUST_LOG` says otherwise) into [`log_path`].
pub fn spawn_with(spec: &Spec, all: &[Spec], data: &Path, extra: &[String]) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path(spec, data))
        .expect("open the node's log file");
    let mut command = Command::new(env!("CARGO_BIN_EXE_concord"));
    command
        .args(["node", "--id", &spec.id.to_string()])
        .args(["--listen", &spec.listen.to_string(), "--http", &spec.http.to_string()])
        .arg("--data-dir")
        .arg(data.join(format!("node{}", spec.id)))
        .stdout(Stdio::null())
        .stderr(log);
    for peer in all.iter().filter(|p| p.id != spec.id) {
        command.args(["--peer", &format!("{}={}", peer.id, peer.listen)]);
    }
    command.args(extra);
    command.spawn().expect("start concord node")
}

/// Starts a node process for each of `specs`, all peers of each other, with
/// `extra` arguments.
pub fn spawn_all(specs: &[Spec], data: &Path, extra: &[String]) -> Vec<Process> {
    specs
        .iter()
        .map(|s| Process::start(Spec { id: s.id, listen: s.listen, http: s.http }, specs, data, extra))
        .collect()
}

/// One HTTP request; `None` if no answer came.
pub async fn call(method: &str, http: SocketAddr, path: &str, body: Option<Value>) -> Option<(u16, Value)> {
    let client = awc::Client::builder().timeout(Duration::from_secs(6)).finish();
    let url = format!("http://{http}{path}");
    let request = client.request(awc::http::Method::from_bytes(method.as_bytes()).ok()?, url);
    let mut response = match body {
        Some(body) => request.send_json(&body).await.ok()?,
        None => request.send().await.ok()?,
    };
    let status = response.status().as_u16();
    let value = response.json::<Value>().limit(1 << 20).await.unwrap_or(Value::Null);
    Some((status, value))
}

/// Polls `probe` until it answers, failing after [`DEADLINE`].
pub async fn eventually<T>(what: &str, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The leader's id as reported by a node that claims to be the leader.
pub async fn leader(processes: &[&Process]) -> Option<u64> {
    leader_of(processes, "default").await
}

/// The leader of `group` as reported by a node that claims to lead it.
pub async fn leader_of(processes: &[&Process], group: &str) -> Option<u64> {
    for p in processes {
        let path = format!("/raft/leader?group={group}");
        let Some((200, body)) = call("GET", p.spec.http, &path, None).await else { continue };
        if body["leader_id"].as_u64() == Some(p.spec.id) {
            return Some(p.spec.id);
        }
    }
    None
}

/// Writes `key = value` through `http`; whether it was acknowledged.
pub async fn put(http: SocketAddr, key: &str, value: &str) -> bool {
    matches!(call("PUT", http, &format!("/kv/{key}"), Some(json!({ "value": value }))).await, Some((200, _)))
}

/// Writes `key = value` in `group` through `http`; whether it was acknowledged.
pub async fn put_in(http: SocketAddr, group: &str, key: &str, value: &str) -> bool {
    let path = format!("/kv/{key}?group={group}");
    matches!(call("PUT", http, &path, Some(json!({ "value": value }))).await, Some((200, _)))
}

/// The value of `key` in `group` read through `http` with `consistency`.
pub async fn get_in(http: SocketAddr, group: &str, key: &str, consistency: &str) -> Option<String> {
    let path = format!("/kv/{key}?group={group}&consistency={consistency}");
    let (200, body) = call("GET", http, &path, None).await? else { return None };
    body["value"].as_str().map(str::to_string)
}

/// Waits until the leader of `group` (whichever node it is by then)
/// reports `followers` followers in its log status; answers that status.
pub async fn leader_log_status(processes: &[&Process], group: &str, followers: usize) -> Value {
    eventually("the leader's log status with every follower", async || {
        let id = leader_of(processes, group).await?;
        let http = processes.iter().find(|p| p.spec.id == id)?.spec.http;
        let (200, log) = call("GET", http, &format!("/raft/log-status?group={group}"), None).await? else {
            return None;
        };
        (log["followers"].as_array()?.len() == followers).then_some(log)
    })
    .await
}
