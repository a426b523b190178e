"""The zoo's own speed: opening a zoo of many models, and refusing a table too wide to parse.

Moved here from the tests (issue 24: a test never asserts wall-clock time), which check the
behaviour behind them instead (opening hashes no file; the wide row never reaches pandas):

- open: ``Zoo.open`` on a zoo of M small models (it reads zoo.json, never a model file);
  target < 1 s for 100 models.
- wide CSV: ``zoolens import`` of a CSV with one 10,000,000-field row (20 MB) is refused by
  the one pass over its bytes (``zoo.importers.sniff_table_size``), before parsing; target
  < 60 s (parsing it took more than 600 s and 13 GB).

Example:  python -m benchmarks --size tiny --only zoo
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np

from benchmarks._common import row, timed

SIZES = {"full": (100, 10_000_000), "quick": (100, 10_000_000), "tiny": (100, 1_000_000)}


def _zoo_of(path: Path, models: int):
    from zoolens.zoo.store import Zoo

    rng = np.random.default_rng(0)
    zoo = Zoo.create(path, rng.integers(0, 3, 50))
    small = rng.normal(size=(50, 3)).astype(np.float32)
    for i in range(models):
        zoo.add(f"m{i}", logits=small + i)
    return zoo


def run(size: str = "quick", runs: int = 3) -> list[dict]:
    from typer.testing import CliRunner

    from zoolens.cli import app
    from zoolens.zoo.store import Zoo

    models, fields = SIZES[size]
    tmp = Path(tempfile.mkdtemp(prefix="zoolens-bench-zoo-"))
    try:
        _zoo_of(tmp / "z", models)
        opened = timed(lambda: len(Zoo.open(tmp / "z").models), runs)
        wide = tmp / "wide.csv"
        with open(wide, "w") as fh:
            fh.write("0.1,0.2,0.3\n" * 5 + ",".join(["0"] * fields) + "\n")
        refused = timed(
            lambda: CliRunner().invoke(
                app, ["--quiet", "import", str(tmp / "z"), str(wide), "--name", "w"]
            ),
            runs,
        )
        result = refused.result
        said = result is not None and result.exit_code == 1 and "fields" in result.output
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return [
        row(
            "zoo",
            f"open a zoo of {models} models",
            ours="Zoo.open",
            ours_s=opened.median_s,
            peak_mib=opened.peak_mib,
            target="< 1 s",
            met=opened.median_s < 1 and opened.result == models,
            check=f"{opened.result} models listed; no model file read (tests/test_zoo_store.py)",
        ),
        row(
            "zoo",
            f"refuse a CSV row of {fields:,} fields",
            ours="zoolens import (one pass over the bytes, before parsing)",
            ours_s=refused.median_s,
            peak_mib=refused.peak_mib,
            target="< 60 s, one error line",
            met=refused.median_s < 60 and said,
            check=f"refused with one line naming the fields: {said}",
        ),
    ]
