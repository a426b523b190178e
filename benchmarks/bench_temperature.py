"""Temperature scaling (paper Sec. 3; Guo et al. 2017) on 50,000 x 1,000 logits.

ours: ``measure.calibration.fit_temperature`` (safeguarded Newton on log T, one fused pass
per step). baselines: netcal's ``TemperatureScaling`` (scipy L-BFGS-B with numerical
gradients over a torch NLL; fitted on the softmax probabilities, netcal's documented input,
whose logs equal the logits up to a per-row constant, so the optimum T is the same; netcal
stores 1/T) and a torch L-BFGS fit of log T (strong-Wolfe line search, the usual recipe made to
converge). Targets: >= 10x netcal, >= 5x torch, same T within 1e-3.
"""

from __future__ import annotations

import warnings

import numpy as np

from benchmarks._common import row, timed

SIZES = {"full": (50_000, 1_000), "quick": (10_000, 1_000), "tiny": (2_000, 100)}


def logits(num_examples: int, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """One synthetic ImageNet-like model (benchmarks.generator), float32 logits and labels."""
    from benchmarks.generator import ZooSpec, labels, model_logits, resolve

    spec = resolve(
        ZooSpec(
            num_models=1,
            num_examples=num_examples,
            num_classes=num_classes,
            temperature=(1.4, 1.4),
            seed=7,
        )
    )
    return model_logits(spec, 0), labels(spec)


def torch_lbfgs(z: np.ndarray, y: np.ndarray) -> float:
    import torch

    zt, yt = torch.from_numpy(z), torch.from_numpy(y)
    log_t = torch.zeros(1, dtype=torch.float32, requires_grad=True)
    opt = torch.optim.LBFGS(
        [log_t],
        lr=1.0,
        max_iter=100,
        tolerance_grad=1e-9,
        tolerance_change=1e-12,
        line_search_fn="strong_wolfe",
    )
    loss_fn = torch.nn.CrossEntropyLoss()

    def closure():
        opt.zero_grad()
        loss = loss_fn(zt / log_t.exp(), yt)
        loss.backward()
        return loss

    opt.step(closure)
    return float(log_t.detach().exp())


def netcal_fit(z: np.ndarray, y: np.ndarray) -> float:
    from netcal.scaling import TemperatureScaling

    from zoolens.measure.calibration import softmax

    probs = softmax(z, 1.0, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = TemperatureScaling()
        model.fit(probs, y)
    return 1.0 / float(np.asarray(model.weights).ravel()[0])


def run(size: str = "quick", runs: int = 3) -> list[dict]:
    from zoolens.measure.calibration import fit_temperature

    n, c = SIZES[size]
    z, y = logits(n, c)
    ours = timed(lambda: fit_temperature(z, y), runs)
    t_ours = ours.result.temperature
    rows = []
    for name, fn, target in (
        ("netcal TemperatureScaling (probabilities in)", netcal_fit, 10),
        ("torch LBFGS on log T (strong Wolfe)", torch_lbfgs, 5),
    ):
        base = timed(lambda: fn(z, y), runs)
        diff = abs(base.result - t_ours)
        speedup = base.median_s / ours.median_s
        rows.append(
            row(
                "temperature",
                f"{n:,} x {c:,} logits",
                ours="measure.calibration.fit_temperature",
                ours_s=ours.median_s,
                baseline=name,
                baseline_s=base.median_s,
                peak_mib=ours.peak_mib,
                baseline_peak_mib=base.peak_mib,
                target=f">= {target}x; abs dT < 1e-3",
                met=speedup >= target and diff < 1e-3,
                check=f"T ours {t_ours:.6f}, theirs {base.result:.6f} "
                f"(abs dT {diff:.1e}); ours {ours.result.iterations} Newton steps",
            )
        )
    return rows
