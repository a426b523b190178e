"""`zoolens probe`: tables written, one-line errors with a non-zero exit on bad input."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from zoolens import contracts
from zoolens.cli import app
from zoolens.study.probe import (
    CKA_COLUMNS,
    DIVERSITY_COLUMNS,
    PROBE_COLUMNS,
    STACKING_COLUMNS,
    TRANSFER_COLUMNS,
)

runner = CliRunner()


def _views(n: int, seed: int):
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 2, size=(n, 2))
    y = bits[:, 0] * 2 + bits[:, 1]
    a = np.concatenate([(2 * bits[:, :1] - 1) * 2.0, rng.normal(size=(n, 5))], 1) + rng.normal(
        size=(n, 6)
    )
    b = np.concatenate([(2 * bits[:, 1:] - 1) * 2.0, rng.normal(size=(n, 3))], 1) + rng.normal(
        size=(n, 4)
    )
    return a.astype(np.float32), b.astype(np.float32), y


@pytest.fixture(scope="module")
def zoos(tmp_path_factory):
    from zoolens.zoo.store import Zoo

    root = tmp_path_factory.mktemp("probe-cli")
    a, b, y = _views(300, 0)
    rng = np.random.default_rng(1)
    zoo = Zoo.create(root / "up", y)
    zoo.add("alpha", logits=rng.normal(size=(300, 4)) + 3 * np.eye(4)[y], embeddings=a)
    zoo.add("beta", logits=rng.normal(size=(300, 4)) + 2 * np.eye(4)[y], embeddings=b)
    zoo.add("plain", logits=rng.normal(size=(300, 4)))
    da, db, dy = _views(200, 2)
    down = Zoo.create(root / "down", np.stack([dy >= 2, dy % 2 == 1], 1).astype(np.uint8))
    down.add("alpha", decisions=np.zeros(200, dtype=np.int64), embeddings=da)
    down.add("beta", decisions=np.zeros(200, dtype=np.int64), embeddings=db)
    short = Zoo.create(root / "short", dy)
    short.add("alpha", logits=rng.normal(size=(200, 4)), embeddings=da)
    short.add("beta", logits=rng.normal(size=(200, 4)), embeddings=db)
    return root


def test_help_has_an_example():
    result = runner.invoke(app, ["probe", "--help"])
    assert result.exit_code == 0
    assert "Example:" in result.output and "--stack" in result.output


def test_probe_writes_all_tables(zoos, tmp_path):
    out = tmp_path / "res"
    result = runner.invoke(
        app,
        [
            "--quiet",
            "probe",
            str(zoos / "up"),
            "--models",
            "alpha,beta",
            "--rates",
            "0,.5,1",
            "--draws",
            "2",
            "--l2-grid",
            "1e-2,1e-4",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "tables written" in result.output and "f=0.5" in result.output
    probe = pd.read_csv(out / "probe.csv")
    assert list(probe.columns) == PROBE_COLUMNS and len(probe) == 6
    assert list(pd.read_csv(out / "diversity.csv").columns) == DIVERSITY_COLUMNS
    cka = pd.read_csv(out / "cka.csv")
    assert list(cka.columns) == CKA_COLUMNS and cka.error_consistency.notna().all()
    for name in ("probe", "diversity", "cka"):
        assert (
            json.loads((out / f"{name}.json").read_text())["table_version"]
            == contracts.TABLE_VERSION
        )
    assert (
        probe[["n_dims_a", "n_dims_b"]].values.tolist()
        == [[0, 4]] * 2 + [[3, 2]] * 2 + [[6, 0]] * 2
    )
    assert probe.accuracy.between(0.0, 1.0).all()
    # f = 0 and f = 1 keep every dim of one model: all draws are the same probe
    assert probe[probe.rate != 0.5].groupby("rate").accuracy.nunique().tolist() == [1, 1]


def test_probe_stack_writes_transfer_and_stacking(zoos, tmp_path):
    out = tmp_path / "stack"
    result = runner.invoke(
        app,
        [
            "--quiet",
            "probe",
            str(zoos / "up"),
            "--stack",
            "--downstream",
            str(zoos / "down"),
            "--l2-grid",
            "1e-3",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    transfer = pd.read_csv(out / "transfer.csv")
    stacking = pd.read_csv(out / "stacking.csv")
    assert list(transfer.columns) == TRANSFER_COLUMNS
    assert list(stacking.columns) == STACKING_COLUMNS
    assert set(transfer.downstream_metric) == {"map11"}
    assert transfer.upstream_accuracy.notna().all()
    assert stacking[["model_a", "model_b"]].values.tolist() == [["alpha", "beta"]]


@pytest.mark.parametrize(
    "args,message",
    [
        (["--models", "alpha,plain"], "'plain' has no embeddings"),
        (["--models", "alpha,beta", "--rates", "0,1.5"], "rate 1.5 is outside [0, 1]"),
        (["--models", "alpha,beta", "--rates", "0,x"], "'x' is not a number"),
        (["--models", "alpha,ghost"], "no model named 'ghost'"),
        (["--models", "alpha,beta", "--stack"], "--stack needs --downstream"),
        (["--models", "alpha,beta", "--pair", "alpha"], "give two model names"),
    ],
)
def test_bad_input_is_one_line_and_nonzero(zoos, tmp_path, args, message):
    result = runner.invoke(app, ["probe", str(zoos / "up"), *args, "--out", str(tmp_path / "o")])
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output
    assert len([line for line in result.output.splitlines() if line.startswith("error:")]) == 1


def test_multilabel_zoo_to_the_softmax_probe_is_an_error(zoos, tmp_path):
    result = runner.invoke(
        app, ["probe", str(zoos / "down"), "--models", "alpha,beta", "--out", str(tmp_path / "o")]
    )
    assert result.exit_code != 0
    assert "multi-label" in result.output and "--stack" in result.output


def test_not_a_zoo(tmp_path):
    result = runner.invoke(app, ["probe", str(tmp_path), "--out", str(tmp_path / "o")])
    assert result.exit_code != 0
    assert "error:" in result.output
