"""Exact top-k pruned all-pair ensembles equal the full-row computation, always.

Oracle: ``measure.ensemble.all_pair_ensemble_correct`` (full rows, argmax per pair) and a
plain per-pair loop written here; inputs built to hit every tier and every edge of the
bounds: exact ties, 1-ulp near-ties, k = 1, k >= C, duplicated models, NaN and inf rows,
class counts with and without a block tail.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import shared_path
from zoolens.errors import ZoolensError
from zoolens.measure import topk
from zoolens.measure.ensemble import all_pair_ensemble_correct, pair_index
from zoolens.measure.topk import (
    PruneStats,
    all_pair_ensemble_correct_topk,
    all_pair_ensemble_predictions_topk,
)


def loop_reference(x: np.ndarray, weight: float) -> np.ndarray:
    """Plain per-pair loop: w*x_a + (1-w)*x_b in the inputs' dtype, numpy argmax."""
    dtype = x.dtype
    w, v = dtype.type(weight), dtype.type(1.0 - weight)
    a_idx, b_idx = np.triu_indices(x.shape[0], 1)
    return np.stack([(w * x[a] + v * x[b]).argmax(axis=-1) for a, b in zip(a_idx, b_idx)])


def check_equal(x: np.ndarray, weight: float = 0.5, k: int = topk.DEFAULT_K) -> PruneStats:
    stats = PruneStats()
    fast = all_pair_ensemble_predictions_topk(x, k=k, weight=weight, stats=stats)
    full = all_pair_ensemble_correct(
        x, np.zeros(x.shape[1], dtype=np.int64), weight, return_predictions=True
    )
    np.testing.assert_array_equal(fast, full)
    np.testing.assert_array_equal(fast, loop_reference(x, weight))
    return stats


def peaked(
    rng: np.random.Generator, m: int, n: int, c: int, sharpness: float = 3.0, dtype=np.float32
) -> np.ndarray:
    """Softmax rows with a clear winner most of the time (like calibrated classifiers)."""
    z = rng.standard_normal((m, n, c)) * sharpness
    z[:, np.arange(n), rng.integers(0, c, n)] += 2 * sharpness
    z -= z.max(axis=-1, keepdims=True)
    q = np.exp(z)
    return (q / q.sum(axis=-1, keepdims=True)).astype(dtype)


@st.composite
def inputs(draw):
    m = draw(st.integers(2, 5))
    n = draw(st.integers(1, 12))
    c = draw(st.sampled_from([1, 2, 3, 7, 10, 63, 64, 65, 100, 130]))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    kind = draw(st.sampled_from(["discrete", "peaked", "uniform", "ulp"]))
    if kind == "discrete":  # few distinct values: exact ties everywhere, incl. at the bound
        levels = np.array(
            draw(
                st.lists(st.sampled_from([0.0, 0.125, 0.25, 0.5, 1.0, 3.0]), min_size=1, max_size=4)
            ),
            dtype=dtype,
        )
        x = levels[rng.integers(0, len(levels), (m, n, c))]
    elif kind == "peaked":
        x = peaked(rng, m, n, c, sharpness=draw(st.sampled_from([0.5, 2.0, 6.0])), dtype=dtype)
    elif kind == "uniform":
        x = rng.random((m, n, c)).astype(dtype)
    else:  # values within a few ulps of each other: near-ties the rounding decides
        base = dtype(draw(st.sampled_from([0.1, 0.3, 1.0 / 3.0, 0.7])))
        steps = rng.integers(-2, 3, (m, n, c))
        x = np.empty((m, n, c), dtype=dtype)
        for s in range(-2, 3):
            value = base
            for _ in range(abs(s)):
                value = np.nextafter(value, dtype(np.inf if s > 0 else -np.inf))
            x[steps == s] = value
    weight = draw(st.sampled_from([0.5, 0.0, 1.0, 0.3, 0.7, 1.0 / 3.0]))
    k = draw(st.sampled_from([1, 2, 3, 8, c - 1 if c > 1 else 1, c, c + 5]))
    duplicate = draw(st.booleans())
    if duplicate and m > 2:  # a model twice: every pair with itself ties on every class
        x[1] = x[0]
    return x, weight, max(1, k)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inputs())
