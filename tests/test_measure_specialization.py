"""Confidence angle, outcome histograms and per-group summaries vs per-example loops."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zoolens.errors import ZoolensError
from zoolens.measure.specialization import (
    OUTCOMES,
    confidence,
    confidence_angle,
    outcome_codes,
    specialization_by_group,
    theta_histogram,
)


def test_angle_hand_values():
    np.testing.assert_allclose(
        confidence_angle([0.5, 1.0, 0.3, 0.9], [0.5, 0.0, 0.9, 0.3]),
        [45.0, 90.0, math.degrees(math.atan2(0.3, 0.9)), math.degrees(math.atan2(0.9, 0.3))],
    )
    assert (
        confidence_angle(0.9, 0.3) > 45 > confidence_angle(0.3, 0.9)
    )  # above 45: a more confident
    np.testing.assert_array_equal(confidence(np.array([[0.2, 0.7, 0.1]])), [0.7])
    # broadcasting: one base against several others
    th = confidence_angle(np.array([[0.5, 0.5]]), np.array([[0.5, 1.0], [1.0, 0.5]]))
    assert th.shape == (2, 2) and th[0, 0] == 45.0


def test_outcome_codes():
    ra = np.array([1, 1, 0, 0], bool)
    rb = np.array([1, 0, 1, 0], bool)
    np.testing.assert_array_equal(outcome_codes(ra, rb), [0, 1, 2, 3])
    assert OUTCOMES == ("both_right", "only_a", "only_b", "both_wrong")


def test_theta_histogram_against_loop_and_edges():
    rng = np.random.default_rng(0)
    n = 2000
    th = rng.uniform(0, 90, n)
    th[:4] = [0.0, 5.0, 90.0, np.nan]  # 0 -> bin 0, 5 -> bin 1 (left-closed), 90 -> bin 17
    ra, rb = rng.uniform(size=(2, n)) < 0.7
    hist = theta_histogram(th, ra, rb)
    ref = np.zeros((4, 18), np.int64)
    for t, a, b in zip(th, ra, rb):
        if np.isnan(t):
            continue
        code = OUTCOMES.index(
            "both_right" if a and b else "only_a" if a else "only_b" if b else "both_wrong"
        )
        ref[code, min(int(t // 5), 17)] += 1
    np.testing.assert_array_equal(hist, ref)
    assert hist.sum() == n - 1
    # a leading pair axis
    both = theta_histogram(np.stack([th, th[::-1]]), ra, np.stack([rb, rb]))
    np.testing.assert_array_equal(both[0], hist)
    np.testing.assert_array_equal(both[1], theta_histogram(th[::-1], ra, rb))


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 80), st.integers(1, 5), st.integers(0, 10**6))
def test_groups_against_per_group_loop(n, g, seed):
    rng = np.random.default_rng(seed)
    groups = rng.integers(-1, g, n)  # -1: left out
    ra, rb = rng.uniform(size=(2, n)) < rng.uniform(0, 1, 2)[:, None]
    th = rng.uniform(0, 90, n)
    th[rng.uniform(size=n) < 0.1] = np.nan
    got = specialization_by_group(groups, ra, rb, th, num_groups=g)
    for k in range(g):
        sel = groups == k
        assert got["n"][k] == sel.sum()
        if not sel.any():
            assert np.isnan(got["acc_a"][k]) and np.isnan(got["error_inconsistency"][k])
            continue
        a, b, t = ra[sel], rb[sel], th[sel]
        assert got["acc_a"][k] == pytest.approx(a.mean())
        assert got["acc_b"][k] == pytest.approx(b.mean())
        assert got["error_inconsistency"][k] == pytest.approx(np.mean(a != b))
        assert got["only_a_right"][k] == pytest.approx(np.mean(a & ~b))
        assert got["only_b_right"][k] == pytest.approx(np.mean(~a & b))
        for key, m in (("mean_theta_only_a", a & ~b), ("mean_theta_only_b", ~a & b)):
            vals = t[m][~np.isnan(t[m])]
            if len(vals) == 0:
                assert np.isnan(got[key][k])
            else:
                assert got[key][k] == pytest.approx(vals.mean())


def test_groups_default_size_and_errors():
    out = specialization_by_group(np.array([0, 2]), np.array([1, 0], bool), np.array([0, 0], bool))
    assert len(out["n"]) == 3 and out["n"][1] == 0 and np.isnan(out["mean_theta_only_a"]).all()
    with pytest.raises(ZoolensError, match="differ"):
        specialization_by_group(np.array([0]), np.array([1, 0], bool), np.array([0, 0], bool))
    with pytest.raises(ZoolensError, match="integers"):
        specialization_by_group(np.array([0.5]), np.array([1], bool), np.array([0], bool))


def test_real_cifar10_per_class_specialization():
    from conftest import shared_path

    lenet = np.load(shared_path("cifar10-probs", "lenet-5-cifar-10.npz"))
    wrn = np.load(shared_path("cifar10-probs", "wideresnet-16-4-cifar-10.npz"))
    y = lenet["ground_truth"].astype(np.int64)
    qa, qb = wrn["predictions"], lenet["predictions"]
    ra, rb = qa.argmax(1) == y, qb.argmax(1) == y
    th = confidence_angle(confidence(qa), confidence(qb))
    per_class = specialization_by_group(y, ra, rb, th, num_groups=10)
    assert per_class["n"].tolist() == [1000] * 10
    # the strong model wins most inconsistent examples in every class, and is more confident there
    assert (per_class["only_a_right"] > per_class["only_b_right"]).all()
    assert (per_class["mean_theta_only_a"] > 45).all()
    cat = y == 3
    assert per_class["acc_b"][3] == pytest.approx(rb[cat].mean())
