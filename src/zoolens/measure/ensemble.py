"""Ensembles of calibrated models: pairs, all pairs, interpolation, majority vote, greedy selection.

The ensemble of a pair (a, b) predicts ``argmax_c  w·x_a[c] + (1 − w)·x_b[c]`` (lowest class
index among the maxima), where x are the models' *ensemble inputs*:

- ``combine="probs"`` (default, docs/design.md sec. 3): calibrated probabilities
  ``q = softmax(z / T)``; w = 0.5 is the plain average (q_a + q_b) / 2.
- ``combine="logits"`` (the paper's Fig. 11 variant): temperature-scaled scores ``z / T``
  (logits or log-probabilities), i.e. ``argmax  w·z_a/T_a + (1 − w)·z_b/T_b``.

:func:`ensemble_inputs` makes either from scores and a temperature. Arithmetic is fixed so
that every path (pair, all pairs, the top-k pruned kernel in ``measure.topk``) rounds the
same way: ``w`` and ``1 − w`` are cast to the inputs' dtype and the score is
``w·x_a + (1−w)·x_b`` in that dtype (:func:`combine_scores`). For w = 0.5 this equals
``(x_a + x_b)·0.5`` exactly, so its argmax is that of ``x_a + x_b``.

Paper: Gontijo-Lopes, Dauphin & Cubuk (2021), Sec. 4.2-4.3 (pair ensembles, gain and
conversion, Fig. 2 and 10), Sec. 4.5 (greedy selection, Fig. 5), App. Fig. 11 (interpolation).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal, cast

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from zoolens.errors import ZoolensError
from zoolens.measure.agreement import correctness, pair_index
from zoolens.measure.calibration import softmax
from zoolens.measure.topk import decide_from_lists, row_top_k, settle_open, top1_and_second

__all__ = [
    "COMBINE_MODES",
    "check_combine",
    "ensemble_inputs",
    "combine_scores",
    "pair_ensemble_predictions",
    "weighted_pair_predictions",
    "pair_ensemble_correct",
    "all_pair_ensemble_correct",
    "EnsembleCounts",
    "ensemble_counts",
    "ensemble_rates",
    "class_aware_mask",
    "class_weights",
    "interpolation_curve",
    "majority_vote",
    "GreedyResult",
    "greedy_forward_selection",
]

Combine = Literal["probs", "logits"]
COMBINE_MODES: tuple[str, ...] = ("probs", "logits")
"""How members are averaged: calibrated probabilities or temperature-scaled logits."""

# Temporary (pairs or candidates) x rows x classes blocks are kept near this many bytes.
_BLOCK_BYTES = 64 * 2**20
# Size L of the second pruning tier of the greedy step (S's L largest classes).
_GREEDY_TIER2 = 8
# open entries a greedy step settles at a time (~L + 8 numbers each; their rows, copied
# whole by the top-L search, are bounded by _BLOCK_BYTES too)
_OPEN_ENTRIES = 1 << 19


def ensemble_inputs(
    scores: np.ndarray, temperature: float, combine: str = "probs", *, dtype: DTypeLike = np.float32
) -> np.ndarray:
    """What a model contributes to an ensemble: ``softmax(z/T)`` ("probs") or ``z/T`` ("logits").

    ``scores`` (n, C) logits or log-probabilities; computed in float64, returned in ``dtype``.
    """
    if combine == "probs":
        return softmax(scores, temperature, dtype=dtype)
    if combine == "logits":
        if not (temperature > 0 and np.isfinite(temperature)):
            raise ZoolensError(f"temperature must be positive and finite, got {temperature}")
        return (np.asarray(scores, dtype=np.float64) / temperature).astype(dtype)
    check_combine(combine)
    raise AssertionError("unreachable: check_combine accepts only probs and logits")


def check_combine(combine: str) -> Combine:
    """``combine`` itself when it is one of :data:`COMBINE_MODES`, else a ZoolensError naming it
    (the one check, made where a call enters: ``analyze``'s options, the CLI, this module)."""
    if combine not in COMBINE_MODES:
        raise ZoolensError(f"combine {combine!r}: use 'probs' or 'logits'")
    return cast(Combine, combine)


def _weight_pair(weight: ArrayLike, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    w = np.asarray(weight, dtype=np.float64)
    if np.any(~(w >= 0) | ~(w <= 1)):
        raise ZoolensError(f"ensemble weight must lie in [0, 1], got {weight!s}")
    return w.astype(dtype), (1.0 - w).astype(dtype)


def combine_scores(x_a: np.ndarray, x_b: np.ndarray, weight: ArrayLike = 0.5) -> np.ndarray:
    """Per-class ensemble score ``w·x_a + (1 − w)·x_b`` in the inputs' (promoted) dtype.

    ``weight`` is a scalar or a per-class (C,) vector (class-aware interpolation); ``w`` and
    ``1 − w`` are computed in float64 and cast to the inputs' dtype before multiplying, the
    convention shared with ``measure.topk.combine_scores``.
    """
    dtype = np.result_type(x_a, x_b)
    w, v = _weight_pair(weight, dtype)
    return w * np.asarray(x_a, dtype) + v * np.asarray(x_b, dtype)


def pair_ensemble_predictions(
    x_a: np.ndarray, x_b: np.ndarray, weight: ArrayLike = 0.5
) -> np.ndarray:
    """(n,) int64 predictions of the pair ensemble: ``argmax_c w·x_a[c] + (1−w)·x_b[c]``,
    lowest index on ties (module doc; paper Sec. 4.2, Fig. 2).

    Parameters
    ----------
    x_a, x_b : (n, C) arrays
        What each member contributes (:func:`ensemble_inputs`: calibrated probabilities or
        scaled logits).
    weight : float in [0, 1]
        Weight w of member a.

    Returns
    -------
    (n,) int64 array of classes.

    Examples
    --------
    >>> x_a = np.array([[0.6, 0.4], [0.2, 0.8]])
    >>> x_b = np.array([[0.1, 0.9], [0.3, 0.7]])
    >>> pair_ensemble_predictions(x_a, x_b).tolist()   # means (.35, .65), (.25, .75)
    [1, 1]
    >>> pair_ensemble_predictions(x_a, x_b, weight=0.9).tolist()
    [0, 1]
    """
    return combine_scores(x_a, x_b, weight).argmax(axis=-1)


# Rows per block of weighted_pair_predictions: two (rows, C) buffers of about this size
# stay in cache, so the weights after the first find their rows there.
_WEIGHTED_BLOCK_BYTES = 2**20


def weighted_pair_predictions(
    x_a: np.ndarray, x_b: np.ndarray, weights: Sequence[ArrayLike]
) -> np.ndarray:
    """(len(weights), n) int64: :func:`pair_ensemble_predictions` at each weight.

    The same arithmetic entry by entry (``w·x_a + (1 − w)·x_b`` in the inputs' dtype, each
    weight a scalar or a per-class (C,) vector), so the same predictions bit for bit; run
    over blocks of rows with two reused buffers instead of three fresh (n, C) temporaries per
    weight: a curve of 11 weights over 20,000 x 1,000 float32 rows allocated and zeroed
    ~2.6 GB that way.

    Examples
    --------
    >>> x_a = np.array([[0.6, 0.4], [0.2, 0.8]])
    >>> x_b = np.array([[0.1, 0.9], [0.3, 0.7]])
    >>> weighted_pair_predictions(x_a, x_b, [0.5, 0.9]).tolist()
    [[1, 1], [0, 1]]
    """
    a_all, b_all = np.asarray(x_a), np.asarray(x_b)
    if a_all.shape != b_all.shape or a_all.ndim != 2:
        raise ZoolensError(
            f"pair inputs must be two (n, C) arrays, got {a_all.shape} and {b_all.shape}"
        )
    dtype = np.result_type(a_all, b_all)
    pairs = [_weight_pair(weight, dtype) for weight in weights]
    n, c = a_all.shape
    out = np.empty((len(pairs), n), dtype=np.int64)
    step = max(1, min(n, _WEIGHTED_BLOCK_BYTES // (dtype.itemsize * max(1, c))))
    buf_a, buf_b = np.empty((step, c), dtype), np.empty((step, c), dtype)
    for start in range(0, n, step):
        stop = min(n, start + step)
        rows = stop - start
        a = np.asarray(a_all[start:stop], dtype)
        b = np.asarray(b_all[start:stop], dtype)
        score, other = buf_a[:rows], buf_b[:rows]
        for k, (w, v) in enumerate(pairs):
            np.multiply(w, a, out=score)
            np.multiply(v, b, out=other)
            np.add(score, other, out=score)
            np.argmax(score, axis=-1, out=out[k, start:stop])
    return out


def pair_ensemble_correct(
    x_a: np.ndarray, x_b: np.ndarray, labels: np.ndarray, weight: ArrayLike = 0.5
) -> np.ndarray:
    """(n,) bool: the pair ensemble's top-1 is right (single or multi-label truth)."""
    return correctness(pair_ensemble_predictions(x_a, x_b, weight), labels)


def all_pair_ensemble_correct(
    inputs: np.ndarray,
    labels: np.ndarray,
    weight: float = 0.5,
    *,
    return_predictions: bool = False,
    pairs: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Ensemble correctness of every unordered pair on one chunk of examples: (P, n) bool.

    ``inputs`` is the (M, n, C) block of the M models' ensemble inputs (calibrated
    probabilities or scaled logits, :func:`ensemble_inputs`) on n examples, ``labels`` (n,) or
    (n, C). Row p is pair ``pair_index(M)[p]``; entry ``[p, i]`` is whether
    ``argmax_c w·x_a[i, c] + (1−w)·x_b[i, c]`` (lowest index on ties) is right. With
    ``return_predictions=True`` returns the (P, n) int64 predictions instead.

    This is the full-row reference: P·n·C work, vectorised over b for each a (a loop over
    models, never over pairs) in blocks of bounded memory. Stream the evaluation split through
    it chunk by chunk and add the counts (:func:`ensemble_counts`); ``measure.topk`` computes
    the same result with exact top-k pruning. ``pairs``: optional ``(a, b)`` index arrays;
    then row p is pair ``(a[p], b[p])`` (model a gets the weight), the same values as its
    all-pairs row.
    """
    x = np.asarray(inputs)
    if x.ndim != 3:
        raise ZoolensError(f"ensemble inputs must be (models, examples, classes), got {x.shape}")
    num_models, n, num_classes = x.shape
    if pairs is not None:
        pa, pb = (np.asarray(p, dtype=np.int64) for p in pairs)
        listed = np.empty((len(pa), n), dtype=np.int64 if return_predictions else bool)
        per_block = max(1, _BLOCK_BYTES // max(1, n * num_classes * x.dtype.itemsize))
        for lo in range(0, len(pa), per_block):
            block = slice(lo, lo + per_block)
            pred = combine_scores(x[pa[block]], x[pb[block]], weight).argmax(axis=-1)
            listed[block] = pred if return_predictions else correctness(pred, labels)
        return listed
    a_idx, _ = pair_index(num_models)
    out = np.empty((len(a_idx), n), dtype=np.int64 if return_predictions else bool)
    per_block = max(1, _BLOCK_BYTES // max(1, n * num_classes * x.dtype.itemsize))
    row = 0
    for a in range(num_models - 1):
        for lo in range(a + 1, num_models, per_block):
            hi = min(num_models, lo + per_block)
            pred = combine_scores(x[a][None], x[lo:hi], weight).argmax(axis=-1)
            out[row : row + hi - lo] = pred if return_predictions else correctness(pred, labels)
            row += hi - lo
    return out


@dataclass
class EnsembleCounts:
    """Exact counts behind the pair-ensemble rates, per pair ((P,) int64 arrays; add chunks
    with ``+``). ``n``: examples; ``ensemble_right``; ``exactly_one``: examples where exactly
    one member is right; ``converted``: of those, ensemble right; ``both_wrong``;
    ``neither_converted``: ensemble right where both members are wrong."""

    n: np.ndarray
    ensemble_right: np.ndarray
    exactly_one: np.ndarray
    converted: np.ndarray
    both_wrong: np.ndarray
    neither_converted: np.ndarray
    right_a: np.ndarray
    right_b: np.ndarray

    def __add__(self, other: EnsembleCounts) -> EnsembleCounts:
        return EnsembleCounts(
            *(getattr(self, f) + getattr(other, f) for f in self.__dataclass_fields__)
        )


def ensemble_counts(
    correct_a: np.ndarray, correct_b: np.ndarray, correct_ens: np.ndarray
) -> EnsembleCounts:
    """Count the 2x2 outcomes and the ensemble's conversions, per pair.

    Arguments are (P, n) (or (n,)) boolean correctness of member a, member b and their
    ensemble; e.g. ``correct[a_idx]``, ``correct[b_idx]`` and :func:`all_pair_ensemble_correct`.

    Parameters
    ----------
    correct_a, correct_b, correct_ens : (P, n) or (n,) bool arrays

    Returns
    -------
    EnsembleCounts of (P,) int64 arrays (the input of :func:`ensemble_rates`).

    Examples
    --------
    >>> ra = np.array([1, 1, 0, 0, 1], dtype=bool)
    >>> rb = np.array([1, 0, 1, 0, 0], dtype=bool)
    >>> ens = np.array([1, 1, 0, 1, 1], dtype=bool)
    >>> c = ensemble_counts(ra, rb, ens)
    >>> c.exactly_one.tolist(), c.converted.tolist(), c.both_wrong.tolist()
    ([3], [2], [1])
    """
    ra, rb, re = (
        np.atleast_2d(np.asarray(v, dtype=bool)) for v in (correct_a, correct_b, correct_ens)
    )
    # Two temporaries, each reused in place (six fresh (P, n) arrays made the pairs'
    # blocks spend much of their time in page faults), laid out like the full-size inputs:
    # transposed views (study.pairblocks passes (n, P) arrays' .T) into a C-ordered
    # temporary made every operation a transposing copy, ~8x slower.
    shape = np.broadcast_shapes(ra.shape, rb.shape, re.shape)
    like = next((v for v in (ra, rb, re) if v.shape == shape), ra)
    one = np.bitwise_xor(ra, rb, out=np.empty_like(like, dtype=bool, shape=shape))
    exactly_one = one.sum(axis=1, dtype=np.int64)
    one &= re
    converted = one.sum(axis=1, dtype=np.int64)
    neither = np.bitwise_or(ra, rb, out=one)
    np.logical_not(neither, out=neither)
    both_wrong = neither.sum(axis=1, dtype=np.int64)
    neither &= re
    return EnsembleCounts(
        n=np.full(re.shape[0], re.shape[1], dtype=np.int64),
        ensemble_right=re.sum(axis=1, dtype=np.int64),
        exactly_one=exactly_one,
        converted=converted,
        both_wrong=both_wrong,
        neither_converted=neither.sum(axis=1, dtype=np.int64),
        right_a=ra.sum(axis=1, dtype=np.int64),
        right_b=rb.sum(axis=1, dtype=np.int64),
    )


def ensemble_rates(counts: EnsembleCounts) -> dict[str, np.ndarray]:
    """Pair-ensemble rates from counts (docs/design.md sec. 3), (P,) float64 each.

    ``ensemble_acc`` = mean(ensemble right); ``ensemble_gain`` = ensemble_acc − (p_a + p_b)/2
    (Fig. 2 left); ``conversion_rate`` = P(ensemble right | exactly one member right)
    (Fig. 2 right); ``neither_conversion`` = P(ensemble right | both wrong) (Fig. 10). A rate
    whose condition never occurs is NaN, never 0.

    Parameters
    ----------
    counts : EnsembleCounts (:func:`ensemble_counts`)

    Returns
    -------
    dict of (P,) float64 arrays: ensemble_acc, ensemble_gain, conversion_rate,
    neither_conversion.

    Examples
    --------
    >>> ra = np.array([1, 1, 0, 0, 1], dtype=bool)
    >>> rb = np.array([1, 0, 1, 0, 0], dtype=bool)
    >>> rates = ensemble_rates(ensemble_counts(ra, rb, np.array([1, 1, 0, 1, 1], dtype=bool)))
    >>> {k: round(float(v[0]), 4) for k, v in rates.items()}
    {'ensemble_acc': 0.8, 'ensemble_gain': 0.3, 'conversion_rate': 0.6667, 'neither_conversion': 1.0}
    """
    n = counts.n.astype(np.float64)
    acc = counts.ensemble_right / n
    with np.errstate(invalid="ignore", divide="ignore"):
        conversion = np.where(counts.exactly_one > 0, counts.converted / counts.exactly_one, np.nan)
        neither = np.where(
            counts.both_wrong > 0, counts.neither_converted / counts.both_wrong, np.nan
        )
    return {
        "ensemble_acc": acc,
        "ensemble_gain": acc - (counts.right_a + counts.right_b) / (2 * n),
        "conversion_rate": conversion,
        "neither_conversion": neither,
    }


def class_aware_mask(
    correct_a: np.ndarray, correct_b: np.ndarray, labels: np.ndarray, num_classes: int
) -> np.ndarray:
    """(C,) bool: classes on which model a is at least as accurate as model b.

    Per-class recall on the given (calibration) examples: ``recall_m[c]`` = fraction of the
    examples of class c that m gets right (multi-label truth: examples having c among their
    valid labels). Classes with no example count as recall 0 for both, hence True (a wins
    ties). Used by :func:`class_weights` for class-aware interpolation.
    """
    lab = np.asarray(labels)
    member = (lab != 0) if lab.ndim == 2 else (lab[:, None] == np.arange(num_classes)[None, :])
    member = member.astype(np.float64)
    size = member.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        rec_a = np.where(size > 0, np.asarray(correct_a, np.float64) @ member / size, 0.0)
        rec_b = np.where(size > 0, np.asarray(correct_b, np.float64) @ member / size, 0.0)
    return ~(rec_a < rec_b)


def class_weights(weight: float, mask: np.ndarray) -> np.ndarray:
    """Per-class weight of model a for class-aware interpolation (paper Fig. 11 right).

    ``w_c = w`` on the classes where a is at least as accurate as b (``mask``, from
    :func:`class_aware_mask` on the calibration split) and ``1 − w`` on the others. The
    ensemble score is ``w_c·x_a[c] + (1 − w_c)·x_b[c]``: w = 0.5 is the plain pair ensemble
    and w = 1 takes each class's score from the model better on that class.
    """
    return np.where(np.asarray(mask, dtype=bool), float(weight), 1.0 - float(weight))


def interpolation_curve(
    x_a: np.ndarray,
    x_b: np.ndarray,
    labels: np.ndarray,
    weights: Sequence[float] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """Ensemble accuracy at each weight (paper Fig. 11): (len(weights),) float64.

    Without ``mask``: ``argmax w·x_a + (1−w)·x_b`` (w = 1 is model a alone, w = 0 model b).
    With ``mask`` (class-aware, :func:`class_weights`): per-class weights ``w_c``.
    """
    per_class = [w if mask is None else class_weights(w, mask) for w in weights]
    predictions = weighted_pair_predictions(x_a, x_b, per_class)
    return np.array([correctness(p, labels).mean() for p in predictions], dtype=np.float64)


def majority_vote(predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """Plurality vote of M models' top-1 predictions: (N,) int64, lowest class on tied counts.

    ``predictions`` (M, N) integer classes in 0..C−1, or -1 for an abstention, which casts
    no vote; an example where every model abstains gets -1 (never right). Needs no
    probabilities, so decision-only models take part. Counts come from one ``bincount`` over
    ``n·C + prediction``.

    Parameters
    ----------
    predictions : (M, N) integer array
    num_classes : int

    Returns
    -------
    (N,) int64 array of classes (-1 where nobody answered).

    Examples
    --------
    >>> majority_vote(np.array([[0, 1, 2], [0, 2, 1], [1, 2, 0]]), 3).tolist()  # last: a tie
    [0, 2, 0]
    """
    pred = np.asarray(predictions)
    if pred.ndim != 2 or pred.shape[0] == 0:
        raise ZoolensError(f"majority vote needs (models, examples) predictions, got {pred.shape}")
    if pred.size and (pred.min() < -1 or pred.max() >= num_classes):
        raise ZoolensError(f"a prediction lies outside the {num_classes} classes")
    n = pred.shape[1]
    voted = pred >= 0
    flat = (np.arange(n, dtype=np.int64)[None, :] * num_classes + pred)[voted]
    votes = np.bincount(flat, minlength=n * num_classes).reshape(n, num_classes)
    return np.where(voted.any(axis=0), votes.argmax(axis=1), -1)


@dataclass(frozen=True)
class GreedyResult:
    """Result of :func:`greedy_forward_selection`.

    members: model indices with repeats; ``members[0]`` is the start model and
    ``members[s]`` the one added at step s (steps 0..max_steps). calibration_correct /
    calibration_accuracy: (steps+1,) right answers / accuracy of each prefix on the choosing
    rows. evaluation_accuracy: (steps+1,) on the evaluation rows (None when not given).
    best_step: the step whose prefix has the best calibration accuracy (earliest on ties);
    kept: number of members kept, ``best_step + 1`` (``members[:kept]`` is the ensemble).
    evaluation_correct: (steps+1, N_eval) bool per-example correctness of each prefix on the
    evaluation rows (row s is the mean behind ``evaluation_accuracy[s]``; None when not given).
    """

    members: list[int]
    calibration_correct: np.ndarray
    calibration_accuracy: np.ndarray
    evaluation_accuracy: np.ndarray | None
    best_step: int
    kept: int
    evaluation_correct: np.ndarray | None = None


def _rows(block, rows):
    return np.asarray(block[rows] if rows is not None else block)


def _candidate_rows(probs: Any, pool: np.ndarray, rows: np.ndarray | None) -> list[Any]:
    """The pool's models on the choosing rows, one C-contiguous (n, C) array each: views of
    ``probs`` where possible (all rows of an array), one read / copy per model otherwise.
    A source may instead serve an array-like candidate (``study.greedy``'s lazy ones: with
    ``take``, row indexing, ``__array__`` and ``top1_and_second``), kept as it is."""
    out = []
    for k in pool:
        block = probs[int(k)] if rows is None else probs[int(k)][rows]
        out.append(block if hasattr(block, "top1_and_second") else np.ascontiguousarray(block))
    return out


class _EvaluationSum:
    """The running sum on the evaluation rows: ``add(k)`` adds model k's rows. A source with
    ``add_rows`` (a zoo reader) adds them in blocks, never holding them whole; otherwise the
    last added model's rows are kept, as repeats are often consecutive."""

    def __init__(self, probs: Any, rows: np.ndarray, num_classes: int, labels: np.ndarray):
        self.probs, self.rows = probs, rows
        self.labels = labels[rows]
        self.total = np.zeros((len(rows), num_classes))
        self.cached: tuple[int, np.ndarray] | None = None

    def add(self, k: int) -> np.ndarray:
        """Add model k; the (n,) correctness of the ensemble so far on these rows."""
        source = self.probs[k]
        add_rows = getattr(source, "add_rows", None)
        if add_rows is not None:
            add_rows(self.total, self.rows)
        else:
            if self.cached is None or self.cached[0] != k:
                self.cached = (k, _rows(source, self.rows))
            self.total += self.cached[1]
        return correctness(self.total.argmax(axis=1), self.labels)


def _nothing(x: np.ndarray) -> None:
    return None


class _CandidateScorer:
    """Predictions of ``argmax_c S[i, c] + x_k[i, c]`` for every candidate k at once.

    ``S`` is the float64 running sum of the members, ``x_k`` a candidate's rows (a list of
    (n, C) arrays, never stacked: no copy of the pool); every score is ``fl64(S + x)``, so
    the paths below agree bit for bit.

    Exact pruning, by the kernel pair ensembles use (``measure.topk.decide_from_lists``,
    with S and x_k as its two sides): let a be S's argmax on a row and S2 its largest other
    value, b the candidate's argmax and x2 its largest other value (b, x_b, x2 computed once
    per candidate). Every class c outside {a, b} has ``S_c + x_c <= S2 + x2`` — after
    rounding too, IEEE addition being monotone. So if the better of ``S_a + x_a`` and
    ``S_b + x_b`` is strictly above that bound, the full argmax is the lower index among
    {a, b} reaching it. Entries left open get a second tier with S's L = 8 largest classes
    (``_second_tier``), and what is still open (ties with a bound, NaN) is recomputed from
    its full row, both by ``measure.topk.settle_open``, the engine the pair kernel uses.
    Cost per step: a few reductions over S (n·C), 2·K·n gathers, L per open entry, C per
    fallen-back entry — instead of K·n·C. The decisions are vectorised over (candidate,
    example); only the O(n) gathers run per candidate.

    Candidates may be memory maps (a pool larger than RAM on disk): each is read once
    for the top-2 precompute, then touched only by the per-step gathers and fallback rows;
    ``after_use(x_k)`` is called after each use (``study.pages.release_pages`` drops a map's
    resident pages there, so the process holds at most one candidate's pages at a time).
    They may also be array-likes that compute entries on demand (``study.greedy``'s lazy
    candidates): ``take``, row indexing, ``np.asarray`` and a precomputed
    ``top1_and_second``, optionally ``add_to(total)``.
    """

    def __init__(
        self,
        cand: list[Any],
        prune: bool,
        after_use: Callable[[np.ndarray], None] | None = None,
    ):
        self.cand = cand
        self.after_use = after_use or _nothing
        num_k = len(cand)
        n, num_classes = cand[0].shape
        self.prune = bool(prune) and num_classes > 2
        self.chunk = max(
            1, _BLOCK_BYTES // (8 * num_k * (16 if self.prune else num_classes) + 16 * num_classes)
        )
        self.fallbacks = 0
        self.entries = 0
        self.shared_total = False  # set by _GroupedScorer: S is read by other threads
        # Per step (begin_step): S's argmax on every row and each candidate's value there,
        # gathered once per candidate and step instead of once per candidate and row block
        # (the blocks shrink as 1/K, so per-block gathers grew as K² per step).
        self.step: tuple[np.ndarray, np.ndarray] | None = None
        if self.prune:
            self.arg = np.empty((num_k, n), dtype=np.int64)
            self.top = np.empty((num_k, n), dtype=np.result_type(*[c.dtype for c in cand]))
            self.second = np.empty((num_k, n), dtype=self.top.dtype)
            rows = max(1, (4 * 2**20) // (cand[0].dtype.itemsize * num_classes))  # cache-sized
            for k, c in enumerate(cand):
                precomputed = getattr(c, "top1_and_second", None)
                if precomputed is not None:  # a lazy candidate computed these when read
                    self.arg[k], self.top[k], self.second[k] = precomputed()
                    continue
                for lo in range(0, n, rows):
                    arg, top, second = top1_and_second(c[lo : lo + rows])
                    self.arg[k, lo : lo + rows] = arg
                    self.top[k, lo : lo + rows] = top
                    self.second[k, lo : lo + rows] = second
                self.after_use(c)

    def _take(self, k: int, flat_index: np.ndarray) -> np.ndarray:
        """``x_k.flat[flat_index]`` (then ``after_use(x_k)``)."""
        # ndarray.take gathers from the flattened array (a view: no copy), as fast as
        # np.take on a 1-D view and several times faster than fancy indexing.
        out = self.cand[k].take(flat_index)
        self.after_use(self.cand[k])
        return out

    def _gather(self, ks: np.ndarray, flat_index: np.ndarray) -> np.ndarray:
        """``x_k.flat[flat_index]`` for each entry's candidate ``ks`` (grouped by candidate)."""
        out = np.empty(flat_index.shape, dtype=self.top.dtype if self.prune else np.float64)
        order = np.argsort(ks, kind="stable")
        # Only the candidates that have entries (a loop over all K per row block cost
        # K² per step at thousands of candidates).
        present, starts = np.unique(ks[order], return_index=True)
        ends = np.append(starts[1:], len(order))
        for k, begin, end in zip(present.tolist(), starts.tolist(), ends.tolist()):
            sel = order[begin:end]
            out[sel] = self._take(k, flat_index[sel])
        return out

    def begin_step(self, total: np.ndarray) -> None:
        """Gather, for the step about to score ``total`` block by block, S's argmax a on
        every row and ``x_k[i, a_i]`` for every candidate (the same entries the blocks
        would gather, so the same values)."""
        self.step = None
        if not self.prune:
            return
        n, num_classes = total.shape
        a = total.argmax(axis=1)
        flat = np.arange(n) * num_classes + a
        self.step = (a, np.stack([self._take(k, flat) for k in range(len(self.cand))]))

    def end_step(self) -> None:
        self.step = None

    def right_counts(self, total: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """(K,) right answers of ``argmax(S + x_k)`` on every row of ``total`` (= S).

        The first bound decides row block by row block; the entries it leaves open are
        collected over the blocks and settled together (``_second_tier``), up to
        ``_OPEN_ENTRIES`` entries or ``_BLOCK_BYTES`` of their rows at a time: one gather
        per candidate per batch of open entries instead of one per candidate and row block
        (which cost K · n / chunk calls a step, the lazy candidates' reads included). Every
        entry is decided by the same arithmetic either way, so the counts are those of
        deciding block by block.
        """
        num_k = len(self.cand)
        n = total.shape[0]
        right = np.zeros(num_k, dtype=np.int64)
        self.begin_step(total)
        try:
            pending: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
            waiting = rows_waiting = 0
            num_classes = total.shape[1]
            for lo in range(0, n, self.chunk):
                hi = min(n, lo + self.chunk)
                if not self.prune:
                    right += correctness(self._full_predictions(total, lo, hi), labels[lo:hi]).sum(
                        axis=1
                    )
                    continue
                pred, proven, s_at_b = self._first_tier(total, lo, hi)
                right += (correctness(pred, labels[lo:hi]) & proven).sum(axis=1)
                open_k, open_i = np.nonzero(~proven)
                if len(open_k):
                    pending.append((open_k, open_i + lo, s_at_b[open_k, open_i]))
                    waiting += len(open_k)
                    # the rows' top-L search copies them whole: count them (blocks are disjoint)
                    rows_waiting += len(np.unique(open_i))
                full = waiting >= _OPEN_ENTRIES or 16 * rows_waiting * num_classes >= _BLOCK_BYTES
                if full or (hi == n and pending):
                    open_k, open_i, s_at_b_open = (np.concatenate(p) for p in zip(*pending))
                    lowest = self._second_tier(total, open_k, open_i, s_at_b_open)
                    if labels.ndim == 2:  # multi-label truth: no (E, C) copy of the labels
                        hits = labels[open_i, lowest] != 0
                    else:
                        hits = correctness(lowest, labels[open_i])
                    right += np.bincount(open_k[hits], minlength=num_k)
                    pending, waiting, rows_waiting = [], 0, 0
        finally:
            self.end_step()
        return right

    def _full_predictions(self, total: np.ndarray, lo: int, hi: int) -> np.ndarray:
        """(K, hi - lo) ``argmax(S + x_k)`` from the full (K, rows, C) block (no pruning)."""
        block = np.stack([c[lo:hi] for c in self.cand]).astype(np.float64)
        for c in self.cand:
            self.after_use(c)
        block += total[lo:hi][None]
        return block.argmax(axis=2)

    def _first_tier(
        self, total: np.ndarray, lo: int, hi: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The first bound on rows lo:hi for every candidate: (predictions, proven, S at
        each candidate's argmax b), each (K, hi - lo); predictions hold only where proven."""
        # S's largest other value is found by masking a in place and restoring it; where
        # other groups' threads read S meanwhile (_GroupedScorer), on a copy of the block.
        s = total[lo:hi].copy() if self.shared_total else total[lo:hi]
        n, num_classes = s.shape
        rows = np.arange(n)
        # Flat gathers (np.take on 1-D views) are several times faster than fancy indexing.
        s_flat = s.reshape(-1)
        assert self.step is not None, "begin_step(total) before scoring its row blocks"
        a, x_at_a = self.step[0][lo:hi], self.step[1][:, lo:hi]
        s_top = s_flat[rows * num_classes + a]
        # S's largest other value without copying S: mask a in place (S is ours), restore.
        s_flat[rows * num_classes + a] = -np.inf
        s_second = s.max(axis=1)
        s_flat[rows * num_classes + a] = s_top
        b = self.arg[:, lo:hi]
        s_at_b = np.take(s_flat, rows[None, :] * num_classes + b)
        pred, proven = decide_from_lists(
            a[:, None],
            s_top[:, None],
            s_second,
            x_at_a[..., None],
            b[..., None],
            self.top[:, lo:hi, None],
            self.second[:, lo:hi],
            s_at_b[..., None],
            num_classes,
        )
        self.entries += len(self.cand) * n
        return pred, proven, s_at_b

    def _second_tier(
        self,
        total: np.ndarray,
        open_k: np.ndarray,
        open_i: np.ndarray,
        s_at_b: np.ndarray,
    ) -> np.ndarray:
        """The predictions of the E entries (candidate ``open_k``, row ``open_i``) the first
        bound left open: try S's top-L classes plus b, then full rows.

        With T the L largest entries of S on the row and S_(L+1) the next value, every class
        outside T ∪ {b} has ``S_c + x_c <= S_(L+1) + x2``; decide where the best union score
        beats that strictly, as above. ``s_at_b``: (E,) S at each entry's b.
        """
        num_classes = total.shape[1]
        top = min(_GREEDY_TIER2, num_classes - 2)
        open_rows, where = np.unique(open_i, return_inverse=True)
        t_idx, t_values, s_next = row_top_k(total, None, (open_rows,), top)  # S's L largest
        cls = t_idx[where]  # (E, L)
        flat_index = open_i[:, None] * num_classes + cls
        x_vals = self._gather(np.repeat(open_k, top), flat_index.ravel())

        def full_rows(entries: np.ndarray) -> np.ndarray:
            """fl64(x_k) + S on the entries' rows, read candidate by candidate."""
            ks, ii = open_k[entries], open_i[entries]
            rows = np.empty((len(entries), num_classes), dtype=np.float64)
            for k in np.unique(ks):
                sel = ks == k
                full = self.cand[k][ii[sel]].astype(np.float64)
                self.after_use(self.cand[k])
                full += total[ii[sel]]
                rows[sel] = full
            return rows

        lowest, fell = settle_open(
            (cls, t_values[where], s_next[where]),
            x_vals.reshape(cls.shape),
            (
                self.arg[open_k, open_i][:, None],
                self.top[open_k, open_i][:, None],
                self.second[open_k, open_i],
            ),
            s_at_b[:, None],
            num_classes,
            None,
            full_rows,
        )
        self.fallbacks += len(fell)
        return lowest


def greedy_forward_selection(
    probs: Any,
    labels: np.ndarray,
    *,
    start: int,
    pool: Sequence[int],
    max_steps: int = 25,
    calibration_index: np.ndarray | None = None,
    evaluation_index: np.ndarray | None = None,
    prune: bool = True,
    costs: np.ndarray | None = None,
    budget: np.ndarray | None = None,
    after_use: Callable[[np.ndarray], None] | None = None,
    on_step: Callable[[int], None] | None = None,
    groups: int = 1,
    parallel_map: Callable[..., Any] = map,
) -> GreedyResult:
    """Greedy forward ensemble selection with replacement (Caruana et al. 2004; paper Sec. 4.5,
    Fig. 5), exactly as docs/design.md sec. 3.

    ``probs`` is an (M, N, C) array or a sequence of M (N, C) arrays (memory maps work) of
    ensemble inputs; ``labels`` (N,) or (N, C). Choosing uses the rows ``calibration_index``
    (all rows when None); ``evaluation_index`` rows are only reported.

    The ensemble of a multiset of members predicts ``argmax_c Σ_m x_m[c]`` (the float64
    running sum, equivalent to the mean; never divided, so no rounding ties are introduced),
    lowest index on ties. Starting from ``[start]``, each of ``max_steps`` steps adds the
    candidate from ``pool`` (with replacement; the start model is a candidate only if it is in
    the pool) whose addition gives the most right answers on the calibration rows; ties go to
    the candidate already chosen most often, then to the lowest model index. The kept ensemble
    is the prefix (step 0 = the start alone) with the best calibration accuracy, the earliest
    on ties. Evaluation accuracy is reported for every prefix, never used to choose.

    Each step scores all candidates at once, in row chunks of bounded memory, with exact
    pruning (``_CandidateScorer``: identical predictions to the full rows, always;
    ``prune=False`` computes the full (candidates, rows, C) block ``S + x_k``).

    Budget: with ``costs`` (M, U) (each model's cost in U units) and ``budget`` (U,), the
    cost of an ensemble is the sum over its *distinct* members (a repeated member runs once,
    with a larger weight); a step only considers candidates whose addition keeps every unit
    within the budget, and the selection stops early when none fits. The start must fit.
    ``after_use(x)`` is called with a candidate's rows after each read of them (the caller's
    hook for memory-mapped candidates: ``study.pages.release_pages``); ``on_step(1)`` after
    each step (the caller's progress bar).

    Threads: with ``groups`` > 1 the candidates are split into that many contiguous groups,
    each scored by its own scorer, the groups side by side on ``parallel_map`` (a thread
    pool's ``map``; the kernels release the GIL). A candidate's count depends only on its
    own rows and the running sum, so the counts, hence the selection, are the same.
    """
    after_use = after_use or _nothing
    num_models = len(probs)
    pool = sorted({int(k) for k in pool})
    if not pool:
        raise ZoolensError("greedy selection: the candidate pool is empty")
    if not 0 <= int(start) < num_models or pool[0] < 0 or pool[-1] >= num_models:
        raise ZoolensError(f"greedy selection: start/pool indices must lie in 0..{num_models - 1}")
    if max_steps < 0:
        raise ZoolensError(f"greedy selection: max_steps must be >= 0, got {max_steps}")
    labels = np.asarray(labels)
    cal_labels = labels if calibration_index is None else labels[calibration_index]
    n_cal = len(cal_labels)
    if n_cal == 0:
        raise ZoolensError("greedy selection: no calibration examples to choose on")
    pool_arr = np.asarray(pool, dtype=np.int64)
    # The candidates' calibration rows, read once (views when probs holds all rows).
    scorer = _scorer(
        _candidate_rows(probs, pool_arr, calibration_index),
        prune,
        after_use,
        groups,
        parallel_map,
    )
    first = (
        scorer.cand[pool.index(start)] if start in pool else _rows(probs[start], calibration_index)
    )
    total = np.array(first, dtype=np.float64)
    after_use(first)

    # The evaluation rows are only reported, never used to choose: each chosen model is added
    # to their running sum on a thread of its own while the next step is being scored (in
    # the order chosen, one at a time: the same sums as adding them in the loop). A failed
    # add stops the selection at the next step; on any error, queued adds are dropped.
    reporter = ThreadPoolExecutor(max_workers=1)
    try:
        ev_pending: list[Future[np.ndarray]] = []
        ev_sum = (
            None
            if evaluation_index is None
            else _EvaluationSum(probs, evaluation_index, total.shape[1], labels)
        )
        if ev_sum is not None:
            ev_pending.append(reporter.submit(ev_sum.add, int(start)))
        members = [int(start)]
        cal_right = [int(correctness(total.argmax(axis=1), cal_labels).sum())]
        for pick, chosen, right in _greedy_steps(
            scorer, total, cal_labels, int(start), pool_arr, num_models, max_steps, costs, budget
        ):
            after_use(scorer.cand[pick])
            members.append(chosen)
            cal_right.append(right)
            if ev_sum is not None:
                for job in ev_pending:
                    if job.done():
                        job.result()  # raises the add's error here, not after every step
                ev_pending.append(reporter.submit(ev_sum.add, chosen))
            if on_step is not None:
                on_step(1)
        ev_right = [job.result() for job in ev_pending]
    finally:
        reporter.shutdown(wait=True, cancel_futures=True)

    cal_correct = np.asarray(cal_right, dtype=np.int64)
    best_step = int(np.argmax(cal_correct))  # argmax: earliest among equal counts
    ev_correct = np.stack(ev_right) if ev_right else None
    return GreedyResult(
        members=members,
        calibration_correct=cal_correct,
        calibration_accuracy=cal_correct / n_cal,
        evaluation_accuracy=None if ev_correct is None else ev_correct.mean(axis=1),
        best_step=best_step,
        kept=best_step + 1,
        evaluation_correct=ev_correct,
    )


class _GroupedScorer:
    """:class:`_CandidateScorer`'s interface over contiguous groups of the candidates, each
    group its own scorer, the groups made and scored side by side on ``parallel_map``."""

    def __init__(self, parts: list[_CandidateScorer], parallel_map: Callable[..., Any]):
        self.parts, self.parallel_map = parts, parallel_map
        self.cand = [c for part in parts for c in part.cand]
        for part in parts:
            part.shared_total = True

    def right_counts(self, total: np.ndarray, labels: np.ndarray) -> np.ndarray:
        counts = self.parallel_map(lambda part: part.right_counts(total, labels), self.parts)
        return np.concatenate(list(counts))


def _scorer(
    cand: list[Any],
    prune: bool,
    after_use: Callable[[np.ndarray], None],
    groups: int,
    parallel_map: Callable[..., Any],
) -> _CandidateScorer | _GroupedScorer:
    """One scorer, or with ``groups`` > 1 (and as many candidates) a :class:`_GroupedScorer`."""
    groups = max(1, min(int(groups), len(cand)))
    if groups == 1:
        return _CandidateScorer(cand, prune, after_use)
    edges = np.linspace(0, len(cand), groups + 1).round().astype(int).tolist()
    parts = parallel_map(
        lambda bounds: _CandidateScorer(cand[bounds[0] : bounds[1]], prune, after_use),
        list(zip(edges[:-1], edges[1:])),
    )
    return _GroupedScorer(list(parts), parallel_map)


def _greedy_steps(
    scorer: _CandidateScorer | _GroupedScorer,
    total: np.ndarray,
    cal_labels: np.ndarray,
    start: int,
    pool_arr: np.ndarray,
    num_models: int,
    max_steps: int,
    costs: np.ndarray | None,
    budget: np.ndarray | None,
) -> Iterator[tuple[int, int, int]]:
    """:func:`greedy_forward_selection`'s steps from ``start`` on the choosing rows: yields
    each pick (its position in the pool), the chosen model and the right answers of the
    ensemble with it, after adding it to ``total`` (the caller releases the candidate's
    pages before the next step)."""
    times_chosen = np.zeros(num_models, dtype=np.int64)
    times_chosen[start] = 1

    fits = None
    if costs is not None:
        costs = np.asarray(costs, dtype=np.float64).reshape(num_models, -1)
        limit = np.asarray(np.nan if budget is None else budget, dtype=np.float64).reshape(-1)
        # relative slack: a sum of float costs equal to the budget fits
        slack = 1e-9 * np.maximum(np.abs(limit), 1.0)
        limit = limit + slack
        if np.any(costs[start] > limit):
            raise ZoolensError("greedy selection: the start model alone exceeds the budget")
    for _ in range(max_steps):
        if costs is not None:
            spent = costs[times_chosen > 0].sum(axis=0)
            extra = np.where((times_chosen[pool_arr] > 0)[:, None], 0.0, costs[pool_arr])
            fits = np.all(spent + extra <= limit, axis=1)
            if not fits.any():
                break
        right = scorer.right_counts(total, cal_labels)
        if fits is not None:
            right = np.where(fits, right, -1)  # candidates over budget are never picked
        # Highest count; then chosen most often; then lowest model index.
        order = np.lexsort((pool_arr, -times_chosen[pool_arr], -right))
        pick = int(order[0])
        chosen = int(pool_arr[pick])
        add_to = getattr(scorer.cand[pick], "add_to", None)
        if add_to is not None:  # a lazy candidate adds its rows in blocks
            add_to(total)
        else:
            total += scorer.cand[pick]
        times_chosen[chosen] += 1
        yield pick, chosen, int(right[pick])
