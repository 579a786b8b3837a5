//! `concord load`: the load generator of `bench/compare.sh`, driving a
//! Concord cluster through its HTTP API the way `bench/etcd-load` drives
//! etcd through gRPC, and printing the same JSON lines.
//!
//! - `concord load puts --endpoints A,B,C --clients N --seconds S --value-bytes 256`:
//!   N clients, each with its own keep-alive connection to the leader, put in
//!   a closed loop for S seconds. By default (`--client wire`) each client
//!   works as wrk does: it writes each request whole in one call and parses
//!   the answer with `httparse`, so the generator's own cost stays small
//!   beside what it measures; `--client awc` puts through actix's HTTP client
//!   instead (about 40 µs more per put on a 2-core VM, most of it CPU).
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
    /// A prebuilt request written in one call, the answer parsed with
    /// `httparse` (the way wrk works).
    #[default]
    Wire,
    /// actix's HTTP client (`awc`), as `concord ctl` uses.
    Awc,
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

/// Time allowed for one put, with either client.
pub const PUT_TIMEOUT: Duration = Duration::from_secs(5);

/// Bound on one answer (head and body) read by the wire client.
pub const ANSWER_BYTES_MAX: usize = 64 * 1024;

/// Bound on the header lines of one answer read by the wire client.
pub const ANSWER_HEADERS_MAX: usize = 32;

/// One keep-alive HTTP/1.1 connection of the wire client.
struct WireConnection {
    address: String,
    stream: Option<TcpStream>,
    answer: Vec<u8>,
}

impl WireConnection {
    fn new(address: &str) -> WireConnection {
        WireConnection { address: address.to_owned(), stream: None, answer: Vec::with_capacity(4096) }
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
            let mut headers = [httparse::EMPTY_HEADER; ANSWER_HEADERS_MAX];
            let mut head = httparse::Response::new(&mut headers);
            let head_len = match head.parse(&self.answer) {
                Ok(httparse::Status::Complete(len)) => len,
                Ok(httparse::Status::Partial) if self.answer.len() < ANSWER_BYTES_MAX => continue,
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
            if self.answer.len() < head_len + body_len {
                continue;
            }
            let code = head.code.unwrap_or(0);
            if header("connection").is_some_and(|v| v.eq_ignore_ascii_case(b"close")) {
                self.stream = None;
            }
            if !(200..300).contains(&code) {
                return Err(format!("put answered {code}"));
            }
            return Ok(());
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

/// N closed-loop clients putting 256-byte (by default) values for a fixed time.
pub async fn puts(
    endpoints: &[String],
    clients: u64,
    seconds: u64,
    value_bytes: usize,
    how: LoadClient,
) -> Result<Value, String> {
    let probe = awc::Client::default();
    let (leader, _) = leader_index(&probe, endpoints).await.ok_or("no leader")?;
    let address = endpoints[leader].clone();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let value = "v".repeat(value_bytes);
    let mut tasks = Vec::new();
    for client_index in 0..clients {
        let address = address.clone();
        let body = json!({ "value": value });
        tasks.push(actix_rt::spawn(async move {
            match how {
                LoadClient::Wire => wire_puts(&address, client_index, &body, deadline).await,
                LoadClient::Awc => awc_puts(&address, client_index, &body, deadline).await,
            }
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

/// The key of a client's `n`th put: each client cycles over 1,000 keys.
fn bench_key(client_index: u64, n: u64) -> String {
    format!("bench-{client_index}-{}", n % 1_000)
}

/// One closed-loop client of the wire kind until `deadline`: its latencies.
async fn wire_puts(
    address: &str,
    client_index: u64,
    body: &Value,
    deadline: Instant,
) -> Result<Vec<Duration>, String> {
    let body = body.to_string();
    let mut connection = WireConnection::new(address);
    let mut request = Vec::with_capacity(body.len() + 256);
    let mut latencies = Vec::new();
    let mut n = 0u64;
    while Instant::now() < deadline {
        request.clear();
        request.extend_from_slice(
            format!(
                "PUT /kv/{} HTTP/1.1\r\nhost: {address}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                bench_key(client_index, n),
                body.len()
            )
            .as_bytes(),
        );
        request.extend_from_slice(body.as_bytes());
        let start = Instant::now();
        tokio::time::timeout(PUT_TIMEOUT, connection.exchange(&request))
            .await
            .map_err(|_| format!("put unanswered after {PUT_TIMEOUT:?}"))??;
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

    /// A server on 127.0.0.1 that hands each accepted connection to `serve`.
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
                serve(stream, n).await;
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
                let len: usize =
                    headers.iter().find(|(n, _)| n == "content-length").unwrap().1.parse().unwrap();
                if bytes.len() >= head + len {
                    let (method, path) =
                        (request.method.unwrap().to_owned(), request.path.unwrap().to_owned());
                    return Some((method, path, headers, bytes[head..head + len].to_vec()));
                }
            }
        }
    }

    #[actix_rt::test]
    async fn wire_client_sends_whole_puts_and_reads_answers_split_across_reads() {
        let seen = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let log = seen.clone();
        let (address, _server) = server(move |mut stream, connection| {
            let log = log.clone();
            async move {
                while let Some(request) = read_request(&mut stream).await {
                    log.borrow_mut().push((connection, request));
                    let body = br#"{"index":7}"#;
                    let head = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                        body.len()
                    );
                    // The answer arrives in three pieces: part of the head, the rest, the body.
                    for piece in [&head.as_bytes()[..10], &head.as_bytes()[10..], &body[..]] {
                        stream.write_all(piece).await.unwrap();
                        stream.flush().await.unwrap();
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
            }
        })
        .await;
        let deadline = Instant::now() + Duration::from_millis(300);
        let latencies = wire_puts(&address, 7, &json!({ "value": "vvvv" }), deadline).await.unwrap();

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
            assert_eq!(path, &format!("/kv/bench-7-{n}"));
            assert!(headers.contains(&("content-type".into(), "application/json".into())), "{headers:?}");
            assert_eq!(serde_json::from_slice::<Value>(body).unwrap(), json!({ "value": "vvvv" }));
        }
    }

    #[actix_rt::test]
    async fn wire_client_reports_bad_answers_and_reconnects_after_a_close() {
        // Connection 0 answers 503, then an answer without a length, then closes
        // unanswered; connection 1 answers 200 and asks to close.
        let (address, _server) = server(|mut stream, connection| async move {
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
        .await;
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
