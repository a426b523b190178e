"""study.pairblocks: the pairs' bootstrap after the evaluation pass, against direct
resampling of the full (N, K) per-example values (``measure.stats``' bootstrap functions on
the same weights) and hand-made zoos of correctness and ensemble bits.

Tolerances: every resampled sum here is a whole number (counts times 0/1 values), so the
block-wise sums equal the oracle's float64 sums exactly and the intervals agree to the last
bit up to the oracle's own float64 rounding of the means (atol 1e-12); the category means
are float32 (rtol 1e-6, their documented rounding).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from zoolens.measure.ensemble import ensemble_counts
from zoolens.measure.stats import (
    bootstrap_ci,
    bootstrap_ratio_ci,
    bootstrap_weights,
    paired_bootstrap_test,
    resampled_sums,
)
from zoolens.study.bootstrap import Resamples
from zoolens.study.pairblocks import (
    INTERVAL_COLUMNS,
    PairLayout,
    ResampledSums,
    pack_columns,
    pair_block_size,
    pair_statistics,
    sum_dtype,
    unpack_columns,
)

N, M, B, SEED = 300, 6, 200, 3


def _zoo(seed: int = 0):
    """Six models' correctness, all 15 pairs measured, the pairs with model 5 unscored (a
    decision-only model), random ensemble correctness for the scored ones, base 0, and two
    categories of the base's pairs."""
    rng = np.random.default_rng(seed)
    accuracy = np.array([0.9, 0.8, 0.75, 0.6, 0.5, 0.7])
    correct = rng.random((M, N)) < accuracy[:, None]
    a, b = np.triu_indices(M, k=1)
    scored = np.flatnonzero(b != 5)
    ens = rng.random((len(scored), N)) < 0.8
    totals = correct.sum(axis=1)
    best = np.where(totals[a] >= totals[b], a, b)
    layout = PairLayout(a=a, b=b, scored=scored, best=best, base=0)
    categories = np.zeros((2, len(a)), dtype=np.float32)
    with_base = np.flatnonzero(a == 0)
    categories[0, with_base[:2]] = 1
    categories[1, with_base[2:]] = 1
    return correct, layout, ens, categories


def _run(correct, layout, ens, categories, *, n_bootstrap=B, block=4, parallel_map=map):
    resamples = Resamples(N, n_bootstrap, seed=SEED)
    bounds = [(s, min(N, s + 37)) for s in range(0, N, 37)]
    bits = pack_columns(ens) if ens is not None else None
    return pair_statistics(
        correct, layout, bits, resamples, categories, bounds, block, parallel_map
    ), resamples


