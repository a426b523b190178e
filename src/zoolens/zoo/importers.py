"""Importers: model outputs in the formats people actually have -> a zoo model.

Supported files
---------------
``.npy``            one array (allow_pickle=False)
``.npz``            several arrays: ``key`` picks one; without it the only 2-D array is used
``.safetensors``    several tensors: ``key`` as for npz
``.pt`` / ``.pth``  a tensor or a dict of tensors, loaded with ``torch.load(weights_only=True)``
``.csv`` / ``.tsv`` / ``.txt``  a table; a header row is detected (every field of the first
                    row non-numeric) unless ``header`` is given; columns are 0-based

Any 2-D table can be cut with ``columns="A:B"`` (0-based, half-open, open ends allowed:
"11:21", ":10", "3:"); without it every column except the label and id columns is used.
``label_column`` / ``id_column`` give each row's true label (checked against the zoo's, or
used as the labels when creating one) and its example id (rows are joined to the zoo's
``example_ids`` and reordered by ``join_ids``; a missing, extra or repeated id is an error,
and so is a zoo without ids). In a CSV they are a 0-based index or a header name. In an
array file they are the *key* of a 1-D array beside the outputs, one entry per row, e.g. the
``ids`` saved next to logits gathered from a shuffled DataLoader::

    np.savez("m.npz", logits=logits, ids=ids, labels=labels)
    import_file(zoo, "m.npz", "m", id_column="ids", label_column="labels")

Id arrays: npz -- strings (unicode or bytes) or integers; safetensors -- integer tensors
only (the format has no strings); pt/pth -- an integer tensor or a list of str or of int
(both load with ``weights_only=True``). Float ids are refused. The id and label arrays never
take part in choosing the outputs array (``key`` auto-detection, top-k by name). A ``.npy``
file holds one array and so cannot carry ids.

Integer ids against the zoo's ids (always stored as strings): when every zoo id is a decimal
integer ("17", "00017", "-3") both sides are compared as integers, so ``17`` matches
"00017" (two zoo ids naming the same integer, "7" and "007", are then an error); otherwise
integer ids cannot match and are refused with a message saying so. String ids always compare
exactly ("17" does not match "00017").

Kinds (``kind``)
----------------
logits, probs, log_probs, counts (N, C); decisions (N,) or one column of class ids;
topk: class ids and their probabilities, k of each (k may be 1). Top-k layouts:

* npz / safetensors / pt: two arrays, ``key="INDICES,VALUES"``, or found by name
  (indices: a name containing index/idx/class/label/pred; values: prob/score/conf/value).
* a table (CSV or a 2-D array) with 2k selected columns: with a header whose names say
  index/idx/class vs prob/score/conf (e.g. ``filename,index_0,index_1,prob_0,prob_1`` or
  timm's ``inference.py`` output), the names decide; otherwise ``topk_layout="blocks"``
  (the default: k class-id columns, then k probability columns) or ``"pairs"``
  (id, prob, id, prob, ...).

When ``kind`` is None it is detected (``detect_kind``); a declared kind that disagrees with
what the rows look like gives a ZooWarning (probabilities declared as logits, probabilities
declared as counts, ...) or, where storing would be wrong, a one-line ZoolensError.
"""

from __future__ import annotations

import csv
import json
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np

from zoolens.errors import ZoolensError, one_line, require_torch
from zoolens.progress import info
from zoolens.zoo.classes import (
    ABSTAIN_TEXT,
    MAX_CLASS_NAME_CHARS,
    MAX_TEXT_CHARS,
    ClassIndex,
    check_confusable,
    check_text,
    is_number,
    is_text,
    normal_name,
    text_to_class_ids,
)
from zoolens.zoo.classmap import ClassMap
from zoolens.zoo.outputs import ZooWarning, detect_kind, nearly_probs

IMPORT_KINDS = ("logits", "probs", "log_probs", "counts", "decisions", "topk")
TABLE_SUFFIXES = (".csv", ".tsv", ".txt")
JSON_SUFFIXES = (".json",)
SUPPORTED_SUFFIXES = (
    (".npy", ".npz", ".safetensors", ".pt", ".pth") + TABLE_SUFFIXES + JSON_SUFFIXES
)
TOPK_LAYOUTS = ("blocks", "pairs")

_INDEX_NAME = re.compile(r"index|idx|class|label|pred|top", re.I)
_VALUE_NAME = re.compile(r"prob|score|conf|value|val\b|p\d", re.I)
_DECIMAL = re.compile(r"\s*[+-]?[0-9]+\s*")


@dataclass
class Loaded:
    """What an importer read from one file, in the file's row order (before any id join)."""

    path: Path
    kind: str
    arrays: dict[str, np.ndarray]  # add() keyword -> array
    ids: np.ndarray | None = None  # (n,) str or int64, from id_column
    labels: np.ndarray | None = None  # (n,) float, from label_column (offset applied)
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# public API


def parse_columns(spec: str | slice | None) -> slice | None:
    """ "A:B" (0-based, half-open, open ends allowed) -> slice(A, B)."""
    if spec is None or isinstance(spec, slice):
        return spec
    match = re.fullmatch(r"\s*(-?\d*)\s*:\s*(-?\d*)\s*", str(spec))
    if not match:
        raise ZoolensError(f"--columns {spec!r}: expected A:B (0-based, B excluded), e.g. 11:21")
    a, b = (int(x) if x else None for x in match.groups())
    return slice(a, b)


def read_labels(
    path: str | Path,
    *,
    key: str | None = None,
    column: str | int | None = None,
    header: bool | None = None,
    offset: int = 0,
    classes: ClassIndex | None = None,
) -> np.ndarray:
    """Labels from a file: npy; npz / safetensors / pt (``key``, or the only 1-D array, or one
    named like labels / ground_truth / targets / y); CSV (``column``, or the only column).
    ``offset`` is subtracted (1 for 1-based labels). Labels given as class names (CSV text,
    string arrays) are mapped through ``classes`` (names and aliases). Returns (N,) int64 or
    an (N, C) matrix."""
    path = Path(path)
    raw = label_values(path, key=key, column=column, header=header)
    if raw.dtype.kind in "US":
        return text_to_class_ids(raw, str(path), "labels", classes, offset=offset)
    arr = raw
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim == 1:
        arr = _class_ids(arr, path, "labels") - int(offset)
    return arr


