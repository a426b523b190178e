"""Running one model over batches of a dataset (``zoolens collect``'s inner loop).

The batches are exactly the chunks of ``batch_size`` inside each shard, in order, so the
numbers are the same whether a shard runs locally (``collect.runner``) or as a Ray task
(``collect.distributed``); both import this module, neither imports the other's caller.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from zoolens.collect.images import UndecodableImage
from zoolens.errors import ZoolensError


@dataclasses.dataclass
class RunOptions:
    """How to run: batch and shard size, device, workers, precision, threads, strictness."""

    batch_size: int = 64
    shard_size: int | None = None  # default: 16 batches
    device: str | None = None  # None: auto (cuda, mps, cpu)
    num_workers: int = 0
    amp: bool | None = None  # None: on for cuda
    threads: int | None = None  # torch.set_num_threads (pin it for identical results)
    strict: bool = False
    resume: bool = True

    def effective_shard_size(self) -> int:
        if self.batch_size < 1:
            raise ZoolensError(f"--batch-size must be >= 1, got {self.batch_size}")
        size = self.shard_size or 16 * self.batch_size
        if size < 1:
            raise ZoolensError(f"shard size must be >= 1, got {size}")
        # Shards hold whole batches, so batches never straddle two shards.
        return -(-size // self.batch_size) * self.batch_size


def select_device(device: str | None = None):
    """``torch.device``: the given one, or cuda / mps / cpu, whichever is available first."""
    import torch

    if device in (None, "", "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise ZoolensError(f"--device {device!r}: {exc}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ZoolensError(f"--device {device}: CUDA is not available on this machine")
    return dev


# ---------------------------------------------------------------- dataset plumbing


class _Items:
    """Dataset view yielding ``(position, tensor or None, reason)``; decode errors become data."""

    def __init__(self, dataset: Any):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        try:
            item = self.dataset[index]
        except UndecodableImage as exc:
            return index, None, str(exc)
        if isinstance(item, (tuple, list)):
            item = item[0]  # (image, label) datasets: the label is not the model's business
        return index, item, ""


def _collate(items):
    import torch

    positions = [i for i, x, _ in items if x is not None]
    tensors = [
        x if isinstance(x, torch.Tensor) else torch.as_tensor(x)
        for _, x, _ in items
        if x is not None
    ]
    bad = {i: reason for i, x, reason in items if x is None}
    batch = torch.stack(tensors) if tensors else None
    return torch.as_tensor(positions, dtype=torch.int64), batch, bad


def _batches(ranges: Sequence[tuple[int, int]], batch_size: int) -> list[list[int]]:
    return [
        list(range(b, min(b + batch_size, stop)))
        for start, stop in ranges
        for b in range(start, stop, batch_size)
    ]


#: The most bytes one batch of preprocessed images may take (float32): 64 MiB is 111 images
#: of 3 x 224 x 224, 5 of 3 x 1,024 x 1,024 (the largest preprocess side). The network's
#: activations are a multiple of the batch on top: torch itself takes ~3.2 GB of a 4 GiB
#: address space, and a batch of 13 images of 1,024 px through a four-channel convolution
#: (160 MiB) no longer fit. A failed allocation is one line naming the model anyway
#: (``runner.allocation_failures``).
MAX_BATCH_BYTES = 64 << 20


def fit_batch_size(
    dataset: Any, ranges: Sequence[tuple[int, int]], batch_size: int, peek: int = 64
) -> int:
    """``batch_size``, shrunk so that a batch of ``dataset``'s preprocessed images (the size
    of the first that decodes among the first ``peek`` of ``ranges``) takes at most
    MAX_BATCH_BYTES; the results are the same (eval mode), only the batches are smaller."""
    from itertools import islice

    import torch

    positions = (i for start, stop in ranges for i in range(start, stop))
    for index in islice(positions, peek):
        try:
            item = dataset[index]
        except UndecodableImage:
            continue
        item = item[0] if isinstance(item, (tuple, list)) else item
        tensor = torch.as_tensor(item)
        per_image = max(1, tensor.numel() * tensor.element_size())
        return max(1, min(int(batch_size), MAX_BATCH_BYTES // per_image))
    return int(batch_size)


def _to_numpy(t) -> np.ndarray:
    return t.detach().float().cpu().numpy().astype(np.float32, copy=False)


def run_batches(
    loaded: Any,
    dataset: Any,
    ranges: Sequence[tuple[int, int]],
    options: RunOptions,
    device: Any = None,
    on_shard: Callable[[int, int, dict[str, Any]], None] | None = None,
    on_batch: Callable[[int], None] | None = None,
    timings: list[tuple[int, float]] | None = None,
) -> None:
    """Run ``loaded`` over the shards ``ranges`` of ``dataset``, calling ``on_shard(start, stop,
    arrays)`` as each shard completes. ``arrays``: indices, logits, embeddings (or None), skipped.

    The model is moved to ``device`` and put in eval mode; batches are exactly the chunks of
    ``batch_size`` inside each shard, in order.
    """
    import torch
    from torch.utils.data import DataLoader

    if options.threads:
        torch.set_num_threads(int(options.threads))
    device = device if device is not None else select_device(options.device)
    module = getattr(loaded, "module", None)
    if module is not None and hasattr(module, "to"):
        module.to(device)
        module.eval()
    amp = options.amp if options.amp is not None else device.type == "cuda"
    batches = _batches(ranges, fit_batch_size(dataset, ranges, options.batch_size))
    if not batches:
        return
    loader: DataLoader[Any] = DataLoader(
        # torch's stub types the dataset as Dataset[T]; any map-style object works
        _Items(dataset),  # type: ignore[arg-type]
        batch_sampler=batches,
        collate_fn=_collate,
        num_workers=options.num_workers,
        pin_memory=device.type == "cuda",
        persistent_workers=False,
    )
    bounds = iter(ranges)
    start, stop = next(bounds)
    acc: dict[str, list] = {"indices": [], "logits": [], "embeddings": []}
    skipped: dict[int, str] = {}
    with torch.inference_mode():
        for positions, batch, bad in loader:
            if bad and options.strict:
                first = min(bad)
                raise ZoolensError(f"{bad[first]} (--strict; drop --strict to skip such images)")
            skipped.update(bad)
            if batch is not None:
                batch = batch.to(device, non_blocking=True)
                began = time.perf_counter()
                if amp:
                    dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
                    with torch.autocast(device_type=device.type, dtype=dtype):
                        logits, emb = loaded.forward(batch)
                else:
                    logits, emb = loaded.forward(batch)
                if timings is not None:  # (images, seconds) of the forward pass: the cost's latency
                    if device.type == "cuda":
                        torch.cuda.synchronize(device)
                    timings.append((int(batch.shape[0]), time.perf_counter() - began))
                if logits.ndim != 2 or logits.shape[0] != batch.shape[0]:
                    raise ZoolensError(
                        f"model {getattr(loaded, 'name', '?')}: logits must be "
                        f"(batch, classes), got {tuple(logits.shape)}"
                    )
                acc["indices"].append(positions.numpy())
                acc["logits"].append(_to_numpy(logits))
                if emb is not None:
                    acc["embeddings"].append(_to_numpy(emb.reshape(emb.shape[0], -1)))
            n_batch = len(positions) + len(bad)
            if on_batch is not None:
                on_batch(n_batch)
            last = int(positions.max()) if len(positions) else -1
            last = max([last, *bad.keys()])
            if last == stop - 1:
                arrays = {
                    "indices": (
                        np.concatenate(acc["indices"]) if acc["indices"] else np.zeros(0, np.int64)
                    ),
                    "logits": np.concatenate(acc["logits"]) if acc["logits"] else None,
                    "embeddings": (
                        np.concatenate(acc["embeddings"]) if acc["embeddings"] else None
                    ),
                    "skipped": {k: v for k, v in skipped.items() if start <= k < stop},
                }
                if on_shard is not None:
                    on_shard(start, stop, arrays)
                acc = {"indices": [], "logits": [], "embeddings": []}
                skipped = {}
                nxt = next(bounds, None)
                if nxt is None:
                    break
                start, stop = nxt
