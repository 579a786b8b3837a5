//! Reading connections: the accept loop, and one actor per connection that
//! reads it, accepted or dialed.
//!
//! On an accepted connection the first frame must be the peer's handshake;
//! once it checks out, the actor answers with ours and offers the
//! connection to our link to that peer (see [`super::Offer`]). A dialed
//! connection's actor starts after the handshakes, its peer known. Either
//! way the actor then delivers each envelope to the router, after checking
//! that it names the authenticated peer as its sender. Any bad input closes
//! this connection only, with a logged, typed error.

use super::{check_hello, link, Shared};
use crate::codec::{Frame, FrameCodec, Hello};
use crate::error::{CodecError, ConnectionError};
use crate::ids::NodeId;
use crate::transport::Counters;
use actix::{Actor, ActorContext, ActorFutureExt, AsyncContext, Context, Running, StreamHandler, WrapFuture};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpListener;
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;

/// Accepts connections until the transport shuts down.
pub(super) fn spawn_listener(listener: TcpListener, shared: Arc<Shared>) {
    let open = Arc::new(AtomicUsize::new(0));
    actix_rt::spawn(async move {
        loop {
            let (stream, address) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            };
            if shared.shutdown.load(Ordering::Relaxed) {
                return;
            }
            if open.load(Ordering::Relaxed) >= shared.config.inbound_connections_max {
                Counters::add(&shared.counters().connections_rejected, 1);
                tracing::warn!(%address, "inbound connection refused: inbound_connections_max reached");
                continue;
            }
            if let Err(error) = stream.set_nodelay(true) {
                tracing::debug!(%address, %error, "set_nodelay failed");
            }
            open.fetch_add(1, Ordering::Relaxed);
            let (reader, writer) = stream.into_split();
            let frames = FramedRead::new(reader, FrameCodec::new(shared.config.frame_size_max));
            let accepted = Accepted { writer: Some(Arc::new(writer)), open: open.clone(), offer: None };
            Connection::start(
                shared.clone(),
                address,
                None,
                frames,
                Side::Accepted(accepted),
                CancellationToken::new(),
            );
        }
    });
}

/// Which end of the connection we are.
enum Side {
    /// The peer dialed us.
    Accepted(Accepted),
    /// We dialed the peer (handshakes done).
    Dialed,
}

/// What an accepted connection keeps besides its reader.
struct Accepted {
    /// Our half, until the handshake is answered and it is offered.
    writer: Option<Arc<OwnedWriteHalf>>,
    /// Accepted connections open (for `inbound_connections_max`).
    open: Arc<AtomicUsize>,
    /// The id of our offer, once made.
    offer: Option<u64>,
}

/// The actor reading one connection.
pub(super) struct Connection {
    shared: Arc<Shared>,
    address: SocketAddr,
    /// The peer proven by the handshake; `None` until then.
    peer: Option<NodeId>,
    side: Side,
    /// Cancelled when this actor stops, and by the link writing on this
    /// connection when it is done with it (which stops this actor).
    closed: CancellationToken,
}

impl Connection {
    /// Starts reading a connection we dialed to `peer` (handshakes done);
    /// `closed` is shared with the link that writes on it.
    pub(super) fn start_dialed(
        shared: Arc<Shared>,
        address: SocketAddr,
        peer: NodeId,
        frames: FramedRead<OwnedReadHalf, FrameCodec>,
        closed: CancellationToken,
    ) {
        Connection::start(shared, address, Some(peer), frames, Side::Dialed, closed);
    }

    /// `peer` is known for a dialed connection, `None` for an accepted one
    /// until its handshake arrives.
    fn start(
        shared: Arc<Shared>,
        address: SocketAddr,
        peer: Option<NodeId>,
        frames: FramedRead<OwnedReadHalf, FrameCodec>,
        side: Side,
        closed: CancellationToken,
    ) {
        Connection::create(move |ctx| {
            ctx.add_stream(frames);
            Connection { shared, address, peer, side, closed }
        });
    }

