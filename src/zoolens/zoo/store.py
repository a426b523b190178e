"""The zoo: one labelled evaluation set plus the per-example outputs of many models.

On disk a zoo is a folder (docs/design.md sec. 2)::

    zoo.json                  manifest (written last, atomically): format_version, dataset
                              (name, num_examples, num_classes, class_names, class_groups,
                              multilabel), split (seed, fraction, calibration_indices), files
                              (sha256 and size of labels / ids / attributes), models
                              {name: {card, file, sha256, size, mtime_ns, kind, kinds, dtype,
                              shape, ...}}
    labels.npy                (N,) int64 class ids, or (N, C) uint8 0/1 for multi-label;
                              absent from an unlabelled zoo (dataset.labelled false)
    example_ids.npy           optional (N,) unicode strings (image file names, ...)
    attributes.parquet        optional per-example attributes, one row per example
    models/<slug>-<hash>.safetensors
                              per model: "logits" or "log_probs" (N, C) float32/float16, or
                              "decisions" (N,) int64 (-1: no answer, an abstention), or
                              "topk_values" (N, k) probabilities + "topk_indices" (N, k)
                              int64; optional "embeddings" (N, D)

    Optional (older zoos simply lack them): dataset.class_aliases
    {alias: class id} (e.g. ImageNet wnids beside readable class names) and, for a
    decision-only model, models[name].abstentions (how many decisions are -1).

Guarantees
----------
* Model names are free text; files are named ``<slug>-<shorthash>.safetensors`` (never the raw
  name), so no name can escape the folder.
* The manifest is untrusted input (zoos are shared): every file it names must be one plain
  file name inside ``models/`` (or one of the fixed auxiliary files) that does not resolve,
  through a symlink, to anything outside the zoo; otherwise the zoo is refused on open. The
  zoo deletes only files it wrote itself: regular files named like ``model_file_name``'s
  output in ``models/``, and its own ``.tmp-`` files.
* Every file is written to a temp file, fsynced and renamed into place; the manifest is
  rewritten last. A crash at any point leaves the previous zoo readable and unchanged.
* A lock file (``.zoo.lock``) serialises writers; each writer re-reads the manifest under the
  lock, so two processes adding different models both land.
* Arrays are read lazily through a memory map of the safetensors data (``tensorfile``: the
  header's offsets are checked to be ordered, disjoint and inside the file), so reading
  rows ``a:b`` touches only those rows and a zoo larger than RAM works. Identical data
  gives identical file bytes (and so the same file name).
* The sha256 of every file is recorded. Opening never hashes; a read re-hashes a file only if
  its size or mtime differs from the manifest's; ``verify()`` hashes everything. A mismatch
  raises ``ZooCorruptedError`` naming the file and the model.
* Probabilities and vote counts are stored as log-probabilities, log(max(p, 1e-12)) (counts
  are first normalised to fractions), so logits and log-probabilities are both "scores":
  softmax(scores / T) is the model's predictive distribution.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import stat
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from zoolens.errors import ZooCorruptedError, ZoolensError, naming_path
from zoolens.atomic import (
    TEMP_PREFIX,
    atomic_path,
    atomic_write_bytes,
    fsync_dir,
    fsync_file,
    temp_path_for,
)
from zoolens.zoo._slug import is_written_model_file_name, model_file_name
from zoolens.zoo.cards import ModelCard, to_card
from zoolens.zoo.classes import MAX_CLASS_NAME_CHARS, MAX_TEXT_CHARS, check_confusable, check_text
from zoolens.zoo.manifest import FileRecord, Manifest, ModelEntry, parse_manifest, parse_model_entry
from zoolens.zoo.outputs import (
    ABSTAIN,
    DTYPES,
    KINDS,
    LOG_PROB_FLOOR,
    MAX_CLASSES,
    PROB_FLOOR,
    ZooWarning,
    check_class_range,
    check_no_stray_label,
    is_integral,
    prepare_float,
    prepare_outputs,
    row_chunks,
    to_array,
    topk_to_log_probs,
)
from zoolens.zoo.tensorfile import memmap_tensor, read_header, read_rows, write_tensors

__all__ = [
    "Zoo",
    "ZooWarning",
    "KINDS",
    "DTYPES",
    "PROB_FLOOR",
    "LOG_PROB_FLOOR",
    "MANIFEST",
    "MODELS_DIR",
    "LABELS_FILE",
    "IDS_FILE",
    "ATTRIBUTES_FILE",
    "LOCK_FILE",
]

FORMAT_VERSION = 1
MANIFEST = "zoo.json"
LABELS_FILE = "labels.npy"
IDS_FILE = "example_ids.npy"
ATTRIBUTES_FILE = "attributes.parquet"
MODELS_DIR = "models"
LOCK_FILE = ".zoo.lock"
LOCK_TIMEOUT_S = 600.0


# ---------------------------------------------------------------------------------------------
# small helpers


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# ---------------------------------------------------------------------------------------------


def _nothing_left_on_failure(create: Any) -> Any:
    """``Zoo.create`` that leaves the folder as it found it when it fails (disk full, an
    interrupt, a bad value found late): no lock file, no ``models/``, no labels, so a retry
    starts clean. A zoo whose manifest exists (a concurrent creator's) is never touched."""
    import functools

    @functools.wraps(create)
    def wrapper(cls: Any, path: Any, *args: Any, **kwargs: Any) -> Any:
        folder = Path(path)
        existed = folder.is_dir()
        before = {p.name for p in folder.iterdir()} if existed else set()
        try:
            return create(cls, path, *args, **kwargs)
        except BaseException:
            if not (folder / MANIFEST).exists() and folder.is_dir():
                if not existed:
                    import shutil

                    shutil.rmtree(folder, ignore_errors=True)
                else:
                    for rel in (LABELS_FILE, IDS_FILE, ATTRIBUTES_FILE, LOCK_FILE, MODELS_DIR):
                        if rel not in before:
                            with contextlib.suppress(OSError):
                                if (folder / rel).is_dir():
                                    (folder / rel).rmdir()
                                else:
                                    (folder / rel).unlink()
            raise

    return wrapper


class Zoo:
    """A zoo folder: labels, optional ids/attributes, and one safetensors file per model.

    Use ``Zoo.create(path, labels, ...)`` or ``Zoo.open(path)``; see the module docstring for
    the layout and the guarantees. Reads use the manifest as it was when the zoo was opened
    (or last written through this object); ``reload()`` picks up other processes' changes.
    """

    def __init__(self, path: Path, manifest: Manifest):
        self._path = Path(path)
        self._manifest = manifest
        self._labels: np.ndarray | None = None
        self._ids: np.ndarray | None = None
        self._ids_loaded = False
        self._attributes: Any = None
        self._attributes_loaded = False
        # files whose hash was re-checked after a size/mtime change: (file, size, mtime_ns)
        self._rehashed: set[tuple[str, int, int]] = set()
        self._headers: dict[str, tuple[tuple[int, int], int, dict[str, Any]]] = {}
        self._predictions: dict[str, tuple[str, np.ndarray]] = {}  # name -> (file, top-1)

    # ----------------------------------------------------------------------------- creation

    @classmethod
    @_nothing_left_on_failure
    def create(
        cls,
        path: str | os.PathLike[str],
        labels: Any,
        *,
        class_names: Sequence[str] | None = None,
        dataset_name: str = "dataset",
        calibration_fraction: float = 0.2,
        seed: int = 0,
        example_ids: Sequence[str] | np.ndarray | None = None,
        attributes: Any = None,
        class_groups: Mapping[str, Sequence[int]] | None = None,
        num_classes: int | None = None,
        exist_ok: bool = False,
        class_aliases: Mapping[str, int] | None = None,
        num_examples: int | None = None,
    ) -> Zoo:
        """Create a zoo folder at ``path`` for the evaluation set with these ``labels``.

        labels: (N,) integer class ids in [0, C), or an (N, C) 0/1 multi-label matrix.
        C is ``len(class_names)``, else ``num_classes``, else ``max(labels) + 1``.
        ``labels=None`` makes an unlabelled zoo (a deployment set, a benchmark before
        annotation): it needs ``num_classes`` or ``class_names``, and the number of examples
        from ``num_examples`` or ``example_ids``; it has no calibration split (temperatures need
        labels) and every measure that needs labels refuses it in one line
        (``Zoo.require_labels``), while agreement, CKA and ``analyze --shift``'s label-free
        accuracy estimates work.
        The calibration split is a seeded random subset of round(fraction * N) examples
        (``np.random.default_rng(seed).choice``, sorted); the evaluation split is the rest.
        With ``exist_ok`` an existing zoo with identical labels is opened instead.
        ``class_aliases``: other names of classes (alias -> class id, e.g. ImageNet wnids)
        that imported class-name text may use (``Zoo.class_index``).
        """
        path = Path(path)
        if (path / MANIFEST).exists():
            if not exist_ok:
                raise ZoolensError(
                    f"{path}: a zoo already exists here (use Zoo.open, or exist_ok=True)"
                )
            zoo = cls.open(path)
            if labels is None or not zoo.has_labels:
                if (labels is None) != (not zoo.has_labels):
                    raise ZoolensError(
                        f"{path}: a zoo {'with' if zoo.has_labels else 'without'} labels "
                        "already exists here"
                    )
                return zoo
            given = _validate_labels(labels, class_names, num_classes, path)[0]
            if given.shape != zoo.labels.shape or not np.array_equal(given, zoo.labels):
                raise ZoolensError(f"{path}: a zoo with different labels already exists here")
            return zoo
        if path.exists() and not path.is_dir():
            raise ZoolensError(f"{path}: exists and is not a folder")
        if path.is_dir() and any(p.name != LOCK_FILE for p in path.iterdir()):
            raise ZoolensError(f"{path}: folder is not empty and is not a zoo (no {MANIFEST})")

        lab: np.ndarray | None
        if labels is None:
            n_classes = _unlabelled_classes(class_names, num_classes, path)
            n = _unlabelled_size(num_examples, example_ids, path)
            lab = None
            calibration_fraction = 0.0  # a calibration split needs labels
        else:
            lab, n_classes = _validate_labels(labels, class_names, num_classes, path)
            n = lab.shape[0]
            if num_examples is not None and int(num_examples) != n:
                raise ZoolensError(f"{path}: num_examples={num_examples} but {n} labels")
        names = (
            [str(c) for c in class_names]
            if class_names is not None
            else [str(i) for i in range(n_classes)]
        )
        check_text(names, str(path), "class name", MAX_CLASS_NAME_CHARS)
        check_confusable(names, str(path))
        if not 0.0 <= float(calibration_fraction) < 1.0:
            raise ZoolensError(
                f"{path}: calibration_fraction must be in [0, 1), got {calibration_fraction}"
            )
        n_cal = int(round(float(calibration_fraction) * n))
        cal = np.sort(np.random.default_rng(seed).choice(n, size=n_cal, replace=False))
        ids = _validate_ids(example_ids, n, path) if example_ids is not None else None
        groups = _validate_groups(class_groups or {}, n_classes, path)
        aliases = {str(k): int(v) for k, v in (class_aliases or {}).items()}
        if any(not 0 <= v < n_classes for v in aliases.values()):
            raise ZoolensError(f"{path}: a class alias points outside [0, {n_classes})")
        attrs = _validate_attributes(attributes, n, path) if attributes is not None else None

        path.mkdir(parents=True, exist_ok=True)
        (path / MODELS_DIR).mkdir(exist_ok=True)
        with _lock(path):
            if (path / MANIFEST).exists():
                raise ZoolensError(f"{path}: a zoo was created here concurrently")
            files: dict[str, Any] = {}
            if lab is not None:
                files[LABELS_FILE] = _write_npy(path / LABELS_FILE, lab)
            if ids is not None:
                files[IDS_FILE] = _write_npy(path / IDS_FILE, ids)
            if attrs is not None:
                files[ATTRIBUTES_FILE] = _write_parquet(path / ATTRIBUTES_FILE, attrs)
            from zoolens import __version__

            manifest = parse_manifest(
                {
                    "format_version": FORMAT_VERSION,
                    "created_by": f"zoolens {__version__}",
                    "created_at": _now(),
                    "dataset": {
                        "name": str(dataset_name),
                        "num_examples": int(n),
                        "num_classes": int(n_classes),
                        "class_names": names,
                        "class_groups": groups,
                        "multilabel": bool(lab is not None and lab.ndim == 2),
                        **({} if lab is not None else {"labelled": False}),
                        **({"class_aliases": aliases} if aliases else {}),
                    },
                    "split": {
                        "seed": int(seed),
                        "calibration_fraction": float(calibration_fraction),
                        "calibration_indices": [int(i) for i in cal],
                    },
                    "files": files,
                    "models": {},
                },
                path / MANIFEST,
            )
            _write_manifest(path, manifest)
        return cls(path, manifest)

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Zoo:
        """Open an existing zoo (reads only the manifest: fast, no hashing)."""
        path = Path(path)
        if not path.is_dir():
            what = "not a folder" if path.exists() else "no such folder"
            raise ZoolensError(f"{path}: not a zoo ({what})")
        return cls(path, _read_manifest(path))

    def reload(self) -> None:
        """Re-read the manifest (to see models other processes added or removed)."""
        self._manifest = _read_manifest(self._path)
        self._predictions.clear()

    def __repr__(self) -> str:
        return (
            f"Zoo({str(self._path)!r}, examples={self.num_examples}, "
            f"classes={self.num_classes}, models={len(self.models)})"
        )

    # ---------------------------------------------------------------------------- dataset

    @property
    def path(self) -> Path:
        return self._path

    @property
    def manifest(self) -> dict[str, Any]:
        """A copy of the manifest (zoo.json) as read, as plain JSON data."""
        return self._manifest.to_json_dict()

    @property
    def num_examples(self) -> int:
        return self._manifest.dataset.num_examples

    @property
    def num_classes(self) -> int:
        return self._manifest.dataset.num_classes

    @property
    def class_names(self) -> list[str]:
        return list(self._manifest.dataset.class_names)

    @property
    def class_aliases(self) -> dict[str, int]:
        """Other names of classes (alias -> class id), e.g. ImageNet wnids; often empty.
        Kept as an extra manifest field (dataset.class_aliases), checked here."""
        raw = (self._manifest.dataset.model_extra or {}).get("class_aliases", {})
        if not isinstance(raw, dict) or not all(
            isinstance(k, str)
            and isinstance(v, int)
            and not isinstance(v, bool)
            and 0 <= v < self.num_classes
            for k, v in raw.items()
        ):
            raise ZooCorruptedError(
                f"{self._path / MANIFEST}: invalid manifest: "
                "dataset.class_aliases must map names to class ids"
            )
        return dict(raw)

    def class_index(self) -> Any:
        """``zoo.classes.ClassIndex`` of the class names and aliases (text -> class id)."""
        from zoolens.zoo.classes import ClassIndex

        return ClassIndex(self.class_names, self.class_aliases)

    @property
    def dataset_name(self) -> str:
        return self._manifest.dataset.name

    @property
    def is_multilabel(self) -> bool:
        return self._manifest.dataset.multilabel

    @property
    def class_groups(self) -> dict[str, list[int]]:
        return {k: list(v) for k, v in self._manifest.dataset.class_groups.items()}

    @property
    def split_seed(self) -> int:
        return self._manifest.split.seed

    @property
    def has_labels(self) -> bool:
        """False for an unlabelled zoo (created with ``labels=None`` / ``--no-labels``)."""
        return self._manifest.dataset.labelled

    def require_labels(self, what: str) -> None:
        """One ZoolensError line when the zoo is unlabelled: ``what`` needs labels."""
        if not self.has_labels:
            raise ZoolensError(
                f"zoo {self._path} has no labels (created with --no-labels): {what} needs "
                "labels; what needs none works on it: agreement between models, CKA "
                "(zoolens probe), label-free accuracy estimates (analyze --shift NAME=ZOO)"
            )

    @property
    def labels(self) -> np.ndarray:
        """(N,) int64 class ids, or (N, C) uint8 for a multi-label zoo; an unlabelled zoo
        raises ZoolensError (``require_labels``)."""
        self.require_labels("this measure")
        if self._labels is None:
            arr = self._load_npy(LABELS_FILE)
            expected = (
                (self.num_examples, self.num_classes)
                if self.is_multilabel
                else (self.num_examples,)
            )
            if arr.shape != expected:
                raise ZooCorruptedError(
                    f"{self._path / LABELS_FILE}: shape {arr.shape}, manifest says {expected}"
                )
            self._labels = arr.astype(np.uint8 if self.is_multilabel else np.int64, copy=False)
        return self._labels

    @property
    def example_ids(self) -> np.ndarray | None:
        """(N,) array of str, or None when the zoo has no example ids."""
        if not self._ids_loaded:
            self._ids = self._load_npy(IDS_FILE) if IDS_FILE in self._files else None
            self._ids_loaded = True
        return self._ids

    @property
    def attributes(self) -> Any:
        """pandas.DataFrame with one row per example, or None."""
        if not self._attributes_loaded:
            if ATTRIBUTES_FILE in self._files:
                import pandas as pd

                file = self._path / ATTRIBUTES_FILE
                self._check_aux_file(ATTRIBUTES_FILE)
                try:
                    self._attributes = pd.read_parquet(file)
                except Exception as exc:
                    raise ZooCorruptedError(f"{file}: unreadable ({exc})") from None
            else:
                self._attributes = None
            self._attributes_loaded = True
        return self._attributes

    @property
    def calibration_indices(self) -> np.ndarray:
        """Sorted int64 indices of the calibration split (fits temperatures, picks members)."""
        return np.asarray(self._manifest.split.calibration_indices, dtype=np.int64)

    @property
    def evaluation_indices(self) -> np.ndarray:
        """Sorted int64 indices of the evaluation split: every example not in calibration."""
        mask = np.ones(self.num_examples, dtype=bool)
        mask[self.calibration_indices] = False
        return np.flatnonzero(mask).astype(np.int64)

    def set_class_groups(self, groups: Mapping[str, Sequence[int]]) -> None:
        """Replace the named groups of classes (e.g. "dogs": [151, ..., 268])."""
        clean = _validate_groups(groups, self.num_classes, self._path)

        def change(manifest: Manifest) -> None:
            manifest.dataset.class_groups = clean

        self._modify(change)

    @property
    def image_root(self) -> str | None:
        """Folder whose files the example ids name (``cat/0001.jpg``), or None."""
        return self._manifest.dataset.image_root

    def set_image_root(self, folder: str | os.PathLike | None) -> None:
        """Record (or with None, forget) the folder of the example images; it must exist."""
        root = None
        if folder is not None:
            path = Path(folder).expanduser().resolve()
            if not path.is_dir():
                raise ZoolensError(f"{folder}: image root is not a folder")
            root = str(path)

        def change(manifest: Manifest) -> None:
            manifest.dataset = manifest.dataset.model_copy(update={"image_root": root})

        self._modify(change)

    def set_example_ids(self, example_ids: Sequence[str] | np.ndarray) -> None:
        """Store (or replace) the per-example ids (unique strings, N of them)."""
        ids = _validate_ids(example_ids, self.num_examples, self._path)

        def change(manifest: Manifest) -> None:
            manifest.files = {**manifest.files, IDS_FILE: _write_npy(self._path / IDS_FILE, ids)}

        self._modify(change)
        self._ids, self._ids_loaded = ids, True

    # ----------------------------------------------------------------------------- models

    @property
    def models(self) -> list[str]:
        """Model names in insertion order."""
        return list(self._manifest.models)

    def __contains__(self, name: object) -> bool:
        return name in self._manifest.models

    def __len__(self) -> int:
        return len(self._manifest.models)

    def _entry(self, name: str) -> ModelEntry:
        try:
            return self._manifest.models[name]
        except KeyError:
            known = ", ".join(repr(m) for m in self.models[:10]) or "none"
            more = " ..." if len(self.models) > 10 else ""
            raise ZoolensError(
                f"{self._path}: no model named {name!r} (models: {known}{more})"
            ) from None

    def card(self, name: str) -> ModelCard:
        return self._entry(name).card.model_copy(deep=True)

    def kind(self, name: str) -> str:
        """ "logits", "log_probs", "decisions" or "topk"."""
        return self._entry(name).kind

    def has_embeddings(self, name: str) -> bool:
        return "embeddings" in self._entry(name).kinds

    def model_info(self, name: str) -> dict[str, Any]:
        """The manifest entry of a model (card, file, sha256, size, kind, dtype, shape ...)."""
        return self._entry(name).model_dump(mode="json")

    def set_card(self, name: str, card: ModelCard | dict[str, Any]) -> None:
        """Replace a model's card (arrays untouched)."""
        self._entry(name)
        new = to_card(card, name)

        def change(manifest: Manifest) -> None:
            if name not in manifest.models:
                raise ZoolensError(f"{self._path}: no model named {name!r}")
            manifest.models[name].card = new

        self._modify(change)

    def add(
        self,
        name: str,
        *,
        logits: Any = None,
        probs: Any = None,
        log_probs: Any = None,
        decisions: Any = None,
        counts: Any = None,
        topk_indices: Any = None,
        topk_values: Any = None,
        embeddings: Any = None,
        card: ModelCard | dict[str, Any] | None = None,
        dtype: str = "float32",
        replace: bool = False,
        source_file: str | None = None,
    ) -> None:
        """Add one model's outputs on all N examples (exactly one kind of output).

        logits      (N, C) any real scores whose softmax is the model's distribution
        probs       (N, C) probabilities, rows sum to 1  -> stored as log(max(p, 1e-12))
        log_probs   (N, C) log-probabilities (-inf floored at log 1e-12)
        counts      (N, C) non-negative vote counts -> fractions -> stored like probs
        decisions   (N,)   predicted class ids only (no scores)
        topk_indices, topk_values  (N, k) class ids and their probabilities (k may be 1)
        embeddings  optional (N, D) pre-logit features
        dtype       "float32" (exact) or "float16" (half the disk; scores read back as float32)

        Raises ZoolensError with one line naming the model (and ``source_file``) on bad input;
        the zoo is unchanged then. Warns (ZooWarning) when logits look like probabilities.
        """
        where = _where(name, source_file)
        _validate_name(name, where)
        if dtype not in DTYPES:
            raise ZoolensError(f"{where}: dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
        twin = next(
            (
                m
                for m in self._manifest.models
                if m != name
                and unicodedata.normalize("NFC", m) == unicodedata.normalize("NFC", name)
            ),
            None,
        )
        if twin is not None:
            raise ZoolensError(
                f"{where}: looks the same as the model {twin!r} already in the "
                "zoo (the same text in another Unicode normal form, NFC/NFD); "
                "use that exact name or a different one"
            )
        if not replace and name in self._manifest.models:
            raise ZoolensError(
                f"{where}: a model with this name is already in the zoo "
                "(use replace=True / --replace)"
            )
        given = {
            k: v
            for k, v in (
                ("logits", logits),
                ("probs", probs),
                ("log_probs", log_probs),
                ("decisions", decisions),
                ("counts", counts),
            )
            if v is not None
        }
        if topk_indices is not None or topk_values is not None:
            given["topk"] = (topk_indices, topk_values)
        if len(given) != 1:
            what = ", ".join(given) if given else "nothing"
            raise ZoolensError(
                f"{where}: give exactly one of logits, probs, log_probs, counts, "
                f"decisions or topk_indices+topk_values (got {what})"
            )
        ((given_kind, value),) = given.items()
        tensors, kind = prepare_outputs(
            given_kind,
            value,
            num_examples=self.num_examples,
            num_classes=self.num_classes,
            dtype=dtype,
            where=where,
        )
        if embeddings is not None:
            tensors["embeddings"] = prepare_float(
                embeddings,
                num_examples=self.num_examples,
                dtype=dtype,
                where=where,
                what="embeddings",
                cols=None,
            )
        card_obj = to_card(card, name)

        n, c = self.num_examples, self.num_classes
        main = tensors.get("topk_values", tensors.get(kind))
        assert main is not None  # prepare_outputs returns the kind's array
        entry: dict[str, Any] = {
            "card": card_obj.model_dump(mode="json"),
            "kind": kind,
            "kinds": sorted(tensors),
            "dtype": str(main.dtype) if kind != "decisions" else "int64",
            "shape": [int(s) for s in main.shape] if kind != "topk" else [n, c],
            "topk": int(main.shape[1]) if kind == "topk" else None,
            "embedding_dim": (
                int(tensors["embeddings"].shape[1]) if "embeddings" in tensors else None
            ),
            "stored_from": given_kind,
            "source_file": source_file,
        }
        if kind == "decisions":  # no-answer decisions (-1), shown by info and models.csv
            entry["abstentions"] = int(np.count_nonzero(tensors["decisions"] == ABSTAIN))
        self._write_model(name, tensors, entry, replace, where)

    def remove(self, name: str) -> None:
        """Remove a model: the manifest first, then its file."""
        self._entry(name)
        removed: list[str] = []

        def change(manifest: Manifest) -> None:
            if name not in manifest.models:
                raise ZoolensError(f"{self._path}: no model named {name!r}")
            removed.append(manifest.models.pop(name).file)

        self._modify(change)
        self._predictions.pop(name, None)
        for rel in removed:
            self._unlink_unreferenced(rel)

    # ---------------------------------------------------------------------------- reading

    def scores(self, name: str, rows: Any = None) -> np.ndarray:
        """(n, C) float32 scores: logits or log-probabilities (softmax(scores/T) is the model's
        distribution). For a top-k model: log of the full distribution, the listed
        probabilities at their classes and the remaining mass 1 - sum(values) spread evenly
        over the other C - k classes, floored at 1e-12. Decision-only models raise.
        ``rows``: None (all), a slice (reads only those rows), an index array or a bool mask.
        """
        kind = self.kind(name)
        if kind == "decisions":
            raise ZoolensError(
                f"model {name!r} is decision-only (predicted classes, no scores); use predictions()"
            )
        index = self._rows(rows, name)
        if kind == "topk":
            values = np.asarray(self._read(name, "topk_values", index), dtype=np.float32)
            indices = np.asarray(self._read(name, "topk_indices", index), dtype=np.int64)
            return topk_to_log_probs(values, indices, self.num_classes)
        # np.array copies: callers get a plain, writable array, never a view of the file
        return np.asarray(self._read(name, kind, index), dtype=np.float32)

    def stored_scores(self, name: str, rows: Any = None) -> np.ndarray:
        """Like :meth:`scores`, but logits / log-probabilities come in the dtype they are
        stored in (float16 stays float16: half the bytes to copy, for callers that convert
        once themselves, such as ``measure.fused``); top-k models as :meth:`scores`."""
        kind = self.kind(name)
        if kind in ("decisions", "topk"):
            return self.scores(name, rows)
        return self._read(name, kind, self._rows(rows, name))

    def stored_entries(self, name: str, rows: np.ndarray, classes: np.ndarray) -> np.ndarray:
        """Single entries ``(rows[j], classes[j])`` of :meth:`stored_scores` (stored dtype),
        for callers that need a few scattered entries rather than whole rows (greedy's lazy
        candidates): read through a memory map, one page per entry."""
        index = self._rows(np.asarray(rows), name)
        cols = np.asarray(classes, dtype=np.int64)
        if cols.shape != index.shape or (
            cols.size and (cols.min() < 0 or cols.max() >= self.num_classes)
        ):
            raise ZoolensError(f"model {name!r}: class index out of range [0, {self.num_classes})")
        kind = self.kind(name)
        if kind in ("decisions", "topk"):
            unique_rows, where = np.unique(index, return_inverse=True)
            return self.scores(name, unique_rows)[where, cols]
        try:
            return np.asarray(self._tensor(name, kind)[index, cols])
        except OSError as exc:
            raise ZoolensError(
                f"model {name!r}: cannot read {self._entry(name).file} ({exc.strerror or exc})"
            ) from None

    def predictions(self, name: str) -> np.ndarray:
        """(N,) int64 top-1 class: argmax of the scores (lowest index on ties, as numpy's
        argmax), or the stored decisions of a decision-only model (-1 where it abstained)."""
        file = self._entry(name).file
        cached = self._predictions.get(name)
        if cached is not None and cached[0] == file:
            return cached[1].copy()
        kind = self.kind(name)
        if kind == "decisions":
            pred = np.asarray(self._tensor(name, "decisions"), dtype=np.int64).copy()
        else:
            pred = np.empty(self.num_examples, dtype=np.int64)
            for s in row_chunks(self.num_examples, self.num_classes):
                if kind == "topk":
                    block = self.scores(name, s)
                else:  # argmax of the stored values: no float32 copy needed
                    block = self._read(name, kind, s)
                # float16 compares exactly in float32, where numpy's argmax is vectorised
                # (on float16 it is ~50x slower); ties and NaN behave the same.
                pred[s] = np.argmax(
                    block.astype(np.float32, copy=False) if block.dtype == np.float16 else block,
                    axis=1,
                )
        self._predictions[name] = (file, pred)
        return pred.copy()

    def embeddings(self, name: str, rows: Any = None) -> np.ndarray:
        """(n, D) float32 pre-logit embeddings; ZoolensError if the model has none."""
        if not self.has_embeddings(name):
            raise ZoolensError(f"model {name!r} has no embeddings in {self._path}")
        return np.asarray(self._read(name, "embeddings", self._rows(rows, name)), dtype=np.float32)

    def raw(self, name: str, tensor: str) -> np.ndarray:
        """The stored tensor as a read-only memory map (no copy, stored dtype)."""
        if tensor not in self._entry(name).kinds:
            raise ZoolensError(
                f"model {name!r} has no tensor {tensor!r} "
                f"(has {', '.join(self._entry(name).kinds)})"
            )
        return self._tensor(name, tensor)

    def accuracy(self, name: str, rows: Any = None) -> float:
        """Top-1 accuracy over ``rows`` (default all examples); multi-label: the top-1 is one
        of the valid labels."""
        self.require_labels("accuracy")
        pred = self.predictions(name)
        index = self._rows(rows, name)
        pred, labels = pred[index], self.labels[index]
        if self.is_multilabel:  # an abstention (-1) is never right
            right = (pred >= 0) & (labels[np.arange(len(pred)), np.maximum(pred, 0)] > 0)
        else:
            right = pred == labels
        return float(np.mean(right)) if len(right) else float("nan")

    # ------------------------------------------------------------------------- integrity

    def file_hashes(self) -> dict[str, str]:
        """File name (relative to the zoo) -> sha256, for every file the manifest records."""
        out = {rel: info.sha256 for rel, info in self._files.items()}
        for entry in self._manifest.models.values():
            out[entry.file] = entry.sha256
        return out

    def verify(self, progress: bool = False) -> None:
        """Hash every file and check its format; ZooCorruptedError naming each bad file (and
        its model). Also reports model files present on disk but not in the manifest."""
        problems: list[str] = []
        items: list[tuple[str, str | None, str, int | None]] = [
            (rel, None, info.sha256, info.size) for rel, info in self._files.items()
        ]
        items += [(e.file, name, e.sha256, e.size) for name, e in self._manifest.models.items()]
        iterable: Any = items
        if progress:
            from zoolens.progress import track

            iterable = track(items, description="verify", unit="files")
        for rel, model, sha, size in iterable:
            file = self._path / rel
            label = f"{file}" + (f" (model {model!r})" if model is not None else "")
            if not file.is_file():
                problems.append(f"{label} is missing")
                continue
            actual_size = file.stat().st_size
            if size is not None and actual_size != size:
                problems.append(
                    f"{label} has {actual_size} bytes, recorded {size} (truncated or modified)"
                )
                continue
            if _sha256_file(file) != sha:
                problems.append(f"{label} does not match its recorded sha256 (corrupted)")
                continue
            if model is not None:
                try:
                    self._check_tensors(model, file)
                except ZooCorruptedError as exc:
                    problems.append(str(exc))
        if problems:
            more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
            raise ZooCorruptedError(
                f"{len(problems)} bad file(s) in zoo {self._path}: "
                + "; ".join(problems[:3])
                + more
            )

    def orphan_files(self) -> list[Path]:
        """Files in models/ that no manifest entry points to (left by a crash)."""
        known = {e.file for e in self._manifest.models.values()}
        folder = self._path / MODELS_DIR
        if not folder.is_dir():
            return []
        return sorted(p for p in folder.iterdir() if f"{MODELS_DIR}/{p.name}" not in known)

    # ---------------------------------------------------------------------------- internals

    @property
    def _files(self) -> dict[str, FileRecord]:
        return self._manifest.files

    def _load_npy(self, rel: str) -> np.ndarray:
        self._check_aux_file(rel)
        file = self._path / rel
        try:
            return np.load(file, allow_pickle=False)
        except FileNotFoundError:
            raise ZooCorruptedError(f"{file} is missing") from None
        except Exception as exc:
            raise ZooCorruptedError(f"{file}: unreadable ({exc})") from None

    def _check_aux_file(self, rel: str) -> None:
        info = self._files.get(rel)
        if info is None:
            return
        self._check_file(self._path / rel, info, None)

    def _check_file(
        self, file: Path, info: FileRecord | ModelEntry, model: str | None
    ) -> os.stat_result:
        """Re-hash ``file`` if its size or mtime differs from the manifest's record; returns
        the file's stat."""
        label = f"{file}" + (f" (model {model!r})" if model is not None else "")
        try:
            st = file.stat()
        except FileNotFoundError:
            raise ZooCorruptedError(f"{label} is missing") from None
        if st.st_size == info.size and st.st_mtime_ns == info.mtime_ns:
            return st
        key = (str(file), st.st_size, st.st_mtime_ns)
        if key in self._rehashed:
            return st
        if st.st_size != info.size:
            raise ZooCorruptedError(
                f"{label} has {st.st_size} bytes, recorded {info.size} (truncated or modified)"
            )
        if _sha256_file(file) != info.sha256:
            raise ZooCorruptedError(
                f"{label} does not match its recorded sha256 (corrupted "
                "or modified since it was added)"
            )
        self._rehashed.add(key)
        return st

    def _tensor(self, name: str, tensor: str) -> np.ndarray:
        """A read-only memory map of one stored tensor (whole-tensor access)."""
        return memmap_tensor(*self._locate(name, tensor))

    def _read(self, name: str, tensor: str, index: Any) -> np.ndarray:
        """Rows ``index`` (a slice or an index array from :meth:`_rows`) of one stored
        tensor, copied with positioned reads (``tensorfile.read_rows``; no memory map)."""
        file, data_start, info = self._locate(name, tensor)
        try:
            return read_rows(file, data_start, info, index)
        except OSError as exc:
            raise ZoolensError(
                f"model {name!r}: cannot read {file} ({exc.strerror or exc})"
            ) from None

    def _locate(self, name: str, tensor: str) -> tuple[Path, int, dict[str, Any]]:
        """(file, data start, header entry) of one stored tensor, the file checked."""
        entry = self._entry(name)
        file = self._path / entry.file
        if not file.exists():
            # Another process may have replaced or removed the model: look again once.
            self.reload()
            entry = self._entry(name)
            file = self._path / entry.file
        st = self._check_file(file, entry, name)
        cached = self._headers.get(entry.file)
        if cached is None or cached[0] != (st.st_size, st.st_mtime_ns):
            data_start, header = read_header(file, name)
            cached = ((st.st_size, st.st_mtime_ns), data_start, header)
            self._headers[entry.file] = cached
        _, data_start, header = cached
        if tensor not in header:
            raise ZooCorruptedError(f"model {name!r}: file {file} has no tensor {tensor!r}")
        return file, data_start, header[tensor]

    def _check_tensors(self, name: str, file: Path) -> None:
        entry = self._entry(name)
        _, header = read_header(file, name)
        for tensor in entry.kinds:
            if tensor not in header:
                raise ZooCorruptedError(f"model {name!r}: file {file} has no tensor {tensor!r}")
            if int(header[tensor]["shape"][0]) != self.num_examples:
                raise ZooCorruptedError(
                    f"model {name!r}: file {file}: tensor {tensor!r} has "
                    f"{header[tensor]['shape'][0]} rows, zoo has "
                    f"{self.num_examples}"
                )

    def _rows(self, rows: Any, name: str) -> Any:
        n = self.num_examples
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

    def _write_model(
        self,
        name: str,
        tensors: dict[str, np.ndarray],
        entry: dict[str, Any],
        replace: bool,
        where: str,
    ) -> None:
        models_dir = self._path / MODELS_DIR
        models_dir.mkdir(exist_ok=True)
        with _lock(self._path):
            manifest = _read_manifest(self._path)
            _sweep_leftovers(self._path, manifest)
            old = manifest.models.get(name)
            if old is not None and not replace:
                raise ZoolensError(
                    f"{where}: a model with this name is already in the zoo "
                    "(use replace=True / --replace)"
                )
            tmp = temp_path_for(models_dir / "model.safetensors")  # named once hashed
            final: Path | None = None
            try:
                write_tensors(
                    tmp,
                    tensors,
                    metadata={"zoolens_format": str(FORMAT_VERSION), "kind": entry["kind"]},
                )
                fsync_file(tmp)
                sha = _sha256_file(tmp)
                rel = f"{MODELS_DIR}/{model_file_name(name, sha)}"
                final = self._path / rel
                same_file = old is not None and old.file == rel
                if same_file:
                    tmp.unlink()  # identical content under the same name: nothing to write
                else:
                    os.replace(tmp, final)
                    fsync_dir(models_dir)
                st = final.stat()
                entry.update(
                    {
                        "file": rel,
                        "sha256": sha,
                        "size": st.st_size,
                        "mtime_ns": st.st_mtime_ns,
                        "added_at": _now(),
                    }
                )
                models = dict(manifest.models)
                models[name] = parse_model_entry(entry, name, self._path / MANIFEST)
                manifest.models = models  # a replaced model keeps its position
                try:
                    _write_manifest(self._path, manifest)
                except BaseException:
                    if not same_file:
                        with contextlib.suppress(OSError):
                            final.unlink()
                    raise
            except OSError as exc:  # a full disk, a read-only folder: name the models folder
                if exc.filename in (None, str(tmp)):
                    raise naming_path(
                        OSError(exc.errno, exc.strerror or str(exc)), models_dir
                    ) from None
                raise
            finally:
                with contextlib.suppress(OSError):
                    tmp.unlink()
            self._manifest = manifest
            self._predictions.pop(name, None)
            if old is not None:
                self._unlink_unreferenced(old.file)

    def _unlink_unreferenced(self, rel: str) -> None:
        """Delete the model file ``rel`` unless a manifest entry still points to it, and only
        when it is a file this zoo wrote (``_is_own_model_file``)."""
        if not any(e.file == rel for e in self._manifest.models.values()):
            file = self._path / rel
            if _is_own_model_file(self._path, rel):
                with contextlib.suppress(OSError):
                    file.unlink()

    def _modify(self, change: Callable[[Manifest], None]) -> None:
        """Apply ``change(manifest)`` under the lock to a freshly read manifest; write it."""
        with _lock(self._path):
            manifest = _read_manifest(self._path)
            _sweep_leftovers(self._path, manifest)
            change(manifest)
            _write_manifest(self._path, manifest)
            self._manifest = manifest


# ---------------------------------------------------------------------------------------------
# module-level helpers


def _where(name: Any, source_file: str | None) -> str:
    label = f"model {name!r}"
    return f"{source_file}: {label}" if source_file else label


def _validate_name(name: Any, where: str) -> None:
    if not isinstance(name, str) or not name.strip():
        raise ZoolensError(f"{where}: the model name must be a non-empty string")
    if any(ch in name for ch in "\n\r\0"):
        raise ZoolensError(f"{where}: the model name must be one line")
    if len(name) > 512:
        raise ZoolensError(f"{where}: the model name is longer than 512 characters")


def _validate_labels(
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


def _unlabelled_classes(
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


def _unlabelled_size(num_examples: int | None, example_ids: Any, path: Path) -> int:
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


def _validate_ids(ids: Any, n: int, path: Path) -> np.ndarray:
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


def _validate_groups(
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


def _validate_attributes(attributes: Any, n: int, path: Path) -> Any:
    import pandas as pd

    df = attributes if isinstance(attributes, pd.DataFrame) else pd.DataFrame(attributes)
    if len(df) != n:
        raise ZoolensError(f"{path}: attributes have {len(df)} rows, the zoo has {n} examples")
    df = df.reset_index(drop=True)
    df.columns = [str(c) for c in df.columns]
    return df


def _file_record(file: Path) -> FileRecord:
    st = file.stat()
    return FileRecord(sha256=_sha256_file(file), size=st.st_size, mtime_ns=st.st_mtime_ns)


def _write_npy(file: Path, arr: np.ndarray) -> FileRecord:
    with atomic_path(file) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, arr, allow_pickle=False)
    return _file_record(file)


def _write_parquet(file: Path, df: Any) -> FileRecord:
    with atomic_path(file) as tmp:
        try:
            df.to_parquet(tmp, index=False)
        except Exception as exc:
            raise ZoolensError(f"{file}: attributes cannot be stored as Parquet ({exc})") from None
    return _file_record(file)


class _lock:
    """The zoo's writer lock (a ``filelock.FileLock`` on ``.zoo.lock``)."""

    def __init__(self, path: Path):
        from filelock import FileLock

        self._lock = FileLock(str(Path(path) / LOCK_FILE), timeout=LOCK_TIMEOUT_S)
        self._path = path

    def __enter__(self) -> _lock:
        from filelock import Timeout

        try:
            self._lock.acquire()
        except Timeout:
            raise ZoolensError(
                f"{self._path}: zoo is locked by another writer for more than "
                f"{LOCK_TIMEOUT_S:.0f} s ({self._path / LOCK_FILE})"
            ) from None
        return self

    def __exit__(self, *exc: Any) -> None:
        self._lock.release()


def _sweep_leftovers(path: Path, manifest: Manifest) -> None:
    """Delete what a crashed writer left: temp files, and model files no manifest entry
    names. Called under the writer lock, where no other write can be in flight (every write
    to the zoo folder happens under the lock), so anything unreferenced is garbage."""
    known = {e.file for e in manifest.models.values()}
    for folder, prefix in ((path, ""), (path / MODELS_DIR, f"{MODELS_DIR}/")):
        if not folder.is_dir() or folder.is_symlink():
            continue
        for p in folder.iterdir():
            stale_temp = _TEMP_NAME.match(p.name) is not None
            orphan = (
                bool(prefix)
                and is_written_model_file_name(p.name)
                and f"{prefix}{p.name}" not in known
            )
            if (stale_temp or orphan) and _is_regular_file(p):
                with contextlib.suppress(OSError):
                    p.unlink()


# temp files are named by zoolens.atomic.temp_path_for: prefix, 32 hex digits (uuid4), '-', target
_TEMP_NAME = re.compile(re.escape(TEMP_PREFIX) + r"[0-9a-f]{32}-")


def _is_regular_file(file: Path) -> bool:
    """A regular file, not a symlink (lstat: a link is never followed)."""
    try:
        return stat.S_ISREG(os.lstat(file).st_mode)
    except OSError:
        return False


def _is_own_model_file(root: Path, rel: str) -> bool:
    """``rel`` is ``models/<name>`` with a name ``model_file_name`` produces, and it is a
    regular file (not a link) in the zoo's own ``models/`` folder: a file the zoo wrote."""
    folder, _, name = rel.partition("/")
    return (
        folder == MODELS_DIR
        and is_written_model_file_name(name)
        and not (root / MODELS_DIR).is_symlink()
        and _is_regular_file(root / rel)
    )


def _check_contained(root: Path, manifest: Mapping[str, Any], file: Path) -> None:
    """Every path the manifest names stays inside the zoo: a model's ``file`` is
    ``models/<name>`` and each key of ``files`` is ``<name>``, where ``<name>`` is one plain
    file name (no absolute path, no '..', no separator, not hidden) that is not a link out of
    its folder. ZooCorruptedError (one line naming the model and the path) otherwise."""
    real_root = os.path.realpath(root)
    models_dir = root / MODELS_DIR
    real_models = os.path.join(real_root, MODELS_DIR)
    if models_dir.is_symlink() and os.path.realpath(models_dir) != real_models:
        raise ZooCorruptedError(
            f"{file}: {models_dir} is a link to a folder outside the zoo; refusing to open this zoo"
        )
    models = manifest.get("models")
    for name, entry in models.items() if isinstance(models, dict) else ():
        rel = entry.get("file") if isinstance(entry, dict) else None
        folder, _, base = rel.partition("/") if isinstance(rel, str) else ("", "", "")
        _check_plain_file(
            models_dir,
            real_models,
            base if folder == MODELS_DIR else None,
            f"{file}: model {name!r}: file {rel!r}",
            f"the zoo's {MODELS_DIR}/",
        )
    files = manifest.get("files")
    for rel in files if isinstance(files, dict) else ():
        _check_plain_file(
            root,
            real_root,
            rel if rel != MANIFEST else None,
            f"{file}: files lists {rel!r}",
            "the zoo",
        )


def _check_plain_file(folder: Path, real_folder: str, base: Any, what: str, where: str) -> None:
    """``base`` is one plain file name in ``folder`` and, if a link, points into it."""
    if (
        not isinstance(base, str)
        or not base
        or base.startswith(".")
        or any(ch in base for ch in "/\\\0")
    ):
        raise ZooCorruptedError(
            f"{what}, which is not a file name inside {where} folder "
            "(absolute paths and '..' are refused); refusing to open this "
            "zoo"
        )
    link = folder / base
    if link.is_symlink() and os.path.dirname(os.path.realpath(link)) != real_folder:
        raise ZooCorruptedError(
            f"{what}, a link to {os.path.realpath(link)}, outside {where} "
            "folder; refusing to open this zoo"
        )


def _read_manifest(path: Path) -> Manifest:
    """The zoo's manifest, read and validated (``zoolens.zoo.manifest``): paths are checked
    to stay inside the zoo first, then every field against the schema."""
    file = path / MANIFEST
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ZoolensError(
            f"{path}: not a zoo (no {MANIFEST}; create one with "
            "`zoolens import ZOO FILE --create --labels LABELS`)"
        ) from None
    except (IsADirectoryError, UnicodeDecodeError) as exc:
        raise ZooCorruptedError(f"{file}: unreadable manifest ({exc})") from None
    try:
        manifest = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ZooCorruptedError(
            f"{file}: corrupted manifest ({exc.msg} at line {exc.lineno})"
        ) from None
    except RecursionError:
        raise ZooCorruptedError(f"{file}: corrupted manifest (nested too deeply)") from None
    if not isinstance(manifest, dict) or not {
        "format_version",
        "dataset",
        "split",
        "models",
    } <= set(manifest):
        raise ZooCorruptedError(
            f"{file}: not a zoolens manifest (missing format_version, dataset, split or models)"
        )
    version = manifest["format_version"]
    if type(version) is int and version > FORMAT_VERSION:
        raise ZoolensError(
            f"{file}: zoo format_version {version} is newer than this zoolens "
            f"supports ({FORMAT_VERSION}); upgrade zoolens"
        )
    _check_contained(path, manifest, file)
    return parse_manifest(manifest, file)


def _write_manifest(path: Path, manifest: Manifest) -> None:
    """Write zoo.json atomically; the long index list stays on one line (readable diffs).
    The data is validated against the schema first, so no invalid manifest is ever written."""
    data = manifest.to_json_dict()
    parse_manifest(data, path / MANIFEST)
    placeholder = "@@calibration_indices@@"
    split = dict(data["split"])
    indices = split["calibration_indices"]
    split["calibration_indices"] = placeholder
    text = json.dumps({**data, "split": split}, indent=2, ensure_ascii=False)
    text = text.replace(json.dumps(placeholder), json.dumps(indices, separators=(",", ":")), 1)
    atomic_write_bytes(path / MANIFEST, (text + "\n").encode("utf-8"))
