"""How often two models agree about being right: all pairs at once from the correctness matrix.

Every measure here is a function of the boolean correctness matrix ``R`` (models x examples):
``R[a, n]`` is True where model ``a``'s top-1 prediction on example ``n`` is right (docs/design.md
sec. 3). All pairwise quantities come from one matrix product ``R Rᵀ`` (the number of examples
both models get right) and the per-model counts ``n_a = R.sum(1)``; there is no Python loop
over pairs. The product is done in float32 when the number of examples is below 2**24 (every
partial sum is then an exactly representable integer, so the counts are exact) and in float64
otherwise; counts are returned as int64.

Paper: Gontijo-Lopes, Dauphin & Cubuk (2021), "No One Representation to Rule Them All",
Sec. 4 (error inconsistency, Fig. 1), Fig. 8 (both right / both wrong); error consistency is
Geirhos et al. (2020); dominance is Mania & Sra (2020).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np

from zoolens.errors import ZoolensError

__all__ = [
    "top1",
    "correctness",
    "pair_counts",
    "error_inconsistency",
    "both_right",
    "both_wrong",
    "error_consistency",
    "kappa_from_rates",
    "dominance",
    "pairwise_agreement",
    "listed_pair_agreement",
    "pair_index",
    "pairs_with",
    "base_pair_index",
]

# float32 holds every integer up to 2**24 exactly, so a float32 matmul of 0/1 rows over fewer
# examples than this gives exact counts (BLAS accumulates in float32 and never rounds).
_FLOAT32_EXACT_LIMIT = 2**24


# The argument every pair measure below takes, documented once: their docstrings say
# ``{correct}`` where it goes and _with_correct_doc writes it in at import, so help(), the
# API docs and the doctests read the full text.
_CORRECT_DOC = """correct : (M, N) array of bool
        Correctness matrix ``R`` of M models on N examples (:func:`correctness`)."""

_Function = TypeVar("_Function", bound=Callable[..., Any])


def _with_correct_doc(function: _Function) -> _Function:
    """``function`` with ``{correct}`` in its docstring replaced by :data:`_CORRECT_DOC`."""
    if function.__doc__:  # None under python -OO
        function.__doc__ = function.__doc__.replace("{correct}", _CORRECT_DOC)
    return function


def top1(scores: np.ndarray) -> np.ndarray:
    """Top-1 class of each row: ``argmax`` over the last axis, lowest index among ties.

    This is the one tie rule of docs/design.md sec. 3, for models and ensembles alike. NaN scores
    are the caller's problem (numpy's argmax returns the first NaN).

    Parameters
    ----------
    scores : (..., C) array
        Scores, probabilities or logits of C classes.

    Returns
    -------
    (...) int64 array of class ids.

    Examples
    --------
    >>> top1(np.array([[0.1, 0.7, 0.2], [0.5, 0.5, 0.0]])).tolist()  # the tie goes to class 0
    [1, 0]
    """
    return np.asarray(scores).argmax(axis=-1)


def correctness(predictions: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Boolean correctness matrix R: ``R[m, n] = (prediction of model m on example n is right)``.

    ``predictions`` is (M, N) or (N,) integer top-1 classes (use :func:`top1` on scores).
    ``labels`` is either (N,) integer class ids — right means ``prediction == label`` — or an
    (N, C) 0/1 multi-label matrix (e.g. ImageNet "ReaL" relabelling) — right means the
    prediction is one of the example's valid labels, ``labels[n, prediction] != 0``; an example
    with no valid label is never right (docs/design.md sec. 3). A prediction of -1 is an
    abstention ("no answer") and is never right, so every agreement measure built on R counts
    it as an error (the model-vs-human convention). Returns bool with the shape of
    ``predictions``. Any other prediction outside ``0..C-1`` in the multi-label case raises
    ZoolensError.

    Parameters
    ----------
    predictions : (M, N) or (N,) integer array
        Top-1 classes of M models (or one) on N examples.
    labels : (N,) integer array or (N, C) 0/1 array
        The true class of each example, or its set of valid classes.

    Returns
    -------
    bool array shaped like ``predictions``.

    Examples
    --------
    >>> correctness(np.array([[0, 1, 2], [0, 2, 2]]), np.array([0, 1, 1])).astype(int).tolist()
    [[1, 1, 0], [1, 0, 0]]
    >>> valid = np.array([[1, 1, 0], [0, 0, 1]])           # example 0 has two valid labels
    >>> correctness(np.array([1, 2]), valid).tolist()
    [True, True]
    """
    pred = np.asarray(predictions)
    lab = np.asarray(labels)
    if not np.issubdtype(pred.dtype, np.integer):
        raise ZoolensError(f"predictions must be integer class ids, got dtype {pred.dtype}")
    n = pred.shape[-1] if pred.ndim else 0
    if pred.ndim not in (1, 2) or lab.ndim not in (1, 2) or lab.shape[0] != n:
        raise ZoolensError(
            f"predictions of shape {pred.shape} do not match labels of shape {lab.shape} "
            "(expected (M, N) or (N,) predictions and (N,) or (N, C) labels)"
        )
    if lab.ndim == 1:
        return pred == lab
    num_classes = lab.shape[1]
    if pred.size and (pred.min() < -1 or pred.max() >= num_classes):
        raise ZoolensError(
            f"a prediction lies outside the {num_classes} classes of the multi-label truth"
        )
    valid = lab != 0
    return valid[np.arange(n), np.maximum(pred, 0)] & (pred >= 0)


