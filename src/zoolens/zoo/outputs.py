"""Model outputs: detect what an array is, validate it, convert it to what the zoo stores.

Shared by the store (``Zoo.add``) and the file importers; every check raises a one-line
``ZoolensError`` naming the model (``where``) and the problem. Definitions (docs/design.md sec. 2):

* kinds a model may be given as: logits, probs, log_probs, counts, decisions, top-k;
  kinds stored (``KINDS``): logits, log_probs, decisions, topk.
* probabilities and vote counts (normalised to fractions) are stored as
  log(max(p, PROB_FLOOR)); logits and log-probabilities are both "scores":
  softmax(scores / T) is the model's predictive distribution.
* a top-k row (class ids, probabilities) stands for the full distribution with the
  remaining mass 1 - sum(values) spread evenly over the C - k unlisted classes.
* float values are stored as float32 (or float16 on request) after a range check: a value
  beyond the target type's range is refused, never stored as inf.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

from zoolens.errors import ZoolensError

ABSTAIN = -1  # a decision that is no answer (zoo.classes.ABSTAIN)
PROB_FLOOR = 1e-12
LOG_PROB_FLOOR = math.log(PROB_FLOOR)
KINDS = ("logits", "log_probs", "decisions", "topk")
DTYPES = ("float32", "float16")
FLOAT16_MAX = 65504.0
FLOAT32_MAX = float(np.finfo(np.float32).max)
# The most classes a zoo may have: every model stores (N, C) scores and the report draws
# per-class tables, so a larger count is a stray label id, not a data set.
MAX_CLASSES = 1_000_000

# Rows per chunk when a whole model is scanned (predictions, validation): bounded memory.
_CHUNK_ELEMENTS = 1 << 20


class ZooWarning(UserWarning):
    """Suspicious but accepted input (e.g. probabilities declared as logits)."""


def to_array(array: Any, what: str) -> np.ndarray:
    if hasattr(array, "detach"):  # a torch tensor, without importing torch
        array = array.detach().cpu().numpy()
    try:
        arr = np.asarray(array)
    except Exception as exc:  # ragged lists and the like
        raise ZoolensError(f"{what}: cannot be read as an array ({exc})") from None
    if arr.dtype == object or arr.dtype.kind in "USV":
        raise ZoolensError(
            f"{what}: expected numbers, got an array of {arr.dtype} (ragged rows or text?)"
        )
    return arr


def row_chunks(n_rows: int, n_cols: int) -> Iterator[slice]:
    step = max(1, _CHUNK_ELEMENTS // max(1, n_cols))
    for start in range(0, n_rows, step):
        yield slice(start, min(n_rows, start + step))


def all_finite(arr: np.ndarray) -> bool:
    if arr.dtype.kind not in "fc":
        return True
    return all(
        bool(np.isfinite(arr[s]).all())
        for s in row_chunks(arr.shape[0], int(np.prod(arr.shape[1:])))
    )


def is_integral(arr: np.ndarray) -> bool:
    if arr.dtype.kind in "iub":
        return True
    if arr.dtype.kind == "f":
        return bool(np.isfinite(arr).all() and (arr == np.round(arr)).all())
    return False


def sum_tolerance(num_classes: int, dtype: np.dtype) -> float:
    """How far a row of probabilities may sum from 1: 1e-3, wider for low-precision input."""
    eps = float(np.finfo(dtype).eps) if np.dtype(dtype).kind == "f" else 0.0
    return max(1e-3, 4.0 * math.sqrt(num_classes) * eps)


def logsumexp_rows(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64, copy=False)
    m = x.max(axis=1, keepdims=True)
    return (m + np.log(np.exp(x - m).sum(axis=1, keepdims=True)))[:, 0]


def looks_like_probs(arr: np.ndarray) -> bool:
    """All values in [0, 1] and every row sums to 1 within tolerance."""
    if arr.ndim != 2 or arr.size == 0:
        return False
    tol = sum_tolerance(arr.shape[1], arr.dtype)
    for s in row_chunks(arr.shape[0], arr.shape[1]):
        block = arr[s]
        if block.min() < -1e-6 or block.max() > 1 + 1e-6:
            return False
        if np.abs(block.astype(np.float64).sum(axis=1) - 1.0).max() > tol:
            return False
    return True


def nearly_probs(arr: np.ndarray) -> tuple[float, float, float, float] | None:
    """(min, max, smallest row sum, largest row sum) when ``arr`` is not probabilities but
    close to them (every value in [-0.1, 1.1] and every row sum in [0.5, 1.5]: a broken
    softmax, rounding gone wrong, a stray column); None otherwise."""
    if arr.ndim != 2 or arr.size == 0 or arr.dtype.kind not in "fiu" or looks_like_probs(arr):
        return None
    lo, hi = float(arr.min()), float(arr.max())
    if not (-0.1 <= lo and hi <= 1.1):
        return None
    sums = arr.astype(np.float64).sum(axis=1)
    if sums.min() < 0.5 or sums.max() > 1.5:
        return None
    return lo, hi, float(sums.min()), float(sums.max())


def probs_to_log(probs: np.ndarray) -> np.ndarray:
    out = np.empty(probs.shape, dtype=np.float32)
    for s in row_chunks(probs.shape[0], probs.shape[1]):
        # float64 log, then round once: log p near p = 1 loses digits if p is rounded first
        out[s] = np.log(np.maximum(probs[s].astype(np.float64), PROB_FLOOR))
    return out


def check_class_range(arr: np.ndarray, c: int, where: str, what: str) -> None:
    lo, hi = int(arr.min()), int(arr.max())
    if lo < 0 or hi >= c:
        bad = lo if lo < 0 else hi
        raise ZoolensError(
            f"{where}: {what} contain class id {bad}, outside [0, {c}) "
            "(1-based labels? use a label offset of 1)"
        )


def check_no_stray_label(labels: np.ndarray, where: str) -> None:
    """Before the class count is taken as max(label) + 1 (and anything is made per class):
    ZoolensError when the largest label is beyond ``MAX_CLASSES`` or is a stray id far above
    the others (at least 1,000 and more than 10 times the next largest label + 1)."""
    if labels.size == 0:
        return
    top_row = int(np.argmax(labels))
    top = int(labels[top_row])
    rest = labels[labels != top]
    below = int(rest.max()) if rest.size else -1
    if top >= MAX_CLASSES or (top >= 1000 and top > 10 * (below + 1)):
        others = (
            f"the other labels lie in {int(labels.min())} .. {below}"
            if rest.size
            else "no other label"
        )
        raise ZoolensError(
            f"{where}: label {top} at row {top_row} is far above the other "
            f"labels' range ({others}); a stray id? (at most {MAX_CLASSES:,} "
            "classes; give --num-classes or --class-names for a sparse label "
            "set)"
        )


def cast_floats(arr: np.ndarray, dtype: str, where: str, what: str) -> np.ndarray:
    """``arr`` as contiguous float32 or float16; ZoolensError when a finite value lies beyond
    the target type's range (it would be stored as inf)."""
    limit = FLOAT16_MAX if dtype == "float16" else FLOAT32_MAX
    narrower = arr.dtype.kind in "iu" or (
        arr.dtype.kind == "f" and float(np.finfo(arr.dtype).max) > limit
    )
    if arr.size and narrower:
        peak = max(abs(float(arr.min())), abs(float(arr.max())))
        if peak > limit:
            hint = "store as float32" if dtype == "float16" else "rescale them"
            raise ZoolensError(
                f"{where}: {what} reach {peak:.6g}, beyond {dtype}'s range ({limit:.6g}); {hint}"
            )
    return np.ascontiguousarray(arr, dtype=np.float16 if dtype == "float16" else np.float32)


