"""Joining a file's rows to the zoo's examples by id: ``join_ids`` (the row order), the
``--id-prefix`` / ``--id-pattern`` rewrites of a file's ids, and the check of a file's
labels against the zoo's. Integer ids against the zoo's (string) ids: see
``zoo.importers``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from zoolens.errors import ZoolensError

_DECIMAL = re.compile(r"\s*[+-]?[0-9]+\s*")


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
