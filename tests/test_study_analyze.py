"""zoolens.study.analyze and its parts, against independent float64 recomputations.

The reference numbers here are written from the definitions of docs/design.md sec. 3 with plain
numpy loops over pairs (float64), scipy and scikit-learn; they share no code with
zoolens.study beyond reading the zoo's arrays.
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pandas as pd
import pytest

from zoolens.errors import ZoolensError
from zoolens.study import tables
from zoolens.study.bootstrap import Resamples
from zoolens.study.pool import select_pool

# ----------------------------------------------------------------------------- pool parsing


def _models_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "model": ["r50", "vit", "clip", "human", "lr<0.1"],
            "accuracy": [0.80, 0.77, 0.70, 0.95, 0.60],
            "accuracy_all": [0.81, 0.76, 0.71, 0.95, 0.61],
            "temperature": [1.1, 0.9, 1.5, np.nan, 0.8],
            "framework": ["supervised", "supervised", "contrastive", None, "supervised"],
            "category": ["Same", "Arch", "Framework", "Framework", "HParam"],
        }
    )


@pytest.mark.parametrize(
    "spec, expected",
    [
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
        ("temperature != 0.9", ["r50", "clip", "lr<0.1"]),  # NaN never matches "!=" either
        ("category==Framework", ["clip", "human"]),
        ("clip,r50", ["r50", "clip"]),  # table order
        ("lr<0.1", ["lr<0.1"]),  # a name that looks like a filter is a name
        (["vit", "human"], ["vit", "human"]),
    ],
)
def test_select_pool(spec, expected):
    assert select_pool(_models_frame(), spec) == expected


@pytest.mark.parametrize(
    "spec, message",
    [
        ("accuracy<0", "empty"),
        ("acc<0.5", "unknown column 'acc'"),
        ("accuracy<<0.5", "cannot read"),
        ("framework<x", "needs a number"),
        ("accuracy<0.5 or accuracy>0.9", "cannot read"),
        ("r50,nope", "'nope' is not in the zoo"),
        (" , ", "empty"),
        ([], "empty"),
    ],
)
def test_select_pool_rejects(spec, message):
    with pytest.raises(ZoolensError, match=message):
        select_pool(_models_frame(), spec)


def test_select_pool_defer_and_missing_columns():
    frame = _models_frame().assign(ece_after=np.nan)
    # Deferred clauses are checked (syntax, column) but let every row through.
    assert select_pool(frame, "ece_after<0.1 and accuracy<0.75", defer=["ece_after"]) == [
        "clip",
        "lr<0.1",
    ]
    with pytest.raises(ZoolensError, match="has no value for any model"):
        select_pool(frame, "ece_after<0.1")
    with pytest.raises(ZoolensError, match="pool is empty"):
        select_pool(frame, "ece_after<0.1 and accuracy<0", defer=["ece_after"])
    with pytest.raises(ZoolensError, match="unknown column"):
        select_pool(frame, "ece<0.1", defer=["ece_after"])


# ----------------------------------------------------------------------------- tables


def test_write_results_atomic_and_exact_columns(tmp_path):
    frame = pd.DataFrame({c: [1.0, np.nan] for c in tables.TABLE_COLUMNS["greedy"]})
    out = tables.write_results(
        tmp_path / "out",
        {"greedy": frame},
        {"x": np.float32(0.5), "nan": float("nan"), "arr": np.arange(3), "flag": np.bool_(True)},
    )
    assert sorted(p.name for p in out.iterdir()) == [
        "greedy.csv",
        "greedy.json",
        "greedy.parquet",
        "summary.json",
    ]
    record = json.loads((out / "greedy.json").read_text())
    assert (record["table_version"], record["table"]) == (tables.TABLE_VERSION, "greedy")
    assert list(pd.read_csv(out / "greedy.csv").columns) == tables.TABLE_COLUMNS["greedy"]
    assert list(pd.read_parquet(out / "greedy.parquet").columns) == tables.TABLE_COLUMNS["greedy"]
    summary = json.loads((out / "summary.json").read_text())
    assert {k: v for k, v in summary.items() if k != "run_id"} == {
        "x": 0.5,
        "nan": None,
        "arr": [0, 1, 2],
        "flag": True,
    }
    assert record["run_id"] == summary["run_id"]  # one run: the same id everywhere
    with pytest.raises(AssertionError):
        tables.write_table(out, "greedy", frame.iloc[:, ::-1])


def test_write_results_rejects_a_file_as_folder(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(ZoolensError, match="not a folder|cannot create"):
        tables.write_results(tmp_path / "f", {}, {})


def _awkward_frame(rows: int) -> pd.DataFrame:
    """Every kind of cell pandas formats: floats that need 17 digits, exponents, NaN, +-inf,
    -0.0, float32, ints, bools, missing text, text that needs quoting, non-ASCII text and
    text a spreadsheet would run as a formula (csv_safe escapes it)."""
    rng = np.random.default_rng(0)
    floats = rng.normal(size=rows) * 10.0 ** rng.integers(-320, 300, size=rows)
    floats[::7] = np.nan
    floats[1::11] = np.inf
    floats[2::13] = -0.0
    texts = np.array(["a,b", 'say "hi"', "two\nlines", "=SUM(A1)", "Ωmega", None], object)
    return pd.DataFrame(
        {
            "model_a": texts[np.arange(rows) % len(texts)],
            "value": floats,
            "single": rng.random(rows).astype(np.float32),
            "count": rng.integers(-(2**40), 2**40, size=rows),
            "flag": rng.random(rows) < 0.5,
        }
    )


@pytest.mark.parametrize("rows", [0, 1, 7, 50, 51, 333])
def test_csv_in_blocks_is_the_same_bytes(tmp_path, monkeypatch, rows):
    """``write_csv`` with a block runner (``analyze --ray`` formats pairs.csv in row blocks
    as Ray tasks) writes the bytes of pandas' own ``to_csv`` of the whole table, at every
    block boundary; a table at or under ``CSV_BLOCK_ROWS`` is written whole."""
    monkeypatch.setattr(tables, "CSV_BLOCK_ROWS", 50)
    frame = _awkward_frame(rows)
    calls = []

    def run_blocks(task, table, bounds):
        calls.append(list(bounds))
        return (task(table, start, stop) for start, stop in bounds)

    tables.write_csv(tmp_path / "blocks.csv", frame, run_blocks)
    tables.csv_safe_frame(frame).to_csv(tmp_path / "whole.csv", index=False)  # the oracle
    assert (tmp_path / "blocks.csv").read_bytes() == (tmp_path / "whole.csv").read_bytes()
    expected = [] if rows <= 50 else [[(s, min(s + 50, rows)) for s in range(0, rows, 50)]]
    assert calls == expected
    if rows:
        back = pd.read_csv(tmp_path / "blocks.csv")
        np.testing.assert_array_equal(back["value"].to_numpy(), frame["value"].to_numpy())
    if rows > 3:  # the formula cell escaped, as in every table zoolens writes
        assert back["model_a"].iloc[3] == "'=SUM(A1)"


def test_csv_with_a_date_column_is_written_whole(tmp_path, monkeypatch):
    """pandas writes a datetime column as dates alone when all its values are dates (a
    column-wide choice a block could make differently): such a table never goes in blocks."""
    monkeypatch.setattr(tables, "CSV_BLOCK_ROWS", 2)
    when = pd.to_datetime(
        ["2020-01-01", "2020-01-02", "2020-01-03 04:05", "2020-01-04"], format="ISO8601"
    )
    frame = pd.DataFrame({"when": when, "x": [1.5, 2.5, 3.5, 4.5]})

    def run_blocks(task, table, bounds):
        raise AssertionError("a frame with a datetime column went in blocks")

    tables.write_csv(tmp_path / "t.csv", frame, run_blocks)
    frame.to_csv(tmp_path / "whole.csv", index=False)
    assert (tmp_path / "t.csv").read_bytes() == (tmp_path / "whole.csv").read_bytes()
    assert b"2020-01-01 00:00:00" in (tmp_path / "t.csv").read_bytes()  # the column's choice


def test_csv_in_blocks_failure_leaves_nothing(tmp_path, monkeypatch):
    """A block that fails (a Ray task's error) leaves no file and no temporary file."""
    monkeypatch.setattr(tables, "CSV_BLOCK_ROWS", 10)

    def run_blocks(task, table, bounds):
        yield task(table, *bounds[0])
        raise ZoolensError("CSV tables: Ray task for rows 10..19 failed")

    with pytest.raises(ZoolensError, match=r"^t\.csv: CSV tables: Ray task for rows 10\.\.19"):
        tables.write_csv(tmp_path / "t.csv", _awkward_frame(30), run_blocks)
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- bootstrap


def test_streaming_bootstrap_equals_direct_percentiles():
    from zoolens.measure.stats import bootstrap_ci, bootstrap_weights, paired_bootstrap_test

    rng = np.random.default_rng(0)
    x = rng.random((3, 101)) < np.array([[0.2], [0.5], [0.9]])
    boot = Resamples(101, 400, seed=7)
    acc, diff = np.zeros((400, 3)), np.zeros((400, 1))
    for start in range(0, 101, 17):  # uneven chunks
        acc += boot.chunk_sums(x[:, start : start + 17], slice(start, start + 17))
        diff += boot.chunk_sums(
            x[2:3, start : start + 17].astype(float) - x[1, start : start + 17],
            slice(start, start + 17),
        )
    lo, hi = boot.interval(acc)
    # Independent: resample indices directly (the draw order bootstrap_weights documents).
    idx = np.random.default_rng(7).integers(0, 101, size=(400, 101))
    means = np.stack([x[k][idx].mean(axis=1) for k in range(3)], axis=1)
    np.testing.assert_allclose(lo, np.quantile(means, 0.025, axis=0), atol=1e-12)
    np.testing.assert_allclose(hi, np.quantile(means, 0.975, axis=0), atol=1e-12)
    # And measure.stats on the full matrix with the same weights.
    weights = bootstrap_weights(101, 400, 7)
    _, lo2, hi2 = bootstrap_ci(x.T.astype(float), weights=weights)
    np.testing.assert_allclose(lo, lo2, atol=1e-12)
    np.testing.assert_allclose(hi, hi2, atol=1e-12)
    test = paired_bootstrap_test(x[2], x[1], weights=weights)
    assert boot.p_not_positive(diff)[0] == pytest.approx(test.p_value)
    empty = Resamples(10, 0, seed=0)
    assert empty.size == 0 and empty.chunk_sums(x[:, :10], slice(0, 10)).shape == (0, 3)
    assert np.isnan(empty.interval(np.zeros((0, 3)))[0]).all()


# ----------------------------------------------------------------------------- random zoo

BOOT = 300
SEED = 5


def _softmax64(z: np.ndarray, t: float = 1.0) -> np.ndarray:
    s = z.astype(np.float64) / t
    s = s - s.max(axis=1, keepdims=True)
    e = np.exp(s)
    return e / e.sum(axis=1, keepdims=True)


def make_random_zoo(path, *, n=260, c=5, seed=0, multilabel=False):
    """Seven models of every kind over a shared latent difficulty; cards spanning categories."""
    from zoolens.zoo.store import Zoo

    rng = np.random.default_rng(seed)
    labels = rng.integers(0, c, n)
    truth = labels
    if multilabel:
        truth = np.zeros((n, c), dtype=np.uint8)
        truth[np.arange(n), labels] = 1
        extra = rng.integers(0, c, n)
        truth[np.arange(n), extra] |= (rng.random(n) < 0.4).astype(np.uint8)
        truth[:3] = 0  # examples with no valid label are never right
    attributes = pd.DataFrame(
        {"domain": rng.choice(["photo", "sketch", "paint"], n), "blur": rng.integers(0, 2, n)}
    )
    zoo = Zoo.create(
        path,
        truth,
        class_names=[f"class{k}" for k in range(c)],
        calibration_fraction=0.3,
        seed=1,
        attributes=attributes,
        class_groups={"nature": [0, 1], "things": [3, 4]},
    )
    difficulty = rng.normal(size=n)

    def logits(strength, scale):
        z = rng.normal(size=(n, c)) * scale
        z[np.arange(n), labels] += strength - 0.8 * difficulty
        return z.astype(np.float32)

    card = dict(arch="resnet50", framework="supervised", pretrain_data="ImageNet", seed=0)
    zoo.add("base", logits=logits(2.0, 1.0), card=card)
    zoo.add("reinit", logits=logits(1.8, 1.3), card={**card, "seed": 1})
    zoo.add("wide", probs=_softmax64(logits(1.5, 0.6)), card={**card, "arch": "resnet101"})
    zoo.add("vit", logits=logits(1.2, 2.5), card={**card, "arch": "vit_b16"})
    top = _softmax64(logits(1.0, 1.0), 0.7)
    order = np.argsort(-top, axis=1)[:, :2]
    zoo.add(
        "clip-top2",
        topk_indices=order,
        topk_values=np.take_along_axis(top, order, 1),
        card={**card, "framework": "contrastive"},
    )
    zoo.add(
        "humans",
        decisions=np.where(rng.random(n) < 0.85, labels, rng.integers(0, c, n)),
        card={**card, "framework": "human"},
    )
    zoo.add("weak", logits=logits(0.4, 1.0), card={**card, "pretrain_data": "JFT"})
    return zoo


@pytest.fixture(scope="module")
def random_zoo(tmp_path_factory):
    return make_random_zoo(tmp_path_factory.mktemp("zoo") / "zoo")


@pytest.fixture(scope="module")
def random_result(random_zoo, tmp_path_factory):
    from zoolens.study.analyze import analyze

    out = tmp_path_factory.mktemp("out")
    result = analyze(
        random_zoo,
        "base",
        out,
        pool="accuracy<0.9",
        max_steps=6,
        n_bootstrap=BOOT,
        seed=SEED,
        chunk_size=37,
        interpolation_pairs=[("base", "vit")],
        command="zoolens analyze test",
    )
    return result, out


class Reference:
    """Everything recomputed from the zoo's raw arrays with float64 loops (docs/design.md sec. 3)."""

    def __init__(self, zoo, temperatures: dict[str, float]):
        self.zoo = zoo
        self.names = list(zoo.models)
        self.labels = np.asarray(zoo.labels)
        self.ev = np.asarray(zoo.evaluation_indices)
        self.cal = np.asarray(zoo.calibration_indices)
        self.pred = {m: np.asarray(zoo.predictions(m)) for m in self.names}
        self.scored = [m for m in self.names if zoo.kind(m) != "decisions"]
        self.q = {m: _softmax64(zoo.scores(m), temperatures[m]) for m in self.scored}
        self.q1 = {m: _softmax64(zoo.scores(m)) for m in self.scored}

    def right(self, pred, rows):
        labels = self.labels[rows]
        if labels.ndim == 2:
            return labels[np.arange(len(rows)), pred].astype(bool)
        return pred == labels

    def r(self, m, rows=None):
        rows = self.ev if rows is None else rows
        return self.right(self.pred[m][rows], rows)

    def ensemble_right(self, members, rows=None, weights=None):
        rows = self.ev if rows is None else rows
        weights = np.ones(len(members)) if weights is None else weights
        total = sum(w * self.q[m][rows] for w, m in zip(weights, members))
        return self.right(total.argmax(axis=1), rows)


@pytest.fixture(scope="module")
def reference(random_zoo, random_result):
    result, _ = random_result
    temps = dict(zip(result.models["model"], result.models["temperature"]))
    return Reference(random_zoo, temps)


def test_temperatures_match_scipy(random_zoo, random_result, reference):
    from scipy.optimize import minimize_scalar

    models = random_result[0].models.set_index("model")
    cal = reference.cal
    y = reference.labels[cal]
    for m in reference.scored:
        z = random_zoo.scores(m, rows=cal).astype(np.float64)

        def nll(u):
            return -np.log(_softmax64(z, math.exp(u))[np.arange(len(y)), y]).mean()

        fit = minimize_scalar(
            nll, bounds=(math.log(1e-3), math.log(1e3)), method="bounded", options={"xatol": 1e-10}
        )
        assert models.loc[m, "temperature"] == pytest.approx(math.exp(fit.x), rel=1e-4)
    assert np.isnan(models.loc["humans", "temperature"])


def test_models_table_matches_reference(random_result, reference):
    result, _ = random_result
    models = result.models.set_index("model")
    assert list(result.models.columns) == tables.TABLE_COLUMNS["models"]
    idx = np.random.default_rng(SEED).integers(0, len(reference.ev), size=(BOOT, len(reference.ev)))
    ev, y = reference.ev, reference.labels[reference.ev]
    for m in reference.names:
        r = reference.r(m)
        row = models.loc[m]
        assert row["accuracy"] == pytest.approx(r.mean(), abs=1e-12)
        assert row["accuracy_all"] == pytest.approx(
            reference.r(m, np.arange(len(reference.labels))).mean(), abs=1e-12
        )
        means = r[idx].mean(axis=1)
        assert row["accuracy_lo"] == pytest.approx(np.quantile(means, 0.025), abs=1e-12)
        assert row["accuracy_hi"] == pytest.approx(np.quantile(means, 0.975), abs=1e-12)
        assert row["accuracy_eval_n"] == len(ev)
        if m not in reference.scored:
            assert np.isnan(
                row[["nll_before", "nll_after", "ece_before", "ece_after"]].astype(float)
            ).all()
            continue
        for stage, q in (("before", reference.q1[m]), ("after", reference.q[m])):
            p = q[ev]
            assert row[f"nll_{stage}"] == pytest.approx(
                -np.log(p[np.arange(len(y)), y]).mean(), rel=1e-6
            )
            conf = p.max(axis=1)
            bins = np.minimum((conf * 15).astype(int), 14)
            ece = sum(
                abs(r[bins == k].mean() - conf[bins == k].mean()) * (bins == k).mean()
                for k in range(15)
                if (bins == k).any()
            )
            assert row[f"ece_{stage}"] == pytest.approx(ece, abs=1e-6)
    assert models.loc["base", "category"] == "Same"
    assert models.loc["reinit", "category"] == "Reinit"
    assert models.loc["wide", "category"] == "HParam"
    assert models.loc["vit", "category"] == "Arch"
    assert models.loc["clip-top2", "category"] == "Framework"
    assert models.loc["weak", "category"] == "Dataset"
    assert models.loc["humans", "kind"] == "decisions"


def test_pairs_table_matches_reference(random_result, reference):
    from scipy.stats import binom, binomtest, chi2
    from sklearn.metrics import cohen_kappa_score

    result, _ = random_result
    pairs = result.pairs
    assert list(pairs.columns) == tables.TABLE_COLUMNS["pairs"]
    names = reference.names
    assert len(pairs) == len(names) * (len(names) - 1) // 2
    n = len(reference.ev)
    idx = np.random.default_rng(SEED).integers(0, n, size=(BOOT, n))
    row_iter = pairs.itertuples(index=False)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            row = next(row_iter)
            assert (row.model_a, row.model_b) == (a, b)
            ra, rb = reference.r(a), reference.r(b)
            assert row.acc_a == pytest.approx(ra.mean())
            assert row.error_inconsistency == pytest.approx(np.mean(ra != rb))
            assert row.both_right == pytest.approx(np.mean(ra & rb))
            assert row.both_wrong == pytest.approx(np.mean(~ra & ~rb))
            assert row.dominance_ab == pytest.approx(np.mean(~ra & rb))
            assert row.dominance_ba == pytest.approx(np.mean(ra & ~rb))
            assert row.error_consistency == pytest.approx(cohen_kappa_score(ra, rb), abs=1e-9)
            xor_means = (ra != rb)[idx].mean(axis=1)
            assert row.error_inconsistency_lo == pytest.approx(np.quantile(xor_means, 0.025))
            assert row.error_inconsistency_hi == pytest.approx(np.quantile(xor_means, 0.975))
            # κ interval: a plain loop over the same resamples, scikit-learn's kappa on each
            # resampled data set (issue 27), percentiles as every other interval.
            kappas = [cohen_kappa_score(ra[rows], rb[rows]) for rows in idx]
            assert row.error_consistency_lo == pytest.approx(np.quantile(kappas, 0.025), abs=1e-9)
            assert row.error_consistency_hi == pytest.approx(np.quantile(kappas, 0.975), abs=1e-9)
            assert row.error_consistency_lo <= row.error_consistency <= row.error_consistency_hi
            if a not in reference.scored or b not in reference.scored:
                for column in (
                    "ensemble_acc",
                    "ensemble_acc_lo",
                    "ensemble_gain",
                    "gain_over_best",
                    "gain_over_best_lo",
                    "gain_over_base",
                    "conversion_rate",
                    "conversion_rate_lo",
                    "neither_conversion",
                    "neither_conversion_hi",
                    "mcnemar_p",
                    "paired_bootstrap_p",
                ):
                    assert np.isnan(getattr(row, column)), (a, b, column)
                continue
            e = reference.ensemble_right([a, b])
            assert row.ensemble_acc == pytest.approx(e.mean(), abs=1e-12)
            assert row.ensemble_gain == pytest.approx(e.mean() - (ra.mean() + rb.mean()) / 2)
            assert row.conversion_rate == pytest.approx(e[ra != rb].mean())
            assert row.neither_conversion == pytest.approx(e[~ra & ~rb].mean())
            ens_means = e[idx].mean(axis=1)
            assert row.ensemble_acc_lo == pytest.approx(np.quantile(ens_means, 0.025))
            assert row.ensemble_acc_hi == pytest.approx(np.quantile(ens_means, 0.975))
            # Conditional rates: ratio of the two sums on each resample (float64 loop-free
            # reference), resamples without the condition left out.
            for column, cond in (("conversion_rate", ra != rb), ("neither_conversion", ~ra & ~rb)):
                num = (e & cond)[idx].sum(axis=1).astype(float)
                den = cond[idx].sum(axis=1).astype(float)
                ratios = (num / np.where(den > 0, den, 1))[den > 0]
                lo, hi = getattr(row, column + "_lo"), getattr(row, column + "_hi")
                if not cond.any():
                    assert np.isnan(lo) and np.isnan(hi), (a, b, column)
                    continue
                assert lo == pytest.approx(np.quantile(ratios, 0.025), abs=1e-12), (a, b, column)
                assert hi == pytest.approx(np.quantile(ratios, 0.975), abs=1e-12), (a, b, column)
                assert lo <= getattr(row, column) <= hi
            gain_means = (e - (ra.astype(float) + rb) / 2)[idx].mean(axis=1)
            assert row.ensemble_gain_lo == pytest.approx(np.quantile(gain_means, 0.025))
            best = ra if ra.mean() >= rb.mean() else rb
            n01, n10 = int(np.sum(e & ~best)), int(np.sum(~e & best))
            # McNemar: mid-p below 25 discordant examples (the exact binomial p less the
            # point probability), else chi2 with continuity.
            if n01 + n10 == 0 or n01 == n10:
                expected_p = 1.0
            elif n01 + n10 < 25:
                expected_p = binomtest(n01, n01 + n10, 0.5).pvalue - binom.pmf(
                    min(n01, n10), n01 + n10, 0.5
                )
            else:
                expected_p = chi2.sf((abs(n01 - n10) - 1) ** 2 / (n01 + n10), 1)
            assert row.mcnemar_p == pytest.approx(expected_p, rel=1e-9)
            diff = (e.astype(float) - best)[idx].mean(axis=1)
            assert row.paired_bootstrap_p == pytest.approx((1 + np.sum(diff <= 0)) / (BOOT + 1))
            # Gains against a deployable model: the better member, and the base.
            assert row.gain_over_best == pytest.approx(e.mean() - max(ra.mean(), rb.mean()))
            assert row.gain_over_best_lo == pytest.approx(np.quantile(diff, 0.025))
            assert row.gain_over_best_hi == pytest.approx(np.quantile(diff, 0.975))
            if "base" in (a, b):
                rbase = reference.r("base").astype(float)
                assert row.gain_over_base == pytest.approx(e.mean() - rbase.mean())
                over = (e.astype(float) - rbase)[idx].mean(axis=1)
                assert row.gain_over_base_lo == pytest.approx(np.quantile(over, 0.025))
                assert row.gain_over_base_hi == pytest.approx(np.quantile(over, 0.975))
            else:
                assert np.isnan(row.gain_over_base) and np.isnan(row.gain_over_base_lo)
    # Adjusted over the table's pairs that have a p-value (issue 27): Holm's step-down and
    # Benjamini-Hochberg, written out here as float64 loops over the sorted p-values.
    for raw, holm, q in (
        ("mcnemar_p", "mcnemar_p_holm", "mcnemar_q_bh"),
        ("paired_bootstrap_p", "paired_bootstrap_p_holm", "paired_bootstrap_q_bh"),
    ):
        p = pairs[raw].to_numpy(float)
        tested = np.flatnonzero(np.isfinite(p))
        assert 0 < len(tested) < len(p)  # decision-only pairs have none, and stay NaN
        assert np.isnan(pairs[holm].to_numpy(float)[~np.isfinite(p)]).all()
        ranked = tested[np.argsort(p[tested], kind="stable")]
        m = len(ranked)
        expected_holm, expected_q = {}, {}
        running = 0.0
        for j, i in enumerate(ranked):
            running = max(running, min(1.0, (m - j) * p[i]))
            expected_holm[i] = running
        running = 1.0
        for j in range(m - 1, -1, -1):
            running = min(running, m * p[ranked[j]] / (j + 1))
            expected_q[ranked[j]] = running
        for i in tested:
            assert pairs[holm].iloc[i] == pytest.approx(expected_holm[i], rel=1e-12)
            assert pairs[q].iloc[i] == pytest.approx(expected_q[i], rel=1e-12)
    categories = pairs.set_index(["model_a", "model_b"])["category"]
    assert categories[("base", "reinit")] == "Reinit"
    assert categories[("vit", "weak")] == "Dataset"


def test_specialization_and_theta_match_reference(random_zoo, random_result, reference):
    result, _ = random_result
    spec = result.specialization
    assert list(spec.columns) == tables.TABLE_COLUMNS["specialization"]
    ev = reference.ev
    y = reference.labels[ev]
    attrs = random_zoo.attributes.iloc[ev].reset_index(drop=True)
    groups = [("class", f"class{k}", y == k) for k in range(5)]
    groups += [
        ("class_group", "nature", np.isin(y, [0, 1])),
        ("class_group", "things", np.isin(y, [3, 4])),
    ]
    for column in ("domain", "blur"):
        for value in sorted(attrs[column].unique(), key=str):
            groups.append((f"attribute:{column}", str(value), (attrs[column] == value).to_numpy()))
    ra = reference.r("base")
    conf_a = reference.q["base"][ev].max(axis=1)
    expected_rows = 0
    for b in reference.names:
        if b == "base":
            continue
        rb = reference.r(b)
        theta = (
            np.degrees(np.arctan2(conf_a, reference.q[b][ev].max(axis=1)))
            if b in reference.scored
            else np.full(len(ev), np.nan)
        )
        for group_type, group, mask in groups:
            expected_rows += 1
            row = spec[
                (spec.model_b == b) & (spec.group_type == group_type) & (spec.group == group)
            ]
            assert len(row) == 1, (b, group_type, group)
            row = row.iloc[0]
            only_a, only_b = mask & ra & ~rb, mask & ~ra & rb
            assert row["n"] == mask.sum()
            assert row["acc_a"] == pytest.approx(ra[mask].mean())
            assert row["acc_b"] == pytest.approx(rb[mask].mean())
            assert row["only_a_right"] == pytest.approx(only_a.sum() / mask.sum())
            assert row["only_b_right"] == pytest.approx(only_b.sum() / mask.sum())
            assert row["error_inconsistency"] == pytest.approx((ra != rb)[mask].mean())
            for column, sel in (("mean_theta_only_a", only_a), ("mean_theta_only_b", only_b)):
                if b not in reference.scored or not sel.any():
                    assert np.isnan(row[column])
                else:
                    assert row[column] == pytest.approx(theta[sel].mean(), abs=1e-4)
    assert len(spec) == expected_rows

    theta_table = result.theta
    assert list(theta_table.columns) == tables.TABLE_COLUMNS["theta"]
    assert set(theta_table.model_b) == set(reference.scored) - {"base"}
    edges = np.linspace(0, 90, 19)
    for b in set(reference.scored) - {"base"}:
        rb = reference.r(b)
        theta = np.degrees(np.arctan2(conf_a, reference.q[b][ev].max(axis=1)))
        for outcome, sel in (
            ("both_right", ra & rb),
            ("only_a", ra & ~rb),
            ("only_b", ~ra & rb),
            ("both_wrong", ~ra & ~rb),
        ):
            got = theta_table[(theta_table.model_b == b) & (theta_table.outcome == outcome)]
            np.testing.assert_array_equal(got["count"], np.histogram(theta[sel], edges)[0])


def test_reliability_greedy_interpolation_summary(random_result, reference):
    result, out = random_result
    ev, y = reference.ev, reference.labels[reference.ev]
    rel = result.reliability
    assert list(rel.columns) == tables.TABLE_COLUMNS["reliability"]
    for m in reference.scored:
        for stage, q in (("before", reference.q1[m]), ("after", reference.q[m])):
            conf = q[ev].max(axis=1)
            bins = np.minimum((conf * 15).astype(int), 14)
            got = rel[(rel.model == m) & (rel.stage == stage)]
            np.testing.assert_array_equal(got["count"], np.bincount(bins, minlength=15))
            k = int(np.bincount(bins).argmax())
            assert got["accuracy"].iloc[k] == pytest.approx(reference.r(m)[bins == k].mean())
    assert "humans" not in set(rel.model)

    # Greedy: a plain Caruana loop over the pool on the calibration split.
    models = result.models
    pool = [m for m in models.loc[models.accuracy < 0.9, "model"] if m in reference.scored]
    cal = reference.cal
    chosen, counts = ["base"], {}
    total = reference.q["base"][cal].copy()
    cal_acc = [reference.right(total.argmax(1), cal).mean()]
    for _ in range(6):
        accs = [reference.right((total + reference.q[c][cal]).argmax(1), cal).mean() for c in pool]
        best = max(range(len(pool)), key=lambda i: (accs[i], counts.get(pool[i], 0), -i))
        chosen.append(pool[best])
        counts[pool[best]] = counts.get(pool[best], 0) + 1
        total += reference.q[pool[best]][cal]
        cal_acc.append(accs[best])
    greedy = result.greedy
    assert list(greedy.columns) == tables.TABLE_COLUMNS["greedy"]
    assert list(greedy["added"]) == chosen
    np.testing.assert_allclose(greedy["calibration_acc"], cal_acc)
    kept = int(np.argmax(cal_acc)) + 1
    assert list(greedy["kept"]) == [s < kept for s in range(7)]
    eval_acc = [reference.ensemble_right(chosen[: s + 1]).mean() for s in range(7)]
    np.testing.assert_allclose(greedy["evaluation_acc"], eval_acc)
    assert greedy["members"].iloc[2] == ";".join(chosen[:3])

    inter = result.interpolation
    assert list(inter.columns) == tables.TABLE_COLUMNS["interpolation"]
    recall = {
        m: np.array([reference.r(m, cal)[reference.labels[cal] == k].mean() for k in range(5)])
        for m in ("base", "vit")
    }
    a_better = recall["base"] >= recall["vit"]
    for row in inter.itertuples(index=False):
        w = (
            np.full(5, row.weight)
            if row.mode == "weight"
            else np.where(a_better, row.weight, 1 - row.weight)
        )
        s = w * reference.q["base"][ev] + (1 - w) * reference.q["vit"][ev]
        assert row.ensemble_acc == pytest.approx(reference.right(s.argmax(1), ev).mean())
    assert set(inter["mode"]) == {"weight", "class_aware"}

    summary = json.loads((out / "summary.json").read_text())
    head = summary["headline"]
    scored = reference.scored
    assert head["all_models_ensemble_acc"] == pytest.approx(reference.ensemble_right(scored).mean())
    votes = np.zeros((len(ev), 5), int)
    for m in reference.names:
        votes[np.arange(len(ev)), reference.pred[m][ev]] += 1
    assert head["majority_vote_acc"] == pytest.approx((votes.argmax(1) == y).mean())
    with_base = result.pairs[(result.pairs.model_a == "base") & result.pairs.ensemble_acc.notna()]
    best = with_base.loc[with_base.ensemble_acc.idxmax()]
    assert head["best_sidekick"]["model"] == best["model_b"]
    assert head["best_sidekick"]["over_base"] == pytest.approx(best["ensemble_acc"] - best["acc_a"])
    by_cat = head["mean_error_inconsistency_by_category"]
    assert by_cat["Reinit"]["mean"] == pytest.approx(
        np.mean(reference.r("base") != reference.r("reinit"))
    )
    assert by_cat["Framework"]["n_pairs"] == 2  # clip-top2 and humans
    xor = (
        (reference.r("base") != reference.r("clip-top2")).astype(float)
        + (reference.r("base") != reference.r("humans"))
    ) / 2
    idx = np.random.default_rng(SEED).integers(0, len(ev), size=(BOOT, len(ev)))
    means = xor[idx].mean(axis=1)
    assert by_cat["Framework"]["mean"] == pytest.approx(xor.mean())
    assert by_cat["Framework"]["lo"] == pytest.approx(np.quantile(means, 0.025))
    assert by_cat["Framework"]["hi"] == pytest.approx(np.quantile(means, 0.975))
    conv = result.pairs.set_index(["model_a", "model_b"])["conversion_rate"]
    framework = head["conversion_rate_by_category"]["Framework"]
    assert framework["mean"] == pytest.approx(conv[("base", "clip-top2")])
    assert framework["n_pairs"] == 1  # humans: NaN
    from scipy.stats import spearmanr

    scored_pairs = result.pairs.dropna(subset=["ensemble_gain"])
    rho = spearmanr(scored_pairs.error_inconsistency, scored_pairs.ensemble_gain)[0]
    assert head["spearman_ei_vs_gain"]["all_pairs"]["rho"] == pytest.approx(rho)
    assert head["spearman_ei_vs_gain"]["all_pairs"]["n_pairs"] == 15
    assert summary["decision_only_models"] == ["humans"]
    assert summary["topk_models"] == ["clip-top2"]
    assert summary["zoo"]["file_hashes"] == reference.zoo.file_hashes()
    assert summary["table_version"] == tables.TABLE_VERSION and summary["base"] == "base"
    assert summary["command"] == "zoolens analyze test"
    assert summary["seeds"] == {"bootstrap": SEED}
    for name in tables.TABLE_COLUMNS:
        if name.startswith("shift_"):  # written only by a shift study (issue 27)
            assert not (out / f"{name}.csv").exists()
            continue
        assert list(pd.read_csv(out / f"{name}.csv").columns) == tables.TABLE_COLUMNS[name]
        pd.testing.assert_frame_equal(
            pd.read_parquet(out / f"{name}.parquet"), getattr(result, name), check_dtype=False
        )
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_chunking_and_kernel_do_not_change_results(random_zoo, random_result):
    from zoolens.study.analyze import analyze

    result, _ = random_result
    other = analyze(
        random_zoo,
        "base",
        pool="accuracy<0.9",
        max_steps=6,
        n_bootstrap=BOOT,
        seed=SEED,
        chunk_size=10_000,
        exact_topk=False,
        interpolation_pairs=[("base", "vit")],
    )
    for name in tables.TABLE_COLUMNS:
        pd.testing.assert_frame_equal(
            getattr(other, name), getattr(result, name), check_exact=False, rtol=1e-12, atol=1e-12
        )


# ----------------------------------------------------------------------------- real data

# Published test accuracies of the CIFAR-10 files (../shared/data/README.md).
CIFAR_FILES = {
    "lenet-5": ("lenet-5-cifar-10.npz", 0.5308, dict(arch="lenet5")),
    "wrn-16-4": ("wideresnet-16-4-cifar-10.npz", 0.9109, dict(arch="wideresnet16_4")),
    "vgg16-keras": ("vgg16-keras-cifar-10.npz", 0.9359, dict(arch="vgg16", framework="keras")),
    "out-of-fold": (
        "cifar10_test_set_pyx.npy",
        0.9294,
        dict(arch="unknown", framework="cross-validated"),
    ),
    "densenet-bc": ("densenet-bc-L190-k40.csv", 0.9668, dict(arch="densenet190")),
    "preresnet-110": ("preresnet-110.csv", 0.9506, dict(arch="preresnet110")),
    "resnet-110": ("resnet-110.csv", 0.9389, dict(arch="resnet110")),
    "low-accuracy": ("human_model_truth_cifar10h.csv", 0.8892, dict(arch="unknown2")),
}


def _cifar_arrays():
    from conftest import shared_path

    out = {}
    for name, (file, _, _) in CIFAR_FILES.items():
        path = shared_path("cifar10-probs", file)
        if file.endswith(".npz"):
            data = np.load(path)
            out[name] = data["predictions" if "predictions" in data else "probs"]
        elif file.endswith(".npy"):
            out[name] = np.load(path)
        else:
            table = np.loadtxt(path, delimiter=",")
            out[name] = table[:, 10:20] if name == "low-accuracy" else table[:, 11:21]
            if name == "densenet-bc":
                votes, labels = table[:, 1:11], table[:, 0].astype(np.int64)
    out["cifar10h-humans"] = votes
    return out, labels


@pytest.fixture(scope="module")
def cifar(tmp_path_factory):
    from zoolens.study.analyze import analyze
    from zoolens.zoo.store import Zoo

    arrays, labels = _cifar_arrays()
    zoo = Zoo.create(
        tmp_path_factory.mktemp("cifar") / "zoo",
        labels,
        seed=0,
        class_names=[
            "airplane",
            "automobile",
            "bird",
            "cat",
            "deer",
            "dog",
            "frog",
            "horse",
            "ship",
            "truck",
        ],
        class_groups={"animals": [2, 3, 4, 5, 6, 7], "vehicles": [0, 1, 8, 9]},
    )
    for name, probs in arrays.items():
        card = dict(CIFAR_FILES[name][2]) if name in CIFAR_FILES else dict(framework="human")
        card.setdefault("framework", "supervised")
        if name == "cifar10h-humans":
            zoo.add(name, counts=probs, card=card)
        else:
            zoo.add(name, probs=probs / probs.sum(axis=1, keepdims=True), card=card)
    out = tmp_path_factory.mktemp("cifar_out")
    result = analyze(
        zoo, "resnet-110", out, pool="accuracy<0.94", max_steps=5, n_bootstrap=200, seed=0
    )
    return zoo, arrays, labels, result, out


def test_real_cifar10_zoo_tables_hold_independent_values(cifar):
    zoo, arrays, labels, result, out = cifar
    models = result.models.set_index("model")
    for name, (_, published, _) in CIFAR_FILES.items():
        assert models.loc[name, "accuracy_all"] == pytest.approx(published, abs=5e-5), name
    votes = arrays["cifar10h-humans"]
    human = (votes.argmax(axis=1) == labels).mean()
    assert models.loc["cifar10h-humans", "accuracy_all"] == pytest.approx(human)
    assert human == pytest.approx(0.992, abs=1e-3)

    # Every pair, recomputed from the raw files (not the zoo) with the reported temperatures.
    ev = np.asarray(zoo.evaluation_indices)
    y = labels[ev]
    names = list(zoo.models)
    temps = models["temperature"]
    q = {}
    for name in names:
        p = arrays[name].astype(np.float64)
        p = np.maximum(p / p.sum(axis=1, keepdims=True), 1e-12)
        q[name] = _softmax64(np.log(p[ev]), temps[name])
    right = {name: arrays[name][ev].argmax(axis=1) == y for name in names}
    pairs = result.pairs.set_index(["model_a", "model_b"])
    assert len(pairs) == 36
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            row = pairs.loc[(a, b)]
            ra, rb = right[a], right[b]
            assert row["error_inconsistency"] == pytest.approx(np.mean(ra != rb))
            assert row["both_wrong"] == pytest.approx(np.mean(~ra & ~rb))
            e = (q[a] + q[b]).argmax(axis=1) == y
            assert row["ensemble_acc"] == pytest.approx(e.mean(), abs=1e-12), (a, b)
            assert row["ensemble_acc_lo"] <= row["ensemble_acc"] <= row["ensemble_acc_hi"]
    all_nine = (sum(q.values()).argmax(axis=1) == y).mean()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["headline"]["all_models_ensemble_members"] == 9
    assert summary["headline"]["all_models_ensemble_acc"] == pytest.approx(all_nine, abs=1e-12)
    # The humans are the most different "training method": highest EI with the base.
    with_base = result.pairs[
        (result.pairs.model_a == "resnet-110") | (result.pairs.model_b == "resnet-110")
    ]
    assert summary["headline"]["best_sidekick"]["model"] == "cifar10h-humans"
    assert with_base.ensemble_acc.max() > models.loc["resnet-110", "accuracy"]
    spec = result.specialization
    assert set(spec.group_type) == {"class", "class_group"}
    assert len(spec) == 8 * (10 + 2)
    assert (result.models.loc[result.models.model != "lenet-5", "ece_after"] < 0.05).all()


def test_multilabel_truth(tmp_path):
    """Right = top-1 among the valid labels; NLL = −log of the valid set's probability."""
    from scipy.optimize import minimize_scalar

    from zoolens.study.analyze import analyze

    zoo = make_random_zoo(tmp_path / "zoo", n=200, multilabel=True, seed=3)
    result = analyze(zoo, "base", pool="vit,wide", max_steps=3, n_bootstrap=20, chunk_size=50)
    models = result.models.set_index("model")
    ref = Reference(zoo, dict(models["temperature"]))
    valid = np.asarray(zoo.labels).astype(bool)
    ev, cal = ref.ev, ref.cal
    for m in ref.names:
        r = valid[ev, ref.pred[m][ev]]
        assert models.loc[m, "accuracy"] == pytest.approx(r.mean())
    for m in ("base", "wide"):
        z = zoo.scores(m).astype(np.float64)
        keep = valid[cal].any(axis=1)

        def nll(u, rows=cal[keep]):
            return -np.log((_softmax64(z[rows], math.exp(u)) * valid[rows]).sum(1)).mean()

        fit = minimize_scalar(nll, bounds=(-6.9, 6.9), method="bounded", options={"xatol": 1e-10})
        assert models.loc[m, "temperature"] == pytest.approx(math.exp(fit.x), rel=1e-4)
        rows = ev[valid[ev].any(axis=1)]
        t = models.loc[m, "temperature"]
        expected = -np.log((_softmax64(z[rows], t) * valid[rows]).sum(1)).mean()
        assert models.loc[m, "nll_after"] == pytest.approx(expected, rel=1e-6)
    pairs = result.pairs.set_index(["model_a", "model_b"])
    for a, b in (("base", "vit"), ("reinit", "clip-top2"), ("wide", "weak")):
        e = ref.ensemble_right([a, b])
        assert pairs.loc[(a, b), "ensemble_acc"] == pytest.approx(e.mean())
        assert pairs.loc[(a, b), "error_inconsistency"] == pytest.approx(
            np.mean(ref.r(a) != ref.r(b))
        )
    spec = result.specialization
    classes = spec[(spec.model_b == "vit") & (spec.group_type == "class")]
    np.testing.assert_array_equal(classes["n"], valid[ev].sum(axis=0))
    nature = spec[(spec.model_b == "vit") & (spec.group == "nature")].iloc[0]
    assert nature["n"] == valid[ev][:, [0, 1]].any(axis=1).sum()
    assert result.summary["multilabel"] is True


def test_tiny_memory_budget_holds_greedy_candidates_lazily_with_identical_tables(
    random_zoo, monkeypatch
):
    """A pool over the memory budget is held lazily (study.greedy.lazy_pool): same tables."""
    from zoolens.study import greedy as greedy_module
    from zoolens.study.analyze import analyze, run_greedy

    lazy_calls = []
    real_lazy_pool = greedy_module.lazy_pool

    kept_counts = []

    def spy(models, cal, num_classes, parallel_map=None, hint=None, kept=None):
        lazy_calls.append(len(models))
        pool = real_lazy_pool(models, cal, num_classes, parallel_map, hint, kept)
        assert all(isinstance(m[cal], greedy_module._LazyCandidate) for m in pool)
        kept_counts.extend(m[cal].kept_count for m in pool)
        return pool

    monkeypatch.setattr(greedy_module, "lazy_pool", spy)
    orders = []  # the rows' order is worked out only when stored rows can be kept
    real_order = greedy_module.disagreement_order
    monkeypatch.setattr(
        greedy_module,
        "disagreement_order",
        lambda *a: orders.append(sorted(a[2].tolist())) or real_order(*a),
    )
    common = dict(n_bootstrap=0, chunk_size=100, max_steps=8)
    unlimited = analyze(random_zoo, "base", memory_budget=2**40, **common)
    assert lazy_calls == []
    tiny = analyze(random_zoo, "base", memory_budget=2**20, **common)
    assert lazy_calls == [6]  # every model with probabilities (humans is decision-only)
    assert kept_counts == [0] * 6 and orders == []  # no room beside the running sums
    # A budget with room for some calibration rows' stored scores (not all): same tables.
    n_cal, n_ev = len(random_zoo.calibration_indices), len(random_zoo.evaluation_indices)
    c = random_zoo.num_classes
    # (the per-row state counted as 1 byte: at this zoo's few classes ~170 would exceed the
    # candidates' rows themselves, and the pool would be held in memory)
    monkeypatch.setattr(greedy_module, "_LAZY_ROW_BYTES", 1)
    beside = greedy_module.memory_need(0, n_cal, n_ev, c) + 6 * n_cal
    analyze(random_zoo, "base", memory_budget=beside + 6 * (2 * c - 1), **common)
    assert orders == [] and kept_counts[-6:] == [0] * 6  # room, but not for one float16 row
    kept_counts.clear()
    partly = analyze(random_zoo, "base", memory_budget=beside + 2 * n_cal * c, **common)
    assert lazy_calls == [6, 6, 6] and 0 < min(kept_counts) and max(kept_counts) < n_cal
    # the order is the candidates' (every model with probabilities)
    names = list(random_zoo.models)
    assert orders == [[i for i, m in enumerate(names) if random_zoo.kind(m) != "decisions"]]
    pd.testing.assert_frame_equal(partly.greedy, unlimited.greedy)
    # an explicit pool: the order of its candidates only
    pooled = analyze(
        random_zoo, "base", pool="vit,wide", memory_budget=beside + 2 * n_cal * c, **common
    )
    assert orders[-1] == sorted([names.index("vit"), names.index("wide")])
    pd.testing.assert_frame_equal(
        pooled.greedy, analyze(random_zoo, "base", pool="vit,wide", **common).greedy
    )
    assert len(tiny.greedy) == 9 and "skipped" not in tiny.summary["headline"]["greedy"]
    pd.testing.assert_frame_equal(tiny.greedy, unlimited.greedy)
    lazy_summary = dict(tiny.summary["headline"]["greedy"])
    assert lazy_summary.pop("candidates_recomputed") is True
    assert unlimited.summary["headline"]["greedy"].pop("candidates_recomputed") is False
    assert lazy_summary == unlimited.summary["headline"]["greedy"]
    pd.testing.assert_frame_equal(tiny.pairs, unlimited.pairs)
    # An explicit pool and a pool filtered on pass-measured columns: lazy too.
    for pool in ("vit,wide", "ece_after<1"):
        a = analyze(random_zoo, "base", pool=pool, memory_budget=2**20, **common)
        b = analyze(random_zoo, "base", pool=pool, memory_budget=2**40, **common)
        pd.testing.assert_frame_equal(a.greedy, b.greedy)
    table, _ = run_greedy(random_zoo, "base", memory_budget=2**20)
    pd.testing.assert_frame_equal(table, run_greedy(random_zoo, "base")[0])
    # Candidates scored in groups on the model threads (large rows only by default; here
    # always), lazy and in memory: the same selection.
    monkeypatch.setattr(greedy_module, "_GROUPED_MIN_ENTRIES", 0)
    monkeypatch.setattr(greedy_module, "default_threads", lambda: 3)
    for budget in (2**20, 2**40):
        grouped = analyze(random_zoo, "base", memory_budget=budget, **common)
        pd.testing.assert_frame_equal(grouped.greedy, unlimited.greedy)


def test_greedy_pool_errors(random_zoo):
    from zoolens.study.analyze import run_greedy

    with pytest.raises(ZoolensError, match="decision-only"):
        run_greedy(random_zoo, "humans", pool="vit")
    with pytest.raises(ZoolensError, match="pool is empty"):
        run_greedy(random_zoo, "base", pool="humans")


def test_decision_only_base(random_zoo):
    """A decision-only base: agreement and majority vote still measured, the rest NaN/empty."""
    from zoolens.cli.analyze import format_summary
    from zoolens.study.analyze import analyze

    result = analyze(random_zoo, "humans", n_bootstrap=0, chunk_size=100)
    with_base = result.pairs[
        (result.pairs.model_a == "humans") | (result.pairs.model_b == "humans")
    ]
    assert with_base["error_inconsistency"].notna().all()
    assert with_base["ensemble_acc"].isna().all()
    assert result.theta.empty and result.interpolation.empty and result.greedy.empty
    assert result.specialization["mean_theta_only_a"].isna().all()
    assert result.specialization["acc_a"].notna().all()
    head = result.summary["headline"]
    assert head["best_sidekick"] is None and "decision-only" in head["greedy"]["skipped"]
    text = format_summary(result.summary)
    assert "best sidekick for humans: none" in text and "greedy selection skipped" in text
    with pytest.raises(ZoolensError, match="decision-only"):
        analyze(random_zoo, "humans", start="humans", n_bootstrap=0, pool="vit")


def test_combine_logits_averages_calibrated_logits(random_zoo, random_result, reference):
    """--combine logits: argmax of z_a/T_a + z_b/T_b (the paper's Fig. 11 variant)."""
    from zoolens.study.analyze import analyze

    result = analyze(
        random_zoo,
        "base",
        combine="logits",
        pool="vit,wide",
        max_steps=2,
        n_bootstrap=BOOT,
        seed=SEED,
        chunk_size=64,
    )
    temps = dict(zip(result.models["model"], result.models["temperature"]))
    ev = reference.ev
    scaled = {m: random_zoo.scores(m)[ev].astype(np.float64) / temps[m] for m in reference.scored}
    pairs = result.pairs.set_index(["model_a", "model_b"])
    for (a, b), row in pairs.iterrows():
        if a in scaled and b in scaled:
            e = reference.right((scaled[a] + scaled[b]).argmax(1), ev)
            assert row["ensemble_acc"] == pytest.approx(e.mean(), abs=1e-12), (a, b)
    all_logits = reference.right(sum(scaled.values()).argmax(1), ev).mean()
    assert result.summary["headline"]["all_models_ensemble_acc"] == pytest.approx(all_logits)
    # Everything that does not ensemble is unchanged by --combine.
    for name in ("models", "specialization", "theta", "reliability"):
        pd.testing.assert_frame_equal(
            getattr(result, name), getattr(random_result[0], name), atol=1e-6
        )


def _near_tie(total: np.ndarray) -> bool:
    """Whether some row's two largest ensemble scores (float64, probabilities summing to 2)
    lie within float32 resolution of each other. The pipeline's ensemble inputs are float32
    (``measure.ensemble.ensemble_inputs``), lowest class index on ties: where a fitted
    temperature saturates both members (T at its 0.001 bound on a separable calibration
    split), their probabilities round to exactly 0 and 1 and the float32 sums tie where
    the float64 oracle's do not (e.g. 3 models x 26 examples x 2 classes, seed 3110)."""
    top2 = np.sort(total, axis=1)[:, -2:]
    return bool(np.any(top2[:, 1] - top2[:, 0] <= 4 * np.finfo(np.float32).eps))


def test_pair_tables_on_random_zoos_of_random_sizes():
    """hypothesis: any small zoo (2-5 models, some decision-only), any chunking."""
    import tempfile
    from pathlib import Path

    from hypothesis import HealthCheck, example, given, settings
    from hypothesis import strategies as st

    from zoolens.study.analyze import analyze
    from zoolens.zoo.store import Zoo

    @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
    # two members saturated at T = 0.001: their float32 ensemble ties (see _near_tie)
    @example(models=3, n=26, c=2, chunk=1, seed=3110, decisions=[False] * 5)
    @given(
        models=st.integers(2, 5),
        n=st.integers(12, 80),
        c=st.integers(2, 6),
        chunk=st.integers(1, 90),
        seed=st.integers(0, 2**16),
        decisions=st.lists(st.booleans(), min_size=5, max_size=5),
    )
    def check(models, n, c, chunk, seed, decisions):
        rng = np.random.default_rng(seed)
        labels = rng.integers(0, c, n)
        with tempfile.TemporaryDirectory() as tmp:
            zoo = Zoo.create(
                Path(tmp) / "z", labels, num_classes=c, calibration_fraction=0.3, seed=seed
            )
            for m in range(models):
                z = rng.normal(size=(n, c)) * rng.uniform(0.1, 3)
                z[np.arange(n), labels] += rng.uniform(-1, 3)
                if decisions[m] and m > 0:
                    zoo.add(f"m{m}", decisions=z.argmax(1))
                else:
                    zoo.add(f"m{m}", logits=z.astype(np.float32))
            result = analyze(zoo, "m0", n_bootstrap=0, chunk_size=chunk, max_steps=2)
            ref = Reference(zoo, dict(zip(result.models["model"], result.models["temperature"])))
            rows = result.pairs.itertuples(index=False)
            for i, a in enumerate(ref.names):
                for b in ref.names[i + 1 :]:
                    row = next(rows)
                    ra, rb = ref.r(a), ref.r(b)
                    assert row.error_inconsistency == pytest.approx(np.mean(ra != rb))
                    assert row.both_wrong == pytest.approx(np.mean(~ra & ~rb))
                    assert row.dominance_ab == pytest.approx(np.mean(~ra & rb))
                    if a in ref.scored and b in ref.scored:
                        if _near_tie(ref.q[a][ref.ev] + ref.q[b][ref.ev]):
                            continue  # decided on float32 inputs the float64 oracle does not see
                        e = ref.ensemble_right([a, b])
                        assert row.ensemble_acc == pytest.approx(e.mean())
                        one = ra != rb
                        if one.any():
                            assert row.conversion_rate == pytest.approx(e[one].mean())
                        else:
                            assert np.isnan(row.conversion_rate)
                    else:
                        assert np.isnan(row.ensemble_acc)

    check()


def test_zoo_of_decision_only_models(tmp_path):
    """No probabilities at all: agreement and majority vote only, everything else NaN/empty."""
    from zoolens.cli.analyze import format_summary
    from zoolens.study.analyze import analyze
    from zoolens.zoo.store import Zoo

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 60)
    zoo = Zoo.create(tmp_path / "z", y, num_classes=3)
    pa = np.where(rng.random(60) < 0.7, y, 0)
    pb = np.where(rng.random(60) < 0.6, y, 1)
    zoo.add("a", decisions=pa)
    zoo.add("b", decisions=pb)
    result = analyze(zoo, "a", tmp_path / "out", n_bootstrap=20)
    ev = zoo.evaluation_indices
    ra, rb = pa[ev] == y[ev], pb[ev] == y[ev]
    assert result.pairs["error_inconsistency"].iloc[0] == pytest.approx(np.mean(ra != rb))
    assert result.pairs["ensemble_acc"].isna().all()
    assert result.models["temperature"].isna().all()
    assert result.reliability.empty and result.theta.empty and result.greedy.empty
    votes = np.stack([np.bincount([p, q], minlength=3) for p, q in zip(pa[ev], pb[ev])])
    head = result.summary["headline"]
    assert head["majority_vote_acc"] == pytest.approx(np.mean(votes.argmax(1) == y[ev]))
    assert head["all_models_ensemble_acc"] is None
    assert result.summary["decision_only_models"] == ["a", "b"]
    assert "majority vote of all 2" in format_summary(result.summary)


