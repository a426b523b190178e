"""zoolens.study.probe: feature combination, diversity, CKA, transfer and stacking, on arrays and
on zoos (real CIFAR-10 ResNet embeddings and synthetic sets with a known answer)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score

from _cifar_embeddings import cifar_session_embeddings
from zoolens import contracts
from zoolens.errors import ZoolensError
from zoolens.measure.features import cka, combine_at_rates, l2_normalize_rows
from zoolens.measure.probe import fit_linear_probe
from zoolens.study.probe import (
    CKA_COLUMNS,
    DIVERSITY_COLUMNS,
    PROBE_COLUMNS,
    STACKING_COLUMNS,
    TRANSFER_COLUMNS,
    ProbeSettings,
    cka_table,
    diversity_table,
    feature_combination_table,
    probe_split,
    run_probe,
    run_stacking,
    transfer_and_stacking_tables,
)

FAST = ProbeSettings(l2_grid=(1e-2, 1e-4))


def two_view_data(n=600, seed=0):
    """4 classes = two bits; model A sees bit 1 (plus noise dims), model B sees bit 2."""
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 2, size=(n, 2))
    y = bits[:, 0] * 2 + bits[:, 1]
    a = np.concatenate(
        [(2 * bits[:, :1] - 1) * 2.0 + rng.normal(size=(n, 1)), rng.normal(size=(n, 7))], axis=1
    )
    b = np.concatenate(
        [(2 * bits[:, 1:] - 1) * 2.0 + rng.normal(size=(n, 1)), rng.normal(size=(n, 7))], axis=1
    )
    return a, b, y


def test_probe_split_is_seeded_disjoint_and_complete():
    tr, te = probe_split(100, 0.3, seed=5)
    assert te.size == 30 and tr.size == 70
    assert np.intersect1d(tr, te).size == 0 and np.union1d(tr, te).size == 100
    np.testing.assert_array_equal(probe_split(100, 0.3, seed=5)[1], te)
    assert not np.array_equal(probe_split(100, 0.3, seed=6)[1], te)
    with pytest.raises(ZoolensError, match="test fraction"):
        probe_split(100, 1.0)


def test_feature_combination_rows_match_direct_probes():
    a, b, y = two_view_data()
    tr, te = probe_split(len(y), 0.3, 0)
    table = feature_combination_table(
        a, b, y, tr, te, names=("A", "B"), rates=[0, 0.5, 1], draws=2, seed=3, settings=FAST
    )
    assert list(table.columns) == PROBE_COLUMNS
    assert table[["rate", "draw"]].values.tolist() == [
        [0, 0],
        [0, 1],
        [0.5, 0],
        [0.5, 1],
        [1, 0],
        [1, 1],
    ]
    assert table[["n_dims_a", "n_dims_b"]].values.tolist() == [
        [0, 8],
        [0, 8],
        [4, 4],
        [4, 4],
        [8, 0],
        [8, 0],
    ]
    # the same draws, probed directly, give the same accuracies
    for (_rate, _draw, comb), acc in zip(
        combine_at_rates(a, b, [0, 0.5, 1], draws=2, seed=3), table.accuracy
    ):
        probe = FAST.fit(comb.features[tr], y[tr])
        assert probe.score(comb.features[te], y[te]) == pytest.approx(acc, abs=1e-12)
    # each model sees one bit (~50 %); combined halves see both whenever both signal dims survive
    mean = table.groupby("rate").accuracy.mean()
    assert mean[0.0] < 0.6 and mean[1.0] < 0.6


def test_half_of_each_beats_either_alone_when_views_are_complementary():
    a, b, y = two_view_data()
    a[:, 1:] = a[:, :1] + 0.01 * np.random.default_rng(1).normal(size=(len(y), 7))  # A: 8 copies
    b[:, 1:] = b[:, :1] + 0.01 * np.random.default_rng(2).normal(size=(len(y), 7))
    tr, te = probe_split(len(y), 0.3, 0)
    table = feature_combination_table(a, b, y, tr, te, rates=[0, 0.5, 1], draws=2, settings=FAST)
    mean = table.groupby("rate").accuracy.mean()
    assert mean[0.5] > max(mean[0.0], mean[1.0]) + 0.3


def test_diversity_rows_probe_the_least_correlated_training_dims():
    a, b, y = two_view_data()
    a[:, 1:] = a[:, :1] + 0.05 * np.random.default_rng(1).normal(size=(len(y), 7))  # copies
    tr, te = probe_split(len(y), 0.3, 0)
    table, summary = diversity_table(
        a, b, y, tr, te, names=("A", "B"), steps=4, draws=2, settings=FAST
    )
    assert list(table.columns) == DIVERSITY_COLUMNS
    assert sorted(set(table.k)) == [4, 8, 12, 16]
    z = np.concatenate([l2_normalize_rows(a), l2_normalize_rows(b)], axis=1)
    single = max(
        FAST.fit(z[tr][:, cols], y[tr]).score(z[te][:, cols], y[te])
        for cols in (np.arange(8), np.arange(8, 16))
    )
    assert summary["target_accuracy"] == pytest.approx(single, abs=1e-12)
    assert (table.target_accuracy == summary["target_accuracy"]).all()
    # ranking from the training rows only (oracle: np.corrcoef on z[tr]); A's copies rank last
    r = np.abs(np.corrcoef(z[tr].T))
    order = np.argsort((r.sum(1) - 1) / 15, kind="stable")
    assert set(order[-8:]) == set(range(8))
    diverse = table[table.selection == "diverse"].set_index("k").accuracy
    for k in (4, 8):
        cols = np.sort(order[:k])
        assert diverse[k] == pytest.approx(
            FAST.fit(z[tr][:, cols], y[tr]).score(z[te][:, cols], y[te]), abs=1e-12
        )
    for selection in ("diverse", "random"):
        rows = table[(table.selection == selection) & (table.accuracy >= single)]
        assert summary["fewest_dims"][selection] == (rows.k.min() if len(rows) else None)


def test_cka_table_matches_pairwise_cka_and_sklearn_kappa():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(120, 5))
    embs = {
        "x": base,
        "y": base @ rng.normal(size=(5, 6)) + rng.normal(size=(120, 6)),
        "z": rng.normal(size=(120, 4)),
    }
    correct = rng.random((3, 120)) < [[0.8], [0.7], [0.6]]
    table = cka_table(embs, correct=correct, rbf_max_examples=100, seed=2)
    assert list(table.columns) == CKA_COLUMNS
    assert table[["model_a", "model_b"]].values.tolist() == [["x", "y"], ["x", "z"], ["y", "z"]]
    idx = {"x": 0, "y": 1, "z": 2}
    for row in table.itertuples():
        ea, eb = embs[row.model_a], embs[row.model_b]
        assert row.cka_linear == pytest.approx(cka(ea, eb))
        assert row.cka_debiased == pytest.approx(cka(ea, eb, debiased=True))
        assert row.cka_rbf == pytest.approx(cka(ea, eb, "rbf", 0.5, max_examples=100, seed=2))
        assert row.error_consistency == pytest.approx(
            cohen_kappa_score(correct[idx[row.model_a]], correct[idx[row.model_b]])
        )
    assert cka_table(embs).error_consistency.isna().all()


def test_transfer_and_stacking_multilabel_downstream():
    a, b, y = two_view_data(n=500)
    t = np.stack([y >= 2, y % 2 == 1, y == 0], axis=1).astype(np.uint8)  # 3 labels per example
    tr, te = probe_split(len(y), 0.3, 0)
    transfer, stacking = transfer_and_stacking_tables(
        {"A": a, "B": b}, t, tr, te, upstream_accuracy={"A": 0.7}, settings=FAST
    )
    assert list(transfer.columns) == TRANSFER_COLUMNS
    assert list(stacking.columns) == STACKING_COLUMNS
    assert set(transfer.downstream_metric) == {"map11"}
    assert transfer.upstream_accuracy.tolist()[0] == 0.7 and np.isnan(transfer.upstream_accuracy[1])
    row = stacking.iloc[0]
    # stacking the two complementary views beats either (both bits needed for the labels)
    assert row.value_stacked > max(row.value_a, row.value_b) + 0.05
    na = a / np.linalg.norm(a, axis=1, keepdims=True)
    direct = fit_linear_probe(na[tr], t[tr], l2_grid=list(FAST.l2_grid), multilabel=True)
    assert row.value_a == pytest.approx(direct.score(na[te], t[te]), abs=1e-12)


def test_bad_input_on_arrays():
    a, b, y = two_view_data(n=50)
    tr, te = probe_split(50, 0.3, 0)
    with pytest.raises(ZoolensError, match="'B'.*rows"):
        feature_combination_table(a, b[:40], y, tr, te, names=("A", "B"), settings=FAST)
    with pytest.raises(ZoolensError, match="outside"):
        feature_combination_table(a, b, y, tr, te, rates=[0.5, 1.2], settings=FAST)


# ----------------------------------------------------------------------------- real zoos


@pytest.fixture(scope="module")
def cifar(tmp_path_factory):
    return cifar_session_embeddings(tmp_path_factory)


@pytest.fixture(scope="module")
def cifar_zoo(cifar, tmp_path_factory):
    from zoolens.zoo.store import Zoo

    zoo = Zoo.create(tmp_path_factory.mktemp("zoo") / "cifar", cifar["labels"])
    for name in ("resnet20", "resnet32"):
        zoo.add(name, logits=cifar[f"{name}_logits"], embeddings=cifar[name])
    zoo.add("no-embeddings", logits=cifar["resnet20_logits"][:, ::-1].copy())
    return zoo


def test_run_probe_on_real_cifar_resnets(cifar_zoo, tmp_path):
    run_probe(
        cifar_zoo,
        ["resnet20", "resnet32"],
        out_dir=tmp_path,
        rates=[0, 0.5, 1],
        draws=2,
        settings=ProbeSettings(l2_grid=(1e-3, 1e-4)),
        diversity=False,
        rbf_max_examples=1000,
    )
    probe = pd.read_csv(tmp_path / "probe.csv")
    assert list(probe.columns) == PROBE_COLUMNS
    mean = probe.groupby("rate").accuracy.mean()
    print(
        "\nreal CIFAR-10 probes (2,000 JPEG images, 600 held out): "
        f"resnet32 alone {mean[0.0]:.4f}, resnet20 alone {mean[1.0]:.4f}, "
        f"32 + 32 dims of each {mean[0.5]:.4f}"
    )
    # published range for these nets on JPEGs, and the paper's Fig. 6 claim: half of each
    # embedding (64 dims in all) beats either full 64-dim embedding
    assert 0.78 < mean[1.0] < 0.88 and 0.78 < mean[0.0] < 0.88
    assert mean[0.5] > max(mean[0.0], mean[1.0])
    cka_csv = pd.read_csv(tmp_path / "cka.csv")
    assert list(cka_csv.columns) == CKA_COLUMNS and len(cka_csv) == 1
    ev = cifar_zoo.evaluation_indices
    right = [cifar_zoo.predictions(m)[ev] == cifar_zoo.labels[ev] for m in ("resnet20", "resnet32")]
    assert cka_csv.error_consistency[0] == pytest.approx(cohen_kappa_score(*right))
    assert 0.5 < cka_csv.cka_linear[0] < 1.0
    for name in ("probe", "cka"):
        meta = json.loads((tmp_path / f"{name}.json").read_text())
        assert meta["table_version"] == contracts.TABLE_VERSION and meta["n_test"] == 600
    assert not (tmp_path / "diversity.csv").exists()


def test_run_stacking_with_multilabel_downstream_zoo(cifar, cifar_zoo, tmp_path):
    from zoolens.zoo.store import Zoo

    y = cifar["labels"]
    # downstream labels: "vehicle" and "mammal" and "flies" — several per image
    t = np.stack(
        [np.isin(y, [0, 1, 8, 9]), np.isin(y, [3, 4, 5, 7]), np.isin(y, [0, 2])], axis=1
    ).astype(np.uint8)
    down = Zoo.create(tmp_path / "down", t)
    for name in ("resnet20", "resnet32"):
        down.add(name, decisions=np.zeros(len(y), dtype=np.int64), embeddings=cifar[name])
    result = run_stacking(
        cifar_zoo,
        down,
        ["resnet20", "resnet32"],
        out_dir=tmp_path / "out",
        settings=ProbeSettings(l2_grid=(1e-3,)),
    )
    transfer = pd.read_csv(tmp_path / "out" / "transfer.csv")
    stacking = pd.read_csv(tmp_path / "out" / "stacking.csv")
    assert transfer.model.tolist() == ["resnet20", "resnet32"]
    assert transfer.upstream_accuracy[0] == pytest.approx(cifar_zoo.accuracy("resnet20"))
    assert set(transfer.downstream_metric) == {"map11"}
    assert stacking.value_stacked[0] >= max(stacking.value_a[0], stacking.value_b[0]) - 0.01
    assert result.summary["downstream_multilabel"] is True


def test_zoo_bad_input(cifar_zoo, tmp_path):
    with pytest.raises(ZoolensError, match="'no-embeddings' has no embeddings"):
        run_probe(cifar_zoo, ["resnet20", "no-embeddings"], out_dir=tmp_path)
    with pytest.raises(ZoolensError, match="no model named 'nope'"):
        run_probe(cifar_zoo, ["resnet20", "nope"], out_dir=tmp_path)
    with pytest.raises(ZoolensError, match="outside"):
        run_probe(cifar_zoo, ["resnet20", "resnet32"], rates=[-0.5], out_dir=tmp_path)
    assert not (tmp_path / "probe.csv").exists()


def test_zoo_embeddings_with_a_different_row_count_are_an_error(tmp_path):
    class Fake:  # a zoo whose files disagree (Zoo.add itself refuses such arrays)
        path = tmp_path
        models = ["a", "b"]
        num_examples = 10
        labels = np.arange(10) % 2
        is_multilabel = False
        has_labels = True

        def has_embeddings(self, name):
            return True

        def embeddings(self, name):
            return np.ones((10 if name == "a" else 9, 3), dtype=np.float32)

    with pytest.raises(ZoolensError, match="'b' has 9 embedding rows but the zoo has 10"):
        run_probe(Fake(), out_dir=tmp_path / "o")


def test_probe_tables_are_written_through_study_tables_byte_for_byte(tmp_path):
    """probe's CSVs go through study.tables.write_csv: the bytes are exactly what the old
    direct ``frame.to_csv(path, index=False)`` wrote (number formatting, NaN as empty, order),
    each beside its JSON; an output path that is a file is refused with one line."""
    from zoolens.study.probe import _write_tables

    frame = pd.DataFrame(
        {
            "model_a": ["a", "b,c"],
            "model_b": ["b", 'say "x"'],
            "rate": [1 / 3, 0.0],
            "draw": [0, 1],
            "n_dims_a": [1, 0],
            "n_dims_b": [2, 3],
            "accuracy": [np.nan, 1e-20],
        }
    )
    other = pd.DataFrame(
        {
            "model": ["a"],
            "upstream_accuracy": [0.5],
            "downstream_metric": ["accuracy"],
            "downstream_value": [0.1 + 0.2],
        }
    )
    out = _write_tables(
        tmp_path / "out" / "nested", {"probe": frame, "transfer": other}, {"n_test": 3}
    )
    for name, table in (("probe", frame), ("transfer", other)):
        direct = tmp_path / f"direct-{name}.csv"
        table.to_csv(direct, index=False)
        assert (out / f"{name}.csv").read_bytes() == direct.read_bytes()
        meta = json.loads((out / f"{name}.json").read_text())
        assert meta == {
            "table_version": contracts.TABLE_VERSION,
            "table": name,
            "n_test": 3,
            "csv_bytes": direct.stat().st_size,
        }
    assert sorted(p.name for p in out.iterdir()) == [
        "probe.csv",
        "probe.json",
        "transfer.csv",
        "transfer.json",
    ]
    (tmp_path / "file").write_text("x")
    with pytest.raises(ZoolensError, match="file: cannot create the output folder"):
        _write_tables(tmp_path / "file", {"probe": frame}, {})
    with pytest.raises(AssertionError, match="table probe: columns"):  # the contract holds
        _write_tables(tmp_path / "out", {"probe": frame.drop(columns="n_dims_a")}, {})
