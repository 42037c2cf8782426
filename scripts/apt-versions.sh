#!/usr/bin/env bash
# apt-versions.sh RECORD: one line with each Debian package apt-ensure.sh was asked for in this run and the
# version installed (apt is not pinned; this is how a run that broke is traced to a Debian update).
set -euo pipefail
[ -s "$1" ] || exit 0
mapfile -t pkgs < <(sort -u "$1")
echo "[apt-versions] $(dpkg-query -W -f='${Package}=${Version} ' "${pkgs[@]}")"
