#!/usr/bin/env bash
# The light install, as a user gets it: `pip install .` (no extras, pinned by constraints.txt)
# in a fresh Python 3.11 venv. Checks that no torch, no NVIDIA/CUDA library and no triton came
# with it, that it stays under 700 MB, and runs the README's Quick start (import, analyze,
# report) there, in an empty folder. One line per step; exit 1 on the first failure.
# Usage: bash scripts/check_light_install.sh [VENV_DIR]   (default: a temporary folder)
set -euo pipefail
cd "$(dirname "$0")/.."
step() { echo "light install: $*" >&2; }
PY=${PYTHON:-python3.11}
venv=${1:-$(mktemp -d /tmp/zoolens-light.XXXXXX)/venv}
work=$(mktemp -d /tmp/zoolens-light-work.XXXXXX)

step "creating a fresh venv in $venv with $PY"
"$PY" -m venv "$venv"
step "pip install -c constraints.txt . (no extras)"
"$venv/bin/python" -m pip install -q -c constraints.txt . \
  2> >(grep -v "^WARNING: Location '.*' is ignored: it is neither a file nor a directory" >&2)

step "checking that no torch, NVIDIA/CUDA library or triton is installed"
heavy=$("$venv/bin/python" -m pip list --format=freeze | grep -iE '^(torch|torchvision|triton|nvidia-|cuda-)' || true)
if [ -n "$heavy" ]; then
  echo "error: the light install pulled in: $(echo "$heavy" | tr '\n' ' ')" >&2
  exit 1
fi
size_mb=$(du -sm "$venv" | cut -f1)
step "installed size ${size_mb} MB (limit 700 MB)"
if [ "$size_mb" -ge 700 ]; then
  echo "error: the light install takes ${size_mb} MB, over 700 MB" >&2
  exit 1
fi

step "running the README's Quick start in $work"
block=$(awk '/^## Quick start/{q=1} q && /^```bash$/{f=1; next} f && /^```$/{exit} f' README.md)
(
  cd "$work"
  export PATH="$venv/bin:$PATH"
  unset PYTHONPATH
  python -c "import importlib.util as u, sys; sys.exit(u.find_spec('torch') is not None)"
  bash -euo pipefail -c "$block"
  test -s report.html && test -s results/pairs.csv
)
step "Quick start ran (tables in $work/results, report.html written)"
