"""The after-import sanity check (zoolens.zoo.sanity, issue 27): chance level by an exact
one-sided binomial test (scipy.stats.binomtest as the oracle), so a weak but real model on a
small evaluation set is not flagged; and suspicious perfection (the file may hold the
labels), through the CLI too."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import binomtest
from typer.testing import CliRunner

from zoolens.cli import app
from zoolens.zoo.sanity import (
    ALPHA,
    accuracy_problem,
    agreement_problem,
    perfection_problem,
)


def _labels_and_model(n: int, right: int, num_classes: int = 10, seed: int = 0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, num_classes, n)
    pred = (labels + rng.integers(1, num_classes, n)) % num_classes  # every one wrong
    pred[:right] = labels[:right]
    return labels, pred


@pytest.mark.parametrize("right", [16, 20, 22, 23, 24, 27, 40])
def test_accuracy_at_chance_is_a_binomial_test(right):
    labels, pred = _labels_and_model(160, right)
    p = binomtest(right, 160, 0.1, alternative="greater").pvalue
    message = accuracy_problem(pred, labels, 10)
    assert (message is not None) == (p >= ALPHA)
    if message is not None:
        assert f"{right} of 160 right" in message and f"p = {p:.2g}" in message


def test_a_weak_but_real_model_on_160_images_is_not_flagged():
    # 27 of 160 (16.9 %) against 10 % chance: p = 0.005; the former fixed margin (1/C plus
    # three binomial standard errors = 17.1 %) called it chance.
    labels, pred = _labels_and_model(160, 27)
    assert 27 / 160 <= 0.1 + 3 * np.sqrt(0.1 * 0.9 / 160)
    assert accuracy_problem(pred, labels, 10) is None


def test_agreement_at_chance_is_bonferroni_over_the_models_compared():
    rng = np.random.default_rng(1)
    n = 400
    pred = rng.integers(0, 4, n)
    unrelated = {f"m{k}": rng.integers(0, 4, n) for k in range(8)}
    message = agreement_problem(pred, unrelated, 4)
    ps = [
        binomtest(int(np.sum(pred == o)), n, 0.25, alternative="greater").pvalue
        for o in unrelated.values()
    ]
    # chance agreement q = Σ f_a f_b is close to 0.25 here; the decision follows the oracle
    # at the Bonferroni level whenever the oracle is far from it
    if min(ps) > 2 * ALPHA / 8:
        assert message is not None and f"level {ALPHA:g}/8" in message
    related = dict(unrelated, twin=np.where(rng.random(n) < 0.5, pred, (pred + 1) % 4))
    assert agreement_problem(pred, related, 4) is None


def test_perfection_warns_that_the_file_may_contain_the_labels():
    labels, pred = _labels_and_model(1000, 1000)
    assert "right on every one of the 1000 examples" in perfection_problem(pred, labels, {})
    assert perfection_problem(pred[:10], labels[:10], {}) is None  # too few to mean much
    others = {}
    for k, errors in enumerate((100, 130)):  # the best other model makes 100 errors
        other = labels.copy()
        other[-errors:] = (labels[-errors:] + 1) % 10
        others[f"m{k}"] = other
    near = labels.copy()
    near[:5] = (labels[:5] + 1) % 10  # 5 errors: a tenth or fewer of 100
    message = perfection_problem(near, labels, others)
    assert message is not None and "makes 100" in message and "may contain the labels" in message
    worse = labels.copy()
    worse[:11] = (labels[:11] + 1) % 10  # 11 errors: more than a tenth of 100
    assert perfection_problem(worse, labels, others) is None


def test_importing_the_labels_as_a_model_warns_and_strict_refuses(tmp_path):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 500)
    np.save(tmp_path / "y.npy", labels)
    real = np.where(rng.random(500) < 0.8, labels, (labels + 1) % 10)
    (tmp_path / "real.json").write_text(json.dumps(real.tolist()))
    (tmp_path / "answers.json").write_text(json.dumps(labels.tolist()))
    zoo = tmp_path / "z"
    runner = CliRunner()
    first = runner.invoke(
        app,
        ["import", str(zoo), str(tmp_path / "real.json"), "--name", "real", "--create"]
        + ["--labels", str(tmp_path / "y.npy"), "--calibration-fraction", "0"],
    )
    assert first.exit_code == 0, first.output
    assert "warning" not in first.output
    args = ["import", str(zoo), str(tmp_path / "answers.json"), "--name", "answers"]
    strict = runner.invoke(app, [*args, "--strict"])
    assert strict.exit_code == 1 and "may contain the labels" in strict.output
    assert "nothing imported" in strict.output
    result = runner.invoke(app, args)
    assert result.exit_code == 0
    warning = [line for line in result.output.splitlines() if line.startswith("warning")]
    assert len(warning) == 1, result.output
    assert "right on every one of the 500 examples" in warning[0]
    assert "may contain the labels" in warning[0] and "label-offset" not in warning[0]
