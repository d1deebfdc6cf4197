//! The bench's HTTP client: `C` workers, each on its own HTTP/1.1 keep-alive connection, share a
//! budget of `N` requests and time each one from sending the request to the last body byte; and a
//! streaming download that counts a body's bytes without keeping them.
//!
//! It measures and never judges: a failed request is counted, not asserted on. Every wait is
//! bounded (a per-request timeout and a wall-clock deadline for a whole run), so the bench stops by
//! itself even if the proxy hangs.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::Request;
use hyper_util::rt::TokioIo;

/// Longest wait for one small request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// In a [`Target`]'s path, replaced by a number no other request of this process used, so each
/// request asks for a URL never seen before (the response cache's miss path).
pub const UNIQUE: &str = "{unique}";

/// The counter behind [`UNIQUE`], shared by every run so warm-up and measured requests differ.
static UNIQUE_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// One kind of request: where it goes and what it carries.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    /// Origin-form request target: path and query.
    pub path: String,
    pub headers: Vec<(String, String)>,
}

/// What one run of the load generator saw.
#[derive(Debug, Default)]
pub struct LoadResult {
    /// Latency of every request answered 200, in no particular order.
    pub latencies: Vec<Duration>,
    /// Non-200 answers, I/O errors and timeouts.
    pub errors: usize,
    /// The first error, to say what went wrong.
    pub first_error: Option<String>,
    /// TCP connections opened; equals the concurrency when keep-alive held throughout.
    pub connections: usize,
    /// Wall time from the first worker's start to the last worker's end.
    pub elapsed: Duration,
    /// The whole process's CPU time (host, component, mocks and this client) over that time.
    pub cpu: Duration,
}

impl LoadResult {
    fn merge(&mut self, other: LoadResult) {
        self.latencies.extend(other.latencies);
        self.errors += other.errors;
        self.connections += other.connections;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }

    /// Pools another run of the same scenario (a later round): its samples join these, its
    /// time adds to the elapsed time, so req/s stays the average over all rounds.
    pub fn absorb(&mut self, other: LoadResult) {
        self.latencies.extend(other.latencies);
        self.errors += other.errors;
        self.connections = self.connections.max(other.connections);
        self.elapsed += other.elapsed;
        self.cpu += other.cpu;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }

    /// Requests answered 200 per second of the runs' wall time.
    pub fn rps(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Requests sent: answered 200 or counted as errors.
    pub fn sent(&self) -> usize {
        self.latencies.len() + self.errors
    }

    fn error(&mut self, message: String) {
        self.errors += 1;
        self.first_error.get_or_insert(message);
    }
}

/// Sends `requests` GETs to `target` from `concurrency` keep-alive connections. Workers stop
/// taking new requests at `deadline`.
pub async fn run(
    target: &Target,
    requests: usize,
    concurrency: usize,
    deadline: Instant,
) -> LoadResult {
    let target = Arc::new(target.clone());
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let cpu_before = spin_test_host::mock::process_cpu_time();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let target = Arc::clone(&target);
            let next = Arc::clone(&next);
            tokio::spawn(async move { worker(&target, &next, requests, deadline).await })
        })
        .collect();
    let mut total = LoadResult::default();
    for worker in workers {
        match worker.await {
            Ok(result) => total.merge(result),
            Err(e) => total.error(format!("worker task failed: {e}")),
        }
    }
    total.elapsed = started.elapsed();
    if let (Some(before), Some(after)) = (cpu_before, spin_test_host::mock::process_cpu_time()) {
        total.cpu = after.saturating_sub(before);
    }
    total
}

async fn worker(
    target: &Target,
    next: &AtomicUsize,
    requests: usize,
    deadline: Instant,
) -> LoadResult {
    let mut result = LoadResult::default();
    let mut sender: Option<SendRequest<Empty<Bytes>>> = None;
    while Instant::now() < deadline && next.fetch_add(1, Ordering::Relaxed) < requests {
        // A connection the server closed (or one we dropped after an error) is replaced; the
        // connection count in the report shows whether that ever happened.
        let mut live = match sender.take().filter(|s| !s.is_closed()) {
            Some(live) => live,
            None => match connect(target.addr).await {
                Ok(fresh) => {
                    result.connections += 1;
                    fresh
                }
                Err(e) => {
                    result.error(format!("connect: {e:#}"));
                    continue;
                }
            },
        };
        let sent = Instant::now();
        match tokio::time::timeout(REQUEST_TIMEOUT, get(&mut live, target)).await {
            Ok(Ok((200, _))) => {
                result.latencies.push(sent.elapsed());
                sender = Some(live);
            }
            Ok(Ok((status, _))) => {
                result.error(format!("status {status}"));
                sender = Some(live);
            }
            Ok(Err(e)) => result.error(format!("request: {e:#}")),
            Err(_) => result.error(format!("no answer within {REQUEST_TIMEOUT:?}")),
        }
    }
    result
}

/// Opens one HTTP/1.1 connection; its driver runs on its own task until the sender is dropped.
pub async fn connect(addr: SocketAddr) -> Result<SendRequest<Empty<Bytes>>> {
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    // Small requests and answers: do not let Nagle's algorithm add delayed-ACK waits.
    tcp.set_nodelay(true)?;
    let (sender, connection) = http1::handshake(TokioIo::new(tcp)).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

/// One GET on an open connection; reads the whole body, counting its bytes without keeping them.
/// Returns the status and the body length.
pub async fn get(sender: &mut SendRequest<Empty<Bytes>>, target: &Target) -> Result<(u16, u64)> {
    sender.ready().await?;
    let path = if target.path.contains(UNIQUE) {
        let n = UNIQUE_COUNTER.fetch_add(1, Ordering::Relaxed);
        target.path.replace(UNIQUE, &n.to_string())
    } else {
        target.path.clone()
    };
    let mut request = Request::get(path.as_str()).header("host", target.addr.to_string());
    for (name, value) in &target.headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let response = sender.send_request(request.body(Empty::new())?).await?;
    let status = response.status().as_u16();
    let mut body = response.into_body();
    let mut bytes = 0u64;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            bytes += data.len() as u64;
        }
    }
    Ok((status, bytes))
}

/// A single download on a fresh connection, bounded by `timeout`.
pub struct Download {
    pub status: u16,
    pub bytes: u64,
    pub elapsed: Duration,
}

pub async fn download(target: &Target, timeout: Duration) -> Result<Download> {
    let started = Instant::now();
    let fetch = async {
        let mut sender = connect(target.addr).await?;
        get(&mut sender, target).await
    };
    let (status, bytes) = tokio::time::timeout(timeout, fetch)
        .await
        .with_context(|| format!("the download did not finish within {timeout:?}"))??;
    Ok(Download {
        status,
        bytes,
        elapsed: started.elapsed(),
    })
}

/// Latency percentiles of a run, by the nearest-rank method.
#[derive(Debug, Clone, Copy)]
pub struct Percentiles {
    pub p50: Duration,
    pub p95: Duration,
    pub p99: Duration,
}

pub fn percentiles(latencies: &[Duration]) -> Option<Percentiles> {
    if latencies.is_empty() {
        return None;
    }
    let mut sorted = latencies.to_vec();
    sorted.sort_unstable();
    let rank = |p: f64| {
        let index = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
        sorted[index.clamp(1, sorted.len()) - 1]
    };
    Some(Percentiles {
        p50: rank(50.0),
        p95: rank(95.0),
        p99: rank(99.0),
    })
}
