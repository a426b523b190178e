"""Per-model work in parallel threads (the evaluation pass, temperature fits).

Each model's kernels (``measure.fused``, ``measure.calibration``: torch's when installed,
numpy's otherwise) run on one core with torch's intra-op threads set to 1, and models run
side by side in a thread pool (torch and numpy release the GIL in their kernels). On a busy
machine this degrades gracefully: a thread that does not get a core delays its own model,
instead of every operation waiting at an intra-op thread barrier. Results do not depend on
the number of threads (each model's arithmetic is the same; results are written per model).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from zoolens.errors import optional_torch


def default_threads() -> int:
    """Threads for per-model work: the cores this process may use (``os.sched_getaffinity``),
    capped by ``OMP_NUM_THREADS`` when set (the user's or the benchmark's thread limit)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    limit = os.environ.get("OMP_NUM_THREADS", "")
    return max(1, min(cores, int(limit))) if limit.isdigit() and int(limit) > 0 else cores


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """torch's intra-op threads set to 1 meanwhile (restored after): ``analyze`` runs its
    torch kernels one model per core (:func:`model_workers`) or on the driver alone (greedy,
    interpolation), never as threads that wait on each other at every operation — on a busy
    machine that made the greedy stage several times slower."""
    torch = optional_torch()
    if torch is None:  # numpy's kernels here are single-threaded already
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@contextlib.contextmanager
def model_workers(threads: int | None = None) -> Iterator[ThreadPoolExecutor]:
    """A pool of ``threads`` threads (default :func:`default_threads`) for per-model work,
    with torch's own intra-op threads set to 1 meanwhile: each model's fused pass runs on
    one core, the models run side by side (the kernels release the GIL), and a busy machine
    slows the pool down instead of stalling every operation at a thread barrier."""
    with one_torch_thread(), ThreadPoolExecutor(max_workers=threads or default_threads()) as pool:
        yield pool