@pytest.mark.parametrize("all_scored", [True, False])
def test_spearman_block_equals_scipy_per_resample(all_scored):
    """``study.headline.spearman_block`` (the headline's Spearman's rho per resample, a Ray
    task's body with --ray) against scipy's spearmanr on each resample's means, for every
    pair and for a subset; pairs without probabilities get gain 0, as in the pass."""
    from scipy.stats import spearmanr

    from zoolens.measure.agreement import pair_index
    from zoolens.study.headline import RankedSums, spearman_block

    rng = np.random.default_rng(11)
    n, models, resamples = 400, 12, 9
    a, b = pair_index(models)
    scored = np.ones(len(a), bool) if all_scored else rng.random(len(a)) < 0.8
    xor = rng.integers(0, n, size=(resamples, len(a))).astype(np.uint16)
    accuracy = rng.integers(0, n, size=(resamples, models)).astype(np.float64)
    ensemble = rng.integers(0, n, size=(resamples, int(scored.sum()))).astype(np.uint16)
    subset = rng.random(len(a)) < 0.3
    ctx = RankedSums(
        xor, accuracy, ensemble, scored, True, (a, b), {"all": scored, "some": subset}, n
    )
    got = spearman_block(ctx, 2, 7)
    gain = np.zeros((resamples, len(a)))
    gain[:, scored] = (ensemble - (accuracy[:, a[scored]] + accuracy[:, b[scored]]) / 2) / n
    for name, mask in ctx.correlated.items():
        expected = [spearmanr(xor[r, mask] / n, gain[r, mask])[0] for r in range(2, 7)]
        np.testing.assert_allclose(got[name], expected, rtol=0, atol=1e-12)  # float64 sums


