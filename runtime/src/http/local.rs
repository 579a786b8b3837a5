//! Serving the API on the node's own thread (`http_workers = 0`, the
//! default): an accept loop on the current actix arbiter hands each
//! connection to actix-http's HTTP/1 service built from the same [`api`] as
//! the worker-thread server. A request then reaches the Raft actor, and its
//! answer the client, without a thread hand-off: on a 2-core machine that
//! took one-client writes from 0.45–0.48 to 0.41 ms at the median.
//!
//! Bounds: at most [`HTTP_CONNECTIONS_MAX`] open connections (the accept
//! loop waits for one to close beyond that); the keep-alive, request and
//! disconnect timeouts of the worker threads ([`super::HTTP_REQUEST_TIMEOUT`],
//! [`super::HTTP_DISCONNECT_TIMEOUT`]). [`LocalServer::stop`] stops
//! accepting, lets requests in progress finish for up to
//! [`HTTP_SHUTDOWN_GRACE`], then drops the connections.

use super::api;
use crate::node::Node;
use actix_service::{Service, ServiceFactory};
use actix_web::{dev::AppConfig, App};
use std::cell::Cell;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Notify, Semaphore};

/// Connections served at once; more wait in the listen backlog.
pub const HTTP_CONNECTIONS_MAX: usize = 10_000;

/// How long [`LocalServer::stop`] lets requests in progress finish.
pub const HTTP_SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Pause after a failed `accept` (out of file descriptors, say).
const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(10);

/// An HTTP server running on the current thread.
pub struct LocalServer {
    address: SocketAddr,
    stop: Rc<Notify>,
    in_flight: Rc<Cell<usize>>,
    accept: actix_rt::task::JoinHandle<()>,
}

/// Counts a request while it is served.
struct InFlight(Rc<Cell<usize>>);

impl InFlight {
    fn enter(count: &Rc<Cell<usize>>) -> InFlight {
        count.set(count.get() + 1);
        InFlight(count.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

impl LocalServer {
    /// Binds `address` and serves `node`'s API on the current thread. Must
    /// run inside an actix system.
    pub async fn start(node: Node, address: SocketAddr) -> io::Result<LocalServer> {
        let listener = tokio::net::TcpListener::bind(address).await?;
        let address = listener.local_addr()?;
        let in_flight = Rc::new(Cell::new(0));
        let counted = in_flight.clone();
        let app = App::new().configure(api(node)).wrap_fn(move |request, service| {
            let guard = InFlight::enter(&counted);
            let response = service.call(request);
            async move {
                let response = response.await;
                drop(guard);
                response
            }
        });
        let factory = actix_http::HttpService::build()
            .local_addr(address)
            .client_request_timeout(super::HTTP_REQUEST_TIMEOUT)
            .client_disconnect_timeout(super::HTTP_DISCONNECT_TIMEOUT)
            .finish(actix_service::map_config(app, |_| AppConfig::default()))
            .tcp();
        let service =
            factory.new_service(()).await.map_err(|()| io::Error::other("the HTTP service did not start"))?;
        let service = Rc::new(service);
        let stop = Rc::new(Notify::new());
        let stopped = stop.clone();
        let slots = Arc::new(Semaphore::new(HTTP_CONNECTIONS_MAX));
        let accept = actix_rt::spawn(async move {
            loop {
                let Ok(slot) = slots.clone().acquire_owned().await else { return };
                let accepted = tokio::select! {
                    accepted = listener.accept() => accepted,
                    () = stopped.notified() => return,
                };
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(error) => {
                        tracing::warn!(%error, "http accept failed");
                        tokio::time::sleep(ACCEPT_RETRY_DELAY).await;
                        continue;
                    }
                };
                if let Err(error) = stream.set_nodelay(true) {
                    tracing::debug!(%error, "set_nodelay failed");
                }
                let service = service.clone();
                actix_rt::spawn(async move {
                    // Errors are the client's (a malformed request, a
                    // timeout); actix-http has already answered or closed.
                    let _ = service.call(stream).await;
                    drop(slot);
                });
            }
        });
        Ok(LocalServer { address, stop, in_flight, accept })
    }

    /// The address bound.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Stops accepting, then waits for requests in progress (up to
    /// [`HTTP_SHUTDOWN_GRACE`]). Open connections close when the system stops.
    pub async fn stop(self) {
        self.stop.notify_one();
        let _ = self.accept.await;
        let deadline = Instant::now() + HTTP_SHUTDOWN_GRACE;
        while self.in_flight.get() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}
