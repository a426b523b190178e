"""The README's Quick start, run verbatim (issue 15): its bash block, in an empty temporary
folder with no ../shared beside it, with `python` and `zoolens` on PATH as after
`source .venv/bin/activate` (small wrappers around this interpreter and this checkout)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd

import zoolens

README = Path(__file__).resolve().parents[1] / "README.md"
SRC = Path(zoolens.__file__).resolve().parents[1]


def quick_start_block() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1, "the Quick start has exactly one bash block"
    return blocks[0]


def test_quick_start_block_reads_nothing_outside_the_package():
    block = quick_start_block()
    assert "../shared" not in block and "shared/data" not in block


def quick_start_env(tmp_path: Path, pythonpath: str = "", **extra: str) -> dict[str, str]:
    """The environment of a user who activated the venv: ``python`` and ``zoolens`` on PATH
    (wrappers around this interpreter and this checkout, ``pythonpath`` put first), plus
    ``extra`` variables (``NPY_DISABLE_CPU_FEATURES``)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    path = os.pathsep.join(p for p in (pythonpath, str(SRC)) if p)
    env_line = f'PYTHONPATH="{path}" '
    (bin_dir / "python").write_text(f'#!/bin/sh\n{env_line}exec "{sys.executable}" "$@"\n')
    (bin_dir / "zoolens").write_text(
        f'#!/bin/sh\n{env_line}exec "{sys.executable}" -c '
        "\"import sys; from zoolens.cli import main; sys.argv[0] = 'zoolens'; sys.exit(main())\" "
        '"$@"\n'
    )
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", **extra}
    env.pop("PYTHONPATH", None)
    return env


def run_quick_start(tmp_path: Path, work: Path, env: dict[str, str], block: str = "") -> Any:
    """The Quick start's bash block (or ``block``), in ``work``, as bash with ``set -e``."""
    script = tmp_path / "quickstart.sh"
    script.write_text("set -euo pipefail\n" + (block or quick_start_block()))
    return subprocess.run(
        ["bash", str(script)], cwd=work, env=env, capture_output=True, text=True, timeout=900
    )


def test_readme_quick_start_runs_verbatim_in_an_empty_folder(tmp_path):
    work = tmp_path / "newcomer"
    work.mkdir()
    assert not (work.parent / "shared").exists()
    done = run_quick_start(tmp_path, work, quick_start_env(tmp_path))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "best sidekick for resnet" in done.stdout + done.stderr
    report = work / "report.html"
    assert report.is_file() and report.stat().st_size > 50_000
    models = pd.read_csv(work / "results" / "models.csv")
    assert list(models.model) == ["resnet", "resnet-seed1", "vit", "knn"]
    category = dict(zip(models.model, models.category))
    assert category["resnet-seed1"] == "Reinit" and category["vit"] == "Arch"
    assert "Traceback" not in done.stderr