    fn reject(&mut self, error: ConnectionError, ctx: &mut Context<Self>) {
        Counters::add(&self.shared.counters().connections_rejected, 1);
        tracing::warn!(address = %self.address, peer = ?self.peer, %error, "closing connection");
        ctx.stop();
    }

    /// Answers a checked handshake with ours, then offers the connection.
    fn answer_hello(&mut self, peer: NodeId, ctx: &mut Context<Self>) -> Result<(), ConnectionError> {
        let Side::Accepted(accepted) = &mut self.side else {
            return Err(ConnectionError::MissingHandshake);
        };
        let Some(writer) = accepted.writer.take() else {
            return Err(ConnectionError::MissingHandshake);
        };
        let config = &self.shared.config;
        let mut hello = bytes::BytesMut::new();
        FrameCodec::new(config.frame_size_max)
            .encode_frame(&Frame::Hello(Hello::new(config.cluster, config.node)), &mut hello)?;
        let socket = writer.clone();
        ctx.spawn(async move { link::write_all(&socket, &hello).await }.into_actor(self).map(
            move |written, actor, ctx| {
                if let Err(error) = written {
                    tracing::debug!(address = %actor.address, %peer, %error, "handshake answer not written");
                    ctx.stop();
                    return;
                }
                let offer = actor.shared.offer(peer, writer, actor.closed.clone());
                if let Side::Accepted(accepted) = &mut actor.side {
                    accepted.offer = offer;
                }
                actor.shared.peer_is_back(peer);
            },
        ));
        Ok(())
    }

    fn on_frame(&mut self, frame: Frame, ctx: &mut Context<Self>) -> Result<(), ConnectionError> {
        match (self.peer, frame) {
            (None, Frame::Hello(hello)) => {
                check_hello(&self.shared.config, &hello, None)?;
                self.peer = Some(hello.node);
                Counters::add(&self.shared.counters().connections_accepted, 1);
                tracing::debug!(address = %self.address, peer = %hello.node, "peer connected");
                self.answer_hello(hello.node, ctx)
            }
            (None, Frame::Message(_)) | (Some(_), Frame::Hello(_)) => Err(ConnectionError::MissingHandshake),
            (Some(peer), Frame::Message(envelope)) => {
                if envelope.from != peer {
                    return Err(ConnectionError::SpoofedSender {
                        authenticated: peer,
                        claimed: envelope.from,
                    });
                }
                Counters::add(&self.shared.counters().bytes_received, envelope.size_bytes() as u64);
                if envelope.to == self.shared.config.node {
                    self.shared.router.deliver(envelope);
                } else {
                    Counters::add(&self.shared.counters().dropped_unroutable, 1);
                }
                Ok(())
            }
        }
    }
}

impl Actor for Connection {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if self.peer.is_none() {
            ctx.run_later(self.shared.config.handshake_timeout, |actor, ctx| {
                if actor.peer.is_none() {
                    actor.reject(ConnectionError::HandshakeTimeout, ctx);
                }
            });
        }
        // The link writing on this connection is done with it.
        ctx.spawn(self.closed.clone().cancelled_owned().into_actor(self).map(|(), _, ctx| ctx.stop()));
    }

    fn stopping(&mut self, _ctx: &mut Context<Self>) -> Running {
        Running::Stop
    }

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        self.closed.cancel();
        if let Side::Accepted(accepted) = &self.side {
            accepted.open.fetch_sub(1, Ordering::Relaxed);
            if let (Some(peer), Some(offer)) = (self.peer, accepted.offer) {
                self.shared.withdraw(peer, offer);
            }
        }
    }
}

impl StreamHandler<Result<Frame, CodecError>> for Connection {
    fn handle(&mut self, item: Result<Frame, CodecError>, ctx: &mut Context<Self>) {
        if self.shared.shutdown.load(Ordering::Relaxed) {
            ctx.stop();
            return;
        }
        let outcome = item.map_err(ConnectionError::from).and_then(|frame| self.on_frame(frame, ctx));
        if let Err(error) = outcome {
            self.reject(error, ctx);
        }
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}
