#!/usr/bin/env bash
# Storage ingest benchmark: stage+commit of a 1 GiB stream against the machine's own
# hash+write ceiling, peak RSS, and small durable commits per second.
#
# Usage: bench/storage/run.sh [bytes] [reps]      (defaults: 1 GiB, 3 repetitions)
# Env:   CARGO_TARGET_DIR (default: target), BENCH_DIR (default: a fresh dir in /var/tmp)
#
# Each measurement runs in its own process (storage/examples/storage_bench.rs), so the peak
# RSS it reports (VmHWM) belongs to that measurement alone. Data is pseudo-random, seeded per
# run, so no run dedupes against another.
set -euo pipefail

BYTES=${1:-1073741824}
REPS=${2:-3}
SMALL=${SMALL:-5000}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
if [ -n "${BENCH_DIR:-}" ]; then
    WORK=$BENCH_DIR
    mkdir -p "$WORK"
else
    WORK=$(mktemp -d -p /var/tmp everlock-bench.XXXXXX)
    trap 'rm -rf "$WORK"' EXIT
fi

cd "$ROOT"
cargo build --release -q -p everlock-storage --example storage_bench -j "${JOBS:-1}"
BIN=$TARGET/release/examples/storage_bench

LOG=$WORK/results.txt
: > "$LOG"
run() {
    local dir
    dir=$(mktemp -d -p "$WORK")
    "$BIN" "$1" "$2" "$dir" | tee -a "$LOG"
    rm -rf "$dir"
}

echo "# $(date -u +%FT%TZ) $(nproc) cpus, $(uname -r), bytes=$BYTES reps=$REPS"
for rep in $(seq "$REPS"); do
    for mode in ceiling-inline ceiling-threaded ceiling-writeback stage; do
        run "$mode" "$BYTES"
    done
    for mode in small small-parallel small-sync; do
        run "$mode" "$SMALL"
    done
done

# Summary: median and best per mode, and stage as a share of each ceiling's median.
echo "# load average after the run: $(cut -d' ' -f1-3 /proc/loadavg)"
awk '
    { mode=""; rate=""; rss="";
      for (i = 1; i <= NF; i++) { split($i, kv, "=");
        if (kv[1] == "mode") mode = kv[2];
        if (kv[1] == "gb_per_sec" || kv[1] == "commits_per_sec") rate = kv[2];
        if (kv[1] == "peak_rss_kib") rss = kv[2]; }
      n[mode]++; v[mode, n[mode]] = rate; if (rss > maxrss[mode]) maxrss[mode] = rss }
    END {
      for (m in n) {
        for (i = 1; i <= n[m]; i++) for (j = i + 1; j <= n[m]; j++)
          if (v[m, j] < v[m, i]) { t = v[m, i]; v[m, i] = v[m, j]; v[m, j] = t }
        med[m] = (n[m] % 2) ? v[m, (n[m] + 1) / 2] : (v[m, n[m] / 2] + v[m, n[m] / 2 + 1]) / 2
        printf "summary mode=%s runs=%d median=%s best=%s peak_rss_mib=%.1f\n", m, n[m], med[m], v[m, n[m]], maxrss[m] / 1024
      }
      for (c in med) if (c ~ /^ceiling/ && med[c] > 0)
        printf "summary stage/%s = %.0f%%\n", c, 100 * med["stage"] / med[c]
    }' "$LOG" | sort
