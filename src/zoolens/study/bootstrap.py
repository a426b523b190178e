"""Streaming example-resampling bootstrap of many means at once.

Every interval the study reports (a model's accuracy, a pair's error inconsistency, ensemble
accuracy and gain, a category's mean error inconsistency) is the mean over evaluation
examples of some per-example value x_n. Resampling examples with replacement gives, for
resample b, the mean ``Σ_n W[b, n] · x_n / N`` where ``W[b, n]`` is how often example n was
drawn (``measure.stats.bootstrap_weights``, drawn once from the seed, so every statistic
shares the same resamples and the paired test of an ensemble against its best member is
paired). The sums are matrix products ``S = W @ Xᵀ`` of the weights with a block of
statistics' values (over the whole split, or added chunk by chunk as ``W[:, chunk] @ Xᵀ``),
never a loop over pairs. The results equal
``stats.bootstrap_ci`` and ``stats.paired_bootstrap_test`` given the same weights (tested).

:class:`Resamples` holds the shared weights and turns sums into intervals (it stores
nothing); the sums themselves are taken by ``study.pairblocks`` and kept, read-only, in its
``ResampledSums``, so computing a summary twice cannot count anything twice.

Intervals are percentile intervals (2.5 % and 97.5 % quantiles of the B resampled means,
numpy's linear interpolation) — Efron & Tibshirani (1993), ch. 13.

Conditional rates (a pair's conversion rate, P(ensemble right | exactly one member right))
are ratios of two sums on the same resamples, ``Σ_n W[b, n]·num_n / Σ_n W[b, n]·den_n``
(:meth:`Resamples.ratio_interval`, the convention of ``measure.stats.bootstrap_ratio_ci``:
resamples whose denominator is 0 are left out).
"""

from __future__ import annotations

import functools
import numpy as np

from zoolens.measure.agreement import kappa_from_rates
from zoolens.measure.stats import (
    bootstrap_weights,
    int8_weights,
    percentile_interval,
    resampled_sums,
)


class Resamples:
    """The shared example resamples: ``counts`` (B, N) float32, how often each resample drew
    each example (None when ``n_bootstrap == 0``: every interval is then NaN)."""

    def __init__(self, num_examples: int, n_bootstrap: int, seed: int, level: float = 0.95) -> None:
        self.num_examples = int(num_examples)
        self.n_bootstrap = int(n_bootstrap)
        self.level = float(level)
        # The same resamples as measure.stats (bootstrap_weights), so every interval here
        # equals stats.bootstrap_ci / paired_bootstrap_test given these weights.
        self.counts = (
            bootstrap_weights(self.num_examples, self.n_bootstrap, seed)
            if self.n_bootstrap > 0
            else None
        )

    @functools.cached_property
    def counts_int8(self) -> np.ndarray | None:
        """``counts`` as int8 for the exact integer product of
        ``measure.stats.resampled_sums`` (None where it does not apply)."""
        return None if self.counts is None else int8_weights(self.counts)

    @property
    def size(self) -> int:
        """B, the number of resamples (0 when there are none)."""
        return max(self.n_bootstrap, 0) if self.counts is not None else 0

    def chunk_sums(self, values: np.ndarray, columns: slice) -> np.ndarray:
        """(B, K) float64 ``Σ_{n in columns} W[b, n] x_k[n]`` of ``values`` (K, n) or (n,).

        Counts times 0/±1/½ values: float32 products and partial sums are exact integers
        (or halves) below 2**24, so float32 BLAS loses nothing; other values (a category's
        mean over pairs) carry float32 rounding, ~1e-7 relative.
        """
        values = np.asarray(values)
        if values.ndim == 1:
            values = values[None, :]
        if self.counts is None:
            return np.zeros((0, values.shape[0]))
        small = None if self.counts_int8 is None else self.counts_int8[:, columns]
        return resampled_sums(self.counts[:, columns], values, small).astype(np.float64)

    def means(self, sums: np.ndarray) -> np.ndarray:
        """(B, K) resampled means from resampled sums (NaN-filled without resamples)."""
        if self.counts is None:
            return np.full((self.size, sums.shape[1]), np.nan)
        return sums / self.num_examples

    def interval(self, sums: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Percentile interval ``(lo, hi)`` of each statistic's resampled mean."""
        size = sums.shape[1]
        if self.counts is None or size == 0:
            return np.full(size, np.nan), np.full(size, np.nan)
        return percentile_interval(self.means(sums), self.level, skip_nan=False)

    def ratio_interval(
        self, numerator: np.ndarray, denominator: np.ndarray, defined: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Percentile interval of the ratio of resampled sums, per statistic.

        ``numerator``, ``denominator``: (B, K) resampled sums; resample b's ratio is
        ``num_b / den_b``, left out where ``den_b = 0``. ``defined``: (K,) bool, the
        full-sample denominator is positive; elsewhere the interval is NaN, like the rate
        itself (docs/design.md sec. 3). Equals ``measure.stats.bootstrap_ratio_ci`` given the
        same weights.
        """
        size = len(defined)
        if self.counts is None or size == 0:
            return np.full(size, np.nan), np.full(size, np.nan)
        num, den = np.asarray(numerator, np.float64), np.asarray(denominator, np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(den > 0, num / den, np.nan)
        lo, hi = percentile_interval(ratio, self.level, skip_nan=True)
        keep = np.asarray(defined, dtype=bool)
        return np.where(keep, lo, np.nan), np.where(keep, hi, np.nan)

    def kappa_interval(
        self, accuracy: np.ndarray, error_inconsistency: np.ndarray, a: np.ndarray, b: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Percentile interval of each pair's error consistency κ on these resamples.

        ``accuracy`` (B, M) and ``error_inconsistency`` (B, P) are resampled sums
        (``study.pairblocks``), ``a``/``b`` (P,) the pairs' model indices. κ is a function
        of the pair's three means (``measure.agreement.kappa_from_rates``), so resample b's
        κ is that function of resample b's means: no extra pass over the examples, and the
        same resamples as the EI and accuracy intervals. Pairs are taken in blocks so that
        at most about 16 M resampled values exist at once.
        """
        size = len(a)
        if self.counts is None or size == 0:
            return np.full(size, np.nan), np.full(size, np.nan)
        acc = self.means(accuracy)
        lo, hi = np.empty(size), np.empty(size)
        block = max(1, (1 << 24) // max(self.size, 1))
        for start in range(0, size, block):
            cols = slice(start, min(size, start + block))
            kappa = kappa_from_rates(
                self.means(error_inconsistency[:, cols]), acc[:, a[cols]], acc[:, b[cols]]
            )
            lo[cols], hi[cols] = percentile_interval(kappa, self.level, skip_nan=False)
        return lo, hi

    def p_not_positive(self, sums: np.ndarray) -> np.ndarray:
        """One-sided paired-bootstrap p-value that each mean is > 0: ``(1 + #{b: mean_b <= 0})
        / (B + 1)`` (Efron & Tibshirani 1993, sec. 16.4; the +1 keeps p > 0)."""
        if self.counts is None:
            return np.full(sums.shape[1], np.nan)
        return (1.0 + (self.means(sums) <= 0).sum(axis=0)) / (self.n_bootstrap + 1.0)

    def quantiles(self, values: np.ndarray) -> tuple[float | None, float | None]:
        """Percentile interval of resampled values, leaving out undefined (non-finite)
        resamples; (None, None) when none is left."""
        values = values[np.isfinite(values)]
        if values.size == 0:
            return None, None
        lo, hi = percentile_interval(values, self.level, skip_nan=False)
        return float(lo), float(hi)
