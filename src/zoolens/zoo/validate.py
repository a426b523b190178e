"""Checks of what ``Zoo.create`` and ``Zoo.add`` are given (names, labels, ids, class
groups, attributes), each a one-line ZoolensError naming the zoo and the problem."""

from __future__ import annotations

import unicodedata

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from zoolens.errors import ZoolensError
from zoolens.zoo.classes import MAX_TEXT_CHARS, check_text
from zoolens.zoo.outputs import (
    MAX_CLASSES,
    check_class_range,
    check_no_stray_label,
    is_integral,
    to_array,
)


def where_model(name: Any, source_file: str | None) -> str:
    label = f"model {name!r}"
    return f"{source_file}: {label}" if source_file else label


def validate_name(name: Any, where: str) -> None:
    if not isinstance(name, str) or not name.strip():
        raise ZoolensError(f"{where}: the model name must be a non-empty string")
    if any(ch in name for ch in "\n\r\0"):
        raise ZoolensError(f"{where}: the model name must be one line")
    if len(name) > 512:
        raise ZoolensError(f"{where}: the model name is longer than 512 characters")


def validate_labels(
    labels: Any, class_names: Sequence[str] | None, num_classes: int | None, path: Path
) -> tuple[np.ndarray, int]:
    arr = to_array(labels, f"{path}: labels")
    if arr.size == 0:
        raise ZoolensError(f"{path}: labels are empty")
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim == 2:  # multi-label 0/1 matrix
        if not is_integral(arr) or arr.min() < 0 or arr.max() > 1:
            raise ZoolensError(f"{path}: multi-label labels must be a 0/1 matrix")
        c = arr.shape[1]
        if class_names is not None and len(class_names) != c:
            raise ZoolensError(f"{path}: {len(class_names)} class names for {c} label columns")
        return np.ascontiguousarray(arr, dtype=np.uint8), c
    if arr.ndim != 1:
        raise ZoolensError(
            f"{path}: labels must be (N,) class ids or an (N, C) 0/1 matrix, got shape {arr.shape}"
        )
    if not is_integral(arr):
        raise ZoolensError(
            f"{path}: labels must be integer class ids (found non-integer, NaN or inf values)"
        )
    arr = arr.astype(np.int64)
    if class_names is not None:
        c = len(class_names)
        if num_classes is not None and num_classes != c:
            raise ZoolensError(f"{path}: {c} class names but num_classes={num_classes}")
    elif num_classes is not None:
        c = int(num_classes)
    else:
        check_no_stray_label(arr, f"{path}: labels")
        c = int(arr.max()) + 1
    if c < 2 and class_names is None and num_classes is None:
        c = 2
    if not 1 <= c <= MAX_CLASSES:
        raise ZoolensError(f"{path}: {c} classes; a zoo has between 1 and {MAX_CLASSES:,} classes")
    check_class_range(arr, c, f"{path}: labels", "labels")
    return np.ascontiguousarray(arr), c


def unlabelled_classes(
    class_names: Sequence[str] | None, num_classes: int | None, path: Path
) -> int:
    """C of an unlabelled zoo: ``len(class_names)``, else ``num_classes`` (one is needed)."""
    if class_names is not None:
        c = len(class_names)
        if num_classes is not None and int(num_classes) != c:
            raise ZoolensError(f"{path}: {c} class names but num_classes={num_classes}")
    elif num_classes is not None:
        c = int(num_classes)
    else:
        raise ZoolensError(
            f"{path}: a zoo without labels needs its classes: give num_classes "
            "(--num-classes K) or class_names (--class-names)"
        )
    if not 1 <= c <= MAX_CLASSES:
        raise ZoolensError(f"{path}: {c} classes; a zoo has between 1 and {MAX_CLASSES:,} classes")
    return c


def unlabelled_size(num_examples: int | None, example_ids: Any, path: Path) -> int:
    """N of an unlabelled zoo: ``num_examples``, else the number of example ids."""
    n = None if example_ids is None else len(example_ids)
    if num_examples is not None:
        if isinstance(num_examples, bool) or int(num_examples) < 1:
            raise ZoolensError(f"{path}: num_examples must be a positive integer")
        if n is not None and n != int(num_examples):
            raise ZoolensError(f"{path}: num_examples={num_examples} but {n} example ids")
        return int(num_examples)
    if n is None or n < 1:
        raise ZoolensError(
            f"{path}: a zoo without labels needs its number of examples: give num_examples "
            "or example_ids"
        )
    return n


