#!/usr/bin/env bash
# Stop the head ray-up.sh started: SIGTERM to its `ray start --block` leader, then its process group.
set -uo pipefail
ROOT=${ZHISUAN_RAY_ROOT:-/tmp/zhisuan-ray}
if [[ -f $ROOT/head.pid ]]; then
  pid=$(cat "$ROOT/head.pid")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for ((i = 0; i < 75; i++)); do pgrep -g "$pid" >/dev/null || break; sleep 0.2; done
    pgrep -g "$pid" >/dev/null && kill -TERM -- "-$pid" 2>/dev/null && sleep 2
    pgrep -g "$pid" >/dev/null && kill -KILL -- "-$pid" 2>/dev/null
  fi
fi
rm -rf "$ROOT"
