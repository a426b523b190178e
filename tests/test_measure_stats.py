"""Bootstrap and paired tests vs direct resampling loops, scipy.stats.binomtest and hand values."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binom, binomtest, chi2

from zoolens.errors import ZoolensError
from zoolens.measure.stats import (
    bootstrap_ci,
    bootstrap_means,
    bootstrap_ratio_ci,
    bootstrap_weights,
    bh_q_values,
    holm_adjusted,
    int8_weights,
    mcnemar_p_values,
    mcnemar_test,
    paired_bootstrap_test,
    resampled_sums,
)


def test_weights_are_multinomial_counts_reproducible():
    w = bootstrap_weights(37, 200, seed=3)
    assert w.shape == (200, 37) and (w.sum(axis=1) == 37).all()
    np.testing.assert_array_equal(w, bootstrap_weights(37, 200, seed=3))
    assert not np.array_equal(w, bootstrap_weights(37, 200, seed=4))
    # every example has expected count 1 per resample
    assert abs(w.mean() - 1) < 1e-12 and 0.8 < w.var() < 1.2


def test_means_equal_explicit_resampling_loop():
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(50, 3))
    w = bootstrap_weights(50, 30, seed=1)
    got = bootstrap_means(x, w)
    for b in range(30):
        idx = np.repeat(np.arange(50), w[b].astype(int))  # the resample's examples
        np.testing.assert_allclose(got[b], x[idx].mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(bootstrap_means(x[:, 0], w), got[:, 0])


def test_ci_percentiles_and_coverage_shape():
    rng = np.random.default_rng(2)
    r = rng.uniform(size=(4000, 2)) < [0.8, 0.3]
    est, lo, hi = bootstrap_ci(r, n_resamples=500, seed=0)
    means = bootstrap_means(r.astype(float), n_resamples=500, seed=0)
    np.testing.assert_allclose(lo, np.quantile(means, 0.025, axis=0))
    np.testing.assert_allclose(hi, np.quantile(means, 0.975, axis=0))
    np.testing.assert_allclose(est, r.mean(axis=0))
    # width close to the normal approximation 2·1.96·sqrt(p(1-p)/n)
    width = hi - lo
    normal = 2 * 1.96 * np.sqrt(est * (1 - est) / 4000)
    np.testing.assert_allclose(width, normal, rtol=0.2)
    e, l, h = bootstrap_ci(r[:, 0].astype(float), n_resamples=500)
    assert isinstance(e, float) and l <= e <= h


def test_ratio_ci_and_nan_condition():
    rng = np.random.default_rng(3)
    den = rng.uniform(size=300) < 0.2
    num = den & (rng.uniform(size=300) < 0.6)
    est, lo, hi = bootstrap_ratio_ci(num, den, n_resamples=400)
    assert est == pytest.approx(num.sum() / den.sum())
    assert lo < est < hi
    # oracle: an explicit loop over resampled index sets, leaving out empty denominators
    # (the 30-example case has resamples without any denominator example; counting them as
    # 0 would move the lower bound from 0.25 to 0)
    rare_den = np.zeros(30, bool)
    rare_den[[1, 5, 9, 20]] = True
    rare_num = rare_den & (np.arange(30) != 1)
    for n_, d_, n_ex in ((num, den, 300), (rare_num, rare_den, 30)):
        w = bootstrap_weights(n_ex, 400, seed=5)
        _, lo, hi = bootstrap_ratio_ci(n_, d_, weights=w)
        ratios = []
        for b in range(400):
            idx = np.repeat(np.arange(n_ex), w[b].astype(int))
            if d_[idx].sum() > 0:
                ratios.append(n_[idx].sum() / d_[idx].sum())
        assert len(ratios) < 400 or n_ex == 300
        np.testing.assert_allclose([lo, hi], np.quantile(ratios, [0.025, 0.975]), rtol=1e-12)
    est, lo, hi = bootstrap_ratio_ci(np.zeros(10), np.zeros(10), n_resamples=50)
    assert np.isnan(est) and np.isnan(lo) and np.isnan(hi)


def _mid_p_by_hand(b: int, c: int) -> float:
    """Mid-p McNemar (Fagerland et al. 2013, eq. for the mid-p test) with exact fractions:
    2·[Σ_{i<k} C(d, i) + ½·C(d, k)] / 2**d, k = min(b, c), d = b + c."""
    from fractions import Fraction
    from math import comb

    d, k = b + c, min(b, c)
    tail = sum(Fraction(comb(d, i), 2**d) for i in range(k)) + Fraction(comb(d, k), 2 ** (d + 1))
    return float(min(Fraction(1), 2 * tail))


@pytest.mark.parametrize(
    "b,c", [(0, 0), (0, 1), (3, 9), (10, 14), (12, 12), (40, 60), (100, 130), (7, 30), (2, 10)]
)
def test_mcnemar_mid_p_by_hand_and_chi2_against_scipy(b, c):
    p = float(mcnemar_p_values(b, c))
    if b + c == 0:
        assert p == 1.0
    elif b + c < 25:
        assert p == pytest.approx(_mid_p_by_hand(b, c), rel=1e-12)
        # the mid-p is the exact conditional p-value less one point probability
        exact = binomtest(b, b + c, 0.5).pvalue
        if b != c:
            assert p == pytest.approx(exact - binom.pmf(min(b, c), b + c, 0.5), rel=1e-12)
            assert p < exact
    else:
        stat = max(abs(b - c) - 1, 0) ** 2 / (b + c)
        assert p == pytest.approx(chi2.sf(stat, 1), rel=1e-12)
        # the exact test agrees roughly at this size
        assert p == pytest.approx(binomtest(b, b + c, 0.5).pvalue, rel=0.3, abs=1e-3)


def test_mcnemar_mid_p_hand_fixture():
    # 1 vs 7 discordant: exact conditional 2·(1 + 8)/256 = 0.0703, mid-p 2·(1 + 8/2)/256 =
    # 10/256 = 0.0391 (the exact test's conservatism at small d, Fagerland et al. 2013).
    assert float(mcnemar_p_values(1, 7)) == pytest.approx(10 / 256, rel=1e-12)  # binom.cdf rounding
    assert binomtest(1, 8, 0.5).pvalue == pytest.approx(18 / 256)
    assert float(mcnemar_p_values(4, 4)) == 1.0


def test_mcnemar_test_counts_and_vectorised():
    ra = np.array([1, 1, 1, 0, 0, 1], bool)
    rb = np.array([0, 0, 1, 1, 0, 1], bool)
    res = mcnemar_test(ra, rb)
    assert (res.only_a, res.only_b, res.method) == (2, 1, "mid-p")
    assert res.p_value == pytest.approx(_mid_p_by_hand(2, 1))
    p = mcnemar_p_values(np.array([3, 40]), np.array([9, 60]))
    np.testing.assert_allclose(p, [mcnemar_p_values(3, 9), mcnemar_p_values(40, 60)])


def _holm_loop(p):
    """Holm (1979) step-down, a float64 loop over the sorted p-values (NaN left out)."""
    idx = [i for i, v in enumerate(p) if np.isfinite(v)]
    m = len(idx)
    ranked = sorted(idx, key=lambda i: (p[i], i))
    out = [float("nan")] * len(p)
    running = 0.0
    for j, i in enumerate(ranked):
        running = max(running, min(1.0, (m - j) * p[i]))
        out[i] = running
    return out


def _bh_loop(p):
    """Benjamini-Hochberg (1995) q-values, a float64 loop from the largest p-value down."""
    idx = [i for i, v in enumerate(p) if np.isfinite(v)]
    m = len(idx)
    ranked = sorted(idx, key=lambda i: (p[i], i))
    out = [float("nan")] * len(p)
    running = 1.0
    for j in range(m - 1, -1, -1):
        i = ranked[j]
        running = min(running, m * p[i] / (j + 1))
        out[i] = running
    return out


@pytest.mark.parametrize("m", [1, 2, 7, 60, 999])
def test_holm_and_bh_against_loops_and_statsmodels(m):
    rng = np.random.default_rng(m)
    p = rng.uniform(size=m) ** 3
    p[: m // 4] = p[0]  # ties
    p[m // 2 :: 7] = np.nan  # rows without a test (a decision-only pair)
    np.testing.assert_allclose(holm_adjusted(p), _holm_loop(list(p)), rtol=1e-14, atol=0)
    np.testing.assert_allclose(bh_q_values(p), _bh_loop(list(p)), rtol=1e-14, atol=0)
    try:
        from statsmodels.stats.multitest import multipletests
    except ImportError:  # statsmodels is a dev dependency (pyproject); the loops still ran
        return
    keep = np.isfinite(p)
    np.testing.assert_allclose(
        holm_adjusted(p)[keep], multipletests(p[keep], method="holm")[1], rtol=1e-14, atol=0
    )
    np.testing.assert_allclose(
        bh_q_values(p)[keep], multipletests(p[keep], method="fdr_bh")[1], rtol=1e-14, atol=0
    )


def test_holm_and_bh_by_hand_and_bad_input():
    # m = 3: Holm multiplies the sorted p-values by 3, 2, 1 and keeps them non-decreasing;
    # BH multiplies by 3/1, 3/2, 3/3 and keeps them non-increasing from the top.
    assert holm_adjusted([0.01, 0.04, 0.03]).tolist() == pytest.approx([0.03, 0.06, 0.06])
    assert bh_q_values([0.01, 0.04, 0.03]).tolist() == pytest.approx([0.03, 0.04, 0.04])
    assert holm_adjusted([np.nan, np.nan]).tolist() == [pytest.approx(np.nan, nan_ok=True)] * 2
    with pytest.raises(ZoolensError, match="p-values"):
        bh_q_values([0.5, 1.5])


def test_paired_bootstrap_test():
    rng = np.random.default_rng(4)
    best = rng.uniform(size=2000) < 0.8
    better = best | (rng.uniform(size=2000) < 0.1)  # strictly better: fixes ~10% of errors
    res = paired_bootstrap_test(better, best, n_resamples=500)
    assert res.difference == pytest.approx(better.mean() - best.mean())
    assert res.lo > 0 and res.p_value == pytest.approx(1 / 501)
    same = paired_bootstrap_test(best, best, n_resamples=200)
    assert same.difference == 0 and same.p_value == 1.0
    # an explicit loop over resamples gives the same p-value
    w = bootstrap_weights(2000, 300, seed=9)
    noisy = rng.uniform(size=2000) < 0.805
    res = paired_bootstrap_test(noisy, best, weights=w)
    deltas = [
        (
            noisy[np.repeat(np.arange(2000), w[b].astype(int))].mean()
            - best[np.repeat(np.arange(2000), w[b].astype(int))].mean()
        )
        for b in range(300)
    ]
    assert res.p_value == pytest.approx((1 + sum(d <= 0 for d in deltas)) / 301)


def test_bad_input():
    with pytest.raises(ZoolensError):
        bootstrap_weights(0)
    with pytest.raises(ZoolensError, match="confidence"):
        bootstrap_ci(np.ones(5), confidence=1.5, n_resamples=10)
    with pytest.raises(ZoolensError, match="McNemar"):
        mcnemar_test(np.ones(3, bool), np.ones(4, bool))


def test_real_cifar10_ensemble_vs_best_member():
    from conftest import shared_path

    wrn = np.load(shared_path("cifar10-probs", "wideresnet-16-4-cifar-10.npz"))
    vgg = np.load(shared_path("cifar10-probs", "vgg16-keras-cifar-10.npz"))
    y = wrn["ground_truth"].astype(np.int64)
    best = vgg["probs"].argmax(1) == y  # 0.9359, the better member
    ens = (wrn["predictions"] + vgg["probs"]).argmax(1) == y
    res = mcnemar_test(ens, best)
    b, c = int(np.sum(ens & ~best)), int(np.sum(~ens & best))
    assert (res.only_a, res.only_b, res.method) == (b, c, "chi2")
    assert res.p_value == pytest.approx(chi2.sf(max(abs(b - c) - 1, 0) ** 2 / (b + c), 1))
    boot = paired_bootstrap_test(ens, best, n_resamples=300)
    assert boot.difference == pytest.approx(ens.mean() - best.mean())
    assert boot.lo <= boot.difference <= boot.hi
    est, lo, hi = bootstrap_ci(best.astype(float), n_resamples=300)
    assert est == pytest.approx(0.9359) and lo < 0.9359 < hi and hi - lo < 0.015


@pytest.mark.parametrize("skip_nan", [True, False])
def test_column_quantiles_are_numpys_bit_for_bit(monkeypatch, skip_nan: bool) -> None:
    """Oracle: numpy.nanquantile / numpy.quantile along axis 0, compared bit for bit (sign
    of zero included; NaN where numpy gives NaN), on columns that tie at -0.0 and 0.0, hold
    NaN or infinities, or are ratios with empty denominators; in blocks of a few columns so
    the blocking is exercised too."""
    import warnings

    import zoolens.measure.stats as stats

    monkeypatch.setattr(stats, "_QUANTILE_BLOCK_VALUES", 64)
    rng = np.random.default_rng(11)
    pools = [
        np.array([0.0, -0.0, 1.0, -1.0, 0.5]),
        np.array([0.0, -0.0, np.nan, np.inf, -np.inf, 1.0]),
    ]
    for trial in range(400):
        shape = (int(rng.integers(1, 60)), int(rng.integers(1, 40)))
        kind = trial % 4
        if kind == 0:
            x = rng.random(shape)
        elif kind in (1, 2):
            x = rng.choice(pools[kind - 1], shape)
        else:
            with np.errstate(divide="ignore", invalid="ignore"):  # 0/0, x/0: NaN, inf
                x = rng.integers(-2, 5, shape) / rng.integers(0, 3, shape)
        q = [0.025, 0.975] if trial % 2 else [0.1, 0.9]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            want = (np.nanquantile if skip_nan else np.quantile)(x, q, axis=0)
            got = stats._column_quantiles(x, q, skip_nan)
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        np.testing.assert_array_equal(
            np.where(np.isnan(got), 0.0, got).view(np.uint64),
            np.where(np.isnan(want), 0.0, want).view(np.uint64),
        )


def test_percentile_interval_is_the_linear_quantile_of_the_defined_resamples():
    """The percentile interval's definition: the (1 − c)/2 and (1 + c)/2 quantiles (linear
    interpolation) of the resamples where the statistic is defined, NaN where none is; one
    function serves measure.stats, study.bootstrap and study.analyze."""
    import warnings

    from zoolens.measure.stats import percentile_interval
    from zoolens.study.bootstrap import Resamples

    q95 = [(1.0 - 0.95) / 2.0, 1.0 - (1.0 - 0.95) / 2.0]
    rng = np.random.default_rng(5)
    samples = rng.normal(size=(301, 5))
    samples[rng.random((301, 5)) < 0.2] = np.nan  # undefined resamples
    samples[:, 3] = np.nan  # a never-defined statistic
    finite = rng.normal(size=(301, 4))
    for confidence in (0.95, 0.9, 0.5):
        alpha = 1.0 - confidence
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            want = np.nanquantile(samples, [alpha / 2, 1 - alpha / 2], axis=0)
        got = percentile_interval(samples, confidence)
        np.testing.assert_array_equal(np.stack(got), want)  # bit-identical, NaN where all-NaN
        assert np.isnan(got[0][3]) and np.isfinite(got[0][[0, 1, 2, 4]]).all()
        tail = (1.0 - confidence) / 2.0  # no undefined resample: plain np.quantile
        np.testing.assert_array_equal(
            np.stack(percentile_interval(finite, confidence, skip_nan=False)),
            np.quantile(finite, [tail, 1.0 - tail], axis=0),
        )
        lo, hi = percentile_interval(samples, confidence, skip_nan=False)
        assert np.isnan(lo).all() and np.isnan(hi).all()  # quantile: any NaN -> NaN
    scalar = percentile_interval(finite[:, 0])
    assert np.ndim(scalar[0]) == 0 and scalar == tuple(np.nanquantile(finite[:, 0], q95))
    with pytest.raises(ZoolensError, match="confidence"):
        percentile_interval(finite, 1.0)

    # study.bootstrap: interval (np.quantile) and ratio_interval (np.nanquantile)
    boot = Resamples(40, 250, seed=2)
    x = rng.integers(0, 2, size=(3, 40)).astype(float)
    sums = boot.chunk_sums(x, slice(0, 40))
    means = boot.means(sums)
    np.testing.assert_array_equal(np.stack(boot.interval(sums)), np.quantile(means, q95, axis=0))
    num, den = sums[:, :2], sums[:, 1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(den > 0, num / den, np.nan)
    keep = np.array([True, False])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        lo, hi = np.nanquantile(ratio, q95, axis=0)
    np.testing.assert_array_equal(
        np.stack(boot.ratio_interval(num, den, keep)),
        np.stack([np.where(keep, lo, np.nan), np.where(keep, hi, np.nan)]),
    )

    # study.bootstrap.Resamples.quantiles: non-finite resamples (NaN and ±inf) dropped, then np.quantile
    values = rng.normal(size=200)
    values[[3, 7, 11]] = [np.nan, np.inf, -np.inf]
    kept = values[np.isfinite(values)]
    assert boot.quantiles(values) == tuple(float(v) for v in np.quantile(kept, q95))
    assert boot.quantiles(np.full(4, np.nan)) == (None, None)


def test_accuracy_adjusted_means_against_sklearn_and_linregress():
    """Coefficients equal scikit-learn's least squares; with one category the adjusted mean
    is the plain mean with the interval ybar +- t * s / sqrt(n) and the slope interval is
    linregress's (independent formulas)."""
    from scipy.stats import linregress, t as student_t
    from sklearn.linear_model import LinearRegression

    from zoolens.measure.stats import accuracy_adjusted_means

    rng = np.random.default_rng(0)
    n = 40
    acc = rng.uniform(0.5, 0.9, n)
    cats = rng.choice(["Reinit", "Arch", "Dataset"], n)
    effect = {"Reinit": 0.05, "Arch": 0.10, "Dataset": 0.2}
    y = np.array([effect[c] for c in cats]) - 0.4 * acc + rng.normal(0, 0.01, n)
    got = accuracy_adjusted_means(y, cats, acc)
    onehot = np.stack([(cats == c).astype(float) for c in got.categories], axis=1)
    fit = LinearRegression(fit_intercept=False).fit(np.hstack([onehot, acc[:, None]]), y)
    assert got.slope == pytest.approx(fit.coef_[-1], abs=1e-10)
    np.testing.assert_allclose(got.mean, fit.coef_[:-1] + fit.coef_[-1] * acc.mean(), atol=1e-10)
    assert got.dof == n - 4 and list(got.n) == [int((cats == c).sum()) for c in got.categories]
    assert np.all(got.lo < got.mean) and np.all(got.mean < got.hi)
    # the planted ordering at matched accuracy is recovered
    order = [got.categories.index(c) for c in ("Reinit", "Arch", "Dataset")]
    assert got.mean[order[0]] < got.mean[order[1]] < got.mean[order[2]]

    one = accuracy_adjusted_means(y, ["all"] * n, acc)
    ref = linregress(acc, y)
    resid = y - (ref.intercept + ref.slope * acc)
    s = np.sqrt(resid @ resid / (n - 2))
    t = student_t.ppf(0.975, n - 2)
    assert one.mean[0] == pytest.approx(y.mean())
    assert one.lo[0] == pytest.approx(y.mean() - t * s / np.sqrt(n))
    assert one.slope_hi - one.slope == pytest.approx(t * ref.stderr)


