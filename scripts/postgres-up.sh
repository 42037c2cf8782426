#!/usr/bin/env bash
# Start a throw-away PostgreSQL 15 on 127.0.0.1 for the test suite (no systemd, nothing under /etc).
# After the verified recipe in shared/engines/postgres-up.sh. Auth is `trust` on loopback: tests only.
# Writes $ROOT/env.sh with ZHISUAN_TEST_PG_URL. Knobs: ZHISUAN_PG_ROOT (/tmp/zhisuan-pg), ZHISUAN_PG_PORT (5434).
set -euo pipefail
ROOT=${ZHISUAN_PG_ROOT:-/tmp/zhisuan-pg}
PORT=${ZHISUAN_PG_PORT:-5434}
BIN=/usr/lib/postgresql/15/bin
log() { printf '[postgres-up] %s\n' "$*"; }

bash "$(dirname "$0")/apt-ensure.sh" postgresql-15
mkdir -p "$ROOT/run"
chown postgres:postgres "$ROOT" "$ROOT/run"
if [[ ! -f $ROOT/data/PG_VERSION ]]; then
  runuser -u postgres -- "$BIN/initdb" -D "$ROOT/data" -U postgres --auth=trust --encoding=UTF8 \
    --locale=C.UTF-8 --no-sync --no-instructions >"$ROOT/initdb.log"
fi
if ! runuser -u postgres -- "$BIN/pg_ctl" -D "$ROOT/data" status >/dev/null 2>&1; then
  opts="-c listen_addresses=127.0.0.1 -c port=$PORT -c unix_socket_directories=$ROOT/run -c max_connections=100"
  opts+=" -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
  runuser -u postgres -- "$BIN/pg_ctl" -D "$ROOT/data" -l "$ROOT/postgres.log" -o "$opts" -w -t 60 start >/dev/null
fi
"$BIN/pg_isready" -h 127.0.0.1 -p "$PORT" -t 10 >/dev/null
echo "export ZHISUAN_TEST_PG_URL=postgresql+psycopg://postgres@127.0.0.1:$PORT/postgres" >"$ROOT/env.sh"
log "PostgreSQL $("$BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PORT"
