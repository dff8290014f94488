#!/usr/bin/env bash
# Site backend throughput, side by side with nginx and caddy serving the same files:
#   - a small HTML page (index.html, ~1.2 KiB) and a 1 MiB asset (asset.bin),
#   - plain HTTP/1.1 and HTTPS (TLS 1.3, HTTP/1.1: wrk does not negotiate h2),
#   - wrk -t2 -c64 -d${DURATION}s, no access logs anywhere, same self-signed P-256 certificate
#     for nginx and caddy (everlock uses its own generated P-256 certificate).
# Needs: wrk, curl, nginx (nginx-light), caddy, openssl, tar. Builds everlock with --release.
# Usage: bench/site/run.sh [duration-seconds]
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${1:-10}
WORK=$(mktemp -d)
chmod 755 "$WORK"  # nginx workers run as an unprivileged user
trap 'kill $(jobs -p) 2>/dev/null || true; nginx -c "$WORK/nginx.conf" -p "$WORK" -s stop 2>/dev/null || true; rm -rf "$WORK"' EXIT

cargo build --release -q -p everlock
BIN=target/release/everlock
[ -n "${CARGO_TARGET_DIR:-}" ] && BIN=$CARGO_TARGET_DIR/release/everlock

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
E_HTTP=$(free_port); E_TLS=$(free_port); N_HTTP=$(free_port); N_TLS=$(free_port); C_HTTP=$(free_port); C_TLS=$(free_port)

# --- the files -------------------------------------------------------------------------------
SITE=$WORK/site
mkdir -p "$SITE"
{
    echo '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Bench page</title></head><body>'
    for i in $(seq 1 20); do echo "<p>Paragraph $i of a small static page served for the benchmark.</p>"; done
    echo '</body></html>'
} >"$SITE/index.html"
head -c 1048576 /dev/urandom >"$SITE/asset.bin"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost -days 2 -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null

# --- everlock: the zero-config welcome site (public), deployed with the site's files ---------
EVERLOCK_ADMIN_PASSWORD=bench-pw RUST_LOG=warn "$BIN" serve --data-dir "$WORK/data" \
    --frontend-http-listen-http "127.0.0.1:$E_HTTP" --frontend-http-listen-https "127.0.0.1:$E_TLS" \
    >/dev/null 2>&1 &
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$E_HTTP/" && break; sleep 0.1; done
tar -czf "$WORK/site.tgz" -C "$SITE" .
curl -sf -u admin:bench-pw -T "$WORK/site.tgz" "http://127.0.0.1:$E_HTTP/.well-known/everlock/deploy" >/dev/null

# --- nginx -----------------------------------------------------------------------------------
cat >"$WORK/nginx.conf" <<NGINX
worker_processes auto;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile on;
    include /etc/nginx/mime.types;
    server {
        listen 127.0.0.1:$N_HTTP;
        listen 127.0.0.1:$N_TLS ssl;
        ssl_certificate $WORK/cert.pem;
        ssl_certificate_key $WORK/key.pem;
        root $SITE;
    }
}
NGINX
nginx -c "$WORK/nginx.conf" -p "$WORK"

# --- caddy -----------------------------------------------------------------------------------
cat >"$WORK/Caddyfile" <<CADDY
{
    admin off
    auto_https off
    default_sni localhost
}
http://localhost:$C_HTTP {
    root * $SITE
    file_server
}
https://localhost:$C_TLS {
    tls $WORK/cert.pem $WORK/key.pem
    root * $SITE
    file_server
}
CADDY
XDG_DATA_HOME=$WORK XDG_CONFIG_HOME=$WORK caddy run --adapter caddyfile --config "$WORK/Caddyfile" >/dev/null 2>&1 &
for _ in $(seq 100); do curl -s -o /dev/null -H 'Host: localhost' "http://127.0.0.1:$C_HTTP/" && break; sleep 0.1; done

# --- sanity: every server returns the same bytes ---------------------------------------------
want=$(sha256sum <"$SITE/asset.bin")
for pair in "everlock http://127.0.0.1:$E_HTTP" "nginx http://127.0.0.1:$N_HTTP" "caddy http://127.0.0.1:$C_HTTP"; do
    set -- $pair
    got=$(curl -s -H 'Host: localhost' "$2/asset.bin" | sha256sum)
    [ "$got" = "$want" ] || { echo "wrong bytes from $1 ($2): $(curl -s -o /dev/null -w '%{http_code}' -H 'Host: localhost' "$2/asset.bin")" >&2; exit 1; }
done

rps() { wrk -t2 -c64 -d"${DURATION}s" -H 'Host: localhost' "$1" | awk '/Requests\/sec/ {print $2}'; }
echo "| File | Scheme | everlock req/s | nginx req/s | caddy req/s | everlock/nginx | everlock/caddy |"
echo "|---|---|---|---|---|---|---|"
for file in index.html asset.bin; do
    for scheme in http https; do
        if [ $scheme = http ]; then e=$E_HTTP; n=$N_HTTP; c=$C_HTTP; else e=$E_TLS; n=$N_TLS; c=$C_TLS; fi
        # 127.0.0.1 with a Host header: "localhost" may resolve to ::1 first, where nobody listens.
        wrk -t2 -c64 -d2s -H 'Host: localhost' "$scheme://127.0.0.1:$e/$file" >/dev/null  # warm-up
        ever=$(rps "$scheme://127.0.0.1:$e/$file")
        ngx=$(rps "$scheme://127.0.0.1:$n/$file")
        # Caddy listens on every address and needs a real SNI name (wrk sends the URL host).
        cdy=$(rps "$scheme://localhost:$c/$file")
        echo "| $file | $scheme | $ever | $ngx | $cdy | $(echo "scale=2; $ever / $ngx" | bc) | $(echo "scale=2; $ever / $cdy" | bc) |"
    done
done
