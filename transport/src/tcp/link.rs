//! The outbound link to one peer: an actor that owns the peer's bounded
//! queue, connects lazily (on the first envelope), writes in batches, and
//! reconnects with exponential backoff and jitter when the connection breaks.
//! The backoff is cut short when the peer connects to us (it is back).
//!
//! Finding a peer down: when a connection breaks, the link dials again at
//! once, even with nothing to send (up to `DOWN_PROBES_MAX` dials,
//! `DOWN_PROBE_INTERVAL` apart: a dying process can still reset a connection
//! its closing listener took in). If the peer's address refuses one, nothing
//! listens there any more (the process exited or was killed) and the router
//! tells its watchers (`PeerDown`). A peer that is only silent gives no such
//! sign.
//!
//! Batching: the writer takes everything queued (up to
//! `write_batch_len_max` envelopes or `write_batch_bytes_max` bytes), encodes
//! it into one buffer and writes it with one call; envelopes that arrive
//! during the write form the next batch. So a busy link writes large batches
//! and an idle one writes each envelope at once.

use super::{dial, Shared};
use crate::codec::{Frame, FrameCodec};
use crate::envelope::Envelope;
use crate::error::ConnectionError;
use crate::ids::NodeId;
use crate::transport::Counters;
use actix::{Actor, ActorContext, ActorFutureExt, AsyncContext, Context, WrapFuture};
use bytes::BytesMut;
use rand::Rng;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, Notify};

/// The actor of one outbound link.
pub(super) struct OutboundLink {
    task: Option<LinkTask>,
}

impl OutboundLink {
    pub(super) fn new(
        shared: Arc<Shared>,
        peer: NodeId,
        queue: mpsc::Receiver<Envelope>,
        redial: Arc<Notify>,
    ) -> Self {
        let codec = FrameCodec::new(shared.config.frame_size_max);
        let (batch, buffer) = (Vec::new(), BytesMut::new());
        OutboundLink { task: Some(LinkTask { shared, peer, queue, redial, codec, batch, buffer }) }
    }
}

impl Actor for OutboundLink {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if let Some(task) = self.task.take() {
            ctx.spawn(task.run().into_actor(self).map(|(), _, ctx| ctx.stop()));
        }
    }
}

struct LinkTask {
    shared: Arc<Shared>,
    peer: NodeId,
    queue: mpsc::Receiver<Envelope>,
    /// Notified when the peer connects to us: dial now, backoff reset.
    redial: Arc<Notify>,
    codec: FrameCodec,
    batch: Vec<Envelope>,
    buffer: BytesMut,
}

/// How a connected session ended.
enum Ended {
    /// The queue's sender is gone (peer removed or transport shut down).
    QueueClosed,
    /// The socket broke; reconnect.
    Broken,
}

