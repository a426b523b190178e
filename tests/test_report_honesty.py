"""A report that never misleads (issue 15), one test per rule, on copies of the synthetic
results folder (tests/_report_fixtures.py) changed to force each case."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pandas as pd
import pytest

from _report_fixtures import BASE_NAME, shared_results_dir
from zoolens.report import build_report
from zoolens.report import figures as F
from zoolens.report.headline import _headline_greedy
from zoolens.report.html import (
    correlation_text,
    greedy_weights,
    matched_accuracy_rows,
)
from zoolens.report.tables import load_results, pairs_with_base


@pytest.fixture()
def folder(tmp_path):
    out = tmp_path / "results"
    shutil.copytree(shared_results_dir(), out)
    for name in (
        "probe",
        "diversity",
        "transfer",
        "stacking",
        "cka",
        "theta",
        "reliability",
        "interpolation",
        "specialization",
    ):  # only what these tests need: faster
        for ext in ("csv", "json", "parquet"):
            (out / f"{name}.{ext}").unlink(missing_ok=True)
    return out


def _pairs(folder) -> pd.DataFrame:
    return pd.read_csv(folder / "pairs.csv", keep_default_na=False, na_values=[""])


def test_gain_column_is_over_the_better_member(folder):
    pairs = _pairs(folder)
    # one pair whose ensemble is below its better member but above the members' mean
    mine = pairs.index[(pairs.model_a == BASE_NAME) | (pairs.model_b == BASE_NAME)][0]
    best = max(pairs.loc[mine, "acc_a"], pairs.loc[mine, "acc_b"])
    worst = min(pairs.loc[mine, "acc_a"], pairs.loc[mine, "acc_b"])
    pairs.loc[mine, "ensemble_acc"] = 0.999
    pairs = pairs.drop(columns=[c for c in pairs.columns if c.startswith("gain_over")])
    pairs.to_csv(folder / "pairs.csv", index=False)
    results = load_results(folder)
    got = results.tables["pairs"].loc[mine]
    assert got.gain_over_best == pytest.approx(0.999 - best)  # derived for older tables
    with_base = pairs_with_base(results.tables["pairs"], BASE_NAME)
    acc_base = with_base.acc_base.to_numpy()
    assert with_base.gain_over_base.to_numpy() == pytest.approx(
        with_base.ensemble_acc.to_numpy() - acc_base, nan_ok=True
    )
    assert worst < best
    report = build_report(folder, folder / "r.html", warn=None)
    page = report.path.read_text()
    table = page.split('id="table-sidekick"')[1].split("</table>")[0]
    headers = re.findall(r'<th scope="col" title="([^"]*)">([^<]*)</th>', table)
    names = [h[1] for h in headers]
    assert names[6:9] == ["Gain", "Gain over base", "Gain over members&#x27; mean"]
    assert "better member" in headers[6][0]
    first = table.split("<tbody>")[1].split("</tr>")[0]
    cells = re.findall(r'<td data-sort="([^"]*)" class="num">', first)
    ranked = with_base.sort_values("ensemble_acc", ascending=False, kind="stable").iloc[0]
    assert float(cells[4]) == pytest.approx(ranked.gain_over_best)
    assert float(cells[5]) == pytest.approx(ranked.gain_over_base)
    assert float(cells[6]) == pytest.approx(ranked.ensemble_gain)
    assert ranked.gain_over_best == pytest.approx(0.999 - best)


def test_structural_nan_leaves_fig10_out_with_the_reason(folder):
    pairs = _pairs(folder)
    pairs["neither_conversion"] = np.nan
    pairs.to_csv(folder / "pairs.csv", index=False)
    summary = json.loads((folder / "summary.json").read_text())
    summary["undefined"] = {
        "neither_conversion": {"pairs": len(pairs), "reason": "0 by construction (top-1)"}
    }
    (folder / "summary.json").write_text(json.dumps(summary))
    report = build_report(folder, folder / "r.html", warn=None)
    assert "fig10" not in report.figures
    assert report.skipped["fig10"] == "0 by construction (top-1)"


def test_zero_only_figure_is_left_out(folder):
    pairs = _pairs(folder)
    pairs["neither_conversion"] = 0.0
    pairs.to_csv(folder / "pairs.csv", index=False)
    report = build_report(folder, folder / "r.html", warn=None)
    assert "fig10" not in report.figures and "0 for every pair" in report.skipped["fig10"]


def test_decision_only_pairs_leave_fig2_out(folder):
    pairs = _pairs(folder)
    for column in pairs.columns:
        if column.startswith(("ensemble_", "gain_over", "conversion", "neither")):
            pairs[column] = np.nan
    pairs.to_csv(folder / "pairs.csv", index=False)
    report = build_report(folder, folder / "r.html", warn=None)
    assert "fig2" not in report.figures and "no pair has an ensemble" in report.skipped["fig2"]
    assert "fig10" not in report.figures
    assert any("no pair with the base has an ensemble" in n for n in report.notes)


def test_error_bars_are_bootstrap_intervals(folder):
    results = load_results(folder)
    drawn = F.fig1_error_inconsistency(results)
    head = results.summary["headline"]["mean_error_inconsistency_by_category"]
    pairs = F.select_pairs(results)
    for cat, entry in drawn.data["error_inconsistency"].items():
        assert (entry["lo"], entry["hi"]) == (head[cat]["lo"], head[cat]["hi"])  # the text's
        assert entry["interval"] == F.INTERVALS_EXAMPLES
    for cat, entry in drawn.data["error_consistency"].items():
        values = pairs[pairs.category == cat].error_consistency.to_numpy(float)
        if len(values) < 2:
            assert np.isnan(entry["lo"]) and entry["interval"] is None
            continue
        # independent: a percentile bootstrap of the mean over the category's pairs
        means = values[
            np.random.default_rng(0).integers(0, len(values), (F.PAIR_RESAMPLES, len(values)))
        ]
        lo, hi = np.quantile(means.mean(axis=1), [0.025, 0.975])
        assert (entry["lo"], entry["hi"]) == pytest.approx((lo, hi))
        assert entry["lo"] <= entry["mean"] <= entry["hi"]
    assert any("95 % bootstrap intervals" in s for s in drawn.shown)
    assert "s.d." not in " ".join(drawn.shown)


def test_kappa_matrix_holds_every_pair_in_cluster_order(folder):
    results = load_results(folder)
    drawn = F.fig_kappa_matrix(results)
    pairs = results.tables["pairs"]
    models = drawn.data["models"]
    assert sorted(models) == sorted(set(pairs.model_a) | set(pairs.model_b))
    at = {m: i for i, m in enumerate(models)}
    for a, b, k, c in zip(pairs.model_a, pairs.model_b, pairs.error_consistency, pairs.category):
        assert drawn.data["kappa"][at[a]][at[b]] == pytest.approx(k)
        assert drawn.data["category"][at[b]][at[a]] == c
    # clustering: the most consistent pair of models sits side by side
    k = np.array(drawn.data["kappa"])
    np.fill_diagonal(k, -np.inf)
    i, j = np.unravel_index(np.nanargmax(k), k.shape)
    assert abs(i - j) == 1
    assert any(s.startswith("letters:") for s in drawn.shown)


def test_correlations_over_few_pairs_say_too_few():
    assert (
        correlation_text({"rho": 1.0, "p_value": 0.0, "n_pairs": 3}, "pairs with the base")
        == "too few pairs over pairs with the base (n = 3; at least 5 needed)"
    )
    text = correlation_text(
        {"rho": 0.5, "lo": 0.1, "hi": 0.8, "p_value": 0.01, "n_pairs": 12}, "all pairs"
    )
    assert text == "ρ = 0.50 [0.10, 0.80], p = 0.01 over all pairs (n = 12)"


def test_greedy_reports_distinct_members_with_weights():
    members = ["base", "x", "x", "y", "base", "x"]
    assert greedy_weights(members) == [("base", 2), ("x", 3), ("y", 1)]
    text = _headline_greedy(
        {
            "start": "base",
            "members": members,
            "evaluation_acc": 0.9,
            "gain_over_start": 0.01,
            "gain_over_start_lo": 0.002,
            "gain_over_start_hi": 0.02,
        }
    )
    assert "3 distinct models in 6 steps" in text and "x</span> 3/6" in text
    assert "[+0.20, +2.00]" in text


def test_matched_accuracy_table_equals_the_regression(folder):
    from zoolens.measure.stats import accuracy_adjusted_means

    results = load_results(folder)
    rows = {r["category"]: r for r in matched_accuracy_rows(results)}
    with_base = pairs_with_base(results.tables["pairs"], BASE_NAME)
    fit = accuracy_adjusted_means(
        with_base.error_inconsistency, with_base.category, with_base.acc_other
    )
    for k, cat in enumerate(fit.categories):
        assert rows[cat]["error_inconsistency"] == pytest.approx(fit.mean[k])
        assert rows[cat]["error_inconsistency_lo"] == pytest.approx(fit.lo[k], nan_ok=True)
        raw = with_base[with_base.category == cat].error_inconsistency.mean()
        assert rows[cat]["error_inconsistency_raw"] == pytest.approx(raw)
    page = build_report(results.path, results.path / "r.html", warn=None).path.read_text()
    assert 'id="table-matched"' in page and "at matched accuracy" in page


def test_card_hparam_none_is_shown_as_none():
    from zoolens.report.sections import _hparams_text

    assert _hparams_text({"max_depth": None, "n": 10}) == "max_depth=None, n=10"
