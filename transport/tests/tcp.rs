//! The TCP transport between real sockets on 127.0.0.1.

mod support;

use actix::{Actor, Addr};
use bytes::{BufMut, BytesMut};
use concord_transport::codec::{Frame, FrameCodec, Hello, FRAME_SIZE_MAX_DEFAULT, MAGIC};
use concord_transport::{
    ClusterId, Envelope, EnvelopeBody, GroupId, NodeId, SendError, TcpConfig, TcpTransport, Transport,
};
use std::net::SocketAddr;
use std::time::Duration;
use support::{eventually, numbered, seq_of, Collector, Count, Downs, Note, ReportedDown, Take, CHANNEL};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const CLUSTER: ClusterId = ClusterId(77);
const DEADLINE: Duration = Duration::from_secs(20);

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

async fn node(id: u64) -> (TcpTransport, Addr<Collector>) {
    let transport = TcpTransport::bind(TcpConfig::new(CLUSTER, NodeId(id), loopback())).await.unwrap();
    let collector = Collector::spawn();
    transport.register(CHANNEL, collector.clone().recipient());
    (transport, collector)
}

/// Sends, yielding to the runtime while the peer's queue is full: the sender
/// shares the thread with the writer, so it must let it drain.
async fn send_all(transport: &TcpTransport, envelopes: impl IntoIterator<Item = Envelope>) {
    for envelope in envelopes {
        loop {
            match transport.send(envelope.clone()) {
                Ok(()) => break,
                Err(SendError::QueueFull(_)) => tokio::task::yield_now().await,
                Err(other) => panic!("send failed: {other}"),
            }
        }
    }
}

/// Waits until `inbox` holds at least `count` messages, then asserts that
/// it holds exactly those numbered `0..count`, in order (`what` names them).
async fn arrive_in_order(inbox: &Addr<Collector>, count: u64, what: &str) {
    eventually(DEADLINE, what, || {
        let inbox = inbox.clone();
        async move { inbox.send(Count).await.unwrap() as u64 >= count }
    })
    .await;
    let seqs: Vec<u64> = inbox.send(Take).await.unwrap().iter().map(seq_of).collect();
    assert_eq!(seqs, (0..count).collect::<Vec<_>>(), "{what}");
}

#[actix::test]
async fn hundred_thousand_messages_arrive_in_order_with_none_lost() {
    const COUNT: u64 = 100_000;
    let (a, _) = node(1).await;
    let (b, inbox) = node(2).await;
    a.add_peer(NodeId(2), b.local_addr());
    send_all(&a, (0..COUNT).map(|seq| numbered(1, 2, seq, 92))).await;
    arrive_in_order(&inbox, COUNT, "100,000 messages").await;
    let stats = a.stats();
    assert_eq!(stats.dropped_write_failed, 0);
    assert_eq!(stats.connections_established, 1, "one connection carries everything");
    assert_eq!(b.stats().delivered, COUNT);
}

/// Two nodes that both talk share one connection: the second to send
/// writes on the connection the first opened, and each side's messages
/// arrive in order.
#[actix::test]
async fn a_peer_answers_on_the_connection_it_was_dialed_on() {
    let (a, inbox_a) = node(1).await;
    let (b, inbox_b) = node(2).await;
    a.add_peer(NodeId(2), b.local_addr());
    b.add_peer(NodeId(1), a.local_addr());
    send_all(&a, (0..100).map(|seq| numbered(1, 2, seq, 40))).await;
    arrive_in_order(&inbox_b, 100, "a's messages").await;
    send_all(&b, (0..100).map(|seq| numbered(2, 1, seq, 40))).await;
    arrive_in_order(&inbox_a, 100, "b's messages").await;
    let (a, b) = (a.stats(), b.stats());
    assert_eq!((a.connections_established, a.connections_adopted), (1, 0));
    assert_eq!((b.connections_established, b.connections_adopted), (0, 1), "b dials nothing");
    assert_eq!(a.connections_accepted + b.connections_accepted, 1);
}

