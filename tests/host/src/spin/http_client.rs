//! The app's outbound HTTP client: plain-HTTP requests go out on connections pooled across
//! requests and instances, as Spin's outbound-http factor sends them since Spin 3.4 (4.0.2:
//! `HttpClients` in `crates/factor-outbound-http/src/wasi.rs`, a hyper-util legacy `Client`
//! per app). A request reuses an idle keep-alive connection to the same origin when there is one
//! and connects otherwise; the connect timeout applies only to a new connection, the first-byte
//! timeout to the whole wait for the answer's head. Spin's runtime config settings are honoured:
//! `[outbound_http] connection_pooling = false` gives every request its own connection and
//! `max_concurrent_requests = N` lets at most N + 1 connections exist at once.
//!
//! All of that is for plain HTTP. HTTPS requests go through wasmtime-wasi-http's default sender:
//! a connection each, outside the `max_concurrent_requests` cap, the connect and TLS handshake
//! under the connect timeout only, the guest's `host` header kept. Nothing the tests reach speaks
//! TLS. It only sends; the policy is `outbound.rs`'s.

use std::error::Error as _;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http_body_util::BodyExt;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::timeout;
use wasmtime_wasi_http::p2::bindings::http::types::{DnsErrorPayload, ErrorCode};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::p2::hyper_request_error;
use wasmtime_wasi_http::p2::types::{IncomingResponse, OutgoingRequestConfig};

use crate::runtime_config::OutboundHttpConfig;

/// One app's client; clones share its pool.
#[derive(Clone)]
pub struct OutboundClient {
    http1: Client<Connector, HyperOutgoingBody>,
}

tokio::task_local! {
    /// The connect timeout of the request a new connection is made for. As in Spin, a
    /// task-local: the pool decides whether to connect, and a reused connection ignores it.
    static CONNECT_TIMEOUT: Duration;
}

impl OutboundClient {
    pub fn new(config: OutboundHttpConfig) -> OutboundClient {
        let mut builder = Client::builder(TokioExecutor::new());
        if !config.connection_pooling {
            builder.pool_max_idle_per_host(0);
        }
        let connector = Connector {
            // Spin's permit count: the limit + 1.
            permits: config
                .max_concurrent_requests
                .map(|n| Arc::new(Semaphore::new(n.saturating_add(1)))),
        };
        OutboundClient {
            http1: builder.build(connector),
        }
    }

    /// Sends `request` (an absolute URI) and waits for the answer's head. Errors are the
    /// wasi:http error codes Spin gives: `connection-refused`, `connection-timeout`,
    /// `DNS-error`, `connection-read-timeout` (no head within the first-byte timeout), else
    /// `HTTP-protocol-error`.
    pub async fn send(
        &self,
        mut request: http::Request<HyperOutgoingBody>,
        config: OutgoingRequestConfig,
    ) -> Result<IncomingResponse, ErrorCode> {
        if config.use_tls {
            return wasmtime_wasi_http::p2::default_send_request_handler(request, config).await;
        }
        // As Spin: the client writes `host` from the URI.
        request.headers_mut().remove(http::header::HOST);
        let answer = CONNECT_TIMEOUT.scope(config.connect_timeout, self.http1.request(request));
        let resp = timeout(config.first_byte_timeout, answer)
            .await
            .map_err(|_| ErrorCode::ConnectionReadTimeout)?
            .map_err(
                |e| match e.source().and_then(|c| c.downcast_ref::<ErrorCode>()) {
                    Some(code) => code.clone(),
                    None => ErrorCode::HttpProtocolError,
                },
            )?;
        Ok(IncomingResponse {
            resp: resp.map(|body| body.map_err(hyper_request_error).boxed_unsync()),
            // The pool's own task drives the connection.
            worker: None,
            between_bytes_timeout: config.between_bytes_timeout,
        })
    }
}

/// Opens a TCP connection for the pool with the asking request's connect timeout, holding one
/// of the app's `max_concurrent_requests` permits when it has a cap.
#[derive(Clone)]
struct Connector {
    permits: Option<Arc<Semaphore>>,
}