def test_headline_intervals_match_direct_resampling(random_zoo, random_result, reference):
    """Conversion by category, greedy gain and the EI-gain Spearman correlation: intervals
    against a float64 loop over the same resamples (indices drawn as bootstrap_weights)."""
    from scipy.stats import spearmanr

    result, out = random_result
    head = json.loads((out / "summary.json").read_text())["headline"]
    n = len(reference.ev)
    idx = np.random.default_rng(SEED).integers(0, n, size=(BOOT, n))

    # (a) conversion rate by category: per resample, each pair's ratio of resampled sums,
    # averaged over the category's pairs with a defined full-sample rate.
    pairs = result.pairs
    checked = 0
    for category, entry in head["conversion_rate_by_category"].items():
        with_base = pairs[
            (pairs.model_a == "base") & (pairs.category == category) & pairs.conversion_rate.notna()
        ]
        assert entry["n_pairs"] == len(with_base)
        per_resample = []
        for b in range(BOOT):
            rates = []
            for other in with_base.model_b:
                ra, ro = reference.r("base")[idx[b]], reference.r(other)[idx[b]]
                e = reference.ensemble_right(["base", other])[idx[b]]
                den = float(np.sum(ra != ro))
                if den > 0:
                    rates.append(float(np.sum(e & (ra != ro))) / den)
            if rates:
                per_resample.append(np.mean(rates))
        assert entry["lo"] == pytest.approx(np.quantile(per_resample, 0.025), abs=1e-12)
        assert entry["hi"] == pytest.approx(np.quantile(per_resample, 0.975), abs=1e-12)
        assert entry["lo"] <= entry["mean"] <= entry["hi"]
        checked += len(with_base)
    assert checked >= 4

    # (b) greedy gain: paired, the kept ensemble's correctness minus the start's.
    greedy = head["greedy"]
    kept = reference.ensemble_right(greedy["members"]).astype(float)
    start = reference.ensemble_right(["base"]).astype(float)
    assert greedy["gain_over_start"] == pytest.approx(kept.mean() - start.mean())
    gains = (kept - start)[idx].mean(axis=1)
    assert greedy["gain_over_start_lo"] == pytest.approx(np.quantile(gains, 0.025))
    assert greedy["gain_over_start_hi"] == pytest.approx(np.quantile(gains, 0.975))
    assert len(greedy["members"]) > 1 and np.std(gains) > 0  # a real interval, not a point

    # (c) Spearman(EI, gain) over all scored pairs and over pairs with the base.
    scored = pairs.dropna(subset=["ensemble_gain"])
    for key, rows in (
        ("all_pairs", scored),
        ("pairs_with_base", scored[(scored.model_a == "base") | (scored.model_b == "base")]),
    ):
        xor = np.stack(
            [reference.r(a) != reference.r(b) for a, b in zip(rows.model_a, rows.model_b)]
        ).astype(float)
        gain = np.stack(
            [
                reference.ensemble_right([a, b]).astype(float)
                - (reference.r(a).astype(float) + reference.r(b)) / 2
                for a, b in zip(rows.model_a, rows.model_b)
            ]
        )
        rhos = [
            spearmanr(xor[:, idx[b]].mean(axis=1), gain[:, idx[b]].mean(axis=1))[0]
            for b in range(BOOT)
        ]
        rhos = np.asarray(rhos)[np.isfinite(rhos)]
        entry = head["spearman_ei_vs_gain"][key]
        assert entry["lo"] == pytest.approx(np.quantile(rhos, 0.025), abs=1e-9), key
        assert entry["hi"] == pytest.approx(np.quantile(rhos, 0.975), abs=1e-9), key
        assert entry["lo"] < entry["hi"]


