//! Measures the credential proxy running as its real `.wasm` in the Spin-compatible test host:
//! request latency and throughput against the bare mock upstream, a 100 MiB streamed answer
//! (speed and peak memory), and the cold start. Prints a markdown report and writes it to
//! `target/bench-results.md`.
//!
//! It measures and never asserts; `tests/` holds the checks. Everything runs in this one process
//! on 127.0.0.1, is bounded in requests and time, and stops by itself. See `bench/README.md`.

mod app;
mod burst;
mod load;
mod probe;
mod report;

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use app::Proxy;
use load::{LoadResult, Target};
use report::{ColdStart, Results, Scenario, StartTimes, Streaming};

const WASM: &str = "credential_proxy.wasm";
/// Where the test host keeps compiled components, next to the wasm (tests/host/src/runtime.rs).
const HOST_CACHE: &str = ".spin-test-host-cache";
/// The path of the small request, after the route: one JSON answer from the mock upstream.
const SMALL: &str = "/search/images?phrase=cat";
/// A small request whose query no earlier request used: always a response cache miss.
const SMALL_UNIQUE: &str = "/search/images?phrase=cat&n={unique}";
/// The response cache's lifetime in (d) and (e): longer than any run.
const CACHE_TTL_SECS: u64 = 3600;
/// The streamed answer: 100 MiB from the mock upstream's `__large` endpoint.
const STREAM_BYTES: u64 = 100 * 1024 * 1024;
/// Upper bounds that keep a mistyped argument from running for hours.
/// The mock upstream records every request it gets, so the count is kept moderate.
const MAX_REQUESTS: usize = 100_000;
const MAX_CONCURRENCY: usize = 256;
const MAX_ROUNDS: usize = 20;
/// A load run stops taking new requests after this long.
const RUN_BUDGET: Duration = Duration::from_secs(180);
const STREAM_TIMEOUT: Duration = Duration::from_secs(300);
const FIRST_200_TIMEOUT: Duration = Duration::from_secs(120);

