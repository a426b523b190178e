"""`zoolens report DIR --out FILE [--png-dir DIR] [--pairs base|all]` through the CLI."""

from __future__ import annotations

import shutil

from typer.testing import CliRunner

from _report_fixtures import shared_results_dir
from zoolens.cli import app


def runner() -> CliRunner:
    try:
        return CliRunner(mix_stderr=False)
    except TypeError:  # click >= 8.2 keeps stderr apart already
        return CliRunner()


def test_help_has_an_example():
    result = runner().invoke(app, ["report", "--help"])
    assert result.exit_code == 0
    assert "Example:" in result.output and "zoolens report" in result.output


def test_writes_the_report_and_pngs(tmp_path):
    folder = tmp_path / "results"
    folder.mkdir()
    for name in ("summary.json", "models.csv", "pairs.csv"):  # analyze's core tables only
        shutil.copy(shared_results_dir() / name, folder / name)
    out = tmp_path / "sub" / "report.html"
    png = tmp_path / "figures"
    result = runner().invoke(
        app, ["report", str(folder), "--out", str(out), "--png-dir", str(png), "--pairs", "all"]
    )
    assert result.exit_code == 0, result.output
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>") and page.count("<figure") == 4
    assert sorted(p.name for p in png.glob("*.png")) == [
        "fig01_error_inconsistency.png",
        "fig02_ensembles.png",
        "fig10_neither_conversion.png",
        "kappa_matrix.png",
    ]
    assert f"wrote {out}" in result.stderr


def test_missing_table_warns_and_still_succeeds(tmp_path):
    folder = tmp_path / "results"
    shutil.copytree(shared_results_dir(), folder)
    for name in ("probe", "diversity", "transfer", "stacking", "cka", "greedy"):
        (folder / f"{name}.csv").unlink()
    out = tmp_path / "report.html"
    result = runner().invoke(app, ["-q", "report", str(folder), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "warning: not found in" in result.stderr and "greedy.csv" in result.stderr
    assert "left out" in result.stderr
    assert out.exists() and "greedy.csv" in out.read_text()


def test_folder_without_tables_is_an_error_without_traceback(tmp_path):
    result = runner().invoke(app, ["report", str(tmp_path), "--out", str(tmp_path / "r.html")])
    assert result.exit_code == 1
    assert "error:" in result.stderr and "no result tables found" in result.stderr
    assert "Traceback" not in result.output + result.stderr
    assert not (tmp_path / "r.html").exists()


def test_missing_folder_and_bad_pairs_option_are_errors(tmp_path):
    result = runner().invoke(
        app, ["report", str(tmp_path / "nope"), "--out", str(tmp_path / "r.html")]
    )
    assert result.exit_code == 1 and "no such directory" in result.stderr
    result = runner().invoke(
        app,
        ["report", str(shared_results_dir()), "--out", str(tmp_path / "r.html"), "--pairs", "some"],
    )
    assert result.exit_code == 1 and "--pairs 'some'" in result.stderr