def topk_to_log_probs(values: np.ndarray, indices: np.ndarray, num_classes: int) -> np.ndarray:
    """log of the full distribution from top-k (indices, probabilities) rows; the remaining
    mass is spread evenly over the unlisted classes; floored at 1e-12."""
    n, k = values.shape
    rest = np.clip(1.0 - values.astype(np.float64).sum(axis=1), 0.0, None)
    spread = rest / (num_classes - k) if num_classes > k else np.zeros(n)
    full = np.repeat(spread[:, None], num_classes, axis=1)
    np.put_along_axis(full, indices, values.astype(np.float64), axis=1)
    return np.log(np.maximum(full, PROB_FLOOR)).astype(np.float32)


def prepare_outputs(
    kind: str, value: Any, *, num_examples: int, num_classes: int, dtype: str, where: str
) -> tuple[dict[str, np.ndarray], str]:
    c = num_classes
    if kind == "decisions":
        arr = to_array(value, f"{where}: decisions")
        if arr.ndim == 2 and arr.shape[1] == 1:
            arr = arr[:, 0]
        check_rows(arr, num_examples, where, "decisions", ndim=1)
        if not is_integral(arr):
            raise ZoolensError(f"{where}: decisions must be integer class ids")
        arr = arr.astype(np.int64)
        # -1 is an abstention (zoo.classes.ABSTAIN): stored as such, never right
        answered = arr[arr != ABSTAIN]
        if answered.size:
            check_class_range(answered, c, where, "decisions")
        return {"decisions": np.ascontiguousarray(arr)}, "decisions"
    if kind == "topk":
        return prepare_topk(
            value[0],
            value[1],
            num_examples=num_examples,
            num_classes=num_classes,
            dtype=dtype,
            where=where,
        ), "topk"
    arr = to_array(value, f"{where}: {kind}")
    check_rows(arr, num_examples, where, kind, ndim=2)
    if arr.shape[1] != c:
        raise ZoolensError(
            f"{where}: {kind} have {arr.shape[1]} classes (columns), the zoo has {c}"
        )
    if arr.dtype.kind not in "fiub":
        raise ZoolensError(f"{where}: {kind} must be numbers, got {arr.dtype}")
    if kind == "log_probs":
        with np.errstate(over="ignore"):  # below float32's range: -inf, floored next
            arr = np.array(arr, dtype=np.float32)
        if np.isnan(arr).any() or np.isposinf(arr).any():
            raise ZoolensError(f"{where}: log_probs contain NaN or +inf")
        np.maximum(arr, np.float32(LOG_PROB_FLOOR), out=arr)
        lse = logsumexp_rows(arr)
        tol = sum_tolerance(
            c, np.asarray(value).dtype if hasattr(value, "dtype") else np.dtype(np.float32)
        )
        if arr.max() > tol or np.abs(np.expm1(lse)).max() > tol:
            bad = int(np.argmax(np.abs(lse)))
            raise ZoolensError(
                f"{where}: log_probs are not log-probabilities (row {bad}: "
                f"exp sums to {math.exp(lse[bad]):.6g}); declare logits?"
            )
        return {"log_probs": cast_floats(arr, dtype, where, "log_probs")}, "log_probs"
    if not all_finite(arr):
        raise ZoolensError(f"{where}: {kind} contain NaN or inf values")
    if kind == "logits":
        if looks_like_probs(arr):
            warnings.warn(
                f"{where}: declared logits, but every row is non-negative and "
                "sums to 1: these look like probabilities (use probs / --kind "
                "probs)",
                ZooWarning,
                stacklevel=3,
            )
        return {"logits": cast_floats(arr, dtype, where, "logits")}, "logits"
    if kind == "counts":
        if arr.min() < 0:
            raise ZoolensError(f"{where}: counts must be non-negative (min {arr.min()})")
        sums = arr.astype(np.float64).sum(axis=1)
        if (sums <= 0).any():
            raise ZoolensError(
                f"{where}: counts row {int(np.argmax(sums <= 0))} is all zero (no votes)"
            )
        probs = arr / sums[:, None]
        return {"log_probs": cast_floats(probs_to_log(probs), dtype, where, "counts")}, "log_probs"
    # probs
    lo, hi = float(arr.min()), float(arr.max())
    if lo < -1e-6 or hi > 1 + 1e-6:
        raise ZoolensError(
            f"{where}: probs must lie in [0, 1] (found {lo:.6g} .. {hi:.6g});"
            " are these logits or counts?"
        )
    tol = sum_tolerance(c, arr.dtype)
    for s in row_chunks(arr.shape[0], c):
        dev = np.abs(arr[s].astype(np.float64).sum(axis=1) - 1.0)
        if dev.max() > tol:
            bad = s.start + int(np.argmax(dev))
            raise ZoolensError(
                f"{where}: probs rows must sum to 1 (row {bad} sums to "
                f"{float(arr[bad].astype(np.float64).sum()):.6g}); are "
                "these counts (--kind counts) or a column range that "
                "includes other columns?"
            )
    return {"log_probs": cast_floats(probs_to_log(arr), dtype, where, "probs")}, "log_probs"