def label_names(
    path: str | Path,
    *,
    key: str | None = None,
    column: str | int | None = None,
    header: bool | None = None,
) -> list[str] | None:
    """The distinct labels, sorted, when a labels file names its classes (text that is not
    a number); None for numeric labels. ``--create`` builds the class list from them."""
    raw = label_values(Path(path), key=key, column=column, header=header)
    if raw.dtype.kind not in "US" or not is_text(raw):
        return None
    names = sorted({normal_name(v) for v in set(raw.astype(str).tolist())} - {""})
    check_text(names, str(path), "class name", MAX_CLASS_NAME_CHARS)
    check_confusable(names, str(path))
    return names


def label_values(
    path: Path,
    *,
    key: str | None = None,
    column: str | int | None = None,
    header: bool | None = None,
) -> np.ndarray:
    """The raw label entries of a file: a CSV column as text when any entry is not a number
    (else as float), or the label array of an array file as stored."""
    suffix = _suffix(path)
    if suffix in TABLE_SUFFIXES:
        table = _read_table(path, header)
        if column is None:
            if table.cells.shape[1] != 1:
                raise ZoolensError(
                    f"{path}: {table.cells.shape[1]} columns; choose the label "
                    "column (--labels-column)"
                )
            column = 0
        col = table.column_index(column, "labels column")
        if is_text(table.cells[:, col]):
            return np.char.strip(table.cells[:, col])
        return table.numeric([col], "labels")[:, 0]
    if suffix in JSON_SUFFIXES:
        entries, _ = _json_entries(path)
        texts = ["" if v is None else str(v) for v in entries]
        check_text(texts, str(path), "label", MAX_TEXT_CHARS)
        values = np.asarray(texts)
        return values if is_text(values) else _json_class_ids(entries, path).astype(float)
    arrays = _read_arrays(path, lists=[key] if key is not None else ())
    if key is not None:
        arr = _pick_key(arrays, key, path)
    elif len(arrays) == 1:
        arr = next(iter(arrays.values()))
    else:
        named = [
            k
            for k in arrays
            if re.fullmatch(r"(labels?|ground_?truth|targets?|y|y_true|true_labels?)", k, re.I)
        ]
        one_d = [k for k, v in arrays.items() if v.ndim == 1]
        choice = named if len(named) == 1 else one_d
        if len(choice) != 1:
            raise ZoolensError(
                f"{path}: several arrays ({', '.join(arrays)}); choose the labels with --labels-key"
            )
        arr = arrays[choice[0]]
    arr = np.asarray(arr)
    if arr.dtype.kind == "S":
        arr = np.char.decode(arr, "utf-8", errors="replace")
    return arr


