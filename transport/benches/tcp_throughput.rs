//! Messages/s and MB/s over one loopback TCP connection between two
//! transports, each in its own thread and actix system (2 cores: one sender,
//! one receiver). Payloads of 100 B and 4 KiB; five trials each, median shown.
//!
//! Run: `cargo bench -p concord-transport --bench tcp_throughput`
//! (`CONCORD_BENCH_TRIALS` and `CONCORD_BENCH_SCALE` adjust the run).

use actix::{Actor, Context, Handler};
use bytes::Bytes;
use concord_transport::transport::INBOUND_MAILBOX_CAPACITY_DEFAULT;
use concord_transport::{
    Channel, ClusterId, Envelope, Inbound, NodeId, Protocol, SendError, TcpConfig, TcpTransport, Transport,
};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CHANNEL: Channel = Channel::single(Protocol::Application(1));
const CLUSTER: ClusterId = ClusterId(1);

struct Counter {
    received: Arc<AtomicU64>,
}

impl Actor for Counter {
    type Context = Context<Self>;
}

impl Handler<Inbound> for Counter {
    type Result = ();

    fn handle(&mut self, _msg: Inbound, _ctx: &mut Context<Self>) {
        self.received.fetch_add(1, Ordering::Relaxed);
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Starts the receiving node in its own thread; returns its address.
fn start_receiver(received: Arc<AtomicU64>) -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix::System::new().block_on(async move {
            let address = SocketAddr::from(([127, 0, 0, 1], 0));
            let transport =
                TcpTransport::bind(TcpConfig::new(CLUSTER, NodeId(2), address)).await.expect("bind receiver");
            let counter = Counter::create(|ctx| {
                ctx.set_mailbox_capacity(INBOUND_MAILBOX_CAPACITY_DEFAULT);
                Counter { received }
            });
            transport.register(CHANNEL, counter.recipient());
            tx.send(transport.local_addr()).expect("report address");
            std::future::pending::<()>().await;
        });
    });
    rx.recv().expect("receiver address")
}

fn main() {
    let trials = env_number("CONCORD_BENCH_TRIALS", 5) as usize;
    let scale = env_number("CONCORD_BENCH_SCALE", 1);
    // `cargo test --benches` passes no `--bench`: run a token amount.
    let quick = !std::env::args().any(|a| a == "--bench");
    println!("payload_bytes  messages  msgs_per_s_median  mb_per_s_median  (trials: {trials})");
    for (payload, messages) in [(100usize, 2_000_000u64), (4096, 200_000)] {
        let messages = if quick { 1_000 } else { messages * scale };
        let received = Arc::new(AtomicU64::new(0));
        let address = start_receiver(received.clone());
        let mut rates = Vec::new();
        actix::System::new().block_on(async {
            let sender =
                TcpTransport::bind(TcpConfig::new(CLUSTER, NodeId(1), SocketAddr::from(([127, 0, 0, 1], 0))))
                    .await
                    .expect("bind sender");
            sender.add_peer(NodeId(2), address);
            let body = Bytes::from(vec![0xAB; payload]);
            for _ in 0..(if quick { 1 } else { trials }) {
                let base = received.load(Ordering::Relaxed);
                let start = Instant::now();
                let mut sent = 0;
                while sent < messages {
                    let envelope = Envelope {
                        from: NodeId(1),
                        to: NodeId(2),
                        channel: CHANNEL,
                        body: body.clone().into(),
                    };
                    match sender.send(envelope) {
                        Ok(()) => sent += 1,
                        Err(SendError::QueueFull(_)) => tokio::task::yield_now().await,
                        Err(other) => panic!("send failed: {other}"),
                    }
                }
                while received.load(Ordering::Relaxed) < base + messages {
                    assert!(start.elapsed() < Duration::from_secs(120), "receiver stalled");
                    tokio::time::sleep(Duration::from_micros(200)).await;
                }
                let seconds = start.elapsed().as_secs_f64();
                rates.push(messages as f64 / seconds);
            }
        });
        rates.sort_by(f64::total_cmp);
        let median = rates[rates.len() / 2];
        println!(
            "{payload:>13}  {messages:>8}  {median:>17.0}  {:>15.1}",
            median * payload as f64 / 1_000_000.0
        );
    }
}