/// Two nodes that dial each other at the same moment end on one
/// connection, the lower id's: the higher id leaves its own once idle.
/// Nothing is lost or reordered on the way.
#[actix::test]
async fn nodes_that_dial_each_other_at_once_keep_the_lower_ids_connection() {
    const ROUNDS: u64 = 200;
    let (a, inbox_a) = node(1).await;
    let (b, inbox_b) = node(2).await;
    a.add_peer(NodeId(2), b.local_addr());
    b.add_peer(NodeId(1), a.local_addr());
    // Both links start in the same turn: each dials before it hears the other.
    a.send(numbered(1, 2, 0, 40)).unwrap();
    b.send(numbered(2, 1, 0, 40)).unwrap();
    for seq in 1..ROUNDS {
        send_all(&a, [numbered(1, 2, seq, 40)]).await;
        send_all(&b, [numbered(2, 1, seq, 40)]).await;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    arrive_in_order(&inbox_a, ROUNDS, "b's messages").await;
    arrive_in_order(&inbox_b, ROUNDS, "a's messages").await;
    let (a, b) = (a.stats(), b.stats());
    assert_eq!((a.connections_established, a.connections_adopted), (1, 0), "a keeps its own");
    assert_eq!((b.connections_established, b.connections_adopted), (1, 1), "b moved to a's");
    assert_eq!(a.dropped_write_failed + b.dropped_write_failed, 0);
}

/// A node that dialed reads what the peer sends back on that connection,
/// with the checks of an accepted one: a message in the peer's name is
/// delivered; one in another's name closes the connection, and the link
/// dials again.
#[actix::test]
async fn the_dialer_checks_what_the_peer_sends_back() {
    let (a, inbox) = node(1).await;
    let listener = tokio::net::TcpListener::bind(loopback()).await.unwrap();
    a.add_peer(NodeId(2), listener.local_addr().unwrap());
    a.send(numbered(1, 2, 1, 0)).unwrap();
    let mut played = accept_as_node_2(&listener).await;
    played.write_all(&frame(&Frame::Message(numbered(2, 1, 7, 0)))).await.unwrap();
    eventually(DEADLINE, "node 2's message", || {
        let inbox = inbox.clone();
        async move { inbox.send(Count).await.unwrap() >= 1 }
    })
    .await;
    // Node 2 now speaks for node 3 on the connection authenticated as 2.
    played.write_all(&frame(&Frame::Message(numbered(3, 1, 8, 0)))).await.unwrap();
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(DEADLINE, played.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "node 1 closes the connection");
    assert_eq!(a.stats().connections_rejected, 1);
    let seqs: Vec<u64> = inbox.send(Take).await.unwrap().iter().map(seq_of).collect();
    assert_eq!(seqs, vec![7], "the spoofed message is not delivered");
    a.send(numbered(1, 2, 2, 0)).unwrap();
    let _again = tokio::time::timeout(DEADLINE, accept_as_node_2(&listener)).await.expect("a dials again");
}

/// An idle link lends its socket to the sender, who writes at once; a
/// frame larger than the socket takes at once leaves its rest to the
/// link, and what is sent after it still arrives after it.
#[actix::test]
async fn an_idle_link_is_written_by_the_sender_and_large_frames_keep_their_order() {
    const LARGE: usize = 8 * 1024 * 1024;
    let (a, _) = node(1).await;
    let (b, inbox) = node(2).await;
    a.add_peer(NodeId(2), b.local_addr());
    a.send(numbered(1, 2, 0, 0)).unwrap();
    eventually(DEADLINE, "the first message", || {
        let inbox = inbox.clone();
        async move { inbox.send(Count).await.unwrap() == 1 }
    })
    .await;
    assert_eq!(a.stats().sent_direct, 0, "the first message waits for the connection");
    // No yield between these sends: the receiver reads nothing meanwhile, so
    // each large frame fills the socket and leaves its rest pending.
    let padding = |seq: u64| if seq % 5 == 0 { LARGE } else { 10 };
    for seq in 1..=20 {
        a.send(numbered(1, 2, seq, padding(seq))).unwrap();
    }
    eventually(DEADLINE, "21 messages", || {
        let inbox = inbox.clone();
        async move { inbox.send(Count).await.unwrap() == 21 }
    })
    .await;
    let received = inbox.send(Take).await.unwrap();
    let seqs: Vec<u64> = received.iter().map(seq_of).collect();
    assert_eq!(seqs, (0..=20).collect::<Vec<_>>());
    for envelope in &received[1..] {
        let seq = seq_of(envelope);
        assert_eq!(envelope.body.encoded().unwrap().len(), 8 + padding(seq), "message {seq}");
    }
    let stats = a.stats();
    // The first after the connection idles is written by the sender; the
    // first large one then fills the socket, and those after it are queued.
    assert!(stats.sent_direct >= 2, "{stats:?}");
    assert!(stats.sent_direct < 21, "{stats:?}");
    assert_eq!(stats.dropped_write_failed, 0);
    assert_eq!(stats.connections_established, 1);
}

#[actix::test]
async fn typed_bodies_are_encoded_on_the_wire_and_open_on_arrival() {
    let (a, _) = node(1).await;
    let (b, inbox) = node(2).await;
    a.add_peer(NodeId(2), b.local_addr());
    let notes: Vec<Note> = (0..100).map(|i| Note(i, format!("note {i}"))).collect();
    send_all(&a, notes.iter().map(|n| Envelope::typed(NodeId(1), NodeId(2), GroupId(0), n.clone()))).await;
    eventually(DEADLINE, "100 notes", || {
        let inbox = inbox.clone();
        async move { inbox.send(Count).await.unwrap() == 100 }
    })
    .await;
    let received = inbox.send(Take).await.unwrap();
    assert!(received.iter().all(|e| matches!(e.body, EnvelopeBody::Encoded(_))), "bytes from the socket");
    let opened: Vec<Note> = received.into_iter().map(|e| e.into_message().unwrap()).collect();
    assert_eq!(opened, notes);
    let expected_bytes: usize =
        notes.iter().map(|n| Envelope::wrap(NodeId(1), NodeId(2), GroupId(0), n).unwrap().size_bytes()).sum();
    assert_eq!(b.stats().bytes_received, expected_bytes as u64);
}

#[actix::test]
async fn a_node_sending_to_itself_delivers_locally() {
    let (a, inbox) = node(1).await;
    a.send(numbered(1, 1, 5, 0)).unwrap();
    eventually(DEADLINE, "local delivery", || {
        let inbox = inbox.clone();
        async move { inbox.send(Count).await.unwrap() == 1 }
    })
    .await;
}

#[actix::test]
async fn sending_to_an_unknown_peer_is_a_typed_error() {
    let (a, _) = node(1).await;
    assert_eq!(a.send(numbered(1, 9, 0, 0)), Err(SendError::UnknownPeer(NodeId(9))));
}

#[actix::test]
async fn discover_learns_a_seed_known_only_by_address() {
    let (a, _) = node(1).await;
    let (b, inbox) = node(2).await;
    assert_eq!(a.discover(b.local_addr()).await.unwrap(), NodeId(2));
    a.send(numbered(1, 2, 1, 0)).unwrap();
    eventually(DEADLINE, "delivery after discovery", || {
        let inbox = inbox.clone();
        async move { inbox.send(Count).await.unwrap() == 1 }
    })
    .await;
}

/// Runs node 2 in its own thread and actix system until `stop` is signalled,
/// reporting each received sequence number: a peer process that can be
/// stopped and started again on the same port.
fn spawn_peer(
    address: SocketAddr,
    seqs: std::sync::mpsc::Sender<u64>,
) -> (std::thread::JoinHandle<()>, tokio::sync::oneshot::Sender<()>, std::sync::mpsc::Receiver<SocketAddr>) {
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (bound_tx, bound_rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        actix::System::new().block_on(async move {
            let transport = TcpTransport::bind(TcpConfig::new(CLUSTER, NodeId(2), address)).await.unwrap();
            bound_tx.send(transport.local_addr()).unwrap();
            let forwarder = Forwarder { seqs }.start();
            transport.register(CHANNEL, forwarder.recipient());
            let _ = stop_rx.await;
            transport.shutdown();
        });
    });
    (thread, stop_tx, bound_rx)
}

