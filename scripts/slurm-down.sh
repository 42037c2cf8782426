#!/usr/bin/env bash
# Stop what slurm-up.sh started, by PID file only (never by process name), and delete its state.
set -uo pipefail
ROOT=${ZHISUAN_SLURM_ROOT:-/tmp/zhisuan-slurm}
stop() {  # stop <pidfile>...: SIGTERM, wait up to 10 s, SIGKILL
  local f pid i
  for f in "$@"; do
    [[ -f $f ]] || continue
    pid=$(cat "$f"); kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null
  done
}
for R in "$ROOT"/*/; do
  R=${R%/}
  [[ -f $R/etc/slurm.conf ]] || continue
  alive=$(cat "$R/run/slurmctld.pid" 2>/dev/null)
  [[ -n $alive ]] && kill -0 "$alive" 2>/dev/null && SLURM_CONF=$R/etc/slurm.conf timeout 10 scancel --partition=gpu 2>/dev/null
  stop "$R"/run/slurmd-*.pid
  stop "$R/run/slurmctld.pid"
done
stop "$ROOT/dbd/slurmdbd.pid" "$ROOT/mysql/mariadbd.pid" "$ROOT/munge/munged.pid"
[[ -f $ROOT/port-offset && $(cat "$ROOT/port-offset") != 0 ]] || bash "$(dirname "$0")/wan-down.sh" alpha beta
rm -rf "$ROOT"
