"""The pairs' bootstrap, after the evaluation pass, one block of pairs at a time.

The pass leaves, for every scored pair, whether its ensemble is right on each evaluation
example: one bit per pair and example (``EvalPass.ensemble_bits``, (N, ⌈P_scored/8⌉)
uint8, packed along the pairs: 62 KB an example at 499,500 pairs). With the members'
correctness R (M, N) that is everything a pair statistic needs: each is a mean over
examples of a function of (r_a, r_b, e), so its resampled means are
``Σ_n W[b, n]·x[n] / N`` (``study.bootstrap``), one matrix product of the (B, N) weights
with the block's (N, K) values over the whole evaluation split.

Why after the pass and not chunk by chunk: at a thousand models a chunk holds a few dozen
examples, so a chunk's product has an inner dimension of a few dozen against a (B × P)
output — memory-bound, 26 % of the pass at 100 resamples — and its (B × P) float64 sums
were held to the end: 4 GB a statistic at 1,000 resamples of 499,500 pairs. Here the
product's inner dimension is N (int8 products at ~800 GOPS on 2 cores), each block's
intervals are taken at once, and only what later stages read resample by resample is kept:
the sums of r_a ⊕ r_b, e and e ∧ (r_a ⊕ r_b), exact integers in [0, N] stored as uint16
(uint32 beyond 65,535 examples) — 1 GB each at that size instead of 4.

Bit for bit the same numbers as accumulating per chunk: every sum is a whole number (each
product exact, see ``measure.stats.resampled_sums``), every derived sum (gain, the best
member, both wrong) the same float64 expression of them, and each interval is per column
(``measure.stats.percentile_interval``). The category means of error inconsistency, the one
statistic whose per-example values are not whole numbers, are summed chunk by chunk on the
pass's own chunks (:func:`category_sums`), as the pass did.

Per pair, in measured-pair order (NaN where a member has no probabilities), this gives the
columns of pairs.csv that carry intervals (:data:`INTERVAL_COLUMNS`), the exact counts
behind the rates (``measure.ensemble.EnsembleCounts``) and McNemar's discordant counts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from zoolens.measure.ensemble import EnsembleCounts, ensemble_counts
from zoolens.measure.stats import percentile_interval, resampled_sums
from zoolens.study.bootstrap import Resamples

#: pairs.csv's columns computed here, (P,) float64 each.
INTERVAL_COLUMNS = (
    "error_inconsistency_lo",
    "error_inconsistency_hi",
    "error_consistency_lo",
    "error_consistency_hi",
    "ensemble_acc_lo",
    "ensemble_acc_hi",
    "ensemble_gain_lo",
    "ensemble_gain_hi",
    "conversion_rate_lo",
    "conversion_rate_hi",
    "neither_conversion_lo",
    "neither_conversion_hi",
    "paired_bootstrap_p",
    "gain_over_best_lo",
    "gain_over_best_hi",
    "gain_over_base_lo",
    "gain_over_base_hi",
)

# Bytes of temporaries per pair in a block: about a dozen (N,) bool columns, and about a
# dozen (B,) float64 columns (sums, means, sorted copies).
_BOOL_COLUMNS = 12
_FLOAT_COLUMNS = 12


def pair_block_size(num_examples: int, n_bootstrap: int, budget: int) -> int:
    """Pairs per block so that one block's temporaries take about ``budget`` / 4 bytes
    (two blocks run side by side, next to the pass's own arrays); a multiple of 64."""
    per_pair = _BOOL_COLUMNS * max(num_examples, 1) + 8 * _FLOAT_COLUMNS * max(n_bootstrap, 0)
    return max(64, (budget // 4 // per_pair) // 64 * 64)


def sum_dtype(num_examples: int) -> type[np.unsignedinteger[Any]]:
    """The smallest unsigned type holding every resampled sum of 0/1 values: each resample
    draws N examples, so a sum lies in [0, N]."""
    return np.uint16 if num_examples <= np.iinfo(np.uint16).max else np.uint32


@dataclass(frozen=True)
class ResampledSums:
    """The resampled sums later stages read resample by resample (``Σ_n W[b, n]·x[n]``).

    - accuracy (B, M) float64: each model right;
    - category_ei (B, K) float64: per category of pairs with the base, the mean over its
      pairs of r_a ⊕ r_b;
    - error_inconsistency (B, P), ensemble_acc and converted (B, P_scored): r_a ⊕ r_b, e,
      e ∧ (r_a ⊕ r_b), as exact integers (:func:`sum_dtype`).

    Frozen: the arrays are read-only once made, so summaries only read.
    """

    accuracy: np.ndarray
    category_ei: np.ndarray
    error_inconsistency: np.ndarray
    ensemble_acc: np.ndarray
    converted: np.ndarray

    def freeze(self) -> ResampledSums:
        for f in fields(self):
            getattr(self, f.name).setflags(write=False)
        return self


@dataclass
class PairResults:
    """What :func:`pair_statistics` returns: ``intervals`` (:data:`INTERVAL_COLUMNS` ->
    (P,) float64), ``counts`` (per scored pair, None without scored pairs), McNemar's
    discordant counts (P,) (ensemble right and best member wrong, and the reverse), the
    frozen :class:`ResampledSums` and each block's wall time (block order)."""

    intervals: dict[str, np.ndarray]
    counts: EnsembleCounts | None
    ensemble_only: np.ndarray
    best_only: np.ndarray
    sums: ResampledSums
    block_seconds: list[float]


@dataclass(frozen=True)
class PairLayout:
    """The measured pairs: members ``a``/``b`` (P,), the positions of the scored ones among
    them (``scored``, sorted), each pair's best member (``best``, the higher evaluation
    accuracy, a on ties) and the base (-1: none)."""

    a: np.ndarray
    b: np.ndarray
    scored: np.ndarray
    best: np.ndarray
    base: int


def unpack_columns(bits: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Columns ``start:stop`` of the (N, K) bool matrix packed along its columns in ``bits``
    (N, ⌈K/8⌉) (``np.packbits(..., axis=1)``, big bit order)."""
    first, last = start // 8, -(-stop // 8)
    unpacked = np.unpackbits(bits[:, first:last], axis=1)
    offset = start - 8 * first
    return unpacked[:, offset : offset + stop - start].view(bool)


def pack_columns(values: np.ndarray) -> np.ndarray:
    """(n, ⌈K/8⌉) uint8: the (K, n) bool ``values`` packed along K for each example (the
    layout :func:`unpack_columns` reads)."""
    # packed along the contiguous axis of the transpose: packbits along axis 0 of a
    # row-major (K, n) array walks it column by column (about twice as slow)
    return np.packbits(np.ascontiguousarray(np.asarray(values).T), axis=1)


@dataclass(frozen=True)
class PairContext:
    """What every block of pairs reads (put once in Ray's object store with ``--ray``):
    R transposed (``rows_t``, (N, M) bool: a block's members are columns), the layout, the
    pass's ensemble bits, the shared resamples, the categories' (K, P) float32 membership
    and the models' resampled accuracy sums (B, M) float64."""

    rows_t: np.ndarray
    layout: PairLayout
    ensemble_bits: np.ndarray | None
    resamples: Resamples
    category_matrix: np.ndarray | None
    accuracy: np.ndarray


@dataclass
class PairBlock:
    """One block's results, pairs ``start:stop`` (scored positions ``scored_lo:scored_hi``):
    its interval columns, kept sums (:class:`ResampledSums`' three integer statistics),
    counts, McNemar counts and, per example, the number of each category's pairs whose
    members disagree ((N, K) float32, whole numbers)."""

    start: int
    stop: int
    scored_lo: int
    scored_hi: int
    intervals: dict[str, np.ndarray]
    kept: dict[str, np.ndarray]
    counts: EnsembleCounts | None
    ensemble_only: np.ndarray
    best_only: np.ndarray
    category: np.ndarray
    seconds: float = 0.0  # the block's wall time where it ran (a cluster's time scales from it)


def pair_block(ctx: PairContext, start: int, stop: int) -> PairBlock:
    """The pairs ``start:stop``'s statistics (see the module doc); a pure function of the
    context, so blocks run anywhere (threads, Ray tasks) and give the same bits."""
    began = time.perf_counter()
    out = _pair_block(ctx, start, stop)
    out.seconds = time.perf_counter() - began
    return out


def _pair_block(ctx: PairContext, start: int, stop: int) -> PairBlock:
    layout, resamples = ctx.layout, ctx.resamples
    n = ctx.rows_t.shape[0]
    weights, small = resamples.counts, resamples.counts_int8
    kind = sum_dtype(n)
    size = stop - start
    a, b = layout.a[start:stop], layout.b[start:stop]
    # np.take, not rows_t[:, a]: fancy indexing along the columns returns column-major
    # arrays, and every operation of one with the row-major ensemble bits below was a
    # transposing copy (several times slower). All (N, pairs) arrays here are row-major.
    ra, rb = np.take(ctx.rows_t, a, axis=1), np.take(ctx.rows_t, b, axis=1)
    xor = ra ^ rb
    # Per example, how many of each category's pairs the members disagree on: whole
    # numbers below 2**24, exact in float32 whatever the order of the blocks.
    category = (
        _category_counts(xor, ctx.category_matrix[:, start:stop])
        if ctx.category_matrix is not None
        else np.zeros((n, 0), dtype=np.float32)
    )
    intervals = {column: np.full(size, np.nan) for column in INTERVAL_COLUMNS}
    lo, hi = (int(v) for v in np.searchsorted(layout.scored, [start, stop]))
    out = PairBlock(
        start=start,
        stop=stop,
        scored_lo=lo,
        scored_hi=hi,
        intervals=intervals,
        kept={
            "error_inconsistency": np.zeros((resamples.size, size), dtype=kind),
            "ensemble_acc": np.zeros((resamples.size, hi - lo), dtype=kind),
            "converted": np.zeros((resamples.size, hi - lo), dtype=kind),
        },
        counts=None,
        ensemble_only=np.zeros(size, dtype=np.int64),
        best_only=np.zeros(size, dtype=np.int64),
        category=category,
    )
    ei = None
    if weights is not None:
        ei = resampled_sums(weights, xor.T, small).astype(np.float64)
        out.kept["error_inconsistency"][:] = ei
        intervals["error_inconsistency_lo"], intervals["error_inconsistency_hi"] = (
            resamples.interval(ei)
        )
        intervals["error_consistency_lo"], intervals["error_consistency_hi"] = (
            resamples.kappa_interval(ctx.accuracy, ei, a, b)
        )
    if ctx.ensemble_bits is None or lo == hi:
        return out
    positions = layout.scored[lo:hi]
    local = positions - start
    if len(local) < size:
        ra, rb, xor = (np.take(v, local, axis=1) for v in (ra, rb, xor))
        ei = None if ei is None else ei[:, local]
    ens = unpack_columns(ctx.ensemble_bits, lo, hi)
    best = np.take(ctx.rows_t, layout.best[positions], axis=1)
    out.counts = counts = ensemble_counts(ra.T, rb.T, ens.T)
    # One (N, pairs) scratch for the masks below, each used before the next is made:
    # fresh ~18 MB arrays per mask cost more in page faults than in arithmetic.
    scratch = np.empty(ens.shape, dtype=bool)
    np.logical_not(best, out=scratch)
    out.ensemble_only[local] = np.logical_and(scratch, ens, out=scratch).sum(axis=0)
    np.logical_not(ens, out=scratch)
    out.best_only[local] = np.logical_and(scratch, best, out=scratch).sum(axis=0)
    if weights is None or ei is None:
        return out
    sums = {"ensemble_acc": resampled_sums(weights, ens.T, small).astype(np.float64)}
    np.bitwise_and(ens, xor, out=scratch)
    sums["converted"] = resampled_sums(weights, scratch.T, small).astype(np.float64)
    np.bitwise_or(ra, rb, out=scratch)
    np.logical_not(scratch, out=scratch)
    scratch &= ens
    sums["neither_converted"] = resampled_sums(weights, scratch.T, small).astype(np.float64)
    out.kept["ensemble_acc"][:] = sums["ensemble_acc"]
    out.kept["converted"][:] = sums["converted"]
    _ensemble_intervals(
        intervals,
        local,
        resamples,
        ctx.accuracy,
        sums,
        ei,
        layout.a[positions],
        layout.b[positions],
        layout.best[positions],
        layout.base,
        counts,
    )
    return out


_CATEGORY_ROWS = 2048  # examples per float32 product of _category_counts (under 4 MB)


def _category_counts(xor: np.ndarray, membership: np.ndarray) -> np.ndarray:
    """(N, K) float32: per example, how many of each category's pairs (``membership``
    (K, pairs) float32 0/1) disagree (``xor`` (N, pairs) bool). Whole numbers below 2**24,
    so exact in float32; computed in slices of examples, not one float32 copy of ``xor``."""
    n = xor.shape[0]
    out = np.empty((n, membership.shape[0]), dtype=np.float32)
    transposed = np.ascontiguousarray(membership.T)
    for lo in range(0, n, _CATEGORY_ROWS):
        out[lo : lo + _CATEGORY_ROWS] = (
            xor[lo : lo + _CATEGORY_ROWS].astype(np.float32) @ transposed
        )
    return out


def pair_statistics(
    correct: np.ndarray,
    layout: PairLayout,
    ensemble_bits: np.ndarray | None,
    resamples: Resamples,
    category_matrix: np.ndarray | None,
    chunk_bounds: Sequence[tuple[int, int]],
    block: int,
    parallel_map: Any = map,
    run_blocks: Callable[..., Iterable[PairBlock]] | None = None,
) -> PairResults:
    """Every pair's counts, intervals and kept sums from R (``correct``, (M, N) bool on the
    evaluation split) and the pass's ensemble bits (None: no scored pair), ``block`` pairs
    at a time (:func:`pair_block`), blocks side by side on ``parallel_map`` — or, given
    ``run_blocks(task, ctx, bounds)`` (``study.distributed.run_chunks_ray``), as its tasks,
    yielded in order; see the module doc. ``category_matrix`` (K, P) float32: which pairs
    each category holds (None: none); ``chunk_bounds``: the pass's example chunks (the
    category sums' order)."""
    num_models, n = correct.shape
    num_pairs, num_scored = len(layout.a), len(layout.scored)
    size = resamples.size
    weights = resamples.counts
    accuracy = (
        resampled_sums(weights, correct, resamples.counts_int8).astype(np.float64)
        if weights is not None
        else np.zeros((0, num_models))
    )
    with_ensembles = ensemble_bits is not None and num_scored > 0
    ctx = PairContext(
        rows_t=np.ascontiguousarray(correct.T),
        layout=layout,
        ensemble_bits=ensemble_bits if with_ensembles else None,
        resamples=resamples,
        category_matrix=category_matrix,
        accuracy=accuracy,
    )
    bounds = [(start, min(num_pairs, start + block)) for start in range(0, num_pairs, block)]
    if run_blocks is not None:
        blocks = run_blocks(pair_block, ctx, bounds)
    else:
        blocks = parallel_map(lambda bound: pair_block(ctx, *bound), bounds)
    kind = sum_dtype(n)
    kept = {
        "error_inconsistency": np.zeros((size, num_pairs), dtype=kind),
        "ensemble_acc": np.zeros((size, num_scored), dtype=kind),
        "converted": np.zeros((size, num_scored), dtype=kind),
    }
    intervals = {column: np.full(num_pairs, np.nan) for column in INTERVAL_COLUMNS}
    count_parts: list[EnsembleCounts] = []
    ensemble_only = np.zeros(num_pairs, dtype=np.int64)
    best_only = np.zeros(num_pairs, dtype=np.int64)
    num_categories = 0 if category_matrix is None else category_matrix.shape[0]
    category_counts = np.zeros((n, num_categories), dtype=np.float32)
    block_seconds = []
    for part in blocks:  # in block order
        block_seconds.append(part.seconds)
        pairs = slice(part.start, part.stop)
        scored = slice(part.scored_lo, part.scored_hi)
        for column, values in part.intervals.items():
            intervals[column][pairs] = values
        kept["error_inconsistency"][:, pairs] = part.kept["error_inconsistency"]
        kept["ensemble_acc"][:, scored] = part.kept["ensemble_acc"]
        kept["converted"][:, scored] = part.kept["converted"]
        ensemble_only[pairs], best_only[pairs] = part.ensemble_only, part.best_only
        if part.counts is not None:
            count_parts.append(part.counts)
        category_counts += part.category
    counts = None
    if with_ensembles:
        counts = EnsembleCounts(
            *(
                np.concatenate([getattr(part, f) for part in count_parts])
                for f in EnsembleCounts.__dataclass_fields__
            )
        )
    category_ei = category_sums(category_counts, category_matrix, resamples, chunk_bounds)
    return PairResults(
        intervals=intervals,
        counts=counts,
        ensemble_only=ensemble_only,
        best_only=best_only,
        sums=ResampledSums(accuracy=accuracy, category_ei=category_ei, **kept).freeze(),
        block_seconds=block_seconds,
    )


def _ensemble_intervals(
    intervals: dict[str, np.ndarray],
    positions: np.ndarray,
    resamples: Resamples,
    accuracy: np.ndarray,
    sums: dict[str, np.ndarray],
    ei: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    best: np.ndarray,
    base: int,
    counts: EnsembleCounts,
) -> None:
    """The intervals of the scored pairs at ``positions`` (indices into ``intervals``'
    arrays, the block's own) from their resampled sums."""
    ens = sums["ensemble_acc"]

    def put(name: str, bounds: tuple[np.ndarray, np.ndarray]) -> None:
        intervals[f"{name}_lo"][positions], intervals[f"{name}_hi"][positions] = bounds

    put("ensemble_acc", resamples.interval(ens))
    # e − (r_a + r_b)/2 and e − r_best: sums are linear in the values (whole numbers or
    # halves, exact in float64).
    put("ensemble_gain", resamples.interval(ens - 0.5 * (accuracy[:, a] + accuracy[:, b])))
    minus_best = ens - accuracy[:, best]
    put("gain_over_best", resamples.interval(minus_best))
    intervals["paired_bootstrap_p"][positions] = resamples.p_not_positive(minus_best)
    # conversion_rate = Σ e∧(r_a⊕r_b) / Σ r_a⊕r_b; neither_conversion = Σ e∧¬r_a∧¬r_b /
    # Σ ¬r_a∧¬r_b, whose denominator is N − (Σ r_a + Σ r_b + Σ r_a⊕r_b) / 2 (every resample
    # draws N examples; r_a + r_b = 2·(r_a∧r_b) + r_a⊕r_b).
    put("conversion_rate", resamples.ratio_interval(sums["converted"], ei, counts.exactly_one > 0))
    both_wrong = resamples.num_examples - (accuracy[:, a] + accuracy[:, b] + ei) / 2
    put(
        "neither_conversion",
        resamples.ratio_interval(sums["neither_converted"], both_wrong, counts.both_wrong > 0),
    )
    mine = (a == base) | (b == base)
    if base >= 0 and mine.any():
        diff = resamples.means(ens)[:, mine] - resamples.means(accuracy)[:, base][:, None]
        lo, hi = percentile_interval(diff, resamples.level, skip_nan=False)
        intervals["gain_over_base_lo"][positions[mine]] = lo
        intervals["gain_over_base_hi"][positions[mine]] = hi


def category_sums(
    category_counts: np.ndarray,
    category_matrix: np.ndarray | None,
    resamples: Resamples,
    chunk_bounds: Sequence[tuple[int, int]],
) -> np.ndarray:
    """(B, K) resampled sums of each category's per-example mean error inconsistency.

    ``category_counts`` (N, K): per example, the number of the category's pairs whose
    members disagree (whole numbers, exact in float32). The per-example mean is that count
    over the category's size in float32, and its resampled sums are taken chunk by chunk on
    the pass's chunks (float32 products, added in float64 in chunk order): the values are
    not whole numbers, so the order of the additions is the pass's own."""
    num_categories = 0 if category_matrix is None else category_matrix.shape[0]
    out = np.zeros((resamples.size, num_categories))
    if category_matrix is None or resamples.counts is None or not num_categories:
        return out
    per_category = category_matrix.sum(axis=1, keepdims=True)
    means = category_counts.T / per_category  # (K, N) float32
    weights, small = resamples.counts, resamples.counts_int8
    for start, stop in chunk_bounds:
        columns = slice(start, stop)
        out += resampled_sums(
            weights[:, columns],
            np.ascontiguousarray(means[:, columns]),
            None if small is None else small[:, columns],
        )
    return out