def labels_for_create(
    labels: str | Path,
    model_file: str | Path,
    *,
    key: str | None = None,
    column: str | int | None = None,
    labels_id_column: str | int | None = None,
    id_column: str | int | None = None,
    header: bool | None = None,
    offset: int = 0,
    classes: ClassIndex | None = None,
    id_prefix: str | None = None,
    id_pattern: str | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """(labels, example ids or None) for a zoo created from the labels file ``labels`` and
    the first model file ``model_file``.

    The labels' ids come from ``labels_id_column``, or from ``id_column`` when the labels
    file has a column (CSV header name, array key) of that name. The model file's ids come
    from ``id_column`` or, for a JSON object, its keys. With ids on both sides the labels are
    joined to the model file's rows by id (the zoo takes the model file's order, its ids
    without ``id_prefix``; a missing, extra or repeated id is an error) -- never by position; with ids on one side only the
    zoo takes those ids, and the other file is matched by row position. ``id_pattern``: a
    regular expression whose first group is the id, applied to the ids of both files.
    """
    labels, model_file = Path(labels), Path(model_file)
    y = read_labels(labels, key=key, column=column, header=header, offset=offset, classes=classes)
    label_ids = None
    if labels_id_column is not None:
        label_ids = read_ids(labels, labels_id_column, header=header)
    elif id_column is not None and has_column(labels, id_column, header):
        label_ids = read_ids(labels, id_column, header=header)
    if label_ids is not None and id_pattern:
        label_ids = match_ids(label_ids, id_pattern, labels)
    if label_ids is not None and len(label_ids) != len(y):
        raise ZoolensError(f"{labels}: {len(label_ids)} ids for {len(y)} labels")
    file_ids = None
    if id_column is not None:
        file_ids = read_ids(model_file, id_column, header=header)
    elif _suffix(model_file) in JSON_SUFFIXES:
        file_ids = _json_entries(model_file)[1]
    if file_ids is not None and id_prefix:
        file_ids = strip_id_prefix(file_ids, id_prefix, model_file)
    if file_ids is not None and id_pattern:
        file_ids = match_ids(file_ids, id_pattern, model_file)
    if label_ids is None or file_ids is None:
        return y, label_ids if label_ids is not None else file_ids
    zoo_ids = np.asarray(file_ids).astype(str)
    return y[join_ids(zoo_ids, label_ids, labels)], zoo_ids


def has_column(path: str | Path, column: str | int, header: bool | None = None) -> bool:
    """Whether ``path`` has a column (CSV header name) or array (key) named ``column``."""
    path = Path(path)
    suffix = _suffix(path)
    if suffix in JSON_SUFFIXES or suffix == ".npy":
        return False
    if suffix in TABLE_SUFFIXES:
        names = _read_table(path, header).names
        return names is not None and str(column) in names
    return str(column) in _read_arrays(path, lists=[str(column)])


def _class_ids(arr: np.ndarray, path: Path, what: str) -> np.ndarray:
    """A 1-D array of integer class ids (any int/bool dtype, or floats holding integers) as
    int64; ZoolensError naming ``what`` otherwise."""
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all() or (arr != np.round(arr)).any():
            raise ZoolensError(
                f"{path}: {what} must be integer class ids (found non-integer, NaN or inf values)"
            )
    elif arr.dtype.kind not in "iub":
        raise ZoolensError(f"{path}: {what} must be integer class ids, got {arr.dtype}")
    return arr.astype(np.int64)


def load_outputs(
    path: str | Path,
    *,
    num_classes: int,
    kind: str | None = None,
    key: str | None = None,
    columns: str | slice | None = None,
    label_column: str | int | None = None,
    label_offset: int = 0,
    id_column: str | int | None = None,
    header: bool | None = None,
    topk_layout: str = "blocks",
    classes: ClassIndex | None = None,
    abstain: Sequence[str] = (),
) -> Loaded:
    """Read one file's model outputs (see the module docstring). The returned arrays are in
    the file's row order; ``import_file`` joins them to the zoo.

    Decisions (a CSV column, JSON entries) and labels may be class names or aliases, mapped
    through ``classes``; a decision that is ``na``, empty, JSON null or in ``abstain`` is an
    abstention (class id -1, ``zoo.classes.ABSTAIN``)."""
    no_answer = tuple(ABSTAIN_TEXT) + tuple(abstain)
    path = Path(path)
    if kind is not None and kind not in IMPORT_KINDS:
        raise ZoolensError(f"{path}: unknown kind {kind!r}; use one of {', '.join(IMPORT_KINDS)}")
    if topk_layout not in TOPK_LAYOUTS:
        raise ZoolensError(f"{path}: unknown top-k layout {topk_layout!r}; use blocks or pairs")
    cols = parse_columns(columns)
    suffix = _suffix(path)
    if suffix in JSON_SUFFIXES:
        if id_column is not None or label_column is not None:
            raise ZoolensError(
                f"{path}: a JSON model file has no columns; key it by example "
                'id instead ({"id": decision or score row, ...}) and leave '
                "out --id-column/--label-column"
            )
        return _load_json_outputs(
            path,
            num_classes=num_classes,
            kind=kind,
            cols=cols,
            topk_layout=topk_layout,
            classes=classes,
            abstain=no_answer,
        )
    if suffix in TABLE_SUFFIXES:
        return _load_table_outputs(
            path,
            num_classes=num_classes,
            kind=kind,
            cols=cols,
            label_column=label_column,
            label_offset=label_offset,
            id_column=id_column,
            header=header,
            topk_layout=topk_layout,
            classes=classes,
            abstain=no_answer,
        )
    side_keys = [str(k) for k in (id_column, label_column) if k is not None]
    if side_keys and suffix == ".npy":
        raise ZoolensError(
            f"{path}: a .npy file holds a single array, so it cannot carry "
            "--id-column/--label-column; save outputs and ids together, e.g. "
            "np.savez('m.npz', logits=..., ids=...), and pass --id-column ids"
        )
    arrays = _read_arrays(path, lists=side_keys)
    ids = labels = None
    if id_column is not None:
        ids = _id_array(_pick_key(arrays, str(id_column), path), str(id_column), path)
    if label_column is not None:
        labels = _label_array(
            _pick_key(arrays, str(label_column), path), str(label_column), path
        ) - int(label_offset)
    for k in side_keys:  # never candidates for the outputs
        arrays.pop(k, None)
    if not arrays:
        raise ZoolensError(f"{path}: no outputs array besides {', '.join(map(repr, side_keys))}")
    loaded = _load_array_outputs(
        path,
        arrays,
        num_classes=num_classes,
        kind=kind,
        key=key,
        cols=cols,
        topk_layout=topk_layout,
    )
    n = _rows(loaded)
    for what, side, column in (("id", ids, id_column), ("label", labels, label_column)):
        if side is not None and len(side) != n:
            raise ZoolensError(
                f"{path}: the {what} array {str(column)!r} has {len(side)} entries, "
                f"the outputs have {n} rows"
            )
    loaded.ids, loaded.labels = ids, labels
    return loaded


def _load_array_outputs(
    path: Path,
    arrays: dict[str, np.ndarray],
    *,
    num_classes: int,
    kind: str | None,
    key: str | None,
    cols: slice | None,
    topk_layout: str,
) -> Loaded:
    if kind == "topk" and ((key is not None and "," in key) or (key is None and len(arrays) > 1)):
        idx, val = _pick_topk_keys(arrays, key, path)
        return Loaded(
            path,
            "topk",
            {"topk_indices": _cut(idx, cols, path), "topk_values": _cut(val, cols, path)},
        )
    if key is not None:
        arr = _pick_key(arrays, key, path)
    elif len(arrays) == 1:
        arr = next(iter(arrays.values()))
    else:
        arr = _guess_output_array(arrays, num_classes, path)
    arr = _cut(arr, cols, path)
    if arr.dtype.kind not in "fiub":
        raise ZoolensError(f"{path}: expected numbers, got an array of {arr.dtype}")
    return _resolve_kind(path, arr, kind, num_classes, topk_layout, names=None)


def _rows(loaded: Loaded) -> int:
    return int(np.asarray(next(iter(loaded.arrays.values()))).shape[0])


def read_ids(path: str | Path, id_column: str | int, *, header: bool | None = None) -> np.ndarray:
    """The example ids of a file, in its row order: a CSV column (0-based index or header
    name, stripped strings) or the 1-D array named ``id_column`` in an npz / safetensors /
    pt file (str or int64; see the module docstring). Used to create a zoo with ids."""
    path = Path(path)
    suffix = _suffix(path)
    if suffix in JSON_SUFFIXES:
        ids = _json_entries(path)[1]
        if ids is None:
            raise ZoolensError(
                f"{path}: a JSON list has no example ids; key the entries by "
                'id ({"id": entry, ...})'
            )
        return ids
    if suffix in TABLE_SUFFIXES:
        table = _read_table(path, header)
        col = table.column_index(id_column, "--id-column")
        return np.char.strip(table.cells[:, col])
    if suffix == ".npy":
        raise ZoolensError(
            f"{path}: a .npy file holds a single array, so it cannot carry "
            "--id-column; save outputs and ids together in an .npz"
        )
    key = str(id_column)
    return _id_array(_pick_key(_read_arrays(path, lists=[key]), key, path), key, path)


def _id_array(arr: np.ndarray, key: str, path: Path) -> np.ndarray:
    """A 1-D id array as str (unicode; bytes decoded as UTF-8) or int64."""
    arr = np.asarray(arr)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ZoolensError(
            f"{path}: the id array {key!r} must be 1-D (one id per row), got shape {arr.shape}"
        )
    if arr.dtype.kind == "S":
        try:
            return np.char.decode(arr, "utf-8")
        except UnicodeDecodeError:
            raise ZoolensError(
                f"{path}: the id array {key!r} holds bytes that are not UTF-8"
            ) from None
    if arr.dtype.kind == "U":
        return arr
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64)
    raise ZoolensError(
        f"{path}: the id array {key!r} must hold strings or integers, got {arr.dtype}"
    )


