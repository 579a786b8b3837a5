//! The TCP transport.
//!
//! Each node listens on one address and keeps, for each peer it sends to, one
//! outbound connection that carries every protocol and group (see
//! [`link`]). Inbound connections only receive (see [`inbound`]); so between
//! two nodes that both talk there are two sockets, one per direction, each
//! shared by all protocols.
//!
//! A connection starts with a handshake in each direction carrying the
//! cluster id, the node id and the protocol version; anything unexpected
//! closes that one connection with a logged, typed [`ConnectionError`].

mod inbound;
mod link;

use crate::codec::{Frame, FrameCodec, Hello, FRAME_SIZE_MAX_DEFAULT};
use crate::envelope::{Channel, Envelope};
use crate::error::{ConnectionError, SendError};
use crate::ids::{ClusterId, NodeId};
use crate::transport::{Counters, Inbound, PeerDown, Router, Transport, TransportStats};
use actix::{Actor, Recipient};
use actix_rt::ArbiterHandle;
use dashmap::DashMap;
use futures_util::StreamExt;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Notify};
use tokio_util::codec::FramedRead;

/// Settings of a [`TcpTransport`], each with a named default.
#[derive(Clone, Debug)]
pub struct TcpConfig {
    /// The cluster this node belongs to; peers of another cluster are refused.
    pub cluster: ClusterId,
    /// This node.
    pub node: NodeId,
    /// Address to listen on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Bound on one frame's payload (default 16 MiB).
    pub frame_size_max: usize,
    /// Bound on envelopes queued for one peer; past it, `send` drops and counts.
    pub peer_queue_len_max: usize,
    /// Bound on envelopes written in one batch.
    pub write_batch_len_max: usize,
    /// Bound on bytes encoded into one batch before it is written.
    pub write_batch_bytes_max: usize,
    /// Bound on simultaneous inbound connections.
    pub inbound_connections_max: usize,
    /// Time allowed to open a connection.
    pub connect_timeout: Duration,
    /// Time allowed for the peer's handshake to arrive.
    pub handshake_timeout: Duration,
    /// First delay before reconnecting.
    pub backoff_initial: Duration,
    /// Longest delay between reconnection attempts.
    pub backoff_max: Duration,
}

/// Default bound on envelopes queued for one peer.
pub const PEER_QUEUE_LEN_MAX_DEFAULT: usize = 8_192;
/// Default bound on envelopes in one write.
pub const WRITE_BATCH_LEN_MAX_DEFAULT: usize = 1_024;
/// Default bound on bytes in one write.
pub const WRITE_BATCH_BYTES_MAX_DEFAULT: usize = 1024 * 1024;
/// Default bound on simultaneous inbound connections.
pub const INBOUND_CONNECTIONS_MAX_DEFAULT: usize = 1_024;

impl TcpConfig {
    /// Defaults for `node` of `cluster` listening on `listen`.
    pub fn new(cluster: ClusterId, node: NodeId, listen: SocketAddr) -> TcpConfig {
        TcpConfig {
            cluster,
            node,
            listen,
            frame_size_max: FRAME_SIZE_MAX_DEFAULT,
            peer_queue_len_max: PEER_QUEUE_LEN_MAX_DEFAULT,
            write_batch_len_max: WRITE_BATCH_LEN_MAX_DEFAULT,
            write_batch_bytes_max: WRITE_BATCH_BYTES_MAX_DEFAULT,
            inbound_connections_max: INBOUND_CONNECTIONS_MAX_DEFAULT,
            connect_timeout: Duration::from_secs(1),
            handshake_timeout: Duration::from_secs(1),
            backoff_initial: Duration::from_millis(10),
            backoff_max: Duration::from_secs(2),
        }
    }
}

/// State shared by the handle, the listener and every connection actor.
#[derive(Debug)]
struct Shared {
    config: TcpConfig,
    local_addr: SocketAddr,
    router: Router,
    addresses: DashMap<NodeId, SocketAddr>,
    links: DashMap<NodeId, Arc<link::Link>>,
    /// Per peer: woken when that peer connects to us, so an outbound link
    /// waiting out its reconnect backoff dials at once. A restarted peer is
    /// reachable again as soon as it says so, not up to `backoff_max` later.
    redial: DashMap<NodeId, Arc<Notify>>,
    arbiter: ArbiterHandle,
    shutdown: AtomicBool,
    /// The codec of direct writes (see [`link::Direct`]).
    codec: FrameCodec,
}

