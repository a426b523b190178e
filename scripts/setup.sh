#!/usr/bin/env bash
# Sets up everything zoolens needs on a fresh Debian/Ubuntu machine, from scratch:
# system packages (Chromium for report tests, Fashion-MNIST for the demo), a Python 3.11
# virtual environment in .venv, and zoolens with every extra (torch, models, ray, bench: `all`)
# and the developer tools (`dev`), pinned by constraints.txt. One line per step as it goes.
# (A user who only analyses saved outputs needs none of that: `pip install zoolens`.)
set -euo pipefail
cd "$(dirname "$0")/.."
step() { echo "setup: $*" >&2; }

SUDO=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
if command -v apt-get >/dev/null 2>&1 && { [ "$(id -u)" = 0 ] || [ -n "$SUDO" ]; }; then
  need=()
  [ -x /usr/bin/chromium ] || need+=(chromium)
  [ -d /usr/share/datasets/fashion-mnist ] || need+=(dataset-fashion-mnist)
  if [ ${#need[@]} -gt 0 ]; then
    step "installing ${need[*]} with apt-get"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
  fi
else
  echo "note: no apt-get (or no root): install chromium and dataset-fashion-mnist yourself" >&2
fi

PY=${PYTHON:-python3.11}
if [ -x .venv/bin/python ]; then
  step "using the existing virtual environment .venv"
else
  step "creating the virtual environment .venv with $PY"
  "$PY" -m venv .venv
fi
# pip warns once per package about every find-links / index location in the machine's pip
# configuration that does not exist ("Location '...' is ignored"): that is the machine's
# configuration, not this project, so those lines (only those) are left out.
quiet_pip() {
  .venv/bin/python -m pip "$@" 2> >(grep -v "^WARNING: Location '.*' is ignored: it is neither a file nor a directory" >&2)
}
step "upgrading pip"
quiet_pip install -q --upgrade pip
step "installing zoolens with every extra and the dev tools (pip, pinned by constraints.txt;" \
  "torch and its CUDA libraries make this several GB and a few minutes)"
quiet_pip install -q -c constraints.txt -e ".[all,dev]"
wait
step "done"
echo "zoolens is set up. Activate the environment to put zoolens on your PATH:" >&2
echo "  source .venv/bin/activate" >&2
echo "(or call it as .venv/bin/zoolens without activating)" >&2
