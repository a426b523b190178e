"""The README's runnable blocks, run verbatim (issues 15 and 27): the Quick start's bash block,
and then every other bash block of the README that is not marked as a recipe (an HTML comment
``<!-- not run by tests/test_readme_quickstart.py: REASON -->`` on the line before it), in
README order in one empty temporary folder with no ../shared beside it, with `python` and
`zoolens` on PATH as after `source .venv/bin/activate` (small wrappers around this
interpreter and this checkout)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import zoolens

README = Path(__file__).resolve().parents[1] / "README.md"
SRC = Path(zoolens.__file__).resolve().parents[1]


def quick_start_block() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1, "the Quick start has exactly one bash block"
    return blocks[0]


NOT_RUN = "<!-- not run by tests/test_readme_quickstart.py: "


def readme_blocks() -> list[tuple[str, str | None]]:
    """Every bash block of the README, in order, with the reason it is not run (None: run)."""
    text = README.read_text(encoding="utf-8")
    out = []
    for match in re.finditer(r"(?:^(<!--[^\n]*-->)\n)?```bash\n(.*?)```", text, flags=re.S | re.M):
        marker, body = match.group(1), match.group(2)
        reason = None
        if marker is not None and marker.startswith(NOT_RUN):
            reason = marker[len(NOT_RUN) : -len("-->")].strip()
        out.append((body, reason))
    return out


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


def test_every_block_not_run_says_why_and_runnable_blocks_need_no_shared_data():
    blocks = readme_blocks()
    assert len(blocks) >= 7
    skipped = [reason for _, reason in blocks if reason is not None]
    assert all(skipped), "a block left out of the run must say why"
    for body, reason in blocks:
        if reason is None:
            assert "../shared" not in body and "shared/data" not in body, body[:200]
    # the shift study and the collect / export / predict path run on shipped examples
    runnable = "".join(body for body, reason in blocks if reason is None)
    for command in (
        "--shift shifted=shifted.zoo",
        "zoolens collect",
        "zoolens export",
        "zoolens predict",
    ):
        assert command in runnable, command


def test_every_runnable_readme_block_runs_in_an_empty_folder(tmp_path):
    """As a newcomer reads it: each runnable block in README order, in one empty folder
    (the shift study reuses the Quick start's zoo, as the README says)."""
    pytest.importorskip("torch")  # collect / export / predict build the tiny TorchScript CNNs
    work = tmp_path / "newcomer"
    work.mkdir()
    env = quick_start_env(tmp_path)
    runnable = [body for body, reason in readme_blocks() if reason is None]
    script = tmp_path / "readme.sh"
    script.write_text("set -euo pipefail\n" + "\n".join(runnable))
    done = subprocess.run(
        ["bash", str(script)], cwd=work, env=env, capture_output=True, text=True, timeout=1800
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert "under shift shifted (1000 examples, 4 models): accuracy on the line" in output
    assert "under shift unlabelled (1000 examples, 4 models, no labels)" in output
    assert (work / "shift-results" / "shift_models.csv").is_file()
    shift_models = pd.read_csv(work / "shift-results" / "shift_models.csv")
    assert set(shift_models["set"]) == {"original", "shifted"}
    tiny = pd.read_csv(work / "tiny-results" / "models.csv")
    assert list(tiny.model) == ["tiny-a", "tiny-b", "tiny-c"]
    assert dict(zip(tiny.model, tiny.category))["tiny-b"] == "Reinit"
    assert (work / "ensemble.json").is_file()
    predictions = pd.read_csv(work / "predictions.csv")
    assert len(predictions) == 32 and {"top1_class", "top2_prob", "label"} <= set(predictions)
    assert "32 images predicted by the sidekick ensemble" in output
    # nothing was written into the package's example folder
    examples = Path(zoolens.__file__).resolve().parent / "examples"
    assert not list(examples.glob("**/*.collect")) and not list(examples.glob("**/*.zoo"))