impl Shared {
    fn counters(&self) -> &Counters {
        &self.router.counters
    }

    /// The wake-up of `peer`'s outbound link (created on first use).
    fn redial(&self, peer: NodeId) -> Arc<Notify> {
        self.redial.entry(peer).or_default().clone()
    }

    /// `peer` proved itself on an inbound connection: cut its link's
    /// backoff short.
    fn peer_is_back(&self, peer: NodeId) {
        if let Some(wake) = self.redial.get(&peer) {
            wake.notify_one();
        }
    }
}

/// A node's TCP endpoint. Cheap to clone; every clone is the same endpoint.
#[derive(Clone, Debug)]
pub struct TcpTransport {
    shared: Arc<Shared>,
}

impl TcpTransport {
    /// Binds the listener and starts accepting. Must run inside an actix
    /// system; connection actors run on the current arbiter.
    pub async fn bind(config: TcpConfig) -> io::Result<TcpTransport> {
        let listener = TcpListener::bind(config.listen).await?;
        let local_addr = listener.local_addr()?;
        let codec = FrameCodec::new(config.frame_size_max);
        let shared = Arc::new(Shared {
            config,
            local_addr,
            router: Router::new(),
            addresses: DashMap::new(),
            links: DashMap::new(),
            redial: DashMap::new(),
            arbiter: actix_rt::Arbiter::current(),
            shutdown: AtomicBool::new(false),
            codec,
        });
        inbound::spawn_listener(listener, shared.clone());
        Ok(TcpTransport { shared })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// The configuration.
    pub fn config(&self) -> &TcpConfig {
        &self.shared.config
    }

    /// Learns the node id behind `address` by a handshake, records the
    /// address, and returns the id: joining through a seed known only by its
    /// address.
    pub async fn discover(&self, address: SocketAddr) -> Result<NodeId, ConnectionError> {
        let config = &self.shared.config;
        let (_stream, hello) = dial(config, address, None).await?;
        self.shared.addresses.insert(hello.node, address);
        Ok(hello.node)
    }

    /// Stops accepting and closes every outbound link. Sends after this fail.
    pub fn shutdown(&self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        self.shared.links.clear();
    }

    fn link(&self, peer: NodeId) -> Result<Arc<link::Link>, SendError> {
        if let Some(link) = self.shared.links.get(&peer) {
            if !link.queue.is_closed() {
                return Ok(link.clone());
            }
        }
        if !self.shared.addresses.contains_key(&peer) {
            return Err(SendError::UnknownPeer(peer));
        }
        let (queue, receiver) = mpsc::channel(self.shared.config.peer_queue_len_max.max(1));
        let direct = Arc::new(link::Direct::default());
        let link = Arc::new(link::Link { queue, direct: direct.clone() });
        let shared = self.shared.clone();
        let redial = self.shared.redial(peer);
        link::OutboundLink::start_in_arbiter(&self.shared.arbiter, move |_| {
            link::OutboundLink::new(shared, peer, receiver, direct, redial)
        });
        self.shared.links.insert(peer, link.clone());
        Ok(link)
    }
}

impl Transport for TcpTransport {
    fn local_id(&self) -> NodeId {
        self.shared.config.node
    }

    fn send(&self, envelope: Envelope) -> Result<(), SendError> {
        if self.shared.shutdown.load(Ordering::Relaxed) {
            return Err(SendError::Shutdown);
        }
        let to = envelope.to;
        if to == self.shared.config.node {
            Counters::add(&self.shared.counters().sent, 1);
            self.shared.router.deliver(envelope);
            return Ok(());
        }
        let link = self.link(to)?;
        match link.send(envelope, &self.shared.codec, self.shared.counters()) {
            Ok(()) => {
                Counters::add(&self.shared.counters().sent, 1);
                Ok(())
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                Counters::add(&self.shared.counters().dropped_queue_full, 1);
                Err(SendError::QueueFull(to))
            }
            Err(mpsc::error::TrySendError::Closed(envelope)) => {
                // The link ended (peer removed, or shutdown raced): one fresh try.
                self.shared.links.remove(&to);
                let link = self.link(to)?;
                link.send(envelope, &self.shared.codec, self.shared.counters()).map_err(|_| {
                    Counters::add(&self.shared.counters().dropped_queue_full, 1);
                    SendError::QueueFull(to)
                })?;
                Counters::add(&self.shared.counters().sent, 1);
                Ok(())
            }
        }
    }