impl LinkTask {
    async fn run(mut self) {
        let config = self.shared.config.clone();
        let mut backoff = config.backoff_initial;
        // Dials left to learn whether the peer is down, after a break.
        let mut probes_left = 0;
        loop {
            // Lazy: connect only when there is something to send (or to check a break).
            if self.batch.is_empty() && probes_left == 0 {
                let received = self.queue.recv_many(&mut self.batch, config.write_batch_len_max).await;
                if received == 0 {
                    return;
                }
            }
            if self.shared.shutdown.load(Ordering::Relaxed) {
                return;
            }
            let Some(address) = self.shared.addresses.get(&self.peer).map(|a| *a) else {
                return;
            };
            match dial(&config, address, Some(self.peer)).await {
                Ok((stream, _)) => {
                    backoff = config.backoff_initial;
                    Counters::add(&self.shared.counters().connections_established, 1);
                    tracing::debug!(peer = %self.peer, %address, "connected");
                    let (reader, writer) = stream.into_split();
                    match self.connected(reader, writer).await {
                        Ended::QueueClosed => return,
                        Ended::Broken => {
                            tracing::debug!(peer = %self.peer, "connection broke; reconnecting");
                            probes_left = DOWN_PROBES_MAX;
                        }
                    }
                }
                Err(error) => {
                    tracing::debug!(peer = %self.peer, %address, %error, "connect failed");
                    Counters::add(&self.shared.counters().connections_failed, 1);
                    if probes_left > 0 {
                        probes_left -= 1;
                        if is_refused(&error) {
                            probes_left = 0;
                            tracing::info!(peer = %self.peer, %address, "peer down: connection broke, then refused");
                            self.shared.router.peer_down(self.peer);
                        } else if probes_left > 0 {
                            // A dying process may still reset a connection
                            // its closing listener took in: ask again soon.
                            tokio::time::sleep(DOWN_PROBE_INTERVAL).await;
                            continue;
                        }
                    }
                    let delay = jittered(backoff);
                    backoff = (backoff * 2).min(config.backoff_max);
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = self.redial.notified() => backoff = config.backoff_initial,
                    }
                }
            }
        }
    }

    /// Writes batches until the queue closes or the socket breaks. Envelopes
    /// of a batch whose write fails are lost and counted.
    async fn connected(&mut self, mut reader: OwnedReadHalf, mut writer: OwnedWriteHalf) -> Ended {
        let batch_len_max = self.shared.config.write_batch_len_max;
        let batch_bytes_max = self.shared.config.write_batch_bytes_max;
        let mut probe = [0u8; 1];
        loop {
            if self.batch.is_empty() {
                tokio::select! {
                    received = self.queue.recv_many(&mut self.batch, batch_len_max) => {
                        if received == 0 {
                            let _ = writer.shutdown().await;
                            return Ended::QueueClosed;
                        }
                    }
                    // The acceptor never writes after its handshake: any read
                    // result means the connection is gone or misbehaving.
                    _ = reader.read(&mut probe) => return Ended::Broken,
                }
            }
            self.buffer.clear();
            let mut encoded = 0;
            for envelope in &self.batch {
                encoded += 1;
                let frame = Frame::Message(envelope.clone());
                if let Err(error) = self.codec.encode_frame(&frame, &mut self.buffer) {
                    Counters::add(&self.shared.counters().dropped_write_failed, 1);
                    tracing::warn!(peer = %self.peer, %error, "envelope not sent");
                }
                if self.buffer.len() >= batch_bytes_max {
                    break;
                }
            }
            self.batch.drain(..encoded);
            if self.buffer.is_empty() {
                continue;
            }
            if let Err(error) = writer.write_all(&self.buffer).await {
                Counters::add(&self.shared.counters().dropped_write_failed, encoded as u64);
                tracing::debug!(peer = %self.peer, %error, "write failed");
                return Ended::Broken;
            }
            Counters::add(&self.shared.counters().bytes_sent, self.buffer.len() as u64);
            if self.buffer.capacity() > 4 * batch_bytes_max {
                self.buffer = BytesMut::new();
            }
        }
    }
}

/// Dials, after a connection breaks, to learn whether the peer is down.
pub(super) const DOWN_PROBES_MAX: u32 = 3;

/// Pause between those dials when one fails otherwise than by a refusal.
pub(super) const DOWN_PROBE_INTERVAL: Duration = Duration::from_millis(5);

/// Whether a dial failed because nothing listens at the address.
fn is_refused(error: &ConnectionError) -> bool {
    matches!(error, ConnectionError::Io(e) if e.kind() == std::io::ErrorKind::ConnectionRefused)
}

/// A delay uniform in `[base / 2, base]`: spreads reconnection storms.
fn jittered(base: Duration) -> Duration {
    let half = base / 2;
    let extra = rand::rng().random_range(0..=half.as_micros() as u64);
    half + Duration::from_micros(extra)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_half_to_full() {
        for _ in 0..1_000 {
            let d = jittered(Duration::from_millis(100));
            assert!(d >= Duration::from_millis(50) && d <= Duration::from_millis(100), "{d:?}");
        }
    }
}
