//! The bench's report: the measured values as one markdown document, with the machine and build
//! they were measured on. It formats and computes the derived figures (req/s, percentiles, the
//! proxy's added latency); it does not measure anything.

use std::fmt::Write as _;
use std::time::Duration;

use crate::load::{self, LoadResult, Percentiles};
use crate::{STREAM_BYTES, WASM};

/// One load scenario's outcome.
pub struct Scenario {
    pub label: &'static str,
    pub name: &'static str,
    pub result: LoadResult,
    /// The process's resident size right after the run: steady growth across runs would be a
    /// leak in the host or the mocks.
    pub rss_after: u64,
    /// The guests' key-value `get` calls on the scenario's host over its measured requests, all
    /// rounds; `None` for a scenario without a host, (a).
    pub kv_reads: Option<u64>,
}

pub struct StartTimes {
    pub start: Duration,
    pub first_request: Duration,
}

pub struct ColdStart {
    /// A wasm the host had never compiled.
    pub compiled: StartTimes,
    /// The same wasm with the host's compiled-component disk cache.
    pub cached: StartTimes,
    pub wasm_size: u64,
}

pub struct Streaming {
    pub status: u16,
    pub bytes: u64,
    pub elapsed: Duration,
    pub peak_before: u64,
    pub peak_after: u64,
    pub peak_was_reset: bool,
}

/// Everything one bench run measured.
pub struct Results {
    pub requests: usize,
    /// The scenarios ran round-robin in this many rounds, each with its share of the requests.
    pub rounds: usize,
    pub concurrency: usize,
    pub warmup: usize,
    pub scenarios: Vec<Scenario>,
    /// Token endpoint calls made by (c)'s proxy over its whole life.
    pub token_calls: usize,
    pub stream: Streaming,
    pub cold: ColdStart,
    /// With `--baseline-wasm`: its path and size; its scenarios are labelled `(b0)`, `(c0)`.
    pub baseline: Option<(String, u64)>,
    /// With the Spin 4 build (the default): its scenarios are labelled `(b4)`, `(c4)`.
    pub spin4: Option<crate::spin4::Summary>,
}

