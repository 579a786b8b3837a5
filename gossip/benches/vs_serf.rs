//! Concord's side of `bench/serf_compare.sh`: gossip actors over TCP
//! loopback in one process, measured the way the script measures serf
//! agents.
//!
//! - join: every node bound and listening, then each joins through node 1;
//!   per node, the time from the start of the joins until it sees every
//!   node alive;
//! - failure: node n is killed (actor stopped, sockets closed); per live
//!   node, the time until it holds it dead;
//! - event: node 1 writes one key (the counterpart of a serf user event);
//!   per live node, the time until it holds the write.
//!
//! Each node is polled every `POLL_INTERVAL`; a figure is therefore late by
//! up to one poll plus one sweep over the nodes. `CONCORD_VS_SERF_NODES`
//! sets the cluster size (default 64; 8 when run as a smoke test by
//! `cargo test --benches`). Run:
//! `cargo bench -p concord-gossip --bench vs_serf`.

use actix::{Actor, Addr, Arbiter, System};
use concord_gossip::actor::{Members, QueryState, StateUpdate};
use concord_gossip::{GossipActor, GossipConfig, GossipCore, MemberMeta, MemberStatus};
use concord_transport::{ClusterId, NodeId, TcpConfig, TcpTransport, Transport};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Between two sweeps over the nodes.
const POLL_INTERVAL: Duration = Duration::from_millis(5);
/// A phase that has not finished by then is reported as not finished.
const PHASE_DEADLINE: Duration = Duration::from_secs(20);

fn percentiles(times: &[Option<Duration>]) -> String {
    let mut done: Vec<f64> = times.iter().flatten().map(|d| d.as_secs_f64()).collect();
    done.sort_by(f64::total_cmp);
    let missing = times.len() - done.len();
    let Some(max) = done.last() else { return format!("none of {} finished", times.len()) };
    let median = done[(done.len() - 1) / 2];
    let missing =
        if missing > 0 { format!(" ({missing} not within {PHASE_DEADLINE:?})") } else { String::new() };
    format!("median {median:.3} s, max {max:.3} s{missing}")
}

/// Polls `check` on every node until it holds on all or the deadline
/// passes; the time at which each node first satisfied it.
async fn per_node<F, Fut>(nodes: &[Addr<GossipActor>], start: Instant, mut check: F) -> Vec<Option<Duration>>
where
    F: FnMut(Addr<GossipActor>) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let mut times: Vec<Option<Duration>> = vec![None; nodes.len()];
    while start.elapsed() < PHASE_DEADLINE {
        for (index, node) in nodes.iter().enumerate() {
            if times[index].is_none() && check(node.clone()).await {
                times[index] = Some(start.elapsed());
            }
        }
        if times.iter().all(Option::is_some) {
            break;
        }
        actix_rt::time::sleep(POLL_INTERVAL).await;
    }
    times
}

async fn run(nodes: u64) -> Result<(), String> {
    let config = GossipConfig::default();
    let mut transports = Vec::new();
    for i in 1..=nodes {
        let listen = "127.0.0.1:0".parse().map_err(|e| format!("{e}"))?;
        let tcp = TcpTransport::bind(TcpConfig::new(ClusterId(11), NodeId(i), listen))
            .await
            .map_err(|e| format!("bind: {e}"))?;
        transports.push(tcp);
    }
    let seed_address = transports[0].local_addr();
    let start = Instant::now();
    let mut actors = Vec::new();
    let mut arbiters = Vec::new();
    for (index, transport) in transports.iter().enumerate() {
        let id = NodeId(index as u64 + 1);
        let seeds = if index == 0 {
            vec![]
        } else {
            vec![transport.discover(seed_address).await.map_err(|e| format!("discover: {e}"))?]
        };
        let meta = MemberMeta { address: Some(transport.local_addr()), ..MemberMeta::default() };
        let core = GossipCore::new(id, meta, config.clone(), StdRng::seed_from_u64(id.0));
        let transport: Arc<dyn Transport> = Arc::new(transport.clone());
        let arbiter = Arbiter::new();
        actors.push(GossipActor::start_in_arbiter(&arbiter.handle(), move |_| {
            GossipActor::new(core, transport, seeds)
        }));
        arbiters.push(arbiter);
    }
    let joined = per_node(&actors, start, |actor| async move {
        let members = actor.send(Members).await.unwrap_or_default();
        members.iter().filter(|m| m.status == MemberStatus::Alive).count() as u64 == nodes
    })
    .await;
    println!("concord join: every node sees {nodes} alive: {}", percentiles(&joined));
    for (index, time) in joined.iter().enumerate() {
        if time.is_none() {
            let members = actors[index].send(Members).await.unwrap_or_default();
            let others: Vec<String> = members
                .iter()
                .filter(|m| m.status != MemberStatus::Alive)
                .map(|m| format!("{}:{:?}@{}", m.node, m.status, m.incarnation))
                .collect();
            println!("  node {} sees {} members, not alive: {others:?}", index + 1, members.len());
        }
    }

    // Let the cluster settle as the script does for serf.
    actix_rt::time::sleep(Duration::from_secs(2)).await;
    let victim = NodeId(nodes);
    let start = Instant::now();
    if let Some(arbiter) = arbiters.pop() {
        arbiter.stop();
    }
    if let Some(transport) = transports.last() {
        transport.shutdown();
    }
    let live = &actors[..actors.len() - 1];
    let failed = per_node(live, start, |actor| async move {
        let members = actor.send(Members).await.unwrap_or_default();
        members.iter().any(|m| m.node == victim && m.status == MemberStatus::Dead)
    })
    .await;
    println!("concord failure: killed node dead at every live node: {}", percentiles(&failed));

    let start = Instant::now();
    actors[0]
        .send(StateUpdate::assign("event", b"payload".to_vec()))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let spread = per_node(live, start, |actor| async move {
        actor.send(QueryState { key: "event".into() }).await.ok().flatten().is_some()
    })
    .await;
    println!("concord event: one write reached every live node: {}", percentiles(&spread));
    for arbiter in arbiters {
        arbiter.stop();
    }
    Ok(())
}

fn main() {
    let smoke = !std::env::args().any(|a| a == "--bench");
    let nodes: u64 = std::env::var("CONCORD_VS_SERF_NODES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if smoke { 8 } else { 64 });
    let result = System::new().block_on(run(nodes));
    if let Err(error) = result {
        eprintln!("vs_serf: {error}");
        std::process::exit(1);
    }
}
