#!/usr/bin/env bash
# Stop the test PostgreSQL from postgres-up.sh (pg_ctl signals only its own postmaster) and delete its data.
set -uo pipefail
ROOT=${ZHISUAN_PG_ROOT:-/tmp/zhisuan-pg}
BIN=/usr/lib/postgresql/15/bin
if [[ -f $ROOT/data/postmaster.pid ]]; then
  runuser -u postgres -- "$BIN/pg_ctl" -D "$ROOT/data" -m fast -w -t 30 stop >/dev/null
fi
rm -rf "$ROOT"
