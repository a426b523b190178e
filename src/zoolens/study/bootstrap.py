"""Streaming example-resampling bootstrap of many means at once.

Every interval the study reports (a model's accuracy, a pair's error inconsistency, ensemble
accuracy and gain, a category's mean error inconsistency) is the mean over evaluation
examples of some per-example value x_n. Resampling examples with replacement gives, for
resample b, the mean ``Σ_n W[b, n] · x_n / N`` where ``W[b, n]`` is how often example n was
drawn. The resample counts W (B, N) are drawn once from a seeded generator, so every
statistic shares the same resamples (and the paired test of an ensemble against its best
member uses them too), and the values arrive in example chunks: ``S += W[:, chunk] @ Xᵀ``
is one matrix product per chunk and block of statistics, never a loop over pairs.

Intervals are percentile intervals (2.5 % and 97.5 % quantiles of the B resampled means,
numpy's linear interpolation) — Efron & Tibshirani (1993), ch. 13.
"""

from __future__ import annotations

import numpy as np

# Draw the resample indices in blocks of this many resamples (B x N int64 at once is large).
_DRAW_BLOCK = 64


def resample_counts(num_examples: int, n_bootstrap: int, seed: int) -> np.ndarray:
    """(B, N) uint16/uint32 counts: how often each example is drawn in each resample.

    Resample b draws N indices uniformly with replacement from ``np.random.default_rng(seed)``
    (``rng.integers(0, N, size=(block, N))`` in blocks of 64 resamples, in order), exactly as
    ``rng.integers(0, N, size=(B, N))`` would. Counts, not indices, so a chunk of examples
    is a column slice.
    """
    rng = np.random.default_rng(seed)
    dtype = np.uint16 if num_examples < 2**16 else np.uint32
    counts = np.zeros((n_bootstrap, num_examples), dtype=dtype)
    for start in range(0, n_bootstrap, _DRAW_BLOCK):
        stop = min(start + _DRAW_BLOCK, n_bootstrap)
        draws = rng.integers(0, num_examples, size=(stop - start, num_examples))
        offsets = (np.arange(stop - start) * num_examples)[:, None]
        flat = np.bincount((draws + offsets).ravel(), minlength=(stop - start) * num_examples)
        counts[start:stop] = flat.reshape(stop - start, num_examples)
    return counts


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
        self.counts = (resample_counts(self.num_examples, self.n_bootstrap, seed)
                       if self.n_bootstrap > 0 else None)
        self._sums: dict[str, np.ndarray] = {}

    def add(self, name: str, values: np.ndarray, columns: slice) -> None:
        if self.counts is None:
            return
        values = np.asarray(values)
        if values.ndim == 1:
            values = values[None, :]
        # Counts and 0/±1/½ values: float32 products and partial sums are exact integers
        # (or halves) far below 2**24, so float32 BLAS loses nothing here.
        weights = self.counts[:, columns].astype(np.float32)
        block = weights @ values.astype(np.float32).T
        if name in self._sums:
            self._sums[name] += block
        else:
            self._sums[name] = block.astype(np.float64)

    def means(self, name: str, size: int) -> np.ndarray:
        """(B, K) resampled means of block ``name`` (NaN-filled when nothing was added)."""
        if self.counts is None or name not in self._sums:
            return np.full((max(self.n_bootstrap, 0), size), np.nan)
        return self._sums[name] / self.num_examples

    def interval(self, name: str, size: int) -> tuple[np.ndarray, np.ndarray]:
        """Percentile interval ``(lo, hi)`` of each statistic in block ``name``."""
        if self.counts is None or name not in self._sums:
            return np.full(size, np.nan), np.full(size, np.nan)
        tail = (1.0 - self.level) / 2.0
        lo, hi = np.quantile(self.means(name, size), [tail, 1.0 - tail], axis=0)
        return lo, hi

    def p_not_positive(self, name: str, size: int) -> np.ndarray:
        """One-sided paired-bootstrap p-value that each mean is > 0: ``(1 + #{b: mean_b <= 0})
        / (B + 1)`` (Efron & Tibshirani 1993, sec. 16.4; the +1 keeps p > 0)."""
        if self.counts is None or name not in self._sums:
            return np.full(size, np.nan)
        resampled = self.means(name, size)
        return (1.0 + (resampled <= 0).sum(axis=0)) / (self.n_bootstrap + 1.0)
