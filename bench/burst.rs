//! The cold-cache burst: a fresh proxy with the OAuth2 token flow and an empty token cache, hit
//! by `N` requests from `C` keep-alive connections at once, no warm-up. The first wave of `C`
//! requests all find no token at the same moment, so this is where the lease that elects one
//! fetcher (`src/token/cache.rs`) is put under load. It reports statuses and how many times the
//! token endpoint was called; one call is right.
//!
//! Like the rest of the bench it measures and never asserts.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::app::Proxy;
use crate::load::{self, percentiles};

/// The same small request as the load scenarios.
const SMALL: &str = "/search/images?phrase=cat";

pub async fn run(
    wasm_dir: &Path,
    requests: usize,
    concurrency: usize,
    budget: Duration,
) -> Result<String> {
    let proxy = Proxy::start(wasm_dir, true).await?;
    let result = load::run(
        &proxy.target(SMALL),
        requests,
        concurrency,
        Instant::now() + budget,
    )
    .await;
    let token_calls = proxy.tokens.calls();
    let upstream_hits = proxy.upstream.hits();
    proxy.shutdown().await;

    let ok = result.latencies.len();
    let rate = ok as f64 / result.elapsed.as_secs_f64().max(1e-9);
    let ms = |d: Duration| format!("{:.2}", d.as_secs_f64() * 1e3);
    let (p50, p95, p99) = percentiles(&result.latencies)
        .map(|p| (ms(p.p50), ms(p.p95), ms(p.p99)))
        .unwrap_or_default();
    let mut out = format!(
        "#### Cold-cache burst\n\n{requests} requests at concurrency {concurrency} to a fresh \
         proxy with the token flow on and an empty token cache, no warm-up.\n\n\
         | ok (200) | other statuses and errors | connections | upstream requests | req/s | \
         p50 ms | p95 ms | p99 ms | token endpoint calls |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|---:|\n\
         | {ok} | {} | {} | {upstream_hits} | {rate:.0} | {p50} | {p95} | {p99} | **{token_calls}** |\n",
        result.errors, result.connections,
    );
    if let Some(first) = &result.first_error {
        out.push_str(&format!("\nFirst error: {first}\n"));
    }
    Ok(out)
}