def _label_array(arr: np.ndarray, key: str, path: Path) -> np.ndarray:
    """A 1-D label array as float64 holding integers (as the CSV label column)."""
    arr = np.asarray(arr)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ZoolensError(
            f"{path}: the label array {key!r} must be 1-D (one label per row), "
            f"got shape {arr.shape}"
        )
    return _class_ids(arr, path, f"the label array {key!r}").astype(np.float64)


def import_file(
    zoo: Any,
    path: str | Path,
    name: str,
    *,
    kind: str | None = None,
    key: str | None = None,
    columns: str | slice | None = None,
    label_column: str | int | None = None,
    label_offset: int = 0,
    id_column: str | int | None = None,
    header: bool | None = None,
    topk_layout: str = "blocks",
    card: Any = None,
    replace: bool = False,
    dtype: str = "float32",
    embeddings: str | Path | None = None,
    embeddings_key: str | None = None,
    strict: bool = False,
    abstain: Sequence[str] = (),
    id_prefix: str | None = None,
    id_pattern: str | None = None,
    class_map: ClassMap | None = None,
) -> str:
    """Read ``path`` and add it to ``zoo`` as model ``name``; returns the kind the file was
    read as (logits, probs, log_probs, counts, decisions or topk; see ``zoo.kind`` for how
    it is stored).

    Rows are joined to the zoo's example ids when ``id_column`` is given (a CSV column, or
    the key of an id array in an npz / safetensors / pt file); the labels in
    ``label_column`` (a CSV column or an array key; minus ``label_offset``) must equal the
    zoo's labels row for row after the join. Nothing is written when any check fails.

    Then the sanity check (``zoo.sanity``): a model whose accuracy, or whose agreement with
    the zoo's other models, is at chance level gives one ZooWarning naming the likely causes
    and is kept; with ``strict`` it is a ZoolensError and nothing is written.

    ``id_prefix``: text every id of the file starts with and that the zoo's ids lack (a
    subject or run prefix, ``"s01_"``); it is removed before the join. ``id_pattern``: a
    regular expression whose first group is the id (``match_ids``), for a per-row prefix or
    suffix such as a trial number. ``abstain``: decision values that mean "no answer"
    (besides na, empty cells and JSON null). ``class_map`` (``zoo.classmap``): the file holds
    a model's outputs over its own classes, mapped into the zoo's (probabilities aggregated
    per group; decisions and top-k lists by group, one outside every group counted and
    stored as an abstention).

    A table imported into a zoo with ids but without ``id_column`` is still joined by id
    when one of its columns (outside ``columns``) holds exactly the zoo's ids, each once:
    rows that carry ids are never taken by position.
    """
    path = Path(path)
    if id_column is None and zoo.example_ids is not None and not id_prefix and not id_pattern:
        id_column = find_id_column(path, zoo.example_ids, header, parse_columns(columns))
    loaded = load_outputs(
        path,
        num_classes=zoo.num_classes if class_map is None else class_map.num_model_classes,
        kind=kind,
        key=key,
        columns=columns,
        label_column=label_column,
        label_offset=label_offset,
        id_column=id_column,
        header=header,
        topk_layout=topk_layout,
        classes=zoo.class_index() if class_map is None else class_map.model_classes,
        abstain=abstain,
    )
    arrays = dict(loaded.arrays)
    if class_map is not None:
        if class_map.num_classes != zoo.num_classes:
            raise ZoolensError(
                f"{class_map.source}: maps to {class_map.num_classes} classes, the zoo has "
                f"{zoo.num_classes}"
            )
        arrays, outside = class_map.apply(loaded.kind, arrays)
        if outside:
            info(
                f"{path}: class map: {outside} of {_rows(loaded)} decisions fall outside "
                "every group (stored as abstentions: wrong)"
            )
    labels = loaded.labels
    if loaded.ids is not None and id_prefix:
        loaded.ids = strip_id_prefix(loaded.ids, id_prefix, path)
    if loaded.ids is not None and id_pattern:
        loaded.ids = match_ids(loaded.ids, id_pattern, path)
    if loaded.ids is not None:
        order = join_ids(zoo.example_ids, loaded.ids, path)
        arrays = {k: v[order] for k, v in arrays.items()}
        labels = labels[order] if labels is not None else None
    if labels is not None:
        zoo.require_labels(f"{path}: --label-column {label_column!r} (checked against them)")
        check_labels(zoo.labels, labels, path, label_column)
    _sanity(zoo, name, arrays, path, strict)
    emb = None
    if embeddings is not None:
        emb_arrays = _read_arrays(Path(embeddings))
        emb = (
            _pick_key(emb_arrays, embeddings_key, Path(embeddings))
            if embeddings_key
            else _only(emb_arrays, Path(embeddings), "--embeddings-key")
        )
    zoo.add(
        name,
        **arrays,
        embeddings=emb,
        card=card,
        replace=replace,
        dtype=dtype,
        source_file=str(path),
    )
    return loaded.kind


def _sanity(zoo: Any, name: str, arrays: dict[str, np.ndarray], path: Path, strict: bool) -> None:
    from zoolens.zoo.sanity import check_new_model

    pred = top1(arrays)
    if pred is None or len(pred) != zoo.num_examples:
        return  # Zoo.add refuses it with its own message
    problems = check_new_model(zoo, name, pred)
    if not problems:
        return
    message = f"{path}: model {name!r}: {'; '.join(problems)}"
    if strict:
        raise ZoolensError(f"{message} (--strict: nothing imported)")
    warnings.warn(message, ZooWarning, stacklevel=3)


def top1(arrays: dict[str, np.ndarray]) -> np.ndarray | None:
    """(N,) top-1 class of the outputs ``add()`` is about to store (decisions as given, the
    highest listed class of a top-k model, else the argmax of the row); None when the arrays
    are not rows of class scores (``Zoo.add`` then refuses them)."""
    try:
        if "decisions" in arrays:
            return np.asarray(arrays["decisions"]).reshape(-1).astype(np.int64)
        if "topk_indices" in arrays:
            idx = np.asarray(arrays["topk_indices"])
            val = np.asarray(arrays["topk_values"], dtype=np.float64)
            idx, val = idx.reshape(len(idx), -1), val.reshape(len(val), -1)
            return idx[np.arange(len(idx)), np.argmax(val, axis=1)].astype(np.int64)
        (arr,) = (np.asarray(a) for a in arrays.values())
        if arr.ndim != 2 or arr.dtype.kind not in "fiub":
            return None
        return np.argmax(arr, axis=1).astype(np.int64)
    except (ValueError, TypeError, IndexError):
        return None


