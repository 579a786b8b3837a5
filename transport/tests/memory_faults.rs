//! The in-memory transport, and fault injection over it (the same wrapper
//! works over TCP: see `faults_apply_over_tcp_too`).

mod support;

use actix::{Actor, Addr};
use concord_transport::fault::{FaultConfig, Faults};
use concord_transport::{
    ClusterId, Envelope, EnvelopeBody, GroupId, MemoryNetwork, NodeId, SendError, TcpConfig, TcpTransport,
    Transport,
};
use std::collections::BTreeSet;
use std::time::Duration;
use support::{eventually, numbered, seq_of, Collector, Count, Downs, Note, ReportedDown, Take, CHANNEL};

const DEADLINE: Duration = Duration::from_secs(20);

fn start_nodes(
    network: &MemoryNetwork,
    faults: &Faults,
    ids: &[u64],
) -> Vec<(impl Transport, Addr<Collector>)> {
    ids.iter()
        .map(|&id| {
            let transport = faults.wrap(network.join(NodeId(id)));
            let inbox = Collector::spawn();
            transport.register(CHANNEL, inbox.clone().recipient());
            (transport, inbox)
        })
        .collect()
}

async fn received(inbox: &Addr<Collector>) -> Vec<u64> {
    inbox.send(Take).await.unwrap().iter().map(seq_of).collect()
}

#[actix::test]
async fn memory_transport_delivers_in_order_and_reports_unknown_peers() {
    let network = MemoryNetwork::new();
    let a = network.join(NodeId(1));
    let b = network.join(NodeId(2));
    let inbox = Collector::spawn();
    b.register(CHANNEL, inbox.clone().recipient());
    for seq in 0..1_000 {
        a.send(numbered(1, 2, seq, 0)).unwrap();
    }
    eventually(DEADLINE, "1,000 deliveries", || {
        let inbox = inbox.clone();
        async move { inbox.send(Count).await.unwrap() == 1_000 }
    })
    .await;
    assert_eq!(received(&inbox).await, (0..1_000).collect::<Vec<_>>());
    assert_eq!(a.send(numbered(1, 3, 0, 0)), Err(SendError::UnknownPeer(NodeId(3))));
    b.unregister(CHANNEL);
    a.send(numbered(1, 2, 0, 0)).unwrap();
    assert_eq!(b.stats().dropped_unroutable, 1);
}

/// A node that leaves the network (its process gone) is reported down to the
/// watchers of the others, as a refused dial reports it over TCP; a channel
/// unregistered hears nothing.
#[actix::test]
async fn a_node_that_leaves_is_reported_down_to_the_others() {
    let network = MemoryNetwork::new();
    let a = network.join(NodeId(1));
    let _b = network.join(NodeId(2));
    let c = network.join(NodeId(3));
    let (a_downs, c_downs) = (Downs::default().start(), Downs::default().start());
    a.watch_peers(CHANNEL, a_downs.clone().recipient());
    c.watch_peers(CHANNEL, c_downs.clone().recipient());
    c.unregister(CHANNEL);

    network.leave(NodeId(2));
    eventually(DEADLINE, "node 2 reported down to node 1", || {
        let downs = a_downs.clone();
        async move { downs.send(ReportedDown).await.unwrap() == vec![NodeId(2)] }
    })
    .await;
    // Both notices were queued by `leave` itself: node 3's would be here by now.
    assert_eq!(c_downs.send(ReportedDown).await.unwrap(), Vec::<NodeId>::new());
    assert_eq!(a.send(numbered(1, 2, 0, 0)), Err(SendError::UnknownPeer(NodeId(2))));
}

#[actix::test]
async fn memory_transport_hands_typed_bodies_over_without_encoding() {
    let network = MemoryNetwork::new();
    let a = network.join(NodeId(1));
    let b = network.join(NodeId(2));
    let inbox = Collector::spawn();
    b.register(CHANNEL, inbox.clone().recipient());
    let note = Note(42, "in process".into());
    a.send(Envelope::typed(NodeId(1), NodeId(2), GroupId(0), note.clone())).unwrap();
    eventually(DEADLINE, "one delivery", || {
        let inbox = inbox.clone();
        async move { inbox.send(Count).await.unwrap() == 1 }
    })
    .await;
    let received = inbox.send(Take).await.unwrap().pop().unwrap();
    assert!(matches!(received.body, EnvelopeBody::Value(_)), "never encoded");
    assert_eq!(received.into_message::<Note>().unwrap(), note);
}

