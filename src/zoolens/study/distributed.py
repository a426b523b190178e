"""``zoolens analyze --ray``: the evaluation pass's example chunks and the per-model
temperature fits as Ray tasks (with the reading of the models' predictions and the
formatting of large CSV tables), with the conventions of ``zoolens collect --ray``
(``collect.distributed``): ``ray.init(address)`` (None: a local cluster, ``auto`` /
``RAY_ADDRESS`` / ``ray://head:10001``: an existing one), one CPU per task, retried on worker
or node failure and on transient errors (OSError; bad input, ZoolensError, is reported at
once), one-line errors, the cluster shut down afterwards when this call started it.

How the work is split: a chunk task (``study.stream.chunk_task``) reads its block of
evaluation examples for every model (the fused pass per model, the pair ensembles of every
pair on those examples, majority vote, interpolation curves) and returns that chunk's counts
and its pairs' ensemble correctness, one bit per pair and example; a fit task
(``study.inputs.fit_task``) reads one model's calibration rows; a predictions task
(``study.inputs.predictions_task``) a group of models' top classes; a CSV task
(``study.tables.csv_rows``) formats a block of a large table's rows (pairs.csv at 1,000
models: 499,500 rows), which the driver writes in order; a headline task
(``study.headline.spearman_block``) takes Spearman's rho on a block of resamples. The driver merges the chunks
in chunk order (``study.stream.merge_chunk``, holding a finished chunk until the ones before
it arrive); then the pairs' bootstrap runs the same way, one task per block of pairs
(``study.pairblocks.pair_block``: R, the bits and the resamples put once), merged in block
order, so every table is bit-identical to the local run.
The default interpolation pair's curves and greedy selection run on the driver.

This module only runs tasks: the task bodies live with the stage they belong to
(``study.stream``, ``study.inputs``, ``study.pairblocks``, ``study.tables``,
``study.headline``); the stages import this module and pass them in, so the dependency
points one way.

Every node must see the zoo at the same path (a shared filesystem): tasks reopen it by path
(``Zoo.open``), nothing of it travels through the object store except the analysis context
(correctness matrix, bootstrap weights: a few MB to a few hundred MB, put once).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from zoolens.errors import ZoolensError
from zoolens.progress import info

MAX_RETRIES = 3


def _failed(what: str, exc: BaseException) -> ZoolensError:
    inner = getattr(exc, "cause", None)
    inner = inner if isinstance(inner, BaseException) else exc
    if isinstance(inner, ZoolensError):
        return inner
    return ZoolensError(
        f"{what} failed after {MAX_RETRIES} retries ({type(inner).__name__}: "
        f"{str(inner).splitlines()[0] if str(inner) else ''})"
    )


_ZOOS: dict[str, Any] = {}  # per worker process: zoos opened by path


def worker_zoo(path: str) -> Any:
    """The zoo at ``path``, opened once per process (a Ray worker reopens it by path)."""
    zoo = _ZOOS.get(path)
    if zoo is None:
        from zoolens.zoo.store import Zoo

        _ZOOS.clear()
        zoo = _ZOOS[path] = Zoo.open(path)
    return zoo


@contextlib.contextmanager
def ray_session(address: str | None) -> Iterator[None]:
    """Ray started (or reached) once for a whole analysis and shut down at its end when
    this call started it: the stages' task runners below then find it running, instead of
    starting and stopping a local cluster each (seconds apiece)."""
    from zoolens.collect.distributed import import_ray, start_ray  # Ray's conventions

    ray = import_ray()
    started = start_ray(ray, address)
    try:
        yield
    finally:
        if started:
            ray.shutdown()


def run_chunks_ray(
    chunk_task: Callable[[Any, int, int], Any],
    ctx: Any,
    bounds: Sequence[tuple[int, int]],
    address: str | None,
    what: str = "evaluation pass",
    unit: str = "evaluation examples",
) -> Iterator[Any]:
    """Yield ``chunk_task(ctx, start, stop)`` of every chunk in chunk order, computed as Ray
    tasks (``ctx`` put in the object store once). ``what`` / ``unit`` name the work and its
    chunks' items in messages (the pairs' bootstrap runs its blocks of pairs here too)."""
    from zoolens.collect.distributed import import_ray, start_ray  # Ray's conventions

    ray = import_ray()
    started = start_ray(ray, address)
    pending: dict[Any, int] = {}
    try:
        remote = ray.remote(chunk_task).options(
            num_cpus=1, max_retries=MAX_RETRIES, retry_exceptions=[OSError]
        )
        ctx_ref = ray.put(ctx)
        # At most two tasks per CPU in flight: finished chunks wait for their turn in
        # memory, so the number in flight bounds the driver's memory.
        limit = max(2, 2 * int(ray.cluster_resources().get("CPU", 1)))
        info(f"{what}: {len(bounds)} chunk task(s) on Ray")
        done: dict[int, Any] = {}
        submitted = next_out = 0
        while next_out < len(bounds):
            while submitted < len(bounds) and len(pending) + len(done) < limit:
                start, stop = bounds[submitted]
                pending[remote.remote(ctx_ref, start, stop)] = submitted
                submitted += 1
            if next_out not in done:
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    index = pending.pop(ref)
                    try:
                        done[index] = ray.get(ref)
                    except Exception as exc:
                        # The other tasks are left to finish, never cancelled: a cancel that
                        # races a task's completion aborts the driver in Ray's core worker
                        # ("Tried to complete task that was not pending", ray-project/ray
                        # #54846; seen here with --ray). Their results are dropped, and a
                        # cluster this call started is shut down below.
                        start, stop = bounds[index]
                        raise _failed(
                            f"{what}: Ray task for {unit} {start}..{stop - 1}", exc
                        ) from None
                continue
            yield done.pop(next_out)
            next_out += 1
    finally:
        # a consumer that stops early (its own error): the tasks in flight finish and are
        # dropped (not cancelled, see above); a cluster this call started is shut down
        if started:
            ray.shutdown()


def map_tasks_ray(
    task: Callable[..., Any],
    items: Sequence[Any],
    address: str | None,
    *,
    shared: Sequence[Any] = (),
    announce: str,
    what: Callable[[Any], str],
) -> list[Any]:
    """``[task(item, *shared) for item in items]``, one Ray task per item, in the order of
    ``items`` (``shared`` put in the object store once). ``announce`` is logged when the
    tasks are submitted; ``what(item)`` names a failed task in its error line."""
    from zoolens.collect.distributed import import_ray, start_ray  # Ray's conventions

    ray = import_ray()
    started = start_ray(ray, address)
    try:
        remote = ray.remote(task).options(
            num_cpus=1, max_retries=MAX_RETRIES, retry_exceptions=[OSError]
        )
        shared_refs = [ray.put(value) for value in shared]
        refs = [remote.remote(item, *shared_refs) for item in items]
        info(announce)
        results = []
        for item, ref in zip(items, refs):
            try:
                results.append(ray.get(ref))
            except Exception as exc:
                # the others finish and are dropped, never cancelled (run_chunks_ray says why)
                raise _failed(what(item), exc) from None
        return results
    finally:
        if started:
            ray.shutdown()
