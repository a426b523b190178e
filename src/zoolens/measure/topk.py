"""Exact top-k pruning for all-pair ensembles (docs/design.md sec. 4; paper Sec. 4.2-4.3, Fig. 2).

The pair ensemble of models a and b predicts, for each example,

    pred(a, b) = argmax_c  s_c,    s_c = w * x_a[c] + (1 - w) * x_b[c]

(lowest class index among the maxima), where x are the models' ensemble inputs: calibrated
probabilities, or temperature-scaled logits for the ``combine="logits"`` variant
(``measure.ensemble.ensemble_inputs``). Computing it for all P = M(M-1)/2 pairs costs
P * N * C operations; at large C almost all of it is wasted, because the argmax nearly
always lies among the few classes each model ranks highest.

Exact pruning. If every class outside a candidate list L_a has x_a[c] <= t_a (and likewise
L_b, t_b), a class outside both lists scores

    s_c  <=  B = w * t_a + (1 - w) * t_b.

This holds for the floating-point scores, not just the real numbers: each step (multiply by
w >= 0, add) is a correctly rounded, hence monotone, IEEE operation, and B is computed with
the same operations in the same dtype as the scores (``measure.ensemble.combine_scores``).
The union classes' scores are computed exactly (a side's value missing from its list is
gathered from its full row, which is in memory for the current chunk of examples). If the
best union score m satisfies m > B strictly, the argmax is the lowest union index scoring m,
exactly what the full computation returns; otherwise (m == B, m < B, a NaN in either row)
the entry goes to the next tier. Three tiers:

1. top-1: L = {top class}, t = the second largest value (found from strided block maxima in
   one pass over the row); all pairs and examples at once, one gather per ordered pair.
2. top-k on the entries tier 1 left open: L = the exact top-k of just the rows involved
   (a partition of the members of their k best blocks only), t = the (k+1)-th largest
   value.
3. the full rows, for whatever is still open (and any row holding a NaN).

The result equals ``measure.ensemble.all_pair_ensemble_correct`` bit for bit, always; only
the running time depends on how often the bounds prove the argmax (with calibrated,
confident models tier 1 decides most entries; ``PruneStats`` counts them).

The greedy step (``measure.ensemble.greedy_forward_selection``) scores ``S + x_k`` (the
members' running sum plus each candidate) and decides it with the same kernel,
:func:`decide_from_lists`, with S and x_k as the two sides and no weights.

Pair order everywhere: ``np.triu_indices(M, 1)`` = ``measure.agreement.pair_index``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from zoolens.errors import ZoolensError
from zoolens.measure.agreement import correctness, pair_index

__all__ = [
    "DEFAULT_K",
    "PruneStats",
    "decide_from_lists",
    "full_row_argmax",
    "row_top_k",
    "settle_open",
    "top1_and_second",
    "all_pair_ensemble_predictions_topk",
    "all_pair_ensemble_correct_topk",
]

DEFAULT_K = 8
# Bound the temporary memory of the full-row fallback (entries x C scores per batch).
_FALLBACK_BATCH = 4096
# Target size of one sub-chunk of all models' inputs (fits a large L2 / small L3 cache).
_SUBCHUNK_BYTES = 16 * 2**20


@dataclass
class PruneStats:
    """How the entries were decided (add up over chunks)."""

    entries: int = 0  # (pair, example) decisions made
    tier1_open: int = 0  # of which the top-1 bound did not prove
    fallbacks: int = 0  # of which computed from the full rows
    per_chunk: list[float] = field(default_factory=list)  # fallback rate per sub-chunk

    @property
    def fallback_rate(self) -> float:
        return self.fallbacks / self.entries if self.entries else float("nan")

    @property
    def tier1_open_rate(self) -> float:
        return self.tier1_open / self.entries if self.entries else float("nan")


def _weights(weight: float, dtype: np.dtype) -> tuple[np.generic, np.generic]:
    """w and 1 - w in the inputs' dtype, as ``measure.ensemble.combine_scores`` makes them."""
    if np.ndim(weight) != 0:
        raise ZoolensError(
            "the top-k kernel takes a scalar ensemble weight "
            "(use measure.ensemble for per-class weights)"
        )
    w = float(weight)
    if not 0.0 <= w <= 1.0:
        raise ZoolensError(f"ensemble weight must lie in [0, 1], got {weight}")
    return dtype.type(w), dtype.type(1.0 - w)


