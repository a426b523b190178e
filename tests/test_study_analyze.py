"""zoolens.study.analyze and its parts, against independent float64 recomputations.

The reference numbers here are written from the definitions of DESIGN.md sec. 3 with plain
numpy loops over pairs (float64), scipy and scikit-learn; they share no code with
zoolens.study beyond reading the zoo's arrays.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from zoolens.errors import ZoolensError
from zoolens.study import tables
from zoolens.study.bootstrap import StreamingBootstrap, resample_counts
from zoolens.study.pool import select_pool

# ----------------------------------------------------------------------------- pool parsing


def _models_frame() -> pd.DataFrame:
    return pd.DataFrame({
        "model": ["r50", "vit", "clip", "human", "lr<0.1"],
        "accuracy": [0.80, 0.77, 0.70, 0.95, 0.60],
        "accuracy_all": [0.81, 0.76, 0.71, 0.95, 0.61],
        "temperature": [1.1, 0.9, 1.5, np.nan, 0.8],
        "framework": ["supervised", "supervised", "contrastive", None, "supervised"],
        "category": ["Same", "Arch", "Framework", "Framework", "HParam"],
    })


@pytest.mark.parametrize("spec, expected", [
    ("accuracy<0.78", ["vit", "clip", "lr<0.1"]),
    ("accuracy <= 0.77", ["vit", "clip", "lr<0.1"]),
    ("accuracy>0.8", ["human"]),
    ("accuracy>=0.8", ["r50", "human"]),
    ("accuracy==0.7", ["clip"]),
    ("accuracy != 0.7", ["r50", "vit", "human", "lr<0.1"]),
    ("accuracy<0.9 and framework==supervised", ["r50", "vit", "lr<0.1"]),
    ("accuracy<0.9 AND framework=='supervised' and accuracy_all>0.7", ["r50", "vit"]),
    ("framework != supervised", ["clip"]),  # missing framework never matches
    ("temperature<2", ["r50", "vit", "clip", "lr<0.1"]),  # NaN temperature drops out
    ("category==Framework", ["clip", "human"]),
    ("clip,r50", ["r50", "clip"]),  # table order
    ("lr<0.1", ["lr<0.1"]),  # a name that looks like a filter is a name
    (["vit", "human"], ["vit", "human"]),
])
def test_select_pool(spec, expected):
    assert select_pool(_models_frame(), spec) == expected


@pytest.mark.parametrize("spec, message", [
    ("accuracy<0", "empty"),
    ("acc<0.5", "unknown column 'acc'"),
    ("accuracy<<0.5", "cannot read"),
    ("framework<x", "needs a number"),
    ("accuracy<0.5 or accuracy>0.9", "cannot read"),
    ("r50,nope", "'nope' is not in the zoo"),
    (" , ", "empty"),
    ([], "empty"),
])
def test_select_pool_rejects(spec, message):
    with pytest.raises(ZoolensError, match=message):
        select_pool(_models_frame(), spec)


# ----------------------------------------------------------------------------- tables


def test_write_results_atomic_and_exact_columns(tmp_path):
    frame = pd.DataFrame({c: [1.0, np.nan] for c in tables.GREEDY_COLUMNS})
    out = tables.write_results(tmp_path / "out", {"greedy": frame},
                               {"x": np.float32(0.5), "nan": float("nan"),
                                "arr": np.arange(3), "flag": np.bool_(True)})
    assert sorted(p.name for p in out.iterdir()) == ["greedy.csv", "greedy.parquet",
                                                     "summary.json"]
    assert list(pd.read_csv(out / "greedy.csv").columns) == tables.GREEDY_COLUMNS
    assert list(pd.read_parquet(out / "greedy.parquet").columns) == tables.GREEDY_COLUMNS
    summary = json.loads((out / "summary.json").read_text())
    assert summary == {"x": 0.5, "nan": None, "arr": [0, 1, 2], "flag": True}
    with pytest.raises(AssertionError):
        tables.write_table(out, "greedy", frame.iloc[:, ::-1])


def test_write_results_rejects_a_file_as_folder(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(ZoolensError, match="not a folder|cannot create"):
        tables.write_results(tmp_path / "f", {}, {})


# ----------------------------------------------------------------------------- bootstrap


def test_resample_counts_match_index_resampling():
    counts = resample_counts(50, 130, seed=3)
    idx = np.random.default_rng(3).integers(0, 50, size=(130, 50))
    expected = np.stack([np.bincount(row, minlength=50) for row in idx])
    np.testing.assert_array_equal(counts, expected)


def test_streaming_bootstrap_equals_direct_percentiles():
    rng = np.random.default_rng(0)
    x = rng.random((3, 101)) < np.array([[0.2], [0.5], [0.9]])
    boot = StreamingBootstrap(101, 400, seed=7)
    for start in range(0, 101, 17):  # uneven chunks
        boot.add("acc", x[:, start:start + 17], slice(start, start + 17))
    lo, hi = boot.interval("acc", 3)
    idx = np.random.default_rng(7).integers(0, 101, size=(400, 101))
    means = np.stack([x[k][idx].mean(axis=1) for k in range(3)], axis=1)
    np.testing.assert_allclose(lo, np.quantile(means, 0.025, axis=0), atol=1e-12)
    np.testing.assert_allclose(hi, np.quantile(means, 0.975, axis=0), atol=1e-12)
    p = boot.p_not_positive("acc", 3)
    np.testing.assert_allclose(p, (1 + (means <= 0).sum(0)) / 401)
    empty = StreamingBootstrap(10, 0, seed=0)
    empty.add("acc", x[:, :10], slice(0, 10))
    assert np.isnan(empty.interval("acc", 3)[0]).all()