    fn register(&self, channel: Channel, recipient: Recipient<Inbound>) {
        self.shared.router.register(channel, recipient);
    }

    fn unregister(&self, channel: Channel) {
        self.shared.router.unregister(channel);
    }

    fn watch_peers(&self, channel: Channel, recipient: Recipient<PeerDown>) {
        self.shared.router.watch_peers(channel, recipient);
    }

    fn add_peer(&self, node: NodeId, address: SocketAddr) {
        if node == self.shared.config.node {
            return;
        }
        let previous = self.shared.addresses.insert(node, address);
        if previous.is_some_and(|old| old != address) {
            // A new address: the next send dials it.
            self.shared.links.remove(&node);
        }
    }

    fn remove_peer(&self, node: NodeId) {
        self.shared.addresses.remove(&node);
        self.shared.links.remove(&node);
        self.shared.redial.remove(&node);
    }

    fn stats(&self) -> TransportStats {
        self.shared.counters().snapshot()
    }
}

/// Checks a peer's handshake against ours. `expected` is the node we dialed,
/// or `None` for inbound connections (any node but ourselves).
fn check_hello(config: &TcpConfig, hello: &Hello, expected: Option<NodeId>) -> Result<(), ConnectionError> {
    if hello.magic != crate::codec::MAGIC {
        return Err(ConnectionError::BadMagic);
    }
    if hello.version != crate::codec::PROTOCOL_VERSION {
        return Err(ConnectionError::UnsupportedVersion {
            found: hello.version,
            supported: crate::codec::PROTOCOL_VERSION,
        });
    }
    if hello.cluster != config.cluster {
        return Err(ConnectionError::WrongCluster { expected: config.cluster, found: hello.cluster });
    }
    match expected {
        Some(peer) if hello.node != peer => {
            Err(ConnectionError::WrongNode { claimed: hello.node, expected: peer })
        }
        None if hello.node == config.node => {
            Err(ConnectionError::WrongNode { claimed: hello.node, expected: config.node })
        }
        _ => Ok(()),
    }
}

/// Opens a connection to `address`, exchanges handshakes and checks the
/// peer's. Returns the stream, ready for frames, and the peer's handshake.
async fn dial(
    config: &TcpConfig,
    address: SocketAddr,
    expected: Option<NodeId>,
) -> Result<(TcpStream, Hello), ConnectionError> {
    let mut stream = tokio::time::timeout(config.connect_timeout, TcpStream::connect(address))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
    stream.set_nodelay(true)?;
    let codec = FrameCodec::new(config.frame_size_max);
    let mut hello = bytes::BytesMut::new();
    codec.encode_frame(&Frame::Hello(Hello::new(config.cluster, config.node)), &mut hello)?;
    stream.write_all(&hello).await?;
    let mut frames = FramedRead::new(&mut stream, codec);
    let reply = tokio::time::timeout(config.handshake_timeout, frames.next())
        .await
        .map_err(|_| ConnectionError::HandshakeTimeout)?;
    let peer = match reply {
        Some(Ok(Frame::Hello(peer))) => peer,
        Some(Ok(Frame::Message(_))) => return Err(ConnectionError::MissingHandshake),
        Some(Err(e)) => return Err(e.into()),
        None => return Err(ConnectionError::Closed),
    };
    check_hello(config, &peer, expected)?;
    if !frames.read_buffer().is_empty() {
        // The acceptor sends nothing after its handshake on this connection.
        return Err(ConnectionError::MissingHandshake);
    }
    drop(frames);
    Ok((stream, peer))
}
