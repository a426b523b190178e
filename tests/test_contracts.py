"""zoolens.contracts: one spelling of every table, honoured by the writers and the report.

The round trip runs the real commands (``zoolens analyze``, ``zoolens probe``, ``zoolens
probe --stack``) into one folder and reads it back with the report's loader: every table
of the contract present, in the contract's column order, versioned by its sibling
``<table>.json``, and not one note.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import zoolens
from zoolens import contracts
from zoolens.cli import app
from zoolens.report.tables import load_results
from zoolens.zoo.store import Zoo

runner = CliRunner()


def _views(n: int, seed: int):
    """Two embeddings that each carry one bit of a 4-class label (complementary views)."""
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 2, size=(n, 2))
    y = bits[:, 0] * 2 + bits[:, 1]
    a = np.concatenate([(2 * bits[:, :1] - 1) * 2.0, rng.normal(size=(n, 5))], 1)
    b = np.concatenate([(2 * bits[:, 1:] - 1) * 2.0, rng.normal(size=(n, 3))], 1)
    return (
        (a + rng.normal(size=a.shape)).astype(np.float32),
        (b + rng.normal(size=b.shape)).astype(np.float32),
        y,
    )


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("contracts")
    a, b, y = _views(300, 0)
    rng = np.random.default_rng(1)
    up = Zoo.create(root / "up", y)
    up.add(
        "alpha",
        logits=rng.normal(size=(300, 4)) + 3 * np.eye(4)[y],
        embeddings=a,
        card={"arch": "mlp", "framework": "supervised"},
    )
    up.add(
        "beta",
        logits=rng.normal(size=(300, 4)) + 2 * np.eye(4)[y],
        embeddings=b,
        card={"arch": "cnn", "framework": "supervised"},
    )
    up.add(
        "gamma",
        logits=rng.normal(size=(300, 4)) + 1.5 * np.eye(4)[y],
        card={"arch": "cnn", "framework": "contrastive"},
    )
    da, db, dy = _views(200, 2)
    down = Zoo.create(root / "down", dy)
    down.add("alpha", logits=rng.normal(size=(200, 4)), embeddings=da)
    down.add("beta", logits=rng.normal(size=(200, 4)), embeddings=db)
    out = root / "results"
    for args in (
        ["analyze", str(up.path), "--base", "alpha", "--bootstrap", "20"],
        [
            "probe",
            str(up.path),
            "--models",
            "alpha,beta",
            "--rates",
            "0,.5,1",
            "--draws",
            "2",
            "--l2-grid",
            "1e-2,1e-4",
        ],
        [
            "probe",
            str(up.path),
            "--models",
            "alpha,beta",
            "--stack",
            "--downstream",
            str(down.path),
            "--l2-grid",
            "1e-3",
        ],
    ):
        result = runner.invoke(app, ["--quiet", *args, "--out", str(out)])
        assert result.exit_code == 0, result.output
    return out


# analyze writes the shift tables only with --shift (no empty files otherwise; issue 27)
WRITTEN = {n: c for n, c in contracts.RESULT_TABLES.items() if not n.startswith("shift_")}


def test_real_analyze_and_probe_output_loads_with_zero_notes(results):
    loaded = load_results(results)
    assert loaded.notes == []
    assert set(loaded.tables) == set(WRITTEN)
    assert not list(results.glob("shift_*"))
    for name, contract in WRITTEN.items():
        # greedy_folds.csv is filled only without a calibration split
        assert (len(loaded.tables[name]) > 0) == contract.always, name
        # exactly the contract's columns, in its order, as written
        assert list(pd.read_csv(results / contract.filename, nrows=0).columns) == list(
            contract.columns
        ), name


def test_every_table_is_versioned_by_its_sibling_json(results):
    for name, contract in WRITTEN.items():
        record = json.loads((results / f"{name}.json").read_text())
        assert record["table"] == name
        assert record["table_version"] == contract.version == contracts.TABLE_VERSION
    summary = json.loads((results / "summary.json").read_text())
    assert summary["table_version"] == contracts.TABLE_VERSION
    assert summary["format_version"] == contracts.RESULTS_FORMAT_VERSION


def test_a_sibling_with_an_unknown_version_leaves_that_table_out(results, tmp_path):
    import shutil

    copy = tmp_path / "r"
    shutil.copytree(results, copy)
    unknown = max(contracts.SUPPORTED_TABLE_VERSIONS) + 1
    for name in ("models", "cka"):  # one analyze table, one probe table: the same rule
        (copy / f"{name}.json").write_text(json.dumps({"table": name, "table_version": unknown}))
    loaded = load_results(copy)
    assert "models" not in loaded.tables and "cka" not in loaded.tables
    assert any(
        n.startswith(f"models.json: table_version {unknown}") and "models.csv left out" in n
        for n in loaded.notes
    )
    assert any(
        n.startswith(f"cka.json: table_version {unknown}") and "cka.csv left out" in n
        for n in loaded.notes
    )


def test_a_contract_that_contradicts_itself_is_refused():
    with pytest.raises(AssertionError, match="optional"):
        contracts.TableContract("t", columns=("a",), optional=("b",))
    with pytest.raises(AssertionError, match="repeated"):
        contracts.TableContract("t", columns=("a", "a"))
    assert contracts.PROBE.needed == ("model_a", "model_b", "rate", "draw", "accuracy")


def test_contracts_module_imports_only_the_standard_library():
    tree = ast.parse(Path(contracts.__file__).read_text(encoding="utf-8"))
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    imported |= {
        node.module.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module
    }
    assert imported <= {"__future__", "dataclasses", "typing"}, imported
    assert Path(contracts.__file__).parent == Path(zoolens.__file__).parent
