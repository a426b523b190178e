"""What every file reader shares: the ``Loaded`` result, the ``Request`` (the options of
one import), the ``Reader`` base class (what a format may be asked), and the checks of the
side arrays (ids, labels) and of the outputs array picked from a file.

A reader answers for one file format (``zoo.readers`` maps suffixes to readers); the
public functions of ``zoo.importers`` ask the reader of a file's suffix.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from zoolens.errors import ZoolensError
from zoolens.zoo.classes import ClassIndex


@dataclass
class Loaded:
    """What an importer read from one file, in the file's row order (before any id join)."""

    path: Path
    kind: str
    arrays: dict[str, np.ndarray]  # add() keyword -> array
    ids: np.ndarray | None = None  # (n,) str or int64, from id_column
    labels: np.ndarray | None = None  # (n,) float, from label_column (offset applied)
    notes: list[str] = field(default_factory=list)

    @property
    def rows(self) -> int:
        """The number of rows (examples) read."""
        return int(np.asarray(next(iter(self.arrays.values()))).shape[0])


@dataclass(frozen=True)
class Request:
    """The options of reading one model file's outputs (``importers.load_outputs``)."""

    num_classes: int
    kind: str | None = None
    key: str | None = None
    cols: slice | None = None
    label_column: str | int | None = None
    label_offset: int = 0
    id_column: str | int | None = None
    header: bool | None = None
    topk_layout: str = "blocks"
    classes: ClassIndex | None = None
    abstain: Sequence[str] = ()


class Reader:
    """One file format. Each method answers one question ``zoo.importers`` asks of a file;
    a format that cannot answer it (a .npy file has no id column) raises a one-line
    ZoolensError saying why, or gives the documented neutral answer."""

    # why a format cannot carry --id-column / --label-column (None: it can)
    no_side_columns: str | None = None

    def outputs(self, path: Path, request: Request) -> Loaded:
        """The model outputs of the file (and its ids and labels when asked for)."""
        raise ZoolensError(f"{path}: not a model output file")

    def refuse_side_columns(self, path: Path, request: Request) -> None:
        """A one-line ZoolensError when ``request`` names an id or label column and the
        format cannot carry one (``no_side_columns`` says why and what to do)."""
        if self.no_side_columns and (
            request.id_column is not None or request.label_column is not None
        ):
            raise ZoolensError(f"{path}: {self.no_side_columns}")

    def label_values(
        self, path: Path, *, key: str | None, column: str | int | None, header: bool | None
    ) -> np.ndarray:
        """The raw label entries: text when any is not a number, else numbers."""
        raise ZoolensError(f"{path}: holds no labels")

    def ids(self, path: Path, id_column: str | int, header: bool | None) -> np.ndarray:
        """The example ids in ``id_column``, in the file's row order."""
        raise ZoolensError(f"{path}: holds no example ids")

    def own_ids(self, path: Path) -> np.ndarray | None:
        """The ids a file carries without an id column (a JSON object's keys), else None."""
        return None

    def has_column(self, path: Path, column: str | int, header: bool | None) -> bool:
        """Whether the file has a column (header name) or array (key) named ``column``."""
        return False

    def id_column_holding(
        self, path: Path, zoo_ids: np.ndarray, header: bool | None, cols: slice | None
    ) -> int | None:
        """The column holding exactly ``zoo_ids`` (tables only; see
        ``importers.find_id_column``)."""
        return None

    def arrays(self, path: Path, lists: Sequence[str] = ()) -> dict[str, np.ndarray]:
        """name -> array of an array file (embeddings, labels by key)."""
        raise ZoolensError(f"{path}: not an array file")


def class_ids(arr: np.ndarray, path: Path, what: str) -> np.ndarray:
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


def _one_per_row(arr: np.ndarray, what: str, why: str, path: Path) -> np.ndarray:
    """``arr`` as a 1-D array (a single column flattened); ZoolensError otherwise."""
    arr = np.asarray(arr)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ZoolensError(f"{path}: {what} must be 1-D ({why}), got shape {arr.shape}")
    return arr


def id_array(arr: np.ndarray, key: str, path: Path) -> np.ndarray:
    """A 1-D id array as str (unicode; bytes decoded as UTF-8) or int64."""
    arr = _one_per_row(arr, f"the id array {key!r}", "one id per row", path)
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


def label_array(arr: np.ndarray, key: str, path: Path) -> np.ndarray:
    """A 1-D label array as float64 holding integers (as the CSV label column)."""
    arr = _one_per_row(arr, f"the label array {key!r}", "one label per row", path)
    return class_ids(arr, path, f"the label array {key!r}").astype(np.float64)


def pick_key(arrays: dict[str, np.ndarray], key: str, path: Path) -> np.ndarray:
    """The array named ``key``; ZoolensError listing the names otherwise."""
    if key not in arrays:
        raise ZoolensError(
            f"{path}: no array named {key!r}; available: "
            f"{', '.join(f'{k} {tuple(v.shape)}' for k, v in arrays.items())}"
        )
    return np.asarray(arrays[key])


def only(arrays: dict[str, np.ndarray], path: Path, option: str) -> np.ndarray:
    """The only array of a file; ZoolensError naming ``option`` when there are several."""
    if len(arrays) != 1:
        raise ZoolensError(
            f"{path}: several arrays ({', '.join(arrays)}); choose one with {option}"
        )
    return np.asarray(next(iter(arrays.values())))


def cut(arr: np.ndarray, cols: slice | None, path: Path) -> np.ndarray:
    """``--columns``: the columns ``cols`` of a 2-D array (all without it)."""
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
