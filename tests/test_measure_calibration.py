"""Temperature scaling vs scipy.optimize, ECE vs torchmetrics, NLL vs torch, and edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax

from zoolens.errors import ZoolensError
from zoolens.measure.calibration import (
    expected_calibration_error,
    expected_calibration_error_from_confidence,
    fit_temperature,
    negative_log_likelihood,
    nll_and_derivatives,
    reliability_bins,
    reliability_diagram,
    softmax,
    top1_confidence,
)


def reference_nll(z: np.ndarray, y: np.ndarray, t: float) -> float:
    """Mean NLL of softmax(z / t) in float64 with scipy's log_softmax (independent code)."""
    return float(-np.mean(log_softmax(z.astype(np.float64) / t, axis=1)[np.arange(len(y)), y]))


def scipy_fit(z, y, bounds=(1e-3, 1e3)):
    res = minimize_scalar(
        lambda u: reference_nll(z, y, math.exp(u)),
        bounds=(math.log(bounds[0]), math.log(bounds[1])),
        method="bounded",
        options={"xatol": 1e-10},
    )
    return math.exp(res.x), res.fun


def synthetic(seed, n=1500, c=10, sharpness=1.0, signal=2.0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, n)
    z = rng.normal(size=(n, c)) * sharpness
    z[np.arange(n), y] += signal * rng.uniform(0, 2, n)
    return z, y


@pytest.mark.parametrize(
    "seed,sharpness,signal",
    [(0, 1.0, 2.0), (1, 5.0, 10.0), (2, 0.2, 0.5), (3, 3.0, 1.0), (4, 1.0, 6.0), (5, 10.0, 40.0)],
)
def test_temperature_matches_scipy(seed, sharpness, signal, kernels):
    z, y = synthetic(seed, sharpness=sharpness, signal=signal)
    fit = fit_temperature(z.astype(np.float32), y)
    t_ref, nll_ref = scipy_fit(z.astype(np.float32), y)
    assert fit.converged and not fit.at_bound, fit.message
    assert fit.temperature == pytest.approx(t_ref, rel=1e-4)
    assert fit.nll == pytest.approx(nll_ref, abs=1e-4)
    assert fit.nll <= nll_ref + 1e-12  # never worse than the generic optimiser
    assert negative_log_likelihood(z.astype(np.float32), y, 1.0) == pytest.approx(
        reference_nll(z.astype(np.float32), y, 1.0), rel=1e-12
    )


def test_over_and_under_confident_models_move_t_the_right_way():
    z, y = synthetic(7, sharpness=1.0, signal=2.0)
    base = fit_temperature(z, y).temperature
    # the same model with logits scaled by 10 is over-confident: T scales by 10 exactly
    assert fit_temperature(10 * z, y).temperature == pytest.approx(10 * base, rel=1e-6)
    assert fit_temperature(0.1 * z, y).temperature == pytest.approx(0.1 * base, rel=1e-6)


def test_already_calibrated_model_keeps_t_near_one():
    # Draw labels from the model's own softmax: T = 1 is the population optimum.
    rng = np.random.default_rng(11)
    z = rng.normal(size=(20000, 5)) * 2
    p = softmax(z, dtype=np.float64)
    y = (rng.uniform(size=(20000, 1)) > np.cumsum(p, axis=1)).sum(axis=1)
    fit = fit_temperature(z, y)
    assert abs(fit.temperature - 1) < 0.05
    assert fit.nll <= negative_log_likelihood(z, y, 1.0)


def test_separable_model_goes_to_lower_bound():
    y = np.arange(200) % 10
    z = np.eye(10)[y] * 5.0
    fit = fit_temperature(z, y)
    assert fit.at_bound and fit.temperature == 1e-3
    assert "bound" in fit.message and fit.iterations < 20


def test_uninformative_scores_go_to_upper_bound():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 10, 500)
    z = rng.normal(size=(500, 10))  # independent of the labels
    fit = fit_temperature(z, y)
    assert fit.at_bound and fit.temperature == 1e3
    assert np.isfinite(fit.nll)


def test_constant_rows_are_flat_and_keep_t_one():
    y = np.array([0, 1, 2, 1])
    for z in (np.zeros((4, 3)), np.full((4, 3), 7.25, np.float16)):
        fit = fit_temperature(z, y)
        assert fit.temperature == 1.0 and fit.converged and "flat" in fit.message
        assert fit.nll == pytest.approx(math.log(3))


