//! `concord load`: the load generator of `bench/compare.sh`, driving a
//! Concord cluster through its HTTP API the way `bench/etcd-load` drives
//! etcd through gRPC, and printing the same JSON lines.
//!
//! - `concord load puts --endpoints A,B,C --clients N --seconds S --value-bytes 256`:
//!   N clients, each with its own keep-alive connection to the leader, put in
//!   a closed loop for S seconds. By default (`--client wire`) each client
//!   writes each request whole in one call and parses the answer with
//!   `httparse`, so the generator's own cost stays small beside what it
//!   measures. While there are no more clients than CPUs, each runs on a
//!   thread of its own with a blocking socket (`wire-threads`, as the floor
//!   bench's client): an answer then wakes its client directly, not through
//!   an event loop (on a 2-core VM, one client's median was 5 µs lower
//!   on average over 22 alternating rounds, lower in 15 of them).
//!   Beyond that, every client shares one event loop (`wire-loop`, as wrk):
//!   threads would contend for the CPUs the cluster needs. `--client awc`
//!   puts through actix's HTTP client instead (about 40 µs more per put,
//!   most of it CPU).
//! - `concord load reads --endpoints A,B,C --clients N --seconds S [--consistency linearizable|lease|stale] [--writers W]`:
//!   puts [`READ_KEYS`] keys, then N clients read them in turn (`GET
//!   /kv/{key}`, linearizable by default) in a closed loop for S seconds,
//!   each on its own keep-alive connection to the leader, while W clients
//!   put as `puts` does: reads/s and read latency, alone or under writes
//!   (the puts/s of the writers beside them).
//! - `concord load failover --endpoints A,B,C --pids P1,P2,P3 [--signal kill|term]`:
//!   finds the leader, sends its process SIGKILL (default) or SIGTERM (the
//!   node then hands leadership over before it stops), and reports the time
//!   to a new leader and to the first committed put.

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How `concord load puts` speaks HTTP.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LoadClient {
    /// `wire-threads` while there are no more clients than CPUs, and
    /// `wire-loop` beyond.
    #[default]
    Wire,
    /// A prebuilt request written in one call, the answer parsed with
    /// `httparse`; each client on a thread of its own with a blocking socket
    /// (as the floor bench's client).
    WireThreads,
    /// As `wire-threads`, every client on one event loop (the way wrk works).
    WireLoop,
    /// actix's HTTP client (`awc`), as `concord ctl` uses.
    Awc,
}

impl LoadClient {
    /// Its name on the command line and in the JSON line.
    fn name(self) -> &'static str {
        match self {
            LoadClient::Wire => "wire",
            LoadClient::WireThreads => "wire-threads",
            LoadClient::WireLoop => "wire-loop",
            LoadClient::Awc => "awc",
        }
    }

    /// `Wire` resolved for `clients` clients on `cpus` CPUs.
    fn resolve(self, clients: u64, cpus: u64) -> LoadClient {
        match self {
            LoadClient::Wire if clients <= cpus => LoadClient::WireThreads,
            LoadClient::Wire => LoadClient::WireLoop,
            other => other,
        }
    }
}

/// The signal `concord load failover` sends to the leader's process.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum StopSignal {
    /// SIGKILL: the process is gone at once (a crash).
    #[default]
    Kill,
    /// SIGTERM: a clean stop, leadership handed over first.
    Term,
}

impl StopSignal {
    /// Its name in the JSON line.
    fn name(self) -> &'static str {
        match self {
            StopSignal::Kill => "kill",
            StopSignal::Term => "term",
        }
    }
}

/// Which reads `concord load reads` makes (the `consistency` of `GET /kv/{key}`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ReadConsistency {
    /// Confirmed with a quorum (ReadIndex): the default of the API.
    #[default]
    Linearizable,
    /// Served under the leader's lease, without a round.
    Lease,
    /// Served from the node's state as it is.
    Stale,
}

