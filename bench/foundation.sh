#!/usr/bin/env bash
# Foundation benchmarks (a benchmark, not a test):
#   1. startup time of `everlock serve` with 1,000 configured instances, until the last
#      instance answers a request (target < 1 s);
#   2. hello-backend requests/s with wrk at 64 connections over plain HTTP, side by side with
#      nginx answering a fixed string from its config on the same machine.
# Usage: bench/foundation.sh   (needs wrk, curl and nginx: apt-get install wrk curl nginx-light)
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in wrk curl nginx; do
    command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install wrk curl nginx-light)"; exit 1; }
done
cargo build --release -q
BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/everlock
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
PORT=18080
TLSPORT=18443
NGINX_PORT=18081

now() { date +%s.%N; }

# --- 1. startup with 1,000 instances -------------------------------------------------------
CONF=$WORK/1000.toml
{
    echo "data-dir = \"$WORK/data\""
    echo "[frontend-http]"
    echo "listen-http = \"127.0.0.1:$PORT\""
    echo "listen-https = \"127.0.0.1:$TLSPORT\""
    for i in $(seq 1 1000); do
        echo "[backends.hello-http.instances.i$i]"
        echo "vhosts = [\"h$i.example\", \"alias$i.example\"]"
    done
} >"$CONF"
"$BIN" config check "$CONF"
# First start generates the TLS material; measure warm restarts like a real deployment.
"$BIN" serve --config "$CONF" 2>/dev/null & pid=$!
until curl -sf -o /dev/null -H 'Host: h1000.example' "http://127.0.0.1:$PORT/"; do sleep 0.01; done
kill -TERM $pid; wait $pid
times=()
for run in 1 2 3 4 5; do
    start=$(now)
    "$BIN" serve --config "$CONF" 2>/dev/null & pid=$!
    until curl -sf -o /dev/null -H 'Host: h1000.example' "http://127.0.0.1:$PORT/"; do sleep 0.002; done
    end=$(now)
    kill -TERM $pid; wait $pid
    times+=("$(echo "$end - $start" | bc)")
done
sorted=$(printf '%s\n' "${times[@]}" | sort -n)
echo "startup with 1000 instances (s, 5 runs): $(echo $sorted | tr '\n' ' ')"
echo "startup median: $(echo "$sorted" | sed -n 3p) s"

# --- 2. requests/s: hello-backend vs nginx ----------------------------------------------------
# Both servers run without access logs (nginx: access_log off; everlock: RUST_LOG=warn).
# hello has no zero-config instance (localhost/ is the site backend's welcome page), so
# configure one explicitly on localhost.
cat >"$WORK/hello.toml" <<HELLO
[backends.site-http]
enabled = false
[backends.hello-http.instances.main]
vhosts = ["localhost", "127.0.0.1"]
HELLO
RUST_LOG=warn "$BIN" serve --config "$WORK/hello.toml" --data-dir "$WORK/data" \
    --frontend-http-listen-http "127.0.0.1:$PORT" --frontend-http-listen-https off 2>/dev/null & pid=$!
until curl -sf -o /dev/null "http://127.0.0.1:$PORT/"; do sleep 0.01; done
body=$(curl -s "http://127.0.0.1:$PORT/")
mkdir -p "$WORK/nginx"
cat >"$WORK/nginx/nginx.conf" <<NGINX
worker_processes auto;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log;
events { worker_connections 1024; }
http {
    access_log off;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location = / { default_type text/plain; return 200 '$body'; }
    }
}
NGINX
nginx -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx"
sleep 0.3
rps() { wrk -t2 -c64 -d10s -H "Host: localhost" "$1" | awk '/Requests\/sec/ {print $2}'; }
wrk -t2 -c64 -d2s "http://127.0.0.1:$PORT/" >/dev/null  # warm-up
ever=$(rps "http://127.0.0.1:$PORT/")
ngx=$(rps "http://127.0.0.1:$NGINX_PORT/")
nginx -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" -s stop
kill -TERM $pid; wait $pid || true
echo "hello-backend: $ever req/s; nginx (return 200, same body): $ngx req/s; ratio everlock/nginx = $(echo "scale=2; $ever / $ngx" | bc)"
