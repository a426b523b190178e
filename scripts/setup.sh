#!/usr/bin/env bash
# Sets up everything zoolens needs on a fresh Debian/Ubuntu machine, from scratch:
# system packages (Chromium for report tests, Fashion-MNIST for the demo), a Python 3.11
# virtual environment in .venv, and zoolens with all extras, pinned by constraints.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
if command -v apt-get >/dev/null 2>&1 && { [ "$(id -u)" = 0 ] || [ -n "$SUDO" ]; }; then
  need=()
  [ -x /usr/bin/chromium ] || need+=(chromium)
  [ -d /usr/share/datasets/fashion-mnist ] || need+=(dataset-fashion-mnist)
  if [ ${#need[@]} -gt 0 ]; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
  fi
else
  echo "note: no apt-get (or no root): install chromium and dataset-fashion-mnist yourself" >&2
fi

PY=${PYTHON:-python3.11}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -c constraints.txt -e ".[dev,models,ray,bench]"
echo "zoolens is set up: .venv/bin/zoolens --help" >&2
