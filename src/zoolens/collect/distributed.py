"""Ray fan-out: each (model, shard) job of ``zoolens collect --ray`` runs as a Ray task.

A task rebuilds the model from its picklable ``ModelEntry`` (seeded, so random-init weights
are the same in every process; the built model is cached per worker process, so a worker
that gets several shards of one model builds it once), re-scans the image folder (which every
node must see at the same path), runs exactly the shard's batches with
``batches.run_batches`` and returns the arrays. The driver writes each result as the same
shard file a local run writes, as results arrive, so:

- the assembled zoo is the local run's: same shard layout, same batches, and — with the batch
  size and ``torch`` thread count pinned (``--threads``; Ray workers default to one thread
  per task CPU) on the same kind of device — the same logits (within 1e-5 relative) and top-1;
- an interrupted Ray run resumes like a local one (finished shards are not resubmitted);
- tasks request one GPU each when the cluster has GPUs (unless ``--device cpu``), are retried
  on worker or node failure (``max_retries``) and on transient errors (OSError,
  RuntimeError; bad input — ZoolensError — is reported at once, not retried).

Ray is optional: ``pip install 'zoolens[ray]'``.
"""

from __future__ import annotations

import dataclasses
import pickle
from typing import Any

from zoolens.collect.batches import RunOptions, run_batches
from zoolens.collect.images import ImageFolder
from zoolens.collect.specs import build_preprocess, load_model
from zoolens.errors import ZoolensError
from zoolens.progress import info, progress_bar

MAX_RETRIES = 3

_CACHE: dict[bytes, Any] = {}  # per worker process: the last model built


def import_ray() -> Any:
    """The ray module (ZoolensError when it is not installed)."""
    try:
        import ray
    except ImportError:
        raise ZoolensError(
            "--ray needs Ray, which is not installed: pip install 'zoolens[ray]'"
        ) from None
    return ray


def start_ray(ray: Any, address: str | None) -> bool:
    """Connect (or start a local cluster); True when this call started it (and so shuts it
    down afterwards). Shared by ``collect --ray`` and ``analyze --ray``."""
    if ray.is_initialized():
        return False
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    except Exception as exc:
        raise ZoolensError(
            f"--ray: cannot start or reach a Ray cluster at "
            f"{address or 'RAY_ADDRESS / local'} ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''})"
        ) from None
    return True


def shard_job(
    entry: Any,
    root: str,
    classes: list[str],
    start: int,
    stop: int,
    options: dict[str, Any],
    pretrained: bool,
) -> dict[str, Any]:
    """Run one shard of one model (the body of a Ray task; also callable directly)."""
    opts = RunOptions(**options)
    folder = ImageFolder(root, classes=classes)
    key = pickle.dumps((entry, pretrained, tuple(classes)))
    loaded = _CACHE.get(key)
    if loaded is None:
        _CACHE.clear()
        loaded = load_model(entry, pretrained=pretrained, class_names=classes)
        _CACHE[key] = loaded
    transform = loaded.transform or build_preprocess(None, entry.spec)
    result: dict[str, Any] = {}
    run_batches(
        loaded,
        folder.with_transform(transform),
        [(start, stop)],
        opts,
        on_shard=lambda s, e, arrays: result.update(arrays),
    )
    return {"start": start, "stop": stop, "arrays": result, "card": loaded.card}


def _unwrap(exc: BaseException) -> BaseException:
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, BaseException) else exc


def run_into_store_ray(
    entry: Any,
    folder: Any,
    store: Any,
    options: Any,
    *,
    pretrained: bool,
    address: str | None = None,
) -> None:
    """Compute the store's missing shards as Ray tasks and write them as they finish."""
    ray = import_ray()
    started = start_ray(ray, address)
    try:
        gpus = float(ray.cluster_resources().get("GPU", 0))
        use_gpu = gpus > 0 and str(options.device or "auto") not in ("cpu",)
        remote = ray.remote(shard_job).options(
            num_cpus=1,
            num_gpus=1 if use_gpu else 0,
            max_retries=MAX_RETRIES,
            retry_exceptions=[OSError, RuntimeError],
        )
        opts = dataclasses.asdict(options)
        opts["num_workers"] = 0  # one process per task; the cluster provides the parallelism
        opts["device"] = (
            "cuda" if use_gpu else ("cpu" if options.device in (None, "auto") else options.device)
        )
        # decided here, not per worker, so every shard of a model uses the same precision
        opts["amp"] = options.amp if options.amp is not None else use_gpu
        missing = store.missing_ranges()
        pending = {
            remote.remote(entry, str(folder.root), list(folder.classes), s, e, opts, pretrained): (
                s,
                e,
            )
            for s, e in missing
        }
        info(f"{entry.name}: {len(pending)} shard task(s) on Ray ({'GPU' if use_gpu else 'CPU'})")
        total = store.num_examples
        todo = sum(e - s for s, e in missing)
        with progress_bar(total, entry.name, unit="img") as advance:
            advance(total - todo)
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    s, e = pending.pop(ref)
                    try:
                        out = ray.get(ref)
                    except Exception as exc:
                        inner = _unwrap(exc)
                        # The other shards finish and are dropped, never cancelled: a cancel
                        # that races a task's completion aborts the driver in Ray's core
                        # worker (ray-project/ray #54846).
                        if isinstance(inner, ZoolensError):
                            raise inner from None
                        raise ZoolensError(
                            f"model {entry.name!r}: Ray task for examples "
                            f"{s}..{e - 1} failed after {MAX_RETRIES} retries "
                            f"({type(inner).__name__}: "
                            f"{str(inner).splitlines()[0] if str(inner) else ''})"
                        ) from None
                    store.write(out["start"], out["stop"], out["arrays"], out["card"])
                    advance(e - s)
    finally:
        if started:
            ray.shutdown()