def test_conversion_by_category_interval_averages_several_pairs(tmp_path):
    """A category of three pairs (Reinit: three other seeds): per resample the mean of the
    pairs' resampled conversion rates, against a float64 loop on the same resamples."""
    from zoolens.study.analyze import analyze
    from zoolens.zoo.store import Zoo

    rng = np.random.default_rng(3)
    n, c, boot = 150, 4, 200
    labels = rng.integers(0, c, n)
    zoo = Zoo.create(tmp_path / "z", labels, calibration_fraction=0.3, seed=2)
    card = dict(arch="resnet50", framework="supervised", pretrain_data="ImageNet")
    for seed in range(4):
        z = rng.normal(size=(n, c)) * 1.5
        z[np.arange(n), labels] += 1.2
        zoo.add(f"s{seed}", logits=z.astype(np.float32), card={**card, "seed": seed})
    result = analyze(zoo, "s0", tmp_path / "out", n_bootstrap=boot, seed=11, max_steps=2)
    entry = result.summary["headline"]["conversion_rate_by_category"]["Reinit"]
    assert entry["n_pairs"] == 3
    ref = Reference(zoo, dict(zip(result.models["model"], result.models["temperature"])))
    ev_n = len(ref.ev)
    idx = np.random.default_rng(11).integers(0, ev_n, size=(boot, ev_n))
    r0 = ref.r("s0")
    pieces = [(ref.r(m) != r0, ref.ensemble_right(["s0", m])) for m in ("s1", "s2", "s3")]
    assert entry["mean"] == pytest.approx(np.mean([e[one].mean() for one, e in pieces]))
    per_resample = []
    for b in range(boot):
        rates = [
            float(np.sum((e & one)[idx[b]])) / float(np.sum(one[idx[b]]))
            for one, e in pieces
            if one[idx[b]].any()
        ]
        if rates:
            per_resample.append(float(np.mean(rates)))
    assert entry["lo"] == pytest.approx(np.quantile(per_resample, 0.025), abs=1e-12)
    assert entry["hi"] == pytest.approx(np.quantile(per_resample, 0.975), abs=1e-12)
    assert entry["lo"] < entry["mean"] < entry["hi"]


