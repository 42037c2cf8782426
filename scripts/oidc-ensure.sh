#!/usr/bin/env bash
# The OpenID provider the single sign-on tests and demo run (scripts/oidc: panva/oidc-provider, pinned by its
# package-lock.json), installed with the machine's npm unless it already is. Prints the script's path.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)/oidc"
if [ ! -f "$here/node_modules/oidc-provider/package.json" ]; then
  command -v npm >/dev/null || { echo "npm is needed for the OpenID provider (Node.js 20+)" >&2; exit 1; }
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error >&2)
fi
echo "$here/provider.mjs"
