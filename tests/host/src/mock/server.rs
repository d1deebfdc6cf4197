//! The scaffold both mock servers stand on: a hyper HTTP/1.1 server on a free port of 127.0.0.1
//! with its state behind one `Arc<Mutex>`, so every clone of a handle sees the same data; the
//! address and URL accessors; a stop switch; and the small response and header helpers both
//! mocks need. What a mock answers is its own handler's business (`token.rs`, `upstream.rs`).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// The body type mock handlers answer with.
pub(crate) type MockBody = BoxBody<Bytes, std::io::Error>;

/// A running mock server with state `S`. Clones share the state and the server; it runs until
/// [`MockServer::shutdown`] or the end of the tokio runtime.
pub struct MockServer<S> {
    addr: SocketAddr,
    state: Arc<Mutex<S>>,
    stop: Arc<watch::Sender<bool>>,
    /// Connections accepted so far.
    accepted: Arc<AtomicUsize>,
}

impl<S> Clone for MockServer<S> {
    fn clone(&self) -> Self {
        MockServer {
            addr: self.addr,
            state: self.state.clone(),
            stop: self.stop.clone(),
            accepted: self.accepted.clone(),
        }
    }
}

/// Locks a mock's state. A handler that panicked mid-update leaves plain recorded data behind,
/// still fit to read, so a poisoned lock is used anyway.
pub(crate) fn lock<S>(state: &Mutex<S>) -> MutexGuard<'_, S> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

impl<S: Send + 'static> MockServer<S> {
    /// Binds 127.0.0.1:0 and answers every request with `handler(state, request)`.
    /// Panics when no port can be bound (test support).
    pub(crate) async fn spawn<F, Fut>(what: &str, state: S, handler: F) -> MockServer<S>
    where
        F: Fn(Arc<Mutex<S>>, Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Response<MockBody>> + Send + 'static,
    {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap_or_else(|e| panic!("cannot bind the mock {what}: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("mock {what} has no address: {e}"));
        let state = Arc::new(Mutex::new(state));
        let (stop, stopped) = watch::channel(false);
        let stop = Arc::new(stop);
        let accepted = Arc::<AtomicUsize>::default();
        tokio::spawn(accept_loop(
            listener,
            state.clone(),
            handler,
            stop.clone(),
            accepted.clone(),
            stopped,
        ));
        MockServer {
            addr,
            state,
            stop,
            accepted,
        }
    }
}

impl<S> MockServer<S> {
    pub(crate) fn lock(&self) -> MutexGuard<'_, S> {
        lock(&self.state)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// How many TCP connections the server has accepted: fewer than its requests when clients
    /// keep connections alive and reuse them.
    pub fn connections(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Stops accepting connections and closes the open ones, as a server that went away.
    pub fn shutdown(&self) {
        self.stop.send_replace(true);
    }
}

/// Serves connections until the stop switch is set, counting them in `accepted`. `_keep` holds
/// the switch's sender so the server outlives every handle, as it always has: dropping a handle
/// never stops it.
async fn accept_loop<S, F, Fut>(
    listener: TcpListener,
    state: Arc<Mutex<S>>,
    handler: F,
    _keep: Arc<watch::Sender<bool>>,
    accepted: Arc<AtomicUsize>,
    mut stopped: watch::Receiver<bool>,
) where
    S: Send + 'static,
    F: Fn(Arc<Mutex<S>>, Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<MockBody>> + Send + 'static,
{
    loop {
        let next = tokio::select! {
            biased;
            _ = stopped.wait_for(|stop| *stop) => return,
            a = listener.accept() => a,
        };
        let Ok((stream, _)) = next else {
            continue;
        };
        accepted.fetch_add(1, Ordering::SeqCst);
        let (state, handler) = (state.clone(), handler.clone());
        let mut stopped = stopped.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let (state, handler) = (state.clone(), handler.clone());
                async move { Ok::<_, Infallible>(handler(state, req).await) }
            });
            let connection = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                biased;
                _ = stopped.wait_for(|stop| *stop) => {}
                _ = connection => {}
            }
        });
    }
}

/// A response with a complete body and `content-type`.
pub(crate) fn full_response(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<MockBody> {
    let mut r = Response::new(
        Full::new(body.into())
            .map_err(|e: Infallible| match e {})
            .boxed(),
    );
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(content_type),
    );
    r
}

/// Every header in order, repeated ones included, values as (lossy) text.
pub(crate) fn header_pairs(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}