def validate_ids(ids: Any, n: int, path: Path) -> np.ndarray:
    texts = [str(x) for x in np.asarray(ids, dtype=object).ravel()]
    check_text(texts, str(path), "example id", MAX_TEXT_CHARS)
    arr = np.asarray(texts, dtype=str)
    if arr.shape != (n,):
        raise ZoolensError(f"{path}: {arr.shape[0]} example ids for {n} examples")
    uniq, counts = np.unique(arr, return_counts=True)
    if (counts > 1).any():
        raise ZoolensError(
            f"{path}: example id {uniq[np.argmax(counts > 1)]!r} occurs "
            f"{int(counts.max())} times; ids must be unique"
        )
    return arr


def validate_groups(
    groups: Mapping[str, Sequence[int]], c: int, path: Path
) -> dict[str, list[int]]:
    clean: dict[str, list[int]] = {}
    for key, members in dict(groups).items():
        idx = [int(i) for i in members]
        if not idx:
            raise ZoolensError(f"{path}: class group {key!r} is empty")
        if min(idx) < 0 or max(idx) >= c:
            raise ZoolensError(f"{path}: class group {key!r} has a class id outside [0, {c})")
        clean[str(key)] = idx
    return clean


def validate_attributes(attributes: Any, n: int, path: Path) -> Any:
    import pandas as pd

    df = attributes if isinstance(attributes, pd.DataFrame) else pd.DataFrame(attributes)
    if len(df) != n:
        raise ZoolensError(f"{path}: attributes have {len(df)} rows, the zoo has {n} examples")
    df = df.reset_index(drop=True)
    df.columns = [str(c) for c in df.columns]
    return df


def check_no_nfc_twin(name: str, names: Iterable[str], where: str) -> None:
    """ZoolensError when another of ``names`` is ``name`` in another Unicode normal form."""
    key = unicodedata.normalize("NFC", name)
    twin = next((m for m in names if m != name and unicodedata.normalize("NFC", m) == key), None)
    if twin is not None:
        raise ZoolensError(
            f"{where}: looks the same as the model {twin!r} already in the "
            "zoo (the same text in another Unicode normal form, NFC/NFD); "
            "use that exact name or a different one"
        )


def one_output_kind(where: str, **outputs: Any) -> tuple[str, Any]:
    """The one output given to ``Zoo.add`` (keyword: value, None for not given), as (kind,
    value); ZoolensError naming the model unless exactly one is given."""
    given = {kind: value for kind, value in outputs.items() if value is not None}
    if len(given) != 1:
        what = ", ".join(given) if given else "nothing"
        raise ZoolensError(
            f"{where}: give exactly one of logits, probs, log_probs, counts, "
            f"decisions or topk_indices+topk_values (got {what})"
        )
    ((kind, value),) = given.items()
    return kind, value


def row_index(rows: Any, n: int, name: str) -> Any:
    """``rows`` of a model's N = ``n`` rows as :meth:`Zoo.scores` takes them (None: all, a
    slice, an integer, a 1-D integer array with negatives from the end, or an (n,) bool mask)
    as a slice or an int64 index array; one ZoolensError line naming the model otherwise."""
    if rows is None:
        return slice(None)
    if isinstance(rows, slice):
        return rows
    if isinstance(rows, (int, np.integer)):
        rows = [int(rows)]
    idx = np.asarray(rows)
    if idx.dtype == bool:
        if idx.shape != (n,):
            raise ZoolensError(
                f"model {name!r}: boolean row mask has shape {idx.shape}, expected ({n},)"
            )
        return np.flatnonzero(idx)
    if idx.ndim != 1 or (idx.size and idx.dtype.kind not in "iu"):
        raise ZoolensError(
            f"model {name!r}: rows must be a slice, a 1-D integer array or a boolean mask"
        )
    idx = idx.astype(np.int64)
    if idx.size and (idx.min() < -n or idx.max() >= n):
        raise ZoolensError(f"model {name!r}: row index out of range [0, {n})")
    return idx
