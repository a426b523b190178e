"""``analyze --pairs base`` (issue 28, item 3): only the base's M − 1 pairs are measured, and
every row it writes is the all-pairs run's row, byte for byte.

The oracle is the all-pairs analysis itself (whose tables ``tests/test_analyze_reference.py``
ties to the reference implementation): pairs.csv of the base-only run must equal the rows of
the all-pairs pairs.csv that contain the base, as CSV text (except the four columns adjusted
for multiple testing over the table's pairs, whose family is the base's pairs here: checked
against Holm and Benjamini-Hochberg loops), and every other table must be identical as a
whole. Checked on the synthetic zoos of every output kind (decision-only,
top-k, float16, multilabel, calibrated logits), with several chunks, and on the real CIFAR-10
zoo of ``../shared/data/cifar10-probs``; plus the pieces below the pipeline (the pair-list
kernels against their all-pairs rows) and what a base-only run leaves out.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import _analyze_reference as ref
from conftest import shared_path


# Adjusted for multiple testing over the table's pairs (issue 27): the family of a base-only
# table is the base's M − 1 pairs, so these columns differ from the all-pairs run's by
# definition; they are checked against a float64 oracle on the base-only table instead.
ADJUSTED = ("mcnemar_p_holm", "mcnemar_q_bh", "paired_bootstrap_p_holm", "paired_bootstrap_q_bh")


def _holm_oracle(p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values, a plain loop (NaN: no test, not counted)."""
    out = np.full(len(p), np.nan)
    keep = np.flatnonzero(np.isfinite(p))
    order = keep[np.argsort(p[keep], kind="stable")]
    m, running = len(order), 0.0
    for i, k in enumerate(order):
        running = max(running, min(1.0, (m - i) * p[k]))
        out[k] = running
    return out