def test_near_constant_and_identical_rows_are_finite():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 4, 300)
    z = 1e-6 * rng.normal(size=(300, 4))
    z[np.arange(300), y] += 1e-6  # tiny but informative: wants a small T
    fit = fit_temperature(z, y)
    assert 1e-3 <= fit.temperature <= 1e3 and math.isfinite(fit.nll)
    t_ref, nll_ref = scipy_fit(z, y)
    assert fit.nll <= nll_ref + 1e-9
    same = np.tile(np.array([[2.0, 1.0, 0.0]]), (50, 1))
    labels = np.array([0] * 30 + [1] * 15 + [2] * 5)
    fit = fit_temperature(same, labels)
    t_ref, nll_ref = scipy_fit(same, labels)
    assert fit.temperature == pytest.approx(t_ref, rel=1e-4)


def test_fit_is_the_same_with_tiny_chunks_and_float16(kernels):
    z, y = synthetic(3, n=777, c=13)
    z16 = z.astype(np.float16)
    whole = fit_temperature(z16, y)
    chunked = fit_temperature(z16, y, chunk_rows=10)
    assert chunked.temperature == pytest.approx(whole.temperature, rel=1e-10)
    t_ref, _ = scipy_fit(z16.astype(np.float64), y)
    assert whole.temperature == pytest.approx(t_ref, rel=1e-4)


def test_float16_scores_fit_bit_for_bit_as_their_float32_copy(kernels):
    """analyze fits on the stored float16 scores (widened inside the fit, on torch's casts
    when installed): the same passes, so the same temperature and NLL bits as the float32
    copy it used to make; with the warm start, chunks and a last partial chunk."""
    z, y = synthetic(6, n=9001, c=37, sharpness=2.0, signal=3.0)
    z16 = z.astype(np.float16)
    for chunk_rows in (None, 1000):
        half = fit_temperature(z16, y, chunk_rows=chunk_rows)
        single = fit_temperature(z16.astype(np.float32), y, chunk_rows=chunk_rows)
        assert half.iterations == single.iterations
        assert (half.temperature, half.nll) == (single.temperature, single.nll)


def test_derivatives_match_finite_differences(kernels):
    z, y = synthetic(4, n=400, c=7)
    multi = np.zeros((400, 7), np.uint8)
    multi[np.arange(400), y] = 1
    multi[np.arange(0, 400, 3), (y[::3] + 1) % 7] = 1
    for labels in (y, multi):
        for u in (-1.0, 0.0, 0.7):
            f, g, h = nll_and_derivatives(z, labels, u)
            eps = 1e-5
            fp, gp, _ = nll_and_derivatives(z, labels, u + eps)
            fm, gm, _ = nll_and_derivatives(z, labels, u - eps)
            assert g == pytest.approx((fp - fm) / (2 * eps), rel=1e-6, abs=1e-9)
            assert h == pytest.approx((gp - gm) / (2 * eps), rel=1e-5, abs=1e-8)


def test_multilabel_nll_is_set_likelihood_and_skips_empty_rows():
    z, y = synthetic(5, n=300, c=6)
    multi = np.zeros((300, 6), np.uint8)
    multi[np.arange(300), y] = 1
    multi[::4, 0] = 1
    multi[::7] = 0  # no valid label: left out
    keep = multi.any(axis=1)
    logq = log_softmax(z / 1.3, axis=1)
    ref = -np.mean(np.log(np.sum(np.exp(logq) * multi, axis=1)[keep]))
    assert negative_log_likelihood(z, multi, 1.3) == pytest.approx(ref, rel=1e-12)
    fit = fit_temperature(z, multi)
    res = minimize_scalar(
        lambda u: negative_log_likelihood(z, multi, math.exp(u)),
        bounds=(math.log(1e-3), math.log(1e3)),
        method="bounded",
        options={"xatol": 1e-10},
    )
    assert fit.temperature == pytest.approx(math.exp(res.x), rel=1e-4)


def test_nll_matches_torch_cross_entropy():
    torch = pytest.importorskip("torch")
    z, y = synthetic(6, n=500, c=9)
    ref = torch.nn.functional.cross_entropy(torch.tensor(z / 0.8), torch.tensor(y)).item()
    assert negative_log_likelihood(z, y, 0.8) == pytest.approx(ref, rel=1e-12)


