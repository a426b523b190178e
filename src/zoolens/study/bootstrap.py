"""Streaming example-resampling bootstrap of many means at once.

Every interval the study reports (a model's accuracy, a pair's error inconsistency, ensemble
accuracy and gain, a category's mean error inconsistency) is the mean over evaluation
examples of some per-example value x_n. Resampling examples with replacement gives, for
resample b, the mean ``Σ_n W[b, n] · x_n / N`` where ``W[b, n]`` is how often example n was
drawn (``measure.stats.bootstrap_weights``, drawn once from the seed, so every statistic
shares the same resamples and the paired test of an ensemble against its best member is
paired). The values arrive in example chunks, so instead of ``stats.bootstrap_ci`` on a
full (N, K) matrix the sums are accumulated: ``S += W[:, chunk] @ Xᵀ``, one matrix product
per chunk and block of statistics, never a loop over pairs. The results equal
``stats.bootstrap_ci`` and ``stats.paired_bootstrap_test`` given the same weights (tested).

Intervals are percentile intervals (2.5 % and 97.5 % quantiles of the B resampled means,
numpy's linear interpolation) — Efron & Tibshirani (1993), ch. 13.

Conditional rates (a pair's conversion rate, P(ensemble right | exactly one member right))
are ratios of two sums on the same resamples, ``Σ_n W[b, n]·num_n / Σ_n W[b, n]·den_n``
(:meth:`StreamingBootstrap.ratio_interval`, the convention of
``measure.stats.bootstrap_ratio_ci``: resamples whose denominator is 0 are left out).
"""

from __future__ import annotations

import numpy as np

from zoolens.measure.stats import bootstrap_weights, percentile_interval

class StreamingBootstrap:
    """Accumulate ``Σ_n W[b, n] x_k[n]`` for named blocks of statistics over example chunks.

    ``add(name, values, columns)``: ``values`` (K, n) holds K statistics' per-example values
    on the examples ``columns`` (a slice of 0..N-1). ``means(name)`` returns (B, K) resampled
    means; ``interval(name)`` the (K,) percentile bounds. With ``n_bootstrap == 0`` nothing is
    accumulated and intervals are NaN.
    """

    def __init__(self, num_examples: int, n_bootstrap: int, seed: int,
                 level: float = 0.95) -> None:
        self.num_examples = int(num_examples)
        self.n_bootstrap = int(n_bootstrap)
        self.level = float(level)
        # The same resamples as measure.stats (bootstrap_weights), so every interval here
        # equals stats.bootstrap_ci / paired_bootstrap_test given these weights.
        self.counts = (bootstrap_weights(self.num_examples, self.n_bootstrap, seed)
                       if self.n_bootstrap > 0 else None)
        self._sums: dict[str, np.ndarray] = {}

    def add(self, name: str, values: np.ndarray, columns: slice) -> None:
        if self.counts is None:
            return
        values = np.asarray(values)
        if values.ndim == 1:
            values = values[None, :]
        # Counts times 0/±1/½ values: float32 products and partial sums are exact integers
        # (or halves) below 2**24, so float32 BLAS loses nothing; other values (a category's
        # mean over pairs) carry float32 rounding, ~1e-7 relative.
        block = self.counts[:, columns] @ values.astype(np.float32).T
        if name in self._sums:
            self._sums[name] += block
        else:
            self._sums[name] = block.astype(np.float64)

    def sums(self, name: str, size: int) -> np.ndarray:
        """(B, K) resampled sums ``Σ_n W[b, n] x_k[n]`` of block ``name`` (float64; exact
        integers for 0/1 values; NaN-filled when nothing was added)."""
        if self.counts is None or name not in self._sums:
            return np.full((max(self.n_bootstrap, 0), size), np.nan)
        return self._sums[name]

    def ratio_interval(self, numerator: np.ndarray, denominator: np.ndarray,
                       defined: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Percentile interval of the ratio of resampled sums, per statistic.

        ``numerator``, ``denominator``: (B, K) resampled sums (:meth:`sums`, or sums derived
        from them); resample b's ratio is ``num_b / den_b``, left out where ``den_b = 0``.
        ``defined``: (K,) bool, the full-sample denominator is positive; elsewhere the
        interval is NaN, like the rate itself (DESIGN.md sec. 3). Equals
        ``measure.stats.bootstrap_ratio_ci`` given the same weights.
        """
        size = len(defined)
        if self.counts is None:
            return np.full(size, np.nan), np.full(size, np.nan)
        num, den = np.asarray(numerator, np.float64), np.asarray(denominator, np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(den > 0, num / den, np.nan)
        lo, hi = percentile_interval(ratio, self.level, skip_nan=True)
        keep = np.asarray(defined, dtype=bool)
        return np.where(keep, lo, np.nan), np.where(keep, hi, np.nan)

    def means(self, name: str, size: int) -> np.ndarray:
        """(B, K) resampled means of block ``name`` (NaN-filled when nothing was added)."""
        if self.counts is None or name not in self._sums:
            return np.full((max(self.n_bootstrap, 0), size), np.nan)
        return self._sums[name] / self.num_examples

    def interval(self, name: str, size: int) -> tuple[np.ndarray, np.ndarray]:
        """Percentile interval ``(lo, hi)`` of each statistic in block ``name``."""
        if self.counts is None or name not in self._sums:
            return np.full(size, np.nan), np.full(size, np.nan)
        return percentile_interval(self.means(name, size), self.level, skip_nan=False)

    def p_not_positive(self, name: str, size: int) -> np.ndarray:
        """One-sided paired-bootstrap p-value that each mean is > 0: ``(1 + #{b: mean_b <= 0})
        / (B + 1)`` (Efron & Tibshirani 1993, sec. 16.4; the +1 keeps p > 0)."""
        if self.counts is None or name not in self._sums:
            return np.full(size, np.nan)
        resampled = self.means(name, size)
        return (1.0 + (resampled <= 0).sum(axis=0)) / (self.n_bootstrap + 1.0)
