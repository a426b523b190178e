"""Unlabelled zoos and label-free accuracy on shifted sets (issue 26).

ALine-S / ALine-D (Baek et al. 2022, Sec. 4) against a few lines of numpy written here (the
pair system solved by ``np.linalg.lstsq`` on the dense pair matrix, the line by
``np.polyfit``); the 30 real CIFAR-10 models of ../shared/data, CIFAR-10 test -> CIFAR-10.1
v6 imported without and with v6 labels (the issue's check: mean absolute error of the v6
estimates at most 1.3 points); synthetic shifts where the premise fails (the warning fires);
what an unlabelled zoo refuses and what works on it.
"""

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
from zoolens.errors import ZoolensError
from zoolens.measure.shift import aline_estimates, aline_interval
from zoolens.study.shift import AGREEMENT_R2_MIN, analyze_shift

runner = CliRunner()


# ------------------------------------------------------------------- the oracle


def _oracle(acc_ref, agr_ref, agr_shift, m):
    """ALine-S and ALine-D as the paper states them: numpy only, the dense pair matrix."""
    a, b = np.triu_indices(m, 1)
    q = stats.norm.ppf
    slope, intercept = np.polyfit(q(agr_ref), q(agr_shift), 1)
    aline_s = stats.norm.cdf(slope * q(acc_ref) + intercept)
    matrix = np.zeros((len(a), m))
    matrix[np.arange(len(a)), a] = 0.5
    matrix[np.arange(len(a)), b] = 0.5
    rhs = q(agr_shift) + slope * ((q(acc_ref[a]) + q(acc_ref[b])) / 2 - q(agr_ref))
    aline_d = stats.norm.cdf(np.linalg.lstsq(matrix, rhs, rcond=None)[0])
    return aline_d, aline_s, slope, intercept


def test_aline_estimates_equal_the_papers_formulas_in_numpy():
    rng = np.random.default_rng(3)
    m = 9
    a, b = np.triu_indices(m, 1)
    acc_ref = rng.uniform(0.6, 0.97, m)
    agr_ref = rng.uniform(0.55, 0.95, len(a))
    agr_shift = stats.norm.cdf(0.9 * stats.norm.ppf(agr_ref) - 0.3 + rng.normal(0, 0.1, len(a)))
    est = aline_estimates(acc_ref, agr_ref, agr_shift, a, b)
    aline_d, aline_s, slope, intercept = _oracle(acc_ref, agr_ref, agr_shift, m)
    np.testing.assert_allclose(est.aline_d, aline_d, rtol=0, atol=1e-12)
    np.testing.assert_allclose(est.aline_s, aline_s, rtol=0, atol=1e-12)
    assert est.fit.slope == pytest.approx(slope, rel=1e-12)
    assert est.fit.intercept == pytest.approx(intercept, rel=1e-12)
    residual = stats.norm.ppf(agr_shift) - (slope * stats.norm.ppf(agr_ref) + intercept)
    assert est.residual_sd == pytest.approx(np.sqrt(residual @ residual / (len(a) - 2)))


def test_aline_estimates_leave_out_undefined_pairs_and_models():
    """A pair with agreement 1 has no probit: left out of the line and of the system (the
    oracle solves without it); a model whose reference accuracy is 1 is NaN."""
    rng = np.random.default_rng(4)
    m = 6
    a, b = np.triu_indices(m, 1)
    acc_ref = rng.uniform(0.6, 0.95, m)
    agr_ref = rng.uniform(0.6, 0.9, len(a))
    agr_shift = stats.norm.cdf(stats.norm.ppf(agr_ref) - 0.2 + rng.normal(0, 0.05, len(a)))
    agr_shift[0] = 1.0
    est = aline_estimates(acc_ref, agr_ref, agr_shift, a, b)
    keep = np.arange(len(a)) != 0
    q = stats.norm.ppf
    slope, _ = np.polyfit(q(agr_ref[keep]), q(agr_shift[keep]), 1)
    matrix = np.zeros((keep.sum(), m))
    matrix[np.arange(keep.sum()), a[keep]] = 0.5
    matrix[np.arange(keep.sum()), b[keep]] = 0.5
    rhs = q(agr_shift[keep]) + slope * (
        (q(acc_ref[a[keep]]) + q(acc_ref[b[keep]])) / 2 - q(agr_ref[keep])
    )
    expected = stats.norm.cdf(np.linalg.lstsq(matrix, rhs, rcond=None)[0])
    np.testing.assert_allclose(est.aline_d, expected, atol=1e-12)
    acc_ref[2] = 1.0
    est = aline_estimates(acc_ref, agr_ref, agr_shift, a, b)
    assert np.isnan(est.aline_s[2]) and np.isnan(est.aline_d[2])
    assert np.isfinite(np.delete(est.aline_d, 2)).all()


