#!/usr/bin/env bash
# The cost of metrics on the hot path (a benchmark, not a test): small-file requests/s of the
# zero-config welcome site (a 2 KiB static page) with `wrk`, the server run alternately
# without the metrics listener (`--metrics-listen off`: request metrics are not recorded at
# all) and with it (every request counted and timed, `/metrics` scraped every second during
# the run). Access logs are off in both (RUST_LOG=warn) so only the metrics differ.
# Usage: bench/metrics/run.sh [seconds per run, default 10] [repetitions, default 3]
#        (needs wrk and curl: apt-get install wrk curl)
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS=${1:-10}
REPS=${2:-3}
for tool in wrk curl; do
    command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install wrk curl)"; exit 1; }
done
cargo build --release -q
BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/everlock
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
PORT=18280
METRICS_PORT=18264

# One run: start the server with `metrics` (`off` or an address), wrk for $SECS seconds,
# scraping meanwhile when metrics are on; prints requests/s.
run() {
    local metrics=$1
    RUST_LOG=warn EVERLOCK_ADMIN_PASSWORD=bench "$BIN" serve --data-dir "$WORK/data" \
        --frontend-http-listen-http "127.0.0.1:$PORT" --frontend-http-listen-https off \
        --frontend-ssh-listen off --metrics-listen "$metrics" >/dev/null 2>&1 &
    local pid=$!
    until curl -sf -o /dev/null -H 'Host: localhost' "http://127.0.0.1:$PORT/"; do sleep 0.01; done
    wrk -t1 -c32 -d1s -H 'Host: localhost' "http://127.0.0.1:$PORT/" >/dev/null # warm-up
    local scraper=
    if [ "$metrics" != off ]; then
        # Bounded: one scrape a second, at most the run's length plus a margin.
        (for _ in $(seq 1 $((SECS + 2))); do
            curl -sf -o /dev/null "http://$metrics/metrics" || true
            sleep 1
        done) &
        scraper=$!
    fi
    wrk -t1 -c32 -d"${SECS}s" -H 'Host: localhost' "http://127.0.0.1:$PORT/" |
        awk '/Requests\/sec/ {print $2}'
    if [ -n "$scraper" ]; then
        kill "$scraper" 2>/dev/null || true
        wait "$scraper" 2>/dev/null || true
    fi
    kill -TERM "$pid"
    wait "$pid" || true
}

off=()
on=()
for rep in $(seq 1 "$REPS"); do
    # Alternate, so a neighbour's load hits both sides alike.
    off+=("$(run off)")
    on+=("$(run "127.0.0.1:$METRICS_PORT")")
    echo "repetition $rep: without metrics ${off[-1]} req/s, with metrics ${on[-1]} req/s"
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
m_off=$(median "${off[@]}")
m_on=$(median "${on[@]}")
echo "median without metrics: $m_off req/s; with metrics (scraped every second): $m_on req/s"
echo "ratio with/without = $(awk -v a="$m_on" -v b="$m_off" 'BEGIN {printf "%.3f", a / b}')"