impl ReadConsistency {
    /// Its name in the request and the JSON line.
    fn name(self) -> &'static str {
        match self {
            ReadConsistency::Linearizable => "linearizable",
            ReadConsistency::Lease => "lease",
            ReadConsistency::Stale => "stale",
        }
    }
}

/// Keys `concord load reads` puts first, then reads in turn.
pub const READ_KEYS: u64 = 100;

/// Time allowed for one request (a put or a read), with either client.
pub const PUT_TIMEOUT: Duration = Duration::from_secs(5);

/// Bound on one answer (head and body) read by the wire client.
pub const ANSWER_BYTES_MAX: usize = 64 * 1024;

/// Bound on the header lines of one answer read by the wire client.
pub const ANSWER_HEADERS_MAX: usize = 32;

/// What [`parse_answer`] finds in the bytes of an answer read so far.
#[derive(Debug, PartialEq, Eq)]
enum AnswerRead {
    /// Not whole yet: read more.
    Partial,
    /// Whole: its status code, and whether the server closes the connection
    /// after it.
    Whole { code: u16, close: bool },
}

/// Parses the bytes of one answer read so far (bounded by
/// [`ANSWER_BYTES_MAX`] and [`ANSWER_HEADERS_MAX`]).
fn parse_answer(answer: &[u8]) -> Result<AnswerRead, String> {
    let mut headers = [httparse::EMPTY_HEADER; ANSWER_HEADERS_MAX];
    let mut head = httparse::Response::new(&mut headers);
    let head_len = match head.parse(answer) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if answer.len() < ANSWER_BYTES_MAX => return Ok(AnswerRead::Partial),
        Ok(httparse::Status::Partial) => {
            return Err(format!("answer head longer than {ANSWER_BYTES_MAX} bytes"))
        }
        Err(e) => return Err(format!("malformed answer: {e}")),
    };
    let header =
        |name: &str| head.headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value);
    let body_len = header("content-length")
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.trim().parse::<usize>().ok())
        .ok_or("answer without a valid content-length")?;
    if head_len + body_len > ANSWER_BYTES_MAX {
        return Err(format!("answer longer than {ANSWER_BYTES_MAX} bytes"));
    }
    if answer.len() < head_len + body_len {
        return Ok(AnswerRead::Partial);
    }
    let close = header("connection").is_some_and(|v| v.eq_ignore_ascii_case(b"close"));
    Ok(AnswerRead::Whole { code: head.code.unwrap_or(0), close })
}

/// A whole answer's code: `Ok` for a 2xx.
fn check_code(code: u16) -> Result<(), String> {
    if (200..300).contains(&code) {
        Ok(())
    } else {
        Err(format!("request answered {code}"))
    }
}