_GROUPS = 8  # classes per strided block


def _blocks(num_classes: int) -> tuple[int, int]:
    """(width, tail): C = 8 * width + tail; block j holds classes {j, width + j, ...,
    7 * width + j} plus the tail class 8 * width + j when j < tail."""
    width = num_classes // _GROUPS
    return width, num_classes - _GROUPS * width


def _block_members(block: np.ndarray, num_classes: int) -> np.ndarray:
    """(..., 9) class ids of the given blocks (the tail slot repeats a member when empty)."""
    width, tail = _blocks(num_classes)
    members = np.empty(block.shape + (_GROUPS + 1,), dtype=np.int64)
    members[..., :_GROUPS] = block[..., None] + np.arange(_GROUPS) * width
    members[..., _GROUPS] = np.where(block < tail, _GROUPS * width + block, block)
    return members


def _block_max(scores: np.ndarray) -> np.ndarray:
    """(..., B) maximum of each strided block, one pass over the rows (NaN propagates)."""
    num_classes = scores.shape[-1]
    width, tail = _blocks(num_classes)
    lead = scores.shape[:-1]
    block_max = scores[..., : _GROUPS * width].reshape(*lead, _GROUPS, width).max(axis=-2)
    if tail:
        np.maximum(block_max[..., :tail], scores[..., _GROUPS * width :], out=block_max[..., :tail])
    return block_max


