"""Moved to :mod:`zoolens.atomic` (one crash-safe writer for the store, the tables and the
report); these names stay importable from here."""

from zoolens.atomic import (
    TEMP_PREFIX,
    atomic_path,
    atomic_write_bytes,
    atomic_write_with,
    fsync_dir,
    fsync_file,
    temp_path_for,
)

__all__ = [
    "TEMP_PREFIX",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_with",
    "fsync_dir",
    "fsync_file",
    "temp_path_for",
]
