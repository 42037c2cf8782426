#!/usr/bin/env bash
# Stop what slurm-up.sh started, by PID file only, and delete its state.
set -uo pipefail
ROOT=${ZHISUAN_SLURM_ROOT:-/tmp/zhisuan-slurm}
if [[ -f $ROOT/env.sh ]]; then
  # shellcheck disable=SC1091
  source "$ROOT/env.sh"
  scancel --partition=gpu 2>/dev/null
fi
for f in "$ROOT"/run/slurmd-*.pid "$ROOT/run/slurmctld.pid" "$ROOT/munge/munged.pid"; do
  [[ -f $f ]] || continue
  pid=$(cat "$f"); kill -TERM "$pid" 2>/dev/null
  for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  kill -KILL "$pid" 2>/dev/null
done
rm -rf "$ROOT"
