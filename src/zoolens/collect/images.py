"""Image folders (``root/<class name>/<file>``) as deterministic, labelled torch datasets.

Order: classes in class-list order (the given list, or the folder names sorted), then files
sorted by name inside each class folder; this order is the row order of the zoo. The example
id of an image is its path relative to ``root`` with ``/`` separators (``cat/0001.jpg``).

Checks, each a one-line ZoolensError: ``root`` missing or not a folder; no class folders; a
class folder absent from a given class list; a class in the list without a folder; a folder
without images. An image that cannot be decoded is not fatal here: ``__getitem__`` raises
:class:`UndecodableImage`, which the runner turns into a skipped example (listed in a warning
and in the model card's notes) or, with ``strict``, a ZoolensError naming the file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from zoolens.errors import ZoolensError

IMAGE_EXTENSIONS = (
    ".jpg",
    ".jpeg",
    ".png",
    ".bmp",
    ".gif",
    ".webp",
    ".tif",
    ".tiff",
    ".ppm",
    ".pgm",
)


MAX_IMAGE_PIXELS = 50_000_000
"""An image of more pixels (width x height, read from its header before decoding) is skipped
as undecodable: a 20,000 x 20,000 PNG of zeros is a few hundred KB on disk and 1.2 GB as
RGB (a decompression bomb). 50 megapixels is 150 MB as RGB."""


def decode_image(path: Path):
    """The decoded RGB PIL image of ``path``, or UndecodableImage: not a regular file (a
    FIFO is never opened), not an image, truncated, or larger than MAX_IMAGE_PIXELS."""
    import os
    import stat

    from PIL import Image, UnidentifiedImageError

    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise UndecodableImage(Path(path), "not a regular file")
        with Image.open(path) as img:
            width, height = img.size
            if width * height > MAX_IMAGE_PIXELS:
                raise UndecodableImage(
                    Path(path),
                    f"{width} x {height} pixels, more than the {MAX_IMAGE_PIXELS:,} "
                    f"zoolens decodes (a decompression bomb?)",
                )
            img.load()
            return img.convert("RGB")
    except (
        UnidentifiedImageError,
        Image.DecompressionBombError,
        OSError,
        SyntaxError,
        ValueError,
        MemoryError,
    ) as exc:
        raise UndecodableImage(Path(path), f"{type(exc).__name__}: {exc}") from None


def skipped_note(ids: Sequence[Any], limit: int = 20) -> str:
    """ "skipped N undecodable image(s): a, b, … and K more": the first ``limit`` ids (in
    the order given) and a count of the rest, so a message stays bounded."""
    listed = ", ".join(str(i) for i in ids[:limit])
    more = "" if len(ids) <= limit else f" and {len(ids) - limit} more"
    return f"skipped {len(ids)} undecodable image(s): {listed}{more}"


def transformed(image: Any, transform: Callable[[Any], Any] | None, path: Path) -> Any:
    """``transform(image)``; an image the transform refuses (``UndecodableImage`` from a
    guard that does not know the file) is named by ``path``."""
    if transform is None:
        return image
    try:
        return transform(image)
    except UndecodableImage as exc:
        raise UndecodableImage(path, exc.reason) from None


class UndecodableImage(Exception):
    """An image file that PIL cannot decode (truncated, corrupt, not an image)."""

    def __init__(self, path: Path, reason: str):
        super().__init__(f"{path}: cannot decode image ({reason})")
        self.path = path
        self.reason = reason


def _read_class_list(classes: Sequence[str] | str | Path) -> list[str]:
    if isinstance(classes, (str, Path)):
        path = Path(classes)
        if not path.is_file():
            raise ZoolensError(f"{path}: class list file not found")
        names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
        names = [n for n in names if n and not n.startswith("#")]
    else:
        names = [str(c) for c in classes]
    if not names:
        raise ZoolensError("the class list is empty")
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise ZoolensError(f"the class list names a class twice: {', '.join(dup[:5])}")
    return names


def position_index(example_ids: Iterable[Any]) -> dict[str, int]:
    """``id -> row number`` of a dataset's example ids (ids compared as strings)."""
    return {str(e): i for i, e in enumerate(example_ids)}


def lookup_positions(
    position_of: Mapping[str, int], example_ids: Sequence[Any], where: str
) -> np.ndarray:
    """(n,) int64 row numbers of ``example_ids`` in a dataset, given its :func:`position_index`;
    ZoolensError naming the first id (in the given order) that is not ``where`` (e.g. "the
    image folder DIR"). Shared by ImageFolder.positions and collect.runner.DataIndex."""
    try:
        return np.asarray([position_of[str(e)] for e in example_ids], dtype=np.int64)
    except KeyError as exc:
        raise ZoolensError(f"example id {exc.args[0]!r} is not in {where}") from None