def test_softmax_is_stable_and_correct():
    z = np.array([[1000.0, 1000.0, -1000.0], [1.0, 2.0, 3.0]])
    p = softmax(z, dtype=np.float64)
    # exp(-2000) is raised to exp(-700) (no subnormal arithmetic): ~1e-304, not 0
    np.testing.assert_allclose(p[0], [0.5, 0.5, 0.0], atol=1e-300)
    assert softmax(z)[0, 2] == 0.0  # invisible in float32
    np.testing.assert_allclose(p[1], np.exp([1, 2, 3]) / np.exp([1, 2, 3]).sum(), rtol=1e-15)
    np.testing.assert_allclose(
        softmax(z[1], 2.0, dtype=np.float64),
        np.exp(np.array([1, 2, 3]) / 2) / np.exp(np.array([1, 2, 3]) / 2).sum(),
    )
    assert softmax(z).dtype == np.float32
    conf, pred = top1_confidence(z, 1.0)
    np.testing.assert_allclose(conf, p.max(axis=1), rtol=1e-15)
    np.testing.assert_array_equal(pred, [0, 2])


def test_ece_matches_torchmetrics():
    torch = pytest.importorskip("torch")
    tm = pytest.importorskip("torchmetrics.classification")
    rng = np.random.default_rng(8)
    for c, n in ((10, 3000), (3, 500), (100, 2000)):
        z = rng.normal(size=(n, c)) * rng.uniform(0.5, 4)
        y = rng.integers(0, c, n)
        z[np.arange(n), y] += 1.5
        p = softmax(z, dtype=np.float64)
        # torchmetrics puts confidence 1.0 in an extra bin and computes its edges in its own
        # arithmetic: keep rows away from 1.0 and from every bin edge (the conventions agree
        # elsewhere).
        conf = p.max(axis=1)
        away = np.abs(conf[:, None] - np.linspace(0, 1, 16)[None, :]).min(axis=1) > 1e-6
        p, y = p[away], y[away]
        assert p.max() < 1.0 and len(y) > 0.9 * n
        metric = tm.MulticlassCalibrationError(num_classes=c, n_bins=15, norm="l1")
        ref = metric(torch.tensor(p), torch.tensor(y)).item()
        # torchmetrics accumulates in float32
        assert expected_calibration_error(p, y) == pytest.approx(ref, abs=1e-6)


def test_ece_bins_edges_hand_computed():
    conf = np.array([0.0, 1.0, 1.0, 0.5, 14 / 15 - 1e-9, 2 / 3])
    ok = np.array([0, 1, 0, 1, 1, 0])
    bins = reliability_bins(conf, ok, n_bins=15)
    assert bins["bin_count"][0] == 1  # 0 in the first bin
    assert bins["bin_count"][14] == 2  # both 1.0s in the last bin
    assert bins["bin_count"][13] == 1
    assert bins["bin_count"][7] == 1  # 0.5 = 7.5/15 -> bin 7
    assert bins["bin_count"][10] == 1  # 2/3 = 10/15 exactly -> bin 10 (left-closed)
    assert bins["bin_count"].sum() == 6
    assert np.isnan(bins["bin_accuracy"][1])
    # ECE by hand: bin0 |0-0|, bin14 |0.5-1|*2/6, bin13 |1-c|/6, bin7 |1-.5|/6, bin10 |0-2/3|/6
    expected = (0.5 * 2 + (1 - conf[4]) + 0.5 + 2 / 3) / 6
    assert expected_calibration_error_from_confidence(conf, ok) == pytest.approx(expected)


def test_reliability_diagram_multilabel_truth():
    p = np.array([[0.65, 0.25, 0.1], [0.2, 0.75, 0.05]])
    multi = np.array([[0, 1, 1], [1, 1, 0]], np.uint8)
    bins = reliability_diagram(p, multi, n_bins=10)
    assert bins["bin_accuracy"][6] == 0.0 and bins["bin_accuracy"][7] == 1.0