def test_equals_full_computation_on_random_inputs(case):
    x, weight, k = case
    check_equal(x, weight, k)


@pytest.mark.parametrize("c", [10, 64, 100, 1000, 1003])
@pytest.mark.parametrize("k", [1, 2, 8])
def test_realistic_peaked_rows_are_pruned_and_exact(c, k):
    rng = np.random.default_rng(c + k)
    x = peaked(rng, 6, 200, c)
    stats = check_equal(x, k=k)
    # The point of the kernel: the bounds decide nearly everything without the full rows.
    assert stats.tier1_open_rate < 0.5
    if k >= 8:
        assert stats.fallback_rate < 0.05


def test_every_tier_is_exercised_and_exact():
    rng = np.random.default_rng(1)
    x = peaked(rng, 8, 300, 200, sharpness=0.7)  # flat rows: tier 1 leaves many open
    stats = check_equal(x, k=4)
    assert stats.tier1_open > 0
    assert stats.fallbacks > 0 or stats.tier1_open > stats.fallbacks


def test_ulp_near_tie_between_the_two_tops():
    # Model a prefers class 3, model b class 5; their ensemble scores differ by one ulp,
    # in both directions, and tie exactly in a third case.
    c = 100
    for delta in (-1, 0, 1):
        x = np.full((2, 1, c), 1e-4, dtype=np.float32)
        top = np.float32(0.4)
        other = top
        for _ in range(abs(delta)):
            other = np.nextafter(other, np.float32(np.inf if delta > 0 else -np.inf))
        x[0, 0, 3], x[0, 0, 5] = top, np.float32(0.3)
        x[1, 0, 5], x[1, 0, 3] = other, np.float32(0.3)
        check_equal(x, k=1)
        check_equal(x, k=4)


def test_outside_class_equal_to_the_bound_is_not_missed():
    # Class 0 is outside both top-1 lists but ties the best union score exactly: the full
    # argmax is class 0 (lowest index), so the kernel must fall back, not answer 7 or 9.
    c = 80
    x = np.zeros((2, 1, c), dtype=np.float32)
    x[0, 0, 7], x[0, 0, 0] = 0.5, 0.25
    x[1, 0, 9], x[1, 0, 0] = 0.5, 0.25
    # ensemble: class 7 -> 0.25, class 9 -> 0.25, class 0 -> 0.25: argmax 0
    check_equal(x, k=1)
    assert all_pair_ensemble_predictions_topk(x, k=1)[0, 0] == 0


@pytest.mark.parametrize("num_classes", [64, 70, 1000, 1003])
def test_top1_and_second_finds_every_row_holding_a_nan(num_classes):
    """The per-row NaN flag of the block-maxima search (read off the maximum it finds)
    equals np.isnan(row).any() wherever the NaNs sit: in a block's stripe, in a tail class,
    several per row, beside +-inf."""
    from zoolens.measure.topk import _top1_and_second

    rng = np.random.default_rng(num_classes)
    x = rng.random((3, 400, num_classes)).astype(np.float32)
    rows = rng.integers(0, 400, (3, 60))
    for m in range(3):
        x[m, rows[m], rng.integers(0, num_classes, 60)] = np.nan
    x[0, 5, num_classes - 1] = np.nan  # the last class (a tail class when C % 8)
    x[1, 6, :] = np.nan
    x[2, 7, [0, num_classes - 1]] = [np.inf, np.nan]
    x[2, 8, :] = -np.inf
    top, best, second, has_nan, _ = _top1_and_second(x)
    np.testing.assert_array_equal(has_nan, np.isnan(x).any(axis=-1))
    clean = ~has_nan
    np.testing.assert_array_equal(best[clean], x.max(axis=-1)[clean])