/// Writes the whole HTTP/1.1 request putting `body` at `key` into `request`.
fn put_request(request: &mut Vec<u8>, address: &str, key: &str, body: &str) {
    request.clear();
    request.extend_from_slice(
        format!(
            "PUT /kv/{key} HTTP/1.1\r\nhost: {address}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    request.extend_from_slice(body.as_bytes());
}

/// Writes the whole HTTP/1.1 request reading `key` as `consistency` asks.
fn get_request(request: &mut Vec<u8>, address: &str, key: &str, consistency: ReadConsistency) {
    request.clear();
    let query = match consistency {
        // The API's default: no query.
        ReadConsistency::Linearizable => String::new(),
        other => format!("?consistency={}", other.name()),
    };
    request.extend_from_slice(format!("GET /kv/{key}{query} HTTP/1.1\r\nhost: {address}\r\n\r\n").as_bytes());
}

/// The key of the `n`th read (or seeding put) of `concord load reads`.
fn read_key(n: u64) -> String {
    format!("read-{}", n % READ_KEYS)
}

/// One keep-alive HTTP/1.1 connection of the wire client on the event loop.
struct WireConnection {
    address: String,
    stream: Option<TcpStream>,
    answer: Vec<u8>,
}

impl WireConnection {
    fn new(address: &str) -> WireConnection {
        WireConnection { address: address.to_owned(), stream: None, answer: Vec::with_capacity(4096) }
    }

    /// [`WireConnection::exchange`], failing once [`PUT_TIMEOUT`] has
    /// passed without a whole answer (as [`BlockingConnection::exchange`]).
    async fn exchange_in_time(&mut self, request: &[u8]) -> Result<(), String> {
        tokio::time::timeout(PUT_TIMEOUT, self.exchange(request))
            .await
            .map_err(|_| format!("request unanswered after {PUT_TIMEOUT:?}"))?
    }

    /// Writes `request` and reads the whole answer; a 2xx is `Ok`. The
    /// connection is opened on first use and again after the server closes it.
    async fn exchange(&mut self, request: &[u8]) -> Result<(), String> {
        let stream = match &mut self.stream {
            Some(stream) => stream,
            None => {
                let stream = TcpStream::connect(&self.address)
                    .await
                    .map_err(|e| format!("connect to {}: {e}", self.address))?;
                stream.set_nodelay(true).map_err(|e| format!("set TCP_NODELAY: {e}"))?;
                self.stream.insert(stream)
            }
        };
        stream.write_all(request).await.map_err(|e| format!("send the put: {e}"))?;
        self.answer.clear();
        loop {
            if stream.read_buf(&mut self.answer).await.map_err(|e| format!("read the answer: {e}"))? == 0 {
                self.stream = None;
                return Err("the server closed the connection before answering".into());
            }
            if let AnswerRead::Whole { code, close } = parse_answer(&self.answer)? {
                if close {
                    self.stream = None;
                }
                return check_code(code);
            }
        }
    }
}

/// One keep-alive HTTP/1.1 connection of the wire client on a thread of its
/// own: a blocking socket, so that an answer wakes the client directly
/// rather than through an event loop.
struct BlockingConnection {
    address: String,
    stream: Option<std::net::TcpStream>,
    answer: Vec<u8>,
    /// What one read takes from the socket, copied onto `answer`.
    chunk: Box<[u8; BLOCKING_READ_BYTES]>,
}

/// Bytes a [`BlockingConnection`] asks of the socket per read.
const BLOCKING_READ_BYTES: usize = 4096;

impl BlockingConnection {
    fn new(address: &str) -> BlockingConnection {
        BlockingConnection {
            address: address.to_owned(),
            stream: None,
            answer: Vec::with_capacity(4096),
            chunk: Box::new([0; BLOCKING_READ_BYTES]),
        }
    }

    /// As [`WireConnection::exchange`], failing once [`PUT_TIMEOUT`] has
    /// passed without a whole answer.
    fn exchange(&mut self, request: &[u8]) -> Result<(), String> {
        use std::io::{Read, Write};
        let started = Instant::now();
        let stream = match &mut self.stream {
            Some(stream) => stream,
            None => {
                let stream = std::net::TcpStream::connect(&self.address)
                    .map_err(|e| format!("connect to {}: {e}", self.address))?;
                stream.set_nodelay(true).map_err(|e| format!("set TCP_NODELAY: {e}"))?;
                stream.set_read_timeout(Some(PUT_TIMEOUT)).map_err(|e| format!("set a read timeout: {e}"))?;
                stream
                    .set_write_timeout(Some(PUT_TIMEOUT))
                    .map_err(|e| format!("set a write timeout: {e}"))?;
                self.stream.insert(stream)
            }
        };
        if let Err(e) = stream.write_all(request) {
            self.stream = None;
            return Err(format!("send the put: {e}"));
        }
        self.answer.clear();
        loop {
            if started.elapsed() > PUT_TIMEOUT {
                self.stream = None;
                return Err(format!("request unanswered after {PUT_TIMEOUT:?}"));
            }
            let n = match stream.read(&mut self.chunk[..]) {
                Ok(n) => n,
                Err(e) => {
                    self.stream = None;
                    return Err(format!("read the answer: {e}"));
                }
            };
            self.answer.extend_from_slice(&self.chunk[..n]);
            if n == 0 {
                self.stream = None;
                return Err("the server closed the connection before answering".into());
            }
            if let AnswerRead::Whole { code, close } = parse_answer(&self.answer)? {
                if close {
                    self.stream = None;
                }
                return check_code(code);
            }
        }
    }
}

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

/// [`percentile`] rounded to the microsecond.
fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    (percentile(sorted, p) * 1_000.0).round() / 1_000.0
}

/// The endpoint of the node that reports itself leader.
async fn leader_address(endpoints: &[String]) -> Result<String, String> {
    let (leader, _) = leader_index(&awc::Client::default(), endpoints).await.ok_or("no leader")?;
    Ok(endpoints[leader].clone())
}

/// N closed-loop clients putting 256-byte (by default) values for a fixed time.
pub async fn puts(
    endpoints: &[String],
    clients: u64,
    seconds: u64,
    value_bytes: usize,
    how: LoadClient,
) -> Result<Value, String> {
    let address = leader_address(endpoints).await?;
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let value = "v".repeat(value_bytes);
    let how = how.resolve(clients, cpus());
    let tasks = if how == LoadClient::Awc {
        (0..clients)
            .map(|client_index| {
                let (address, body) = (address.clone(), json!({ "value": value }));
                actix_rt::spawn(async move { awc_puts(&address, client_index, &body, deadline).await })
            })
            .collect()
    } else {
        spawn_put_clients(how, clients, &address, &value, deadline)
    };
    let all = latencies_of(tasks).await?;
    Ok(json!({
        "system": "concord",
        "client": how.name(),
        "clients": clients,
        "puts": all.len(),
        "puts_per_s": (all.len() as f64 / seconds as f64).round(),
        "p50_ms": percentile_ms(&all, 0.50),
        "p99_ms": percentile_ms(&all, 0.99),
    }))
}

/// The CPUs of this machine.
fn cpus() -> u64 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u64)
}

