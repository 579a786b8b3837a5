//! Serving the API on the node's own thread (`http_workers = 0`, the
//! default): an accept loop on the current actix arbiter hands each
//! connection to actix-http's HTTP/1 service built from the same [`api`] as
//! the worker-thread server. A request then reaches the Raft actor, and its
//! answer the client, without a thread hand-off: on a 2-core machine that
//! took one-client writes from 0.45–0.48 to 0.41 ms at the median.
//!
//! A plain put (`PUT /kv/{key}` with no query, a key of unreserved
//! characters, `Content-Type: application/json`, a bounded length) is
//! answered by the service in front of the App, without the App's request
//! object, route match and extractors: the leader's time from a put's
//! arrival to its appends leaving went from 19–21 to 13–14 µs
//! (`bench/breakdown.sh`, three alternating rounds). Its answers, and its
//! errors (a body that is not a put's goes to the App), are the App's.
//!
//! Bounds: at most [`HTTP_CONNECTIONS_MAX`] open connections (the accept
//! loop waits for one to close beyond that); the keep-alive, request and
//! disconnect timeouts of the worker threads ([`super::HTTP_REQUEST_TIMEOUT`],
//! [`super::HTTP_DISCONNECT_TIMEOUT`]). [`LocalServer::stop`] stops
//! accepting, lets requests in progress finish for up to
//! [`HTTP_SHUTDOWN_GRACE`], then drops the connections.

use super::api;
use super::errors::json_body_error;
use super::kv;
use crate::node::Node;
use actix_http::body::BoxBody;
use actix_http::header::{CONTENT_LENGTH, CONTENT_TYPE, TRANSFER_ENCODING};
use actix_http::{Method, Payload, Request, Response};
use actix_service::{Service, ServiceFactory};
use actix_web::dev::{AppConfig, ServiceResponse};
use actix_web::App;
use bytes::BytesMut;
use futures_util::future::LocalBoxFuture;
use futures_util::StreamExt;
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

/// The service in front of the App: counts each request while it is
/// served, answers a plain put itself (see [`plain_put`]) and hands
/// every other request to the App. A put is what a loaded node serves most,
/// and the App's per-request machinery (its request object, the route
/// match, four extractors) cost about as much leader CPU as the rest of the
/// put's HTTP handling.
struct Front<A> {
    app: Rc<A>,
    node: Node,
    in_flight: Rc<Cell<usize>>,
    body_bytes_max: usize,
}

impl<A> Clone for Front<A> {
    fn clone(&self) -> Self {
        Front {
            app: self.app.clone(),
            node: self.node.clone(),
            in_flight: self.in_flight.clone(),
            body_bytes_max: self.body_bytes_max,
        }
    }
}

/// The key and body length of a plain put: `PUT /kv/{key}` with no query,
/// a key of unreserved characters only (nothing to percent-decode),
/// `Content-Type: application/json` and a `Content-Length` within
/// `body_bytes_max`. Any other request, put or not, goes to the App, which
/// answers it, or its errors, as before.
fn plain_put(request: &Request, body_bytes_max: usize) -> Option<(&str, usize)> {
    if request.method() != Method::PUT || request.uri().query().is_some() {
        return None;
    }
    let key = request.path().strip_prefix("/kv/")?;
    let unreserved = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~');
    if kv::check_key(key).is_err() || !key.as_bytes().iter().all(unreserved) {
        return None;
    }
    let headers = &request.head().headers;
    if headers.contains_key(TRANSFER_ENCODING)
        || !headers.get(CONTENT_TYPE)?.as_bytes().eq_ignore_ascii_case(b"application/json")
    {
        return None;
    }
    let length: usize = headers.get(CONTENT_LENGTH)?.to_str().ok()?.parse().ok()?;
    (length <= body_bytes_max).then_some((key, length))
}

impl<A> Service<Request> for Front<A>
where
    A: Service<Request, Response = ServiceResponse, Error = actix_web::Error> + 'static,
{
    type Response = Response<BoxBody>;
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Response<BoxBody>, actix_web::Error>>;

    actix_service::always_ready!();

    fn call(&self, mut request: Request) -> Self::Future {
        let guard = InFlight::enter(&self.in_flight);
        let Some((key, length)) = plain_put(&request, self.body_bytes_max).map(|(k, l)| (k.to_owned(), l))
        else {
            let answer = self.app.call(request);
            return Box::pin(async move {
                let answer = answer.await;
                drop(guard);
                answer.map(Response::from)
            });
        };
        let (app, node, body_bytes_max) = (self.app.clone(), self.node.clone(), self.body_bytes_max);
        Box::pin(async move {
            let mut payload = request.take_payload();
            // The payload ends at `Content-Length`, within the bound.
            let mut body = BytesMut::with_capacity(length);
            while let Some(chunk) = payload.next().await {
                match chunk {
                    Ok(chunk) => body.extend_from_slice(&chunk),
                    // As the App's JSON extractor answers a broken body.
                    Err(error) => {
                        let error = actix_web::error::JsonPayloadError::Payload(error);
                        let error = json_body_error(&error, body_bytes_max);
                        return Ok(actix_web::ResponseError::error_response(&error).into());
                    }
                }
            }
            let answer = match kv::put_body_value(&body) {
                Some(value) => Ok(kv::put_plain(&node, key, value).await.into()),
                // Not a put's body: the App answers with its error.
                None => {
                    let (request, _) = request.replace_payload(Payload::from(body.freeze()));
                    app.call(request).await.map(Response::from)
                }
            };
            drop(guard);
            answer
        })
    }
}

impl LocalServer {
    /// Binds `address` and serves `node`'s API on the current thread. Must
    /// run inside an actix system.
    pub async fn start(node: Node, address: SocketAddr) -> io::Result<LocalServer> {
        let listener = tokio::net::TcpListener::bind(address).await?;
        let address = listener.local_addr()?;
        let in_flight = Rc::new(Cell::new(0));
        let body_bytes_max = node.config().http_body_bytes_max;
        let app = App::new().configure(api(node.clone()));
        let app = actix_service::map_config(app, |_| AppConfig::default())
            .new_service(())
            .await
            .map_err(|()| io::Error::other("the HTTP app did not start"))?;
        let front = Front { app: Rc::new(app), node, in_flight: in_flight.clone(), body_bytes_max };
        let factory = actix_http::HttpService::build()
            .local_addr(address)
            .client_request_timeout(super::HTTP_REQUEST_TIMEOUT)
            .client_disconnect_timeout(super::HTTP_DISCONNECT_TIMEOUT)
            .finish(actix_service::fn_factory(move || std::future::ready(Ok::<_, ()>(front.clone()))))
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