/// The report as markdown.
pub fn markdown(run: &Results) -> String {
    let results = &run.scenarios;
    let (stream, cold, token_calls) = (&run.stream, &run.cold, run.token_calls);
    let mut out = String::new();
    let _ = writeln!(out, "## credential-proxy bench results\n");
    let _ = writeln!(out, "{}\n", machine());
    let _ = writeln!(
        out,
        "### Latency and throughput\n\n{} requests per scenario at concurrency {}, HTTP/1.1 \
         keep-alive, in {} round(s) over all scenarios, each after {} warm-up requests; latency \
         is from sending the request to the last body byte. The proxies' access log is {}. \
         Nagle's algorithm on the hosts' connections: {}.\n",
        run.requests,
        run.concurrency,
        run.rounds,
        run.warmup,
        if crate::app::ACCESS_LOG_OFF.load(std::sync::atomic::Ordering::Relaxed) {
            "off (`--access-log off`)"
        } else {
            "on, as by default"
        },
        if crate::app::NAGLE.load(std::sync::atomic::Ordering::Relaxed) {
            "on (`--nagle on`)"
        } else {
            "off (`TCP_NODELAY`), as the test host's default"
        }
    );
    let _ = writeln!(
        out,
        "| scenario | ok | errors | connections | req/s | p50 ms | p95 ms | p99 ms | key-value reads per request | RSS after |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut p50s = Vec::new();
    for s in results {
        let r = &s.result;
        let p = load::percentiles(&r.latencies);
        p50s.push(p.map(|p| p.p50));
        let rps = r.latencies.len() as f64 / r.elapsed.as_secs_f64().max(1e-9);
        let cell = |f: fn(&Percentiles) -> Duration| {
            p.as_ref()
                .map_or("-".into(), |p| format!("{:.2}", f(p).as_secs_f64() * 1e3))
        };
        let _ = writeln!(
            out,
            "| {} {} | {} | {} | {} | {rps:.0} | {} | {} | {} | {} | {} |",
            s.label,
            s.name,
            r.latencies.len(),
            r.errors,
            r.connections,
            cell(|p| p.p50),
            cell(|p| p.p95),
            cell(|p| p.p99),
            reads_per_request(s).map_or("-".into(), |r| format!("{r:.3}")),
            mib(s.rss_after),
        );
    }
    let _ = write!(out, "{}", cache_ratios(results));
    if let Some((path, size)) = &run.baseline {
        let _ = writeln!(
            out,
            "\n(b0) and (c0) run the baseline `{path}` ({size} bytes) in the same process, \
             interleaved with (b) and (c)."
        );
    }
    // Against the bare upstream (a), the first scenario whenever it ran (not under `--only`
    // without it).
    let with_floor = results.first().is_some_and(|s| s.label == "(a)");
    if with_floor {
        let _ = writeln!(out, "\n| proxy overhead (p50) | added | ratio |");
        let _ = writeln!(out, "|---|---:|---:|");
    }
    if let (true, [Some(a), rest @ ..]) = (with_floor, p50s.as_slice()) {
        for (s, p50) in results[1..].iter().zip(rest) {
            if let Some(p50) = p50 {
                let added = p50.as_secs_f64() - a.as_secs_f64();
                let ratio = p50.as_secs_f64() / a.as_secs_f64().max(1e-9);
                let _ = writeln!(
                    out,
                    "| {} minus {} | {:+.2} ms | {ratio:.1}x |",
                    s.label,
                    results[0].label,
                    added * 1e3
                );
            }
        }
    }
    let _ = writeln!(
        out,
        "\nToken endpoint calls for (c)'s proxy, cold-start request, warm-up and run included: \
         **{token_calls}**."
    );
    if let Some(spin4) = &run.spin4 {
        out.push_str(&crate::spin4::comparison(results, spin4));
    }
    out.push_str(&token_path_in_reads(results));
    for s in results {
        if let Some(e) = &s.result.first_error {
            let _ = writeln!(out, "\nFirst error in {}: {e}", s.label);
        }
    }

    let secs = stream.elapsed.as_secs_f64().max(1e-9);
    let _ = writeln!(
        out,
        "\n### Streaming\n\nOne {} MiB answer through the proxy (key + token), the client \
         counting bytes without keeping them. Peak RSS is the whole process's (host, component, \
         mocks, client){}.\n",
        STREAM_BYTES >> 20,
        if stream.peak_was_reset {
            ", its high-water mark reset just before the transfer"
        } else {
            "; resetting its high-water mark failed, so 'before' includes the compile's peak"
        }
    );
    let _ = writeln!(
        out,
        "| status | bytes | seconds | MiB/s | MB/s | peak RSS before | peak RSS after | growth |"
    );
    let _ = writeln!(out, "|---:|---:|---:|---:|---:|---:|---:|---:|");
    let _ = writeln!(
        out,
        "| {} | {} | {secs:.3} | {:.0} | {:.0} | {} | {} | {} |",
        stream.status,
        stream.bytes,
        stream.bytes as f64 / 1048576.0 / secs,
        stream.bytes as f64 / 1e6 / secs,
        mib(stream.peak_before),
        mib(stream.peak_after),
        mib(stream.peak_after.saturating_sub(stream.peak_before)),
    );

    let _ = writeln!(
        out,
        "\n### Cold start\n\nA fresh host with the key + token config: `SpinHost::start`, \
         then the first request until its 200 (which includes one token fetch from the local \
         mock). `{WASM}` is {} bytes.\n",
        cold.wasm_size
    );
    let _ = writeln!(
        out,
        "| start | SpinHost::start | first request | start to first 200 |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|");
    for (label, t) in [
        ("cold: Cranelift compiles the component", &cold.compiled),
        (
            "with the host's compiled-component disk cache",
            &cold.cached,
        ),
    ] {
        let _ = writeln!(
            out,
            "| {label} | {} | {} | {} |",
            ms(t.start),
            ms(t.first_request),
            ms(t.start + t.first_request)
        );
    }
    out
}

/// The key-value `get` calls per measured request, or `None` when they were not counted.
pub fn reads_per_request(s: &Scenario) -> Option<f64> {
    let sent = s.result.sent();
    s.kv_reads
        .filter(|_| sent > 0)
        .map(|reads| reads as f64 / sent as f64)
}

/// The response cache's throughput ratios: a hit (d) against a miss (e) and against the static
/// key path (b). Empty unless all three ran.
fn cache_ratios(results: &[Scenario]) -> String {
    let rps = |label: &str| {
        results
            .iter()
            .find(|s| s.label == label)
            .map(|s| s.result.latencies.len() as f64 / s.result.elapsed.as_secs_f64().max(1e-9))
    };
    let (Some(hit), Some(miss), Some(key)) = (rps("(d)"), rps("(e)"), rps("(b)")) else {
        return String::new();
    };
    format!(
        "\n| response cache (req/s) | ratio |\n|---|---:|\n\
         | (d) hit / (e) miss | {:.2}x |\n| (d) hit / (b) static key | {:.2}x |\n",
        hit / miss.max(1e-9),
        hit / key.max(1e-9)
    )
}

/// The token path's cost per request ((c) minus (b), and (c0) minus (b0) for a baseline) in
/// units of one raw key-value read ((k1) minus (k0)), from p50 latencies, from mean service
/// time (concurrency over throughput) and from the process's CPU time per request.
fn token_path_in_reads(results: &[Scenario]) -> String {
    let find = |label: &str| results.iter().find(|s| s.label == label);
    let p50 = |s: &Scenario| load::percentiles(&s.result.latencies).map(|p| p.p50.as_secs_f64());
    let mean = |s: &Scenario| {
        let rps = s.result.latencies.len() as f64 / s.result.elapsed.as_secs_f64().max(1e-9);
        (rps > 0.0).then(|| s.result.connections.max(1) as f64 / rps)
    };
    let cpu = |s: &Scenario| {
        let n = s.result.latencies.len();
        (n > 0 && !s.result.cpu.is_zero()).then(|| s.result.cpu.as_secs_f64() / n as f64)
    };
    let (Some(k0), Some(k1)) = (find("(k0)"), find("(k1)")) else {
        return String::new();
    };
    let mut out = String::from(
        "\n### The token path in key-value reads\n\nWhat the token path adds to a request, \
         divided by what one raw key-value read adds to a tiny component's request (k1 minus \
         k0), in this run, three ways: by p50 latency, by mean service time (concurrency over \
         throughput), and by CPU time per request (the whole process's, host, mocks and client \
         included, which cancel out in each difference). The token path's floor is one read of \
         the token record.\n\n\
         | build | by p50: added ms | per read | by mean service time: added ms | per read | by CPU time: added ms | per read |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
    );
    let read = |f: &dyn Fn(&Scenario) -> Option<f64>| Some(f(k1)? - f(k0)?);
    for (build, b, c) in [("this wasm", "(b)", "(c)"), ("baseline", "(b0)", "(c0)")] {
        let (Some(b), Some(c)) = (find(b), find(c)) else {
            continue;
        };
        let cell = |f: &dyn Fn(&Scenario) -> Option<f64>| match (f(c), f(b), read(f)) {
            (Some(c), Some(b), Some(r)) => format!(
                "{:+.3} | {}",
                (c - b) * 1e3,
                if r > 0.0 {
                    format!("{:.2}", (c - b) / r)
                } else {
                    "-".into()
                }
            ),
            _ => "- | -".into(),
        };
        let _ = writeln!(
            out,
            "| {build} | {} | {} | {} |",
            cell(&p50),
            cell(&mean),
            cell(&cpu)
        );
    }
    let _ = writeln!(
        out,
        "\nOne raw read: {} ms by p50, {} ms by mean service time, {} ms of CPU time.",
        read(&p50).map_or("-".into(), |r| format!("{:.3}", r * 1e3)),
        read(&mean).map_or("-".into(), |r| format!("{:.3}", r * 1e3)),
        read(&cpu).map_or("-".into(), |r| format!("{:.3}", r * 1e3)),
    );
    if let Some(v6) = find("(v6)") {
        let vars = |f: &dyn Fn(&Scenario) -> Option<f64>| match (f(v6), f(k0), read(f)) {
            (Some(v), Some(k), Some(r)) if r > 0.0 => {
                format!("{:+.3} ms, {:.2} reads", (v - k) * 1e3, (v - k) / r)
            }
            _ => "-".into(),
        };
        let _ = writeln!(
            out,
            "Six variable reads (v6 minus k0), as many as the token config adds: {} by p50, {} by \
             mean service time, {} by CPU time.",
            vars(&p50),
            vars(&mean),
            vars(&cpu)
        );
    }
    out
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / 1048576.0)
}

/// What the numbers were measured on and with.
fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, model)| model.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let profile = if cfg!(debug_assertions) {
        "dev profile (`BENCH_PROFILE=dev`): dependencies (wasmtime, hyper, tokio) at opt-level \
         1, the test host at opt-level 1, the rest of this workspace at opt-level 0"
    } else {
        "`bench-host` profile: everything at opt-level 3, no LTO, as Spin's release binaries"
    };
    format!(
        "Machine: {cores} cores ({cpu}), {}. Build: {profile}; the component itself is the \
         release `.wasm` (opt-level z, LTO), compiled by wasmtime's Cranelift. Client, host and \
         mocks share one process and one tokio runtime on 127.0.0.1.",
        std::env::consts::OS
    )
}