def test_aline_interval_is_the_normal_interval_of_bootstrap_and_line_scatter():
    rng = np.random.default_rng(5)
    point = rng.normal(1.0, 0.2, 4)
    resampled = point + rng.normal(0, 0.05, (300, 4))
    resampled[7, 1] = np.nan  # a resample without an estimate is left out
    lo, hi = aline_interval(point, resampled, 0.04)
    for k in range(4):
        col = resampled[:, k][np.isfinite(resampled[:, k])]
        half = stats.norm.ppf(0.975) * np.sqrt(np.var(col, ddof=1) + 0.04**2)
        assert lo[k] == pytest.approx(stats.norm.cdf(point[k] - half), abs=1e-12)
        assert hi[k] == pytest.approx(stats.norm.cdf(point[k] + half), abs=1e-12)


# ------------------------------------------------------- the 30 real CIFAR-10 models


@pytest.fixture(scope="module")
def cifar101(tmp_path_factory):
    """CIFAR-10 test (labelled) and CIFAR-10.1 v6 twice: without labels and with them."""
    root = shared_path("cifar10.1-predictions")
    labels_test = np.load(shared_path("cifar10-probs", "vgg16-keras-cifar-10.npz"))["labels"]
    labels_v6 = np.load(root / "cifar10.1-v6-labels.npy")
    tmp = tmp_path_factory.mktemp("aline")
    test = Zoo.create(tmp / "test.zoo", labels_test.ravel(), num_classes=10, calibration_fraction=0)
    v6 = Zoo.create(tmp / "v6.zoo", None, num_classes=10, num_examples=len(labels_v6))
    v6_labelled = Zoo.create(tmp / "v6l.zoo", labels_v6, num_classes=10, calibration_fraction=0)
    names = sorted(f.name[: -len("_predictions.json")] for f in (root / "cifar10-test").iterdir())
    for name in names:
        card = {"arch": name, "framework": "supervised"}
        test.add(
            name,
            decisions=np.array(
                json.loads((root / "cifar10-test" / f"{name}_predictions.json").read_text())
            ),
            card=card,
        )
        shifted = np.array(
            json.loads((root / "cifar10.1-v6" / f"{name}_predictions.json").read_text())
        )
        v6.add(name, decisions=shifted, card=card)
        v6_labelled.add(name, decisions=shifted, card=card)
    return test, v6, v6_labelled, labels_v6


def test_cifar101_v6_accuracy_estimated_without_labels(cifar101):
    test, v6, v6_labelled, labels_v6 = cifar101
    result = analyze_shift(
        test, [("v6", v6), ("v6-labelled", v6_labelled)], "resnet_basic_110", n_bootstrap=300
    )
    models = result.models.set_index(["set", "model"])
    names = list(test.models)
    measured = np.array([np.mean(v6.predictions(m) == labels_v6) for m in names])
    unlabelled = models.xs("v6").loc[names]
    labelled = models.xs("v6-labelled").loc[names]
    assert unlabelled.accuracy.isna().all() and unlabelled.effective_robustness.isna().all()
    estimate = unlabelled.estimated_accuracy.to_numpy()
    # the check: mean absolute error at most 1.3 points (measured: 1.13, max 2.89)
    assert np.mean(np.abs(estimate - measured)) <= 0.013
    assert np.max(np.abs(estimate - measured)) < 0.03
    # the test-set accuracy as the guess is off by 7.8 points
    assert np.mean(np.abs(_accuracies(test, names) - measured)) == pytest.approx(0.0778, abs=1e-4)
    # the oracle on the same agreements (all examples of both sets)
    pairs = result.pairs.set_index(["set", "model_a", "model_b"])
    a, b = np.triu_indices(len(names), 1)
    keys = [(names[i], names[j]) for i, j in zip(a, b)]
    aline_d, aline_s, *_ = _oracle(
        _accuracies(test, names),
        np.array([pairs.loc[("reference",) + k, "agreement"] for k in keys]),
        np.array([pairs.loc[("v6",) + k, "agreement"] for k in keys]),
        len(names),
    )
    np.testing.assert_allclose(estimate, aline_d, atol=1e-12)
    np.testing.assert_allclose(unlabelled.estimated_accuracy_aline_s, aline_s, atol=1e-12)
    # labels change nothing in the estimate; they add the measured accuracy beside it
    np.testing.assert_allclose(labelled.estimated_accuracy, estimate, atol=1e-12)
    np.testing.assert_allclose(labelled.accuracy, measured, atol=1e-12)
    for frame in (unlabelled, labelled):
        assert (frame.estimated_accuracy_lo < frame.estimated_accuracy).all()
        assert (frame.estimated_accuracy < frame.estimated_accuracy_hi).all()
    summary = result.summary
    assert summary["unlabelled_sets"] == ["v6"]
    assert [s["labelled"] for s in summary["sets"]] == [True, False, True]
    block = summary["estimates"]["v6-labelled"]
    assert block["premise_holds"] and summary["estimates"]["v6"]["premise_holds"]
    assert block["mean_abs_error"]["aline_d"] == pytest.approx(np.mean(np.abs(aline_d - measured)))
    # coverage of the 95 % intervals on v6: 27-28 of the 30 models (the example bootstrap
    # alone covers about 21 of 30: the line's scatter is what makes the interval honest)
    inside = (labelled.estimated_accuracy_lo <= measured) & (
        measured <= labelled.estimated_accuracy_hi
    )
    assert block["coverage"]["aline_d"] == pytest.approx(inside.mean())
    assert inside.sum() >= 26
    assert "mean_abs_error" not in summary["estimates"]["v6"]