def _top1_and_second(
    scores: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Per row: a class holding the maximum, the maximum, the largest *other* value, whether
    the row holds a NaN, and the block maxima (None for small C).

    Every class other than the returned one scores <= the second value (= the maximum when
    it is tied). With C >= 64 this takes one pass over the rows instead of a partition: the
    maximum lies in the block with the largest block maximum, and the second value is the
    larger of the other blocks' maxima and the other members of that block.
    """
    num_classes = scores.shape[-1]
    if num_classes < _GROUPS * _GROUPS:
        top = scores.argmax(axis=-1)
        best = np.take_along_axis(scores, top[..., None], axis=-1)[..., 0]
        other = np.where(np.arange(num_classes) == top[..., None], -np.inf, scores).max(axis=-1)
        return top, best, other.astype(scores.dtype), np.isnan(scores).any(axis=-1), None
    block_max = _block_max(scores)
    block = block_max.argmax(axis=-1)  # (M, n)
    members = _block_members(block, num_classes)
    member_values = np.take_along_axis(scores, members, axis=-1)
    pick = member_values.argmax(axis=-1)[..., None]
    top = np.take_along_axis(members, pick, axis=-1)[..., 0]
    best = np.take_along_axis(member_values, pick, axis=-1)[..., 0]
    # A NaN in the row makes its block's maximum NaN (np.maximum propagates it), argmax
    # picks the first NaN block and then that block's first NaN member: the row holds a NaN
    # exactly where ``best`` is NaN (one check per row instead of one per block).
    has_nan = np.isnan(best)
    inside = np.where(members == top[..., None], -np.inf, member_values).max(axis=-1)
    others = block_max.copy()
    np.put_along_axis(others, block[..., None], -np.inf, axis=-1)
    second = np.maximum(inside, others.max(axis=-1)).astype(scores.dtype)
    return top, best, second, has_nan, block_max


def _lowest_reaching(
    scores: np.ndarray, idx: np.ndarray, best: np.ndarray, num_classes: int
) -> np.ndarray:
    """Per entry, the lowest class of the list ``idx`` whose score equals ``best``
    (``num_classes`` where none does)."""
    if scores.shape[-1] == 1:  # no reduction over a length-1 axis (slow)
        return np.where(scores[..., 0] == best, idx[..., 0], num_classes)
    return np.where(scores == best[..., None], idx, num_classes).min(axis=-1)


def decide_from_lists(
    idx_a: np.ndarray,
    val_a: np.ndarray,
    bound_a: np.ndarray,
    b_at_a: np.ndarray,
    idx_b: np.ndarray,
    val_b: np.ndarray,
    bound_b: np.ndarray,
    a_at_b: np.ndarray,
    num_classes: int,
    weights: tuple[np.generic, np.generic] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The exact pruning step: ``argmax_c w·x_a[c] + v·x_b[c]`` from two candidate lists.

    Side a offers the classes ``idx_a`` (..., k_a) with its values ``val_a`` there, and every
    class outside its list has ``x_a <= bound_a`` (...); likewise side b. ``b_at_a`` is x_b
    at ``idx_a``, ``a_at_b`` is x_a at ``idx_b``. The union's scores are computed exactly;
    every class outside both lists scores at most ``w·bound_a + v·bound_b`` (IEEE multiply
    and add are monotone), so where the best union score beats that strictly, the argmax
    over all classes is the lowest union class reaching it (module doc). ``weights``
    ``(w, v)`` in the scores' dtype; None adds the two sides (the greedy step's ``S + x``).
    Arrays broadcast against each other.

    Returns ``(predictions, proven)``: predictions are right only where ``proven``; a NaN
    anywhere in the union leaves the entry unproven.
    """
    if weights is None:
        s1, s2 = val_a + b_at_a, a_at_b + val_b
        bound = bound_a + bound_b
    else:
        w, v = weights
        s1, s2 = w * val_a + v * b_at_a, w * a_at_b + v * val_b
        bound = w * bound_a + v * bound_b
    if s1.shape[-1] == 1 and s2.shape[-1] == 1:
        # One class a side (the first tier, P x n entries): fewer temporaries, in place.
        s1, s2, ia, ib = s1[..., 0], s2[..., 0], idx_a[..., 0], idx_b[..., 0]
        take_a = (s1 > s2) | ((s1 == s2) & (ia < ib))
        pred = np.where(take_a, ia, ib)
        del take_a
        np.maximum(s1, s2, out=s1)
        return pred, s1 > bound
    best = np.maximum(s1.max(axis=-1), s2.max(axis=-1))
    proven = best > bound
    pred = np.minimum(
        _lowest_reaching(s1, idx_a, best, num_classes),
        _lowest_reaching(s2, idx_b, best, num_classes),
    )
    return pred, proven


def top1_and_second(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row of ``scores`` (..., C): a class holding the maximum, the maximum, and a bound
    on every other class (the largest other value). The side lists of
    :func:`decide_from_lists` at k = 1."""
    top, best, second, _, _ = _top1_and_second(scores)
    return top, best, second


def all_pair_ensemble_predictions_topk(
    scores: np.ndarray,
    *,
    k: int = DEFAULT_K,
    weight: float = 0.5,
    stats: PruneStats | None = None,
    parallel_map: Callable[..., Iterable[Any]] | None = None,
    pairs: tuple[np.ndarray, np.ndarray] | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Exact ensemble predictions for every pair a < b (or the listed ``pairs``) on one
    chunk of examples.

    Three tiers, each exact, each deciding only what its bound proves (module doc):
    top-1 with the second largest values as bound (all pairs at once), exact top-k with the
    (k+1)-th values as bound (the entries still open), then the full rows.

    Args:
        scores: (M, n, C) float array, each model's ensemble inputs (calibrated
            probabilities or scaled logits) for the same n examples.
        k: list length of tier 2 (k + 1 >= C skips it: straight to full rows).
        weight: w of model a (the lower index); model b gets 1 - w.
        stats: optional PruneStats, updated with what each tier decided.
        parallel_map: optional ``map(function, iterable)`` (a thread pool's ``map``) that
            runs the cache-sized sub-chunks of examples side by side; each writes its own
            columns of the output and its own statistics (merged in sub-chunk order), so the
            result is the same with or without it.
        pairs: optional ``(a, b)`` index arrays of the pairs to decide (model a gets w):
            only their entries are computed, with no (M, M, n) temporary, so the M − 1
            pairs of one model (``measure.agreement.base_pair_index``) cost O(M·n) per
            chunk. Each pair's predictions equal its row of the all-pairs result.
        out: optional (P, n) int64 array that receives the predictions (a caller that
            decides chunk after chunk reuses one instead of a fresh block each time).

    Returns:
        (P, n) int64 predictions, P = M(M-1)/2 in ``np.triu_indices(M, 1)`` order (or one
        row per listed pair, in their order), equal to
        ``measure.ensemble.all_pair_ensemble_correct(..., return_predictions=True)`` exactly.
    """
    scores = np.asarray(scores)
    if scores.ndim != 3:
        raise ZoolensError(
            f"ensemble inputs must be (models, examples, classes), got {scores.shape}"
        )
    if not np.issubdtype(scores.dtype, np.floating):
        scores = scores.astype(np.float64)
    if int(k) < 1:
        raise ZoolensError(f"k must be >= 1, got {k}")
    num_models, n, num_classes = scores.shape
    w, v = _weights(weight, scores.dtype)
    listed = pairs is not None
    if pairs is None:
        pa, pb = pair_index(num_models)
    else:
        pa, pb = (np.asarray(x, dtype=np.int64) for x in pairs)
        if pa.shape != pb.shape or pa.ndim != 1:
            raise ZoolensError("pairs must be two index arrays of the same length")
        if len(pa) and (min(pa.min(), pb.min()) < 0 or max(pa.max(), pb.max()) >= num_models):
            raise ZoolensError(f"pairs: model indices must lie in 0 .. {num_models - 1}")
    if out is None:
        out = np.empty((len(pa), n), dtype=np.int64)
    elif out.shape != (len(pa), n) or out.dtype != np.int64:
        raise ZoolensError(
            f"out must be a ({len(pa)}, {n}) int64 array, got {out.dtype} {out.shape}"
        )
    if len(pa) == 0 or n == 0:
        return out
    # Sub-chunks of examples small enough for the passes over them to hit the cache.
    step = max(8, _SUBCHUNK_BYTES // (scores.dtype.itemsize * num_models * num_classes))
    starts = range(0, n, step)
    parts = [PruneStats() if stats is not None else None for _ in starts]

    def sub_chunk(lo: int, part: PruneStats | None) -> None:
        hi = min(n, lo + step)
        with np.errstate(invalid="ignore", over="ignore"):  # 0 * inf, inf - inf: fall back
            _predict_chunk(scores[:, lo:hi], int(k), w, v, pa, pb, part, out[:, lo:hi], listed)

    for _ in (parallel_map or map)(sub_chunk, starts, parts):
        pass
    if stats is not None:
        for part in parts:
            assert part is not None
            stats.entries += part.entries
            stats.fallbacks += part.fallbacks
            stats.tier1_open += part.tier1_open
            stats.per_chunk.extend(part.per_chunk)
    return out


def _predict_chunk(
    scores: np.ndarray,
    k: int,
    w: np.generic,
    v: np.generic,
    pa: np.ndarray,
    pb: np.ndarray,
    stats: PruneStats | None,
    out: np.ndarray,
    listed: bool = False,
) -> None:
    """The three tiers on one cache-sized (M, n, C) block (a view is fine: no copy is made);
    writes the (P, n) predictions into ``out``. ``listed``: ``pa``, ``pb`` are a list of
    pairs rather than all of them (gather per pair instead of per ordered model pair)."""
    num_models, n, num_classes = scores.shape

    # Tier 1: candidates {top_a, top_b}, bound from the second largest values.
    top, best_value, second, has_nan, block_max = _top1_and_second(scores)
    examples = np.arange(n)[None, :]
    if listed:
        # x_b[top_a(i)] and x_a[top_b(i)] for the listed pairs only: (P, n) each.
        b_at_a = scores[pb[:, None], examples, top[pa]]
        a_at_b = scores[pa[:, None], examples, top[pb]]
    else:
        # at_top[b, a, i] = x_b[top_a(i)]: one gather per ordered pair and example.
        at_top = scores[:, examples, top]
        b_at_a, a_at_b = at_top[pb, pa], at_top[pa, pb]
        del at_top
    top32 = top.astype(np.int32)  # halves the traffic of the (P, n) index arrays
    pred, proven = decide_from_lists(
        top32[pa][..., None],
        best_value[pa][..., None],
        second[pa],
        b_at_a[..., None],
        top32[pb][..., None],
        best_value[pb][..., None],
        second[pb],
        a_at_b[..., None],
        num_classes,
        (w, v),
    )
    del b_at_a, a_at_b
    out[...] = pred
    del pred
    if has_nan.any():  # NaN rows follow numpy's argmax rules: the full rows decide them
        proven &= ~(has_nan[pa] | has_nan[pb])

    open_p, open_i = np.nonzero(~proven)
    tier1_open = len(open_p)
    fallbacks = 0
    if k + 1 < num_classes and len(open_p):
        # Tier 2 (then 3) on the entries whose rows hold no NaN; NaN rows go to tier 3.
        nan = has_nan[pa[open_p], open_i] | has_nan[pb[open_p], open_i]
        t2 = np.flatnonzero(~nan)
        pred2, fell = _decide_top_k(
            scores, block_max, pa[open_p[t2]], pb[open_p[t2]], open_i[t2], k, w, v
        )
        out[open_p[t2], open_i[t2]] = pred2
        fallbacks = len(fell)
        open_p, open_i = open_p[nan], open_i[nan]

    # Tier 3: the full rows.
    out[open_p, open_i] = full_row_argmax(
        lambda e: w * scores[pa[open_p[e]], open_i[e]] + v * scores[pb[open_p[e]], open_i[e]],
        len(open_p),
    )
    fallbacks += len(open_p)

    if stats is not None:
        stats.entries += out.size
        stats.fallbacks += fallbacks
        stats.tier1_open += tier1_open
        stats.per_chunk.append(fallbacks / out.size)


def row_top_k(
    scores: np.ndarray, block_max: np.ndarray | None, rows: tuple, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact top-k of the rows ``scores[rows]`` (rows: a tuple of index arrays selecting
    (R,) rows of the (..., C) array; a view is fine).

    Returns (indices (R, k), values (R, k), bound (R,)): every class outside a row's list
    scores <= its bound (the (k+1)-th largest value, or a block maximum no larger than it).
    With block maxima: the top-k classes lie in the k blocks with the largest maxima (each
    of those blocks holds a class >= every class of any other block), so only those blocks'
    9k members are partitioned; classes in the other blocks are <= the (k+1)-th block max.
    """
    num_classes = scores.shape[-1]
    if block_max is None or k + 1 >= block_max.shape[-1]:
        part_rows = scores[rows]
        part = np.argpartition(part_rows, num_classes - k - 1, axis=-1)[:, num_classes - k - 1 :]
        values = np.take_along_axis(part_rows, part, axis=-1)
        return part[:, 1:], values[:, 1:], values[:, 0]
    bm = block_max[rows]  # (R, B)
    num_rows, num_blocks = bm.shape
    bpart = np.argpartition(bm, num_blocks - k - 1, axis=-1)[:, num_blocks - k - 1 :]
    outside_blocks = np.take_along_axis(bm, bpart[:, :1], axis=-1)[:, 0]
    cand = _block_members(bpart[:, 1:], num_classes).reshape(num_rows, -1)  # (R, 9k)
    cand_values = scores[tuple(r[:, None] for r in rows) + (cand,)]
    # Duplicated tail slots repeat a member: push the copies down so they are not counted twice.
    dup = np.zeros(cand.shape, dtype=bool)
    dup.reshape(num_rows, k, _GROUPS + 1)[..., _GROUPS] = bpart[:, 1:] >= _blocks(num_classes)[1]
    cand_values = np.where(dup, -np.inf, cand_values).astype(scores.dtype)
    m = cand.shape[1]
    part = np.argpartition(cand_values, m - k - 1, axis=-1)[:, m - k - 1 :]
    values = np.take_along_axis(cand_values, part, axis=-1)
    idx = np.take_along_axis(cand, part[:, 1:], axis=-1)
    return idx, values[:, 1:], np.maximum(values[:, 0], outside_blocks)


def _decide_top_k(
    scores: np.ndarray,
    block_max: np.ndarray | None,
    ea: np.ndarray,
    eb: np.ndarray,
    ei: np.ndarray,
    k: int,
    w: np.generic,
    v: np.generic,
) -> tuple[np.ndarray, np.ndarray]:
    """Tiers 2 and 3 on entries (a, b, example): both rows' exact top-k (:func:`row_top_k`),
    then :func:`settle_open`. Only the rows (model, example) these entries touch get a top-k.

    Returns ``(predictions, positions of the entries decided from full rows)``.
    """
    if len(ea) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    num_models, n, num_classes = scores.shape
    needed = np.zeros((num_models, n), dtype=bool)
    needed[ea, ei] = True
    needed[eb, ei] = True
    rows = np.nonzero(needed)
    position = np.empty((num_models, n), dtype=np.int64)
    position[rows] = np.arange(len(rows[0]))
    idx, values, bound_row = row_top_k(scores, block_max, rows, k)
    ra, rb = position[ea, ei], position[eb, ei]
    idx_a, idx_b = idx[ra], idx[rb]
    # The other side's value at each listed class, gathered from its full row.
    return settle_open(
        (idx_a, values[ra], bound_row[ra]),
        scores[eb[:, None], ei[:, None], idx_a],
        (idx_b, values[rb], bound_row[rb]),
        scores[ea[:, None], ei[:, None], idx_b],
        num_classes,
        (w, v),
        lambda e: w * scores[ea[e], ei[e]] + v * scores[eb[e], ei[e]],
    )


def full_row_argmax(full_rows: Callable[[np.ndarray], np.ndarray], count: int) -> np.ndarray:
    """The last tier: ``full_rows(entries)`` -> their (len(entries), C) combined scores, for
    ``count`` entries in batches of ``_FALLBACK_BATCH`` (bounded temporary memory); returns
    each entry's argmax (lowest class among the maxima, NaN as numpy's argmax has it)."""
    out = np.empty(count, dtype=np.int64)
    for lo in range(0, count, _FALLBACK_BATCH):
        entries = np.arange(lo, min(count, lo + _FALLBACK_BATCH))
        out[entries] = full_rows(entries).argmax(axis=-1)
    return out


def settle_open(
    lists_a: tuple[np.ndarray, np.ndarray, np.ndarray],
    b_at_a: np.ndarray,
    lists_b: tuple[np.ndarray, np.ndarray, np.ndarray],
    a_at_b: np.ndarray,
    num_classes: int,
    weights: tuple[np.generic, np.generic] | None,
    full_rows: Callable[[np.ndarray], np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """The pruning engine's second tier and full-row fallback on E entries the first bound
    left open; the one implementation pair ensembles (:func:`_decide_top_k`) and the greedy
    step (``measure.ensemble._CandidateScorer``) both use.

    ``lists_a`` = (classes (E, k_a), side a's values there, bound (E,) on side a's every
    other class), ``b_at_a`` (E, k_a) side b's values at those classes; likewise side b.
    :func:`decide_from_lists` decides what the bounds prove; every other entry is computed
    from ``full_rows(entries)`` (positions into the E entries -> (len, C) combined scores,
    in the kernel's dtype and operations) by :func:`full_row_argmax`.

    Returns ``(predictions (E,) int64, positions of the entries decided from full rows)``;
    the predictions equal the full rows' argmax everywhere.
    """
    idx_a, val_a, bound_a = lists_a
    idx_b, val_b, bound_b = lists_b
    pred, proven = decide_from_lists(
        idx_a, val_a, bound_a, b_at_a, idx_b, val_b, bound_b, a_at_b, num_classes, weights
    )
    pred = pred.astype(np.int64, copy=False)
    rest = np.flatnonzero(~proven)
    pred[rest] = full_row_argmax(lambda e: full_rows(rest[e]), len(rest))
    return pred, rest


def all_pair_ensemble_correct_topk(
    inputs: np.ndarray,
    labels: np.ndarray,
    weight: float = 0.5,
    *,
    k: int = DEFAULT_K,
    return_predictions: bool = False,
    stats: PruneStats | None = None,
) -> np.ndarray:
    """Drop-in for ``measure.ensemble.all_pair_ensemble_correct`` with exact top-k pruning.

    ``inputs`` (M, n, C) ensemble inputs of one chunk of examples, ``labels`` (n,) or (n, C)
    (multi-label: right = one of the valid labels). Returns (P, n) bool correctness, or the
    (P, n) int64 predictions with ``return_predictions=True``; identical to the full-row
    function's output. Stream the evaluation split through it chunk by chunk.
    """
    pred = all_pair_ensemble_predictions_topk(inputs, k=k, weight=weight, stats=stats)
    return pred if return_predictions else correctness(pred, labels)
