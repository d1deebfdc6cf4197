//! `spin-test-host` binary: `spin up` for this machine, for curl, load generators and a browser.
//!
//! ```text
//! spin-test-host --manifest spin.toml [--listen 127.0.0.1:3000] [--state-dir .spin-test-host]
//!                [--variable name=value]... [--runtime-config-file FILE] [--wasm-dir DIR] [--build]
//!                [--max-instance-reuse-count N] [--max-instance-concurrent-reuse-count N]
//!                [--nagle]
//! ```
//! `--build` compiles the wasm first (as `spin build`) and loads components from that build.
//! It only parses arguments and prints what `spin up` prints; the host is the library.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use spin_test_host::{build_wasm, HostOptions, SpinHost};

const USAGE: &str = "usage: spin-test-host --manifest spin.toml [--listen 127.0.0.1:3000] \
[--state-dir .spin-test-host] [--variable name=value]... [--runtime-config-file FILE] \
[--wasm-dir DIR] [--build] [--max-instance-reuse-count N] \
[--max-instance-concurrent-reuse-count N] [--nagle]";

struct Args {
    opts: HostOptions,
    listen: SocketAddr,
    build: bool,
}

fn parse_args() -> Result<Args> {
    let mut manifest = PathBuf::from("spin.toml");
    let mut listen: SocketAddr = "127.0.0.1:3000".parse()?;
    let mut state_dir = PathBuf::from(".spin-test-host");
    let mut variables = Vec::new();
    let mut wasm_dir = None;
    let mut runtime_config = None;
    let mut build = false;
    let mut nagle = false;
    let mut reuse = None;
    let mut concurrent_reuse = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().with_context(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--manifest" | "-f" => manifest = value("--manifest")?.into(),
            "--listen" => listen = value("--listen")?.parse().context("bad --listen")?,
            "--state-dir" => state_dir = value("--state-dir")?.into(),
            "--wasm-dir" => wasm_dir = Some(PathBuf::from(value("--wasm-dir")?)),
            "--runtime-config-file" => {
                runtime_config = Some(PathBuf::from(value("--runtime-config-file")?))
            }
            "--variable" => {
                let v = value("--variable")?;
                let (k, val) = v.split_once('=').context("--variable wants name=value")?;
                variables.push((k.to_string(), val.to_string()));
            }
            "--build" => build = true,
            // Keep Nagle's algorithm on accepted connections (HostOptions::nagle).
            "--nagle" => nagle = true,
            "--max-instance-reuse-count" => {
                let n = value("--max-instance-reuse-count")?;
                reuse = Some(n.parse().context("bad --max-instance-reuse-count")?);
            }
            "--max-instance-concurrent-reuse-count" => {
                let n = value("--max-instance-concurrent-reuse-count")?;
                concurrent_reuse = Some(
                    n.parse()
                        .context("bad --max-instance-concurrent-reuse-count")?,
                );
            }
            "--help" | "-h" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    if !listen.ip().is_loopback() {
        bail!("--listen must be a loopback address (127.0.0.1 / ::1)");
    }
    let mut opts = HostOptions::new(manifest, state_dir);
    opts.variables = variables;
    opts.wasm_dir = wasm_dir;
    opts.runtime_config = runtime_config;
    opts = opts.nagle(nagle);
    if let Some(n) = reuse {
        opts = opts.max_instance_reuse_count(n);
    }
    if let Some(n) = concurrent_reuse {
        opts = opts.max_instance_concurrent_reuse_count(n);
    }
    Ok(Args {
        opts,
        listen,
        build,
    })
}

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = parse_args()?;
    if args.build {
        args.opts.wasm_dir = Some(build_wasm()?);
    }
    let host = SpinHost::start_on(args.opts, args.listen).await?;
    println!("\nServing {}", host.url(""));
    println!("Available Routes:");
    for (component, route) in host.routes() {
        println!("  {component}: {}", host.url(&route));
    }
    tokio::signal::ctrl_c().await?;
    host.shutdown().await;
    Ok(())
}