def _as_matrix(correct: np.ndarray) -> np.ndarray:
    r = np.asarray(correct)
    if r.ndim != 2:
        raise ZoolensError(f"correctness matrix must be (models, examples), got shape {r.shape}")
    if r.shape[1] == 0:
        raise ZoolensError("correctness matrix has no examples: nothing to measure")
    return r.astype(bool, copy=False)


@_with_correct_doc
def pair_counts(correct: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Exact counts behind every pair measure: ``(n11, n_right, N)``.

    ``n11[a, b]`` = number of examples both a and b get right (= ``(R Rᵀ)[a, b]``, int64,
    symmetric, diagonal = ``n_right``); ``n_right[a]`` = examples a gets right; ``N`` = number
    of examples. The other cells of each pair's 2x2 table follow: only a right =
    ``n_right[a] - n11[a, b]``, both wrong = ``N - n_right[a] - n_right[b] + n11[a, b]``.

    Parameters
    ----------
    {correct}

    Returns
    -------
    n11 : (M, M) int64, n_right : (M,) int64, N : int

    Examples
    --------
    >>> n11, n_right, n = pair_counts(np.array([[1, 1, 0, 0], [1, 0, 1, 0]], dtype=bool))
    >>> n11.tolist(), n_right.tolist(), n
    ([[2, 1], [1, 2]], [2, 2], 4)
    """
    r = _as_matrix(correct)
    n = r.shape[1]
    dtype = np.float32 if n < _FLOAT32_EXACT_LIMIT else np.float64
    rf: np.ndarray = r.astype(dtype)
    n11 = np.rint(rf @ rf.T).astype(np.int64)
    n_right = np.count_nonzero(r, axis=1).astype(np.int64)
    return n11, n_right, n


@_with_correct_doc
def error_inconsistency(correct: np.ndarray) -> np.ndarray:
    """Error inconsistency EI for every pair: the fraction of examples where exactly one is right.

    ``EI[a, b] = mean(R[a] XOR R[b]) = (n_a + n_b - 2·n11[a, b]) / N`` (Gontijo-Lopes et al.
    2021, Sec. 4, Fig. 1).

    Parameters
    ----------
    {correct}

    Returns
    -------
    (M, M) float64 array, symmetric, zero diagonal.

    Examples
    --------
    >>> R = np.array([[1, 1, 0, 0], [1, 0, 1, 0]], dtype=bool)  # 2 models x 4 examples
    >>> error_inconsistency(R).tolist()  # one right on examples 1 and 2 of 4
    [[0.0, 0.5], [0.5, 0.0]]
    """
    n11, nr, n = pair_counts(correct)
    return (nr[:, None] + nr[None, :] - 2 * n11) / n


@_with_correct_doc
def both_right(correct: np.ndarray) -> np.ndarray:
    """Fraction of examples both models get right: ``mean(R[a] AND R[b]) = n11 / N`` (Fig. 8).

    Parameters
    ----------
    {correct}

    Returns
    -------
    (M, M) float64 array, symmetric; the diagonal is each model's accuracy.

    Examples
    --------
    >>> R = np.array([[1, 1, 0, 0], [1, 0, 1, 0]], dtype=bool)  # 2 models x 4 examples
    >>> both_right(R).tolist()
    [[0.5, 0.25], [0.25, 0.5]]
    """
    n11, _, n = pair_counts(correct)
    return n11 / n


@_with_correct_doc
def both_wrong(correct: np.ndarray) -> np.ndarray:
    """Fraction of examples both models get wrong: ``(N - n_a - n_b + n11) / N`` (Fig. 8).

    Each example is right for both, wrong for both or right for exactly one, so this is
    ``1 - EI - both_right``.

    Parameters
    ----------
    {correct}

    Returns
    -------
    (M, M) float64 array, symmetric; the diagonal is each model's error rate.

    Examples
    --------
    >>> R = np.array([[1, 1, 0, 0], [1, 0, 1, 0]], dtype=bool)  # 2 models x 4 examples
    >>> wrong = both_wrong(R)
    >>> wrong.tolist()
    [[0.5, 0.25], [0.25, 0.5]]
    >>> np.allclose(wrong, 1 - error_inconsistency(R) - both_right(R))
    True
    """
    n11, nr, n = pair_counts(correct)
    return (n - nr[:, None] - nr[None, :] + n11) / n


def kappa_from_rates(
    error_inconsistency: np.ndarray, acc_a: np.ndarray, acc_b: np.ndarray
) -> np.ndarray:
    """Error consistency κ from a pair's error inconsistency and the two accuracies.

    ``κ = (c_obs − c_exp) / (1 − c_exp)``, ``c_obs = 1 − EI``, ``c_exp = p_a p_b + (1 − p_a)
    (1 − p_b)`` (Geirhos et al. 2020), elementwise with numpy broadcasting, and κ = 1 where
    ``c_exp == 1`` (both always right or both always wrong; docs/design.md sec. 3), as
    :func:`error_consistency`. κ depends on the examples only through these three means, so
    a bootstrap resample's κ is this function of the resample's means: the study's κ
    interval uses the resamples of every other pair interval.

    Parameters
    ----------
    error_inconsistency, acc_a, acc_b : arrays of float (broadcastable)
        ``mean(r_a XOR r_b)``, ``mean(r_a)``, ``mean(r_b)`` over the same examples.

    Returns
    -------
    float64 array of the broadcast shape.

    Examples
    --------
    >>> kappa_from_rates(np.array([0.5, 0.0]), np.array([0.5, 0.5]), np.array([0.5, 0.5])).tolist()
    [0.0, 1.0]
    """
    ei = np.asarray(error_inconsistency, dtype=np.float64)
    p_a = np.asarray(acc_a, dtype=np.float64)
    p_b = np.asarray(acc_b, dtype=np.float64)
    c_obs = 1.0 - ei
    c_exp = p_a * p_b + (1.0 - p_a) * (1.0 - p_b)
    denom = 1.0 - c_exp
    # c_exp == 1 exactly when both models are always right or both always wrong (p in {0, 1}):
    # then c_obs == 1 too and docs/design.md defines kappa = 1 (scikit-learn returns NaN there).
    # Accuracies are k/N, so c_exp == 1 is decided on exact counts, not a float tolerance.
    degenerate = (p_a == p_b) & ((p_a == 0) | (p_a == 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        kappa = (c_obs - c_exp) / np.where(degenerate, 1.0, denom)
    return np.where(degenerate, 1.0, kappa)


@_with_correct_doc
def error_consistency(correct: np.ndarray) -> np.ndarray:
    """Error consistency κ (Cohen's kappa of the two correctness vectors), every pair.

    ``κ = (c_obs − c_exp) / (1 − c_exp)`` with ``c_obs = 1 − EI`` and
    ``c_exp = p_a p_b + (1 − p_a)(1 − p_b)``, p the accuracies (Geirhos et al. 2020; equals
    ``sklearn.metrics.cohen_kappa_score(R[a], R[b])``). Where ``c_exp == 1`` (both models
    always right, or both always wrong) κ = 1 by docs/design.md sec. 3 (scikit-learn gives NaN).
    One model always right and the other always wrong gives c_obs = c_exp = 0, κ = 0.

    Parameters
    ----------
    {correct}

    Returns
    -------
    (M, M) float64 array, symmetric, diagonal 1.

    Examples
    --------
    >>> R = np.array([[1, 1, 0, 0], [1, 0, 1, 0]], dtype=bool)  # 2 models x 4 examples
    >>> error_consistency(R).tolist()  # independent errors: c_obs = c_exp = 0.5
    [[1.0, 0.0], [0.0, 1.0]]
    """
    n11, nr, n = pair_counts(correct)
    return _pair_rates(n11, nr[:, None], nr[None, :], n)["error_consistency"]


@_with_correct_doc
def dominance(correct: np.ndarray) -> np.ndarray:
    """Dominance ``D[a, b] = P(r_a = 0 and r_b = 1) = (n_b − n11[a, b]) / N``.

    The joint probability that b is right where a is wrong (Mania & Sra 2020; "dominance
    probability" of Mania et al. 2019). Not symmetric: ``D[a, b] − D[b, a] = p_b − p_a`` and
    ``D[a, b] + D[b, a] = EI[a, b]``.

    Parameters
    ----------
    {correct}

    Returns
    -------
    (M, M) float64 array, zero diagonal.

    Examples
    --------
    >>> R = np.array([[1, 0, 0, 0], [1, 1, 1, 0]], dtype=bool)
    >>> dominance(R).tolist()  # b is right on 2 of the 4 examples a gets wrong
    [[0.0, 0.5], [0.0, 0.0]]
    """
    n11, nr, n = pair_counts(correct)
    return (nr[None, :] - n11) / n


@_with_correct_doc
def pairwise_agreement(correct: np.ndarray) -> dict[str, np.ndarray]:
    """All pair measures from one matrix product, as (M, M) float64 arrays.

    Keys: ``accuracy`` ((M,) p_a), ``error_inconsistency``, ``both_right``, ``both_wrong``,
    ``error_consistency``, ``dominance`` (``[a, b]`` = b right where a wrong), and the exact
    int64 counts ``n11`` and ``n_right`` plus ``n`` (int). Definitions as in the single
    functions of this module (docs/design.md sec. 3).

    Parameters
    ----------
    {correct}

    Returns
    -------
    dict of the arrays above.

    Examples
    --------
    >>> R = np.array([[1, 1, 0, 0], [1, 0, 1, 0]], dtype=bool)  # 2 models x 4 examples
    >>> m = pairwise_agreement(R)
    >>> m["accuracy"].tolist(), m["error_inconsistency"][0, 1], m["n"]
    ([0.5, 0.5], np.float64(0.5), 4)
    """
    n11, nr, n = pair_counts(correct)
    return {
        "accuracy": nr / n,
        **_pair_rates(n11, nr[:, None], nr[None, :], n),
        "dominance": (nr[None, :] - n11) / n,
        "n11": n11,
        "n_right": nr,
        "n": n,
    }


# Pairs per block of listed_pair_agreement (bounds its (pairs, examples) temporary).
_PAIR_BLOCK_BYTES = 64 * 2**20


@_with_correct_doc
def listed_pair_agreement(
    correct: np.ndarray, a: np.ndarray, b: np.ndarray
) -> dict[str, np.ndarray]:
    """The measures of :func:`pairwise_agreement` for the listed pairs only, as (P,) arrays.

    Pair p is ``(a[p], b[p])``; ``n11[p]`` = examples both get right, counted exactly per
    pair (no (M, M) product), so listing the M − 1 pairs of one model costs O(M·N) time and
    memory instead of O(M²·N) and O(M²). Every value is computed with the same float64
    operations on the same exact counts as :func:`pairwise_agreement`, so it equals that
    function's ``[a, b]`` cell bit for bit (``dominance_ab`` its ``dominance[a, b]``,
    ``dominance_ba`` its ``dominance[b, a]``).

    Parameters
    ----------
    {correct}
    a, b : (P,) int arrays
        Model indices of each pair.

    Returns
    -------
    dict with ``accuracy`` ((M,) p_a), and (P,) float64 ``error_inconsistency``,
    ``both_right``, ``both_wrong``, ``error_consistency``, ``dominance_ab``, ``dominance_ba``,
    int64 ``n11``; ``n`` (int).

    Examples
    --------
    >>> R = np.array([[1, 1, 0, 0], [1, 0, 1, 0], [0, 1, 1, 1]], dtype=bool)
    >>> m = listed_pair_agreement(R, np.array([0, 0]), np.array([1, 2]))
    >>> m["error_inconsistency"].tolist(), m["n11"].tolist()
    ([0.5, 0.75], [1, 1])
    """
    r = _as_matrix(correct)
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    n = r.shape[1]
    nr = np.count_nonzero(r, axis=1).astype(np.int64)
    n11 = np.empty(len(a), dtype=np.int64)
    step = max(1, _PAIR_BLOCK_BYTES // max(1, n))
    for lo in range(0, len(a), step):
        hi = min(len(a), lo + step)
        n11[lo:hi] = np.count_nonzero(r[a[lo:hi]] & r[b[lo:hi]], axis=1)
    return {
        "accuracy": nr / n,
        **_pair_rates(n11, nr[a], nr[b], n),
        "dominance_ab": (nr[b] - n11) / n,
        "dominance_ba": (nr[a] - n11) / n,
        "n11": n11,
        "n": n,
    }


def _pair_rates(n11: np.ndarray, n_a: np.ndarray, n_b: np.ndarray, n: int) -> dict[str, np.ndarray]:
    """EI, both right, both wrong and κ from a pair's exact counts: ``n11`` examples both get
    right, ``n_a`` and ``n_b`` each gets right, of ``n`` (broadcast: ``n_right[:, None]`` and
    ``n_right[None, :]`` for every pair, ``n_right[a]`` and ``n_right[b]`` for listed ones).
    The one place :func:`pairwise_agreement` and :func:`listed_pair_agreement` compute them,
    so a listed pair's values equal the matrix cell's bit for bit."""
    ei = (n_a + n_b - 2 * n11) / n
    return {
        "error_inconsistency": ei,
        "both_right": n11 / n,
        "both_wrong": (n - n_a - n_b + n11) / n,
        "error_consistency": kappa_from_rates(ei, n_a / n, n_b / n),
    }


def pair_index(num_models: int) -> tuple[np.ndarray, np.ndarray]:
    """``(a, b)`` int64 index arrays of every unordered pair a < b, in ``np.triu_indices``
    order: (0,1), (0,2), …, (0,M−1), (1,2), … — the row order of every all-pairs result."""
    a, b = np.triu_indices(num_models, 1)
    return a.astype(np.int64), b.astype(np.int64)


def pairs_with(
    model_a: Sequence[str] | np.ndarray, model_b: Sequence[str] | np.ndarray, base: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The rows of a pair table that pair ``base`` with another model: the one selection of
    "pairs with the base" that the report's tables, figures and the demo's findings share.

    Parameters
    ----------
    model_a, model_b : (P,) sequences of str
        The pair table's two model columns (each unordered pair once, in zoo order, so the
        base may stand on either side).
    base : str
        The model whose pairs are wanted; a pair of the base with itself is left out.

    Returns
    -------
    rows : (K,) int64
        Positions of those pairs in the table, in table order.
    flipped : (K,) bool
        True where the base is ``model_b`` (a's and b's columns swap roles there).
    other : (K,) object
        The other model of each pair.

    Examples
    --------
    >>> rows, flipped, other = pairs_with(["r", "v", "r"], ["v", "k", "k"], "k")
    >>> rows.tolist(), flipped.tolist(), other.tolist()
    ([1, 2], [True, True], ['v', 'r'])
    """
    a = np.asarray(model_a, dtype=object)
    b = np.asarray(model_b, dtype=object)
    a_side = a == base
    b_side = (b == base) & ~a_side
    rows = np.flatnonzero((a_side | b_side) & (a != b))
    flipped = b_side[rows]
    return rows, flipped, np.where(flipped, a[rows], b[rows])


def base_pair_index(num_models: int, base: int) -> tuple[np.ndarray, np.ndarray]:
    """``(a, b)`` int64 index arrays of the M − 1 pairs that contain model ``base``, in the
    order they hold in :func:`pair_index` (``(0, base), …, (base − 1, base), (base, base + 1),
    …``): the rows of an all-pairs result that a base-only analysis keeps.

    Examples
    --------
    >>> [x.tolist() for x in base_pair_index(4, 1)]
    [[0, 1, 1], [1, 2, 3]]
    """
    if not 0 <= base < num_models:
        raise ZoolensError(f"base index {base} outside 0 .. {num_models - 1}")
    other = np.delete(np.arange(num_models, dtype=np.int64), base)
    return np.minimum(other, base), np.maximum(other, base)
