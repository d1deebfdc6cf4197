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
mod options;
mod probe;
mod report;
mod spin4;

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use app::Proxy;
use load::{LoadResult, Target};
use options::{Options, USAGE};
use report::{ColdStart, Results, Scenario, StartTimes, Streaming};
use spin_test_host::SpinHost;

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
/// A load run stops taking new requests after this long.
const RUN_BUDGET: Duration = Duration::from_secs(180);
const STREAM_TIMEOUT: Duration = Duration::from_secs(300);
const FIRST_200_TIMEOUT: Duration = Duration::from_secs(120);
/// Longest wait for a host's guests to finish their work after a run, before its key-value reads
/// are counted (below `SpinHost::settled`'s own 10 s, after which it panics).
const SETTLE_TIMEOUT: Duration = Duration::from_secs(5);

/// One load scenario to run: where its requests go, and the host whose guests' key-value reads
/// it counts (none for the bare upstream).
struct Planned<'a> {
    label: &'static str,
    name: &'static str,
    target: Target,
    host: Option<&'a SpinHost>,
}

impl<'a> Planned<'a> {
    fn new(label: &'static str, name: &'static str, target: Target, host: &'a SpinHost) -> Self {
        Planned {
            label,
            name,
            target,
            host: Some(host),
        }
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
    // Built up front, so no compile overlaps a measurement.
    let spin4_dir = if options.spin4 && options.burst == 0 {
        eprintln!("building credential_proxy.wasm (cargo, release, wasm32-wasip2: Spin 4)...");
        Some(spin_test_host::build_wasm_p3()?)
    } else {
        None
    };
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

    // 1. Latency and throughput; with a baseline wasm or the Spin 4 build, their runs interleave
    // with ours so every build sees the same machine load.
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
    let spin4 = match &spin4_dir {
        Some(dir) => {
            eprintln!("the Spin 4 build: compiling...");
            let spin4 = spin4::Spin4::start(dir).await?;
            first_200(&spin4.key_only.target(SMALL)).await?;
            first_200(&spin4.with_token.target(SMALL)).await?;
            Some(spin4)
        }
        None => None,
    };
    // With another build, every build's token scenario runs on a host set up the same way
    // (fresh, first request answered), and in the order b0, b, b4, c4, c, c0, so no build always
    // goes first: a calibration run with the same wasm on both sides showed the slot that runs
    // first, and a host that has not streamed 100 MiB, measuring up to a third faster.
    let token_proxy = if baseline.is_some() || spin4.is_some() {
        let fresh = Proxy::start(cached_dir.path(), true).await?;
        first_200(&fresh.target(SMALL)).await?;
        Some(fresh)
    } else {
        None
    };
    let token_proxy_ref = token_proxy.as_ref().unwrap_or(&with_token);
    let mut scenarios = vec![Planned {
        label: "(a)",
        name: "direct to the mock upstream",
        target: key_only.direct_target(SMALL),
        host: None,
    }];
    if let Some((_, _, base_key, _)) = &baseline {
        scenarios.push(Planned::new(
            "(b0)",
            "baseline wasm: proxy, static key",
            base_key.target(SMALL),
            &base_key.host,
        ));
    }
    scenarios.push(Planned::new(
        "(b)",
        "proxy, static key",
        key_only.target(SMALL),
        &key_only.host,
    ));
    if let Some(spin4) = &spin4 {
        scenarios.push(Planned::new(
            "(b4)",
            "Spin 4 build: proxy, static key",
            spin4.key_only.target(SMALL),
            &spin4.key_only.host,
        ));
        scenarios.push(Planned::new(
            "(c4)",
            "Spin 4 build: proxy, key + cached OAuth token",
            spin4.with_token.target(SMALL),
            &spin4.with_token.host,
        ));
    }
    scenarios.push(Planned::new(
        "(c)",
        "proxy, key + cached OAuth token",
        token_proxy_ref.target(SMALL),
        &token_proxy_ref.host,
    ));
    if let Some((_, _, _, base_token)) = &baseline {
        scenarios.push(Planned::new(
            "(c0)",
            "baseline wasm: proxy, key + cached OAuth token",
            base_token.target(SMALL),
            &base_token.host,
        ));
    }
    // The yardstick for (c) minus (b): what one raw key-value read adds to a request of a tiny
    // component, in this run.
    let kv_probe = probe::KvProbe::start().await?;
    first_200(&kv_probe.one_read()).await?;
    scenarios.push(Planned::new(
        "(k0)",
        "tiny component, no key-value",
        kv_probe.no_read(),
        kv_probe.host(),
    ));
    // What instance reuse is worth for a hello world in this host: (h4) is (k0)'s request to
    // the WASIp3 probe, served as Spin 4 serves it.
    let p3_probe = match &spin4 {
        Some(_) => {
            let probe = probe::KvProbe::start_p3().await?;
            first_200(&probe.no_read()).await?;
            Some(probe)
        }
        None => None,
    };
    if let Some(probe) = &p3_probe {
        scenarios.push(Planned::new(
            "(h4)",
            "tiny WASIp3 component (Spin 4 reuse), no key-value",
            probe.no_read(),
            probe.host(),
        ));
    }
    scenarios.push(Planned::new(
        "(k1)",
        "tiny component, one key-value read",
        kv_probe.one_read(),
        kv_probe.host(),
    ));
    scenarios.push(Planned::new(
        "(v6)",
        "tiny component, six variable reads",
        kv_probe.six_variables(),
        kv_probe.host(),
    ));
    // The response cache (key + token, as (c)): (d) asks for one URL, so every request after the
    // first is a hit; (e) asks for a new URL each time, so every request is a miss that is
    // stored (one key-value write each).
    let caching = Proxy::start_with_cache(cached_dir.path(), true, Some(CACHE_TTL_SECS)).await?;
    first_200(&caching.target(SMALL)).await?;
    scenarios.push(Planned::new(
        "(d)",
        "proxy, key + token, response cache hit",
        caching.target(SMALL),
        &caching.host,
    ));
    scenarios.push(Planned::new(
        "(e)",
        "proxy, key + token, response cache miss (stored)",
        caching.target(SMALL_UNIQUE),
        &caching.host,
    ));
    let labels: Vec<&str> = scenarios.iter().map(|p| p.label).collect();
    if let Some(unknown) = options.unknown_only(&labels) {
        bail!("--only: no scenario ({unknown}) in this run");
    }
    scenarios.retain(|planned| options.runs(planned.label));
    let mut results: Vec<Scenario> = Vec::new();
    for round in 0..options.rounds {
        for planned in &scenarios {
            let (label, name) = (planned.label, planned.name);
            let requests = options.requests / options.rounds
                + usize::from(round < options.requests % options.rounds);
            eprintln!(
                "{label} {name}: {requests} requests (round {} of {})...",
                round + 1,
                options.rounds
            );
            let (result, kv_reads) = load_scenario(planned, requests, options).await;
            let rss_after = spin_test_host::mock::current_rss_bytes();
            match results.iter_mut().find(|s| s.label == label) {
                Some(scenario) => {
                    scenario.result.absorb(result);
                    scenario.rss_after = rss_after;
                    scenario.kv_reads = scenario.kv_reads.zip(kv_reads).map(|(a, b)| a + b);
                }
                None => results.push(Scenario {
                    label,
                    name,
                    result,
                    rss_after,
                    kv_reads,
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
        spin4: spin4.as_ref().map(|spin4| spin4::Summary {
            wasm_size: spin4.wasm_size,
            token_calls: spin4.with_token.tokens.calls(),
        }),
    });
    println!("{report}");
    let out = spin_test_host::project_root()
        .join("target")
        .join("bench-results.md");
    std::fs::write(&out, &report).with_context(|| format!("writing {}", out.display()))?;
    eprintln!("written to {}", out.display());

    kv_probe.shutdown().await;
    if let Some(probe) = p3_probe {
        probe.shutdown().await;
    }
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
    if let Some(spin4) = spin4 {
        spin4.shutdown().await;
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

/// Warms a scenario up, then measures `requests` of it, and counts its host's key-value reads
/// over the measured requests alone (their work after the answer included).
async fn load_scenario(
    planned: &Planned<'_>,
    requests: usize,
    options: &Options,
) -> (LoadResult, Option<u64>) {
    let deadline = Instant::now() + RUN_BUDGET;
    load::run(
        &planned.target,
        options.warmup(),
        options.concurrency,
        deadline,
    )
    .await;
    let before = match planned.host {
        Some(host) => Some(settled_reads(host).await),
        None => None,
    };
    let deadline = Instant::now() + RUN_BUDGET;
    let result = load::run(&planned.target, requests, options.concurrency, deadline).await;
    let reads = match (planned.host, before) {
        (Some(host), Some(before)) => Some(settled_reads(host).await.saturating_sub(before)),
        _ => None,
    };
    (result, reads)
}

/// The host's key-value reads so far, once its guests are done (or `SETTLE_TIMEOUT` passed).
async fn settled_reads(host: &SpinHost) -> u64 {
    let _ = tokio::time::timeout(SETTLE_TIMEOUT, host.settled()).await;
    host.kv_reads()
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
