"""The zoo folder's fixed names and how its auxiliary files are written and recorded:
atomically, with their sha256, size and mtime.

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
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from zoolens.atomic import atomic_path
from zoolens.errors import ZoolensError
from zoolens.zoo.manifest import FileRecord

FORMAT_VERSION = 1
MANIFEST = "zoo.json"
LABELS_FILE = "labels.npy"
IDS_FILE = "example_ids.npy"
ATTRIBUTES_FILE = "attributes.parquet"
MODELS_DIR = "models"
LOCK_FILE = ".zoo.lock"
LOCK_TIMEOUT_S = 600.0


def sha256_file(path: Path) -> str:
    """The sha256 of a file, read in 4 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def file_record(file: Path) -> FileRecord:
    st = file.stat()
    return FileRecord(sha256=sha256_file(file), size=st.st_size, mtime_ns=st.st_mtime_ns)


def write_npy(file: Path, arr: np.ndarray) -> FileRecord:
    with atomic_path(file) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, arr, allow_pickle=False)
    return file_record(file)


def write_parquet(file: Path, df: Any) -> FileRecord:
    with atomic_path(file) as tmp:
        try:
            df.to_parquet(tmp, index=False)
        except Exception as exc:
            raise ZoolensError(f"{file}: attributes cannot be stored as Parquet ({exc})") from None
    return file_record(file)
