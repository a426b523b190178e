"""All-pairs agreement vs float64 per-pair loops, scikit-learn's kappa, and real CIFAR-10 models."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import cohen_kappa_score

from zoolens.errors import ZoolensError
from zoolens.measure.agreement import (
    both_right,
    both_wrong,
    correctness,
    dominance,
    error_consistency,
    error_inconsistency,
    pair_counts,
    pairwise_agreement,
    top1,
)


def reference_pair(ra: np.ndarray, rb: np.ndarray) -> dict[str, float]:
    """The obvious per-pair definitions of docs/design.md sec. 3, in float64."""
    ra = ra.astype(np.float64)
    rb = rb.astype(np.float64)
    pa, pb = ra.mean(), rb.mean()
    ei = np.mean(np.abs(ra - rb))
    c_obs = 1 - ei
    c_exp = pa * pb + (1 - pa) * (1 - pb)
    kappa = 1.0 if c_exp == 1 else (c_obs - c_exp) / (1 - c_exp)
    return {
        "error_inconsistency": ei,
        "both_right": np.mean(ra * rb),
        "both_wrong": np.mean((1 - ra) * (1 - rb)),
        "error_consistency": kappa,
        "dominance": np.mean((1 - ra) * rb),
    }


@st.composite
def random_zoo(draw):
    m = draw(st.integers(1, 7))
    n = draw(st.integers(1, 60))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    acc = rng.uniform(0, 1, size=m)
    # Mix independent models with exact copies and constant rows to hit the degenerate cases.
    r = rng.uniform(size=(m, n)) < acc[:, None]
    if m > 1 and draw(st.booleans()):
        r[1] = r[0]
    if draw(st.booleans()):
        r[-1] = draw(st.booleans())
    return r


@settings(max_examples=150, deadline=None)
@given(random_zoo())
def test_all_pairs_match_per_pair_float64_loop(r):
    got = pairwise_agreement(r)
    m = r.shape[0]
    for a in range(m):
        for b in range(m):
            ref = reference_pair(r[a], r[b])
            for key, value in ref.items():
                assert got[key][a, b] == pytest.approx(value, abs=1e-12), (key, a, b)
    np.testing.assert_allclose(got["accuracy"], r.mean(axis=1))
    # The single-measure functions agree with the combined one.
    np.testing.assert_array_equal(error_inconsistency(r), got["error_inconsistency"])
    np.testing.assert_array_equal(both_right(r), got["both_right"])
    np.testing.assert_array_equal(both_wrong(r), got["both_wrong"])
    np.testing.assert_array_equal(error_consistency(r), got["error_consistency"])
    np.testing.assert_array_equal(dominance(r), got["dominance"])


@settings(max_examples=40, deadline=None)
@given(random_zoo())
def test_kappa_equals_sklearn_where_defined(r):
    kappa = error_consistency(r)
    for a in range(r.shape[0]):
        for b in range(r.shape[0]):
            pa, pb = r[a].mean(), r[b].mean()
            c_exp = pa * pb + (1 - pa) * (1 - pb)
            if c_exp == 1:
                continue  # tested apart below: scikit-learn gives NaN
            expected = cohen_kappa_score(r[a].astype(int), r[b].astype(int), labels=[0, 1])
            assert kappa[a, b] == pytest.approx(expected, abs=1e-12)


def test_kappa_is_one_where_sklearn_gives_nan():
    r = np.array([[1, 1, 1, 1], [1, 1, 1, 1], [0, 0, 0, 0], [0, 0, 0, 0], [1, 0, 1, 0]], bool)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert np.isnan(cohen_kappa_score(r[0].astype(int), r[1].astype(int), labels=[0, 1]))
    kappa = error_consistency(r)
    assert kappa[0, 1] == 1.0 and kappa[2, 3] == 1.0
    # always right vs always wrong: c_obs = c_exp = 0, kappa 0 (sklearn agrees there)
    assert kappa[0, 2] == 0.0
    assert cohen_kappa_score(r[0].astype(int), r[2].astype(int), labels=[0, 1]) == 0.0
    assert np.all(np.diag(kappa) == 1.0)
    assert not np.isnan(kappa).any()


def test_hand_computed_fixture():
    # a: 1 1 0 0 ; b: 1 0 1 0 -> n11 = 1, only a = 1, only b = 1, both wrong = 1
    r = np.array([[1, 1, 0, 0], [1, 0, 1, 0]], bool)
    got = pairwise_agreement(r)
    assert got["error_inconsistency"][0, 1] == 0.5
    assert got["both_right"][0, 1] == 0.25
    assert got["both_wrong"][0, 1] == 0.25
    assert got["dominance"][0, 1] == 0.25 and got["dominance"][1, 0] == 0.25
    assert got["error_consistency"][0, 1] == 0.0  # c_obs = c_exp = 0.5


def test_dominance_identities():
    rng = np.random.default_rng(3)
    r = rng.uniform(size=(6, 500)) < rng.uniform(0.2, 0.9, size=(6, 1))
    d = dominance(r)
    p = r.mean(axis=1)
    np.testing.assert_allclose(d - d.T, p[None, :] - p[:, None], atol=1e-15)
    np.testing.assert_allclose(d + d.T, error_inconsistency(r), atol=1e-15)


def test_counts_exact_and_int64():
    rng = np.random.default_rng(0)
    r = rng.uniform(size=(5, 70_001)) < 0.5
    n11, nr, n = pair_counts(r)
    assert n11.dtype == np.int64 and n == 70_001
    ref = r.astype(np.int64) @ r.astype(np.int64).T
    np.testing.assert_array_equal(n11, ref)
    np.testing.assert_array_equal(nr, r.sum(axis=1))


def test_correctness_single_and_multilabel():
    preds = np.array([[0, 1, 2, 2], [2, 2, 2, 0]])
    labels = np.array([0, 2, 2, 1])
    np.testing.assert_array_equal(
        correctness(preds, labels), [[True, False, True, False], [False, True, True, False]]
    )
    multi = np.array([[1, 0, 1], [0, 1, 1], [0, 0, 0], [1, 1, 0]], np.uint8)
    # example 2 has no valid label: never right; example 3 accepts 0 and 1
    np.testing.assert_array_equal(
        correctness(preds, multi), [[True, True, False, False], [True, True, False, True]]
    )
    np.testing.assert_array_equal(correctness(preds[0], labels), [True, False, True, False])


def test_top1_lowest_index_on_ties():
    scores = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0], [0.0, -1.0, 5.0]])
    np.testing.assert_array_equal(top1(scores), [1, 0, 2])


def test_bad_input_raises_one_line_error():
    with pytest.raises(ZoolensError, match="do not match"):
        correctness(np.zeros((2, 3), int), np.zeros(4, int))
    with pytest.raises(ZoolensError, match="outside"):
        correctness(np.array([[3]]), np.ones((1, 3), np.uint8))
    with pytest.raises(ZoolensError, match="integer"):
        correctness(np.zeros((2, 3)), np.zeros(3, int))
    with pytest.raises(ZoolensError, match="no examples"):
        error_inconsistency(np.zeros((2, 0), bool))


def _load_cifar10_pair():
    from conftest import shared_path

    lenet = np.load(shared_path("cifar10-probs", "lenet-5-cifar-10.npz"))
    wrn = np.load(shared_path("cifar10-probs", "wideresnet-16-4-cifar-10.npz"))
    vgg = np.load(shared_path("cifar10-probs", "vgg16-keras-cifar-10.npz"))
    labels = np.asarray(lenet["ground_truth"]).astype(np.int64).ravel()
    probs = [lenet["predictions"], wrn["predictions"], vgg["probs"]]
    return probs, labels


def test_real_cifar10_models_by_hand():
    probs, labels = _load_cifar10_pair()
    r = correctness(np.stack([top1(p) for p in probs]), labels)
    # published argmax accuracies (../shared/data/README.md)
    np.testing.assert_allclose(r.mean(axis=1), [0.5308, 0.9109, 0.9359], atol=5e-5)
    got = pairwise_agreement(r)
    a, b = r[0], r[1]
    assert got["error_inconsistency"][0, 1] == pytest.approx(np.mean(a != b))
    assert got["dominance"][0, 1] == pytest.approx(np.mean(~a & b))
    assert got["error_consistency"][1, 2] == pytest.approx(
        cohen_kappa_score(r[1].astype(int), r[2].astype(int))
    )


def test_pairs_with_the_base_equals_a_loop():
    """measure.agreement.pairs_with against the obvious loop over a pair table with the base
    on either side, a self pair and pairs without the base."""
    from zoolens.measure.agreement import pairs_with

    rng = np.random.default_rng(3)
    names = np.array(["a", "b", "base", "c"], dtype=object)
    model_a = names[rng.integers(0, 4, 60)]
    model_b = names[rng.integers(0, 4, 60)]
    rows, flipped, other = pairs_with(model_a, model_b, "base")
    expected = [
        (i, b == "base", a if b == "base" else b)
        for i, (a, b) in enumerate(zip(model_a, model_b))
        if "base" in (a, b) and a != b
    ]
    assert len(expected) > 5
    assert list(zip(rows.tolist(), flipped.tolist(), other.tolist())) == expected
    assert pairs_with(["a"], ["b"], "base")[0].size == 0
