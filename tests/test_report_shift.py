"""The report's "Under distribution shift" section, built from the tables of analyze --shift."""

from __future__ import annotations

import re

import numpy as np
import pytest
from scipy import stats
from typer.testing import CliRunner

from test_study_shift import make_zoos
from zoolens.cli import app
from zoolens.report import build_report

runner = CliRunner()
EVIL_SET = '<script>alert("v2")</script> & <b>'  # a set name is free text (no "=")


@pytest.fixture(scope="module")
def shift_results(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("shift_report")
    ref, shifted = make_zoos(tmp)
    out = tmp / "out"
    res = runner.invoke(
        app,
        [
            "--quiet",
            "analyze",
            str(ref.path),
            "--base",
            "base",
            "--out",
            str(out),
            "--bootstrap",
            "50",
            "--shift",
            f"{EVIL_SET}={shifted.path}",
        ],
    )
    assert res.exit_code == 0, res.output
    return out


def test_section_shows_lines_categories_and_sidekick_ranks(shift_results, tmp_path):
    report = build_report(shift_results, tmp_path / "r.html", warn=None)
    page = (tmp_path / "r.html").read_text()
    assert page.count('<section id="shift"><h2>Under distribution shift</h2>') == 1
    for key in ("shift-accuracy", "shift-agreement", "shift-categories"):
        assert f'data-figure="{key}"' in page and key in report.figures
    assert 'id="table-shift-fits"' in page and 'id="table-shift-sidekicks"' in page
    # the set name is text everywhere, never markup
    assert EVIL_SET not in page and page.count("<script>") == 1
    assert "&lt;script&gt;alert(&quot;v2&quot;)&lt;/script&gt; &amp; &lt;b&gt;" in page
    # the figures plot the tables' numbers and the line of shift_fits.csv
    import pandas as pd

    models = pd.read_csv(shift_results / "shift_models.csv", keep_default_na=False, na_values=[""])
    fits = pd.read_csv(shift_results / "shift_fits.csv", keep_default_na=False, na_values=[""])
    data = report.figure_data["shift-accuracy"][EVIL_SET]
    shifted = models[models.set == EVIL_SET]
    np.testing.assert_allclose(data["y"], shifted.accuracy)
    np.testing.assert_allclose(data["x"], shifted.reference_accuracy)
    row = fits[(fits.set == EVIL_SET) & (fits.measure == "accuracy")].iloc[0]
    assert data["slope"] == pytest.approx(row.slope)
    # probit axes labelled in accuracy: tick labels are percentages at probit positions
    svg = page[page.index('id="zl-shift-accuracy"') : page.index('id="zl-shift-agreement"')]
    ticks = re.findall(r">(\d+(?:\.\d+)?)%<", svg)
    assert len(ticks) >= 4
    assert "probit scale" in svg and "y = x" in svg and "probit fit" in svg
    cats = report.figure_data["shift-categories"]
    assert set(cats["sets"]) == {"reference", EVIL_SET}
    pairs = pd.read_csv(shift_results / "shift_pairs.csv", keep_default_na=False, na_values=[""])
    mine = pairs[(pairs.set == EVIL_SET) & ((pairs.model_a == "base") | (pairs.model_b == "base"))]
    for k, category in enumerate(cats["categories"]):
        expected = mine[mine.category == category].error_inconsistency.mean()
        assert cats["sets"][EVIL_SET]["mean"][k] == pytest.approx(expected, nan_ok=True)
    assert stats.norm.ppf(0.5) == 0  # probit of 50 % sits at 0 on both axes


def test_no_shift_tables_no_section_and_no_note(shift_results, tmp_path):
    import shutil

    plain = tmp_path / "plain"
    shutil.copytree(shift_results, plain)
    for name in ("shift_models", "shift_pairs", "shift_fits"):
        (plain / f"{name}.csv").unlink()
        (plain / f"{name}.parquet").unlink()
    report = build_report(plain, tmp_path / "r.html", warn=None)
    page = (tmp_path / "r.html").read_text()
    assert 'id="shift"' not in page
    assert not [n for n in report.notes if n.startswith("shift_") or "distribution shift" in n]


def test_malformed_shift_table_is_one_note_and_the_rest_renders(shift_results, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(shift_results, broken)
    text = (broken / "shift_fits.csv").read_text().replace("slope", "slop", 1)
    (broken / "shift_fits.csv").write_text(text)
    report = build_report(broken, tmp_path / "r.html", warn=None)
    page = (tmp_path / "r.html").read_text()
    assert 'id="shift"' not in page and 'id="table-models"' in page
    assert any("shift_fits.csv: missing column(s) slope" in n for n in report.notes)