@pytest.mark.parametrize("block", [1, 3, 4, 64])
def test_pair_statistics_equal_direct_resampling_of_the_full_values(block):
    correct, layout, ens, categories = _zoo()
    with ThreadPoolExecutor(2) as pool:
        result, resamples = _run(
            correct, layout, ens, categories, block=block, parallel_map=pool.map
        )
    weights = bootstrap_weights(N, B, SEED)
    ra, rb = correct[layout.a], correct[layout.b]
    xor = ra ^ rb
    got = result.intervals
    assert set(got) == set(INTERVAL_COLUMNS)

    _, lo, hi = bootstrap_ci(xor.T.astype(float), weights=weights)
    np.testing.assert_allclose(got["error_inconsistency_lo"], lo, rtol=0, atol=1e-12)
    np.testing.assert_allclose(got["error_inconsistency_hi"], hi, rtol=0, atol=1e-12)
    # κ per resample from its own means, written out (Cohen's κ on the 2x2 of errors).
    p = weights.astype(np.float64) @ correct.T.astype(float) / N
    ei = weights.astype(np.float64) @ xor.T.astype(float) / N
    pa, pb = p[:, layout.a], p[:, layout.b]
    expected = pa * pb + (1 - pa) * (1 - pb)
    kappa = ((1 - ei) - expected) / (1 - expected)
    np.testing.assert_allclose(
        got["error_consistency_lo"], np.quantile(kappa, 0.025, axis=0), rtol=0, atol=1e-12
    )
    np.testing.assert_allclose(
        got["error_consistency_hi"], np.quantile(kappa, 0.975, axis=0), rtol=0, atol=1e-12
    )

    s = layout.scored
    unscored = np.setdiff1d(np.arange(len(layout.a)), s)
    sa, sb, e = ra[s], rb[s], ens
    r_best = correct[layout.best[s]]

    def check(name, lo, hi, rows=s):
        np.testing.assert_allclose(got[f"{name}_lo"][rows], lo, rtol=0, atol=1e-12)
        np.testing.assert_allclose(got[f"{name}_hi"][rows], hi, rtol=0, atol=1e-12)

    _, lo, hi = bootstrap_ci(e.T.astype(float), weights=weights)
    check("ensemble_acc", lo, hi)
    _, lo, hi = bootstrap_ci((e - (sa.astype(float) + sb) / 2).T, weights=weights)
    check("ensemble_gain", lo, hi)
    for k, position in enumerate(s):
        test = paired_bootstrap_test(e[k], r_best[k], weights=weights)
        check("gain_over_best", test.lo, test.hi, rows=[position])
        assert got["paired_bootstrap_p"][position] == pytest.approx(test.p_value, abs=1e-15)
    one = sa ^ sb
    _, lo, hi = bootstrap_ratio_ci((e & one).T, one.T, weights=weights)
    check("conversion_rate", lo, hi)
    neither = ~sa & ~sb
    _, lo, hi = bootstrap_ratio_ci((e & neither).T, neither.T, weights=weights)
    check("neither_conversion", lo, hi)
    mine = (layout.a[s] == 0) | (layout.b[s] == 0)
    _, lo, hi = bootstrap_ci((e[mine].astype(float) - correct[0]).T, weights=weights)
    check("gain_over_base", lo, hi, rows=s[mine])
    for column in INTERVAL_COLUMNS:  # no probabilities, no ensemble: NaN, never dropped
        if not column.startswith("error_"):
            assert np.isnan(got[column][unscored]).all(), column
    for column in ("gain_over_base_lo", "gain_over_base_hi"):  # only pairs with the base
        assert np.isnan(got[column][s[~mine]]).all(), column

    counts = ensemble_counts(sa, sb, e)
    for field in counts.__dataclass_fields__:
        np.testing.assert_array_equal(getattr(result.counts, field), getattr(counts, field))
    np.testing.assert_array_equal(result.ensemble_only[s], (e & ~r_best).sum(axis=1))
    np.testing.assert_array_equal(result.best_only[s], (~e & r_best).sum(axis=1))
    assert (result.ensemble_only[unscored] == 0).all() and (result.best_only[unscored] == 0).all()

    sums = result.sums
    w = weights.astype(np.int64)
    np.testing.assert_array_equal(sums.accuracy, w @ correct.T.astype(np.int64))
    assert sums.error_inconsistency.dtype == np.uint16
    np.testing.assert_array_equal(sums.error_inconsistency, w @ xor.T.astype(np.int64))
    np.testing.assert_array_equal(sums.ensemble_acc, w @ e.T.astype(np.int64))
    np.testing.assert_array_equal(sums.converted, w @ (e & one).T.astype(np.int64))
    per_example = (xor.T.astype(np.float64) @ categories.T) / categories.sum(axis=1)
    np.testing.assert_allclose(sums.category_ei, weights @ per_example, rtol=1e-6)


def test_category_counts_in_slices_of_examples_give_the_same_bits(monkeypatch):
    """The per-example category counts are made in slices of examples (no float32 copy of
    a whole block): slices of 7 examples against one slice, and against the (N, K)
    product written out."""
    import zoolens.study.pairblocks as pairblocks

    correct, layout, ens, categories = _zoo(seed=2)
    whole, _ = _run(correct, layout, ens, categories, block=5)
    monkeypatch.setattr(pairblocks, "_CATEGORY_ROWS", 7)
    sliced, _ = _run(correct, layout, ens, categories, block=5)
    np.testing.assert_array_equal(sliced.sums.category_ei, whole.sums.category_ei)
    xor = correct[layout.a] ^ correct[layout.b]
    got = pairblocks._category_counts(np.ascontiguousarray(xor.T), categories)
    np.testing.assert_array_equal(got, xor.T.astype(np.int64) @ categories.T.astype(np.int64))


def test_blocks_and_threads_give_the_same_bits():
    correct, layout, ens, categories = _zoo(seed=4)
    whole, _ = _run(correct, layout, ens, categories, block=10_000)
    with ThreadPoolExecutor(2) as pool:
        parts, _ = _run(correct, layout, ens, categories, block=2, parallel_map=pool.map)
    for column in INTERVAL_COLUMNS:
        np.testing.assert_array_equal(parts.intervals[column], whole.intervals[column], column)
    for name in ResampledSums.__dataclass_fields__:
        np.testing.assert_array_equal(getattr(parts.sums, name), getattr(whole.sums, name), name)


