#!/usr/bin/env bash
# Scale-out, side by side on one SeaweedFS (S3) and one PostgreSQL 15, all on this machine:
#   - blob push (POST, one monolithic PUT ?digest=) and blob GET throughput of a SIZE blob:
#     Everlock with [storage] objects = "s3", meta = "postgres" against Debian's
#     `docker-registry` (distribution 2.8) with its S3 storage driver on the same bucket
#     (under another root directory); plain HTTP, auth on for both (Everlock: its users;
#     distribution: htpasswd, bcrypt);
#   - manifest GET requests/s: one Everlock node, then two nodes on the same storage with
#     wrk driving both at once (the sum), wrk -t2 -c64 -d${DURATION}s per node.
# Everlock hashes while staging, fsyncs its spool and publishes each object with a
# conditional create; distribution streams to S3 without either.
# Needs: curl, wrk, docker-registry, python3 (htpasswd from apache2-utils if present), bc,
#        PostgreSQL 15 (/usr/lib/postgresql/15/bin), SeaweedFS (weed; $WEED).
# Usage: bench/scaleout/run.sh [size-bytes] [reps] [wrk-seconds]   (defaults 64 MiB, 3, 10)
# Env:   BIN (default: a release build of everlock), WEED (default /opt/everlock-ci/venv/bin/weed).
set -euo pipefail
cd "$(dirname "$0")/../.."
SIZE=${1:-67108864}
REPS=${2:-3}
DURATION=${3:-10}
WEED=${WEED:-/opt/everlock-ci/venv/bin/weed}
PGBIN=/usr/lib/postgresql/15/bin
for need in curl wrk docker-registry python3 bc "$WEED" "$PGBIN/initdb"; do
    command -v "$need" >/dev/null || { echo "SKIP: $need is missing"; exit 0; }
