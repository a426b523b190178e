"""Every table of ``analyze`` equals the reference written by the implementation before the
staged pipeline and the fused evaluation pass (``tests/_analyze_reference.py``), on three
synthetic zoos and the real CIFAR-10 zoo.

Cells are compared by kind (:func:`same_cell`): text, integers (counts, steps, ranks,
flags) and every decision (model names, greedy picks, verdicts) exactly; non-integer
numbers within ``FLOAT_TOLERANCE``, whose reason is stated there. The same rules apply to
the summary's findings (``summary.json``). The tests run a second and third time in CI with
numpy's AVX-512 and AVX2 paths switched off (``.ci/run``), where those last bits differ.
Columns added after the reference (by later issues) are ignored: the reference's columns
must all be present, in the same row order.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import _analyze_reference as ref
from conftest import shared_path

# (rtol, atol) for every non-integer number. Reason: float32 accumulation — scores and
# ensemble inputs are float32, and their sums (accuracies' means, bootstrap resample means
# and so the interval ends, mean NLL terms, theta) differ in the last float32 bits between
# numpy's SIMD paths (AVX-512, AVX2, baseline), BLAS kernels and torch's or numpy's exp; the
# largest difference measured across those is 3.4e-7 relative (a bootstrap interval end),
# so 1e-6 relative — eight float32 ulps — with 1e-9 absolute for values that are differences
# near zero. A real change of 1e-4 is 100 times larger (``test_a_1e-4_shift_fails``).
FLOAT_TOLERANCE = (1e-6, 1e-9)
_INTEGER = re.compile(r"[+-]?\d+")


def same_cell(got: str, want: str) -> bool:
    """A table cell equals the reference's: integers and text exactly, other numbers within
    ``FLOAT_TOLERANCE`` (NaN equals NaN)."""
    if got == want:
        return True
    if _INTEGER.fullmatch(want) or _INTEGER.fullmatch(got):
        return False
    try:
        x, y = float(got), float(want)
    except ValueError:
        return False
    return same_float(x, y)


def same_float(x: float, y: float) -> bool:
    if math.isnan(x) or math.isnan(y):
        return math.isnan(x) and math.isnan(y)
    rtol, atol = FLOAT_TOLERANCE
    return math.isclose(x, y, rel_tol=rtol, abs_tol=atol)


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
        a, b = got[column].tolist(), want[column].tolist()
        if column in MID_P:
            bad = np.flatnonzero(~_mid_p_cells_ok(np.array(a), np.array(b))).tolist()
        else:
            bad = [i for i, (x, y) in enumerate(zip(a, b)) if not same_cell(x, y)]
        assert not bad, (
            f"{name}.{column}: {len(bad)} cells differ, first row "
            f"{bad[0]}: {a[bad[0]]!r} != reference {b[bad[0]]!r}"
        )


# summary.json keys renamed since the reference was written (reference name -> name now):
# greedy no longer stages a large pool on disk; it recomputes the candidates' rows on demand.
RENAMED = {"staged_on_disk": "candidates_recomputed"}


def compare_json(got: Any, want: Any, where: str, key: str = "") -> None:
    """The summary's findings: floats within ``FLOAT_TOLERANCE``; ints, bools, text exact."""
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
    elif isinstance(want, float) and type(got) in (float, int):
        assert same_float(float(got), want), f"{where}: {got!r} != reference {want!r}"
    else:
        assert type(got) is type(want) and got == want, f"{where}: {got!r} != reference {want!r}"


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


def _copy_with(tmp_path: Path, table: str, row: int, column: str, change: Any) -> Path:
    """A copy of a cifar10 reference table with one cell replaced by ``change(cell)``."""
    frame = pd.read_csv(ref.FIXTURES / "cifar10" / table, dtype=str, keep_default_na=False)
    frame.loc[row, column] = change(frame.loc[row, column])
    frame.to_csv(tmp_path / table, index=False)
    return tmp_path / table


@pytest.mark.parametrize(
    "column, shift",
    [
        ("error_inconsistency", lambda x: x * (1 + 1e-4)),  # a 1e-4 relative change
        ("ensemble_acc_hi", lambda x: x + 1e-4),  # a bootstrap interval end, 1e-4 absolute
        # McNemar's p may only fall (mid-p, see MID_P): a rise fails; other p-values either way
        ("mcnemar_p", lambda x: x + 1e-4),
        ("paired_bootstrap_p", lambda x: x - 1e-4),
    ],
)
def test_a_1e4_shift_fails(tmp_path, column, shift):
    """The comparison is not vacuous: one value shifted by 1e-4 fails it, naming the cell."""
    want = ref.FIXTURES / "cifar10" / "pairs.csv"
    shifted = _copy_with(tmp_path, "pairs.csv", 3, column, lambda c: repr(shift(float(c))))
    with pytest.raises(AssertionError, match=rf"pairs\.{column}: 1 cells differ, first row 3"):
        compare_table("pairs", shifted, want)


def test_float32_last_bits_pass_and_counts_stay_exact(tmp_path):
    """What the tolerance is for passes (the interval end that differs between numpy's
    AVX-512 path and the baseline: 0.13306409 vs 0.13306405); a count or a greedy pick that
    differs by one fails."""
    assert same_cell("0.13306409301757813", "0.13306404762268065")
    assert same_cell("55.79584537813425", "55.79584537813426")
    assert same_cell("nan", "nan") and not same_cell("nan", "0.5")
    assert not same_cell("13307", "13306") and not same_cell("3", "3.0000001")
    assert not same_cell("vgg16", "vgg19") and not same_cell("True", "False")
    want = ref.FIXTURES / "cifar10" / "greedy.csv"
    moved = _copy_with(tmp_path, "greedy.csv", 1, "step", lambda c: str(int(c) + 1))
    with pytest.raises(AssertionError, match=r"greedy\.step"):
        compare_table("greedy", moved, want)
    summary = json.loads((ref.FIXTURES / "cifar10" / "summary.json").read_text())
    compare_json(summary, summary, "cifar10")
    end = summary["headline"]["mean_error_inconsistency_by_category"]["Arch"]
    end["hi"] += 1e-4
    with pytest.raises(AssertionError, match="Arch.hi"):
        compare_json(
            summary, json.loads((ref.FIXTURES / "cifar10" / "summary.json").read_text()), "cifar10"
        )