impl tower_service::Service<http::Uri> for Connector {
    type Response = TokioIo<PermittedStream>;
    type Error = ErrorCode;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, ErrorCode>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), ErrorCode>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        // hyper-util calls this on the first poll of the request's connect future, inside
        // `send`'s `CONNECT_TIMEOUT.scope`, before it may move the future to a background task;
        // so the timeout is always there (Spin's `.get()` would panic otherwise).
        let connect_timeout = CONNECT_TIMEOUT.try_with(|t| *t);
        let permits = self.permits.clone();
        Box::pin(async move {
            let connect_timeout = connect_timeout.map_err(|_| ErrorCode::InternalError(None))?;
            connect(&uri, connect_timeout, permits)
                .await
                .map(TokioIo::new)
        })
    }
}

async fn connect(
    uri: &http::Uri,
    connect_timeout: Duration,
    permits: Option<Arc<Semaphore>>,
) -> Result<PermittedStream, ErrorCode> {
    let authority = uri.authority().ok_or(ErrorCode::HttpRequestUriInvalid)?;
    let target = match authority.port() {
        Some(_) => authority.as_str().to_string(),
        None => format!("{}:80", authority.as_str()),
    };
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host(&target)
        .await
        .map_err(|_| dns_error("address not available"))?
        .collect();
    let permit = match permits {
        Some(s) => s.acquire_owned().await.ok(),
        None => None,
    };
    let stream = timeout(connect_timeout, TcpStream::connect(&*addrs))
        .await
        .map_err(|_| ErrorCode::ConnectionTimeout)?
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AddrNotAvailable => dns_error("address not available"),
            _ => ErrorCode::ConnectionRefused,
        })?;
    Ok(PermittedStream {
        inner: stream,
        _permit: permit,
    })
}

fn dns_error(rcode: &str) -> ErrorCode {
    ErrorCode::DnsError(DnsErrorPayload {
        rcode: Some(rcode.to_string()),
        info_code: Some(0),
    })
}

/// A connection that holds its share of `max_concurrent_requests` until it closes.
struct PermittedStream {
    inner: TcpStream,
    _permit: Option<OwnedSemaphorePermit>,
}

impl Connection for PermittedStream {
    fn connected(&self) -> Connected {
        self.inner.connected()
    }
}

impl AsyncRead for PermittedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for PermittedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(first_byte_timeout: Duration) -> OutgoingRequestConfig {
        OutgoingRequestConfig {
            use_tls: false,
            connect_timeout: Duration::from_secs(5),
            first_byte_timeout,
            between_bytes_timeout: Duration::from_secs(5),
        }
    }

    async fn send_get(url: String, first_byte_timeout: Duration) -> Result<(), ErrorCode> {
        let body = http_body_util::Empty::new()
            .map_err(|e: std::convert::Infallible| match e {})
            .boxed_unsync();
        let request = http::Request::get(url).body(body).unwrap();
        let client = OutboundClient::new(OutboundHttpConfig::default());
        client
            .send(request, config(first_byte_timeout))
            .await
            .map(|_| ())
    }

    #[tokio::test]
    async fn a_closed_port_is_connection_refused() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let sent = send_get(format!("http://{addr}/"), Duration::from_secs(5)).await;
        assert!(
            matches!(sent, Err(ErrorCode::ConnectionRefused)),
            "{sent:?}"
        );
    }

    #[tokio::test]
    async fn no_answer_head_within_the_first_byte_timeout_is_a_read_timeout() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // Accepts, reads nothing, answers nothing, and keeps the connection open.
        let silent = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(30)).await;
            drop(stream);
        });
        let sent = send_get(format!("http://{addr}/"), Duration::from_millis(200)).await;
        assert!(
            matches!(sent, Err(ErrorCode::ConnectionReadTimeout)),
            "{sent:?}"
        );
        silent.abort();
    }
}