def test_accuracy_adjusted_means_without_degrees_of_freedom():
    from zoolens.measure.stats import accuracy_adjusted_means

    got = accuracy_adjusted_means([0.1, 0.2, np.nan], ["A", "B", "B"], [0.7, 0.8, 0.9])
    assert got.dof == 0 and np.isnan(got.lo).all()  # 2 finite pairs, 3 parameters
    from zoolens.errors import ZoolensError

    with pytest.raises(ZoolensError):
        accuracy_adjusted_means([np.nan], ["A"], [0.5])


@pytest.mark.parametrize("n", [1, 2, 15, 16, 17, 1451])
def test_resampled_sums_equal_an_integer_loop_on_either_kernel(n):
    """The int8 product (torch, where it applies) and the float32 product give the exact
    integer sums of a float64-free oracle: per resample and value, sum of count x bit. n = 1
    is where torch 2.14's int8 product is wrong (the float32 path takes it)."""
    w = bootstrap_weights(n, 37, seed=1)
    x = np.random.default_rng(2).random((23, n)) < 0.4
    want = np.einsum("bn,kn->bk", w.astype(np.int64), x.astype(np.int64))
    small = int8_weights(w)
    for weights_int8 in (None, small):
        got = resampled_sums(w, x, weights_int8)
        assert got.dtype == np.float32
        assert np.array_equal(got, want.astype(np.float32))
    # non-boolean values take the float32 product whatever is given
    halves = x * 0.5
    assert np.array_equal(resampled_sums(w, halves, small), (want * 0.5).astype(np.float32))


