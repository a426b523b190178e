"""Inference cost of a built model: parameters, multiply-accumulates, measured latency.

- parameters: ``sum(p.numel())`` over the module's parameters (buffers such as BatchNorm
  statistics are not parameters);
- multiply-accumulates (MACs) for one example: ``torch.utils.flop_counter.FlopCounterMode``
  counts the FLOPs of matrix products and convolutions (2 per multiply-accumulate) while the
  model runs on one preprocessed example; MACs = FLOPs / 2. Element-wise work (batch norm,
  activations, pooling, additions) is not counted, as in the usual MAC tables (He et al.
  2016, Table 6 lists FLOPs = multiply-adds of the convolutions and the classifier);
- latency: wall time per example of a forward pass over a batch of ``batch_size`` real
  examples on the collecting device (the card records batch size and device, and the number
  depends on the machine): the median over the collection run's own full batches after the
  first (a warm-up), so measuring costs nothing extra; when the run had fewer than three
  full batches (a small folder, a resumed or Ray run), the median of ``repeats`` timed
  passes over one batch after one warm-up.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from zoolens.collect.images import UndecodableImage
from zoolens.errors import ZoolensError


def _sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_cost(
    loaded: Any,
    dataset: Any,
    device: Any,
    batch_size: int,
    repeats: int = 3,
    timings: list[tuple[int, float]] | None = None,
) -> dict[str, Any]:
    """The ModelCost fields of ``loaded`` (a LoadedModel) measured on ``dataset`` (items are
    preprocessed tensors) on ``device``; images that do not decode are passed over.
    ``timings``: (images, seconds) of the forward passes of the collection run
    (``runner.run_batches``), used for the latency when it holds at least two full batches
    after the first."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    full = [seconds for n, seconds in (timings or [])[1:] if n == batch_size]
    from_run = len(full) >= 2
    from zoolens.collect.batches import fit_batch_size

    wanted = 1 if from_run else fit_batch_size(dataset, [(0, len(dataset))], batch_size)
    batch: list[Any] = []
    for index in range(len(dataset)):
        if len(batch) >= wanted:
            break
        try:
            item = dataset[index]
        except UndecodableImage:
            continue
        batch.append(item[0] if isinstance(item, (tuple, list)) else item)
    if not batch:
        raise ZoolensError(f"model {loaded.name!r}: no image could be decoded to measure its cost")
    x = torch.stack([torch.as_tensor(t) for t in batch]).to(device)
    module = loaded.module
    params = None
    if module is not None and hasattr(module, "parameters"):
        module.to(device)
        module.eval()
        params = int(sum(p.numel() for p in module.parameters()))
    with torch.inference_mode():
        counter = FlopCounterMode(display=False)
        with counter:
            loaded.forward(x[:1])
        macs = counter.get_total_flops() / 2
        if from_run:
            times, size = full, batch_size
        else:
            loaded.forward(x)  # warm-up
            times, size = [], len(x)
            for _ in range(max(1, repeats)):
                _sync(device)
                t0 = time.perf_counter()
                loaded.forward(x)
                _sync(device)
                times.append(time.perf_counter() - t0)
    return {
        "params": params,
        "macs": float(macs),
        "latency_ms": 1000.0 * statistics.median(times) / size,
        "batch_size": size,
        "device": str(device),
        "input_shape": [int(s) for s in x.shape[1:]],
        "source": f"measured by zoolens collect (torch {torch.__version__}, "
        f"{torch.get_num_threads()} CPU threads; latency: median of "
        f"{len(times)} {'batches of the run' if from_run else 'timed batches'})",
    }
