"""Inference cost of a built model: parameters, multiply-accumulates, measured latency.

- parameters: ``sum(p.numel())`` over the module's parameters (buffers such as BatchNorm
  statistics are not parameters);
- multiply-accumulates (MACs) for one example: ``torch.utils.flop_counter.FlopCounterMode``
  counts the FLOPs of matrix products and convolutions (2 per multiply-accumulate) while the
  model runs on one preprocessed example; MACs = FLOPs / 2. Element-wise work (batch norm,
  activations, pooling, additions) is not counted, as in the usual MAC tables (He et al.
  2016, Table 6 lists FLOPs = multiply-adds of the convolutions and the classifier);
- latency: median wall time of ``repeats`` forward passes (after one warm-up) over one batch
  of ``batch_size`` real examples on the collecting device, divided by the batch size, so
  the number depends on the machine (the card records batch size and device).
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


def measure_cost(loaded: Any, dataset: Any, device: Any, batch_size: int,
                 repeats: int = 3) -> dict[str, Any]:
    """The ModelCost fields of ``loaded`` (a LoadedModel) measured on ``dataset`` (items are
    preprocessed tensors) on ``device``; images that do not decode are passed over."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    batch = []
    for index in range(len(dataset)):
        if len(batch) >= batch_size:
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
        loaded.forward(x)  # warm-up
        times = []
        for _ in range(max(1, repeats)):
            _sync(device)
            t0 = time.perf_counter()
            loaded.forward(x)
            _sync(device)
            times.append(time.perf_counter() - t0)
    return {"params": params, "macs": float(macs),
            "latency_ms": 1000.0 * statistics.median(times) / len(x),
            "batch_size": len(x), "device": str(device),
            "input_shape": [int(s) for s in x.shape[1:]],
            "source": f"measured by zoolens collect (torch {torch.__version__}, "
                      f"{torch.get_num_threads()} CPU threads)"}