def find_id_column(
    path: Path, zoo_ids: np.ndarray, header: bool | None, cols: slice | None
) -> int | None:
    """The column of a table (CSV) that holds exactly the zoo's example ids, each once, and
    is not among the selected output columns ``cols``; None when there is none (or the file
    is not a table). A note says which column was used."""
    if _suffix(path) not in TABLE_SUFFIXES:
        return None
    table = _read_table(path, header)
    n_rows, n_cols = table.cells.shape
    if n_rows != len(zoo_ids):
        return None
    selected = set(range(n_cols)[cols]) if cols is not None else set()
    wanted = np.sort(np.asarray(zoo_ids).astype(str))
    for col in range(n_cols):
        if col in selected:
            continue
        if np.array_equal(np.sort(np.char.strip(table.cells[:, col])), wanted):
            from zoolens.progress import info

            shown = repr(table.names[col]) if table.names else str(col)
            info(
                f"{path}: column {shown} holds the zoo's example ids: rows joined by it "
                "(--id-column)"
            )
            return col
    return None


def match_ids(ids: np.ndarray, pattern: str, path: Path) -> np.ndarray:
    r"""``--id-pattern``: each id replaced by the first group of ``pattern``'s first match in
    it (``re.search``), e.g. ``r"^s\d+_t\d+_(.+)$"`` keeps the image name of
    ``s01_t17_img042.png``; ZoolensError naming an id it does not match."""
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise ZoolensError(f"--id-pattern {pattern!r}: not a regular expression ({exc})") from None
    if regex.groups < 1:
        raise ZoolensError(
            f"--id-pattern {pattern!r}: needs a group around the id, e.g. '^s\\d+_(.+)$'"
        )
    out = []
    for value in np.asarray(ids).astype(str).tolist():
        found = regex.search(value)
        if found is None or found.group(1) is None:
            raise ZoolensError(f"{path}: id {value!r} does not match the --id-pattern {pattern!r}")
        out.append(found.group(1))
    return np.asarray(out, dtype=str)


def strip_id_prefix(ids: np.ndarray, prefix: str, path: Path) -> np.ndarray:
    """The ids with ``prefix`` removed; ZoolensError naming an id that lacks it."""
    ids = np.asarray(ids).astype(str)
    has = np.char.startswith(ids, prefix)
    if not has.all():
        raise ZoolensError(
            f"{path}: id {str(ids[~has][0])!r} does not start with the --id-prefix {prefix!r}"
        )
    return np.asarray([i[len(prefix) :] for i in ids.tolist()], dtype=str)


def join_ids(zoo_ids: np.ndarray | None, file_ids: np.ndarray, path: Path) -> np.ndarray:
    """Row order that puts the file's rows in the zoo's example order (by id):
    ``file_rows[order]`` is in zoo order. Ids compare as strings; integer file ids compare
    as integers with zoo ids that are all decimal integers ("00017" matches 17), see the
    module docstring."""
    if zoo_ids is None:
        raise ZoolensError(
            f"{path}: --id-column given but the zoo has no example ids, so there is "
            "nothing to join by: create the zoo keyed by ids, with --labels-id-column C "
            "when the labels file has the ids (`zoolens import ZOO FILE --create --labels "
            "LABELS --labels-id-column C --id-column C`), or --id-column C alone to take them "
            "from this file"
        )
    file_ids = np.asarray(file_ids)
    shown_zoo_ids = np.asarray(zoo_ids).astype(str)
    if file_ids.dtype.kind in "iu":
        zoo_ids = _zoo_ids_as_integers(shown_zoo_ids, path)
    file_ids = file_ids.astype(str)
    uniq, counts = np.unique(file_ids, return_counts=True)
    if (counts > 1).any():
        raise ZoolensError(
            f"{path}: example id {str(uniq[np.argmax(counts > 1)])!r} appears "
            f"{int(counts.max())} times in the id column"
        )
    zoo_ids = np.asarray(zoo_ids).astype(str)
    # file_ids are unique: look each zoo id up by bisection in the sorted file ids
    sorter = np.argsort(file_ids, kind="stable")
    hit = np.searchsorted(file_ids, zoo_ids, sorter=sorter)
    found = hit < len(file_ids)
    found[found] = file_ids[sorter[hit[found]]] == zoo_ids[found]
    if not found.all():
        missing = shown_zoo_ids[~found].tolist()
        unmatched = np.setdiff1d(file_ids, zoo_ids)  # a suffix or padding mismatch shows here
        raise ZoolensError(
            f"{path}: {len(missing)} of the zoo's {len(zoo_ids)} example ids "
            f"are missing from the file (zoo ids: {_few(missing)}; "
            f"unmatched ids in the file: {_few(unmatched.tolist())})"
        )
    extra = np.setdiff1d(file_ids, zoo_ids).tolist()  # sorted
    if extra:
        raise ZoolensError(
            f"{path}: {len(extra)} ids in the file are not in the zoo (first: "
            f"{_few(extra)}; zoo ids look like {_few(shown_zoo_ids.tolist())})"
        )
    return sorter[hit].astype(np.int64)


def _few(values: list[Any], k: int = 3) -> str:
    """The first ``k`` values, quoted, for a message."""
    return ", ".join(map(repr, values[:k])) + (", ..." if len(values) > k else "") or "none"


def _zoo_ids_as_integers(zoo_ids: np.ndarray, path: Path) -> np.ndarray:
    """Zoo ids (str) in canonical integer form ("00017" -> "17") for integer file ids."""
    is_int = np.asarray([_DECIMAL.fullmatch(x) is not None for x in zoo_ids.tolist()], bool)
    if not is_int.all():
        raise ZoolensError(
            f"{path}: the file's ids are integers but the zoo's example ids are "
            f"not (e.g. {str(zoo_ids[~is_int][0])!r}); save the ids as strings"
        )
    canon = np.asarray([str(int(x)) for x in zoo_ids.tolist()])
    uniq, counts = np.unique(canon, return_counts=True)
    if (counts > 1).any():
        same = zoo_ids[canon == uniq[np.argmax(counts > 1)]][:2].tolist()
        raise ZoolensError(
            f"{path}: the zoo's example ids {same[0]!r} and {same[1]!r} are the "
            "same integer, so integer ids are ambiguous; save the ids as strings"
        )
    return canon


