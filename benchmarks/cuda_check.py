"""CUDA against CPU for the fused evaluation pass and the linear probe, results compared.

One self-contained run (about 1-3 minutes on a GPU machine; no zoo, no downloads):

1. the fused evaluation pass (``zoolens.measure.fused``): M models x N examples x C classes
   of float16 logits. CPU: ``fused_rows`` (row blocks, one thread per model, as analyze
   runs it). CUDA: ``fused_rows_tensor`` on the device (the same arithmetic on whole
   tensors), with the host-to-device copy of the float16 scores included in the time.
   Checked: identical predictions; confidences and NLL terms within 1e-12 relative;
   calibrated probabilities within 2e-7 relative (float32).
2. the linear probe (``zoolens.measure.probe.fit_linear_probe``, one λ, full-batch L-BFGS)
   on N x D Gaussian-mixture features with C classes, CPU vs ``device="cuda"``. Checked:
   test accuracy within 0.5 points, final objective within 1e-4 relative.

Prints a markdown table (device, step, seconds, speed-up, check) for benchmarks/RESULTS.md.

Example:  python benchmarks/cuda_check.py            # defaults: 16 x 50,000 x 1,000; probe 50,000 x 2,048 x 1,000
          python benchmarks/cuda_check.py --small    # a smoke run (also works without CUDA: CPU rows only)
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def _sync(torch) -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def fused_check(torch, models: int, n: int, c: int, threads: int) -> list[dict]:
    from zoolens.measure.fused import fused_rows, fused_rows_tensor

    rng = np.random.default_rng(0)
    labels = rng.integers(0, c, n)
    temperatures = rng.uniform(0.7, 1.7, models)
    scores = []
    for _ in range(models):
        z = rng.standard_normal((n, c), dtype=np.float32) * 2.0
        z[np.arange(n), labels] += rng.uniform(1.0, 4.0)
        scores.append(z.astype(np.float16))

    torch.set_num_threads(1)
    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        cpu = list(
            pool.map(lambda m: fused_rows(scores[m], labels, temperatures[m]), range(models))
        )
    cpu_s = time.perf_counter() - start
    rows = [
        {
            "device": f"CPU ({threads} threads)",
            "step": f"fused pass {models} x {n:,} x {c:,} float16",
            "seconds": cpu_s,
            "check": "",
        }
    ]
    if not torch.cuda.is_available():
        return rows
    device = torch.device("cuda")
    y = torch.from_numpy(labels).to(device)
    fused_rows_tensor(torch.from_numpy(scores[0][:1000]).to(device), y[:1000], 1.0)  # warm-up
    _sync(torch)
    start = time.perf_counter()
    gpu = []
    for m in range(models):
        x = torch.from_numpy(scores[m]).to(device, non_blocking=False)
        gpu.append(fused_rows_tensor(x, y, float(temperatures[m])))
    _sync(torch)
    gpu_s = time.perf_counter() - start
    worst = {"conf": 0.0, "nll": 0.0, "probs": 0.0}
    same_pred = True
    for got, want in zip(gpu, cpu):
        same_pred &= bool(np.array_equal(got["prediction"].cpu().numpy(), want.prediction))
        for key, name in (
            ("confidence_before", "conf"),
            ("confidence_after", "conf"),
            ("nll_before", "nll"),
            ("nll_after", "nll"),
        ):
            a, b = got[key].cpu().numpy(), getattr(want, key)
            worst[name] = max(
                worst[name], float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))
            )
        a, b = got["ensemble_input"].cpu().numpy(), want.ensemble_input
        worst["probs"] = max(
            worst["probs"], float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-30)))
        )
    ok = same_pred and worst["conf"] < 1e-12 and worst["nll"] < 1e-12 and worst["probs"] < 2e-7
    rows.append(
        {
            "device": torch.cuda.get_device_name(0),
            "step": rows[0]["step"],
            "seconds": gpu_s,
            "speedup": cpu_s / gpu_s,
            "check": (
                f"{'agree' if ok else 'DISAGREE'}: predictions identical "
                f"{same_pred}; max rel diff confidence {worst['conf']:.1e}, NLL "
                f"{worst['nll']:.1e}, probabilities {worst['probs']:.1e}"
            ),
        }
    )
    return rows


def probe_check(torch, n: int, d: int, c: int, threads: int) -> list[dict]:
    from zoolens.measure.probe import fit_linear_probe

    rng = np.random.default_rng(1)
    centers = rng.standard_normal((c, d)).astype(np.float32) * 0.35
    y = rng.integers(0, c, n)
    x = centers[y] + rng.standard_normal((n, d), dtype=np.float32)
    test = int(0.2 * n)
    x_train, y_train, x_test, y_test = x[test:], y[test:], x[:test], y[:test]

    def fit(device: str):
        start = time.perf_counter()
        probe = fit_linear_probe(
            x_train,
            y_train,
            l2_grid=1e-4,
            device=device,
            tol=1e-5,
            threads=threads if device == "cpu" else None,
        )
        _sync(torch)
        return probe, time.perf_counter() - start

    def accuracy(probe) -> float:
        pred = probe.classes_[np.asarray(probe.decision_function(x_test)).argmax(axis=1)]
        return float(np.mean(pred == y_test))

    torch.set_num_threads(threads)
    cpu, cpu_s = fit("cpu")
    step = f"linear probe {n - test:,} x {d:,} x {c:,} (λ 1e-4, tol 1e-5)"
    rows = [
        {
            "device": f"CPU ({threads} threads)",
            "step": step,
            "seconds": cpu_s,
            "check": f"test accuracy {accuracy(cpu):.4f}",
        }
    ]
    if not torch.cuda.is_available():
        return rows
    fit_linear_probe(x_train[:512], y_train[:512], l2_grid=1e-4, device="cuda")  # warm-up
    gpu, gpu_s = fit("cuda")
    acc_cpu, acc_gpu = accuracy(cpu), accuracy(gpu)
    rel = abs(gpu.objective - cpu.objective) / max(abs(cpu.objective), 1e-300)
    ok = abs(acc_cpu - acc_gpu) <= 0.005 and rel < 1e-4
    rows.append(
        {
            "device": torch.cuda.get_device_name(0),
            "step": step,
            "seconds": gpu_s,
            "speedup": cpu_s / gpu_s,
            "check": (
                f"{'agree' if ok else 'DISAGREE'}: test accuracy {acc_gpu:.4f} vs "
                f"CPU {acc_cpu:.4f}; objective rel. diff {rel:.1e}"
            ),
        }
    )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", action="store_true", help="a smoke-test size")
    parser.add_argument(
        "--threads",
        type=int,
        default=len(os.sched_getaffinity(0)),
        help="CPU threads (default: the cores this process may use)",
    )
    args = parser.parse_args()
    import torch

    if args.small:
        fused_size, probe_size = (2, 2_000, 100), (3_000, 64, 20)
    else:
        fused_size, probe_size = (16, 50_000, 1_000), (50_000, 2_048, 1_000)
    started = time.perf_counter()
    rows = fused_check(torch, *fused_size, args.threads) + probe_check(
        torch, *probe_size, args.threads
    )
    print(
        f"# CUDA check ({platform.node()}, torch {torch.__version__}, "
        f"CUDA {'available: ' + torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'not available'}; "
        f"{time.perf_counter() - started:.0f} s in all)\n"
    )
    print("| device | step | seconds | speed-up vs CPU | check |")
    print("|---|---|---|---|---|")
    for r in rows:
        speed = f"{r['speedup']:.1f}x" if "speedup" in r else ""
        print(f"| {r['device']} | {r['step']} | {r['seconds']:.3f} | {speed} | {r['check']} |")
    return 0 if all("DISAGREE" not in r["check"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
