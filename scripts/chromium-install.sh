#!/usr/bin/env bash
# Debian's Chromium (for the dashboard's browser tests) and a CJK font so zh-CN renders; idempotent.
set -euo pipefail
missing=()
for p in chromium fonts-wqy-microhei; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "[chromium-install] apt-get install ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
chromium --version 2>/dev/null | head -n1
