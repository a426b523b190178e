"""Uncertainty: bootstrap confidence intervals over examples, McNemar and paired bootstrap tests.

The bootstrap resamples *examples* (Efron 1979): resample b draws n examples with
replacement, which is the same as giving example i the weight ``W[b, i]`` = how many times
it was drawn (a multinomial count row, summing to n). The resampled mean of a per-example
statistic x is then ``(W @ x) / n``; for many statistics at once (columns = models or pairs)
it is one (B, n) x (n, K) matrix product, chunked over columns to bound memory. Using the
same W for every column keeps comparisons between columns paired. Intervals are percentile
intervals. Fixed seed, 1,000 resamples by default, so a claim such as "the ensemble is
better" comes with an interval and a p-value.
"""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike
from scipy import stats as _st

from zoolens.errors import ZoolensError, optional_torch

__all__ = [
    "bootstrap_weights",
    "bootstrap_means",
    "resampled_sums",
    "int8_weights",
    "bootstrap_ci",
    "bootstrap_ratio_ci",
    "percentile_interval",
    "average_ranks",
    "spearman_rows",
    "McNemarResult",
    "mcnemar_test",
    "mcnemar_p_values",
    "holm_adjusted",
    "bh_q_values",
    "PairedBootstrapResult",
    "paired_bootstrap_test",
    "AdjustedMeans",
    "accuracy_adjusted_means",
]

_COLUMN_BYTES = 64 * 2**20