class ImageFolder:
    """A labelled image folder; ``dataset[i]`` is ``transform(PIL RGB image)``.

    Attributes: ``root``, ``classes`` (list[str]), ``files`` (list of Paths in order),
    ``labels`` ((N,) int64), ``example_ids`` ((N,) str array of relative paths).
    """

    def __init__(
        self,
        root: str | Path,
        classes: Sequence[str] | str | Path | None = None,
        transform: Callable[[Any], Any] | None = None,
        extensions: Sequence[str] = IMAGE_EXTENSIONS,
    ):
        self.root = Path(root)
        self.transform = transform
        if not self.root.exists():
            raise ZoolensError(f"{self.root}: image folder not found")
        if not self.root.is_dir():
            raise ZoolensError(f"{self.root}: not a folder (expected root/<class name>/<image>)")
        folders = sorted(
            p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")
        )
        if not folders:
            raise ZoolensError(
                f"{self.root}: no class folders (expected root/<class name>/<image>)"
            )
        if classes is None:
            self.classes = folders
        else:
            self.classes = _read_class_list(classes)
            extra = [f for f in folders if f not in set(self.classes)]
            if extra:
                raise ZoolensError(
                    f"{self.root}: class folder {extra[0]!r} is not in the class "
                    f"list ({len(extra)} such folder(s): {', '.join(extra[:5])})"
                )
            missing = [c for c in self.classes if c not in set(folders)]
            if missing:
                raise ZoolensError(
                    f"{self.root}: class {missing[0]!r} of the class list has no "
                    f"folder ({len(missing)} missing: {', '.join(missing[:5])})"
                )
        exts = {e.lower() for e in extensions}
        files: list[Path] = []
        labels: list[int] = []
        for index, name in enumerate(self.classes):
            folder = self.root / name
            found = sorted(
                p
                for p in folder.iterdir()
                if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in exts
            )
            if not found:
                raise ZoolensError(
                    f"{folder}: class folder has no images ({', '.join(sorted(exts))})"
                )
            files.extend(found)
            labels.extend([index] * len(found))
        self.files = files
        self.labels = np.asarray(labels, dtype=np.int64)
        self.example_ids = np.asarray([p.relative_to(self.root).as_posix() for p in files])

    def __len__(self) -> int:
        return len(self.files)

    def positions(self, example_ids: Sequence[str]) -> np.ndarray:
        """Positions (row numbers in folder order) of the given example ids."""
        if getattr(self, "_position_of", None) is None:
            self._position_of = position_index(self.example_ids)
        return lookup_positions(self._position_of, example_ids, f"the image folder {self.root}")

    def with_transform(self, transform: Callable[[Any], Any] | None) -> ImageFolder:
        """The same files and order with another transform (no re-scan)."""
        clone = object.__new__(ImageFolder)
        clone.__dict__.update(self.__dict__)
        clone.transform = transform
        return clone

    def load(self, index: int):
        """The decoded RGB PIL image, or UndecodableImage (see :func:`decode_image`)."""
        return decode_image(self.files[index])

    def __getitem__(self, index: int):
        return transformed(self.load(index), self.transform, self.files[index])

    def fingerprint(self) -> str:
        """sha256 over the class list and the example ids (identifies the order on disk)."""
        import hashlib

        h = hashlib.sha256()
        for name in self.classes:
            h.update(name.encode() + b"\0")
        h.update(b"\1")
        for eid in self.example_ids:
            h.update(str(eid).encode() + b"\0")
        return h.hexdigest()


def ids_in_label_order(
    example_ids: Sequence[str] | np.ndarray, labels: np.ndarray, target_labels: np.ndarray
) -> np.ndarray:
    """Re-order class-sorted examples into a target label sequence, keeping order within a class.

    For a folder sorted by class (``labels``: class of each example id, in folder order) and a
    canonical label sequence ``target_labels`` (e.g. the CIFAR-10 test order), position i of
    the result is the k-th example of class ``target_labels[i]`` in folder order, where k is
    the number of earlier positions with that class: "the k-th file of class c is the k-th
    example of class c in canonical order" (../shared/data/README.md). Returns the example ids
    in target order. Raises ZoolensError when the class counts differ.
    """
    ids = np.asarray(example_ids)
    labels = np.asarray(labels, dtype=np.int64)
    target = np.asarray(target_labels).astype(np.int64)
    if ids.shape[0] != labels.shape[0]:
        raise ZoolensError("ids_in_label_order: example_ids and labels differ in length")
    if target.shape != labels.shape or not np.array_equal(
        np.bincount(labels, minlength=1), np.bincount(target, minlength=1)
    ):
        raise ZoolensError(
            f"cannot align: the folder has {labels.shape[0]} examples with class "
            f"counts {np.bincount(labels).tolist()}, the target labels "
            f"{target.shape[0]} with counts {np.bincount(target).tolist()}"
        )
    # Stable sorts: the k-th occurrence of class c in folder order goes to the k-th
    # occurrence of class c in target order.
    by_class_folder = np.argsort(labels, kind="stable")
    by_class_target = np.argsort(target, kind="stable")
    out = np.empty_like(ids)
    out[by_class_target] = ids[by_class_folder]
    return out


def read_order_file(path: str | Path) -> np.ndarray:
    """Example ids (one per line, ``.txt``) or labels (``.npy`` / ``.npz`` / ``.txt`` of ints).

    Returns a string array for ids and an int64 array for labels; the caller decides which.
    """
    path = Path(path)
    if not path.is_file():
        raise ZoolensError(f"{path}: order file not found")
    if path.suffix == ".npy":
        return np.load(path, allow_pickle=False)
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            for key in ("labels", "ground_truth", "y"):
                if key in z:
                    return z[key]
            raise ZoolensError(f"{path}: no 'labels', 'ground_truth' or 'y' array")
    lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    return np.asarray(lines)