def test_cards_json_equals_the_zoo_cards(random_zoo, random_result):
    _, out = random_result
    payload = json.loads((out / "cards.json").read_text())
    assert payload["table_version"] == tables.TABLE_VERSION
    assert list(payload["cards"]) == list(random_zoo.models)
    for name in random_zoo.models:
        card = random_zoo.card(name)
        assert payload["cards"][name] == json.loads(card.model_dump_json())
        assert type(card).model_validate(payload["cards"][name]) == card


def test_ece_columns_come_from_the_reliability_bins(random_zoo, reference, monkeypatch):
    """The analysis bins each model's confidence once: models.csv's ECE equals, bit for bit,
    the separate ECE call it replaced (expected_calibration_error_from_confidence on the
    evaluation pass's confidences), the ECE of reliability.csv's own rows, and the float64
    loop oracle."""
    from zoolens.measure.calibration import expected_calibration_error_from_confidence
    from zoolens.study import stream
    from zoolens.study.analyze import analyze

    captured = {}
    real_pass = stream.run_eval_pass

    def capture(*args, **kwargs):
        captured["evaluation"] = real_pass(*args, **kwargs)
        return captured["evaluation"]

    monkeypatch.setattr(stream, "run_eval_pass", capture)
    result = analyze(
        random_zoo, "base", None, n_bootstrap=0, chunk_size=37, command="zoolens analyze test"
    )
    evaluation = captured["evaluation"]
    models = result.models.set_index("model")
    rel = result.reliability
    ev, checked = reference.ev, 0
    for m in reference.scored:
        index = reference.names.index(m)
        for stage, q in (("before", reference.q1[m]), ("after", reference.q[m])):
            conf = getattr(evaluation, f"confidence_{stage}")[index]
            old = expected_calibration_error_from_confidence(conf, reference.r(m), 15)
            assert models.loc[m, f"ece_{stage}"] == old
            rows = rel[(rel.model == m) & (rel.stage == stage) & (rel["count"] > 0)]
            gaps = np.abs(rows["accuracy"].to_numpy() - rows["mean_confidence"].to_numpy())
            from_table = float(np.sum(rows["count"].to_numpy() / len(ev) * gaps))
            assert models.loc[m, f"ece_{stage}"] == from_table
            p = q[ev].max(axis=1)
            bins = np.minimum((p * 15).astype(int), 14)
            loop = sum(
                abs(reference.r(m)[bins == k].mean() - p[bins == k].mean()) * (bins == k).mean()
                for k in range(15)
                if (bins == k).any()
            )
            assert models.loc[m, f"ece_{stage}"] == pytest.approx(loop, abs=1e-6)
            checked += 1
    assert (
        checked >= 4
        and np.isnan(models.loc["humans", ["ece_before", "ece_after"]].astype(float)).all()
    )


