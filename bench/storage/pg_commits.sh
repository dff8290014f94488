#!/usr/bin/env bash
# Small durable commits per second: PostgreSQL 15 with fsync and synchronous_commit on (a
# private server started here, as durable as a production one on this disk) against SQLite
# with synchronous=FULL in a temporary directory, 1 and 8 committers, through the metadata
# interface (`postgres::tests::bench_small_commits`). Prints one line per engine and count.
#
#   bench/storage/pg_commits.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=/usr/lib/postgresql/15/bin
[ -x "$BIN/initdb" ] || { echo "SKIP: $BIN/initdb is missing (Debian package postgresql)"; exit 0; }
dir=$(mktemp -d /tmp/everlock-pgbench-XXXXXX)
as_pg=()
if [ "$(id -u)" = 0 ]; then
    chown postgres: "$dir"
    as_pg=(runuser -u postgres --)
fi
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
stop() {
    "${as_pg[@]}" "$BIN/pg_ctl" stop -D "$dir/data" -m fast -w -s >/dev/null 2>&1 || true
    rm -rf "$dir"
}
trap stop EXIT
(cd "$dir" && "${as_pg[@]}" "$BIN/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C --no-instructions >/dev/null)
(cd "$dir" && "${as_pg[@]}" "$BIN/pg_ctl" start -D "$dir/data" -l "$dir/server.log" -w -s \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=on -c synchronous_commit=on")
(cd "$dir" && "${as_pg[@]}" "$BIN/createdb" -h "$dir" -p "$port" -U postgres everlock)
EVERLOCK_BENCH_PG_URL="postgres://postgres@127.0.0.1:$port/everlock" \
    cargo test -q -p everlock-storage --lib postgres::tests::bench -- --ignored --nocapture 2>&1 \
    | grep 'commits/s'
