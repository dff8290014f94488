#!/usr/bin/env bash
# OCI registry throughput, side by side with Debian's `docker-registry` (distribution 2.8) on
# the same machine, same data, auth on for both (Everlock: its users, Basic; distribution:
# htpasswd with bcrypt, which it checks on every request):
#   - monolithic upload (POST, then one PUT ?digest= with the whole blob) of a SIZE blob, plain
#     HTTP, against the machine's ingest ceiling measured in the same run (sha256 + write +
#     fdatasync of the same bytes, hashing in parallel with the write);
#   - blob GET throughput (the same blob);
#   - manifest GET requests/s, wrk -t2 -c64 -d${DURATION}s, plain HTTP;
#   - skopeo push and pull of an image whose one layer is SIZE bytes (gzip-framed, so skopeo
#     copies it as is), over HTTPS with the same certificate for both servers.
# Everlock fsyncs every blob and commit; distribution does not fsync at all.
# Needs: curl, wrk, skopeo, docker-registry, htpasswd (apache2-utils), gzip, python3.
# Usage: bench/oci/run.sh [size-bytes] [reps] [wrk-seconds]    (defaults 512 MiB, 3, 10)
# Env:   CARGO_TARGET_DIR (default target), FEATURES (cargo features of the build).
set -euo pipefail
cd "$(dirname "$0")/../.."
SIZE=${1:-536870912}
REPS=${2:-3}
DURATION=${3:-10}
WORK=$(mktemp -d -p /var/tmp everlock-oci-bench.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"' EXIT

FEATURES=${FEATURES:-backend-oci-http,backend-hello-http}
cargo build --release -q -p everlock --no-default-features --features "$FEATURES" -j "${JOBS:-1}"
BIN=${CARGO_TARGET_DIR:-target}/release/everlock

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
E_HTTP=$(free_port); E_TLS=$(free_port); D_HTTP=$(free_port); D_TLS=$(free_port)
USER=bench; PASS=bench-pw

# --- data: one fresh blob per repetition, so nothing dedupes across runs ---------------------
for rep in $(seq "$REPS"); do
    head -c "$SIZE" /dev/urandom >"$WORK/blob$rep"
done
sha() { sha256sum "$1" | cut -d' ' -f1; }

# --- everlock ----------------------------------------------------------------------------------
EVERLOCK_ADMIN_PASSWORD=$PASS RUST_LOG=warn "$BIN" serve --data-dir "$WORK/everlock" \
    --frontend-http-listen-http "127.0.0.1:$E_HTTP" --frontend-http-listen-https "127.0.0.1:$E_TLS" \
    --frontend-ssh-listen off >"$WORK/everlock.log" 2>&1 &
for _ in $(seq 200); do curl -s -o /dev/null "http://localhost:$E_HTTP/v2/" && break; sleep 0.05; done
E_USER=admin
TLS=$WORK/everlock/_host/tls

# --- distribution, with the certificate Everlock generated (same TLS cost on both) ----------
htpasswd -Bbc "$WORK/htpasswd" "$USER" "$PASS" >/dev/null
mk_dist_config() {
    cat <<EOF
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage:
  filesystem: {rootdirectory: $WORK/distribution-$1}
  delete: {enabled: true}
http:
  addr: 127.0.0.1:$2
$3
auth:
  htpasswd: {realm: basic-realm, path: $WORK/htpasswd}
EOF
}
CERT=$TLS/cert.pem
KEY=$TLS/key.pem
mk_dist_config http "$D_HTTP" "" >"$WORK/dist-http.yml"
mk_dist_config tls "$D_TLS" "  tls: {certificate: $CERT, key: $KEY}" >"$WORK/dist-tls.yml"
docker-registry serve "$WORK/dist-http.yml" >"$WORK/dist-http.log" 2>&1 &
docker-registry serve "$WORK/dist-tls.yml" >"$WORK/dist-tls.log" 2>&1 &
for _ in $(seq 200); do curl -s -o /dev/null "http://127.0.0.1:$D_HTTP/v2/" && break; sleep 0.05; done

E_BASE="http://localhost:$E_HTTP"; D_BASE="http://127.0.0.1:$D_HTTP"
creds() { if [ "$1" = "$E_BASE" ]; then echo "$E_USER:$PASS"; else echo "$USER:$PASS"; fi; }

# POST then one monolithic PUT; prints seconds.
upload() { # base repo file
    local base=$1 repo=$2 file=$3 d loc
    d=sha256:$(sha "$file")
    loc=$(curl -sf -u "$(creds "$base")" -X POST -D - -o /dev/null "$base/v2/$repo/blobs/uploads/" |
        awk 'tolower($1)=="location:" {print $2}' | tr -d '\r')
    case $loc in http*) ;; *) loc=$base$loc ;; esac
    case $loc in *\?*) loc="$loc&digest=$d" ;; *) loc="$loc?digest=$d" ;; esac
    curl -sf -u "$(creds "$base")" -X PUT -H 'Content-Type: application/octet-stream' \
        --data-binary "@$file" -o /dev/null -w '%{time_total}\n' "$loc"
}
download() { # base repo digest; prints bytes/s
    curl -sf -u "$(creds "$1")" -o /dev/null -w '%{speed_download}\n' "$1/v2/$2/blobs/$3"
}
ceiling() { # file; sha256 in parallel with write + fdatasync of the same bytes
    local start end
    start=$(date +%s.%N)
    sha256sum "$1" >/dev/null &
    dd if="$1" of="$WORK/ceiling.out" bs=4M conv=fdatasync status=none
    wait $!
    end=$(date +%s.%N)
    rm -f "$WORK/ceiling.out"
    echo "$end - $start" | bc -l
}
gbps() { echo "scale=3; $SIZE / $1 / 1000000000" | bc -l; }
median() { sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

echo "# $(date -u +%FT%TZ) $(nproc) cpus, size=$SIZE reps=$REPS wrk=${DURATION}s"
: >"$WORK/e_up"; : >"$WORK/d_up"; : >"$WORK/ceil"; : >"$WORK/e_down"; : >"$WORK/d_down"
for rep in $(seq "$REPS"); do
    f=$WORK/blob$rep
    sync
    gbps "$(ceiling "$f")" >>"$WORK/ceil"
    gbps "$(upload "$E_BASE" bench/app "$f")" >>"$WORK/e_up"
    gbps "$(upload "$D_BASE" bench/app "$f")" >>"$WORK/d_up"
    d=sha256:$(sha "$f")
    download "$E_BASE" bench/app "$d" >>"$WORK/e_down"
    download "$D_BASE" bench/app "$d" >>"$WORK/d_down"
done
CEIL=$(median <"$WORK/ceil"); E_UP=$(median <"$WORK/e_up"); D_UP=$(median <"$WORK/d_up")
E_DOWN=$(median <"$WORK/e_down" | awk '{printf "%.3f", $1/1e9}')
D_DOWN=$(median <"$WORK/d_down" | awk '{printf "%.3f", $1/1e9}')

# --- manifest GET requests/s -------------------------------------------------------------------
push_manifest() { # base
    local base=$1 cfg='{}' cd md manifest
    cd=sha256:$(printf '%s' "$cfg" | sha256sum | cut -d' ' -f1)
    printf '%s' "$cfg" >"$WORK/cfg"
    upload "$base" bench/app "$WORK/cfg" >/dev/null
    manifest="{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"$cd\",\"size\":2},\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"sha256:$(sha "$WORK/blob1")\",\"size\":$SIZE}]}"
    curl -sf -u "$(creds "$base")" -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
        --data-binary "$manifest" -o /dev/null "$base/v2/bench/app/manifests/v1"
}
push_manifest "$E_BASE"; push_manifest "$D_BASE"
rps() { # base
    local auth
    auth=$(printf '%s' "$(creds "$1")" | base64 -w0)
    wrk -t2 -c64 -d2s -H "Authorization: Basic $auth" "$1/v2/bench/app/manifests/v1" >/dev/null
    wrk -t2 -c64 -d"${DURATION}s" -H "Authorization: Basic $auth" \
        -H 'Accept: application/vnd.oci.image.manifest.v1+json' "$1/v2/bench/app/manifests/v1" |
        awk '/Requests\/sec/ {print $2} /Non-2xx/ {print "NON-2xx:", $0 > "/dev/stderr"}'
}
E_RPS=$(rps "$E_BASE"); D_RPS=$(rps "$D_BASE")

# --- skopeo push and pull of a SIZE-layer image over HTTPS --------------------------------------
# One layout per repetition with its own layer, so skopeo never mounts a blob it pushed before.
layout() { # rep; writes $WORK/layout$rep, prints the layer size
    local L=$WORK/layout$1 LD LS CFG CD M MD MS
    mkdir -p "$L/blobs/sha256"
    gzip -1 -c "$WORK/blob$1" >"$WORK/layer.gz"
    LD=$(sha "$WORK/layer.gz"); mv "$WORK/layer.gz" "$L/blobs/sha256/$LD"
    LS=$(stat -c %s "$L/blobs/sha256/$LD")
    CFG="{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"sha256:$(sha "$WORK/blob$1")\"]}}"
    printf '%s' "$CFG" >"$WORK/c"; CD=$(sha "$WORK/c"); mv "$WORK/c" "$L/blobs/sha256/$CD"
    M="{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"sha256:$CD\",\"size\":${#CFG}},\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:$LD\",\"size\":$LS}]}"
    printf '%s' "$M" >"$WORK/m"; MD=$(sha "$WORK/m"); MS=$(stat -c %s "$WORK/m"); mv "$WORK/m" "$L/blobs/sha256/$MD"
    echo '{"imageLayoutVersion":"1.0.0"}' >"$L/oci-layout"
    echo "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"sha256:$MD\",\"size\":$MS,\"annotations\":{\"org.opencontainers.image.ref.name\":\"v1\"}}]}" >"$L/index.json"
    echo "$LS"
}
mkdir -p "$WORK/certs"; cp "$TLS/ca.pem" "$WORK/certs/ca.crt"
echo '{"default":[{"type":"insecureAcceptAnything"}]}' >"$WORK/policy.json"
skopeo_time() { # command...
    local start end
    # containers/image remembers where it saw each blob and would mount instead of uploading.
    rm -rf /var/lib/containers/cache/blob-info-cache-v1.boltdb "$WORK/.local/share/containers/cache"
    start=$(date +%s.%N)
    HOME=$WORK skopeo --policy "$WORK/policy.json" "$@" >/dev/null
    end=$(date +%s.%N)
    echo "$end - $start" | bc -l
}
: >"$WORK/e_push"; : >"$WORK/d_push"; : >"$WORK/e_pull"; : >"$WORK/d_pull"
for rep in $(seq "$REPS"); do
    LS=$(layout "$rep")
    for s in e d; do
        if [ $s = e ]; then host=localhost:$E_TLS; c=$E_USER:$PASS; else host=localhost:$D_TLS; c=$USER:$PASS; fi
        gbps "$(skopeo_time copy --dest-cert-dir "$WORK/certs" --dest-creds "$c" "oci:$WORK/layout$rep:v1" "docker://$host/bench/img$rep:v1")" >>"$WORK/${s}_push"
        rm -rf "$WORK/pulled"
        gbps "$(skopeo_time copy --src-cert-dir "$WORK/certs" --src-creds "$c" "docker://$host/bench/img$rep:v1" "oci:$WORK/pulled:v1")" >>"$WORK/${s}_pull"
    done
    rm -rf "$WORK/layout$rep"
done
E_PUSH=$(median <"$WORK/e_push"); D_PUSH=$(median <"$WORK/d_push")
E_PULL=$(median <"$WORK/e_pull"); D_PULL=$(median <"$WORK/d_pull")

ratio() { echo "scale=2; $1 / $2" | bc -l; }
cat <<EOF
| Measurement (median of $REPS) | Everlock | distribution 2.8 | Everlock / distribution |
|---|---|---|---|
| Monolithic PUT of $SIZE bytes, GB/s | $E_UP | $D_UP | $(ratio "$E_UP" "$D_UP") |
| Blob GET, GB/s | $E_DOWN | $D_DOWN | $(ratio "$E_DOWN" "$D_DOWN") |
| Manifest GET, req/s (wrk -t2 -c64 -d${DURATION}s) | $E_RPS | $D_RPS | $(ratio "$E_RPS" "$D_RPS") |
| skopeo push, GB/s (layer of $LS bytes, HTTPS) | $E_PUSH | $D_PUSH | $(ratio "$E_PUSH" "$D_PUSH") |
| skopeo pull, GB/s | $E_PULL | $D_PULL | $(ratio "$E_PULL" "$D_PULL") |

Ingest ceiling (sha256 in parallel with write + fdatasync of the same bytes): $CEIL GB/s;
Everlock's monolithic PUT reaches $(ratio "$E_UP" "$CEIL") of it.
# load average after the run: $(cut -d' ' -f1-3 /proc/loadavg)
EOF
