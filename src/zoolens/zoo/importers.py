"""Importers: model outputs in the formats people actually have -> a zoo model.

The public functions here (``load_outputs``, ``import_file``, ``read_labels``, ``read_ids``,
``labels_for_create`` ...) ask the reader of a file's suffix (``zoo.readers``: one reader per
format behind a registry) and join the rows to the zoo by id (``zoo.idjoin``); creating a zoo
with its first model, all or nothing, is ``zoo.create.import_model``.

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

import re
import warnings
import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from zoolens.errors import ZoolensError
from zoolens.progress import info
from zoolens.zoo.classes import (
    ABSTAIN_TEXT,
    MAX_CLASS_NAME_CHARS,
    ClassIndex,
    check_confusable,
    check_text,
    is_text,
    normal_name,
    text_to_class_ids,
)
from zoolens.zoo.classmap import ClassMap
from zoolens.zoo.idjoin import check_labels, join_ids, match_ids, strip_id_prefix
from zoolens.zoo.outputs import ZooWarning, detect_kind
from zoolens.zoo.readers import SUPPORTED_SUFFIXES, Loaded, Request, reader_for
from zoolens.zoo.readers.base import class_ids, only, pick_key
from zoolens.zoo.readers.kinds import IMPORT_KINDS, TOPK_LAYOUTS
from zoolens.zoo.readers.table import (
    MAX_TABLE_CELLS,
    MAX_TABLE_COLUMNS,
    TABLE_SUFFIXES,
    sniff_table_size,
)

__all__ = [
    "IMPORT_KINDS",
    "JSON_SUFFIXES",
    "MAX_TABLE_CELLS",
    "MAX_TABLE_COLUMNS",
    "SUPPORTED_SUFFIXES",
    "TABLE_SUFFIXES",
    "TOPK_LAYOUTS",
    "Loaded",
    "check_labels",
    "column_ref",
    "detect_kind",
    "find_id_column",
    "has_column",
    "import_file",
    "join_ids",
    "label_names",
    "label_values",
    "labels_for_create",
    "load_outputs",
    "match_ids",
    "parse_columns",
    "read_ids",
    "read_labels",
    "sniff_table_size",
    "strip_id_prefix",
    "top1",
]

JSON_SUFFIXES = (".json",)

# ---------------------------------------------------------------------------------------------
# public API


def column_ref(value: str | int | None) -> str | int | None:
    """A column named on the command line: a 0-based index when it reads as an integer,
    else a header name (or an array key)."""
    if value is None or isinstance(value, int):
        return value
    return int(value) if value.strip().lstrip("-").isdigit() else value


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
        arr = class_ids(arr, path, "labels") - int(offset)
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
    return reader_for(path).label_values(path, key=key, column=column, header=header)


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
    else:  # ids the file carries without a column (a JSON object's keys)
        file_ids = reader_for(model_file).own_ids(model_file)
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
    return reader_for(path).has_column(path, column, header)


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
    reader = reader_for(path)
    request = Request(  # in the order of Request's fields
        num_classes, kind, key, cols, label_column, label_offset, id_column, header
    )
    request = dataclasses.replace(
        request, topk_layout=topk_layout, classes=classes, abstain=no_answer
    )
    return reader.outputs(path, request)


def read_ids(path: str | Path, id_column: str | int, *, header: bool | None = None) -> np.ndarray:
    """The example ids of a file, in its row order: a CSV column (0-based index or header
    name, stripped strings) or the 1-D array named ``id_column`` in an npz / safetensors /
    pt file (str or int64; see the module docstring). Used to create a zoo with ids."""
    path = Path(path)
    return reader_for(path).ids(path, id_column, header)


def import_file(
    zoo: Any,
    path: str | Path,
    name: str,
    *,
    # how the file is read
    kind: str | None = None,
    key: str | None = None,
    columns: str | slice | None = None,
    header: bool | None = None,
    topk_layout: str = "blocks",
    abstain: Sequence[str] = (),
    class_map: ClassMap | None = None,
    # how its rows are joined to the zoo's examples, and checked against its labels
    id_column: str | int | None = None,
    id_prefix: str | None = None,
    id_pattern: str | None = None,
    label_column: str | int | None = None,
    label_offset: int = 0,
    # how the model is stored
    card: Any = None,
    replace: bool = False,
    dtype: str = "float32",
    embeddings: str | Path | None = None,
    embeddings_key: str | None = None,
    strict: bool = False,
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
                f"{path}: class map: {outside} of {loaded.rows} decisions fall outside "
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
        emb_path = Path(embeddings)
        emb_arrays = reader_for(emb_path).arrays(emb_path)
        emb = (
            pick_key(emb_arrays, embeddings_key, emb_path)
            if embeddings_key
            else only(emb_arrays, emb_path, "--embeddings-key")
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
    return reader_for(path).id_column_holding(path, zoo_ids, header, cols)
