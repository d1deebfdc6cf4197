#!/usr/bin/env bash
# Runs the proxy benchmark (bench/proxy_bench.rs) from the repository root and prints a markdown
# report, also written to target/bench-results.md. Arguments go to the bench:
#   bench/run.sh --requests 2000 --concurrency 8
# The host, mocks and client are built with the `bench-host` profile (Cargo.toml): opt-level 3
# without LTO, as Spin's own release binaries are, so the host's share of a request (instantiating,
# store setup, lifting and lowering) costs what it costs in Spin. Its first build compiles wasmtime
# once more (about 7 minutes on 2 cores). BENCH_PROFILE=dev reuses the tests' build instead
# (dependencies at opt-level 1): quicker to start, but it inflates the host's share.
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${BENCH_PROFILE:-bench-host}"
echo "bench: cargo profile ${profile}" >&2
exec cargo run --profile "$profile" --example proxy_bench -- "$@"