done
WORK=$(mktemp -d -p /var/tmp everlock-scaleout.XXXXXX)
as_pg=()
if [ "$(id -u)" = 0 ]; then chown postgres: "$WORK"; chmod 0755 "$WORK"; as_pg=(runuser -u postgres --); fi
cleanup() {
    kill $(jobs -p) 2>/dev/null || true
    wait 2>/dev/null || true
    "${as_pg[@]}" "$PGBIN/pg_ctl" stop -D "$WORK/pg" -m immediate -w -s >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

if [ -z "${BIN:-}" ]; then
    cargo build --release -q -p everlock -j "${JOBS:-1}"
    BIN=${CARGO_TARGET_DIR:-target}/release/everlock
fi
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { # url log
    for _ in $(seq 600); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done
    echo "no answer from $1" >&2; tail -20 "$2" >&2; exit 1
}

# --- PostgreSQL 15, durable (fsync, synchronous_commit on) ------------------------------------
PG_PORT=$(free_port)
(cd "$WORK" && "${as_pg[@]}" "$PGBIN/initdb" -D "$WORK/pg" -U postgres -A trust -E UTF8 --locale=C --no-instructions >/dev/null)
(cd "$WORK" && "${as_pg[@]}" "$PGBIN/pg_ctl" start -D "$WORK/pg" -l "$WORK/pg.log" -w -s \
    -o "-p $PG_PORT -k $WORK -c listen_addresses=127.0.0.1 -c fsync=on -c synchronous_commit=on -c max_connections=200")
(cd "$WORK" && "${as_pg[@]}" "$PGBIN/createdb" -h "$WORK" -p "$PG_PORT" -U postgres everlock)

# --- SeaweedFS: master, volume, filer and S3 gateway in one process, every port explicit -------
AK=everlock-bench; SK=everlock-bench-secret; BUCKET=everlock
mkdir -p "$WORK/weed"
echo "{\"identities\":[{\"name\":\"bench\",\"credentials\":[{\"accessKey\":\"$AK\",\"secretKey\":\"$SK\"}],\"actions\":[\"Admin\",\"Read\",\"Write\",\"List\",\"Tagging\"]}]}" >"$WORK/s3.json"
M=$(free_port); MG=$(free_port); V=$(free_port); VG=$(free_port); F=$(free_port); FG=$(free_port); S3=$(free_port); S3G=$(free_port)
"$WEED" server -dir="$WORK/weed" -ip=127.0.0.1 -ip.bind=127.0.0.1 -master.telemetry=false \
    -master.port="$M" -master.port.grpc="$MG" -volume.port="$V" -volume.port.grpc="$VG" \
    -filer.port="$F" -filer.port.grpc="$FG" -s3 -s3.port="$S3" -s3.port.grpc="$S3G" \
    -s3.port.iceberg=0 -s3.port.lance=0 -s3.config="$WORK/s3.json" \
    -filer.localSocket="$WORK/filer.sock" -s3.localSocket="$WORK/s3.sock" \
    -master.volumeSizeLimitMB=256 -volume.max=0 -volume.preStopSeconds=0 >"$WORK/weed.log" 2>&1 &
wait_http "http://127.0.0.1:$S3/" "$WORK/weed.log"
for _ in $(seq 100); do
    echo "s3.bucket.create -name $BUCKET" | "$WEED" shell -master="127.0.0.1:$M.$MG" -filer="127.0.0.1:$F.$FG" 2>&1 |
        grep -q "created bucket" && break
    sleep 0.3
done

# --- Everlock nodes: one configuration, a data directory (spool) and ports each ----------------
USER=bench; PASS=bench-pw
node() { # name http-port
    cat >"$WORK/$1.toml" <<EOF
data-dir = "$WORK/$1"
[frontend-http]
listen-http = "127.0.0.1:$2"
listen-https = "off"
[frontend-ssh]
listen = "off"
[storage]
objects = "s3"
meta = "postgres"
[storage.s3]
endpoint = "http://127.0.0.1:$S3"
bucket = "$BUCKET"
prefix = "everlock"
access-key-id = "$AK"
allow-http = true
[storage.postgres]
url = "postgres://postgres@127.0.0.1:$PG_PORT/everlock"
EOF
    EVERLOCK_STORAGE_S3_SECRET_ACCESS_KEY=$SK EVERLOCK_ADMIN_PASSWORD=$PASS RUST_LOG=warn \
        "$BIN" serve --config "$WORK/$1.toml" --metrics-listen off >"$WORK/$1.log" 2>&1 &
    wait_http "http://localhost:$2/v2/" "$WORK/$1.log"
}
E1=$(free_port); E2=$(free_port); D=$(free_port)
node a "$E1"

# --- distribution with the S3 driver on the same bucket ----------------------------------------
if command -v htpasswd >/dev/null; then
    htpasswd -Bbc "$WORK/htpasswd" "$USER" "$PASS" >/dev/null
else
    # The same bcrypt cost htpasswd -B uses (5), from libcrypt.
    python3 -W ignore -c 'import crypt, sys; print(sys.argv[1] + ":" + crypt.crypt(sys.argv[2], crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=32)))' \
        "$USER" "$PASS" >"$WORK/htpasswd"
fi
cat >"$WORK/dist.yml" <<EOF
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage:
  s3: {accesskey: $AK, secretkey: $SK, region: us-east-1, regionendpoint: "http://127.0.0.1:$S3", bucket: $BUCKET, rootdirectory: /distribution, secure: false, v4auth: true, forcepathstyle: true}
  delete: {enabled: true}
  redirect: {disable: true}
http:
  addr: 127.0.0.1:$D
auth:
  htpasswd: {realm: basic-realm, path: $WORK/htpasswd}
EOF
# A custom CA bundle in the environment makes distribution's AWS SDK refuse its own transport;
# the endpoint is plain HTTP anyway.
env -u AWS_CA_BUNDLE docker-registry serve "$WORK/dist.yml" >"$WORK/dist.log" 2>&1 &
wait_http "http://127.0.0.1:$D/v2/" "$WORK/dist.log"

E_BASE="http://localhost:$E1"; E2_BASE="http://localhost:$E2"; D_BASE="http://127.0.0.1:$D"
creds() { case $1 in "$D_BASE") echo "$USER:$PASS" ;; *) echo "admin:$PASS" ;; esac; }
sha() { sha256sum "$1" | cut -d' ' -f1; }
upload() { # base repo file; prints seconds
    local base=$1 repo=$2 file=$3 d loc
    d=sha256:$(sha "$file")
    loc=$(curl -sf -u "$(creds "$base")" -X POST -D - -o /dev/null "$base/v2/$repo/blobs/uploads/" |
        awk 'tolower($1)=="location:" {print $2}' | tr -d '\r')
    case $loc in http*) ;; *) loc=$base$loc ;; esac
    case $loc in *\?*) loc="$loc&digest=$d" ;; *) loc="$loc?digest=$d" ;; esac
    curl -sf -u "$(creds "$base")" -X PUT -H 'Content-Type: application/octet-stream' \
        --data-binary "@$file" -o /dev/null -w '%{time_total}\n' "$loc"
}
download() { curl -sf -u "$(creds "$1")" -o /dev/null -w '%{speed_download}\n' "$1/v2/$2/blobs/$3"; }
mbps() { echo "scale=1; $SIZE / $1 / 1000000" | bc -l; }
median() { sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
ratio() { echo "scale=2; $1 / $2" | bc -l; }

echo "# $(date -u +%FT%TZ) $(nproc) cpus, size=$SIZE reps=$REPS wrk=${DURATION}s, bin=$BIN"
: >"$WORK/e_up"; : >"$WORK/d_up"; : >"$WORK/e_down"; : >"$WORK/d_down"
for rep in $(seq "$REPS"); do
    f=$WORK/blob$rep
    head -c "$SIZE" /dev/urandom >"$f"
    mbps "$(upload "$E_BASE" bench/app "$f")" >>"$WORK/e_up"
    mbps "$(upload "$D_BASE" bench/app "$f")" >>"$WORK/d_up"
    d=sha256:$(sha "$f")
    download "$E_BASE" bench/app "$d" | awk '{printf "%.1f\n", $1/1e6}' >>"$WORK/e_down"
    download "$D_BASE" bench/app "$d" | awk '{printf "%.1f\n", $1/1e6}' >>"$WORK/d_down"
    [ "$rep" = 1 ] || rm -f "$f"
done
E_UP=$(median <"$WORK/e_up"); D_UP=$(median <"$WORK/d_up")
E_DOWN=$(median <"$WORK/e_down"); D_DOWN=$(median <"$WORK/d_down")

# --- manifest GET req/s: one node, then two nodes on the same storage --------------------------
printf '{}' >"$WORK/cfg"
upload "$E_BASE" bench/app "$WORK/cfg" >/dev/null
CD=sha256:$(sha "$WORK/cfg")
MANIFEST="{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"$CD\",\"size\":2},\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"sha256:$(sha "$WORK/blob1")\",\"size\":$SIZE}]}"
curl -sf -u "admin:$PASS" -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
    --data-binary "$MANIFEST" -o /dev/null "$E_BASE/v2/bench/app/manifests/v1"
AUTH=$(printf '%s' "admin:$PASS" | base64 -w0)
rps() { # base seconds
    wrk -t2 -c64 -d"$2s" -H "Authorization: Basic $AUTH" \
        -H 'Accept: application/vnd.oci.image.manifest.v1+json' "$1/v2/bench/app/manifests/v1" |
        awk -v at="$1" '/Requests\/sec/ {print $2} /Non-2xx/ {print "NON-2xx from " at ":", $0 > "/dev/stderr"}'
}
rps "$E_BASE" 2 >/dev/null
ONE=$(rps "$E_BASE" "$DURATION")
node b "$E2"
echo "# node b answers the manifest with HTTP $(curl -s -o /dev/null -w '%{http_code}' -u "admin:$PASS" \
    -H 'Accept: application/vnd.oci.image.manifest.v1+json' "$E2_BASE/v2/bench/app/manifests/v1")"
rps "$E2_BASE" 2 >/dev/null
rps "$E_BASE" "$DURATION" >"$WORK/rps_a" &
RPS_A=$!
rps "$E2_BASE" "$DURATION" >"$WORK/rps_b"
wait "$RPS_A"
TWO_A=$(cat "$WORK/rps_a"); TWO_B=$(cat "$WORK/rps_b")
TWO=$(echo "$TWO_A + $TWO_B" | bc -l)

cat <<EOF
| Measurement (median of $REPS; one SeaweedFS, one PostgreSQL 15) | Everlock (s3+postgres) | distribution 2.8 (S3 driver) | Everlock / distribution |
|---|---|---|---|
| Monolithic PUT of $SIZE bytes, MB/s | $E_UP | $D_UP | $(ratio "$E_UP" "$D_UP") |
| Blob GET, MB/s | $E_DOWN | $D_DOWN | $(ratio "$E_DOWN" "$D_DOWN") |

| Manifest GET req/s (wrk -t2 -c64 -d${DURATION}s per node) | one node | two nodes (sum: $TWO_A + $TWO_B) | two / one |
|---|---|---|---|
| Everlock, s3+postgres | $ONE | $TWO | $(ratio "$TWO" "$ONE") |
# load average after the run: $(cut -d' ' -f1-3 /proc/loadavg)
EOF