/// A running client: the latencies of its requests, or why it stopped.
type ClientTask = actix_rt::task::JoinHandle<Result<Vec<Duration>, String>>;

/// Waits for `tasks`; all their latencies, sorted.
async fn latencies_of(tasks: Vec<ClientTask>) -> Result<Vec<Duration>, String> {
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.map_err(|e| e.to_string())??);
    }
    all.sort();
    Ok(all)
}

/// Starts `clients` closed-loop clients of a wire kind (`how` resolved),
/// each sending until `deadline` the requests that `requests(its index)`
/// builds (given the buffer and the request's number).
fn spawn_wire_clients<F>(
    how: LoadClient,
    clients: u64,
    address: &str,
    deadline: Instant,
    requests: impl Fn(u64) -> F,
) -> Vec<ClientTask>
where
    F: FnMut(&mut Vec<u8>, u64) + Send + 'static,
{
    (0..clients)
        .map(|client_index| {
            let (address, build) = (address.to_owned(), requests(client_index));
            if how == LoadClient::WireThreads {
                actix_rt::task::spawn_blocking(move || threaded_loop(&address, deadline, build))
            } else {
                actix_rt::spawn(async move { wire_loop(&address, deadline, build).await })
            }
        })
        .collect()
}

/// [`spawn_wire_clients`] putting `value` at each client's bench keys.
fn spawn_put_clients(
    how: LoadClient,
    clients: u64,
    address: &str,
    value: &str,
    deadline: Instant,
) -> Vec<ClientTask> {
    let body = json!({ "value": value }).to_string();
    spawn_wire_clients(how, clients, address, deadline, |client_index| {
        let (address, body) = (address.to_owned(), body.clone());
        move |request: &mut Vec<u8>, n| put_request(request, &address, &bench_key(client_index, n), &body)
    })
}