def check_labels(zoo_labels: np.ndarray, file_labels: np.ndarray, path: Path, column: Any) -> None:
    """The file's label column must agree with the zoo's labels on every row."""
    if zoo_labels.ndim != 1:
        raise ZoolensError(f"{path}: --label-column cannot be checked against a multi-label zoo")
    if len(file_labels) != len(zoo_labels):
        raise ZoolensError(
            f"{path}: {len(file_labels)} rows, the zoo has {len(zoo_labels)} examples"
        )
    bad = np.flatnonzero(file_labels != zoo_labels)
    if len(bad):
        raise ZoolensError(
            f"{path}: the labels in column {column} disagree with the zoo's on {len(bad)} of "
            f"{len(zoo_labels)} rows (first: row {bad[0]}, file {file_labels[bad[0]]:g} vs zoo "
            f"{zoo_labels[bad[0]]}): wrong row order or label offset?"
        )


# ---------------------------------------------------------------------------------------------
# arrays from binary files


def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if not path.exists():
        raise ZoolensError(f"{path}: no such file")
    if path.is_dir():
        raise ZoolensError(f"{path}: is a folder, not a file")
    if suffix not in SUPPORTED_SUFFIXES:
        raise ZoolensError(
            f"{path}: unsupported file type {suffix or '(none)'}; supported: "
            f"{' '.join(SUPPORTED_SUFFIXES)}"
        )
    if path.stat().st_size == 0:
        raise ZoolensError(f"{path}: file is empty")
    return suffix


def _read_arrays(path: Path, lists: list[str] | tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """name -> array for npy (name "array"), npz, safetensors and torch files. In a torch
    dict, the entries named in ``lists`` may also be lists of str or of int (ids, labels)."""
    suffix = _suffix(path)
    try:
        if suffix == ".npy":
            return {"array": np.load(path, allow_pickle=False)}
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as data:
                return {k: data[k] for k in data.files}
        if suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(path), framework="numpy") as fh:
                return {k: fh.get_tensor(k) for k in fh.keys()}
        if suffix in (".pt", ".pth"):
            return _read_torch(path, lists)
    except ZoolensError:
        raise
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise ZoolensError(
                f"{path}: holds Python objects (pickle), which zoolens does not "
                "load; save plain numeric arrays"
            ) from None
        raise ZoolensError(f"{path}: unreadable {suffix} file ({one_line(exc)})") from None
    except Exception as exc:
        raise ZoolensError(f"{path}: unreadable {suffix} file ({one_line(exc)})") from None
    raise ZoolensError(f"{path}: not an array file")


