//! Inbound connections: the accept loop and one actor per accepted socket.
//!
//! The first frame must be the peer's handshake; once it checks out, the
//! actor answers with ours and then delivers each envelope to the router,
//! after checking that it names the authenticated peer as its sender. Any
//! bad input closes this connection only, with a logged, typed error.

use super::{check_hello, Shared};
use crate::codec::{Frame, FrameCodec, Hello};
use crate::error::{CodecError, ConnectionError};
use crate::ids::NodeId;
use crate::transport::Counters;
use actix::io::{FramedWrite, WriteHandler};
use actix::{Actor, ActorContext, AsyncContext, Context, Running, StreamHandler};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpListener;
use tokio_util::codec::FramedRead;

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
            let shared = shared.clone();
            let open = open.clone();
            InboundConnection::create(move |ctx| {
                let (reader, writer) = stream.into_split();
                let frame_size_max = shared.config.frame_size_max;
                ctx.add_stream(FramedRead::new(reader, FrameCodec::new(frame_size_max)));
                let writer = FramedWrite::new(writer, FrameCodec::new(frame_size_max), ctx);
                InboundConnection { shared, address, peer: None, writer, open }
            });
        }
    });
}

/// One accepted connection.
struct InboundConnection {
    shared: Arc<Shared>,
    address: SocketAddr,
    /// The peer proven by the handshake; `None` until then.
    peer: Option<NodeId>,
    writer: FramedWrite<Frame, OwnedWriteHalf, FrameCodec>,
    open: Arc<AtomicUsize>,
}

impl InboundConnection {
    fn reject(&mut self, error: ConnectionError, ctx: &mut Context<Self>) {
        Counters::add(&self.shared.counters().connections_rejected, 1);
        tracing::warn!(address = %self.address, peer = ?self.peer, %error, "closing inbound connection");
        ctx.stop();
    }

    fn on_frame(&mut self, frame: Frame, ctx: &mut Context<Self>) -> Result<(), ConnectionError> {
        match (self.peer, frame) {
            (None, Frame::Hello(hello)) => {
                check_hello(&self.shared.config, &hello, None)?;
                self.peer = Some(hello.node);
                Counters::add(&self.shared.counters().connections_accepted, 1);
                let config = &self.shared.config;
                self.writer.write(Frame::Hello(Hello::new(config.cluster, config.node)));
                tracing::debug!(address = %self.address, peer = %hello.node, "peer connected");
                self.shared.peer_is_back(hello.node);
                let _ = ctx;
                Ok(())
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

impl Actor for InboundConnection {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_later(self.shared.config.handshake_timeout, |actor, ctx| {
            if actor.peer.is_none() {
                actor.reject(ConnectionError::HandshakeTimeout, ctx);
            }
        });
    }

    fn stopping(&mut self, _ctx: &mut Context<Self>) -> Running {
        Running::Stop
    }

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        self.open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl StreamHandler<Result<Frame, CodecError>> for InboundConnection {
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
}

impl WriteHandler<CodecError> for InboundConnection {
    fn error(&mut self, error: CodecError, _ctx: &mut Context<Self>) -> Running {
        tracing::debug!(address = %self.address, %error, "write to inbound peer failed");
        Running::Stop
    }
}
