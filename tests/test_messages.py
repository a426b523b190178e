"""Messages that tell the truth (issue 27, item 9): exporting an ensemble whose member has
saved outputs only says what an exportable member needs (the other messages of item 9 are
tested beside the features they concern: test_study_budget.py, test_small_samples.py)."""

from __future__ import annotations

import numpy as np
from typer.testing import CliRunner

from zoolens.cli import app
from zoolens.zoo.store import Zoo


def test_exporting_imported_outputs_says_what_an_exportable_member_needs(tmp_path):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 200)
    zoo = Zoo.create(tmp_path / "z", y)
    for k in range(3):
        zoo.add(f"m{k}", logits=rng.normal(size=(200, 4)) + (1 + k) * np.eye(4)[y])
    runner = CliRunner()
    out = tmp_path / "r"
    done = runner.invoke(
        app, ["--quiet", "analyze", str(zoo.path), "--base", "m0", "--out", str(out)]
    )
    assert done.exit_code == 0, done.output
    result = runner.invoke(
        app, ["export", str(out), "--ensemble", "sidekick", "--out", str(tmp_path / "e.json")]
    )
    assert result.exit_code == 1
    line = result.output.strip().splitlines()[-1]
    assert line.startswith("error: ") and "Traceback" not in result.output
    assert "its card has no collect block (its outputs were imported" in line
    assert "an exportable member needs the card's collect block" in line
    assert "torchscript:FILE.pt" in line and "zoolens collect" in line
    assert not (tmp_path / "e.json").exists()