def test_nan_and_inf_rows_follow_numpy_argmax():
    rng = np.random.default_rng(2)
    x = peaked(rng, 4, 20, 70)
    x[1, 3, 40] = np.nan
    x[2, 5, :] = np.nan
    x[0, 7, 11] = np.inf
    x[3, 7, 12] = -np.inf
    x[2, 9, :] = -np.inf
    check_equal(x, k=1)
    check_equal(x, k=5)


def test_sub_chunks_give_the_same_answer(monkeypatch):
    rng = np.random.default_rng(3)
    x = peaked(rng, 5, 100, 130, sharpness=1.0)
    whole = all_pair_ensemble_predictions_topk(x)
    monkeypatch.setattr(topk, "_SUBCHUNK_BYTES", 1)  # 8 examples per sub-chunk
    np.testing.assert_array_equal(all_pair_ensemble_predictions_topk(x), whole)
    check_equal(x)


def test_predictions_into_a_given_array(monkeypatch):
    """``out=``: the caller's (P, n) int64 array receives the same predictions (reused
    chunk after chunk by the evaluation pass); a wrong shape or dtype is refused."""
    rng = np.random.default_rng(8)
    x = peaked(rng, 5, 100, 130, sharpness=1.0)
    whole = all_pair_ensemble_predictions_topk(x)
    out = np.full((10, 100), -1, dtype=np.int64)
    assert all_pair_ensemble_predictions_topk(x, out=out) is out
    np.testing.assert_array_equal(out, whole)
    pairs = (np.array([4, 0]), np.array([1, 3]))
    listed = np.empty((2, 100), dtype=np.int64)
    all_pair_ensemble_predictions_topk(x, pairs=pairs, out=listed)
    np.testing.assert_array_equal(listed, whole[[6, 2]])  # (1, 4), (0, 3) in triu order
    for bad in (np.empty((10, 99), np.int64), np.empty((10, 100), np.int32)):
        with pytest.raises(ZoolensError, match="out must be a \\(10, 100\\) int64"):
            all_pair_ensemble_predictions_topk(x, out=bad)


def test_correctness_output_single_and_multi_label():
    rng = np.random.default_rng(4)
    x = peaked(rng, 4, 50, 90, sharpness=1.0)
    labels = rng.integers(0, 90, 50)
    np.testing.assert_array_equal(
        all_pair_ensemble_correct_topk(x, labels), all_pair_ensemble_correct(x, labels)
    )
    multi = (rng.random((50, 90)) < 0.05).astype(np.uint8)
    np.testing.assert_array_equal(
        all_pair_ensemble_correct_topk(x, multi, 0.3), all_pair_ensemble_correct(x, multi, 0.3)
    )
    pred = all_pair_ensemble_correct_topk(x, labels, return_predictions=True)
    assert pred.shape == (len(pair_index(4)[0]), 50) and pred.dtype == np.int64


def test_real_cifar100_models_equal_full_computation():
    """Three real CIFAR-100 models (C = 100: strided blocks with a 4-class tail)."""
    folder = shared_path("cifar100-probs")
    names = [
        "densenet-bc-100-cifar-100.npz",
        "lenet-5-cifar-100.npz",
        "wideresnet-16-4-cifar-100.npz",
    ]
    probs = np.stack([np.load(folder / name)["predictions"] for name in names])
    labels = np.load(folder / names[0])["ground_truth"].astype(np.int64)
    stats = PruneStats()
    fast = all_pair_ensemble_correct_topk(probs, labels, stats=stats)
    np.testing.assert_array_equal(fast, all_pair_ensemble_correct(probs, labels))
    # Densenet + WRN ensemble beats either member (a fact about these models, not us).
    assert fast[1].mean() > 0.77
    assert stats.fallback_rate < 0.01


def test_real_cifar10_models_equal_full_computation():
    folder = shared_path("cifar10-probs")
    a = np.load(folder / "lenet-5-cifar-10.npz")
    b = np.load(folder / "wideresnet-16-4-cifar-10.npz")
    c = np.load(folder / "vgg16-keras-cifar-10.npz")
    probs = np.stack([a["predictions"], b["predictions"], c["probs"]])
    labels = a["ground_truth"].astype(np.int64)
    for weight in (0.5, 0.2):
        np.testing.assert_array_equal(
            all_pair_ensemble_correct_topk(probs, labels, weight),
            all_pair_ensemble_correct(probs, labels, weight),
        )


