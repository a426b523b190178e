"""Which kind a block of numbers read from a file is (logits, probs, ..., top-k lists), the
same for every format: ``resolve_kind`` checks a declared kind against what the rows look
like, and splits top-k columns into class ids and probabilities."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np

from zoolens.errors import ZoolensError
from zoolens.zoo.outputs import ZooWarning, detect_kind, nearly_probs
from zoolens.zoo.readers.base import Loaded

IMPORT_KINDS = ("logits", "probs", "log_probs", "counts", "decisions", "topk")
TOPK_LAYOUTS = ("blocks", "pairs")

INDEX_NAME = re.compile(r"index|idx|class|label|pred|top", re.I)
VALUE_NAME = re.compile(r"prob|score|conf|value|val\b|p\d", re.I)


def resolve_kind(
    path: Path,
    arr: np.ndarray,
    kind: str | None,
    num_classes: int,
    topk_layout: str,
    names: list[str] | None,
) -> Loaded:
    """``arr`` read as ``kind`` (detected when None; a declared kind the rows contradict
    warns or, where storing would be wrong, raises); top-k columns split by ``topk_layout``
    or by the column ``names``."""
    if kind == "topk" or (
        kind is None
        and arr.ndim == 2
        and arr.shape[1] != num_classes
        and arr.shape[1] % 2 == 0
        and _looks_like_topk(arr, num_classes, topk_layout, names)
    ):
        idx, val = _split_topk(arr, path, topk_layout, names)
        return Loaded(path, "topk", {"topk_indices": idx, "topk_values": val})
    detected = detect_kind(arr, num_classes)
    if kind is None:
        kind = detected
        near = nearly_probs(arr) if detected == "logits" else None
        if near is not None:
            warnings.warn(
                f"{path}: read as logits, but the rows are almost probabilities "
                f"(values {near[0]:.4g} .. {near[1]:.4g}, row sums {near[2]:.4g} .. "
                f"{near[3]:.4g}); if they are probabilities, --kind probs names the "
                "bad row; --kind logits silences this",
                ZooWarning,
                stacklevel=3,
            )
    elif kind == "decisions" and arr.ndim == 2 and arr.shape[1] != 1:
        raise ZoolensError(
            f"{path}: decisions need one column of class ids, got "
            f"{arr.shape[1]} columns (use --columns A:B)"
        )
    elif kind != detected:
        _warn_mismatch(path, kind, detected)
    if kind == "decisions":
        arr = arr.reshape(arr.shape[0]) if arr.ndim == 2 else arr
    elif arr.ndim == 2 and arr.shape[1] != num_classes:
        hint = f" (the file has {arr.shape[1]} columns: choose {num_classes} with --columns A:B)"
        raise ZoolensError(
            f"{path}: {kind} have {arr.shape[1]} columns, the zoo has {num_classes} classes{hint}"
        )
    return Loaded(path, kind, {kind: arr})


def _warn_mismatch(path: Path, declared: str, detected: str) -> None:
    if declared == "logits" and detected in ("log_probs",):
        return  # log-probabilities are valid logits
    if declared == "logits" and detected == "probs":
        return  # Zoo.add warns about this one itself
    if declared in ("probs", "log_probs") and detected == "logits":
        return  # Zoo.add rejects these with a precise message
    warnings.warn(
        f"{path}: declared --kind {declared}, but the rows look like {detected}",
        ZooWarning,
        stacklevel=3,
    )


def _looks_like_topk(
    arr: np.ndarray, num_classes: int, layout: str, names: list[str] | None
) -> bool:
    try:
        idx, val = _split_topk(arr, Path("."), layout, names)
    except ZoolensError:
        return False
    return bool(
        (idx >= 0).all()
        and (idx < num_classes).all()
        and (idx == np.round(idx)).all()
        and (val >= 0).all()
        and (val <= 1).all()
    )


def _split_topk(
    arr: np.ndarray, path: Path, layout: str, names: list[str] | None
) -> tuple[np.ndarray, np.ndarray]:
    if arr.ndim != 2 or arr.shape[1] % 2:
        raise ZoolensError(
            f"{path}: top-k needs an even number of columns (k class ids and k "
            f"probabilities), got shape {arr.shape}"
        )
    k = arr.shape[1] // 2
    if names is not None:
        idx_cols = [
            i for i, n in enumerate(names) if INDEX_NAME.search(n) and not VALUE_NAME.search(n)
        ]
        val_cols = [i for i, n in enumerate(names) if VALUE_NAME.search(n) and i not in idx_cols]
        if len(idx_cols) == k and len(val_cols) == k:
            return arr[:, idx_cols], arr[:, val_cols]
    if layout == "pairs":
        return arr[:, 0::2], arr[:, 1::2]
    return arr[:, :k], arr[:, k:]
