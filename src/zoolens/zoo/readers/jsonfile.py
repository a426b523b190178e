"""JSON model files: a list with one entry per example, or an object from example id to
entry; an entry is a class id or name (decisions) or a row of scores."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from zoolens.errors import ZoolensError
from zoolens.zoo.classes import (
    MAX_TEXT_CHARS,
    ClassIndex,
    check_text,
    is_text,
    parse_json,
    text_to_class_ids,
)
from zoolens.zoo.readers.base import Loaded, Reader, Request, class_ids, cut
from zoolens.zoo.readers.kinds import resolve_kind


class JsonReader(Reader):
    """``.json``: decisions or score rows, keyed by example id or in example order."""

    no_side_columns = (
        "a JSON model file has no columns; key it by example "
        'id instead ({"id": decision or score row, ...}) and leave '
        "out --id-column/--label-column"
    )

    def outputs(self, path: Path, request: Request) -> Loaded:
        self.refuse_side_columns(path, request)
        return _load_json_outputs(path, request)

    def label_values(
        self, path: Path, *, key: str | None, column: str | int | None, header: bool | None
    ) -> np.ndarray:
        entries, _ = json_entries(path)
        texts = ["" if v is None else str(v) for v in entries]
        check_text(texts, str(path), "label", MAX_TEXT_CHARS)
        values = np.asarray(texts)
        return values if is_text(values) else _json_class_ids(entries, path).astype(float)

    def ids(self, path: Path, id_column: str | int, header: bool | None) -> np.ndarray:
        ids = json_entries(path)[1]
        if ids is None:
            raise ZoolensError(
                f"{path}: a JSON list has no example ids; key the entries by "
                'id ({"id": entry, ...})'
            )
        return ids

    def own_ids(self, path: Path) -> np.ndarray | None:
        return json_entries(path)[1]


def _read_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except UnicodeDecodeError:
        raise ZoolensError(f"{path}: not a UTF-8 text (JSON) file") from None
    return parse_json(text, path)


def json_entries(path: Path) -> tuple[list[Any], np.ndarray | None]:
    """(entries, ids): a JSON list (no ids) or an object from example id to entry."""
    data = _read_json(path)
    if isinstance(data, dict):
        keys = [str(k).strip() for k in data]
        check_text(keys, str(path), "example id", MAX_TEXT_CHARS)
        ids: np.ndarray | None = np.asarray(keys, dtype=str)
        entries = list(data.values())
    elif isinstance(data, list):
        ids, entries = None, data
    else:
        raise ZoolensError(
            f"{path}: expected a JSON list (one entry per example) or an object "
            f"from example id to entry, got {type(data).__name__}"
        )
    if not entries:
        raise ZoolensError(f"{path}: holds no examples")
    return entries, ids


def _load_json_outputs(path: Path, request: Request) -> Loaded:
    """A JSON model file: a list of class ids (decisions) or of score rows, or an object
    from example id to either (the ids are then joined to the zoo's)."""
    kind, cols, num_classes = request.kind, request.cols, request.num_classes
    topk_layout, classes, abstain = request.topk_layout, request.classes, request.abstain
    entries, ids = json_entries(path)
    is_row = [isinstance(v, list) for v in entries]
    if all(is_row):
        widths = np.asarray([len(v) for v in entries])
        if (widths != widths[0]).any():
            bad = int(np.argmax(widths != widths[0]))
            raise ZoolensError(
                f"{path}: ragged score rows (entry {bad} has {widths[bad]} "
                f"values, entry 0 has {widths[0]})"
            )
        arr = np.asarray(entries)
        if arr.dtype.kind not in "iuf":
            raise ZoolensError(
                f"{path}: score rows must hold numbers only (found "
                f"{'true/false' if arr.dtype.kind == 'b' else 'text or null'})"
            )
        loaded = resolve_kind(
            path, cut(arr, cols, path), kind, num_classes, topk_layout, names=None
        )
    elif any(is_row):
        bad = is_row.index(not is_row[0])
        raise ZoolensError(
            f"{path}: mixes score rows and single class ids (entry 0 and entry {bad} differ)"
        )
    else:
        if kind not in (None, "decisions"):
            raise ZoolensError(
                f"{path}: the entries are single class ids (decisions), not {kind} rows"
            )
        if cols is not None:
            raise ZoolensError(
                f"{path}: --columns needs score rows; the entries are single class ids"
            )
        loaded = Loaded(
            path, "decisions", {"decisions": _json_decisions(entries, path, classes, abstain)}
        )
    loaded.ids = ids
    return loaded


def _json_decisions(
    entries: list[Any], path: Path, classes: ClassIndex | None, abstain: Sequence[str]
) -> np.ndarray:
    """Class ids of JSON decision entries: numbers, class names / aliases (``classes``),
    null or text in ``abstain`` for an abstention (-1)."""
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in entries):
        return _json_class_ids(entries, path)
    for i, value in enumerate(entries):
        if isinstance(value, (bool, dict, list)):
            raise ZoolensError(
                f"{path}: entry {i}: {json.dumps(value)[:40]} is not a class id or class name"
            )
    text = np.asarray(["" if v is None else str(v) for v in entries])
    return text_to_class_ids(text, str(path), "decisions", classes, abstain=abstain)


def _json_class_ids(entries: list[Any], path: Path) -> np.ndarray:
    """Integer class ids from JSON entries (numbers holding integers)."""
    arr = np.asarray(entries)
    if arr.dtype.kind in "iuf":
        return class_ids(arr, path, "decisions")
    for i, value in enumerate(entries):  # the first bad entry, for the message
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ZoolensError(f"{path}: entry {i}: {json.dumps(value)[:40]} is not a class id")
    raise ZoolensError(f"{path}: decisions must be integer class ids")


# ---------------------------------------------------------------------------------------------