/// N closed-loop clients reading [`READ_KEYS`] keys (put first) for a
/// fixed time, beside `writers` clients putting as [`puts`] does.
pub async fn reads(
    endpoints: &[String],
    clients: u64,
    seconds: u64,
    consistency: ReadConsistency,
    writers: u64,
    value_bytes: usize,
) -> Result<Value, String> {
    let address = leader_address(endpoints).await?;
    let value = "v".repeat(value_bytes);
    // Every key read exists: a read of a missing key is answered 404.
    let body = json!({ "value": value }).to_string();
    let mut connection = WireConnection::new(&address);
    let mut request = Vec::new();
    for n in 0..READ_KEYS {
        put_request(&mut request, &address, &read_key(n), &body);
        connection.exchange_in_time(&request).await?;
    }
    drop(connection);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let how = LoadClient::Wire.resolve(clients + writers, cpus());
    let writes = spawn_put_clients(how, writers, &address, &value, deadline);
    let readers = spawn_wire_clients(how, clients, &address, deadline, |client_index| {
        let address = address.clone();
        // Clients start apart in the keys, so that they read different ones.
        move |request: &mut Vec<u8>, n| {
            get_request(request, &address, &read_key(client_index * 7 + n), consistency)
        }
    });
    let all = latencies_of(readers).await?;
    let puts = latencies_of(writes).await?.len();
    Ok(json!({
        "system": "concord",
        "op": "reads",
        "consistency": consistency.name(),
        "client": how.name(),
        "clients": clients,
        "reads": all.len(),
        "reads_per_s": (all.len() as f64 / seconds as f64).round(),
        "p50_ms": percentile_ms(&all, 0.50),
        "p99_ms": percentile_ms(&all, 0.99),
        "writers": writers,
        "puts": puts,
        "puts_per_s": (puts as f64 / seconds as f64).round(),
    }))
}

/// The key of a client's `n`th put: each client cycles over 1,000 keys.
fn bench_key(client_index: u64, n: u64) -> String {
    format!("bench-{client_index}-{}", n % 1_000)
}

/// One closed-loop client of the wire kind until `deadline`, sending the
/// requests `build` writes (given the buffer and the request's number):
/// its latencies.
async fn wire_loop(
    address: &str,
    deadline: Instant,
    mut build: impl FnMut(&mut Vec<u8>, u64),
) -> Result<Vec<Duration>, String> {
    let mut connection = WireConnection::new(address);
    let mut request = Vec::with_capacity(1024);
    let mut latencies = Vec::new();
    let mut n = 0u64;
    while Instant::now() < deadline {
        build(&mut request, n);
        let start = Instant::now();
        connection.exchange_in_time(&request).await?;
        latencies.push(start.elapsed());
        n += 1;
    }
    Ok(latencies)
}

/// [`wire_loop`] on a thread of its own with a blocking socket.
fn threaded_loop(
    address: &str,
    deadline: Instant,
    mut build: impl FnMut(&mut Vec<u8>, u64),
) -> Result<Vec<Duration>, String> {
    let mut connection = BlockingConnection::new(address);
    let mut request = Vec::with_capacity(1024);
    let mut latencies = Vec::new();
    let mut n = 0u64;
    while Instant::now() < deadline {
        build(&mut request, n);
        let start = Instant::now();
        connection.exchange(&request)?;
        latencies.push(start.elapsed());
        n += 1;
    }
    Ok(latencies)
}

