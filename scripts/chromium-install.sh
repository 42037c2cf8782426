#!/usr/bin/env bash
# Debian's Chromium (for the dashboard's browser tests) and a CJK font so zh-CN renders; idempotent.
set -euo pipefail
bash "$(dirname "$0")/apt-ensure.sh" chromium fonts-wqy-microhei
chromium --version 2>/dev/null | head -n1
