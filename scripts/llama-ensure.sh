#!/usr/bin/env bash
# llama-cpp-python's OpenAI-compatible server, built from source (no wheels for it on the package index)
# into a virtualenv of its own, for the gateway's real-backend test. Every package comes from the locks
# (locks/llama-build.txt, then locks/llama.txt, with hashes); the build backend is installed first so the
# build runs without isolation and fetches nothing unlocked. Idempotent: a stamp named by the locks' contents
# skips the build. About 4 minutes on 2 cores the first time. Prints the venv's python.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${ZHISUAN_LLAMA_VENV:-.venv-llama}
STAMP="$VENV/.built-$(cat locks/pip.txt locks/llama-build.txt locks/llama.txt | sha256sum | cut -c1-16)"
if [ ! -f "$STAMP" ]; then
  python3 -m venv --clear "$VENV"
  "$VENV/bin/pip" install -q --require-hashes --no-deps -r locks/pip.txt >&2
  "$VENV/bin/pip" install -q --require-hashes --no-deps -r locks/llama-build.txt >&2
  CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-2} \
  CMAKE_ARGS="-DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF" \
    "$VENV/bin/pip" install -q --require-hashes --no-deps --no-build-isolation -r locks/llama.txt >&2
  touch "$STAMP"
fi
echo "$(cd "$VENV" && pwd)/bin/python"