const USAGE: &str = "usage: proxy_bench [--requests N] [--concurrency C] [--rounds R] [--baseline-wasm PATH] [--access-log on|off] [--burst N]
  --requests N            requests per load scenario (default 2000, at most 100000)
  --concurrency C         keep-alive connections sending at once (default 8, at most 256)
  --rounds R              split each scenario's requests into R rounds run round-robin over all
                          scenarios, so a change in the machine's load hits every scenario alike
                          (default 1, at most 20)
  --access-log on|off     the proxies' access_log variable (default on, as in the product)
  --baseline-wasm PATH    also run (b) and (c) against this credential_proxy.wasm (e.g. an older
                          commit's build), interleaved with the current one, in the same run
  --burst N               instead of the usual scenarios, only the cold-cache burst: N requests at
                          concurrency C to a fresh proxy with the token flow on (bench/burst.rs)";

struct Options {
    requests: usize,
    concurrency: usize,
    rounds: usize,
    baseline_wasm: Option<std::path::PathBuf>,
    /// Requests of the cold-cache burst; 0 runs the usual scenarios instead.
    burst: usize,
}

impl Options {
    fn parse(args: impl IntoIterator<Item = String>) -> Result<Options> {
        let mut options = Options {
            requests: 2000,
            concurrency: 8,
            rounds: 1,
            baseline_wasm: None,
            burst: 0,
        };
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let (name, inline) = match arg.split_once('=') {
                Some((name, value)) => (name.to_string(), Some(value.to_string())),
                None => (arg, None),
            };
            if name == "--access-log" {
                match inline.or_else(|| args.next()).as_deref() {
                    Some("off") => app::ACCESS_LOG_OFF.store(true, Ordering::Relaxed),
                    Some("on") => app::ACCESS_LOG_OFF.store(false, Ordering::Relaxed),
                    other => bail!("--access-log takes on or off, not {other:?}"),
                }
                continue;
            }
            if name == "--baseline-wasm" {
                let path = inline
                    .or_else(|| args.next())
                    .with_context(|| format!("{name} needs a path"))?;
                options.baseline_wasm = Some(path.into());
                continue;
            }
            let (slot, max) = match name.as_str() {
                "--requests" => (&mut options.requests, MAX_REQUESTS),
                "--concurrency" => (&mut options.concurrency, MAX_CONCURRENCY),
                "--rounds" => (&mut options.rounds, MAX_ROUNDS),
                "--burst" => (&mut options.burst, MAX_REQUESTS),
                _ => bail!("unknown argument {name}"),
            };
            let value = inline
                .or_else(|| args.next())
                .with_context(|| format!("{name} needs a value"))?;
            *slot = match value.parse() {
                Ok(n) if (1..=max).contains(&n) => n,
                _ => bail!("{name} must be a whole number from 1 to {max}, not {value:?}"),
            };
        }
        Ok(options)
    }

    /// Warm-up requests per scenario, not counted: a few per connection.
    fn warmup(&self) -> usize {
        (self.concurrency * 5).min(self.requests)
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return;
    }
    let options = match Options::parse(args) {
        Ok(options) => options,
        Err(e) => {
            eprintln!("{e}\n{USAGE}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(&options).await {
        eprintln!("proxy_bench failed: {e:#}");
        std::process::exit(1);
    }
}

async fn run(options: &Options) -> Result<()> {
    eprintln!("building credential_proxy.wasm (cargo, release, wasm32-wasip1)...");
    let wasm_dir = spin_test_host::build_wasm()?;
    if options.burst > 0 {
        eprintln!(
            "cold-cache burst: {} requests at concurrency {}...",
            options.burst, options.concurrency
        );
        let report = burst::run(&wasm_dir, options.burst, options.concurrency, RUN_BUDGET).await?;
        println!("{report}");
        return Ok(());
    }
    let wasm_size = std::fs::metadata(wasm_dir.join(WASM))
        .with_context(|| format!("reading {}", wasm_dir.join(WASM).display()))?
        .len();

    // 3. Cold start first. The host caches compiled components in the process (by path) and on
    // disk next to the wasm, so a copy of the wasm in a fresh directory is what gets a real
    // Cranelift compile; a second copy with the first one's disk cache measures a start that
    // only loads the cached machine code, as every later test process does.
    eprintln!("cold start...");
    let cold_dir = tempfile::tempdir()?;
    copy_wasm(&wasm_dir, cold_dir.path(), false)?;
    let with_token = Proxy::start(cold_dir.path(), true).await?;
    let compiled = measure_start(&with_token).await?;
    let cached_dir = tempfile::tempdir()?;
    copy_wasm(cold_dir.path(), cached_dir.path(), true)?;
    let cached_host = Proxy::start(cached_dir.path(), true).await?;
    let cached = measure_start(&cached_host).await?;
    cached_host.shutdown().await;

    // 2. Streaming before the load runs, while the process's memory is still small.
    eprintln!("streaming {} MiB...", STREAM_BYTES >> 20);
    let stream = streaming(&with_token).await?;

    // 1. Latency and throughput; with a baseline wasm, its runs interleave with ours so both
    // see the same machine load.
    let key_only = Proxy::start(cached_dir.path(), false).await?;
    let baseline_dir = tempfile::tempdir()?;
    let baseline = match &options.baseline_wasm {
        Some(path) => {
            std::fs::copy(path, baseline_dir.path().join(WASM))
                .with_context(|| format!("copying {}", path.display()))?;
            let size = std::fs::metadata(path)?.len();
            eprintln!("baseline {} ({size} bytes): compiling...", path.display());
            let key_only = Proxy::start(baseline_dir.path(), false).await?;
            let with_token = Proxy::start(baseline_dir.path(), true).await?;
            first_200(&key_only.target(SMALL)).await?;
            first_200(&with_token.target(SMALL)).await?;
            Some((path.display().to_string(), size, key_only, with_token))
        }
        None => None,
    };
    // With a baseline, both builds' token scenarios run on hosts set up the same way (fresh,
    // first request answered), and in the order b0, b, c, c0, so neither build always goes
    // first: a calibration run with the same wasm on both sides showed the slot that runs
    // first, and a host that has not streamed 100 MiB, measuring up to a third faster.
    let token_proxy = match &baseline {
        Some(_) => {
            let fresh = Proxy::start(cached_dir.path(), true).await?;
            first_200(&fresh.target(SMALL)).await?;
            Some(fresh)
        }
        None => None,
    };
    let token_proxy_ref = token_proxy.as_ref().unwrap_or(&with_token);
    let mut scenarios = vec![(
        "(a)",
        "direct to the mock upstream",
        key_only.direct_target(SMALL),
    )];
    if let Some((_, _, base_key, _)) = &baseline {
        scenarios.push((
            "(b0)",
            "baseline wasm: proxy, static key",
            base_key.target(SMALL),
        ));
    }
    scenarios.push(("(b)", "proxy, static key", key_only.target(SMALL)));
    scenarios.push((
        "(c)",
        "proxy, key + cached OAuth token",
        token_proxy_ref.target(SMALL),
    ));
    if let Some((_, _, _, base_token)) = &baseline {
        scenarios.push((
            "(c0)",
            "baseline wasm: proxy, key + cached OAuth token",
            base_token.target(SMALL),
        ));
    }
    // The yardstick for (c) minus (b): what one raw key-value read adds to a request of a tiny
    // component, in this run.
    let kv_probe = probe::KvProbe::start().await?;
    first_200(&kv_probe.one_read()).await?;
    scenarios.push(("(k0)", "tiny component, no key-value", kv_probe.no_read()));
    scenarios.push((
        "(k1)",
        "tiny component, one key-value read",
        kv_probe.one_read(),
    ));
    scenarios.push((
        "(v6)",
        "tiny component, six variable reads",
        kv_probe.six_variables(),
    ));
    // The response cache (key + token, as (c)): (d) asks for one URL, so every request after the
    // first is a hit; (e) asks for a new URL each time, so every request is a miss that is
    // stored (one key-value write each).
    let caching = Proxy::start_with_cache(cached_dir.path(), true, Some(CACHE_TTL_SECS)).await?;
    first_200(&caching.target(SMALL)).await?;
    scenarios.push((
        "(d)",
        "proxy, key + token, response cache hit",
        caching.target(SMALL),
    ));
    scenarios.push((
        "(e)",
        "proxy, key + token, response cache miss (stored)",
        caching.target(SMALL_UNIQUE),
    ));
    let mut results: Vec<Scenario> = Vec::new();
    for round in 0..options.rounds {
        for (label, name, target) in &scenarios {
            let requests = options.requests / options.rounds
                + usize::from(round < options.requests % options.rounds);
            eprintln!(
                "{label} {name}: {requests} requests (round {} of {})...",
                round + 1,
                options.rounds
            );
            let result = load_scenario(target, requests, options).await;
            let rss_after = spin_test_host::mock::current_rss_bytes();
            match results.iter_mut().find(|s| s.label == *label) {
                Some(scenario) => {
                    scenario.result.absorb(result);
                    scenario.rss_after = rss_after;
                }
                None => results.push(Scenario {
                    label,
                    name,
                    result,
                    rss_after,
                }),
            }
        }
    }
    let token_calls = token_proxy_ref.tokens.calls();

    let report = report::markdown(&Results {
        requests: options.requests,
        rounds: options.rounds,
        concurrency: options.concurrency,
        warmup: options.warmup(),
        scenarios: results,
        token_calls,
        stream,
        cold: ColdStart {
            compiled,
            cached,
            wasm_size,
        },
        baseline: baseline
            .as_ref()
            .map(|(path, size, _, _)| (path.clone(), *size)),
    });
    println!("{report}");
    let out = spin_test_host::project_root()
        .join("target")
        .join("bench-results.md");
    std::fs::write(&out, &report).with_context(|| format!("writing {}", out.display()))?;
    eprintln!("written to {}", out.display());

    kv_probe.shutdown().await;
    key_only.shutdown().await;
    with_token.shutdown().await;
    caching.shutdown().await;
    if let Some(fresh) = token_proxy {
        fresh.shutdown().await;
    }
    if let Some((_, _, base_key, base_token)) = baseline {
        base_key.shutdown().await;
        base_token.shutdown().await;
    }
    Ok(())
}

/// Copies the proxy's wasm, and with `with_cache` the host's compiled-component cache, from one
/// wasm directory to another.
fn copy_wasm(from: &Path, to: &Path, with_cache: bool) -> Result<()> {
    std::fs::copy(from.join(WASM), to.join(WASM))
        .with_context(|| format!("copying {}", from.join(WASM).display()))?;
    if with_cache {
        let cache = from.join(HOST_CACHE);
        std::fs::create_dir_all(to.join(HOST_CACHE))?;
        for entry in
            std::fs::read_dir(&cache).with_context(|| format!("reading {}", cache.display()))?
        {
            let entry = entry?;
            std::fs::copy(entry.path(), to.join(HOST_CACHE).join(entry.file_name()))?;
        }
    }
    Ok(())
}

/// The start of a host that `Proxy::start` just timed, and its first request until a 200.
async fn measure_start(proxy: &Proxy) -> Result<StartTimes> {
    let first_request = first_200(&proxy.target(SMALL)).await?;
    Ok(StartTimes {
        start: proxy.start_time,
        first_request,
    })
}

async fn load_scenario(target: &Target, requests: usize, options: &Options) -> LoadResult {
    let deadline = Instant::now() + RUN_BUDGET;
    load::run(target, options.warmup(), options.concurrency, deadline).await;
    let deadline = Instant::now() + RUN_BUDGET;
    load::run(target, requests, options.concurrency, deadline).await
}

/// Time until the first request is answered 200, retrying until `FIRST_200_TIMEOUT`.
async fn first_200(target: &Target) -> Result<Duration> {
    let started = Instant::now();
    loop {
        match load::download(target, FIRST_200_TIMEOUT).await {
            Ok(d) if d.status == 200 => return Ok(started.elapsed()),
            Ok(d) if started.elapsed() > FIRST_200_TIMEOUT => {
                bail!("the first request got {}, not 200", d.status)
            }
            Err(e) if started.elapsed() > FIRST_200_TIMEOUT => return Err(e),
            _ => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

async fn streaming(proxy: &Proxy) -> Result<Streaming> {
    // Warm the path (instance, cached token, connections) so the growth is the transfer's own.
    load::download(&proxy.target("/__large?bytes=1048576"), STREAM_TIMEOUT).await?;
    // The cold start's compile set the process's high-water mark; lower it to the current
    // resident size so the growth is not hidden under it.
    let peak_was_reset = reset_peak_rss();
    let peak_before = spin_test_host::mock::peak_rss_bytes();
    let target = proxy.target(&format!("/__large?bytes={STREAM_BYTES}"));
    let d = load::download(&target, STREAM_TIMEOUT).await?;
    Ok(Streaming {
        status: d.status,
        bytes: d.bytes,
        elapsed: d.elapsed,
        peak_before,
        peak_after: spin_test_host::mock::peak_rss_bytes(),
        peak_was_reset,
    })
}

/// Linux: writing 5 to clear_refs resets the peak resident set size (VmHWM) to the current one.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}