def test_top1_pairs_have_no_neither_conversion_and_say_why(tmp_path):
    """A top-1-only member makes "neither right" conversion 0 by construction (the ensemble
    predicts one of the two top-1 classes): NaN in pairs.csv, the reason in summary.json."""
    from zoolens.study.analyze import analyze
    from zoolens.study.gains import NEITHER_TOP1_REASON
    from zoolens.zoo.store import Zoo

    rng = np.random.default_rng(3)
    n, c = 300, 6
    labels = rng.integers(0, c, n)
    zoo = Zoo.create(tmp_path / "zoo", labels, class_names=[f"c{k}" for k in range(c)])
    for k, name in enumerate(("a", "b", "c")):
        pred = np.where(rng.random(n) < 0.6 + 0.1 * k, labels, rng.integers(0, c, n))
        conf = rng.uniform(0.3, 0.95, n).astype(np.float32)
        zoo.add(
            name, topk_indices=pred[:, None], topk_values=conf[:, None], card={"arch": f"net{k}"}
        )
    z = rng.normal(size=(n, c)).astype(np.float32)
    z[np.arange(n), labels] += 1.5
    zoo.add("full", logits=z, card={"arch": "full"})
    result = analyze(zoo, "a", tmp_path / "out", max_steps=2, n_bootstrap=50)
    pairs = result.pairs
    assert pairs.neither_conversion.isna().all()
    assert pairs.neither_conversion_lo.isna().all()
    assert pairs.conversion_rate.notna().all()
    assert result.summary["undefined"]["neither_conversion"] == {
        "pairs": len(pairs),
        "reason": NEITHER_TOP1_REASON,
    }
    # the structural zero it replaces: the ensemble never rescues a both-wrong example
    ref = Reference(zoo, dict(zip(result.models["model"], result.models["temperature"])))
    for a, b in zip(pairs.model_a, pairs.model_b):
        ra, rb = ref.r(a), ref.r(b)
        assert not ref.ensemble_right([a, b])[~ra & ~rb].any()


