#!/usr/bin/env bash
# apt-ensure.sh PKG...: install the Debian packages that are missing (apt-get update once, only if needed).
# With ZHISUAN_APT_RECORD set, the names asked for are appended to that file, so `make test` can print the
# versions it ran with (scripts/apt-versions.sh): a failure can then be traced to a Debian update.
set -euo pipefail
missing=()
for p in "$@"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "[apt-ensure] apt-get install ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if [ -n "${ZHISUAN_APT_RECORD:-}" ]; then
  printf '%s\n' "$@" >> "$ZHISUAN_APT_RECORD"
fi