struct Forwarder {
    seqs: std::sync::mpsc::Sender<u64>,
}

impl Actor for Forwarder {
    type Context = actix::Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(1 << 16);
    }
}

impl actix::Handler<concord_transport::Inbound> for Forwarder {
    type Result = ();

    fn handle(&mut self, msg: concord_transport::Inbound, _ctx: &mut Self::Context) {
        let _ = self.seqs.send(seq_of(&msg.0));
    }
}

#[actix::test]
async fn delivery_resumes_after_the_peer_restarts() {
    let (a, _) = node(1).await;
    let (seqs_tx, seqs) = std::sync::mpsc::channel();
    let (thread, stop, bound) = spawn_peer(loopback(), seqs_tx.clone());
    let address = bound.recv().unwrap();
    a.add_peer(NodeId(2), address);

    let mut seq = 0;
    let mut received = Vec::new();
    eventually(DEADLINE, "first peer receives", || {
        seq += 1;
        let _ = a.send(numbered(1, 2, seq, 0));
        received.extend(seqs.try_iter());
        std::future::ready(!received.is_empty())
    })
    .await;

    stop.send(()).unwrap();
    thread.join().unwrap();
    let before_restart = seq;
    let established_before = a.stats().connections_established;

    let (thread, stop, bound) = spawn_peer(address, seqs_tx);
    assert_eq!(bound.recv().unwrap(), address);
    let mut after = Vec::new();
    eventually(DEADLINE, "restarted peer receives new messages", || {
        seq += 1;
        let _ = a.send(numbered(1, 2, seq, 0));
        after.extend(seqs.try_iter().filter(|&s| s > before_restart));
        std::future::ready(after.len() >= 10)
    })
    .await;
    assert!(after.windows(2).all(|w| w[0] < w[1]), "in order after reconnect: {after:?}");
    assert!(a.stats().connections_established > established_before, "reconnected");
    stop.send(()).unwrap();
    thread.join().unwrap();
}