@pytest.mark.parametrize(
    "bad", [dict(weight=1.5), dict(weight=-0.1), dict(k=0), dict(weight=np.array([0.5, 0.5]))]
)
def test_bad_arguments_raise_zoolens_error(bad):
    x = np.random.default_rng(0).random((3, 4, 5)).astype(np.float32)
    with pytest.raises(ZoolensError):
        all_pair_ensemble_predictions_topk(x, **bad)


def test_bad_shape_raises_zoolens_error():
    with pytest.raises(ZoolensError, match="models, examples, classes"):
        all_pair_ensemble_predictions_topk(np.zeros((3, 4)))


def test_one_model_or_no_examples_give_empty_results():
    assert all_pair_ensemble_predictions_topk(np.zeros((1, 5, 4))).shape == (0, 5)
    assert all_pair_ensemble_predictions_topk(np.zeros((3, 0, 4))).shape == (3, 0)


# ------------------------------------------------------------------ the shared kernel


@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, 2**32 - 1),
    st.integers(1, 4),
    st.integers(1, 4),
    st.sampled_from([None, 0.5, 0.3]),
)
def test_decide_from_lists_is_the_argmax_wherever_it_claims_proof(seed, k_a, k_b, weight):
    """The one pruning kernel of pairs and greedy: with each side's k largest classes and its
    (k+1)-th value as bound, a proven entry's prediction is the full argmax of
    w·x_a + v·x_b (or x_a + x_b), lowest class on ties; coarse values force ties."""
    rng = np.random.default_rng(seed)
    e, c = 40, 9
    x_a = (rng.integers(0, 5, (e, c)) / 4).astype(np.float32)
    x_b = (rng.integers(0, 5, (e, c)) / 4).astype(np.float32)
    weights = None if weight is None else (np.float32(weight), np.float32(1 - weight))
    full = (x_a + x_b) if weights is None else weights[0] * x_a + weights[1] * x_b
    rows = np.arange(e)[:, None]

    def side(x, k):
        order = np.argsort(-x, axis=1, kind="stable")
        return order[:, :k], x[rows, order[:, :k]], x[np.arange(e), order[:, k]]

    idx_a, val_a, bound_a = side(x_a, k_a)
    idx_b, val_b, bound_b = side(x_b, k_b)
    pred, proven = topk.decide_from_lists(
        idx_a, val_a, bound_a, x_b[rows, idx_a], idx_b, val_b, bound_b, x_a[rows, idx_b], c, weights
    )
    np.testing.assert_array_equal(pred[proven], full.argmax(axis=1)[proven])
    # Unproven only where some class outside the lists could reach the best union score.
    best = np.maximum((full[rows, idx_a]).max(1), (full[rows, idx_b]).max(1))
    bound = (bound_a + bound_b) if weights is None else weights[0] * bound_a + weights[1] * bound_b
    np.testing.assert_array_equal(proven, best > bound)


def test_decide_from_lists_leaves_nan_unproven():
    x = np.array([[np.nan, 0.2, 0.1]], dtype=np.float32)
    y = np.array([[0.5, 0.3, 0.2]], dtype=np.float32)
    top, best, second = topk.top1_and_second(x)
    pred, proven = topk.decide_from_lists(
        top[:, None],
        best[:, None],
        second,
        y[[0], top][:, None],
        np.array([[0]]),
        y[:, :1],
        np.float32([0.3]),
        x[:, :1],
        3,
    )
    assert not proven.any()