/// One closed-loop client through `awc` until `deadline`: its latencies.
async fn awc_puts(
    address: &str,
    client_index: u64,
    body: &Value,
    deadline: Instant,
) -> Result<Vec<Duration>, String> {
    // One connection per client, as etcd's benchmark with --conns=clients.
    let client =
        awc::Client::builder().connector(awc::Connector::new().limit(1)).timeout(PUT_TIMEOUT).finish();
    let mut latencies = Vec::new();
    let mut n = 0u64;
    while Instant::now() < deadline {
        let url = format!("http://{address}/kv/{}", bench_key(client_index, n));
        let start = Instant::now();
        let mut response = client.put(url).send_json(body).await.map_err(|e| e.to_string())?;
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
    Ok(latencies)
}

/// `signal` to the leader's process; time to a new leader and to the first put.
pub async fn failover(endpoints: &[String], pids: &[u32], signal: StopSignal) -> Result<Value, String> {
    if endpoints.len() != pids.len() {
        return Err("--pids must list one pid per endpoint".into());
    }
    let client = awc::Client::builder().timeout(Duration::from_millis(500)).finish();
    let (leader, term) = leader_index(&client, endpoints).await.ok_or("no leader")?;
    let survivors: Vec<String> =
        endpoints.iter().enumerate().filter(|(i, _)| *i != leader).map(|(_, e)| e.clone()).collect();
    let killed = Instant::now();
    let status = std::process::Command::new("kill")
        .args([if signal == StopSignal::Kill { "-KILL" } else { "-TERM" }, &pids[leader].to_string()])
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
        "signal": signal.name(),
        "killed_endpoint": endpoints[leader],
        "election_ms": (elected.as_secs_f64() * 10_000.0).round() / 10.0,
        "first_write_ms": (written.as_secs_f64() * 10_000.0).round() / 10.0,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// A server on 127.0.0.1 that hands each accepted connection to `serve`
    /// (numbered in order), serving them at once.
    async fn server<F, Fut>(serve: F) -> (String, tokio::task::JoinHandle<()>)
    where
        F: Fn(TcpStream, usize) -> Fut + 'static,
        Fut: std::future::Future<Output = ()> + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let task = actix_rt::spawn(async move {
            for n in 0.. {
                let Ok((stream, _)) = listener.accept().await else { return };
                actix_rt::spawn(serve(stream, n));
            }
        });
        (address, task)
    }

    /// Reads one request; returns its method, path, headers and body.
    async fn read_request(
        stream: &mut TcpStream,
    ) -> Option<(String, String, Vec<(String, String)>, Vec<u8>)> {
        let mut bytes = Vec::new();
        loop {
            if stream.read_buf(&mut bytes).await.ok()? == 0 {
                return None;
            }
            let mut headers = [httparse::EMPTY_HEADER; 16];
            let mut request = httparse::Request::new(&mut headers);
            if let httparse::Status::Complete(head) = request.parse(&bytes).unwrap() {
                let headers: Vec<(String, String)> = request
                    .headers
                    .iter()
                    .map(|h| (h.name.to_ascii_lowercase(), String::from_utf8(h.value.to_vec()).unwrap()))
                    .collect();
                let len: usize = headers
                    .iter()
                    .find(|(n, _)| n == "content-length")
                    .map_or(0, |(_, v)| v.parse().unwrap());
                if bytes.len() >= head + len {
                    let (method, path) =
                        (request.method.unwrap().to_owned(), request.path.unwrap().to_owned());
                    return Some((method, path, headers, bytes[head..head + len].to_vec()));
                }
            }
        }
    }

    type Seen =
        std::rc::Rc<std::cell::RefCell<Vec<(usize, (String, String, Vec<(String, String)>, Vec<u8>))>>>;

    /// A server answering every put 200 in three pieces (part of the head,
    /// the rest, the body), 5 ms apart; it logs each request with its
    /// connection's number.
    async fn split_answers_server() -> (String, Seen, tokio::task::JoinHandle<()>) {
        let seen: Seen = Default::default();
        let log = seen.clone();
        let (address, server) = server(move |mut stream, connection| {
            let log = log.clone();
            async move {
                while let Some(request) = read_request(&mut stream).await {
                    log.borrow_mut().push((connection, request));
                    let body = br#"{"index":7}"#;
                    let head = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                        body.len()
                    );
                    for piece in [&head.as_bytes()[..10], &head.as_bytes()[10..], &body[..]] {
                        stream.write_all(piece).await.unwrap();
                        stream.flush().await.unwrap();
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
            }
        })
        .await;
        (address, seen, server)
    }

    /// Every put was one whole request on the one keep-alive connection,
    /// and each waited for its whole answer.
    fn check_whole_puts(seen: &Seen, latencies: &[Duration]) {
        let seen = seen.borrow();
        assert!(latencies.len() >= 2, "{} puts", latencies.len());
        assert_eq!(seen.len(), latencies.len(), "one request per put");
        assert!(
            latencies.iter().all(|l| *l >= Duration::from_millis(10)),
            "each waited for its whole answer"
        );
        for (n, (connection, (method, path, headers, body))) in seen.iter().enumerate() {
            assert_eq!(*connection, 0, "every put on the one keep-alive connection");
            assert_eq!(method, "PUT");
            assert_eq!(path, &format!("/kv/bench-0-{n}"));
            assert!(headers.contains(&("content-type".into(), "application/json".into())), "{headers:?}");
            assert_eq!(serde_json::from_slice::<Value>(body).unwrap(), json!({ "value": "vvvv" }));
        }
    }

    /// One client of kind `how` putting for 300 ms against
    /// [`split_answers_server`].
    async fn puts_against_split_answers(how: LoadClient) {
        let (address, seen, _server) = split_answers_server().await;
        let deadline = Instant::now() + Duration::from_millis(300);
        let latencies = latencies_of(spawn_put_clients(how, 1, &address, "vvvv", deadline)).await.unwrap();
        check_whole_puts(&seen, &latencies);
    }

    #[actix_rt::test]
    async fn wire_client_sends_whole_puts_and_reads_answers_split_across_reads() {
        puts_against_split_answers(LoadClient::WireLoop).await;
    }

    #[actix_rt::test]
    async fn threaded_client_sends_whole_puts_and_reads_answers_split_across_reads() {
        puts_against_split_answers(LoadClient::WireThreads).await;
    }

    /// Two clients of kind `how` reading for 300 ms against
    /// [`split_answers_server`]: whole GETs with the consistency asked, each
    /// client on its own connection and through the read keys in turn.
    async fn reads_against_split_answers(how: LoadClient, consistency: ReadConsistency, query: &str) {
        let (address, seen, _server) = split_answers_server().await;
        let deadline = Instant::now() + Duration::from_millis(300);
        let readers = spawn_wire_clients(how, 2, &address, deadline, |client_index| {
            let address = address.clone();
            move |request: &mut Vec<u8>, n| {
                get_request(request, &address, &read_key(client_index * 7 + n), consistency)
            }
        });
        let latencies = latencies_of(readers).await.unwrap();
        let seen = seen.borrow();
        assert_eq!(seen.len(), latencies.len(), "one request per read");
        assert!(
            latencies.iter().all(|l| *l >= Duration::from_millis(10)),
            "each waited for its whole answer"
        );
        for connection in 0..2 {
            let paths: Vec<&str> = seen
                .iter()
                .filter(|(c, _)| *c == connection)
                .map(|(_, (_, path, _, _))| path.as_str())
                .collect();
            assert!(paths.len() >= 2, "{paths:?}");
            // A client's keys follow on from where it started.
            let first: u64 =
                paths[0].trim_start_matches("/kv/read-").split('?').next().unwrap().parse().unwrap();
            for (n, path) in paths.iter().enumerate() {
                assert_eq!(*path, format!("/kv/read-{}{query}", (first + n as u64) % READ_KEYS));
            }
        }
        assert!(seen.iter().all(|(_, (method, _, _, body))| method == "GET" && body.is_empty()));
    }

    #[actix_rt::test]
    async fn wire_client_sends_whole_reads_with_the_consistency_asked() {
        reads_against_split_answers(LoadClient::WireLoop, ReadConsistency::Linearizable, "").await;
        reads_against_split_answers(LoadClient::WireLoop, ReadConsistency::Stale, "?consistency=stale").await;
    }

    #[actix_rt::test]
    async fn threaded_client_sends_whole_reads_with_the_consistency_asked() {
        reads_against_split_answers(LoadClient::WireThreads, ReadConsistency::Lease, "?consistency=lease")
            .await;
    }

    #[test]
    fn wire_runs_a_thread_per_client_up_to_the_cpus_and_one_loop_beyond() {
        assert_eq!(LoadClient::Wire.resolve(1, 2), LoadClient::WireThreads);
        assert_eq!(LoadClient::Wire.resolve(2, 2), LoadClient::WireThreads);
        assert_eq!(LoadClient::Wire.resolve(3, 2), LoadClient::WireLoop);
        assert_eq!(LoadClient::WireLoop.resolve(1, 2), LoadClient::WireLoop);
        assert_eq!(LoadClient::WireThreads.resolve(64, 2), LoadClient::WireThreads);
        assert_eq!(LoadClient::Awc.resolve(1, 2), LoadClient::Awc);
    }

    /// Connection 0 answers 503, then an answer without a length, then
    /// closes unanswered; connection 1 answers 200 and asks to close.
    async fn bad_answers_server() -> (String, tokio::task::JoinHandle<()>) {
        server(|mut stream, connection| async move {
            let answers: &[&[u8]] = match connection {
                0 => &[
                    b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 2\r\n\r\n{}",
                    b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n",
                ],
                _ => &[b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}"],
            };
            for answer in answers {
                if read_request(&mut stream).await.is_none() {
                    return;
                }
                stream.write_all(answer).await.unwrap();
            }
            let _ = read_request(&mut stream).await;
        })
        .await
    }

    #[actix_rt::test]
    async fn wire_client_reports_bad_answers_and_reconnects_after_a_close() {
        let (address, _server) = bad_answers_server().await;
        let request = format!("PUT /kv/k HTTP/1.1\r\nhost: {address}\r\ncontent-length: 2\r\n\r\n{{}}");
        let mut connection = WireConnection::new(&address);
        let error = connection.exchange(request.as_bytes()).await.unwrap_err();
        assert!(error.contains("503"), "{error}");
        let error = connection.exchange(request.as_bytes()).await.unwrap_err();
        assert!(error.contains("content-length"), "{error}");
        let error = connection.exchange(request.as_bytes()).await.unwrap_err();
        assert!(error.contains("closed"), "{error}");
        connection.exchange(request.as_bytes()).await.unwrap();
        assert!(connection.stream.is_none(), "the server asked to close");
    }

    #[actix_rt::test]
    async fn threaded_client_reports_bad_answers_and_reconnects_after_a_close() {
        let (address, _server) = bad_answers_server().await;
        let outcomes = actix_rt::task::spawn_blocking(move || {
            let request = format!("PUT /kv/k HTTP/1.1\r\nhost: {address}\r\ncontent-length: 2\r\n\r\n{{}}");
            let mut connection = BlockingConnection::new(&address);
            let outcomes: Vec<_> = (0..4).map(|_| connection.exchange(request.as_bytes())).collect();
            (outcomes, connection.stream.is_none())
        })
        .await
        .unwrap();
        let (outcomes, closed) = outcomes;
        assert!(outcomes[0].as_ref().unwrap_err().contains("503"), "{outcomes:?}");
        assert!(outcomes[1].as_ref().unwrap_err().contains("content-length"), "{outcomes:?}");
        assert!(outcomes[2].as_ref().unwrap_err().contains("closed"), "{outcomes:?}");
        assert_eq!(outcomes[3], Ok(()));
        assert!(closed, "the server asked to close");
    }

    #[actix_rt::test]
    async fn wire_client_refuses_an_answer_past_its_bound() {
        let (address, _server) = server(|mut stream, _| async move {
            if read_request(&mut stream).await.is_some() {
                let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", ANSWER_BYTES_MAX);
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = read_request(&mut stream).await;
            }
        })
        .await;
        let request = format!("PUT /kv/k HTTP/1.1\r\nhost: {address}\r\ncontent-length: 2\r\n\r\n{{}}");
        let error = WireConnection::new(&address).exchange(request.as_bytes()).await.unwrap_err();
        assert!(error.contains(&ANSWER_BYTES_MAX.to_string()), "{error}");
    }
}
