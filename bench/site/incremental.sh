#!/usr/bin/env bash
# Incremental deploys (issue #16 item 5): a 256 MiB site (1,024 files of 256 KiB, random bytes,
# plus an index page), deployed once in full, then a one-byte change deployed incrementally
# and, for comparison, the next one-byte change with --full. Bytes are the server's own
# accounting (`received_bytes` of its reply, printed by the client as "bytes sent"); seconds
# are wall-clock for the whole client run (listing, hashing, asking, packing, uploading,
# committing).
# Needs: curl, python3, bc. Builds everlock with --release (unless EVERLOCK_BIN is set).
# Usage: bench/site/incremental.sh [files] [file-KiB]
set -euo pipefail
cd "$(dirname "$0")/../.."
FILES=${1:-1024}
KIB=${2:-256}
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

# EVERLOCK_BIN=<path> uses an existing release binary instead of building one.
if [ -n "${EVERLOCK_BIN:-}" ]; then
    BIN=$EVERLOCK_BIN
else
    cargo build --release -q -p everlock
    BIN=${CARGO_TARGET_DIR:-target}/release/everlock
fi

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
EVERLOCK_ADMIN_PASSWORD=bench-pw RUST_LOG=info "$BIN" serve --data-dir "$WORK/data" \
    --frontend-http-listen-http "127.0.0.1:$PORT" --frontend-http-listen-https off \
    >"$WORK/server.log" 2>&1 &
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT/" && break; sleep 0.1; done

SITE=$WORK/site
mkdir -p "$SITE/assets"
python3 - "$SITE" "$FILES" "$KIB" <<'PY'
import os, sys
root, files, kib = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(files):
    with open(os.path.join(root, "assets", f"file{i:05}.bin"), "wb") as f:
        f.write(os.urandom(kib * 1024))
with open(os.path.join(root, "index.html"), "w") as f:
    f.write("<h1>version 0</h1>\n")
PY
echo "Site: $(du -sb "$SITE" | cut -f1) bytes in $((FILES + 1)) files"

deploy() {
    local start end out
    start=$(date +%s.%N)
    out=$(echo bench-pw | "$BIN" site deploy "$SITE" --url "http://127.0.0.1:$PORT/" --user admin --password-stdin "$@")
    end=$(date +%s.%N)
    sent=$(echo "$out" | sed -n 's/.*(\([0-9]*\) bytes sent).*/\1/p')
    secs=$(echo "$end - $start" | bc)
    echo "$out" >&2
}
bump() { printf '<h1>version %s</h1>\n' "$1" >"$SITE/index.html"; }
# A one-byte change inside one of the large files too, so the changed content is not tiny.
poke() { printf '%s' "$1" | dd of="$SITE/assets/file00000.bin" bs=1 seek=100 count=1 conv=notrunc status=none; }

echo "| Deploy | Bytes received by the server | Seconds |"
echo "|---|---|---|"
deploy; echo "| first deploy (everything is new) | $sent | $secs |"
deploy; echo "| same content again | ${sent:-0} (nothing uploaded, no commit) | $secs |"
bump 1; deploy; echo "| one-byte change in index.html, incremental | $sent | $secs |"
bump 2; deploy --full; echo "| one-byte change in index.html, --full | $sent | $secs |"
poke A; deploy; echo "| one-byte change in a 256 KiB file, incremental | $sent | $secs |"
poke B; deploy --full; echo "| one-byte change in a 256 KiB file, --full | $sent | $secs |"
echo
echo "Server log lines:"
grep -o 'received_bytes=[0-9]*.*' "$WORK/server.log" | head -20