@settings(max_examples=150, deadline=None)
@given(
    st.integers(0, 2**32 - 1),
    st.integers(1, 8),
    st.integers(1, 3),
    st.sampled_from([None, 0.5, 0.3]),
    st.sampled_from([9, 64, 130]),
    st.booleans(),
)
def test_settle_open_equals_the_full_rows(seed, k_a, k_b, weight, c, with_nan):
    """The one engine behind both second tiers (pair ensembles: top-k on both sides; greedy:
    S's top-L against a candidate's top-1): every prediction is the full rows' argmax, and
    exactly the entries the bounds leave open are computed from full rows. Coarse values
    force ties with the bounds; a NaN forces the fallback."""
    rng = np.random.default_rng(seed)
    e = 50
    x = (rng.integers(0, 5, (2, e, c)) / 4).astype(np.float32)
    if with_nan:
        x[0, rng.integers(0, e, 3), rng.integers(0, c, 3)] = np.nan
    weights = None if weight is None else (np.float32(weight), np.float32(1 - weight))

    def combined(entries):
        if weights is None:
            return x[0, entries] + x[1, entries]
        return weights[0] * x[0, entries] + weights[1] * x[1, entries]

    rows = np.arange(e)
    block_max = topk._block_max(x) if c >= 64 else None
    idx, val, bound = {}, {}, {}
    for side, k in ((0, k_a), (1, k_b)):
        bm = None if block_max is None else block_max[side]
        idx[side], val[side], bound[side] = topk.row_top_k(x[side], bm, (rows,), k)
    asked: list[np.ndarray] = []

    def full_rows(entries):
        asked.append(entries)
        return combined(entries)

    pred, fell = topk.settle_open(
        (idx[0], val[0], bound[0]),
        x[1, rows[:, None], idx[0]],
        (idx[1], val[1], bound[1]),
        x[0, rows[:, None], idx[1]],
        c,
        weights,
        full_rows,
    )
    np.testing.assert_array_equal(pred, combined(rows).argmax(axis=1))
    np.testing.assert_array_equal(np.sort(np.concatenate(asked or [fell[:0]])), fell)
    _, proven = topk.decide_from_lists(
        idx[0], val[0], bound[0], x[1, rows[:, None], idx[0]],
        idx[1], val[1], bound[1], x[0, rows[:, None], idx[1]], c, weights,
    )  # fmt: skip
    np.testing.assert_array_equal(fell, np.flatnonzero(~proven))
    if with_nan:
        assert len(fell) > 0


def test_sub_chunks_on_a_thread_pool_give_the_same_predictions_and_statistics(monkeypatch):
    """parallel_map runs the sub-chunks side by side: identical output and PruneStats."""
    from concurrent.futures import ThreadPoolExecutor

    monkeypatch.setattr(topk, "_SUBCHUNK_BYTES", 4096)  # many sub-chunks
    rng = np.random.default_rng(5)
    x = rng.dirichlet(np.full(30, 0.3), size=(6, 500)).astype(np.float32)
    x[:, ::7] = np.round(x[:, ::7] * 4) / 4  # ties: every tier runs
    alone, threaded, whole = PruneStats(), PruneStats(), PruneStats()
    want = all_pair_ensemble_predictions_topk(x, stats=alone)
    with ThreadPoolExecutor(2) as pool:
        got = all_pair_ensemble_predictions_topk(x, stats=threaded, parallel_map=pool.map)
    np.testing.assert_array_equal(got, want)
    assert len(alone.per_chunk) > 10
    # The merged counts against one sub-chunk holding every example (no merge at all).
    monkeypatch.setattr(topk, "_SUBCHUNK_BYTES", 2**40)
    np.testing.assert_array_equal(all_pair_ensemble_predictions_topk(x, stats=whole), want)
    assert len(whole.per_chunk) == 1 and whole.tier1_open > 0
    assert (threaded.entries, threaded.tier1_open, threaded.fallbacks) == (
        whole.entries,
        whole.tier1_open,
        whole.fallbacks,
    )
    assert (threaded.entries, threaded.tier1_open, threaded.fallbacks, threaded.per_chunk) == (
        alone.entries,
        alone.tier1_open,
        alone.fallbacks,
        alone.per_chunk,
    )
    full_rows = all_pair_ensemble_correct(x, np.zeros(500, int), return_predictions=True)
    np.testing.assert_array_equal(got, full_rows)
