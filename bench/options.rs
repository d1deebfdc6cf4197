//! The bench's command line: what to run and how hard, parsed into [`Options`] with bounds that
//! keep a mistyped argument from running for hours. It only parses; `proxy_bench.rs` runs.

use std::path::PathBuf;
use std::sync::atomic::Ordering;

use anyhow::{bail, Context, Result};

use crate::app;

/// Upper bounds. The mock upstream records every request it gets, so the count is kept moderate.
const MAX_REQUESTS: usize = 100_000;
const MAX_CONCURRENCY: usize = 256;
const MAX_ROUNDS: usize = 20;

pub const USAGE: &str = "usage: proxy_bench [--requests N] [--concurrency C] [--rounds R] [--baseline-wasm PATH] [--access-log on|off] [--spin4 on|off] [--nagle on|off] [--only LABELS] [--burst N]
  --requests N            requests per load scenario (default 2000, at most 100000)
  --concurrency C         keep-alive connections sending at once (default 8, at most 256)
  --rounds R              split each scenario's requests into R rounds run round-robin over all
                          scenarios, so a change in the machine's load hits every scenario alike
                          (default 1, at most 20)
  --access-log on|off     the proxies' access_log variable (default on, as in the product)
  --spin4 on|off          also build the Spin 4 build (wasm32-wasip2, WASIp3) and run (b) and (c)
                          on it as (b4) and (c4), interleaved, with Spin 4's instance reuse
                          defaults (default on)
  --nagle on|off          keep Nagle's algorithm on the hosts' accepted connections (default off,
                          as the test host: see HostOptions::nagle)
  --baseline-wasm PATH    also run (b) and (c) against this credential_proxy.wasm (e.g. an older
                          commit's build), interleaved with the current one, in the same run
  --only LABELS           run only these load scenarios, by label without the brackets and
                          comma-separated (e.g. --only c,c4); for profiling one scenario
  --burst N               instead of the usual scenarios, only the cold-cache burst: N requests at
                          concurrency C to a fresh proxy with the token flow on (bench/burst.rs)";

pub struct Options {
    pub requests: usize,
    pub concurrency: usize,
    pub rounds: usize,
    pub baseline_wasm: Option<PathBuf>,
    /// Run the Spin 4 build's scenarios (b4) and (c4).
    pub spin4: bool,
    /// Requests of the cold-cache burst; 0 runs the usual scenarios instead.
    pub burst: usize,
    /// Labels of the load scenarios to run (`c4` for "(c4)"); empty runs them all.
    pub only: Vec<String>,
}

impl Options {
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Options> {
        let mut options = Options {
            requests: 2000,
            concurrency: 8,
            rounds: 1,
            baseline_wasm: None,
            spin4: true,
            burst: 0,
            only: Vec::new(),
        };
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let (name, inline) = match arg.split_once('=') {
                Some((name, value)) => (name.to_string(), Some(value.to_string())),
                None => (arg, None),
            };
            if name == "--access-log" || name == "--spin4" || name == "--nagle" {
                let on = match inline.or_else(|| args.next()).as_deref() {
                    Some("on") => true,
                    Some("off") => false,
                    other => bail!("{name} takes on or off, not {other:?}"),
                };
                if name == "--spin4" {
                    options.spin4 = on;
                } else if name == "--nagle" {
                    app::NAGLE.store(on, Ordering::Relaxed);
                } else {
                    app::ACCESS_LOG_OFF.store(!on, Ordering::Relaxed);
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
            if name == "--only" {
                let labels = inline
                    .or_else(|| args.next())
                    .with_context(|| format!("{name} needs scenario labels"))?;
                options.only = labels
                    .split(',')
                    .map(|l| bare(l.trim()).to_string())
                    .filter(|l| !l.is_empty())
                    .collect();
                if options.only.is_empty() {
                    bail!("{name} needs at least one scenario label, such as c4");
                }
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
        if options.burst > 0 && !options.only.is_empty() {
            bail!("--only chooses load scenarios; --burst runs none of them");
        }
        Ok(options)
    }

    /// Whether the load scenario labelled `label` ("(c4)") is to run.
    pub fn runs(&self, label: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|l| l == bare(label))
    }

    /// The first `--only` label that names none of `labels` ("(c4)", ...), if any.
    pub fn unknown_only<'a>(&'a self, labels: &[&str]) -> Option<&'a str> {
        self.only
            .iter()
            .find(|l| !labels.iter().any(|label| bare(label) == l.as_str()))
            .map(String::as_str)
    }

    /// Warm-up requests per scenario, not counted: a few per connection.
    pub fn warmup(&self) -> usize {
        (self.concurrency * 5).min(self.requests)
    }
}

/// A scenario label without its brackets: "(c4)" -> "c4".
fn bare(label: &str) -> &str {
    label.trim_matches(['(', ')'])
}