def bootstrap_weights(
    n: int, n_resamples: int = 1000, seed: int = 0, dtype: DTypeLike = np.float32
) -> np.ndarray:
    """(B, n) multinomial count matrix: ``W[b, i]`` = times example i is drawn in resample b.

    Resample b draws n indices uniformly with replacement (``numpy.random.default_rng(seed)``,
    row by row in blocks), so each row sums to n. float32 is exact for counts and makes the
    products fast.
    """
    if n <= 0:
        raise ZoolensError("bootstrap needs at least one example")
    if n_resamples <= 0:
        raise ZoolensError(f"n_resamples must be positive, got {n_resamples}")
    rng = np.random.default_rng(seed)
    out = np.empty((n_resamples, n), dtype=dtype)
    block = max(1, (32 * 2**20) // (8 * n))
    for lo in range(0, n_resamples, block):
        hi = min(n_resamples, lo + block)
        draws = rng.integers(0, n, size=(hi - lo, n))
        flat = (np.arange(hi - lo)[:, None] * n + draws).ravel()
        out[lo:hi] = np.bincount(flat, minlength=(hi - lo) * n).reshape(hi - lo, n)
    return out


def int8_weights(weights: np.ndarray) -> np.ndarray | None:
    """``weights`` as int8 for :func:`resampled_sums`' integer product, or None where that
    product does not apply: torch is not installed, its int8 product fails the check below,
    or a weight is not a whole number in [0, 127] (a multinomial count of n draws reaches
    128 with probability below 1e-200 per entry, but the bound is checked, not assumed)."""
    if not _int8_product_works():
        return None
    w = np.asarray(weights)
    if w.size and (w.min() < 0 or w.max() > 127 or not np.array_equal(w, np.floor(w))):
        return None
    return w.astype(np.int8)


def resampled_sums(
    weights: np.ndarray, values: np.ndarray, weights_int8: np.ndarray | None = None
) -> np.ndarray:
    """(B, K) float32 resampled sums ``Σ_n W[b, n]·x_k[n]``: ``weights @ values.T``.

    ``weights``: (B, n) float32 counts (:func:`bootstrap_weights`, or some of its columns);
    ``values``: (K, n), or the transpose of a row-major (n, K) block (taken without a
    copy). Counts times 0/1 (or ±1, ½) values: every product and partial sum is a whole
    number (or a half) below 2**24 while n < 2**24, so the float32 product is exact.

    With boolean ``values`` and ``weights_int8`` (:func:`int8_weights` of ``weights``), the
    product is torch's int8 matrix product with int32 accumulation — exact integer
    arithmetic, so the same numbers bit for bit — on oneDNN's VNNI / AMX kernels where the CPU
    has them (about 5x float32 BLAS on an AMX CPU). Fewer than 16 examples go to float32:
    torch 2.14's int8 product returns wrong sums when the inner dimension is 1.

    Examples:
        >>> w = np.array([[2, 0, 1], [1, 1, 1]], dtype=np.float32)
        >>> x = np.array([[True, False, True], [False, True, True]])
        >>> resampled_sums(w, x).tolist()
        [[3.0, 1.0], [2.0, 2.0]]
    """
    values = np.asarray(values)
    if values.ndim == 1:
        values = values[None, :]
    n = values.shape[1]
    if (
        weights_int8 is not None
        and values.dtype == np.bool_
        and n >= _INT8_MIN_EXAMPLES
        and _int8_product_works()  # here: the int8 copy may come from another machine (Ray)
    ):
        torch = optional_torch()
        w = torch.from_numpy(np.ascontiguousarray(weights_int8))
        if values.T.flags.c_contiguous:  # (n, K) row-major already: a block of columns
            x_t = torch.from_numpy(values.T.view(np.int8))
        else:
            # x.T (a column-major view) is the layout oneDNN's fast path takes without a
            # copy; row-major (n, K) runs as fast (measured, 2026-12-07).
            x_t = torch.from_numpy(np.ascontiguousarray(values).view(np.int8)).T
        return torch._int_mm(w, x_t).numpy().astype(np.float32)
    return np.asarray(weights, dtype=np.float32) @ values.astype(np.float32).T


_INT8_MIN_EXAMPLES = 16


@functools.cache
def _int8_product_works() -> bool:
    """torch's int8 matrix product (a private op, ``torch._int_mm``) exists here and gives
    the exact integer product on a small case in the layout :func:`resampled_sums` uses."""
    torch = optional_torch()
    if torch is None or not hasattr(torch, "_int_mm"):
        return False
    rng = np.random.default_rng(0)
    w = rng.integers(0, 128, size=(33, 40)).astype(np.int8)
    x = rng.random((37, 40)) < 0.5
    try:
        got = torch._int_mm(torch.from_numpy(w), torch.from_numpy(x.view(np.int8)).T).numpy()
    except Exception:  # noqa: BLE001 - any failure means: use float32
        return False
    return bool(np.array_equal(got, w.astype(np.int64) @ x.astype(np.int64).T))


def bootstrap_means(
    values: np.ndarray, weights: np.ndarray | None = None, *, n_resamples: int = 1000, seed: int = 0
) -> np.ndarray:
    """Resampled means of per-example statistics: (B,) for (n,) values, (B, K) for (n, K).

    ``mean_b[k] = Σ_i W[b, i]·x[i, k] / n`` with W from :func:`bootstrap_weights` (or given,
    to share resamples across calls). Computed in float64 column chunks of bounded memory.
    """
    x = np.asarray(values)
    vector = x.ndim == 1
    x2 = x[:, None] if vector else x
    if x2.ndim != 2:
        raise ZoolensError(
            f"bootstrap values must be (examples,) or (examples, columns), got {x.shape}"
        )
    n = x2.shape[0]
    w = bootstrap_weights(n, n_resamples, seed) if weights is None else np.asarray(weights)
    if w.shape[1] != n:
        raise ZoolensError(f"bootstrap weights cover {w.shape[1]} examples, values {n}")
    wf = w.astype(np.float64, copy=False)
    out = np.empty((w.shape[0], x2.shape[1]), dtype=np.float64)
    step = max(1, _COLUMN_BYTES // (8 * n))
    for lo in range(0, x2.shape[1], step):
        out[:, lo : lo + step] = wf @ x2[:, lo : lo + step].astype(np.float64) / n
    return out[:, 0] if vector else out


def percentile_interval(
    samples: np.ndarray, confidence: float = 0.95, *, skip_nan: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval of resampled statistics (Efron & Tibshirani 1993, ch. 13).

    ``samples`` (B,) or (B, K): B resampled values of each statistic (axis 0). Returns
    ``(lo, hi)``, the ``(1 − confidence)/2`` and ``1 − (1 − confidence)/2`` quantiles along
    axis 0 (numpy's linear interpolation): scalars for (B,) input, (K,) arrays otherwise.
    ``skip_nan=True`` (``numpy.nanquantile``) leaves undefined (NaN) resamples out, e.g. a
    ratio whose resampled denominator is 0, and gives NaN for an all-NaN column without a
    warning; ``skip_nan=False`` (``numpy.quantile``) gives NaN for any column holding a NaN.
    """
    if not 0 < confidence < 1:
        raise ZoolensError(f"confidence must lie in (0, 1), got {confidence}")
    tail = (1.0 - confidence) / 2
    lo, hi = _column_quantiles(np.asarray(samples), [tail, 1 - tail], skip_nan)
    return lo, hi


# Columns per block of _column_quantiles: about this many values sorted at a time.
_QUANTILE_BLOCK_VALUES = 2**22


def _column_quantiles(samples: np.ndarray, q: list[float], skip_nan: bool) -> np.ndarray:
    """``numpy.quantile(samples, q, axis=0)`` (``nanquantile`` with ``skip_nan``), bit for
    bit, about 3x faster, and for ``nanquantile`` without its Python loop over columns
    (~30 µs a column: 15 s for the 499,500 pairs of 1,000 models).

    numpy's own quantile runs on each block of columns sorted first (partitioning sorted
    columns is quick), so the interpolation is numpy's arithmetic. The block is sorted
    transposed, each column's values contiguous: numpy's SIMD sort takes contiguous rows
    (2x the strided sort of axis 0, measured at 1,000 x 4,096). A sort and a partition
    may pick different zeros (-0.0 and 0.0 compare equal), and only a zero result can
    show it: those columns are computed again as numpy does. With ``skip_nan``, the columns
    holding a NaN take ``nanquantile`` itself.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns give NaN
        reference = np.nanquantile if skip_nan else np.quantile
        if samples.ndim != 2 or not samples.size or samples.dtype != np.float64:
            return reference(samples, q, axis=0)
        out = np.empty((len(q), samples.shape[1]), dtype=samples.dtype)
        step = max(1, _QUANTILE_BLOCK_VALUES // samples.shape[0])
        for lo in range(0, samples.shape[1], step):
            block = samples[:, lo : lo + step]
            target = out[:, lo : lo + step]
            ordered = np.ascontiguousarray(block.T)
            ordered.sort(axis=1)
            target[...] = np.quantile(ordered, q, axis=1, overwrite_input=True)
            again = (target == 0).any(axis=0)
            if skip_nan:
                again |= np.isnan(block).any(axis=0)
            if again.any():
                target[:, again] = reference(block[:, again], q, axis=0)
    return out


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of a finite 1-D array, ties sharing their average rank: exactly
    ``scipy.stats.rankdata(values)`` (method "average"), which Spearman's rho correlates.

    Ties are found on the sorted values (one argsort); a group holding sorted positions
    i..j-1 (0-based) gets (i + 1 + j) / 2, a half-integer exact in float64.

    Integer values spanning at most a few times their count (resampled sums of 0/1 values
    lie in [0, N]) are ranked by counting instead: ``np.bincount`` gives each value's group
    size, its cumulative sum each group's end j, the same (i + 1 + j) / 2 — the same
    numbers, about ten times faster than the sort at 500,000 values.
    """
    values = np.asarray(values)
    n = values.shape[0]
    if np.issubdtype(values.dtype, np.integer) and n:
        low, high = int(values.min()), int(values.max())
        if high - low < 4 * n + 1024:
            shifted = (values - low).astype(np.intp)
            sizes = np.bincount(shifted, minlength=high - low + 1)
            ends = np.cumsum(sizes)
            return ((ends - sizes + 1 + ends) * 0.5)[shifted]
    order = np.argsort(values)
    ordered = values[order]
    starts_group = np.empty(n, dtype=bool)
    starts_group[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=starts_group[1:])
    starts = np.flatnonzero(starts_group)
    ends = np.append(starts[1:], n)
    ranks = np.empty(n)
    ranks[order] = ((starts + 1 + ends) * 0.5)[np.cumsum(starts_group) - 1]
    return ranks


def spearman_rows(x: np.ndarray, y: np.ndarray, parallel_map: Any = map) -> np.ndarray:
    """(B,) Spearman's rho between rows ``x[b]`` and ``y[b]`` (finite (B, P) arrays; integer
    arrays are ranked by counting, :func:`average_ranks`): Pearson's r of their average
    ranks, ``Σ (rx − mean)(ry − mean) / sqrt(Σ (rx − mean)² ·
    Σ (ry − mean)²)``; NaN for a row where either is constant. Row by row (``parallel_map``
    may run rows side by side: sorting releases the GIL), so memory stays O(P)."""

    def rho(b: int) -> float:
        rx, ry = average_ranks(x[b]), average_ranks(y[b])
        rx -= rx.mean()
        ry -= ry.mean()
        with np.errstate(invalid="ignore", divide="ignore"):
            return float((rx * ry).sum() / np.sqrt((rx * rx).sum() * (ry * ry).sum()))

    return np.fromiter(parallel_map(rho, range(x.shape[0])), dtype=np.float64, count=x.shape[0])


def bootstrap_ci(
    values: np.ndarray,
    *,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
    weights: np.ndarray | None = None,
) -> tuple[Any, Any, Any]:
    """Percentile bootstrap interval of the mean of per-example statistics.

    ``values`` (n,) or (n, K) per-example numbers (e.g. 0/1 correctness, XOR of two models'
    correctness for error inconsistency, ensemble-right). Returns ``(estimate, lo, hi)``:
    the plain mean and the (1−confidence)/2 and (1+confidence)/2 quantiles (numpy's linear
    interpolation) of the resampled means. Scalars for (n,) input, (K,) arrays otherwise.

    Parameters
    ----------
    values : (n,) or (n, K) array
    confidence : float in (0, 1)
    n_resamples, seed : the example-resampling bootstrap
    weights : optional precomputed (n_resamples, n) resampling counts (:func:`bootstrap_weights`)

    Returns
    -------
    (estimate, lo, hi)

    Examples
    --------
    >>> right = np.array([1] * 80 + [0] * 20)
    >>> est, lo, hi = bootstrap_ci(right, n_resamples=2000, seed=0)
    >>> est, lo < 0.8 < hi, 0.05 < hi - lo < 0.25
    (0.8, True, True)
    """
    x = np.asarray(values, dtype=np.float64)
    means = bootstrap_means(x, weights, n_resamples=n_resamples, seed=seed)
    lo, hi = percentile_interval(means, confidence)
    est = x.mean(axis=0)
    if x.ndim == 1:
        return float(est), float(lo), float(hi)
    return est, lo, hi


def bootstrap_ratio_ci(
    numerator: np.ndarray,
    denominator: np.ndarray,
    *,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
    weights: np.ndarray | None = None,
) -> tuple[Any, Any, Any]:
    """Percentile interval of a conditional rate ``Σ num / Σ den`` (e.g. conversion rate:
    num = ensemble right AND exactly one right, den = exactly one right).

    Resample b gives ``Σ W[b]·num / Σ W[b]·den``; resamples where the denominator is 0 are
    left out of the quantiles. The estimate (and the interval) is NaN where the condition
    never occurs. Returns ``(estimate, lo, hi)`` like :func:`bootstrap_ci`.
    """
    num = np.asarray(numerator, dtype=np.float64)
    den = np.asarray(denominator, dtype=np.float64)
    if num.shape != den.shape:
        raise ZoolensError(f"numerator {num.shape} and denominator {den.shape} differ")
    w = bootstrap_weights(num.shape[0], n_resamples, seed) if weights is None else weights
    s_num = bootstrap_means(num, w)
    s_den = bootstrap_means(den, w)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(s_den > 0, s_num / s_den, np.nan)
        total = den.sum(axis=0)
        est = np.where(total > 0, num.sum(axis=0) / total, np.nan)
    lo, hi = percentile_interval(ratio, confidence)
    lo, hi = np.where(np.isnan(est), np.nan, lo), np.where(np.isnan(est), np.nan, hi)
    if num.ndim == 1:
        return float(est), float(lo), float(hi)
    return est, lo, hi


@dataclass(frozen=True)
class McNemarResult:
    """McNemar's test of two paired classifiers. ``only_a``: examples only a gets right;
    ``only_b``: only b; statistic: the chi-square statistic (or min(only_a, only_b) when
    mid-p); p_value two-sided; method "mid-p" or "chi2"."""

    only_a: int
    only_b: int
    statistic: float
    p_value: float
    method: str


def mcnemar_p_values(only_a: ArrayLike, only_b: ArrayLike, *, exact_below: int = 25) -> np.ndarray:
    """Two-sided McNemar p-values from discordant counts, vectorised over pairs.

    With d = only_a + only_b discordant examples and k = min(only_a, only_b): if d <
    ``exact_below``, the mid-p McNemar test ``p = 2·[BinomCDF(k; d, ½) − ½·BinomPMF(k; d, ½)]``
    (Fagerland, Lydersen & Laake 2013, BMC Med. Res. Methodol. 13:91: the exact conditional
    test, ``min(1, 2·BinomCDF(k; d, ½))``, is conservative at small d; its mid-p version
    holds the nominal level closely and is their recommendation); otherwise the chi-square
    test with continuity correction, ``χ² = max(|only_a − only_b| − 1, 0)² / d``,
    ``p = P(χ²₁ ≥ χ²)``. d = 0 gives 1, and so does only_a = only_b.
    """
    b = np.asarray(only_a, dtype=np.int64)
    c = np.asarray(only_b, dtype=np.int64)
    d = b + c
    k = np.minimum(b, c)
    with np.errstate(invalid="ignore", divide="ignore"):
        exact = np.minimum(1.0, 2.0 * _st.binom.cdf(k, d, 0.5) - _st.binom.pmf(k, d, 0.5))
        chi = np.maximum(np.abs(b - c) - 1, 0).astype(np.float64) ** 2 / d
        approx = _st.chi2.sf(chi, 1)
    p = np.where(d < exact_below, exact, approx)
    return np.where(d == 0, 1.0, p)


def mcnemar_test(
    correct_a: np.ndarray, correct_b: np.ndarray, *, exact_below: int = 25
) -> McNemarResult:
    """McNemar's test that two models, on the same examples, are equally accurate.

    Only the discordant examples matter: only_a = #(a right, b wrong), only_b = #(a wrong,
    b right); see :func:`mcnemar_p_values` for the mid-p / chi-square rule. Use it for "the
    ensemble is better than its best member".

    Parameters
    ----------
    correct_a, correct_b : (n,) bool arrays
        Per-example correctness of the two models on the same examples.
    exact_below : int
        Below this many discordant examples the mid-p binomial test is used.

    Returns
    -------
    McNemarResult (only_a, only_b, statistic, p_value, method).

    Examples
    --------
    >>> a = np.array([1] * 10 + [0] * 2 + [1] * 8, dtype=bool)
    >>> b = np.array([0] * 10 + [1] * 2 + [1] * 8, dtype=bool)
    >>> r = mcnemar_test(a, b)      # 10 vs 2 discordant: mid-p, (2·79 − 66) / 4096
    >>> r.only_a, r.only_b, r.method, round(r.p_value, 4)
    (10, 2, 'mid-p', 0.0225)
    """
    ra = np.asarray(correct_a, dtype=bool)
    rb = np.asarray(correct_b, dtype=bool)
    if ra.shape != rb.shape or ra.ndim != 1:
        raise ZoolensError(
            f"McNemar needs two (n,) correctness vectors, got {ra.shape} and {rb.shape}"
        )
    b = int(np.count_nonzero(ra & ~rb))
    c = int(np.count_nonzero(~ra & rb))
    p = float(mcnemar_p_values(b, c, exact_below=exact_below))
    if b + c < exact_below:
        return McNemarResult(b, c, float(min(b, c)), p, "mid-p")
    return McNemarResult(b, c, float(max(abs(b - c) - 1, 0) ** 2 / (b + c)), p, "chi2")


def _adjust_sorted(p_values: ArrayLike, adjust: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """``adjust`` applied to the finite p-values sorted ascending (stable), its result put
    back in the input's order and capped at 1; NaN entries stay NaN and are not counted."""
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1:
        raise ZoolensError(f"p-values must be a (K,) array, got shape {p.shape}")
    keep = np.isfinite(p)
    if ((p[keep] < 0) | (p[keep] > 1)).any():
        raise ZoolensError("p-values must lie in [0, 1]")
    out = np.full(p.shape, np.nan)
    finite = p[keep]
    if finite.size:
        order = np.argsort(finite, kind="stable")
        adjusted = np.empty(finite.size)
        adjusted[order] = np.minimum(1.0, adjust(finite[order]))
        out[keep] = adjusted
    return out


def holm_adjusted(p_values: ArrayLike) -> np.ndarray:
    """Holm's step-down adjusted p-values (Holm 1979), controlling the family-wise error.

    Over the m finite p-values sorted ascending, ``p̃_(i) = min(1, max_{j<=i} (m − j + 1)
    p_(j))`` (1-based i); a hypothesis is rejected at level α when ``p̃ <= α``. NaN entries
    (no test for that row) stay NaN and do not count in m. Equals statsmodels'
    ``multipletests(p, method="holm")[1]``.

    Parameters
    ----------
    p_values : (K,) array of float in [0, 1], NaN for rows without a test

    Returns
    -------
    (K,) float64 array of adjusted p-values, NaN where the input is NaN.

    Examples
    --------
    >>> holm_adjusted([0.01, 0.04, 0.03, np.nan]).tolist()
    [0.03, 0.06, 0.06, nan]
    """

    def step_down(p: np.ndarray) -> np.ndarray:
        return np.maximum.accumulate((p.size - np.arange(p.size)) * p)

    return _adjust_sorted(p_values, step_down)


def bh_q_values(p_values: ArrayLike) -> np.ndarray:
    """Benjamini-Hochberg q-values (Benjamini & Hochberg 1995), controlling the false
    discovery rate.

    Over the m finite p-values sorted ascending, ``q_(i) = min(1, min_{j>=i} m p_(j) / j)``;
    the hypotheses with ``q <= α`` are those the BH procedure rejects at FDR α. NaN entries
    stay NaN and do not count in m. Equals statsmodels' ``multipletests(p,
    method="fdr_bh")[1]``.

    Parameters
    ----------
    p_values : (K,) array of float in [0, 1], NaN for rows without a test

    Returns
    -------
    (K,) float64 array of q-values, NaN where the input is NaN.

    Examples
    --------
    >>> bh_q_values([0.01, 0.04, 0.03, np.nan]).tolist()
    [0.03, 0.04, 0.04, nan]
    """

    def step_up(p: np.ndarray) -> np.ndarray:
        return np.minimum.accumulate((p.size * p / np.arange(1, p.size + 1))[::-1])[::-1]

    return _adjust_sorted(p_values, step_up)


@dataclass(frozen=True)
class PairedBootstrapResult:
    """Paired bootstrap comparison of x against y: difference = mean(x) − mean(y) and its
    percentile interval [lo, hi]; p_value = one-sided p for "x is not better than y"."""

    difference: float
    lo: float
    hi: float
    p_value: float
    n_resamples: int


def paired_bootstrap_test(
    correct_x: np.ndarray,
    correct_y: np.ndarray,
    *,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
    weights: np.ndarray | None = None,
) -> PairedBootstrapResult:
    """Paired bootstrap test that x (e.g. an ensemble) is more accurate than y (its best member).

    Both are (n,) correctness on the same examples; each resample reweights the *same*
    examples for both (pairing). ``difference`` = mean(x) − mean(y); [lo, hi] its percentile
    interval; ``p_value = (1 + #{b: δ*_b <= 0}) / (B + 1)``, the one-sided bootstrap p-value
    of "x is not better" (Koehn 2004's paired bootstrap, with the +1 correction so that it is
    never 0).
    """
    x = np.asarray(correct_x, dtype=np.float64)
    y = np.asarray(correct_y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ZoolensError(f"paired bootstrap needs two (n,) vectors, got {x.shape} and {y.shape}")
    delta = bootstrap_means(x - y, weights, n_resamples=n_resamples, seed=seed)
    lo, hi = percentile_interval(delta, confidence)
    p = (1 + int(np.count_nonzero(delta <= 0))) / (len(delta) + 1)
    return PairedBootstrapResult(float(np.mean(x - y)), float(lo), float(hi), float(p), len(delta))


@dataclass(frozen=True)
class AdjustedMeans:
    """Category means of a pair statistic at one common accuracy (see
    :func:`accuracy_adjusted_means`)."""

    categories: list[str]
    mean: np.ndarray  # (K,) adjusted mean of each category at ``at_accuracy``
    lo: np.ndarray  # (K,) lower bound of the t interval (NaN: not identifiable)
    hi: np.ndarray
    n: np.ndarray  # (K,) pairs per category
    slope: float  # change of the statistic per unit of accuracy
    slope_lo: float
    slope_hi: float
    at_accuracy: float  # the common accuracy (mean over all pairs)
    dof: int  # residual degrees of freedom (0: no interval)
    # (K, K) covariance of ``mean`` (s² C (X'X)⁻¹ Cᵀ) and the t quantile of the intervals:
    # the interval of a difference of two categories is (m_i − m_j) ± t·sqrt(V_ii + V_jj −
    # 2 V_ij). NaN where there is no interval.
    mean_cov: np.ndarray | None = None
    t_quantile: float = float("nan")

    def difference_interval(self, i: int, j: int) -> tuple[float, float, float]:
        """``mean[j] − mean[i]`` with its t interval ``(difference, lo, hi)`` (NaN bounds
        without residual degrees of freedom)."""
        diff = float(self.mean[j] - self.mean[i])
        if self.mean_cov is None or not math.isfinite(self.t_quantile):
            return diff, float("nan"), float("nan")
        v = self.mean_cov
        half = self.t_quantile * math.sqrt(max(float(v[i, i] + v[j, j] - 2 * v[i, j]), 0.0))
        return diff, diff - half, diff + half


def accuracy_adjusted_means(
    values: ArrayLike, categories: Iterable[Any], accuracy: ArrayLike, *, confidence: float = 0.95
) -> AdjustedMeans:
    """Compare categories at matched accuracy: least squares of a pair statistic (e.g. error
    inconsistency with the base) on one indicator per category plus the other model's accuracy,
    ``y_i = beta_{cat(i)} + gamma * acc_i + e_i``.

    The paper's Fig. 1 plots error inconsistency against accuracy: raw category means mix the
    category's effect with how accurate its models are (a weak model disagrees more with the
    base whatever its training). ``mean[k] = beta_k + gamma * mean(acc)`` is category k's
    statistic at the zoo's mean accuracy; its interval is the classical OLS t interval
    (``x' Cov x`` with ``Cov = s^2 (X'X)^-1``, ``s^2`` the residual variance on ``n - K - 1``
    degrees of freedom). Non-finite rows are left out. With no residual degree of freedom the
    intervals are NaN (the means are still the exact fit).
    """
    y = np.asarray(values, dtype=np.float64)
    x = np.asarray(accuracy, dtype=np.float64)
    cats = np.asarray([str(c) for c in categories], dtype=object)
    keep = np.isfinite(y) & np.isfinite(x)
    y, x, cats = y[keep], x[keep], cats[keep]
    names = list(dict.fromkeys(cats.tolist()))
    k = len(names)
    if k == 0:
        raise ZoolensError("accuracy-adjusted means: no pair with a finite value and accuracy")
    design = np.zeros((len(y), k + 1))
    for j, name in enumerate(names):
        design[cats == name, j] = 1.0
    design[:, k] = x
    at = float(x.mean())
    coef, _, rank, _ = np.linalg.lstsq(design, y, rcond=None)
    counts = np.array([int(np.sum(cats == name)) for name in names])
    contrasts = np.hstack([np.eye(k), np.full((k, 1), at)])
    mean = contrasts @ coef
    dof = len(y) - (k + 1)
    nan = np.full(k, np.nan)
    if rank < k + 1 or dof <= 0:
        # the accuracy is constant within every category (or too few pairs): no interval
        slope = float(coef[k]) if rank == k + 1 else float("nan")
        return AdjustedMeans(
            names,
            mean if rank == k + 1 else nan,
            nan,
            nan,
            counts,
            slope,
            float("nan"),
            float("nan"),
            at,
            max(dof, 0),
        )
    residual = y - design @ coef
    s2 = float(residual @ residual) / dof
    cov = s2 * np.linalg.inv(design.T @ design)
    t = float(_st.t.ppf(0.5 + confidence / 2, dof))
    se = np.sqrt(np.einsum("ij,jk,ik->i", contrasts, cov, contrasts))
    slope_se = float(np.sqrt(cov[k, k]))
    return AdjustedMeans(
        names,
        mean,
        mean - t * se,
        mean + t * se,
        counts,
        float(coef[k]),
        float(coef[k] - t * slope_se),
        float(coef[k] + t * slope_se),
        at,
        dof,
        contrasts @ cov @ contrasts.T,
        t,
    )
