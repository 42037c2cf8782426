#!/usr/bin/env bash
# llama-cpp-python's OpenAI-compatible server, built from source (no wheels for it on the package index)
# into a virtualenv of its own, for the gateway's real-backend test. Idempotent: a stamp skips the build.
# About 4 minutes on 2 cores the first time. Prints the venv's python.
set -euo pipefail
VENV=${ZHISUAN_LLAMA_VENV:-.venv-llama}
STAMP="$VENV/.built-0.3.16"
if [ ! -f "$STAMP" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip >&2
  CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-2} \
  CMAKE_ARGS="-DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF" \
    "$VENV/bin/pip" install -q 'llama-cpp-python[server]==0.3.16' 'gguf>=0.10' numpy >&2
  touch "$STAMP"
fi
echo "$(cd "$VENV" && pwd)/bin/python"
