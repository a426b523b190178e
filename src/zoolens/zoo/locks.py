"""Writers and the zoo folder: the writer lock, the sweep of what a crashed writer left
(temp files, unreferenced model files), which files the zoo may delete (only its own), and
``Zoo.create`` leaving nothing behind when it fails."""

from __future__ import annotations

import contextlib
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoolens.atomic import TEMP_PREFIX
from zoolens.errors import ZoolensError
from zoolens.zoo._slug import is_written_model_file_name
from zoolens.zoo.layout import (
    ATTRIBUTES_FILE,
    IDS_FILE,
    LABELS_FILE,
    LOCK_FILE,
    LOCK_TIMEOUT_S,
    MANIFEST,
    MODELS_DIR,
)
from zoolens.zoo.manifest import Manifest


def nothing_left_on_failure(create: Any) -> Any:
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


class ZooLock:
    """The zoo's writer lock (a ``filelock.FileLock`` on ``.zoo.lock``)."""

    def __init__(self, path: Path):
        from filelock import FileLock

        self._lock = FileLock(str(Path(path) / LOCK_FILE), timeout=LOCK_TIMEOUT_S)
        self._path = path

    def __enter__(self) -> ZooLock:
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


def sweep_leftovers(path: Path, manifest: Manifest) -> None:
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
            if (stale_temp or orphan) and is_regular_file(p):
                with contextlib.suppress(OSError):
                    p.unlink()


# temp files are named by zoolens.atomic.temp_path_for: prefix, 32 hex digits (uuid4), '-', target
_TEMP_NAME = re.compile(re.escape(TEMP_PREFIX) + r"[0-9a-f]{32}-")


def is_regular_file(file: Path) -> bool:
    """A regular file, not a symlink (lstat: a link is never followed)."""
    try:
        return stat.S_ISREG(os.lstat(file).st_mode)
    except OSError:
        return False


def is_own_model_file(root: Path, rel: str) -> bool:
    """``rel`` is ``models/<name>`` with a name ``model_file_name`` produces, and it is a
    regular file (not a link) in the zoo's own ``models/`` folder: a file the zoo wrote."""
    folder, _, name = rel.partition("/")
    return (
        folder == MODELS_DIR
        and is_written_model_file_name(name)
        and not (root / MODELS_DIR).is_symlink()
        and is_regular_file(root / rel)
    )


def unlink_unreferenced(path: Path, manifest: Manifest, rel: str) -> None:
    """Delete the model file ``rel`` unless a manifest entry still points to it, and only
    when it is a file this zoo wrote (:func:`is_own_model_file`)."""
    if not any(e.file == rel for e in manifest.models.values()):
        if is_own_model_file(path, rel):
            with contextlib.suppress(OSError):
                (path / rel).unlink()


@dataclass
class Batch:
    """``Zoo.batch``'s state: the manifest being built, the model files written (removed
    if the batch fails) and the files of replaced models (removed once it is written)."""

    manifest: Manifest
    written: list[Path] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    changed: bool = False  # a model was added: the manifest is written at the end
