"""Crash-safe file writes: write a temp file in the same folder, fsync, then os.replace.

A reader (or a crash) therefore only ever sees the old file or the complete new one, never a
half-written file: ``os.replace`` is atomic on POSIX and Windows when source and target are
on the same file system, which the same-folder temp file guarantees.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from zoolens.errors import naming_path

TEMP_PREFIX = ".tmp-"


def temp_path_for(target: Path) -> Path:
    """A fresh, hidden temp path beside ``target`` (same folder, so the rename is atomic)."""
    return target.parent / f"{TEMP_PREFIX}{uuid.uuid4().hex}-{target.name}"


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Persist a rename: fsync the folder entry (a no-op where the OS does not allow it)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temp path to write; on success fsync it and rename it onto ``target``.

    On any exception the temp file is removed and ``target`` is untouched; an OSError that
    names no file (a full disk met by a library's writer) or only the temp file (a folder
    that cannot be written) is raised naming ``target``.
    """
    target = Path(target)
    tmp = temp_path_for(target)
    try:
        yield tmp
        fsync_file(tmp)
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError) and exc.filename in (None, str(tmp)):  # say which file
            raise naming_path(OSError(exc.errno, exc.strerror or str(exc)), target) from None
        raise
    fsync_dir(target.parent)


def atomic_write_bytes(target: Path, data: bytes) -> None:
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)


def atomic_write_with(target: Path, writer: Callable[[Path], object]) -> None:
    """Call ``writer(temp_path)`` (its return value is ignored) and move the result onto
    ``target`` atomically."""
    with atomic_path(target) as tmp:
        writer(tmp)
