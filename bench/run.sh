#!/usr/bin/env bash
# Runs the proxy benchmark (bench/proxy_bench.rs) from the repository root and prints a markdown
# report, also written to target/bench-results.md. Arguments go to the bench:
#   bench/run.sh --requests 2000 --concurrency 8
# It uses cargo's dev profile, like `cargo test`, so it reuses the tests' build of wasmtime: in
# this workspace dependencies are built at opt-level 1 and our own crates at opt-level 0.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "bench: cargo dev profile (dependencies at opt-level 1, workspace crates at opt-level 0)" >&2
exec cargo run --example proxy_bench -- "$@"