/// A link waiting out a long reconnect backoff dials again as soon as the
/// peer connects to us: a restarted peer is reachable at once, not after
/// `backoff_max`.
#[actix::test]
async fn a_peer_that_connects_to_us_cuts_our_backoff_short() {
    const BACKOFF: Duration = Duration::from_secs(120);
    let mut config = TcpConfig::new(CLUSTER, NodeId(1), loopback());
    config.backoff_initial = BACKOFF;
    config.backoff_max = BACKOFF;
    let a = TcpTransport::bind(config).await.unwrap();
    // An address with nobody behind it yet.
    let address = std::net::TcpListener::bind(loopback()).unwrap().local_addr().unwrap();
    a.add_peer(NodeId(2), address);
    a.send(numbered(1, 2, 1, 0)).unwrap();
    eventually(DEADLINE, "the first dial fails", || std::future::ready(a.stats().connections_failed >= 1))
        .await;

    // Node 2 comes up on that address and says hello: a's link, asleep for
    // at least BACKOFF / 2, must wake and deliver the queued envelope, on
    // the connection node 2 opened.
    let b = TcpTransport::bind(TcpConfig::new(CLUSTER, NodeId(2), address)).await.unwrap();
    let inbox = Collector::spawn();
    b.register(CHANNEL, inbox.clone().recipient());
    b.add_peer(NodeId(1), a.local_addr());
    b.send(numbered(2, 1, 1, 0)).unwrap();
    eventually(DEADLINE, "the queued envelope arrives well before the backoff ends", || {
        let inbox = inbox.clone();
        async move { inbox.send(Count).await.unwrap() >= 1 }
    })
    .await;
    assert_eq!((a.stats().connections_adopted, a.stats().connections_established), (1, 0));
}

/// What a misbehaving client sends.
enum Bad {
    Garbage,
    OversizedLength,
    TruncatedFrame,
    WrongCluster,
    UnknownVersion,
    ClaimsReceiverId,
    MessageBeforeHandshake,
    SpoofedSender,
}

fn frame(frame: &Frame) -> BytesMut {
    let mut wire = BytesMut::new();
    FrameCodec::new(FRAME_SIZE_MAX_DEFAULT).encode_frame(frame, &mut wire).unwrap();
    wire
}

fn bad_bytes(bad: &Bad) -> Vec<u8> {
    let hello = |cluster: ClusterId, node: u64, version: u32| {
        Frame::Hello(Hello { magic: MAGIC, version, cluster, node: NodeId(node) })
    };
    match bad {
        Bad::Garbage => b"GET / HTTP/1.1\r\nHost: concord\r\n\r\n".to_vec(),
        Bad::OversizedLength => {
            let mut wire = BytesMut::new();
            wire.put_u32(u32::MAX);
            wire.extend_from_slice(&[0; 64]);
            wire.to_vec()
        }
        Bad::TruncatedFrame => {
            let wire = frame(&hello(CLUSTER, 9, 1));
            wire[..wire.len() - 2].to_vec()
        }
        Bad::WrongCluster => frame(&hello(ClusterId(999), 9, 1)).to_vec(),
        Bad::UnknownVersion => frame(&hello(CLUSTER, 9, 99)).to_vec(),
        Bad::ClaimsReceiverId => frame(&hello(CLUSTER, 2, 1)).to_vec(),
        Bad::MessageBeforeHandshake => frame(&Frame::Message(numbered(9, 2, 0, 0))).to_vec(),
        Bad::SpoofedSender => {
            let mut wire = frame(&hello(CLUSTER, 9, 1));
            // Authenticated as node 9, then speaks as node 1.
            wire.extend_from_slice(&frame(&Frame::Message(numbered(1, 2, 0, 0))));
            wire.to_vec()
        }
    }
}