def _accuracies(zoo, names):
    return np.array([zoo.accuracy(m) for m in names])


def test_cli_import_no_labels_then_analyze_shift(cifar101, tmp_path):
    """The CLI path on real files: two v6 models imported with --no-labels, estimated."""
    root = shared_path("cifar10.1-predictions")
    test = cifar101[0]
    zoo = tmp_path / "v6.zoo"
    for k, name in enumerate(("resnet_basic_110", "vgg16_keras", "densenet_BC_100_12")):
        res = runner.invoke(
            app,
            [
                "import",
                str(zoo),
                str(root / "cifar10.1-v6" / f"{name}_predictions.json"),
                "--name",
                name,
                "--kind",
                "decisions",
                *(["--create", "--no-labels", "--num-classes", "10"] if k == 0 else []),
            ],
        )
        assert res.exit_code == 0, res.output
        assert "no labels: no accuracy" in res.output
    assert not Zoo.open(zoo).has_labels and Zoo.open(zoo).num_examples == 2000
    out = tmp_path / "out"
    res = runner.invoke(
        app,
        [
            "analyze",
            str(test.path),
            "--base",
            "resnet_basic_110",
            "--out",
            str(out),
            "--bootstrap",
            "50",
            "--shift",
            f"v6={zoo}",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "under shift v6 (2000 examples, 3 models, no labels)" in res.output
    assert "accuracy estimated without labels (ALine-D" in res.output
    rows = pd.read_csv(out / "shift_models.csv")
    v6 = rows[rows.set == "v6"]
    assert v6.accuracy.isna().all() and v6.estimated_accuracy.notna().all()
    assert json.loads((out / "summary.json").read_text())["shift"]["unlabelled_sets"] == ["v6"]


# -------------------------------------------------------- where the premise fails


def _decisions(rng, labels, skill, num_classes):
    """Right with probability ``skill``, else a uniformly random other class."""
    right = rng.random(len(labels)) < skill
    wrong = (labels + rng.integers(1, num_classes, len(labels))) % num_classes
    return np.where(right, labels, wrong)


def test_warning_when_agreement_is_not_on_the_line(tmp_path):
    """Shifted models whose agreement has nothing to do with the reference's: R² below the
    rule, every estimate of the set flagged (in the notes and the summary)."""
    rng = np.random.default_rng(8)
    k, n = 5, 3000
    ref_labels = rng.integers(0, k, n)
    ref = Zoo.create(tmp_path / "ref.zoo", ref_labels, num_classes=k, calibration_fraction=0)
    shifted = Zoo.create(tmp_path / "s.zoo", None, num_classes=k, num_examples=n)
    hidden = rng.integers(0, k, n)  # the shifted set's unknown truth
    skills = np.linspace(0.55, 0.95, 8)
    shuffled = rng.permutation(skills)
    for i, (s_ref, s_shift) in enumerate(zip(skills, shuffled)):
        ref.add(f"m{i}", decisions=_decisions(rng, ref_labels, s_ref, k))
        # half the models copy the previous one on the shifted set: agreement far off any line
        own = _decisions(rng, hidden, s_shift, k)
        if i % 2 and i:
            own = np.where(rng.random(n) < 0.9, shifted.predictions(f"m{i - 1}"), own)
        shifted.add(f"m{i}", decisions=own)
    result = analyze_shift(ref, {"s": shifted}, "m0", n_bootstrap=50)
    block = result.summary["estimates"]["s"]
    assert block["agreement_line"]["r2"] < AGREEMENT_R2_MIN
    assert not block["premise_holds"]
    assert any("agreement is not on the line" in w for w in block["warnings"])
    assert any("agreement is not on the line" in note for note in result.summary["notes"])


def test_warning_when_agreement_and_accuracy_lines_part(tmp_path):
    """The same predictions on the same images with 30 % of the labels changed: agreement is
    exactly on y = x while every accuracy drops, so agreement does not follow accuracy and
    the labelled set says so."""
    rng = np.random.default_rng(9)
    k, n = 4, 3000
    labels = rng.integers(0, k, n)
    ref = Zoo.create(tmp_path / "ref.zoo", labels, num_classes=k, calibration_fraction=0)
    changed = np.where(rng.random(n) < 0.3, (labels + 1) % k, labels)
    shifted = Zoo.create(tmp_path / "s.zoo", changed, num_classes=k, calibration_fraction=0)
    for i, skill in enumerate(np.linspace(0.6, 0.95, 6)):
        pred = _decisions(rng, labels, skill, k)
        ref.add(f"m{i}", decisions=pred)
        shifted.add(f"m{i}", decisions=pred)
    result = analyze_shift(ref, {"s": shifted}, "m0", n_bootstrap=50)
    block = result.summary["estimates"]["s"]
    assert block["agreement_line"]["r2"] == pytest.approx(1.0)
    assert block["line_gap"] > 0.1
    assert not block["premise_holds"]
    assert any("agreement line and the accuracy line differ" in w for w in block["warnings"])
    models = result.models[result.models.set == "s"]
    # the estimates follow agreement (no change), the measured accuracy fell: far apart
    assert (models.estimated_accuracy - models.accuracy).mean() > 0.1


# -------------------------------------------------------------- unlabelled zoos


def test_unlabelled_zoo_refuses_label_measures_in_one_line(tmp_path):
    rng = np.random.default_rng(2)
    zoo = Zoo.create(tmp_path / "u.zoo", labels=None, num_classes=3, num_examples=50)
    assert not zoo.has_labels and len(zoo.calibration_indices) == 0
    assert not (tmp_path / "u.zoo" / "labels.npy").exists()
    zoo.add("a", decisions=rng.integers(0, 3, 50), embeddings=rng.normal(size=(50, 4)))
    zoo.add("b", decisions=rng.integers(0, 3, 50), embeddings=rng.normal(size=(50, 4)))
    zoo = Zoo.open(zoo.path)
    for call in (lambda: zoo.labels, lambda: zoo.accuracy("a")):
        with pytest.raises(ZoolensError, match="has no labels") as err:
            call()
        assert "\n" not in str(err.value)
    res = runner.invoke(
        app, ["analyze", str(zoo.path), "--base", "a", "--out", str(tmp_path / "o")]
    )
    assert res.exit_code != 0
    assert res.output.strip().startswith("error:") and "has no labels" in res.output
    assert len(res.output.strip().splitlines()) == 1
    # what needs no labels works: agreement, and CKA (probes skipped with a line)
    agree = np.mean(zoo.predictions("a") == zoo.predictions("b"))
    assert 0 < agree < 1
    from zoolens.study.probe import run_probe

    result = run_probe(zoo, out_dir=tmp_path / "p")
    assert set(result.tables) == {"cka"} and result.tables["cka"].error_consistency.isna().all()
    with pytest.raises(ZoolensError, match="has no labels"):
        run_probe(zoo, cka=False)
    # re-creating with exist_ok: an unlabelled zoo stays one
    assert not Zoo.create(zoo.path, None, num_classes=3, num_examples=50, exist_ok=True).has_labels
    with pytest.raises(ZoolensError, match="without labels already exists"):
        Zoo.create(zoo.path, np.zeros(50, dtype=int), exist_ok=True)
    res = runner.invoke(app, ["info", str(zoo.path)])
    assert res.exit_code == 0 and "no labels" in res.output


def test_unlabelled_zoo_needs_its_classes_and_size(tmp_path):
    with pytest.raises(ZoolensError, match="needs its classes"):
        Zoo.create(tmp_path / "a.zoo", None, num_examples=5)
    with pytest.raises(ZoolensError, match="number of examples"):
        Zoo.create(tmp_path / "b.zoo", None, num_classes=5)
    zoo = Zoo.create(tmp_path / "c.zoo", None, class_names=["x", "y"], example_ids=["p", "q", "r"])
    assert zoo.num_examples == 3 and zoo.class_names == ["x", "y"]
    np.save(tmp_path / "d.npy", np.eye(3)[[0, 1, 2, 1]])
    res = runner.invoke(
        app,
        [
            "import",
            str(tmp_path / "d.zoo"),
            str(tmp_path / "d.npy"),
            "--name",
            "m",
            "--create",
            "--no-labels",
        ],
    )
    assert res.exit_code != 0 and "--num-classes" in res.output
    assert not (tmp_path / "d.zoo").exists()
    res = runner.invoke(
        app,
        [
            "import",
            str(tmp_path / "d.zoo"),
            str(tmp_path / "d.npy"),
            "--name",
            "m",
            "--create",
            "--no-labels",
            "--labels",
            str(tmp_path / "d.npy"),
        ],
    )
    assert res.exit_code != 0 and "cannot be combined" in res.output


def test_reference_set_must_have_labels(tmp_path):
    zoo = Zoo.create(tmp_path / "u.zoo", None, num_classes=3, num_examples=20)
    zoo.add("a", decisions=np.zeros(20, dtype=int))
    zoo.add("b", decisions=np.ones(20, dtype=int))
    with pytest.raises(ZoolensError, match="the reference set of --shift"):
        analyze_shift(zoo, {"x": zoo}, "a")


# --------------------------------------------------------------------------- report


def test_report_shows_estimates_with_intervals_and_which_sets_had_labels(tmp_path):
    """A labelled and an unlabelled copy of one shifted set: the report's estimates figure
    and table carry shift_models' numbers, the unlabelled set is named as such and left out
    of the figures that need labels; an old (version 1) shift_models without the estimate
    columns still renders, without the estimates."""
    from zoolens.report import build_report

    rng = np.random.default_rng(11)
    k, n = 5, 1500
    ref_labels, shift_labels = rng.integers(0, k, n), rng.integers(0, k, n)
    ref = Zoo.create(tmp_path / "ref.zoo", ref_labels, num_classes=k, calibration_fraction=0)
    lab = Zoo.create(tmp_path / "lab.zoo", shift_labels, num_classes=k, calibration_fraction=0)
    unl = Zoo.create(tmp_path / "unl.zoo", None, num_classes=k, num_examples=n)
    for i, skill in enumerate(np.linspace(0.5, 0.9, 6)):
        ref.add(f"m{i}", decisions=_decisions(rng, ref_labels, skill, k))
        pred = _decisions(rng, shift_labels, skill - 0.1, k)
        lab.add(f"m{i}", decisions=pred)
        unl.add(f"m{i}", decisions=pred)
    out = tmp_path / "out"
    res = runner.invoke(
        app,
        [
            "--quiet",
            "analyze",
            str(ref.path),
            "--base",
            "m0",
            "--out",
            str(out),
            "--bootstrap",
            "40",
            "--shift",
            f"lab={lab.path}",
            "--shift",
            f"unl={unl.path}",
        ],
    )
    assert res.exit_code == 0, res.output
    report = build_report(out, tmp_path / "r.html", warn=None)
    page = (tmp_path / "r.html").read_text()
    assert 'With labels: <span class="name">lab</span>' in page
    assert 'Without labels: <span class="name">unl</span>' in page
    assert 'data-figure="shift-estimates"' in page and 'id="table-shift-estimates"' in page
    models = pd.read_csv(out / "shift_models.csv")
    for name, labelled in (("lab", True), ("unl", False)):
        data = report.figure_data["shift-estimates"][name]
        mine = models[models.set == name]
        np.testing.assert_allclose(data["estimated"], mine.estimated_accuracy)
        np.testing.assert_allclose(data["lo"], mine.estimated_accuracy_lo)
        assert data["labelled"] is labelled
    assert set(report.figure_data["shift-accuracy"]) == {"lab"}
    assert set(report.figure_data["shift-categories"]["sets"]) == {"reference", "lab"}
    table = page[page.index('id="table-shift-estimates"') :]
    assert table.count("no labels") >= 6
    # a version-1 folder: no estimate columns, no estimates, no note about them
    old = models.drop(columns=[c for c in models.columns if c.startswith("estimated_")])
    old.to_csv(out / "shift_models.csv", index=False)
    (out / "shift_models.json").write_text(
        json.dumps({"table": "shift_models", "table_version": 1})
    )
    (out / "shift_models.parquet").unlink()
    report = build_report(out, tmp_path / "r1.html", warn=None)
    page = (tmp_path / "r1.html").read_text()
    assert 'id="shift"' in page and 'id="table-shift-estimates"' not in page