def test_int8_weights_only_for_whole_counts_up_to_127():
    pytest.importorskip("torch")
    w = bootstrap_weights(50, 10, seed=0)
    assert int8_weights(w) is not None and np.array_equal(int8_weights(w), w)
    too_big = w.copy()
    too_big[0, 0] = 128
    assert int8_weights(too_big) is None
    assert int8_weights(w + 0.5) is None
    assert int8_weights(-w) is None


def test_resampled_sums_check_the_int8_product_where_they_run(monkeypatch):
    """int8 weights made on a driver with torch reach a worker without it (Ray): the sums
    there take the float32 product instead of failing."""
    import zoolens.measure.stats as stats

    w = bootstrap_weights(40, 9, seed=3)
    x = np.random.default_rng(4).random((5, 40)) < 0.5
    small = w.astype(np.int8)  # as int8_weights gives them where torch is installed
    monkeypatch.setattr(stats, "optional_torch", lambda: None)
    stats._int8_product_works.cache_clear()
    try:
        got = resampled_sums(w, x, small)
    finally:
        stats._int8_product_works.cache_clear()
    assert np.array_equal(got, (w.astype(np.int64) @ x.astype(np.int64).T).astype(np.float32))


def test_average_ranks_and_row_spearman_against_scipy() -> None:
    """Oracles: scipy.stats.rankdata (average ranks, bit for bit: half-integers) and
    scipy.stats.spearmanr per row (to 1e-12: scipy correlates the ranks its own way); a
    constant row gives NaN, as spearmanr does."""
    import warnings

    from scipy.stats import rankdata, spearmanr

    from zoolens.measure.stats import average_ranks, spearman_rows

    rng = np.random.default_rng(3)
    for trial in range(60):
        width = int(rng.integers(2, 400))
        x = rng.integers(0, int(rng.integers(1, 30)), (4, width)) / 7.0  # many ties
        y = rng.normal(size=(4, width)) if trial % 2 else rng.integers(0, 3, (4, width)) * 0.5
        for row in (*x, *y):
            np.testing.assert_array_equal(average_ranks(row), rankdata(row))
        got = spearman_rows(x, y)
        for b in range(4):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # scipy warns on a constant row
                want = spearmanr(x[b], y[b]).statistic
            if np.isnan(want):
                assert np.isnan(got[b])
            else:
                assert got[b] == pytest.approx(want, abs=1e-12)
    constant = spearman_rows(np.ones((1, 5)), np.arange(5.0)[None])
    assert np.isnan(constant[0])


@pytest.mark.parametrize("dtype", [np.int64, np.uint16, np.int32])
def test_integer_values_are_ranked_by_counting_with_the_same_ranks(dtype) -> None:
    """Integer rows (resampled sums) take the counting path: the ranks equal
    scipy.stats.rankdata bit for bit, and so does the rho of the float rows they scale to
    (a strictly increasing map keeps every rank)."""
    from scipy.stats import rankdata

    from zoolens.measure.stats import average_ranks, spearman_rows

    rng = np.random.default_rng(8)
    for width, span in ((1, 1), (2, 1), (50, 3), (1000, 4000), (300, 10**6)):  # last: sorts
        x = rng.integers(0, span, (3, width)).astype(dtype)
        y = rng.integers(0, 2 * span + 1, (3, width)).astype(dtype)
        for row in (*x, *y):
            np.testing.assert_array_equal(average_ranks(row), rankdata(row))
        np.testing.assert_array_equal(
            spearman_rows(x, y), spearman_rows(x / 7.0, (y.astype(float) - span) / 2 / 7.0)
        )
