#!/usr/bin/env bash
# Compressed small pages (issue #16 item 3): everlock compressing on the fly (once per content
# hash, then from its cache) against nginx serving a precompressed sidecar with gzip_static.
#   - the same ~4 KiB HTML page; nginx gets index.html.gz (gzip -9) beside it, everlock only
#     the page itself (no sidecar), so every everlock response goes through negotiation and
#     the compression cache;
#   - plain HTTP/1.1, wrk -t2 -c64 -d${DURATION}s, no access logs, Accept-Encoding: gzip (and
#     br for everlock, which nginx cannot do without a module).
# Needs: wrk, curl, nginx, bc. Builds everlock with --release (unless EVERLOCK_BIN is set).
# Usage: bench/site/compress.sh [duration-seconds]
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${1:-10}
WORK=$(mktemp -d)
chmod 755 "$WORK"  # nginx workers run as an unprivileged user
trap 'kill $(jobs -p) 2>/dev/null || true; nginx -c "$WORK/nginx.conf" -p "$WORK" -s stop 2>/dev/null || true; rm -rf "$WORK"' EXIT

# EVERLOCK_BIN=<path> uses an existing release binary instead of building one.
if [ -n "${EVERLOCK_BIN:-}" ]; then
    BIN=$EVERLOCK_BIN
else
    cargo build --release -q -p everlock
    BIN=${CARGO_TARGET_DIR:-target}/release/everlock
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
E_HTTP=$(free_port); N_HTTP=$(free_port)

SITE=$WORK/site
mkdir -p "$SITE"
{
    echo '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Bench page</title></head><body>'
    for i in $(seq 1 60); do echo "<p>Paragraph $i of a small static page served for the compression benchmark.</p>"; done
    echo '</body></html>'
} >"$SITE/index.html"
SIZE=$(stat -c %s "$SITE/index.html")

EVERLOCK_ADMIN_PASSWORD=bench-pw RUST_LOG=warn "$BIN" serve --data-dir "$WORK/data" \
    --frontend-http-listen-http "127.0.0.1:$E_HTTP" --frontend-http-listen-https off \
    >/dev/null 2>&1 &
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$E_HTTP/" && break; sleep 0.1; done
tar -czf "$WORK/site.tgz" -C "$SITE" .
curl -sf -u admin:bench-pw -T "$WORK/site.tgz" "http://127.0.0.1:$E_HTTP/.well-known/everlock/deploy" >/dev/null

# nginx's sidecar is made after the deploy, so everlock never sees it.
gzip -9 -k "$SITE/index.html"
cat >"$WORK/nginx.conf" <<NGINX
worker_processes auto;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile on;
    gzip_static on;
    gzip_vary on;
    include /etc/nginx/mime.types;
    server {
        listen 127.0.0.1:$N_HTTP;
        root $SITE;
    }
}
NGINX
nginx -c "$WORK/nginx.conf" -p "$WORK"
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$N_HTTP/" && break; sleep 0.1; done

# Sanity: both answer compressed, and everlock's body decompresses to the page.
for port in $E_HTTP $N_HTTP; do
    enc=$(curl -s -D - -o /dev/null -H 'Host: localhost' -H 'Accept-Encoding: gzip' "http://127.0.0.1:$port/" | tr -d '\r' | awk -F': ' 'tolower($1)=="content-encoding" {print $2}')
    [ "$enc" = gzip ] || { echo "port $port did not answer gzip" >&2; exit 1; }
done
curl -s -H 'Host: localhost' -H 'Accept-Encoding: gzip' "http://127.0.0.1:$E_HTTP/" | gunzip | cmp - "$SITE/index.html"

rps() { wrk -t2 -c64 -d"${DURATION}s" -H 'Host: localhost' -H "Accept-Encoding: $2" "$1" | awk '/Requests\/sec/ {print $2}'; }
echo "Page: $SIZE bytes; gzip -9 sidecar $(stat -c %s "$SITE/index.html.gz") bytes"
echo "| Accept-Encoding | everlock req/s (on the fly, cached) | nginx gzip_static req/s | everlock/nginx |"
echo "|---|---|---|---|"
wrk -t2 -c64 -d2s -H 'Host: localhost' -H 'Accept-Encoding: gzip' "http://127.0.0.1:$E_HTTP/" >/dev/null  # warm-up
for accept in gzip "gzip, deflate, br"; do
    ever=$(rps "http://127.0.0.1:$E_HTTP/" "$accept")
    ngx=$(rps "http://127.0.0.1:$N_HTTP/" "$accept")
    echo "| $accept | $ever | $ngx | $(echo "scale=2; $ever / $ngx" | bc) |"
done