/// Sends `bad` over a raw socket to node 2 while node 1 and node 2 keep
/// exchanging messages; asserts the raw socket is closed, the rejection is
/// counted, nothing it sent was delivered, and the good pair carried on.
async fn rejected_while_good_peer_keeps_talking(bad: Bad) {
    let (a, inbox_a) = node(1).await;
    let (b, inbox_b) = node(2).await;
    a.add_peer(NodeId(2), b.local_addr());
    b.add_peer(NodeId(1), a.local_addr());

    let mut raw = TcpStream::connect(b.local_addr()).await.unwrap();
    raw.write_all(&bad_bytes(&bad)).await.unwrap();
    if matches!(bad, Bad::TruncatedFrame) {
        raw.shutdown().await.unwrap();
    }
    // Meanwhile the good peers talk both ways.
    for seq in 0..100 {
        a.send(numbered(1, 2, seq, 16)).unwrap();
        b.send(numbered(2, 1, seq, 16)).unwrap();
    }

    // The raw connection is closed by node 2 (read gives EOF or an error),
    // without node 2 having answered with its own handshake.
    let mut reply = Vec::new();
    let read = tokio::time::timeout(DEADLINE, raw.read_to_end(&mut reply)).await.expect("closed");
    assert!(read.is_err() || reply.is_empty(), "no handshake is sent to a rejected peer");
    eventually(DEADLINE, "rejection counted", || {
        let rejected = b.stats().connections_rejected;
        std::future::ready(rejected == 1)
    })
    .await;

    arrive_in_order(&inbox_a, 100, "node a got exactly the good traffic").await;
    arrive_in_order(&inbox_b, 100, "node b got exactly the good traffic").await;
}

#[actix::test]
async fn garbage_bytes_are_rejected() {
    rejected_while_good_peer_keeps_talking(Bad::Garbage).await;
}

#[actix::test]
async fn an_oversized_length_is_rejected() {
    rejected_while_good_peer_keeps_talking(Bad::OversizedLength).await;
}

#[actix::test]
async fn a_truncated_frame_is_rejected() {
    rejected_while_good_peer_keeps_talking(Bad::TruncatedFrame).await;
}

#[actix::test]
async fn a_wrong_cluster_id_is_rejected() {
    rejected_while_good_peer_keeps_talking(Bad::WrongCluster).await;
}

#[actix::test]
async fn an_unknown_protocol_version_is_rejected() {
    rejected_while_good_peer_keeps_talking(Bad::UnknownVersion).await;
}

#[actix::test]
async fn a_peer_claiming_the_receivers_id_is_rejected() {
    rejected_while_good_peer_keeps_talking(Bad::ClaimsReceiverId).await;
}

#[actix::test]
async fn a_message_before_the_handshake_is_rejected() {
    rejected_while_good_peer_keeps_talking(Bad::MessageBeforeHandshake).await;
}

#[actix::test]
async fn a_peer_speaking_for_another_node_is_rejected() {
    rejected_while_good_peer_keeps_talking(Bad::SpoofedSender).await;
}

#[actix::test]
async fn a_silent_client_is_dropped_at_the_handshake_timeout() {
    let mut config = TcpConfig::new(CLUSTER, NodeId(2), loopback());
    config.handshake_timeout = Duration::from_millis(100);
    let b = TcpTransport::bind(config).await.unwrap();
    let mut raw = TcpStream::connect(b.local_addr()).await.unwrap();
    let mut reply = Vec::new();
    let _ = tokio::time::timeout(DEADLINE, raw.read_to_end(&mut reply)).await.expect("closed");
    assert!(reply.is_empty());
    assert_eq!(b.stats().connections_rejected, 1);
}

#[actix::test]
async fn dialing_a_node_that_is_not_the_expected_peer_fails_and_retries() {
    let (a, _) = node(1).await;
    let (c, inbox_c) = node(3).await;
    // Node 1 believes node 2 lives at node 3's address.
    a.add_peer(NodeId(2), c.local_addr());
    a.send(numbered(1, 2, 0, 0)).unwrap();
    eventually(DEADLINE, "node 3 refuses to be taken for node 2", || {
        std::future::ready(a.stats().connections_established == 0 && c.stats().connections_accepted >= 1)
    })
    .await;
    assert_eq!(inbox_c.send(Count).await.unwrap(), 0);
}

