"""Reading and checking result tables (zoolens.report.tables): contracts, bad input, names."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from _report_fixtures import BASE_NAME, EVIL_NAME, shared_results_dir
from zoolens.errors import ZoolensError
from zoolens.report.tables import TABLE_SPECS, load_results, pairs_with_base


@pytest.fixture(scope="module")
def results_dir():
    return shared_results_dir()


@pytest.fixture
def copy_dir(results_dir, tmp_path):
    out = tmp_path / "results"
    shutil.copytree(results_dir, out)
    return out


def test_every_table_loads_with_names_as_text_and_no_notes(results_dir):
    results = load_results(results_dir)
    assert results.notes == []
    # the fixture also writes pareto.csv (filled by analyze only when cards have costs)
    assert set(results.tables) == (
        {name for name, spec in TABLE_SPECS.items() if spec.always} | {"pareto"}
    )
    assert results.base == BASE_NAME
    models = results.tables["models"]
    assert EVIL_NAME in set(models.model)
    raw = pd.read_csv(results_dir / "pairs.csv")
    pairs = results.tables["pairs"]
    assert len(pairs) == len(raw) == 11 * 10 // 2
    np.testing.assert_allclose(pairs.error_inconsistency, raw.error_inconsistency)
    assert results.tables["greedy"].kept.dtype == bool


def test_model_names_that_look_like_missing_values_stay_names(copy_dir):
    models = pd.read_csv(copy_dir / "models.csv", keep_default_na=False)
    models.loc[1, "model"] = "NA"
    models.loc[2, "model"] = "null"
    models.to_csv(copy_dir / "models.csv", index=False)
    names = list(load_results(copy_dir).tables["models"].model)
    assert names[1] == "NA" and names[2] == "null"


def test_missing_table_is_one_note_naming_it_and_the_rest_loads(copy_dir):
    (copy_dir / "theta.csv").unlink()
    (copy_dir / "cka.csv").unlink()
    results = load_results(copy_dir)
    assert "theta" not in results.tables and "cka" not in results.tables
    assert "pairs" in results.tables
    [note] = [n for n in results.notes if "not found" in n]
    assert "theta.csv" in note and "cka.csv" in note and "\n" not in note


def test_missing_needed_column_leaves_the_table_out(copy_dir):
    pairs = pd.read_csv(copy_dir / "pairs.csv")
    pairs.drop(columns=["ensemble_acc"]).to_csv(copy_dir / "pairs.csv", index=False)
    results = load_results(copy_dir)
    assert "pairs" not in results.tables
    assert any(n.startswith("pairs.csv: missing column(s) ensemble_acc") for n in results.notes)
    assert "models" in results.tables


def test_unknown_column_is_noted_and_ignored(copy_dir):
    models = pd.read_csv(copy_dir / "models.csv")
    models["flux_capacitance"] = 1.21
    models.to_csv(copy_dir / "models.csv", index=False)
    results = load_results(copy_dir)
    assert "flux_capacitance" not in results.tables["models"].columns
    assert any("models.csv: unknown column(s) flux_capacitance" in n for n in results.notes)


def test_bounds_columns_of_agreed_columns_are_not_unknown(copy_dir):
    pairs = pd.read_csv(copy_dir / "pairs.csv")
    pairs["ensemble_acc_lo"] = pairs.ensemble_acc - 0.01
    pairs["mcnemar_p"] = 0.5
    pairs.to_csv(copy_dir / "pairs.csv", index=False)
    assert not any("unknown" in n for n in load_results(copy_dir).notes)


def test_text_in_a_numeric_column_leaves_the_table_out_naming_row(copy_dir):
    greedy = pd.read_csv(copy_dir / "greedy.csv")
    greedy["evaluation_acc"] = greedy["evaluation_acc"].astype(object)
    greedy.loc[2, "evaluation_acc"] = "oops"
    greedy.to_csv(copy_dir / "greedy.csv", index=False)
    results = load_results(copy_dir)
    assert "greedy" not in results.tables
    assert any(
        "greedy.csv: column evaluation_acc" in n and "'oops'" in n and "row 3" in n
        for n in results.notes
    )


def test_unknown_table_version_leaves_out_the_analyze_tables_only(copy_dir):
    summary = json.loads((copy_dir / "summary.json").read_text())
    summary["table_version"] = 99
    (copy_dir / "summary.json").write_text(json.dumps(summary))
    results = load_results(copy_dir)
    assert "pairs" not in results.tables and "models" not in results.tables
    assert "probe" in results.tables and "cka" in results.tables
    assert any(
        n.startswith("summary.json: table_version 99") and "pairs.csv left out" in n
        for n in results.notes
    )


def test_probe_table_with_unknown_sibling_version_is_left_out(copy_dir):
    (copy_dir / "probe.json").write_text(json.dumps({"table_version": 7}))
    results = load_results(copy_dir)
    assert "probe" not in results.tables and "diversity" in results.tables
    assert any(n.startswith("probe.json: table_version 7") for n in results.notes)


def test_broken_summary_is_a_note_and_base_is_inferred(copy_dir):
    (copy_dir / "summary.json").write_text("{not json")
    results = load_results(copy_dir)
    assert results.base == BASE_NAME  # the one model whose category is "Same"
    assert any(n.startswith("summary.json: not readable as JSON") for n in results.notes)


def test_parquet_is_read_when_the_csv_is_absent(copy_dir):
    frame = pd.read_csv(copy_dir / "interpolation.csv")
    frame.to_parquet(copy_dir / "interpolation.parquet", index=False)
    (copy_dir / "interpolation.csv").unlink()
    results = load_results(copy_dir)
    np.testing.assert_allclose(results.tables["interpolation"].ensemble_acc, frame.ensemble_acc)


def test_specialization_counts_are_read_as_fractions(copy_dir):
    spec = pd.read_csv(copy_dir / "specialization.csv")
    expected = spec.only_a_right.to_numpy()
    counts = spec.copy()
    counts["only_a_right"] = (spec.only_a_right * spec.n).round()
    counts["only_b_right"] = (spec.only_b_right * spec.n).round()
    counts.to_csv(copy_dir / "specialization.csv", index=False)
    got = load_results(copy_dir).tables["specialization"].only_a_right.to_numpy()
    np.testing.assert_allclose(got, expected, atol=1e-9)


def test_folder_without_tables_or_missing_folder_is_an_error(tmp_path):
    with pytest.raises(ZoolensError, match="no result tables found"):
        load_results(tmp_path)
    with pytest.raises(ZoolensError, match="no such directory"):
        load_results(tmp_path / "absent")


def test_pairs_with_base_orients_both_sides():
    pairs = pd.DataFrame(
        {
            "model_a": ["x", "base", "x"],
            "model_b": ["base", "y", "y"],
            "acc_a": [0.1, 0.5, 0.1],
            "acc_b": [0.5, 0.2, 0.2],
            "error_inconsistency": [0.3, 0.4, 0.5],
        }
    )
    got = pairs_with_base(pairs, "base")
    assert list(got.other) == ["x", "y"]
    assert list(got.acc_base) == [0.5, 0.5]
    assert list(got.acc_other) == [0.1, 0.2]
    assert list(got.error_inconsistency) == [0.3, 0.4]


def test_report_package_imports_neither_study_nor_zoo():
    """CONTRACTS: a report is rebuilt from a results folder alone."""
    import ast
    from pathlib import Path

    import zoolens.report

    for file in Path(zoolens.report.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(file.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert not name.startswith(
                    ("zoolens.study", "zoolens.zoo", "zoolens.collect", "zoolens.demo")
                ), (file.name, name)