def _read_torch(path: Path, lists: list[str] | tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    torch = require_torch(f"{path}: reading a torch file")

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ZoolensError(
            f"{path}: cannot be loaded with torch.load(weights_only=True) ({one_line(exc)})"
        ) from None

    def to_np(value: Any) -> np.ndarray | None:
        if isinstance(value, torch.Tensor):
            t = value.detach().cpu()
            if t.dtype == torch.bfloat16:
                t = t.float()
            return t.numpy()
        return None

    if isinstance(obj, torch.Tensor):
        return {"tensor": to_np(obj)}  # type: ignore[dict-item]
    if isinstance(obj, dict):
        out = {str(k): a for k, v in obj.items() if (a := to_np(v)) is not None}
        for k, v in obj.items():
            if (
                str(k) in lists
                and isinstance(v, (list, tuple))
                and v
                and (
                    all(isinstance(x, str) for x in v)
                    or all(isinstance(x, int) and not isinstance(x, bool) for x in v)
                )
            ):
                out[str(k)] = np.asarray(v)
        if out:
            return out
    if isinstance(obj, (list, tuple)) and obj and all(isinstance(v, torch.Tensor) for v in obj):
        return {str(i): cast(np.ndarray, to_np(v)) for i, v in enumerate(obj)}  # all tensors
    raise ZoolensError(f"{path}: expected a tensor or a dict of tensors, got {type(obj).__name__}")


def _pick_key(arrays: dict[str, np.ndarray], key: str, path: Path) -> np.ndarray:
    if key not in arrays:
        raise ZoolensError(
            f"{path}: no array named {key!r}; available: "
            f"{', '.join(f'{k} {tuple(v.shape)}' for k, v in arrays.items())}"
        )
    return np.asarray(arrays[key])


def _only(arrays: dict[str, np.ndarray], path: Path, option: str) -> np.ndarray:
    if len(arrays) != 1:
        raise ZoolensError(
            f"{path}: several arrays ({', '.join(arrays)}); choose one with {option}"
        )
    return np.asarray(next(iter(arrays.values())))


def _guess_output_array(arrays: dict[str, np.ndarray], num_classes: int, path: Path) -> np.ndarray:
    fits = [k for k, v in arrays.items() if v.ndim == 2 and v.shape[1] == num_classes]
    if len(fits) == 1:
        return np.asarray(arrays[fits[0]])
    listing = ", ".join(f"{k} {tuple(v.shape)}" for k, v in arrays.items())
    raise ZoolensError(f"{path}: several arrays ({listing}); choose one with --key")


def _pick_topk_keys(
    arrays: dict[str, np.ndarray], key: str | None, path: Path
) -> tuple[np.ndarray, np.ndarray]:
    if key:
        parts = [p.strip() for p in key.split(",")]
        if len(parts) != 2:
            raise ZoolensError(f"{path}: for top-k give --key INDICES,VALUES")
        return _pick_key(arrays, parts[0], path), _pick_key(arrays, parts[1], path)
    idx = [k for k in arrays if _INDEX_NAME.search(k)]
    val = [k for k in arrays if _VALUE_NAME.search(k) and k not in idx]
    if len(idx) != 1 or len(val) != 1:
        raise ZoolensError(
            f"{path}: cannot tell the top-k class ids from the probabilities "
            f"among {', '.join(arrays)}; give --key INDICES,VALUES"
        )
    return np.asarray(arrays[idx[0]]), np.asarray(arrays[val[0]])


def _cut(arr: np.ndarray, cols: slice | None, path: Path) -> np.ndarray:
    arr = np.asarray(arr)
    if cols is None:
        return arr
    if arr.ndim != 2:
        raise ZoolensError(f"{path}: --columns needs a 2-D array, got shape {arr.shape}")
    out = arr[:, cols]
    if out.shape[1] == 0:
        raise ZoolensError(
            f"{path}: --columns {cols.start}:{cols.stop} selects no columns "
            f"(the file has {arr.shape[1]})"
        )
    return out


# ---------------------------------------------------------------------------------------------
# JSON model files


def _read_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except UnicodeDecodeError:
        raise ZoolensError(f"{path}: not a UTF-8 text (JSON) file") from None
    except json.JSONDecodeError as exc:
        raise ZoolensError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except RecursionError:
        raise ZoolensError(f"{path}: JSON nested too deeply") from None
    except ValueError as exc:  # an integer of more than 4300 digits
        raise ZoolensError(f"{path}: not valid JSON ({str(exc)[:120]})") from None


def _json_entries(path: Path) -> tuple[list[Any], np.ndarray | None]:
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


def _load_json_outputs(
    path: Path,
    *,
    num_classes: int,
    kind: str | None,
    cols: slice | None,
    topk_layout: str,
    classes: ClassIndex | None,
    abstain: Sequence[str],
) -> Loaded:
    """A JSON model file: a list of class ids (decisions) or of score rows, or an object
    from example id to either (the ids are then joined to the zoo's)."""
    entries, ids = _json_entries(path)
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
        loaded = _resolve_kind(
            path, _cut(arr, cols, path), kind, num_classes, topk_layout, names=None
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
        return _class_ids(arr, path, "decisions")
    for i, value in enumerate(entries):  # the first bad entry, for the message
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ZoolensError(f"{path}: entry {i}: {json.dumps(value)[:40]} is not a class id")
    raise ZoolensError(f"{path}: decisions must be integer class ids")


# ---------------------------------------------------------------------------------------------
# tables (CSV)


@dataclass
class _Table:
    path: Path
    cells: np.ndarray  # (rows, cols) str
    names: list[str] | None  # header
    first_line: int  # 1-based line number of the first data row

    def column_index(self, ref: str | int, what: str) -> int:
        n_cols = self.cells.shape[1]
        if isinstance(ref, str) and self.names is not None and ref in self.names:
            return self.names.index(ref)
        try:
            col = int(ref)
        except (TypeError, ValueError):
            known = f"; header: {', '.join(self.names[:30])}" if self.names else ""
            raise ZoolensError(
                f"{self.path}: {what} {ref!r} is neither a 0-based column "
                f"number nor a header name{known}"
            ) from None
        if not 0 <= col < n_cols:
            raise ZoolensError(
                f"{self.path}: {what} {col} out of range (the file has {n_cols} "
                "columns, numbered from 0)"
            )
        return col

    def numeric(self, cols: list[int], what: str) -> np.ndarray:
        block = self.cells[:, cols]
        try:
            return block.astype(np.float64)
        except ValueError:
            pass
        for i, row in enumerate(block):  # find the first bad cell for the message
            for j, cell in enumerate(row):
                try:
                    float(cell)
                except ValueError:
                    line, col = self.first_line + i, cols[j]
                    if cell.strip() == "":
                        raise ZoolensError(
                            f"{self.path}: line {line}, column {col}: empty value in the {what}"
                        ) from None
                    hint = ""
                    if col == 0 and what == "model outputs":
                        name = f" (or {self.names[0]!r})" if self.names else ""
                        hint = (
                            f"; if column 0 holds example ids or file names, join the rows "
                            f"by them with --id-column 0{name}"
                        )
                    raise ZoolensError(
                        f"{self.path}: line {line}, column {col}: {str(cell)!r} is "
                        f"not a number ({what}){hint}"
                    ) from None
        raise ZoolensError(f"{self.path}: the {what} are not numbers")


# Tables are parsed as text cells (about 60 bytes each in memory): beyond these limits an
# array file (.npy, .npz, .safetensors) is the format that fits. Documented in README.md.
MAX_TABLE_COLUMNS = 100_000
MAX_TABLE_CELLS = 100_000_000
MAX_TABLE_TEXT_BYTES = 2 << 30  # the parsed cells as one fixed-width text array
_SNIFF_BLOCK = 1 << 24


def sniff_table_size(path: Path, sep: str) -> tuple[int, int]:
    """(rows, widest row's fields) of a text table, counted in one pass over its bytes in
    16 MiB blocks (separators inside quotes count too: an upper bound), before any parsing;
    ZoolensError naming the line when a row is wider than ``MAX_TABLE_COLUMNS`` or the table
    holds more than ``MAX_TABLE_CELLS`` cells."""
    sep_byte, newline = ord(sep), ord("\n")
    rows, widest, widest_line = 0, 0, 0
    carry, last = 0, newline  # separators of the unfinished line; the last byte read
    with open(path, "rb") as fh:
        while widest <= MAX_TABLE_COLUMNS and (block := fh.read(_SNIFF_BLOCK)):
            arr = np.frombuffer(block, dtype=np.uint8)
            last = int(arr[-1])
            ends = np.flatnonzero(arr == newline)
            seps = np.cumsum(arr == sep_byte, dtype=np.int64)
            if not len(ends):
                carry += int(seps[-1])
                continue
            per_line = np.diff(np.concatenate(([0], seps[ends])))  # separators per line
            per_line[0] += carry
            carry = int(seps[-1] - seps[ends[-1]])
            k = int(np.argmax(per_line))
            if per_line[k] + 1 > widest:
                widest, widest_line = int(per_line[k]) + 1, rows + k + 1
            rows += len(ends)
    if last != newline:  # a last line without a newline
        rows += 1
        if carry + 1 > widest:
            widest, widest_line = carry + 1, rows
    if widest > MAX_TABLE_COLUMNS:
        raise ZoolensError(
            f"{path}: line {widest_line} has {widest:,} fields; tables of at "
            f"most {MAX_TABLE_COLUMNS:,} columns are read (save wide outputs "
            "as .npy, .npz or .safetensors)"
        )
    if rows * widest > MAX_TABLE_CELLS:
        raise ZoolensError(
            f"{path}: {rows:,} rows of up to {widest:,} fields is more than the "
            f"{MAX_TABLE_CELLS:,} cells a text table may hold (save the outputs "
            "as .npy, .npz or .safetensors)"
        )
    return rows, widest


def _read_table(path: Path, header: bool | None) -> _Table:
    import pandas as pd

    sep = "\t" if path.suffix.lower() == ".tsv" else ","
    sniff_table_size(path, sep)
    try:
        df = pd.read_csv(
            path,
            header=None,
            dtype=str,
            sep=sep,
            na_filter=False,
            keep_default_na=False,
            skipinitialspace=True,
            comment=None,
        )
    except pd.errors.EmptyDataError:
        raise ZoolensError(f"{path}: file is empty") from None
    except pd.errors.ParserError as exc:
        msg = one_line(exc).replace("Error tokenizing data. C error: ", "")
        raise ZoolensError(
            f"{path}: ragged rows ({msg}); every row needs the same number of fields"
        ) from None
    except UnicodeDecodeError:
        raise ZoolensError(f"{path}: not a text (CSV) file") from None
    # cells are Python strings here: measure them before they become a fixed-width array
    # (its width is the longest cell, for every cell)
    widest = 0
    for col, values in enumerate(df.columns):
        lengths = df[values].str.len().to_numpy()
        if len(lengths) and lengths.max() > MAX_TEXT_CHARS:
            row = int(lengths.argmax())
            raise ZoolensError(
                f"{path}: line {row + 1}, column {col + 1}: a cell of {int(lengths.max()):,} "
                f"characters; a table cell (an id, a label, a class name) is at most "
                f"{MAX_TEXT_CHARS:,}"
            )
        widest = max(widest, int(lengths.max()) if len(lengths) else 0)
    if df.size * widest * 4 > MAX_TABLE_TEXT_BYTES:
        raise ZoolensError(
            f"{path}: {df.size:,} cells with one of {widest:,} characters would take "
            f"{df.size * widest * 4 / 2**30:.1f} GiB as text; shorten the long cells or save "
            f"the outputs as .npy, .npz or .safetensors"
        )
    cells = df.to_numpy(dtype=str)
    if cells.size and (cells == "").any():
        _check_ragged(path, sep, cells.shape[1])
    if header is None:
        header = bool(cells.shape[0]) and not any(is_number(c) for c in cells[0] if c != "")
    names = [c.strip() for c in cells[0]] if header else None
    data = cells[1:] if header else cells
    if data.shape[0] == 0:
        raise ZoolensError(f"{path}: no data rows")
    return _Table(path, data, names, first_line=2 if header else 1)


def _check_ragged(path: Path, sep: str, n_fields: int) -> None:
    """pandas pads short rows with empty fields; find them with the csv module."""
    with open(path, newline="", encoding="utf-8", errors="replace") as fh:
        for line, row in enumerate(csv.reader(fh, delimiter=sep), start=1):
            if row and len(row) != n_fields:
                raise ZoolensError(
                    f"{path}: ragged rows (line {line} has {len(row)} fields, "
                    f"expected {n_fields}); every row needs the same number of "
                    "fields"
                )


def _load_table_outputs(
    path: Path,
    *,
    num_classes: int,
    kind: str | None,
    cols: slice | None,
    label_column: Any,
    label_offset: int,
    id_column: Any,
    header: bool | None,
    topk_layout: str,
    classes: ClassIndex | None,
    abstain: Sequence[str],
) -> Loaded:
    table = _read_table(path, header)
    n_cols = table.cells.shape[1]
    special = set()
    ids = labels = None
    if id_column is not None:
        id_col = table.column_index(id_column, "--id-column")
        special.add(id_col)
        ids = np.char.strip(table.cells[:, id_col])
    if label_column is not None:
        lab_col = table.column_index(label_column, "--label-column")
        special.add(lab_col)
        if is_text(table.cells[:, lab_col]):  # class names
            labels = text_to_class_ids(
                table.cells[:, lab_col], str(path), "labels", classes, offset=label_offset
            ).astype(np.float64)
        else:
            raw = table.numeric([lab_col], "labels")[:, 0]
            if (raw != np.round(raw)).any():
                raise ZoolensError(f"{path}: the label column {label_column} holds non-integers")
            labels = raw - int(label_offset)
    if cols is not None:
        selected = list(range(n_cols))[cols]
        if not selected:
            raise ZoolensError(
                f"{path}: --columns {cols.start}:{cols.stop} selects no columns "
                f"(the file has {n_cols}, numbered from 0)"
            )
        overlap = special & set(selected)
        if overlap:
            raise ZoolensError(
                f"{path}: --columns overlaps the id/label column {sorted(overlap)[0]}"
            )
    else:
        selected = [c for c in range(n_cols) if c not in special]
    if not selected:
        raise ZoolensError(f"{path}: no output columns left")
    names = [table.names[c] for c in selected] if table.names else None
    if (
        len(selected) == 1
        and kind in (None, "decisions")
        and (
            kind == "decisions"
            or is_text(table.cells[:, selected[0]])
            or np.isin(np.char.strip(table.cells[:, selected[0]]), abstain).any()
        )
    ):
        # one column of class ids, class names or abstentions
        decisions = text_to_class_ids(
            table.cells[:, selected[0]], str(path), "decisions", classes, abstain=abstain
        )
        return Loaded(path, "decisions", {"decisions": decisions}, ids=ids, labels=labels)
    arr = table.numeric(selected, "model outputs")
    loaded = _resolve_kind(path, arr, kind, num_classes, topk_layout, names=names)
    loaded.ids, loaded.labels = ids, labels
    return loaded


# ---------------------------------------------------------------------------------------------
# kinds


def _resolve_kind(
    path: Path,
    arr: np.ndarray,
    kind: str | None,
    num_classes: int,
    topk_layout: str,
    names: list[str] | None,
) -> Loaded:
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
            i for i, n in enumerate(names) if _INDEX_NAME.search(n) and not _VALUE_NAME.search(n)
        ]
        val_cols = [i for i, n in enumerate(names) if _VALUE_NAME.search(n) and i not in idx_cols]
        if len(idx_cols) == k and len(val_cols) == k:
            return arr[:, idx_cols], arr[:, val_cols]
    if layout == "pairs":
        return arr[:, 0::2], arr[:, 1::2]
    return arr[:, :k], arr[:, k:]
