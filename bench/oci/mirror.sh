#!/usr/bin/env bash
# Pull-through mirror throughput (issue #15 item 1): a cold blob pull through an Everlock
# mirror (the blob is fetched from upstream and streamed to the client; the store takes the
# same bytes while it keeps up, and once it is 4 MiB behind reads the rest from upstream by a
# ranged GET after the client's transfer, then verifies, fsyncs and commits) against the
# same pull directly from the upstream, Debian's `docker-registry` (distribution 2.8), plain
# HTTP on loopback, no authentication upstream. Also the warm pull
# (served from the mirror's store) and the mirror's peak RSS, which stays far below SIZE
# because a blob is never held in memory.
# Needs: curl, docker-registry, python3, bc.
# Usage: bench/oci/mirror.sh [size-bytes] [reps]    (defaults 256 MiB, 3)
# Env:   BIN (an everlock binary to use instead of building `--release`),
#        CARGO_TARGET_DIR (default target), FEATURES (cargo features of the build).
set -euo pipefail
cd "$(dirname "$0")/../.."
SIZE=${1:-268435456}
REPS=${2:-3}
WORK=$(mktemp -d -p /var/tmp everlock-mirror-bench.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"' EXIT

if [ -z "${BIN:-}" ]; then
    FEATURES=${FEATURES:-backend-oci-http}
    cargo build --release -q -p everlock --no-default-features --features "$FEATURES" -j "${JOBS:-1}"
    BIN=${CARGO_TARGET_DIR:-target}/release/everlock
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
E_HTTP=$(free_port); E_TLS=$(free_port); D_HTTP=$(free_port)
PASS=bench-pw

# --- upstream: distribution, no auth, no access log ------------------------------------------
cat >"$WORK/dist.yml" <<EOF
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage:
  filesystem: {rootdirectory: $WORK/distribution}
http:
  addr: 127.0.0.1:$D_HTTP
EOF
docker-registry serve "$WORK/dist.yml" >"$WORK/dist.log" 2>&1 &
for _ in $(seq 200); do curl -s -o /dev/null "http://127.0.0.1:$D_HTTP/v2/" && break; sleep 0.05; done

# --- the mirror: the zero-config registry with an upstream ------------------------------------
cat >"$WORK/everlock.toml" <<EOF
[backends.oci-http.instances.default]
vhosts = ["localhost"]
prefix = "/v2"
store = "everlock-oci-local"
[backends.oci-http.instances.default.settings]
upstream = "http://127.0.0.1:$D_HTTP"
EOF
EVERLOCK_ADMIN_PASSWORD=$PASS RUST_LOG=warn "$BIN" serve --config "$WORK/everlock.toml" \
    --data-dir "$WORK/everlock" \
    --frontend-http-listen-http "127.0.0.1:$E_HTTP" --frontend-http-listen-https "127.0.0.1:$E_TLS" \
    --frontend-ssh-listen off >"$WORK/everlock.log" 2>&1 &
E_PID=$!
for _ in $(seq 200); do curl -s -o /dev/null "http://localhost:$E_HTTP/v2/" && break; sleep 0.05; done

D_BASE="http://127.0.0.1:$D_HTTP"; E_BASE="http://localhost:$E_HTTP"
sha() { sha256sum "$1" | cut -d' ' -f1; }
push_upstream() { # file repo; POST then one monolithic PUT
    local d loc
    d=sha256:$(sha "$1")
    loc=$(curl -sf -X POST -D - -o /dev/null "$D_BASE/v2/$2/blobs/uploads/" |
        awk 'tolower($1)=="location:" {print $2}' | tr -d '\r')
    case $loc in http*) ;; *) loc=$D_BASE$loc ;; esac
    case $loc in *\?*) loc="$loc&digest=$d" ;; *) loc="$loc?digest=$d" ;; esac
    curl -sf -X PUT -H 'Content-Type: application/octet-stream' --data-binary "@$1" -o /dev/null "$loc"
}
pull() { # url [user:pass]; prints bytes/s after checking the digest
    local url=$1 out=$WORK/pulled
    if [ -n "${2:-}" ]; then
        curl -sf -u "$2" -o "$out" -w '%{speed_download}\n' "$url"
    else
        curl -sf -o "$out" -w '%{speed_download}\n' "$url"
    fi
    [ "sha256:$(sha "$out")" = "${url##*/}" ] || { echo "digest mismatch for $url" >&2; exit 1; }
    rm -f "$out"
}
median() { sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
gb() { awk '{printf "%.3f", $1/1e9}'; }

echo "# $(date -u +%FT%TZ) $(nproc) cpus, size=$SIZE reps=$REPS, bin=$BIN"
: >"$WORK/direct"; : >"$WORK/cold"; : >"$WORK/warm"
for rep in $(seq "$REPS"); do
    # A fresh blob per repetition, so every mirror pull is cold.
    f=$WORK/blob$rep
    head -c "$SIZE" /dev/urandom >"$f"
    push_upstream "$f" bench/app
    d=sha256:$(sha "$f")
    rm -f "$f"
    sync
    pull "$D_BASE/v2/bench/app/blobs/$d" >>"$WORK/direct"
    pull "$E_BASE/v2/bench/app/blobs/$d" "admin:$PASS" >>"$WORK/cold"
    # The fetch commits the blob after the client's transfer, once the store has read what
    # it lacked from upstream: give it time, so the warm pull measures the store alone.
    sleep 2
    pull "$E_BASE/v2/bench/app/blobs/$d" "admin:$PASS" >>"$WORK/warm"
done
DIRECT=$(median <"$WORK/direct"); COLD=$(median <"$WORK/cold"); WARM=$(median <"$WORK/warm")
RSS=$(awk '/VmHWM/ {print $2}' "/proc/$E_PID/status")
echo "direct from upstream     $(echo "$DIRECT" | gb) GB/s"
echo "cold through the mirror  $(echo "$COLD" | gb) GB/s"
echo "ratio cold/direct        $(echo "scale=2; $COLD / $DIRECT" | bc -l)"
echo "warm from the mirror     $(echo "$WARM" | gb) GB/s"
echo "mirror peak RSS          $((RSS / 1024)) MiB (blob size $((SIZE / 1048576)) MiB)"
