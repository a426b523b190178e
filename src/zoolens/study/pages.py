"""Page handling for greedy candidates a caller keeps on disk as memory maps (the Python
API takes any sequence of arrays): drop a map's resident pages after each use.

Touched pages of a shared ``np.memmap`` count in the process's RSS until they are dropped,
so a pool on disk would otherwise grow RSS to its full size (``analyze`` itself holds a
large pool lazily instead, ``study.greedy``). The selection
(``measure.ensemble.greedy_forward_selection``) calls its ``after_use`` hook with a
candidate's rows after each read; :func:`release_pages` is that hook.
"""

from __future__ import annotations

import mmap

import numpy as np


def memory_map(x: object) -> mmap.mmap | None:
    """The map behind ``x`` when ``x`` is (a view of) a shared ``np.memmap``, else None.

    Copy-on-write maps (mode "c") are left alone: dropping their pages would drop changes.
    """
    base = x
    while base is not None and not isinstance(base, np.memmap):
        base = getattr(base, "base", None)
    if base is None or base.mode == "c":
        return None
    region = getattr(base, "_mmap", None)
    return region if isinstance(region, mmap.mmap) else None


def release_pages(x: object) -> None:
    """Drop the resident pages of the map behind ``x`` (``madvise(MADV_DONTNEED)``; the data
    stay in the file and the page cache); nothing for an array in memory."""
    region = memory_map(x)
    if region is not None and hasattr(region, "madvise"):
        region.madvise(mmap.MADV_DONTNEED)
