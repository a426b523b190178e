"""The report on zoos unlike the demo (issue 15), built from ../shared/data: every model top-1
only, and every model decision-only. Checked in headless Chromium (see _report_checks): no
empty or zero-only figure, κ present, every quoted interval equal to the tables, quantities
undefined for these kinds left out with the reason, never drawn as zeros."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from _report_checks import check_page
from _zoo_kinds import build_decision_zoo, build_top1_zoo
from test_report_browser import browser  # noqa: F401  (the shared Chromium fixture)


@pytest.fixture(scope="module")
def top1(tmp_path_factory):
    from zoolens.report import build_report
    from zoolens.study.analyze import analyze

    root = tmp_path_factory.mktemp("top1")
    zoo = build_top1_zoo(root / "zoo")
    analyze(zoo, "densenet", root / "results", n_bootstrap=200, max_steps=8)
    return build_report(root / "results", root / "report.html", warn=None), root / "results"


@pytest.fixture(scope="module")
def decisions(tmp_path_factory):
    from zoolens.report import build_report
    from zoolens.study.analyze import analyze

    root = tmp_path_factory.mktemp("decisions")
    zoo = build_decision_zoo(root / "zoo")
    analyze(zoo, "resnet_basic_110", root / "results", n_bootstrap=200)
    return build_report(root / "results", root / "report.html", warn=None), root / "results"


def test_top1_zoo_has_no_neither_conversion_figure_and_says_why(top1):
    report, results = top1
    pairs = pd.read_csv(results / "pairs.csv")
    assert pairs.neither_conversion.isna().all()  # structural zero, not a measurement
    assert "fig10" not in report.figures
    assert "0 by construction" in report.skipped["fig10"]
    assert any("0 by construction" in n for n in report.notes)
    page = report.path.read_text()
    assert "[0.00%, 0.00%]" not in page and "[0.000, 0.000]" not in page
    assert {"fig1", "kappa", "fig2"} <= set(report.figures)


def test_top1_zoo_in_chromium(browser, top1):  # noqa: F811
    report, results = top1
    text = check_page(browser, report, results)
    assert "Gain over members' mean" in text


def test_decision_zoo_leaves_out_what_needs_probabilities(decisions):
    report, results = decisions
    assert "fig2" not in report.figures and "decision-only" in report.skipped["fig2"]
    assert "fig10" not in report.figures and "no pair has an ensemble" in report.skipped["fig10"]
    assert {"fig1", "kappa"} <= set(report.figures)
    page = report.path.read_text()
    assert "Rho:" not in page and "N pairs" not in page  # no raw JSON dump of a missing rho
    assert "too few pairs" in page
    kappa = report.figure_data["kappa"]
    pairs = pd.read_csv(results / "pairs.csv")
    got = {
        (a, b): kappa["kappa"][i][j]
        for i, a in enumerate(kappa["models"])
        for j, b in enumerate(kappa["models"])
        if a != b
    }
    for a, b, k in zip(pairs.model_a, pairs.model_b, pairs.error_consistency):
        assert got[(a, b)] == pytest.approx(k) and got[(b, a)] == pytest.approx(k)


def test_decision_zoo_in_chromium(browser, decisions):  # noqa: F811
    report, results = decisions
    text = check_page(browser, report, results)
    assert "Ensemble of all models: none" in text
    assert json.loads((results / "summary.json").read_text())["headline"]["greedy"]["skipped"]
    assert "not run:" in text
    assert np.isfinite(pd.read_csv(results / "pairs.csv").error_consistency).all()


def test_synthetic_fixture_report_in_chromium(browser):  # noqa: F811
    from _report_fixtures import shared_report, shared_results_dir

    report, _ = shared_report()
    check_page(browser, report, shared_results_dir())
