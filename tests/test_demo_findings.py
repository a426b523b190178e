"""The demo's verdict rules (zoolens.demo.findings), each forced to "holds", "partly" and
"does not hold" on small hand-made results folders (tables written here, numbers chosen so
the expected verdict follows from the rule in the module doc by hand)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from zoolens.demo.findings import collect_findings, order_verdict

BASE = "base"
ORDER = ["Reinit", "HParam", "Arch", "Framework", "Dataset"]


def _pairs(ei_by_cat: dict[str, list[float]], acc: dict[str, list[float]]) -> pd.DataFrame:
    rows = []
    for cat, values in ei_by_cat.items():
        for k, (ei, a) in enumerate(zip(values, acc[cat])):
            rows.append(
                {
                    "model_a": BASE,
                    "model_b": f"{cat}-{k}",
                    "category": cat,
                    "acc_a": 0.9,
                    "acc_b": a,
                    "error_inconsistency": ei,
                }
            )
    return pd.DataFrame(rows)


def _folder(tmp_path, *, pairs=None, headline=None, models=None, probe=None):
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "summary.json").write_text(json.dumps({"base": BASE, "headline": headline or {}}))
    for name, table in (("pairs", pairs), ("models", models), ("probe", probe)):
        if table is not None:
            table.to_csv(tmp_path / f"{name}.csv", index=False)
    return collect_findings(tmp_path, None, None, [])


def _find(findings, key):
    return next(f for f in findings if f["key"] == key)


def test_order_verdict_counts_increasing_steps():
    assert order_verdict([0.1, 0.2, 0.3]) == "holds"
    assert order_verdict([0.1, 0.3, 0.2]) == "partly"
    assert order_verdict([0.3, 0.2, 0.2]) == "does not hold"  # a tie is a failure
    assert order_verdict([0.3]) == "not measured"


@pytest.mark.parametrize(
    "effects,verdict",
    [
        ([0.02, 0.04, 0.06, 0.08, 0.10], "holds"),
        ([0.02, 0.04, 0.03, 0.08, 0.06], "partly"),
        ([0.10, 0.08, 0.06, 0.04, 0.02], "does not hold"),
    ],
)
def test_ei_by_category_uses_matched_accuracy(tmp_path, effects, verdict):
    """EI = category effect + 0.5 * (1 - accuracy), accuracies chosen so that the raw means
    are in the *opposite* order to the effects in the first case: only the accuracy-matched
    comparison recovers the planted order."""
    rng = np.random.default_rng(1)
    if verdict == "holds":  # the more distant the category, the more accurate its models
        acc = {c: list(0.6 + 0.07 * k + rng.uniform(-0.02, 0.02, 3)) for k, c in enumerate(ORDER)}
    else:
        acc = {c: list(rng.uniform(0.6, 0.9, 3)) for c in ORDER}
    ei = {c: [e + 0.5 * (1 - a) for a in acc[c]] for c, e in zip(ORDER, effects)}
    findings = _folder(tmp_path, pairs=_pairs(ei, acc))
    got = _find(findings, "ei_by_category")
    assert got["verdict"] == verdict, got
    assert "matched accuracy" in got["measured"]
    if verdict == "holds":  # the raw means alone would have said "does not hold"
        raw = [np.mean(ei[c]) for c in ORDER]
        assert order_verdict(raw) != "holds"


def test_ei_by_category_without_pairs_uses_the_raw_means(tmp_path):
    headline = {
        "mean_error_inconsistency_by_category": {
            "Reinit": {"mean": 0.05, "lo": 0.04, "hi": 0.06, "n_pairs": 1},
            "Dataset": {"mean": 0.01, "lo": 0.0, "hi": 0.02, "n_pairs": 1},
        }
    }
    got = _find(_folder(tmp_path, headline=headline), "ei_by_category")
    assert got["verdict"] == "does not hold" and "raw means" in got["measured"]


@pytest.mark.parametrize(
    "rho,p,n,verdict",
    [
        (0.8, 0.001, 20, "holds"),
        (0.1, 0.6, 20, "does not hold"),
        (-0.5, 0.01, 20, "does not hold"),
        (1.0, 0.0, 3, "not measured"),
    ],
)
def test_ei_vs_gain(tmp_path, rho, p, n, verdict):
    headline = {
        "spearman_ei_vs_gain": {
            "all_pairs": {"rho": rho, "p_value": p, "n_pairs": n, "lo": rho - 0.1, "hi": rho + 0.05}
        }
    }
    got = _find(_folder(tmp_path, headline=headline), "ei_vs_gain")
    assert got["verdict"] == verdict
    if n < 5:
        assert got["measured"].startswith("too few pairs (n = 3")


def _greedy_headline(members, gain, lo, hi, start=BASE):
    return {
        "greedy": {
            "start": start,
            "members": members,
            "start_evaluation_acc": 0.80,
            "evaluation_acc": 0.80 + gain,
            "gain_over_start": gain,
            "gain_over_start_lo": lo,
            "gain_over_start_hi": hi,
        }
    }


MODELS = pd.DataFrame(
    {"model": [BASE, "weak", "weaker", "strong"], "accuracy": [0.80, 0.70, 0.60, 0.85]}
)


@pytest.mark.parametrize(
    "members,gain,lo,hi,verdict",
    [
        ([BASE, "weak", "weak", "weaker"], 0.02, 0.01, 0.03, "holds"),
        ([BASE, "weak"], 0.004, -0.001, 0.009, "partly"),
        ([BASE, "weak"], -0.01, -0.02, 0.0, "does not hold"),
        ([BASE], 0.0, 0.0, 0.0, "does not hold"),
        ([BASE, "strong"], 0.02, 0.01, 0.03, "not measured"),
    ],
)
def test_greedy_compares_with_the_base_on_the_reported_split(
    tmp_path, members, gain, lo, hi, verdict
):
    got = _find(
        _folder(tmp_path, headline=_greedy_headline(members, gain, lo, hi), models=MODELS),
        "greedy_low_accuracy",
    )
    assert got["verdict"] == verdict, got
    if verdict == "holds":  # distinct members with weights, accuracies on the same split
        assert (
            "2 other distinct model(s), weights: weak 2/4 (70.00%), weaker 1/4 (60.00%)"
            in got["measured"]
        )
    if verdict == "not measured":
        assert "Not lower-accuracy on this split: strong" in got["measured"]


def test_greedy_from_another_start_is_not_measured(tmp_path):
    got = _find(
        _folder(
            tmp_path,
            headline=_greedy_headline(["strong", "weak"], 0.01, 0.0, 0.02, start="strong"),
            models=MODELS,
        ),
        "greedy_low_accuracy",
    )
    assert got["verdict"] == "not measured" and "not the base" in got["measured"]


@pytest.mark.parametrize(
    "halves,verdict", [([0.9, 0.9], "holds"), ([0.9, 0.7], "partly"), ([0.7, 0.7], "does not hold")]
)
def test_combined_features(tmp_path, halves, verdict):
    rows = []
    for k, half in enumerate(halves):
        for rate, acc in ((0.0, 0.8), (0.5, half), (1.0, 0.85)):
            rows.append(
                {"model_a": BASE, "model_b": f"m{k}", "rate": rate, "draw": 0, "accuracy": acc}
            )
    got = _find(_folder(tmp_path, probe=pd.DataFrame(rows)), "combined_features")
    assert got["verdict"] == verdict
    if verdict == "partly":
        assert "holds for 1 of 2 pairs" in got["measured"]
