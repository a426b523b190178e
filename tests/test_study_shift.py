"""The shift study (``zoolens analyze --shift``, ``zoolens.study.shift``) against independent
recomputations: scipy.stats / numpy.polyfit for the probit fits, scikit-learn's Cohen kappa,
plain numpy loops for accuracy, error inconsistency, prediction agreement and pair ensembles;
on synthetic zoos and on the 30 real CIFAR-10 models on CIFAR-10 and CIFAR-10.1 v6."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from typer.testing import CliRunner

from conftest import shared_path
from zoolens import Zoo
from zoolens.cli import app
from zoolens.measure.shift import effective_robustness, prediction_agreement_counts, probit_fit
from zoolens.study import tables
from zoolens.study.shift import analyze_shift

runner = CliRunner()


# ---------------------------------------------------------------- measure.shift


def test_probit_fit_equals_scipy_linregress_and_polyfit():
    rng = np.random.default_rng(1)
    x = rng.uniform(0.3, 0.97, 40)
    y = stats.norm.cdf(0.9 * stats.norm.ppf(x) - 0.3 + rng.normal(0, 0.1, 40))
    fit = probit_fit(x, y)
    ref = stats.linregress(stats.norm.ppf(x), stats.norm.ppf(y))
    slope, intercept = np.polyfit(stats.norm.ppf(x), stats.norm.ppf(y), 1)
    assert fit.n_points == 40
    assert fit.slope == pytest.approx(ref.slope, rel=1e-12) == pytest.approx(slope, rel=1e-10)
    assert fit.intercept == pytest.approx(ref.intercept, abs=1e-12)
    assert fit.intercept == pytest.approx(intercept, abs=1e-10)
    assert fit.r2 == pytest.approx(ref.rvalue**2, rel=1e-12)
    er = effective_robustness(x, y, fit)
    np.testing.assert_allclose(
        er, y - stats.norm.cdf(ref.slope * stats.norm.ppf(x) + ref.intercept), atol=1e-12
    )
    # a model above the line has positive effective robustness
    assert effective_robustness(np.array([0.8]), np.array([0.99]), fit)[0] > 0


def test_probit_fit_leaves_out_zero_and_one_and_needs_two_distinct_points():
    x = np.array([0.5, 0.7, 0.9, 1.0, 0.6])
    y = np.array([0.4, 0.6, 0.8, 0.9, 0.0])
    fit = probit_fit(x, y)
    ref = stats.linregress(stats.norm.ppf(x[:3]), stats.norm.ppf(y[:3]))
    assert fit.n_points == 3 and fit.slope == pytest.approx(ref.slope)
    assert np.isnan(probit_fit(np.array([0.5]), np.array([0.4])).slope)
    same = probit_fit(np.array([0.5, 0.5, 0.5]), np.array([0.4, 0.5, 0.6]))
    assert same.n_points == 3 and np.isnan(same.slope) and np.isnan(same.r2)
    flat = probit_fit(np.array([0.5, 0.6, 0.7]), np.array([0.4, 0.4, 0.4]))
    assert flat.slope == 0 and np.isnan(flat.r2)


@pytest.mark.parametrize("n", [2, 3, 4, 5])
def test_a_line_through_two_or_three_points_claims_no_r2(n):
    """Issue 27: through 2 points R² is 1 whatever the data, through 3 it rests on one
    residual degree of freedom: the line is kept, R² is NaN and ``small_sample`` says so."""
    rng = np.random.default_rng(n)
    x = rng.uniform(0.6, 0.95, n)
    y = np.clip(x - 0.05 + rng.normal(0, 0.02, n), 0.01, 0.99)
    fit = probit_fit(x, y)
    ref = stats.linregress(stats.norm.ppf(x), stats.norm.ppf(y))
    assert fit.n_points == n and fit.slope == pytest.approx(ref.slope)
    assert fit.small_sample == (n < 4)
    if n < 4:
        assert np.isnan(fit.r2)
    else:
        assert fit.r2 == pytest.approx(ref.rvalue**2)


def test_prediction_agreement_counts_equal_a_loop():
    rng = np.random.default_rng(0)
    pred = rng.integers(-1, 3, (5, 200))  # -1: an abstention, which agrees with nothing
    a, b = np.triu_indices(5, 1)
    expected = [
        sum(pred[i, n] == pred[j, n] and pred[i, n] != -1 for n in range(200)) for i, j in zip(a, b)
    ]
    np.testing.assert_array_equal(prediction_agreement_counts(pred, a, b), expected)


# ---------------------------------------------------------------- synthetic zoos

CARDS = {
    "base": {"arch": "resnet50", "framework": "supervised", "seed": 0},
    "seed1": {"arch": "resnet50", "framework": "supervised", "seed": 1},
    "vit": {"arch": "vit-b", "arch_family": "vit", "framework": "supervised"},
    "simclr": {"arch": "resnet50", "framework": "simclr"},
    "gone": {"arch": "resnet18", "framework": "supervised"},
}


def _logits(rng, labels, skill, noise, num_classes):
    n = len(labels)
    z = rng.normal(0, noise, (n, num_classes)).astype(np.float32)
    z[np.arange(n), labels] += skill
    return z


def make_zoos(tmp_path, n_ref=600, n_shift=400, num_classes=5, seed=0):
    """A reference zoo (20 % calibration split) and a noisier shifted zoo: "gone" is missing
    from the shifted zoo, "newcomer" is only there."""
    rng = np.random.default_rng(seed)
    ref_labels = rng.integers(0, num_classes, n_ref)
    shift_labels = rng.integers(0, num_classes, n_shift)
    ref = Zoo.create(tmp_path / "ref.zoo", ref_labels, num_classes=num_classes)
    shifted = Zoo.create(
        tmp_path / "shift.zoo", shift_labels, num_classes=num_classes, calibration_fraction=0.0
    )
    skills = {"base": 2.2, "seed1": 2.0, "vit": 1.6, "simclr": 1.2, "gone": 1.0}
    for name, skill in skills.items():
        ref.add(name, logits=_logits(rng, ref_labels, skill, 1.0, num_classes), card=CARDS[name])
        if name != "gone":
            shifted.add(name, logits=_logits(rng, shift_labels, skill, 1.5, num_classes))
    shifted.add("newcomer", logits=_logits(rng, shift_labels, 1.0, 1.0, num_classes))
    return ref, shifted


def _independent(zoo, names, rows, temperatures):
    """Per model accuracy and per pair EI, agreement, kappa, ensemble accuracy, by loops."""
    from sklearn.metrics import cohen_kappa_score

    y = zoo.labels[rows]
    pred = {m: zoo.predictions(m)[rows] for m in names}
    out_models = {m: float(np.mean(pred[m] == y)) for m in names}
    out_pairs = {}
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            ra, rb = pred[a] == y, pred[b] == y
            qa = (
                stats.special_softmax(
                    zoo.scores(a, rows=rows).astype(np.float64) / temperatures[a], axis=1
                )
                if temperatures
                else None
            )
            qb = (
                stats.special_softmax(
                    zoo.scores(b, rows=rows).astype(np.float64) / temperatures[b], axis=1
                )
                if temperatures
                else None
            )
            out_pairs[(a, b)] = {
                "error_inconsistency": float(np.mean(ra != rb)),
                "agreement": float(np.mean(pred[a] == pred[b])),
                "error_consistency": float(cohen_kappa_score(ra, rb)),
                "ensemble_acc": (
                    float(np.mean(((qa + qb) / 2).argmax(axis=1) == y)) if temperatures else np.nan
                ),
            }
    return out_models, out_pairs


# scipy.special.softmax under a short name for the helper above
stats.special_softmax = __import__("scipy.special", fromlist=["softmax"]).softmax


def test_cli_analyze_shift_tables_equal_independent_recomputation(tmp_path):
    ref, shifted = make_zoos(tmp_path)
    out = tmp_path / "out"
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
            "200",
            "--reference-name",
            "clean",
            "--shift",
            f"noisy={shifted.path}",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "under shift noisy (400 examples, 4 models)" in res.output
    assert "best sidekick on the reference" in res.output
    models = pd.read_csv(out / "shift_models.csv", keep_default_na=False, na_values=[""])
    pairs = pd.read_csv(out / "shift_pairs.csv", keep_default_na=False, na_values=[""])
    fits = pd.read_csv(out / "shift_fits.csv", keep_default_na=False, na_values=[""])
    assert list(models.columns) == tables.TABLE_COLUMNS["shift_models"]
    assert list(pairs.columns) == tables.TABLE_COLUMNS["shift_pairs"]
    assert list(fits.columns) == tables.TABLE_COLUMNS["shift_fits"]
    analysis_models = pd.read_csv(out / "models.csv")
    analysis_pairs = pd.read_csv(out / "pairs.csv")
    temperatures = dict(zip(analysis_models.model, analysis_models.temperature))

    # the reference rows are analyze's own numbers: same split, temperatures and resamples
    clean = models[models.set == "clean"].set_index("model")
    merged = analysis_models.set_index("model")
    for column in ("accuracy", "accuracy_lo", "accuracy_hi"):
        np.testing.assert_allclose(clean[column], merged.loc[clean.index, column], atol=1e-12)
    ref_pairs = pairs[pairs.set == "clean"].set_index(["model_a", "model_b"])
    ap = analysis_pairs.set_index(["model_a", "model_b"])
    for column in (
        "error_inconsistency",
        "error_consistency",
        "ensemble_acc",
        "ensemble_gain",
        "error_inconsistency_lo",
        "error_inconsistency_hi",
        "category",
    ):
        if column == "category":
            assert list(ref_pairs[column]) == list(ap.loc[ref_pairs.index, column])
        else:
            np.testing.assert_allclose(
                ref_pairs[column], ap.loc[ref_pairs.index, column], atol=1e-12
            )

    # every set against loops over the examples
    for name, zoo, rows in (
        ("clean", ref, ref.evaluation_indices),
        ("noisy", shifted, np.arange(shifted.num_examples)),
    ):
        names = [m for m in ref.models if m in zoo.models]
        acc, pair = _independent(zoo, names, rows, temperatures)
        mine = models[models.set == name].set_index("model")
        assert list(mine.index) == names and set(mine.n) == {len(rows)}
        np.testing.assert_allclose(mine.accuracy, [acc[m] for m in names], atol=1e-12)
        assert (mine.accuracy_lo <= mine.accuracy).all() and (
            mine.accuracy <= mine.accuracy_hi
        ).all()
        mp = pairs[pairs.set == name].set_index(["model_a", "model_b"])
        assert list(mp.index) == list(pair)
        for column in ("error_inconsistency", "agreement", "error_consistency", "ensemble_acc"):
            np.testing.assert_allclose(
                mp[column],
                [p[column] for p in pair.values()],
                atol=1e-12,
                err_msg=f"{name} {column}",
            )
        np.testing.assert_allclose(
            mp.ensemble_gain, mp.ensemble_acc - (mp.acc_a + mp.acc_b) / 2, atol=1e-12
        )
        # rank of each partner of the base by ensemble accuracy on this set (ties share)
        with_base = mp[[("base" in key) for key in mp.index]]
        values = with_base.ensemble_acc.to_numpy()
        expected = [1 + int((values > v).sum()) for v in values]
        np.testing.assert_array_equal(with_base.base_rank, expected)
        assert mp[[("base" not in key) for key in mp.index]].base_rank.isna().all()

    # fits: scipy on the probit values of the two sets' tables
    noisy = models[models.set == "noisy"].set_index("model")
    x, y = clean.loc[noisy.index, "accuracy"], noisy.accuracy
    line = stats.linregress(stats.norm.ppf(x), stats.norm.ppf(y))
    row = fits[(fits.set == "noisy") & (fits.measure == "accuracy")].iloc[0]
    assert row.n_points == 4
    assert row.slope == pytest.approx(line.slope) and row.intercept == pytest.approx(line.intercept)
    assert row.r2 == pytest.approx(line.rvalue**2)
    np.testing.assert_allclose(noisy.reference_accuracy, x)
    np.testing.assert_allclose(
        noisy.effective_robustness,
        y - stats.norm.cdf(line.slope * stats.norm.ppf(x) + line.intercept),
        atol=1e-12,
    )
    assert clean.effective_robustness.isna().all()
    noisy_pairs = pairs[pairs.set == "noisy"].set_index(["model_a", "model_b"])
    xa = ref_pairs.loc[noisy_pairs.index, "agreement"]
    line = stats.linregress(stats.norm.ppf(xa), stats.norm.ppf(noisy_pairs.agreement))
    row = fits[(fits.set == "noisy") & (fits.measure == "agreement")].iloc[0]
    assert row.n_points == 6 and row.slope == pytest.approx(line.slope)
    assert row.r2 == pytest.approx(line.rvalue**2)

    summary = json.loads((out / "summary.json").read_text())["shift"]
    assert [s["name"] for s in summary["sets"]] == ["clean", "noisy"]
    assert summary["sets"][1]["missing_models"] == ["gone"]
    assert summary["sets"][1]["ignored_models"] == ["newcomer"]
    assert any("gone" in note for note in summary["notes"])
    best = ap.loc[[k for k in ap.index if "base" in k]].ensemble_acc.idxmax()
    sidekick = next(m for m in best if m != "base")
    assert summary["best_sidekick"]["model"] == sidekick
    assert summary["best_sidekick"]["rank"]["clean"] == 1
    noisy_rank = noisy_pairs.loc[
        [k for k in noisy_pairs.index if set(k) == {"base", sidekick}], "base_rank"
    ].iloc[0]
    assert summary["best_sidekick"]["rank"]["noisy"] == noisy_rank
    # EI by category per set: means of the (base, other) pairs of each category
    for name in ("clean", "noisy"):
        block = summary["mean_error_inconsistency_by_category"][name]
        mp = pairs[(pairs.set == name) & ((pairs.model_a == "base") | (pairs.model_b == "base"))]
        for category, group in mp.groupby("category"):
            assert block[category]["mean"] == pytest.approx(group.error_inconsistency.mean())
            assert block[category]["lo"] <= block[category]["mean"] <= block[category]["hi"]


def test_python_api_beside_analyze(tmp_path):
    import zoolens
    from zoolens.study.analyze import analyze

    assert zoolens.analyze_shift is analyze_shift
    ref, shifted = make_zoos(tmp_path)
    result = analyze(ref, "base", None, n_bootstrap=0, shift={"noisy": shifted})
    alone = analyze_shift(ref, {"noisy": shifted.path}, "base", n_bootstrap=0)
    # the same numbers whether run inside analyze or alone (temperatures refitted alike)
    for name in ("models", "pairs", "fits"):
        pd.testing.assert_frame_equal(getattr(result.shift, name), getattr(alone, name))
    assert set(result.tables()) >= {"shift_models", "shift_pairs", "shift_fits"}
    pd.testing.assert_frame_equal(result.tables()["shift_pairs"], alone.pairs)
    assert "shift" in result.summary
    # the full-row ensembles give the exact top-k kernel's numbers
    full = analyze_shift(ref, {"noisy": shifted}, "base", n_bootstrap=0, exact_topk=False)
    pd.testing.assert_frame_equal(full.pairs, alone.pairs)
    # logit averaging (the paper's Fig. 11 variant): the reference rows are analyze's own
    logits = analyze(ref, "base", None, n_bootstrap=0, combine="logits", shift={"noisy": shifted})
    ref_rows = logits.shift.pairs[logits.shift.pairs.set == "reference"]
    np.testing.assert_allclose(ref_rows.ensemble_acc, logits.pairs.ensemble_acc, atol=1e-12)
    # without shift: the shift tables are there, empty (contracts: always=False)
    plain = analyze(ref, "base", None, n_bootstrap=0)
    assert plain.shift is None and "shift" not in plain.summary
    assert (
        list(plain.shift_fits.columns) == tables.TABLE_COLUMNS["shift_fits"]
        and plain.shift_fits.empty
    )


@pytest.mark.parametrize(
    "case", ["classes", "no_common", "twice", "missing", "reference_name", "malformed"]
)
def test_bad_shift_inputs_are_one_line_errors(tmp_path, case):
    ref, shifted = make_zoos(tmp_path)
    args = ["--shift", f"noisy={shifted.path}"]
    if case == "classes":
        other = Zoo.create(tmp_path / "other.zoo", np.zeros(10, np.int64), num_classes=7)
        other.add("base", logits=np.zeros((10, 7), np.float32))
        args = ["--shift", f"seven={other.path}"]
        expect = "the sets must share classes"
    elif case == "no_common":
        other = Zoo.create(tmp_path / "other.zoo", np.zeros(10, np.int64), num_classes=5)
        other.add("stranger", logits=np.zeros((10, 5), np.float32))
        args = ["--shift", f"alien={other.path}"]
        expect = "no model in common"
    elif case == "twice":
        args += ["--shift", f"noisy={shifted.path}"]
        expect = "used twice"
    elif case == "missing":
        args = ["--shift", f"gone={tmp_path / 'nowhere.zoo'}"]
        expect = "no such zoo folder"
    elif case == "reference_name":
        args = ["--shift", f"reference={shifted.path}"]
        expect = "used twice"
    else:
        args = ["--shift", str(shifted.path)]
        expect = "give NAME=ZOO"
    before = (tmp_path / "ref.zoo" / "zoo.json").read_bytes()
    res = runner.invoke(
        app, ["analyze", str(ref.path), "--base", "base", "--out", str(tmp_path / "out")] + args
    )
    assert res.exit_code == 1, res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and expect in lines[0], res.output
    assert "Traceback" not in res.output
    assert not (tmp_path / "out").exists()  # failed before anything was measured or written
    assert (tmp_path / "ref.zoo" / "zoo.json").read_bytes() == before


# ---------------------------------------------------------------- real data: CIFAR-10.1


@pytest.fixture(scope="module")
def cifar101(tmp_path_factory):
    """The 30 published CIFAR-10 models' decision JSON files on the CIFAR-10 test set and on
    CIFAR-10.1 v6, imported through the CLI into two zoos without a calibration split
    (measured on all examples); random-features models carry another framework."""
    root = shared_path("cifar10.1-predictions")
    labels = shared_path("cifar10-probs", "lenet-5-cifar-10.npz")
    tmp = tmp_path_factory.mktemp("cifar101")
    zoos = []
    for name, sub, label_args in (
        ("test", "cifar10-test", ["--labels", str(labels), "--labels-key", "ground_truth"]),
        ("v6", "cifar10.1-v6", ["--labels", str(root / "cifar10.1-v6-labels.npy")]),
    ):
        path = tmp / f"{name}.zoo"
        for k, f in enumerate(sorted((root / sub).glob("*_predictions.json"))):
            model = f.name[: -len("_predictions.json")]
            framework = "random-features" if model.startswith("random_features") else "supervised"
            create = (
                ["--create", *label_args, "--calibration-fraction", "0", "--num-classes", "10"]
                if k == 0
                else []
            )
            res = runner.invoke(
                app,
                [
                    "--quiet",
                    "import",
                    str(path),
                    str(f),
                    "--name",
                    model,
                    "--kind",
                    "decisions",
                    "--arch",
                    model,
                    "--arch-family",
                    model.split("_")[0],
                    "--framework",
                    framework,
                    *create,
                ],
            )
            assert res.exit_code == 0, res.output
        zoos.append(Zoo.open(path))
    return zoos


def test_cifar101_cli_analyze_shift(cifar101, tmp_path):
    test, v6 = cifar101
    out = tmp_path / "out"
    res = runner.invoke(
        app,
        [
            "--quiet",
            "analyze",
            str(test.path),
            "--base",
            "resnet_basic_110",
            "--out",
            str(out),
            "--bootstrap",
            "100",
            "--reference-name",
            "cifar10",
            "--shift",
            f"cifar10.1-v6={v6.path}",
        ],
    )
    assert res.exit_code == 0, res.output
    assert (
        "under shift cifar10.1-v6 (2000 examples, 30 models): accuracy on the line: "
        "slope 0.950, intercept -0.381, R² 0.984 (30 points); agreement on the line: "
        "slope 0.995, intercept -0.396, R² 0.983 (435 points)"
    ) in res.output
    pairs = pd.read_csv(out / "shift_pairs.csv").set_index(["set", "model_a", "model_b"])
    for other, ei_test, ei_v6 in (
        ("random_features_256k_aug", 0.1323, 0.2280),
        ("resnet_basic_56", 0.0542, 0.1105),
    ):
        key = tuple(sorted(("resnet_basic_110", other)))
        assert pairs.loc[("cifar10",) + key, "error_inconsistency"] == pytest.approx(
            ei_test, abs=5e-5
        )
        assert pairs.loc[("cifar10.1-v6",) + key, "error_inconsistency"] == pytest.approx(
            ei_v6, abs=5e-5
        )
    summary = json.loads((out / "summary.json").read_text())["shift"]
    # EI with the base by category on each set: random features (Framework) disagree most
    for name in ("cifar10", "cifar10.1-v6"):
        block = summary["mean_error_inconsistency_by_category"][name]
        assert max(block, key=lambda c: block[c]["mean"]) == "Framework"
    assert summary["best_sidekick"] is None  # decisions only: no ensembles to rank


def test_cifar101_tables_equal_independent_recomputation(cifar101, tmp_path):
    test, v6 = cifar101
    result = analyze_shift(test, {"v6": v6}, "resnet_basic_110", tmp_path / "out", n_bootstrap=200)
    pairs = result.pairs.set_index(["set", "model_a", "model_b"])
    # the data README's numbers (all examples)
    for other, ei_test, ei_v6 in (
        ("random_features_256k_aug", 0.1323, 0.2280),
        ("resnet_basic_56", 0.0542, 0.1105),
    ):
        key = tuple(sorted(("resnet_basic_110", other)))
        assert pairs.loc[("reference",) + key, "error_inconsistency"] == pytest.approx(
            ei_test, abs=5e-5
        )
        assert pairs.loc[("v6",) + key, "error_inconsistency"] == pytest.approx(ei_v6, abs=5e-5)
    models = result.models.set_index(["set", "model"])
    assert models.loc[("reference", "resnet_basic_110"), "accuracy"] == pytest.approx(0.9346)
    assert models.loc[("v6", "resnet_basic_110"), "accuracy"] == pytest.approx(0.8540)
    assert models.loc[("v6", "vgg16_keras"), "accuracy"] == pytest.approx(0.8560)
    names = list(test.models)
    assert len(names) == 30
    for set_name, zoo in (("reference", test), ("v6", v6)):
        acc, pair = _independent(zoo, names, np.arange(zoo.num_examples), None)
        np.testing.assert_allclose(
            [models.loc[(set_name, m), "accuracy"] for m in names],
            [acc[m] for m in names],
            atol=1e-12,
        )
        for column in ("error_inconsistency", "agreement", "error_consistency"):
            np.testing.assert_allclose(
                [pairs.loc[(set_name,) + key, column] for key in pair],
                [p[column] for p in pair.values()],
                atol=1e-12,
                err_msg=column,
            )
    assert result.pairs.ensemble_acc.isna().all()  # decisions only: no ensembles
    # accuracy and agreement on the line, against scipy and numpy.polyfit
    x = np.array([models.loc[("reference", m), "accuracy"] for m in names])
    y = np.array([models.loc[("v6", m), "accuracy"] for m in names])
    line = stats.linregress(stats.norm.ppf(x), stats.norm.ppf(y))
    slope, intercept = np.polyfit(stats.norm.ppf(x), stats.norm.ppf(y), 1)
    fits = result.fits.set_index(["set", "measure"])
    acc_fit = fits.loc[("v6", "accuracy")]
    assert acc_fit.slope == pytest.approx(line.slope, rel=1e-10) == pytest.approx(slope)
    assert acc_fit.intercept == pytest.approx(intercept, abs=1e-10)
    assert acc_fit.r2 == pytest.approx(line.rvalue**2, rel=1e-10)
    ref_pairs = result.pairs[result.pairs.set == "reference"]
    v6_pairs = result.pairs[result.pairs.set == "v6"]
    agree = stats.linregress(
        stats.norm.ppf(ref_pairs.agreement), stats.norm.ppf(v6_pairs.agreement)
    )
    assert fits.loc[("v6", "agreement")].slope == pytest.approx(agree.slope, rel=1e-10)
    assert fits.loc[("v6", "agreement")].n_points == 435
    # what the README states for these 30 models
    assert 0.9 < acc_fit.slope < 1.0 and acc_fit.r2 > 0.98
    assert abs(fits.loc[("v6", "agreement")].slope - acc_fit.slope) < 0.06
    er = models.xs("v6")["effective_robustness"]
    assert er.abs().max() < 0.02
    np.testing.assert_allclose(
        er.loc[names],
        y - stats.norm.cdf(line.slope * stats.norm.ppf(x) + line.intercept),
        atol=1e-12,
    )
    for name in ("shift_models", "shift_pairs", "shift_fits"):
        assert (tmp_path / "out" / f"{name}.csv").exists()


def test_base_missing_from_a_shifted_set_is_a_note_not_an_error(tmp_path):
    ref, _ = make_zoos(tmp_path)
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 5, 100)
    other = Zoo.create(tmp_path / "nobase.zoo", labels, num_classes=5, calibration_fraction=0)
    for name in ("seed1", "vit", "simclr"):
        other.add(name, logits=_logits(rng, labels, 1.5, 1.0, 5))
    result = analyze_shift(ref, [("nobase", other)], "base", n_bootstrap=20)
    assert set(result.models[result.models.set == "nobase"].model) == {"seed1", "vit", "simclr"}
    assert result.pairs[result.pairs.set == "nobase"].base_rank.isna().all()
    summary = result.summary
    assert any("the base 'base' is not in it" in note for note in summary["notes"])
    assert summary["best_sidekick"]["rank"]["nobase"] is None
    assert summary["mean_error_inconsistency_by_category"]["nobase"] == {}
    # the API refuses a set name twice just as the CLI does
    with pytest.raises(ValueError, match="used twice"):
        analyze_shift(ref, [("x", other), ("x", other)], "base")


def test_analyze_help_shows_the_shift_example():
    res = runner.invoke(app, ["analyze", "--help"], terminal_width=200)
    assert res.exit_code == 0
    assert "--shift" in res.output and "cifar10.1=cifar10.1.zoo" in res.output
