//! Mock servers for component tests: an OAuth2 client-credentials token endpoint
//! ([`TokenServer`]) and a configurable upstream API ([`Upstream`]), both plain hyper servers on
//! 127.0.0.1 with their state behind `Arc<Mutex>` so every handle clone sees the same data.
//! Also process memory readings for streaming tests. Nothing here talks to the component
//! directly: the component reaches the mocks through the host's outbound HTTP.

mod token;
mod upstream;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::combinators::BoxBody;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

pub use token::{ExpiresIn, RecordedTokenRequest, TokenFailure, TokenServer, TokenStatus};
pub use upstream::{large_body_byte, RecordedRequest, Upstream, LARGE_PATTERN};

/// The body type mock handlers answer with.
pub(crate) type MockBody = BoxBody<Bytes, std::io::Error>;

/// Binds 127.0.0.1:0 and serves `handler` on every connection until the runtime ends.
pub(crate) async fn spawn_server<F, Fut>(handler: F) -> std::io::Result<SocketAddr>
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<MockBody>> + Send + 'static,
{
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let handler = handler.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let handler = handler.clone();
                    async move { Ok::<_, Infallible>(handler(req).await) }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(addr)
}

fn status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse::<u64>().ok())
        })
        .unwrap_or(0)
}

/// Peak resident set size of this process (`VmHWM`), in bytes; 0 where /proc is missing.
pub fn peak_rss_bytes() -> u64 {
    status_kb("VmHWM:") * 1024
}

/// Current resident set size of this process (`VmRSS`), in bytes; 0 where /proc is missing.
pub fn current_rss_bytes() -> u64 {
    status_kb("VmRSS:") * 1024
}

#[cfg(test)]
mod tests {
    #[test]
    fn rss_is_readable() {
        assert!(super::current_rss_bytes() > 0);
        assert!(super::peak_rss_bytes() >= super::current_rss_bytes() / 2);
    }
}
