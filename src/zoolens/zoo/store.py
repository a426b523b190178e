"""The zoo: one labelled evaluation set plus the per-example outputs of many models.

On disk a zoo is a folder (docs/design.md sec. 2; the names in ``zoo.layout``). The store's
helpers: ``zoo.manifest`` / ``zoo.manifest_io`` (the manifest's schema, read and write),
``zoo.integrity`` (hashes, ``verify``), ``zoo.locks`` (the writer lock, sweeps),
``zoo.validate`` (checks of what ``create`` / ``add`` are given).

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
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from zoolens.atomic import fsync_dir, fsync_file, temp_path_for
from zoolens.errors import ZooCorruptedError, ZoolensError, naming_path
from zoolens.zoo import layout
from zoolens.zoo._slug import model_file_name
from zoolens.zoo.cards import ModelCard, to_card
from zoolens.zoo.classes import MAX_CLASS_NAME_CHARS, check_confusable, check_text
from zoolens.zoo.integrity import StoreIntegrity
from zoolens.zoo.layout import (
    ATTRIBUTES_FILE,
    FORMAT_VERSION,
    IDS_FILE,
    LABELS_FILE,
    LOCK_FILE,
    MANIFEST,
    MODELS_DIR,
    now,
)
from zoolens.zoo.layout import write_npy as _write_npy
from zoolens.zoo.layout import write_parquet as _write_parquet
from zoolens.zoo.locks import (
    Batch as _Batch,
    ZooLock,
    nothing_left_on_failure,
    sweep_leftovers,
    unlink_unreferenced,
)
from zoolens.zoo.manifest import Manifest, ModelEntry, parse_manifest, parse_model_entry
from zoolens.zoo.manifest_io import read_manifest as _read_manifest
from zoolens.zoo.manifest_io import write_manifest as _write_manifest
from zoolens.zoo.outputs import (
    ABSTAIN,
    DTYPES,
    KINDS,
    LOG_PROB_FLOOR,
    PROB_FLOOR,
    ZooWarning,
    prepare_float,
    prepare_outputs,
    row_chunks,
    topk_to_log_probs,
)
from zoolens.zoo.tensorfile import (
    argmax_rows,
    as_float32,
    memmap_tensor,
    read_entries,
    read_header,
    read_rows,
    write_tensors,
)
from zoolens.zoo.validate import (
    row_index,
    unlabelled_classes,
    unlabelled_size,
    validate_attributes,
    validate_groups,
    validate_ids,
    validate_labels,
    validate_name,
    where_model,
    check_no_nfc_twin,
    one_output_kind,
)

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


class Zoo(StoreIntegrity):
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
        self._batch: _Batch | None = None  # inside batch(): the manifest being built

    # ----------------------------------------------------------------------------- creation

    @classmethod
    @nothing_left_on_failure
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
            given = validate_labels(labels, class_names, num_classes, path)[0]
            if given.shape != zoo.labels.shape or not np.array_equal(given, zoo.labels):
                raise ZoolensError(f"{path}: a zoo with different labels already exists here")
            return zoo
        if path.exists() and not path.is_dir():
            raise ZoolensError(f"{path}: exists and is not a folder")
        if path.is_dir() and any(p.name != LOCK_FILE for p in path.iterdir()):
            raise ZoolensError(f"{path}: folder is not empty and is not a zoo (no {MANIFEST})")

        lab: np.ndarray | None
        if labels is None:
            n_classes = unlabelled_classes(class_names, num_classes, path)
            n = unlabelled_size(num_examples, example_ids, path)
            lab = None
            calibration_fraction = 0.0  # a calibration split needs labels
        else:
            lab, n_classes = validate_labels(labels, class_names, num_classes, path)
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
        ids = validate_ids(example_ids, n, path) if example_ids is not None else None
        groups = validate_groups(class_groups or {}, n_classes, path)
        aliases = {str(k): int(v) for k, v in (class_aliases or {}).items()}
        if any(not 0 <= v < n_classes for v in aliases.values()):
            raise ZoolensError(f"{path}: a class alias points outside [0, {n_classes})")
        attrs = validate_attributes(attributes, n, path) if attributes is not None else None

        path.mkdir(parents=True, exist_ok=True)
        (path / MODELS_DIR).mkdir(exist_ok=True)
        with ZooLock(path):
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
                    "created_at": now(),
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
        if self._batch is not None:
            raise ZoolensError(f"{self._path}: cannot reload inside Zoo.batch()")
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
        clean = validate_groups(groups, self.num_classes, self._path)

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
        ids = validate_ids(example_ids, self.num_examples, self._path)

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
        where = where_model(name, source_file)
        validate_name(name, where)
        if dtype not in DTYPES:
            raise ZoolensError(f"{where}: dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
        check_no_nfc_twin(name, self._manifest.models, where)
        if not replace and name in self._manifest.models:
            raise ZoolensError(
                f"{where}: a model with this name is already in the zoo "
                "(use replace=True / --replace)"
            )
        given_kind, value = one_output_kind(
            where,
            logits=logits,
            probs=probs,
            log_probs=log_probs,
            decisions=decisions,
            counts=counts,
            topk=None
            if topk_indices is None and topk_values is None
            else (topk_indices, topk_values),
        )
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
            unlink_unreferenced(self._path, self._manifest, rel)

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
        index = row_index(rows, self.num_examples, name)
        if kind == "topk":
            values = np.asarray(self._read(name, "topk_values", index), dtype=np.float32)
            indices = np.asarray(self._read(name, "topk_indices", index), dtype=np.int64)
            return topk_to_log_probs(values, indices, self.num_classes)
        # _read copies: callers get a plain, writable array, never a view of the file
        return as_float32(self._read(name, kind, index))

    def stored_scores(self, name: str, rows: Any = None) -> np.ndarray:
        """Like :meth:`scores`, but logits / log-probabilities come in the dtype they are
        stored in (float16 stays float16: half the bytes to copy, for callers that convert
        once themselves, such as ``measure.fused``); top-k models as :meth:`scores`."""
        kind = self.kind(name)
        if kind in ("decisions", "topk"):
            return self.scores(name, rows)
        return self._read(name, kind, row_index(rows, self.num_examples, name))

    def stored_entries(self, name: str, rows: np.ndarray, classes: np.ndarray) -> np.ndarray:
        """Single entries ``(rows[j], classes[j])`` of :meth:`stored_scores` (stored dtype),
        for callers that need a few scattered entries rather than whole rows (greedy's lazy
        candidates; ``tensorfile.read_entries``)."""
        index = row_index(np.asarray(rows), self.num_examples, name)
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
            index = np.where(index < 0, index + self.num_examples, index)
            return read_entries(*self._locate(name, kind), index, cols)
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
                pred[s] = argmax_rows(block)
        self._predictions[name] = (file, pred)
        return pred.copy()

    def embeddings(self, name: str, rows: Any = None) -> np.ndarray:
        """(n, D) float32 pre-logit embeddings; ZoolensError if the model has none."""
        if not self.has_embeddings(name):
            raise ZoolensError(f"model {name!r} has no embeddings in {self._path}")
        return np.asarray(
            self._read(name, "embeddings", row_index(rows, self.num_examples, name)),
            dtype=np.float32,
        )

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
        index = row_index(rows, self.num_examples, name)
        pred, labels = pred[index], self.labels[index]
        if self.is_multilabel:  # an abstention (-1) is never right
            right = (pred >= 0) & (labels[np.arange(len(pred)), np.maximum(pred, 0)] > 0)
        else:
            right = pred == labels
        return float(np.mean(right)) if len(right) else float("nan")

    def _tensor(self, name: str, tensor: str) -> np.ndarray:
        """A read-only memory map of one stored tensor (whole-tensor access)."""
        return memmap_tensor(*self._locate(name, tensor))

    def _read(self, name: str, tensor: str, index: Any) -> np.ndarray:
        """Rows ``index`` (a slice or an index array from ``zoo.validate.row_index``) of one stored
        tensor, copied with positioned reads (``tensorfile.read_rows``; thin rows over a long
        span from one map of the span)."""
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
        try:  # one stat per read: reads of a few rows are made by the thousand
            st = self._check_file(file, entry, name)
        except ZooCorruptedError:
            if file.exists():
                raise
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
        batch = self._batch
        with contextlib.nullcontext() if batch else ZooLock(self._path):  # batch: held
            manifest = batch.manifest if batch else _read_manifest(self._path)
            if not batch:
                sweep_leftovers(self._path, manifest)
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
                sha = layout.sha256_file(tmp)
                rel = f"{MODELS_DIR}/{model_file_name(name, sha)}"
                final = self._path / rel
                same_file = old is not None and old.file == rel
                if same_file:
                    tmp.unlink()  # identical content under the same name: nothing to write
                else:
                    if batch and not final.exists():  # a file the batch creates (rollback)
                        batch.written.append(final)
                    os.replace(tmp, final)
                    fsync_dir(models_dir)
                st = final.stat()
                entry.update(
                    {
                        "file": rel,
                        "sha256": sha,
                        "size": st.st_size,
                        "mtime_ns": st.st_mtime_ns,
                        "added_at": now(),
                    }
                )
                # a replaced model keeps its position
                manifest.models[name] = parse_model_entry(entry, name, self._path / MANIFEST)
                if batch:  # the manifest is written once, when the batch ends (batch())
                    batch.changed = True
                    batch.replaced += [] if old is None or same_file else [old.file]
                    old = None
                else:
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
                unlink_unreferenced(self._path, manifest, old.file)

    @contextlib.contextmanager
    def batch(self) -> Iterator[Zoo]:
        """``with zoo.batch(): zoo.add(...) ...`` adds many models with one manifest write
        (each add otherwise rewrites the whole manifest: a hub's 10,000 models took most of
        an hour). The block's adds write their files at once; the manifest is written when
        it ends, with all of them, or, when it raises, not at all (its files are removed).
        The writer lock is held throughout; other changes are refused inside."""
        if self._batch is not None:
            raise ZoolensError(f"{self._path}: already inside Zoo.batch()")
        with ZooLock(self._path):
            manifest = _read_manifest(self._path)
            sweep_leftovers(self._path, manifest)
            batch = self._batch = _Batch(manifest)
            self._manifest = manifest  # reads inside the block see its models
            try:
                yield self
                if batch.changed:
                    _write_manifest(self._path, manifest)
            except BaseException:
                for file in batch.written:
                    with contextlib.suppress(OSError):
                        file.unlink()
                self._manifest = _read_manifest(self._path)
                raise
            finally:
                self._batch = None
        self._manifest = manifest
        for rel in batch.replaced:
            unlink_unreferenced(self._path, manifest, rel)

    def _modify(self, change: Callable[[Manifest], None]) -> None:
        """Apply ``change(manifest)`` under the lock to a freshly read manifest; write it."""
        if self._batch is not None:
            raise ZoolensError(f"{self._path}: only add() may change the zoo inside Zoo.batch()")
        with ZooLock(self._path):
            manifest = _read_manifest(self._path)
            sweep_leftovers(self._path, manifest)
            change(manifest)
            _write_manifest(self._path, manifest)
            self._manifest = manifest