def test_pipeline_stages_and_a_summary_computed_twice(random_zoo):
    """The stages run by hand give analyze()'s tables, and the headline computed twice from
    the same (frozen) bootstrap sums is identical: nothing is counted twice."""
    from zoolens.study import stream
    from zoolens.study.analyze import analyze, evaluation_plan, select_greedy
    from zoolens.study.assemble import build_tables
    from zoolens.study.headline import greedy_summary, headline, ranked_sidekicks
    from zoolens.study.inputs import AnalyzeOptions, calibrate, models_table, read_inputs

    options = AnalyzeOptions(base="base", max_steps=3, n_bootstrap=120, seed=4, chunk_size=50)
    inputs = read_inputs(random_zoo, options)
    calibration = calibrate(inputs)
    plan = evaluation_plan(inputs, options)
    evaluation = stream.run_eval_pass(inputs, calibration, plan)
    built = build_tables(inputs, models_table(inputs, calibration), evaluation, plan.resamples)
    _, selection = select_greedy(inputs, calibration, built.models, options)
    sidekicks = ranked_sidekicks(built.pairs, "base")

    def summary():
        return headline(
            inputs,
            "base",
            "base",
            built.models,
            built.pairs,
            sidekicks,
            evaluation,
            plan.resamples,
            selection,
        )

    first, second = summary(), summary()
    assert json.dumps(tables.to_jsonable(first)) == json.dumps(tables.to_jsonable(second))
    # The headline's resamples a few at a time (one per block here) give the same bits.
    from zoolens.study import headline as headline_module

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(headline_module, "_RESAMPLE_BLOCK_VALUES", 7)
        blocked = summary()
    assert json.dumps(tables.to_jsonable(blocked)) == json.dumps(tables.to_jsonable(first))
    # And the pairs' bootstrap a few pairs at a time (unaligned with the packed bits).
    small = stream.run_eval_pass(inputs, calibration, dataclasses.replace(plan, pair_block=3))
    small_tables = build_tables(inputs, models_table(inputs, calibration), small, plan.resamples)
    pd.testing.assert_frame_equal(small_tables.pairs, built.pairs, check_exact=True)
    assert greedy_summary(selection, plan.resamples) == greedy_summary(selection, plan.resamples)
    assert first["greedy"]["gain_over_start_lo"] is not None
    whole = analyze(random_zoo, "base", None, max_steps=3, n_bootstrap=120, seed=4, chunk_size=50)
    pd.testing.assert_frame_equal(whole.pairs, built.pairs)
    pd.testing.assert_frame_equal(whole.models, built.models)
    assert json.dumps(tables.to_jsonable(whole.summary["headline"])) == json.dumps(
        tables.to_jsonable(first)
    )
