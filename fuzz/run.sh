#!/usr/bin/env bash
# Runs every fuzz target for a fixed number of executions, one after another, each in one
# process on one core (no -jobs/-workers, which would fork and log elsewhere):
#   fuzz/run.sh                 # 10,000,000 runs per target
#   fuzz/run.sh 100000          # a quick pass
#   fuzz/run.sh 10000000 scrub  # one target
# Needs nightly and cargo-fuzz (`rustup toolchain install nightly`, `cargo install cargo-fuzz`).
# Builds with debug assertions (overflow checks) and no sanitizer: the core is safe Rust, and
# the point is logic (panics, violated properties), so the faster build gets more executions.
# Corpora grow in fuzz/corpus/<target> (git-ignored; fuzz/seeds/<target> is the committed seed
# set); a crash lands in fuzz/artifacts/<target> and stops the run with a non-zero status.
set -euo pipefail
cd "$(dirname "$0")"
runs="${1:-10000000}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(path_url routes token_reply scrub config)
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/../target/fuzz}"
cargo +nightly fuzz build -O -a -s none
for target in "${targets[@]}"; do
    mkdir -p "corpus/$target"
    seeds=()
    if [ -d "seeds/$target" ]; then seeds=("seeds/$target"); fi
    echo "== $target: $runs runs" >&2
    start=$(date +%s)
    log="$CARGO_TARGET_DIR/$target.log"
    status=0
    cargo +nightly fuzz run -O -a -s none "$target" "corpus/$target" "${seeds[@]}" -- \
        -runs="$runs" -max_len=4096 -print_final_stats=1 >"$log" 2>&1 ||
        status=$?
    grep -E "^(stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb)|panicked|SUMMARY|Test unit written" "$log" || true
    echo "== $target: exit $status after $(( $(date +%s) - start )) s (log: $log)" >&2
    if [ "$status" -ne 0 ]; then exit "$status"; fi
done