def test_bad_input():
    with pytest.raises(ZoolensError, match="do not match"):
        fit_temperature(np.zeros((3, 2)), np.zeros(4, int))
    with pytest.raises(ZoolensError, match="outside"):
        fit_temperature(np.zeros((3, 2)), np.array([0, 1, 2]))
    with pytest.raises(ZoolensError, match="NaN"):
        fit_temperature(np.array([[0.0, np.nan]]), np.array([0]))
    with pytest.raises(ZoolensError, match="positive"):
        softmax(np.zeros((2, 2)), 0.0)
    with pytest.raises(ZoolensError, match="no rows"):
        fit_temperature(np.zeros((0, 2)), np.zeros(0, int))


def test_real_cifar10_lenet_temperature(kernels):
    from conftest import shared_path

    data = np.load(shared_path("cifar10-probs", "lenet-5-cifar-10.npz"))
    logp = np.log(data["predictions"].astype(np.float64))
    y = data["ground_truth"].astype(np.int64)
    fit = fit_temperature(logp.astype(np.float32), y)
    t_ref, nll_ref = scipy_fit(logp.astype(np.float32), y)
    assert fit.temperature == pytest.approx(t_ref, rel=1e-4)
    assert fit.nll == pytest.approx(nll_ref, abs=1e-8)
    assert fit.nll < negative_log_likelihood(logp, y, 1.0)


def test_warm_start_gives_the_full_data_optimum_in_few_passes():
    z, y = synthetic(9, n=20000, c=20, sharpness=2.0, signal=3.0)
    z16 = z.astype(np.float16)
    warm = fit_temperature(z16, y)  # 20,000 > 2·4096 rows: subsample first
    cold = fit_temperature(z16, y, warm_start_rows=0)
    t_ref, nll_ref = scipy_fit(z16.astype(np.float64), y)
    assert warm.temperature == pytest.approx(cold.temperature, rel=1e-7)
    assert warm.temperature == pytest.approx(t_ref, rel=1e-4)
    assert warm.nll == pytest.approx(nll_ref, abs=1e-10)
    assert warm.iterations <= 4 and warm.iterations < cold.iterations


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 300),
    st.integers(2, 12),
    st.floats(1e-4, 1e3),
    st.floats(0, 50),
    st.booleans(),
    st.integers(0, 10**6),
)
def test_fit_never_worse_than_scipy_and_always_finite(n, c, scale, signal, f16, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, n)
    z = rng.normal(size=(n, c)) * scale
    z[np.arange(n), y] += signal * rng.uniform(0, 1, n) * scale
    if f16:
        z = np.clip(z, -6e4, 6e4).astype(np.float16)
    fit = fit_temperature(z, y)
    assert 1e-3 <= fit.temperature <= 1e3 and math.isfinite(fit.nll)
    _, nll_ref = scipy_fit(z.astype(np.float64), y)
    assert fit.nll <= nll_ref + 1e-7 * max(1.0, nll_ref)
    assert fit.nll == pytest.approx(reference_nll(z, y, fit.temperature), rel=1e-9, abs=1e-12)


def test_real_cifar10_ece_before_and_after_matches_torchmetrics():
    torch = pytest.importorskip("torch")
    tm = pytest.importorskip("torchmetrics.classification")
    from conftest import shared_path

    data = np.load(shared_path("cifar10-probs", "wideresnet-16-4-cifar-10.npz"))
    y = data["ground_truth"].astype(np.int64)
    logp = np.log(data["predictions"].astype(np.float64))
    fit = fit_temperature(logp, y)
    for t in (1.0, fit.temperature):
        p = softmax(logp, t, dtype=np.float64)
        conf = p.max(axis=1)
        away = np.abs(conf[:, None] - np.linspace(0, 1, 16)[None, :]).min(axis=1) > 1e-6
        away &= conf.astype(np.float32) < 1.0  # torchmetrics works in float32: 1.0 has its own bin
        metric = tm.MulticlassCalibrationError(num_classes=10, n_bins=15, norm="l1")
        ref = metric(torch.tensor(p[away]), torch.tensor(y[away])).item()
        # torchmetrics sums ~5,000 float32 confidences per bin here: ~1e-5 rounding
        assert expected_calibration_error(p[away], y[away]) == pytest.approx(ref, abs=2e-5)
    # temperature scaling lowers the calibration error of this over-confident model
    ece_before = expected_calibration_error(softmax(logp, 1.0, dtype=np.float64), y)
    ece_after = expected_calibration_error(softmax(logp, fit.temperature, dtype=np.float64), y)
    assert ece_after < ece_before
