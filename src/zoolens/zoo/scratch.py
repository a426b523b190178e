"""Scratch and staging folders named by the process that owns them, swept once it is gone.

A folder named ``<prefix><pid>-<token>`` belongs to process ``pid``. A process killed with
SIGKILL cannot clean up after itself, so whoever next makes a folder with the same prefix
in the same place removes every such folder whose process no longer runs (a live owner's
folder is never touched; folders of another host sharing the disk are left alone only by
PID, so scratch space should be local, as TMPDIR is).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from pathlib import Path

STAGE_PREFIX = ".tmp-run-"


def owned_name(prefix: str, token: str) -> str:
    """``<prefix><this pid>-<token>``."""
    return f"{prefix}{os.getpid()}-{token}"


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (signal 0 checks without sending anything)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, it is just not ours
        return True
    return True


def sweep_dead(parent: Path, prefix: str) -> list[Path]:
    """Remove the ``<prefix><pid>-*`` folders in ``parent`` whose process is gone; returns
    them. Errors (a folder another sweeper removed first, no permission) are ignored."""
    pattern = re.compile(re.escape(prefix) + r"(\d+)-")
    removed: list[Path] = []
    try:
        entries = list(Path(parent).iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = pattern.match(entry.name)
        if match is None or pid_alive(int(match.group(1))):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
        elif entry.is_file():
            with contextlib.suppress(OSError):
                entry.unlink()
            removed.append(entry)
    return removed