def prepare_topk(
    indices: Any, values: Any, *, num_examples: int, num_classes: int, dtype: str, where: str
) -> dict[str, np.ndarray]:
    c = num_classes
    if indices is None or values is None:
        raise ZoolensError(f"{where}: top-k needs both topk_indices and topk_values")
    idx = to_array(indices, f"{where}: topk_indices")
    val = to_array(values, f"{where}: topk_values")
    if idx.ndim == 1:
        idx = idx[:, None]
    if val.ndim == 1:
        val = val[:, None]
    check_rows(idx, num_examples, where, "topk_indices", ndim=2)
    check_rows(val, num_examples, where, "topk_values", ndim=2)
    if idx.shape != val.shape:
        raise ZoolensError(
            f"{where}: topk_indices {idx.shape} and topk_values {val.shape} differ in shape"
        )
    k = idx.shape[1]
    if k > c:
        raise ZoolensError(f"{where}: top-{k} but the zoo has only {c} classes")
    if not is_integral(idx):
        raise ZoolensError(f"{where}: topk_indices must be integer class ids")
    idx = idx.astype(np.int64)
    check_class_range(idx, c, where, "topk_indices")
    if k > 1:
        srt = np.sort(idx, axis=1)
        dup = (srt[:, 1:] == srt[:, :-1]).any(axis=1)
        if dup.any():
            raise ZoolensError(
                f"{where}: topk_indices row {int(np.argmax(dup))} lists a class twice"
            )
    if not all_finite(val):
        raise ZoolensError(f"{where}: topk_values contain NaN or inf values")
    if val.min() < -1e-6 or val.max() > 1 + 1e-6:
        raise ZoolensError(
            f"{where}: topk_values must be probabilities in [0, 1] "
            f"(found {float(val.min()):.6g} .. {float(val.max()):.6g})"
        )
    sums = val.astype(np.float64).sum(axis=1)
    tol = sum_tolerance(c, val.dtype)
    if sums.max() > 1 + tol:
        raise ZoolensError(
            f"{where}: topk_values row {int(np.argmax(sums))} sums to {sums.max():.6g} > 1"
        )
    if k < c:
        spread = np.clip(1.0 - sums, 0.0, None) / (c - k)
        if (val.astype(np.float64).max(axis=1) < spread - 1e-9).any():
            warnings.warn(
                f"{where}: in some rows every listed probability is below the "
                "mass left for each unlisted class: is this really a top-k "
                "list?",
                ZooWarning,
                stacklevel=4,
            )
    val = np.clip(val.astype(np.float32), 0.0, 1.0)
    return {
        "topk_indices": np.ascontiguousarray(idx),
        "topk_values": cast_floats(val, dtype, where, "topk_values"),
    }