def _bh_oracle(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg q-values, a plain loop (NaN: no test, not counted)."""
    out = np.full(len(p), np.nan)
    keep = np.flatnonzero(np.isfinite(p))
    order = keep[np.argsort(p[keep], kind="stable")]
    m, running = len(order), 1.0
    for i in range(m - 1, -1, -1):
        running = min(running, m * p[order[i]] / (i + 1))
        out[order[i]] = min(1.0, running)
    return out


def _check_pairs_csv(got_path: Path, want_path: Path, base: str) -> None:
    """Every column of the base-only pairs.csv equals the all-pairs run's base rows as text,
    except the adjusted p-values, which equal the oracles over the base-only table."""
    got = pd.read_csv(got_path, dtype=str, keep_default_na=False)
    want = pd.read_csv(want_path, dtype=str, keep_default_na=False)
    want = want[(want["model_a"] == base) | (want["model_b"] == base)].reset_index(drop=True)
    assert list(got.columns) == list(want.columns) and len(got) == len(want)
    for column in got.columns:
        if column not in ADJUSTED:
            assert (got[column] == want[column]).all(), f"pairs.csv {column}: base rows differ"
    numbers = pd.read_csv(got_path)
    for raw, holm, bh in (
        ("mcnemar_p", "mcnemar_p_holm", "mcnemar_q_bh"),
        ("paired_bootstrap_p", "paired_bootstrap_p_holm", "paired_bootstrap_q_bh"),
    ):
        p = numbers[raw].to_numpy(float)
        # rtol: the oracle multiplies and takes maxima in another order (float64 rounding)
        np.testing.assert_allclose(numbers[holm], _holm_oracle(p), rtol=1e-12, equal_nan=True)
        np.testing.assert_allclose(numbers[bh], _bh_oracle(p), rtol=1e-12, equal_nan=True)


def _compare_runs(zoo: Any, base: str, options: dict[str, Any], tmp_path: Path) -> dict:
    from zoolens.study.analyze import analyze

    runs = {}
    for mode in ("all", "base"):
        runs[mode] = analyze(zoo, base, tmp_path / mode, parquet=False, pairs=mode, **options)
    written = sorted(p.name for p in (tmp_path / "all").glob("*.csv"))
    assert written == sorted(p.name for p in (tmp_path / "base").glob("*.csv"))
    num_models = len(runs["all"].models)
    for name in written:
        got = (tmp_path / "base" / name).read_text()
        want = (tmp_path / "all" / name).read_text()
        if name == "pairs.csv":
            assert len(runs["all"].pairs) == num_models * (num_models - 1) // 2
            assert len(runs["base"].pairs) == num_models - 1
            _check_pairs_csv(tmp_path / "base" / name, tmp_path / "all" / name, base)
        else:
            assert got == want, f"{name} differs between --pairs base and --pairs all"
    summaries = {m: json.loads((tmp_path / m / "summary.json").read_text()) for m in runs}
    assert summaries["all"]["pairs"] == "all" and summaries["base"]["pairs"] == "base"
    for mode in runs:  # the chunks as run: never longer than the evaluation split
        n_eval = int(runs[mode].models["accuracy_eval_n"].iloc[0])
        chunks = summaries[mode]["evaluation_chunks"]
        per_chunk = min(options.get("chunk_size") or n_eval, n_eval)
        assert chunks["examples_per_chunk"] == per_chunk
        assert chunks["chunks"] == -(-n_eval // per_chunk)
        blocks = summaries[mode]["pair_blocks"]  # the pairs' bootstrap, block by block
        num_pairs = len(runs[mode].pairs)
        assert blocks["pairs_per_block"] == min(blocks["pairs_per_block"], num_pairs) > 0
        assert blocks["blocks"] == -(-num_pairs // blocks["pairs_per_block"])
    head_all, head_base = summaries["all"]["headline"], summaries["base"]["headline"]

    # Everything defined from the base's pairs is the same; the all-pairs correlation is
    # left out (null) with one note.
    def without_adjusted(value: Any) -> Any:
        if isinstance(value, list):
            return [without_adjusted(v) for v in value]
        if isinstance(value, dict):
            return {k: v for k, v in value.items() if k not in ADJUSTED}
        return value

    for key in ("best_sidekick", "ranked_sidekicks"):
        assert without_adjusted(head_base[key]) == without_adjusted(head_all[key]), key
    for key in (
        "mean_error_inconsistency_by_category",
        "conversion_rate_by_category",
        "greedy",
        "base",
        "all_models_ensemble_acc",
        "majority_vote_acc",
    ):
        assert head_base[key] == head_all[key], key
    spearman = head_base["spearman_ei_vs_gain"]
    assert spearman["all_pairs"] is None
    assert spearman["pairs_with_base"] == head_all["spearman_ei_vs_gain"]["pairs_with_base"]
    notes = [n for n in summaries["base"]["notes"] if n.startswith("pairs: base")]
    assert len(notes) == 1 and "\n" not in notes[0]
    assert not any(n.startswith("pairs: base") for n in summaries["all"]["notes"])
    return summaries


@pytest.mark.parametrize("name", sorted(ref.SYNTHETIC_CASES))
def test_base_only_rows_equal_the_all_pairs_run(name, tmp_path):
    zoo_kw, options = ref.SYNTHETIC_CASES[name]
    zoo = ref.build_synthetic(tmp_path / "zoo", **zoo_kw)
    options = dict(options)
    _compare_runs(zoo, options.pop("base"), options, tmp_path)


@pytest.mark.parametrize("group", [1, 2, 3, 256])
def test_base_only_with_a_base_in_the_middle_and_small_chunks(group, tmp_path, monkeypatch):
    """The base's pairs are (i, base) before it and (base, j) after it; several chunks add
    up to the same bootstrap sums; full-row ensembles take the same pair list. The chunk's
    calibrated rows are made ``group`` models at a time (study.stream._grouped_block): the
    base in a group of its own, in the first or a later group, with the greedy prefixes'
    and the interpolation curve's models kept beside the groups."""
    import zoolens.study.analyze as analyze_module

    monkeypatch.setattr(analyze_module, "MODEL_GROUP", group)
    zoo = ref.build_synthetic(tmp_path / "zoo", seed=4)
    for exact in (True, False):
        _compare_runs(
            zoo,
            "vit",
            dict(
                max_steps=3,
                n_bootstrap=80,
                seed=1,
                chunk_size=29,
                exact_topk=exact,
                interpolation_pairs=[("wide", "fp16")],
            ),
            tmp_path / str(exact),
        )


def test_base_only_on_real_cifar10(tmp_path):
    data = shared_path("cifar10-probs")
    zoo = ref.build_cifar10(tmp_path / "zoo", data)
    options = dict(ref.CIFAR_CASE[1])
    summaries = _compare_runs(zoo, options.pop("base"), options, tmp_path)
    assert summaries["base"]["headline"]["best_sidekick"]["model"]


def test_decision_only_base_measures_agreement_only(tmp_path):
    zoo = ref.build_synthetic(tmp_path / "zoo", seed=2)
    _compare_runs(zoo, "humans", dict(max_steps=2, n_bootstrap=50, start="base"), tmp_path)


def test_cli_pairs_base_and_the_report(tmp_path):
    from zoolens.cli import app
    from zoolens.report.html import build_report

    zoo = ref.build_synthetic(tmp_path / "zoo", seed=6)
    runner = CliRunner()
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        ["analyze", str(zoo.path), "--base", "base", "--out", str(out), "--pairs", "base"]
        + ["--bootstrap", "50", "--max-steps", "2"],
    )
    assert result.exit_code == 0, result.output
    assert "over the pairs with the base" in result.output or "too few pairs" in result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["pairs"] == "base"
    report = build_report(out, tmp_path / "report.html", warn=lambda _: None)
    assert "--pairs base" in report.skipped["kappa"]
    assert any("analyze --pairs base" in note for note in report.notes)
    assert report.figures and "kappa" not in report.figures

    bad = runner.invoke(
        app, ["analyze", str(zoo.path), "--base", "base", "--out", str(out), "--pairs", "some"]
    )
    assert bad.exit_code == 1 and "error: --pairs 'some': choose 'base' or 'all'" in bad.output
    shifted = runner.invoke(
        app,
        ["analyze", str(zoo.path), "--base", "base", "--out", str(tmp_path / "o2")]
        + ["--pairs", "base", "--shift", f"other={zoo.path}"],
    )
    assert (
        shifted.exit_code == 1 and "--shift" in shifted.output and "--pairs all" in shifted.output
    )
    assert not (tmp_path / "o2").exists()