#[actix::test]
async fn a_partition_blocks_exactly_the_cut_links_until_healed() {
    let network = MemoryNetwork::new();
    let faults = Faults::new(1, FaultConfig::default());
    let nodes = start_nodes(&network, &faults, &[1, 2, 3]);
    faults.partition(&[NodeId(1)], &[NodeId(2), NodeId(3)]);
    faults.partition_one_way(NodeId(2), NodeId(3));
    for (from, (transport, _)) in (1..=3u64).zip(&nodes) {
        for to in 1..=3u64 {
            if to != from {
                transport.send(numbered(from, to, from * 10 + to, 0)).unwrap();
            }
        }
    }
    // Only 3→2 survives: 1 is cut off both ways, 2→3 is cut one way.
    eventually(DEADLINE, "3→2 delivered", || {
        let inbox = nodes[1].1.clone();
        async move { inbox.send(Count).await.unwrap() == 1 }
    })
    .await;
    assert_eq!(received(&nodes[0].1).await, Vec::<u64>::new());
    assert_eq!(received(&nodes[1].1).await, vec![32]);
    assert_eq!(received(&nodes[2].1).await, Vec::<u64>::new());
    assert_eq!(faults.dropped(), 5);

    faults.heal();
    for (from, (transport, _)) in (1..=3u64).zip(&nodes) {
        for to in 1..=3u64 {
            if to != from {
                transport.send(numbered(from, to, from * 10 + to, 0)).unwrap();
            }
        }
    }
    for (i, (_, inbox)) in nodes.iter().enumerate() {
        eventually(DEADLINE, "every link after heal", || {
            let inbox = inbox.clone();
            async move { inbox.send(Count).await.unwrap() == 2 }
        })
        .await;
        let to = i as u64 + 1;
        let expected: BTreeSet<u64> = (1..=3).filter(|&f| f != to).map(|f| f * 10 + to).collect();
        assert_eq!(received(inbox).await.into_iter().collect::<BTreeSet<_>>(), expected);
    }
}

#[actix::test]
async fn drops_duplicates_delays_and_reordering_are_injected() {
    let network = MemoryNetwork::new();
    let config = FaultConfig {
        drop_rate: 0.2,
        duplicate_rate: 0.2,
        delay_min: Duration::from_millis(1),
        delay_max: Duration::from_millis(20),
        reorder_rate: 0.1,
    };
    let faults = Faults::new(9, config);
    let nodes = start_nodes(&network, &faults, &[1, 2]);
    const SENT: u64 = 2_000;
    for seq in 0..SENT {
        nodes[0].0.send(numbered(1, 2, seq, 0)).unwrap();
    }
    let dropped = faults.dropped();
    assert!(dropped > SENT / 10 && dropped < SENT / 3, "about 20% dropped: {dropped}");
    // Every envelope not dropped arrives once or twice, after its delay.
    eventually(DEADLINE, "delayed deliveries", || {
        let inbox = nodes[1].1.clone();
        async move { inbox.send(Count).await.unwrap() as u64 > SENT - dropped }
    })
    .await;
    // The longest delay is 2 × delay_max = 40 ms: poll until a window of
    // 60 ms brings nothing new.
    let start = std::time::Instant::now();
    let mut last = nodes[1].1.send(Count).await.unwrap();
    loop {
        tokio::time::sleep(Duration::from_millis(60)).await;
        let now = nodes[1].1.send(Count).await.unwrap();
        if now == last {
            break;
        }
        assert!(start.elapsed() < DEADLINE, "deliveries never settled");
        last = now;
    }
    let seqs = received(&nodes[1].1).await;
    let distinct: BTreeSet<u64> = seqs.iter().copied().collect();
    assert_eq!(distinct.len() as u64, SENT - dropped, "each surviving envelope arrives");
    assert!(seqs.len() > distinct.len(), "some arrive twice");
    assert!(seqs.windows(2).any(|w| w[0] > w[1]), "some arrive out of order");
}

#[actix::test]
async fn faults_apply_over_tcp_too() {
    let cluster = ClusterId(5);
    let loopback = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let faults = Faults::new(3, FaultConfig::default());
    let a = faults.wrap(TcpTransport::bind(TcpConfig::new(cluster, NodeId(1), loopback)).await.unwrap());
    let b = TcpTransport::bind(TcpConfig::new(cluster, NodeId(2), loopback)).await.unwrap();
    let inbox = Collector::spawn();
    b.register(CHANNEL, inbox.clone().recipient());
    a.add_peer(NodeId(2), b.local_addr());
    faults.partition(&[NodeId(1)], &[NodeId(2)]);
    a.send(numbered(1, 2, 1, 0)).unwrap();
    faults.heal();
    a.send(numbered(1, 2, 2, 0)).unwrap();
    eventually(DEADLINE, "delivery after heal", || {
        let inbox = inbox.clone();
        async move { inbox.send(Count).await.unwrap() == 1 }
    })
    .await;
    assert_eq!(received(&inbox).await, vec![2], "the envelope sent during the partition was cut");
}