def prepare_float(
    value: Any, *, num_examples: int, dtype: str, where: str, what: str, cols: int | None
) -> np.ndarray:
    arr = to_array(value, f"{where}: {what}")
    check_rows(arr, num_examples, where, what, ndim=2)
    if cols is not None and arr.shape[1] != cols:
        raise ZoolensError(f"{where}: {what} have {arr.shape[1]} columns, expected {cols}")
    if not all_finite(arr):
        raise ZoolensError(f"{where}: {what} contain NaN or inf values")
    return cast_floats(arr, dtype, where, what)


def check_rows(arr: np.ndarray, num_examples: int, where: str, what: str, ndim: int) -> None:
    if arr.size == 0:
        raise ZoolensError(f"{where}: {what} is empty (shape {arr.shape})")
    if arr.ndim != ndim:
        expect = "(N,)" if ndim == 1 else "(N, columns)"
        raise ZoolensError(f"{where}: {what} must be {ndim}-D {expect}, got shape {arr.shape}")
    if arr.shape[0] != num_examples:
        raise ZoolensError(
            f"{where}: {what} have {arr.shape[0]} rows, the zoo has {num_examples} examples"
        )


def detect_kind(arr: np.ndarray, num_classes: int | None = None) -> str:
    """What an array looks like: decisions (1-D or one column of integers), probs (values in
    [0, 1], rows sum to 1), counts (non-negative integers, rows sum > 1), log_probs (values
    <= 0 whose exp sums to 1 per row), else logits."""
    arr = np.asarray(arr)
    if arr.ndim == 1 or (arr.ndim == 2 and arr.shape[1] == 1 and num_classes != 1):
        return "decisions"
    if arr.ndim != 2 or arr.size == 0 or not np.isfinite(arr).all():
        return "logits"
    if looks_like_probs(arr):
        return "probs"
    if arr.min() >= 0 and (arr == np.round(arr)).all() and (arr.sum(axis=1) > 1).any():
        return "counts"
    if arr.max() <= 1e-4:
        with np.errstate(over="ignore", under="ignore"):
            if np.abs(np.expm1(logsumexp_rows(arr))).max() < 1e-3:
                return "log_probs"
    return "logits"
