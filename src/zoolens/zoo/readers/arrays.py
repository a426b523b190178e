"""Array files: ``.npy`` (one array), ``.npz`` and ``.safetensors`` (named arrays), ``.pt`` /
``.pth`` (a tensor or a dict of tensors, ``torch.load(weights_only=True)``). One reader per
format; they share how the outputs, ids and labels are picked from the named arrays
(``ArrayReader``), and differ only in how the arrays are read (``load``)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np

from zoolens.errors import ZoolensError, one_line, require_torch
from zoolens.zoo.readers.base import (
    Loaded,
    Reader,
    Request,
    cut,
    id_array,
    label_array,
    pick_key,
)
from zoolens.zoo.readers.kinds import INDEX_NAME, VALUE_NAME, resolve_kind


class ArrayReader(Reader):
    """A file of named arrays; subclasses say how to read them (``load``)."""

    def load(self, path: Path, lists: Sequence[str]) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def arrays(self, path: Path, lists: Sequence[str] = ()) -> dict[str, np.ndarray]:
        """name -> array. In a torch dict, the entries named in ``lists`` may also be lists
        of str or of int (ids, labels)."""
        suffix = path.suffix.lower()
        try:
            return self.load(path, lists)
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

    def outputs(self, path: Path, request: Request) -> Loaded:
        self.refuse_side_columns(path, request)
        id_column, label_column = request.id_column, request.label_column
        side_keys = [str(k) for k in (id_column, label_column) if k is not None]
        arrays = self.arrays(path, lists=side_keys)
        ids = labels = None
        if id_column is not None:
            ids = id_array(pick_key(arrays, str(id_column), path), str(id_column), path)
        if label_column is not None:
            labels = label_array(
                pick_key(arrays, str(label_column), path), str(label_column), path
            ) - int(request.label_offset)
        for k in side_keys:  # never candidates for the outputs
            arrays.pop(k, None)
        if not arrays:
            raise ZoolensError(
                f"{path}: no outputs array besides {', '.join(map(repr, side_keys))}"
            )
        loaded = _outputs_array(path, arrays, request)
        n = loaded.rows
        for what, side, column in (("id", ids, id_column), ("label", labels, label_column)):
            if side is not None and len(side) != n:
                raise ZoolensError(
                    f"{path}: the {what} array {str(column)!r} has {len(side)} entries, "
                    f"the outputs have {n} rows"
                )
        loaded.ids, loaded.labels = ids, labels
        return loaded

    def label_values(
        self, path: Path, *, key: str | None, column: str | int | None, header: bool | None
    ) -> np.ndarray:
        arrays = self.arrays(path, lists=[key] if key is not None else ())
        if key is not None:
            arr = pick_key(arrays, key, path)
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
                    f"{path}: several arrays ({', '.join(arrays)}); choose the labels with "
                    "--labels-key"
                )
            arr = arrays[choice[0]]
        arr = np.asarray(arr)
        if arr.dtype.kind == "S":
            arr = np.char.decode(arr, "utf-8", errors="replace")
        return arr

    def ids(self, path: Path, id_column: str | int, header: bool | None) -> np.ndarray:
        key = str(id_column)
        return id_array(pick_key(self.arrays(path, lists=[key]), key, path), key, path)

    def has_column(self, path: Path, column: str | int, header: bool | None) -> bool:
        return str(column) in self.arrays(path, lists=[str(column)])


class NpyReader(ArrayReader):
    """``.npy``: one array (``allow_pickle=False``), so no id or label array beside it."""

    def load(self, path: Path, lists: Sequence[str]) -> dict[str, np.ndarray]:
        return {"array": np.load(path, allow_pickle=False)}

    no_side_columns = (
        "a .npy file holds a single array, so it cannot carry "
        "--id-column/--label-column; save outputs and ids together, e.g. "
        "np.savez('m.npz', logits=..., ids=...), and pass --id-column ids"
    )

    def ids(self, path: Path, id_column: str | int, header: bool | None) -> np.ndarray:
        raise ZoolensError(
            f"{path}: a .npy file holds a single array, so it cannot carry "
            "--id-column; save outputs and ids together in an .npz"
        )

    def has_column(self, path: Path, column: str | int, header: bool | None) -> bool:
        return False


class NpzReader(ArrayReader):
    """``.npz``: several arrays (``allow_pickle=False``)."""

    def load(self, path: Path, lists: Sequence[str]) -> dict[str, np.ndarray]:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}


class SafetensorsReader(ArrayReader):
    """``.safetensors``: several tensors, read as numpy arrays."""

    def load(self, path: Path, lists: Sequence[str]) -> dict[str, np.ndarray]:
        from safetensors import safe_open

        with safe_open(str(path), framework="numpy") as fh:
            return {k: fh.get_tensor(k) for k in fh.keys()}


class TorchReader(ArrayReader):
    """``.pt`` / ``.pth``: a tensor, a list of tensors or a dict of tensors, loaded with
    ``torch.load(weights_only=True)``; bfloat16 becomes float32."""

    def load(self, path: Path, lists: Sequence[str]) -> dict[str, np.ndarray]:
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
        raise ZoolensError(
            f"{path}: expected a tensor or a dict of tensors, got {type(obj).__name__}"
        )


def _outputs_array(path: Path, arrays: dict[str, np.ndarray], request: Request) -> Loaded:
    """The outputs among a file's arrays (``key``, the only one, or the one with a row per
    class), read as ``request.kind``; top-k from two arrays."""
    key, cols = request.key, request.cols
    if request.kind == "topk" and (
        (key is not None and "," in key) or (key is None and len(arrays) > 1)
    ):
        idx, val = _pick_topk_keys(arrays, key, path)
        return Loaded(
            path,
            "topk",
            {"topk_indices": cut(idx, cols, path), "topk_values": cut(val, cols, path)},
        )
    if key is not None:
        arr = pick_key(arrays, key, path)
    elif len(arrays) == 1:
        arr = next(iter(arrays.values()))
    else:
        arr = _guess_output_array(arrays, request.num_classes, path)
    arr = cut(arr, cols, path)
    if arr.dtype.kind not in "fiub":
        raise ZoolensError(f"{path}: expected numbers, got an array of {arr.dtype}")
    return resolve_kind(path, arr, request.kind, request.num_classes, request.topk_layout, None)


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
        return pick_key(arrays, parts[0], path), pick_key(arrays, parts[1], path)
    idx = [k for k in arrays if INDEX_NAME.search(k)]
    val = [k for k in arrays if VALUE_NAME.search(k) and k not in idx]
    if len(idx) != 1 or len(val) != 1:
        raise ZoolensError(
            f"{path}: cannot tell the top-k class ids from the probabilities "
            f"among {', '.join(arrays)}; give --key INDICES,VALUES"
        )
    return np.asarray(arrays[idx[0]]), np.asarray(arrays[val[0]])
