"""Every table of ``analyze`` equals the reference written by the implementation before the
staged pipeline and the fused evaluation pass (``tests/_analyze_reference.py``), on three
synthetic zoos and the real CIFAR-10 zoo.

Equality is byte-for-byte per CSV cell, except the columns in ``TOLERANCES``, whose
floating-point summation order changed; each of those is compared with the stated
relative/absolute tolerance (and was checked against a float64 oracle in the measure tests).
Columns added after the reference (by later issues) are ignored: the reference's columns
must all be present, in the same row order.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import _analyze_reference as ref
from conftest import shared_path

# column (any table) or summary key -> (rtol, atol); everything else byte-identical.
# The mean NLL columns are sums of per-example terms in a different order since the fused
# evaluation pass (measure.fused: one row sum per example, then the column sum); measured
# differences are at most 8e-16 relative, and tests/test_measure_fused.py checks the terms
# against a float64 scipy oracle. The fitted temperatures moved by at most one float64 ulp
# (the Newton objective's row sums run on torch's kernels; the fit itself stops at 1e-8 in
# log T); no table cell that depends on them changed.
TOLERANCES: dict[str, tuple[float, float]] = {
    "nll_before": (1e-12, 0.0),
    "nll_after": (1e-12, 0.0),
    "temperature": (1e-12, 0.0),
}


# Columns whose definition changed on purpose after the reference (column -> why). McNemar's
# p is the mid-p test below 25 discordant examples since issue 27 (the reference holds the
# exact conditional p there): a mid-p is the exact p less one point probability, so every
# cell is equal (the chi-square branch, or p = 1) or strictly smaller and positive;
# tests/test_study_analyze.py and test_measure_stats.py check the values themselves.
MID_P = {"mcnemar_p"}


def _mid_p_cells_ok(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    x = pd.to_numeric(pd.Series(got), errors="coerce").to_numpy(float)
    y = pd.to_numeric(pd.Series(want), errors="coerce").to_numpy(float)
    same = (got == want) | (np.isnan(x) & np.isnan(y))
    return same | ((x > 0) & (x < y))


def compare_table(name: str, got_path: Path, want_path: Path) -> None:
    want = pd.read_csv(want_path, dtype=str, keep_default_na=False)
    got = pd.read_csv(got_path, dtype=str, keep_default_na=False)
    missing = [c for c in want.columns if c not in got.columns]
    assert not missing, f"{name}: columns {missing} missing"
    assert len(got) == len(want), f"{name}: {len(got)} rows, reference {len(want)}"
    for column in want.columns:
        a, b = got[column].to_numpy(), want[column].to_numpy()
        if column in MID_P:
            bad = np.flatnonzero(~_mid_p_cells_ok(a, b))
            assert bad.size == 0, f"{name}.{column}: row {bad[0]}: {a[bad[0]]!r} vs {b[bad[0]]!r}"
        elif column in TOLERANCES:
            rtol, atol = TOLERANCES[column]
            x = pd.to_numeric(pd.Series(a), errors="coerce").to_numpy(float)
            y = pd.to_numeric(pd.Series(b), errors="coerce").to_numpy(float)
            np.testing.assert_allclose(
                x, y, rtol=rtol, atol=atol, equal_nan=True, err_msg=f"{name}.{column}"
            )
        else:
            bad = np.flatnonzero(a != b)
            assert bad.size == 0, (
                f"{name}.{column}: {bad.size} cells differ, first row "
                f"{bad[0]}: {a[bad[0]]!r} != reference {b[bad[0]]!r}"
            )


# summary.json keys renamed since the reference was written (reference name -> name now):
# greedy no longer stages a large pool on disk; it recomputes the candidates' rows on demand.
RENAMED = {"staged_on_disk": "candidates_recomputed"}


def compare_json(got: Any, want: Any, where: str, key: str = "") -> None:
    if isinstance(want, dict):
        assert isinstance(got, dict), where
        for k, v in want.items():
            name = RENAMED.get(k, k) if k not in got else k
            assert name in got, f"{where}.{k} missing"
            compare_json(got[name], v, f"{where}.{name}", name)
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want)):
            compare_json(g, w, f"{where}[{i}]", key)
    elif isinstance(want, float) and key in MID_P:
        assert isinstance(got, float) and (got == want or 0 < got < want), where
    elif isinstance(want, float) and key in TOLERANCES:
        rtol, atol = TOLERANCES[key]
        assert isinstance(got, float) and math.isclose(got, want, rel_tol=rtol, abs_tol=atol), where
    else:
        assert got == want, f"{where}: {got!r} != reference {want!r}"


def check_case(name: str, zoo: Any, options: dict[str, Any], tmp_path: Path) -> None:
    out = ref.run_case(zoo, tmp_path / "out", options)
    fixture = ref.FIXTURES / name
    tables = sorted(fixture.glob("*.csv"))
    assert len(tables) == 7
    for table in tables:
        compare_table(f"{name}/{table.stem}", out / table.name, table)
    summary = json.loads((out / "summary.json").read_text())
    compare_json(ref.findings(summary), json.loads((fixture / "summary.json").read_text()), name)


@pytest.mark.parametrize("name", sorted(ref.SYNTHETIC_CASES))
def test_synthetic_tables_equal_the_reference(name, tmp_path):
    zoo_kw, options = ref.SYNTHETIC_CASES[name]
    zoo = ref.build_synthetic(tmp_path / "zoo", **zoo_kw)
    check_case(name, zoo, options, tmp_path)


def test_cifar10_tables_equal_the_reference(tmp_path):
    data = shared_path("cifar10-probs")
    zoo = ref.build_cifar10(tmp_path / "zoo", data)
    check_case(ref.CIFAR_CASE[0], zoo, ref.CIFAR_CASE[1], tmp_path)


def test_the_comparison_fails_on_a_changed_cell(tmp_path):
    """The check is not vacuous: one changed digit in a copy of a reference table fails."""
    want = ref.FIXTURES / "cifar10" / "pairs.csv"
    text = want.read_text().splitlines()
    cells = text[1].split(",")
    cells[5] = cells[5][:-1] + ("1" if cells[5][-1] != "1" else "2")
    (tmp_path / "pairs.csv").write_text("\n".join([text[0], ",".join(cells)] + text[2:]) + "\n")
    with pytest.raises(AssertionError, match="error_inconsistency"):
        compare_table("pairs", tmp_path / "pairs.csv", want)
