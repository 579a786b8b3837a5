//! actix integration over TCP loopback: 20 gossip actors (CONCORD_GOSSIP_TCP_NODES
//! to change it) join through one seed, converge (the origin counts every
//! node as a holder of its update), detect a killed member and reconcile
//! after a partition.

use actix::{Actor, Addr, Arbiter};
use concord_gossip::actor::{Convergence, Members, Metrics, QueryState, StateUpdate};
use concord_gossip::{GossipActor, GossipConfig, GossipCore, MemberMeta, MemberStatus, Operation, ReadValue};
use concord_transport::fault::{FaultConfig, Faults};
use concord_transport::{ClusterId, NodeId, TcpConfig, TcpTransport, Transport};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn nodes() -> u64 {
    std::env::var("CONCORD_GOSSIP_TCP_NODES").ok().and_then(|v| v.parse().ok()).unwrap_or(20)
}

/// Polls `check` every 20 ms until it holds or `deadline` passes. Deadlines
/// are generous: the machine may be loaded, and a passing run never waits them out.
async fn eventually<F, Fut>(what: &str, deadline: Duration, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return start.elapsed();
        }
        assert!(start.elapsed() < deadline, "{what}: not within {deadline:?}");
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn statuses(actor: &Addr<GossipActor>) -> Vec<(NodeId, MemberStatus)> {
    actor.send(Members).await.unwrap().into_iter().map(|m| (m.node, m.status)).collect()
}

#[actix::test]
async fn twenty_actors_over_tcp_join_converge_detect_and_reconcile() {
    let nodes = nodes();
    let config = GossipConfig::default();
    let faults = Faults::new(7, FaultConfig::default());
    let mut transports = Vec::new();
    for i in 1..=nodes {
        let tcp = TcpTransport::bind(TcpConfig::new(ClusterId(9), NodeId(i), "127.0.0.1:0".parse().unwrap()))
            .await
            .unwrap();
        transports.push(faults.wrap(tcp));
    }
    let seed_address = transports[0].inner().local_addr();
    let mut actors = Vec::new();
    let mut arbiters = Vec::new();
    for (index, transport) in transports.iter().enumerate() {
        let id = NodeId(index as u64 + 1);
        let seeds =
            if index == 0 { vec![] } else { vec![transport.inner().discover(seed_address).await.unwrap()] };
        let meta = MemberMeta { address: Some(transport.inner().local_addr()), ..MemberMeta::default() };
        let core = GossipCore::new(id, meta, config.clone(), StdRng::seed_from_u64(id.0));
        let transport: Arc<dyn Transport> = Arc::new(transport.clone());
        // Each actor on its own arbiter, so one can be killed alone.
        let arbiter = Arbiter::new();
        let actor = GossipActor::start_in_arbiter(&arbiter.handle(), move |_| {
            GossipActor::new(core, transport, seeds)
        });
        actors.push(actor);
        arbiters.push(arbiter);
    }

    let joined = eventually("join", Duration::from_secs(60), || async {
        for actor in &actors {
            // Alive or suspect: on a loaded machine a late ack may cause a
            // suspicion that the member then refutes.
            let up = statuses(actor)
                .await
                .iter()
                .filter(|(_, s)| matches!(s, MemberStatus::Alive | MemberStatus::Suspect))
                .count();
            if up as u64 != nodes {
                return false;
            }
        }
        true
    })
    .await;
    println!("{nodes} actors joined through one seed in {joined:?}");

    let dot = actors[4].send(StateUpdate::assign("greeting", b"hello".to_vec())).await.unwrap().unwrap();
    let expected = Some(ReadValue::Register(b"hello".to_vec()));
    let spread = eventually("update spread", Duration::from_secs(60), || async {
        for actor in &actors {
            if actor.send(QueryState { key: "greeting".into() }).await.unwrap() != expected {
                return false;
            }
        }
        true
    })
    .await;
    println!("one update reached all {nodes} in {spread:?}");
    let update = Some(("greeting".to_string(), dot));
    let counted = eventually("origin counts every holder", Duration::from_secs(60), || async {
        let reports = actors[4].send(Convergence { update: update.clone() }).await.unwrap();
        reports
            .first()
            .is_some_and(|r| r.nodes as u64 == nodes && r.members as u64 == nodes && r.ticks_to_all.is_some())
    })
    .await;
    let report = actors[4].send(Convergence { update: None }).await.unwrap();
    assert_eq!(report.len(), 1, "one tracked update: {report:?}");
    assert_eq!((report[0].nodes as u64, report[0].fraction), (nodes, 1.0));
    assert!(report[0].ticks_to_threshold <= report[0].ticks_to_all, "{report:?}");
    println!("origin counted all {nodes} holders {counted:?} later: {:?}", report[0]);

    // Kill the last node: its actor stops and its transport closes.
    let victim = NodeId(nodes);
    arbiters[nodes as usize - 1].stop();
    transports[nodes as usize - 1].inner().shutdown();
    let live = &actors[..nodes as usize - 1];
    let detected = eventually("failure detection", Duration::from_secs(60), || async {
        for actor in live {
            if !statuses(actor).await.contains(&(victim, MemberStatus::Dead)) {
                return false;
            }
        }
        true
    })
    .await;
    println!("killed member declared dead by all {} in {detected:?}", nodes - 1);

    // Partition the live nodes in two halves, write on both sides, heal.
    let half = (nodes - 1) / 2;
    let left: Vec<NodeId> = (1..=half).map(NodeId).collect();
    let right: Vec<NodeId> = (half + 1..nodes).map(NodeId).collect();
    faults.partition(&left, &right);
    eventually("partition noticed", Duration::from_secs(60), || async {
        // The right half only: the killed member, dead already, is not in it.
        statuses(&live[0]).await.iter().filter(|(n, s)| right.contains(n) && *s == MemberStatus::Dead).count()
            == right.len()
    })
    .await;
    live[1]
        .send(StateUpdate { key: "count".into(), operation: Operation::Add64 { by: 2 } })
        .await
        .unwrap()
        .unwrap();
    let right_node = &live[half as usize + 1];
    right_node
        .send(StateUpdate { key: "count".into(), operation: Operation::Add64 { by: 3 } })
        .await
        .unwrap()
        .unwrap();
    live[2].send(StateUpdate::assign("left-only", b"l".to_vec())).await.unwrap().unwrap();
    right_node.send(StateUpdate::assign("right-only", b"r".to_vec())).await.unwrap().unwrap();
    faults.heal();
    let reconciled = eventually("reconcile", Duration::from_secs(60), || async {
        let mut roots = Vec::new();
        for actor in live {
            roots.push(actor.send(Metrics).await.unwrap().root);
        }
        roots.windows(2).all(|w| w[0] == w[1])
    })
    .await;
    println!("partition healed; roots equal after {reconciled:?}");
    for actor in live {
        assert_eq!(
            actor.send(QueryState { key: "count".into() }).await.unwrap(),
            Some(ReadValue::Counter(5))
        );
        assert!(actor.send(QueryState { key: "left-only".into() }).await.unwrap().is_some());
        assert!(actor.send(QueryState { key: "right-only".into() }).await.unwrap().is_some());
        let metrics = actor.send(Metrics).await.unwrap();
        assert!(metrics.core.bytes_sent > 0 && metrics.core.messages_received > 0);
        assert_eq!(metrics.bad_messages, 0);
    }
    for arbiter in arbiters {
        arbiter.stop();
    }
}
