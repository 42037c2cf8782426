#!/usr/bin/env bash
# Start a single-node Ray head on loopback only, with fake accelerators as custom resources, after the
# verified recipe in shared/engines/ray-up.sh. Uses the Ray of the project's venv (pip install 'zhisuan[ray]').
# GCS 127.0.0.1:6390, dashboard/Jobs API 127.0.0.1:8275. Writes $ROOT/env.sh with RAY_ADDRESS (Jobs API) and
# ZHISUAN_RAY_CLIENT (the Ray Client address `zhisuan plan --ray` connects a driver to; Ray's default port).
# Knobs: ZHISUAN_RAY_ROOT (/tmp/zhisuan-ray), ZHISUAN_RAY_PY (.venv/bin/python), ZHISUAN_RAY_RESOURCES.
set -euo pipefail
ROOT=${ZHISUAN_RAY_ROOT:-/tmp/zhisuan-ray}
PY=${ZHISUAN_RAY_PY:-.venv/bin/python}
BIN=$(dirname "$PY")
RESOURCES=${ZHISUAN_RAY_RESOURCES:-'{"A100": 8, "910B": 8}'}
GCS_PORT=6390
DASH_PORT=8275
log() { printf '[ray-up] %s\n' "$*"; }
"$PY" -c "import ray.job_submission" 2>/dev/null || { echo "ray is not installed in $PY: pip install 'zhisuan[ray]'" >&2; exit 1; }
mkdir -p "$ROOT"
if [[ -f $ROOT/head.pid ]] && kill -0 "$(cat "$ROOT/head.pid")" 2>/dev/null; then
  log "head already running"
else
  # setsid: `ray start --block` leads a process group holding gcs_server, raylet, dashboard and workers,
  # so ray-down.sh can stop exactly these (never `ray stop`, which kills every Ray process by name).
  # Job entrypoints run `python` from the head's PATH: the venv goes first.
  # Ray turns --node-ip-address=127.0.0.1 into the machine's address and binds there (and on 0.0.0.0)
  # unless it believes it is a single-machine cluster: RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 says so, and
  # every server then listens on 127.0.0.1 only (checked with ss).
  PATH="$(cd "$BIN" && pwd):$PATH" RAY_USAGE_STATS_ENABLED=0 RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 setsid nohup "$BIN/ray" start --head --block \
    --node-ip-address=127.0.0.1 --port=$GCS_PORT --dashboard-host=127.0.0.1 --dashboard-port=$DASH_PORT \
    --include-dashboard=true --num-cpus=4 --num-gpus=0 --resources="$RESOURCES" \
    --object-store-memory=200000000 --temp-dir="$ROOT/tmp" --disable-usage-stats \
    </dev/null >"$ROOT/head.log" 2>&1 &
  echo $! >"$ROOT/head.pid"
fi
for ((i = 0; i < 300; i++)); do
  "$PY" - <<PYEOF 2>/dev/null && break
import urllib.request; urllib.request.urlopen("http://127.0.0.1:$DASH_PORT/api/version", timeout=1)
PYEOF
  kill -0 "$(cat "$ROOT/head.pid")" 2>/dev/null || { echo "ray head died, see $ROOT/head.log" >&2; tail -20 "$ROOT/head.log" >&2; exit 1; }
  sleep 0.2
done
# the dashboard answers before the head node has registered its resources: wait for the node too
for ((i = 0; i < 150; i++)); do
  "$PY" -c "from ray.util.state import list_nodes; import sys; sys.exit(not any(n.state == 'ALIVE' for n in list_nodes(address='http://127.0.0.1:$DASH_PORT')))" 2>/dev/null && break
  sleep 0.2
done
printf 'export RAY_ADDRESS=http://127.0.0.1:%s\nexport ZHISUAN_RAY_CLIENT=ray://127.0.0.1:10001\n' "$DASH_PORT" >"$ROOT/env.sh"
log "ray head up: RAY_ADDRESS=http://127.0.0.1:$DASH_PORT, resources $RESOURCES"
