//! The Spin 4 build (`wasm32-wasip2`, a WASIp3 component on spin-sdk 6) against the default
//! build, in the same run: its two proxies, (b4) static key and (c4) key + token, configured as
//! (b) and (c) and served as Spin 4 serves a WASIp3 component with its default settings (one
//! instance reused for up to 128 requests, 16 at once: the test host's defaults); and the report
//! section that sets them side by side with (b) and (c), key-value reads per request included.
//!
//! It neither builds the wasm (`proxy_bench.rs` does, before anything is measured) nor decides
//! the order of the scenarios.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use spin_test_host::{
    DEFAULT_MAX_INSTANCE_CONCURRENT_REUSE_COUNT, DEFAULT_MAX_INSTANCE_REUSE_COUNT,
};

use crate::app::Proxy;
use crate::load::{self, LoadResult};
use crate::report::{reads_per_request, Scenario};
use crate::WASM;

/// The Spin 4 build's two proxies.
pub struct Spin4 {
    pub key_only: Proxy,
    pub with_token: Proxy,
    pub wasm_size: u64,
    /// A copy of the wasm, so a `cargo test` rebuilding the original meanwhile changes nothing.
    _dir: tempfile::TempDir,
}

/// What the report needs to know about the Spin 4 build besides its scenarios.
pub struct Summary {
    pub wasm_size: u64,
    /// Token endpoint calls by (c4)'s proxy over its whole life.
    pub token_calls: usize,
}

impl Spin4 {
    /// Starts both proxies on a copy of the build in `wasm_dir`.
    pub async fn start(wasm_dir: &Path) -> Result<Spin4> {
        let dir = tempfile::tempdir()?;
        crate::copy_wasm(wasm_dir, dir.path(), false)?;
        let wasm_size = std::fs::metadata(dir.path().join(WASM))?.len();
        Ok(Spin4 {
            key_only: Proxy::start(dir.path(), false).await?,
            with_token: Proxy::start(dir.path(), true).await?,
            wasm_size,
            _dir: dir,
        })
    }

    pub async fn shutdown(self) {
        self.key_only.shutdown().await;
        self.with_token.shutdown().await;
    }
}

/// The comparison as markdown: (b), (c), (b4), (c4) and the ratios; empty unless all four ran.
pub fn comparison(results: &[Scenario], summary: &Summary) -> String {
    let find = |label: &str| results.iter().find(|s| s.label == label);
    let (Some(b), Some(c), Some(b4), Some(c4)) =
        (find("(b)"), find("(c)"), find("(b4)"), find("(c4)"))
    else {
        return String::new();
    };
    let mut out = format!(
        "\n### Spin 4 build vs default build\n\n(b4) and (c4) run the Spin 4 build \
         (`wasm32-wasip2`, a WASIp3 component, {} bytes) with the configs of (b) and (c), in the \
         same process and the same rounds (order b, b4, c4, c), served as Spin 4 serves it by \
         default: one instance reused for up to {} requests, {} at once. The default build gets \
         a fresh instance per request. Key-value reads per request: the guests' `get` calls on \
         the scenario's host during its measured requests (warm-up excluded, work after the \
         answer included), divided by those requests.\n\n\
         | build | scenario | req/s | p50 ms | p95 ms | p99 ms | key-value reads per request |\n\
         |---|---|---:|---:|---:|---:|---:|\n",
        summary.wasm_size,
        DEFAULT_MAX_INSTANCE_REUSE_COUNT,
        DEFAULT_MAX_INSTANCE_CONCURRENT_REUSE_COUNT,
    );
    for (build, s) in [
        ("default (WASIp2)", b),
        ("default (WASIp2)", c),
        ("Spin 4 (WASIp3)", b4),
        ("Spin 4 (WASIp3)", c4),
    ] {
        let p = load::percentiles(&s.result.latencies);
        let cell = |f: fn(&load::Percentiles) -> std::time::Duration| {
            p.as_ref()
                .map_or("-".into(), |p| format!("{:.2}", f(p).as_secs_f64() * 1e3))
        };
        let _ = writeln!(
            out,
            "| {build} | {} {} | {:.0} | {} | {} | {} | {} |",
            s.label,
            s.name,
            s.result.rps(),
            cell(|p| p.p50),
            cell(|p| p.p95),
            cell(|p| p.p99),
            reads_per_request(s).map_or("-".into(), |r| format!("{r:.3}")),
        );
    }
    let rps_ratio = |x: &LoadResult, y: &LoadResult| x.rps() / y.rps().max(1e-9);
    let p50 = |s: &Scenario| load::percentiles(&s.result.latencies).map(|p| p.p50.as_secs_f64());
    let p50_cell = match (p50(c4), p50(c)) {
        (Some(new), Some(old)) => {
            format!("{:.2}x ({:+.2} ms)", new / old.max(1e-9), (new - old) * 1e3)
        }
        _ => "-".into(),
    };
    let c4_reads = reads_per_request(c4).map_or("-".into(), |r| format!("{r:.3}"));
    // The host's yardstick: the same hello world as WASIp3 with reuse against WASIp2.
    let hello = match (find("(h4)"), find("(k0)")) {
        (Some(h4), Some(k0)) => format!("{:.2}x", rps_ratio(&h4.result, &k0.result)),
        _ => "-".into(),
    };
    let _ = write!(
        out,
        "\n| Spin 4 build against the default build | measured | issue's target |\n\
         |---|---:|---:|\n\
         | token path, req/s: (c4) / (c) | {:.2}x | at least 1.5x |\n\
         | static key, req/s: (b4) / (b) | {:.2}x | |\n\
         | token path, p50: (c4) / (c) | {p50_cell} | |\n\
         | token path, key-value reads per request: (c4) | {c4_reads} | at most 0.1 |\n\
         | tiny component (hello world), req/s: (h4) WASIp3 reused / (k0) WASIp2 | {hello} | \
         real Spin 4.0.2 measures 2.0x |\n\
         \nToken endpoint calls for (c4)'s proxy, first request, warm-ups and runs included: \
         **{}**.\n",
        rps_ratio(&c4.result, &c.result),
        rps_ratio(&b4.result, &b.result),
        summary.token_calls,
    );
    out
}