def test_listed_pair_agreement_equals_the_matrix_cells():
    from zoolens.measure.agreement import (
        base_pair_index,
        listed_pair_agreement,
        pair_index,
        pairwise_agreement,
    )

    rng = np.random.default_rng(0)
    r = rng.random((9, 301)) < rng.uniform(0.2, 0.95, (9, 1))
    r[3] = True  # always right and ...
    r[7] = True  # ... a second one: kappa's degenerate case
    matrix = pairwise_agreement(r)
    for a, b in (pair_index(9), base_pair_index(9, 4), (np.array([8, 0]), np.array([2, 5]))):
        got = listed_pair_agreement(r, a, b)
        for key in ("error_inconsistency", "both_right", "both_wrong", "error_consistency"):
            assert got[key].tobytes() == matrix[key][a, b].tobytes(), key
        assert got["dominance_ab"].tobytes() == matrix["dominance"][a, b].tobytes()
        assert got["dominance_ba"].tobytes() == matrix["dominance"][b, a].tobytes()
        assert got["n11"].tolist() == matrix["n11"][a, b].tolist()
    # independent oracle for the counts: a Python loop
    a, b = base_pair_index(9, 4)
    got = listed_pair_agreement(r, a, b)
    assert got["n11"].tolist() == [int((r[i] & r[j]).sum()) for i, j in zip(a, b)]


def test_base_pair_index_is_the_base_rows_of_pair_index():
    from zoolens.errors import ZoolensError
    from zoolens.measure.agreement import base_pair_index, pair_index

    for m in (2, 5, 8):
        a, b = pair_index(m)
        for base in range(m):
            keep = (a == base) | (b == base)
            ba, bb = base_pair_index(m, base)
            assert ba.tolist() == a[keep].tolist() and bb.tolist() == b[keep].tolist()
    with pytest.raises(ZoolensError):
        base_pair_index(3, 3)


def test_pair_list_kernels_equal_their_all_pairs_rows():
    from zoolens.measure import topk
    from zoolens.measure.agreement import base_pair_index, pair_index
    from zoolens.measure.ensemble import all_pair_ensemble_correct

    rng = np.random.default_rng(1)
    for num_classes in (7, 130):
        x = rng.dirichlet(np.full(num_classes, 0.3), size=(6, 90)).astype(np.float32)
        x[2, 5] = x[4, 5]  # exact ties across models
        x[1, 7, :] = np.nan  # a NaN row goes to the full rows
        y = rng.integers(0, num_classes, 90)
        everything = topk.all_pair_ensemble_predictions_topk(x)
        full = all_pair_ensemble_correct(x, y, return_predictions=True)
        a, b = pair_index(6)
        for pairs in (base_pair_index(6, 3), (np.array([5, 0, 1]), np.array([1, 4, 2]))):
            # w = 0.5: a pair's scores are the same in either order (IEEE + commutes)
            rows = [np.flatnonzero((a == min(i, j)) & (b == max(i, j)))[0] for i, j in zip(*pairs)]
            got = topk.all_pair_ensemble_predictions_topk(x, pairs=pairs)
            np.testing.assert_array_equal(got, everything[rows])
            np.testing.assert_array_equal(
                all_pair_ensemble_correct(x, y, return_predictions=True, pairs=pairs), full[rows]
            )
            # oracle: the full-row argmax of each listed pair, written out
            for p, (i, j) in enumerate(zip(*pairs)):
                want = (np.float32(0.5) * x[i] + np.float32(0.5) * x[j]).argmax(axis=1)
                np.testing.assert_array_equal(got[p], want)


def test_theta_table_in_blocks_of_models_equals_one_block(monkeypatch):
    """theta.csv's histogram runs in blocks of other models (bounded temporaries at
    thousands of models); the counts are the same as in one block."""
    import zoolens.study.specialize as specialize

    rng = np.random.default_rng(0)
    confidence = rng.random((23, 400)).astype(np.float32)
    confidence[5] = np.nan  # a decision-only model: no rows
    correct = rng.random((23, 400)) < 0.7
    names = [f"m{i}" for i in range(23)]
    whole = specialize.theta_table(3, names, correct, confidence)
    monkeypatch.setattr(specialize, "_THETA_BLOCK_ENTRIES", 1000)  # blocks of 2 models
    blocked = specialize.theta_table(3, names, correct, confidence)
    assert blocked.equals(whole) and len(whole) == 21 * 4 * 18
    assert whole["count"].sum() == 21 * 400


def test_base_only_without_calibration_split(tmp_path):
    """No calibration split: measures on all examples and cross-fitted greedy selection
    (greedy_folds.csv), the same rows as the all-pairs run."""
    zoo = ref.build_synthetic(tmp_path / "zoo", seed=7)
    _compare_runs(
        zoo, "wide", dict(calibration=False, folds=3, max_steps=2, n_bootstrap=40), tmp_path
    )
