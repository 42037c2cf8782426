#!/usr/bin/env bash
# time-install.sh: how long a locked install of .venv takes against an unlocked one (`pip install -e '.[dev]'`,
# whatever the index serves today), each into a fresh virtualenv with an empty pip cache of its own, and
# whether the two agree. Prints the lock's size, both times and the packages on which they differ.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d /tmp/zhisuan-install.XXXXXX)
trap 'rm -rf "$work"' EXIT
run() {  # run NAME CMD...: time CMD in $work/NAME's venv with its own cold cache
  local name=$1; shift
  python3 -m venv "$work/$name"
  local t0; t0=$(date +%s.%N)
  PIP_CACHE_DIR="$work/cache-$name" VENV="$work/$name" bash -c "$*" >/dev/null
  python3 -c "import sys; print(float(sys.argv[1]) - float(sys.argv[2]))" "$(date +%s.%N)" "$t0"
}
locked=$(run locked '"$VENV/bin/pip" install -q --require-hashes --no-deps -r locks/pip.txt &&
  "$VENV/bin/pip" install -q --require-hashes --no-deps -r locks/zhisuan.txt &&
  "$VENV/bin/pip" install -q --no-deps --no-build-isolation -e .')
unlocked=$(run unlocked '"$VENV/bin/pip" install -q --upgrade pip && "$VENV/bin/pip" install -q -e ".[dev]"')
freeze() { "$work/$1/bin/pip" freeze --all --exclude-editable | tr 'A-Z_' 'a-z-' | sort; }
echo "lock: locks/zhisuan.txt $(grep -c '^[A-Za-z0-9].*==' locks/zhisuan.txt) packages, $(du -k locks/zhisuan.txt | cut -f1) KiB"
printf 'install-locked-s: %.1f\ninstall-unlocked-s: %.1f\n' "$locked" "$unlocked"
echo "packages that differ (locked vs unlocked today):"
{ diff <(freeze locked) <(freeze unlocked) || true; } | grep "^[<>]" || echo "  none"