def test_blocks_run_by_a_task_runner_give_the_same_bits():
    """``run_blocks(task, ctx, bounds)`` (Ray's runner in ``--ray``): each block a pure
    function of the pickled context, yielded in block order."""
    import pickle

    correct, layout, ens, categories = _zoo(seed=6)
    whole, _ = _run(correct, layout, ens, categories, block=10_000)
    resamples = Resamples(N, B, seed=SEED)
    seen = []

    def runner(task, ctx, bounds):
        ctx = pickle.loads(pickle.dumps(ctx))  # what a Ray worker receives
        for start, stop in bounds:
            seen.append((start, stop))
            yield task(ctx, start, stop)

    bounds = [(s, min(N, s + 37)) for s in range(0, N, 37)]
    tasks = pair_statistics(
        correct, layout, pack_columns(ens), resamples, categories, bounds, 4, run_blocks=runner
    )
    assert seen == [(s, min(15, s + 4)) for s in range(0, 15, 4)]
    for column in INTERVAL_COLUMNS:
        np.testing.assert_array_equal(tasks.intervals[column], whole.intervals[column], column)
    for name in ResampledSums.__dataclass_fields__:
        np.testing.assert_array_equal(getattr(tasks.sums, name), getattr(whole.sums, name), name)
    np.testing.assert_array_equal(tasks.counts.converted, whole.counts.converted)


def test_without_resamples_counts_remain_and_every_interval_is_nan():
    correct, layout, ens, categories = _zoo(seed=1)
    result, _ = _run(correct, layout, ens, categories, n_bootstrap=0)
    for column in INTERVAL_COLUMNS:
        assert np.isnan(result.intervals[column]).all(), column
    s = layout.scored
    counts = ensemble_counts(correct[layout.a[s]], correct[layout.b[s]], ens)
    np.testing.assert_array_equal(result.counts.converted, counts.converted)
    assert result.sums.error_inconsistency.shape == (0, len(layout.a))
    assert result.sums.category_ei.shape == (0, 2)


def test_no_scored_pair_and_no_categories():
    correct, layout, _, _ = _zoo(seed=2)
    layout = PairLayout(
        a=layout.a, b=layout.b, scored=np.zeros(0, np.int64), best=layout.best, base=-1
    )
    result, _ = _run(correct, layout, None, None)
    assert result.counts is None
    assert result.sums.ensemble_acc.shape == (B, 0) and result.sums.category_ei.shape == (B, 0)
    assert np.isfinite(result.intervals["error_inconsistency_lo"]).all()
    assert np.isnan(result.intervals["ensemble_acc_lo"]).all()


def test_resampled_sums_are_read_only():
    correct, layout, ens, categories = _zoo()
    result, _ = _run(correct, layout, ens, categories, n_bootstrap=20)
    for name in ResampledSums.__dataclass_fields__:
        with pytest.raises(ValueError, match="read-only"):
            getattr(result.sums, name)[0] = 0


@pytest.mark.parametrize("start,stop", [(0, 8), (3, 11), (5, 6), (0, 21), (9, 21), (16, 16)])
def test_pack_and_unpack_columns_round_trip_at_any_offset(start, stop):
    values = np.random.default_rng(start).random((21, 13)) < 0.5  # (K, n)
    bits = pack_columns(values)
    assert bits.shape == (13, 3) and bits.dtype == np.uint8 and bits.flags.c_contiguous
    # the layout is numpy's packbits along K (big bit order), transposed
    np.testing.assert_array_equal(bits, np.packbits(values, axis=0).T)
    np.testing.assert_array_equal(unpack_columns(bits, start, stop), values[start:stop].T)


def test_sum_dtype_and_block_size():
    assert sum_dtype(65_535) is np.uint16 and sum_dtype(65_536) is np.uint32
    size = pair_block_size(10_000, 1000, 4 << 30)
    assert size % 64 == 0 and size > 0
    per_pair = 12 * 10_000 + 8 * 12 * 1000
    assert size * per_pair <= (4 << 30) // 4 < (size + 64) * per_pair
    assert pair_block_size(10**9, 1000, 1) == 64  # never below one aligned block


def test_resampled_sums_takes_a_transposed_row_major_block():
    """The int8 product on a (n, K) row-major block's transpose (the layout of a block of
    pairs) equals the float32 product on a (K, n) copy."""
    rng = np.random.default_rng(0)
    weights = bootstrap_weights(500, 50, 1)
    from zoolens.measure.stats import int8_weights

    small = int8_weights(weights)
    block = rng.random((500, 7)) < 0.3  # (n, K) row-major
    expected = weights.astype(np.float64) @ block.astype(np.float64)
    for values in (block.T, np.ascontiguousarray(block.T)):
        got = resampled_sums(weights, values, small)
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, expected)