#[actix::test]
async fn a_full_peer_queue_drops_and_counts() {
    let mut config = TcpConfig::new(CLUSTER, NodeId(1), loopback());
    config.peer_queue_len_max = 4;
    let a = TcpTransport::bind(config).await.unwrap();
    // Nobody listens there: the link keeps retrying and the queue fills.
    let closed = std::net::TcpListener::bind(loopback()).unwrap().local_addr().unwrap();
    a.add_peer(NodeId(2), closed);
    let results: Vec<_> = (0..10).map(|seq| a.send(numbered(1, 2, seq, 0))).collect();
    let full = results.iter().filter(|r| **r == Err(SendError::QueueFull(NodeId(2)))).count();
    assert!(full >= 5, "{results:?}");
    assert_eq!(a.stats().dropped_queue_full, full as u64);
}

/// Plays node 2 on an accepted socket: reads node 1's handshake, answers.
async fn accept_as_node_2(listener: &tokio::net::TcpListener) -> TcpStream {
    let (mut stream, _) = listener.accept().await.unwrap();
    let theirs = frame(&Frame::Hello(Hello::new(CLUSTER, NodeId(1))));
    let mut hello = vec![0; theirs.len()];
    stream.read_exact(&mut hello).await.unwrap();
    assert_eq!(hello, theirs.to_vec(), "node 1's handshake");
    stream.write_all(&frame(&Frame::Hello(Hello::new(CLUSTER, NodeId(2))))).await.unwrap();
    stream
}

/// A node 1 whose watcher records peers reported down, linked to a node 2
/// played by hand on `listener`.
async fn watched_link() -> (TcpTransport, Addr<Downs>, tokio::net::TcpListener) {
    let (a, _) = node(1).await;
    let downs = Downs::default().start();
    a.watch_peers(CHANNEL, downs.clone().recipient());
    let listener = tokio::net::TcpListener::bind(loopback()).await.unwrap();
    a.add_peer(NodeId(2), listener.local_addr().unwrap());
    a.send(numbered(1, 2, 1, 0)).unwrap();
    (a, downs, listener)
}

/// Waits until the watcher was told, once, that node 2 is down.
async fn node_2_reported_down(downs: &Addr<Downs>) {
    eventually(DEADLINE, "node 2 reported down", || {
        let downs = downs.clone();
        async move { downs.send(ReportedDown).await.unwrap() == vec![NodeId(2)] }
    })
    .await;
}

/// A peer whose connection breaks and whose address then refuses a new one
/// (its process is gone) is reported down, once.
#[actix::test]
async fn a_peer_whose_connection_breaks_and_whose_port_then_refuses_is_reported_down() {
    let (a, downs, listener) = watched_link().await;
    let stream = accept_as_node_2(&listener).await;
    // The process dies: its socket and its listener close together.
    drop(stream);
    drop(listener);
    node_2_reported_down(&downs).await;
    assert!(a.stats().connections_failed >= 1, "the redial was refused");
    // Once unregistered, the watcher hears nothing more.
    a.unregister(CHANNEL);
}

/// A dying process can still take in a redial and drop it before its
/// listener closes: the link asks again, is refused, and reports the peer.
#[actix::test]
async fn a_redial_dropped_by_a_dying_peer_is_asked_again() {
    let (_a, downs, listener) = watched_link().await;
    let stream = accept_as_node_2(&listener).await;
    drop(stream);
    let (taken_in, _) = listener.accept().await.unwrap();
    drop(taken_in);
    drop(listener);
    node_2_reported_down(&downs).await;
}

/// A connection that breaks while the peer still listens is no sign of
/// death: the link reconnects and nobody is told the peer is down.
#[actix::test]
async fn a_broken_connection_to_a_peer_still_listening_is_not_reported() {
    let (a, downs, listener) = watched_link().await;
    let first = accept_as_node_2(&listener).await;
    drop(first);
    // The link redials at once, although nothing is queued.
    let _second = accept_as_node_2(&listener).await;
    eventually(DEADLINE, "the link reconnects", || {
        std::future::ready(a.stats().connections_established == 2)
    })
    .await;
    assert_eq!(downs.send(ReportedDown).await.unwrap(), Vec::<NodeId>::new());
}
