"""Training loops for the demo zoo: supervised nets, SimCLR, an autoencoder, linear probes and
classical learners on pixels. Every function returns test-set logits (or probabilities) and,
where the model has one, its pre-logit embedding of the test images.

All training is seeded (``torch.manual_seed``) and single-process on the CPU with
``torch.set_num_threads(threads)``; the same seeded training subsample is used by every model
that is compared, and evaluation always covers the full 10,000 test images.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from zoolens.demo.models import MEAN, STD, SmallCNN, build

EVAL_BATCH = 1000
# A short λ grid and a gradient tolerance of 1e-4 keep each probe to seconds on 2 cores
# (measured: 17 s CPU vs 68 s with the full 7-point grid at tol 1e-6 on 20k x 128 features,
# test accuracy 0.813 vs 0.804).
PROBE_OPTIONS: dict[str, Any] = {"l2_grid": (1e-4, 1e-3, 1e-2), "tol": 1e-4, "max_iter": 200}


@dataclass
class Tensors:
    """The demo's data as standardised float tensors (N, 1, 28, 28) and int64 labels."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_held: torch.Tensor  # held-out training images (not in the subsample): soup selection
    y_held: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, 28, 28) -> standardised float32 (N, 1, 28, 28)."""
    x = torch.from_numpy(np.array(images, dtype=np.float32, copy=True)) / 255.0
    return ((x - MEAN) / STD).unsqueeze(1)


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, *, embed: bool = False) -> torch.Tensor:
    """Batched eval-mode forward pass (logits, or ``model.embed`` when ``embed``)."""
    model.eval()
    # torch's stub types Module.__getattr__ as Tensor | Module: say it is a callable here
    fn: Callable[[Any], Any] = model.embed if embed else model  # type: ignore[assignment]
    return torch.cat([fn(x[i : i + EVAL_BATCH]) for i in range(0, len(x), EVAL_BATCH)])


def _shuffled_batches(n: int, batch_size: int, gen: torch.Generator, *, drop_last: bool = False):
    """One epoch's mini-batches: index tensors cutting a fresh ``torch.randperm(n, generator=
    gen)`` into consecutive slices of ``batch_size`` (the last one shorter, or dropped with
    ``drop_last``). The permutation is drawn when the first batch is asked for, so ``gen``
    is consumed in the same order as by a loop written out in place."""
    perm = torch.randperm(n, generator=gen)
    stop = n - batch_size + 1 if drop_last else n
    for i in range(0, stop, batch_size):
        yield perm[i : i + batch_size]


def _step(opt, loss: torch.Tensor, sched, progress) -> None:
    """One optimiser step (and schedule step), then report one batch of progress."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    if sched is not None:
        sched.step()
    if progress is not None:
        progress(1)


def train_supervised(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    epochs: int,
    lr: float,
    weight_decay: float = 5e-4,
    label_smoothing: float = 0.0,
    batch_size: int = 128,
    seed: int = 0,
    progress=None,
) -> nn.Module:
    """Mini-batch AdamW with a one-cycle learning-rate schedule and cross-entropy
    (optionally label-smoothed). ``progress(n)`` is called after each batch."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    steps = epochs * math.ceil(len(x) / batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.25)
    for _ in range(epochs):
        model.train()
        for idx in _shuffled_batches(len(x), batch_size, gen):
            loss = F.cross_entropy(model(x[idx]), y[idx], label_smoothing=label_smoothing)
            _step(opt, loss, sched, progress)
    model.eval()
    return model


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """SimCLR-style random view of a batch, vectorised: random horizontal flip, scale in
    [0.7, 1], translation up to 20 %, contrast/brightness jitter, Gaussian noise and a random
    8x8 cut-out (Chen et al. 2020 use crops, flips, colour and blur; these are the grey-scale
    equivalents that are cheap on a CPU)."""
    b = x.shape[0]
    u = lambda *shape: torch.rand(*shape, generator=gen)  # noqa: E731
    scale = 0.7 + 0.3 * u(b)
    flip = torch.where(u(b) < 0.5, -1.0, 1.0)
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0] = scale * flip
    theta[:, 1, 1] = scale
    theta[:, :, 2] = (u(b, 2) - 0.5) * 0.4
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    background = -MEAN / STD
    out = F.grid_sample(x - background, grid, align_corners=False) + background
    out = out * (0.6 + 0.8 * u(b, 1, 1, 1)) + (u(b, 1, 1, 1) - 0.5) * 0.8
    out = out + 0.1 * torch.randn(out.shape, generator=gen)
    cy, cx = (u(b) * 20).long(), (u(b) * 20).long()
    rows = torch.arange(28)
    mask_y = (rows[None, :] >= cy[:, None]) & (rows[None, :] < cy[:, None] + 8)
    mask_x = (rows[None, :] >= cx[:, None]) & (rows[None, :] < cx[:, None] + 8)
    cut = (mask_y[:, :, None] & mask_x[:, None, :]) & (u(b) < 0.5)[:, None, None]
    return out.masked_fill(cut[:, None], background)


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """SimCLR's normalised-temperature cross-entropy over the 2B views of a batch."""
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    sim = z @ z.T / temperature
    n = z1.shape[0]
    sim.fill_diagonal_(float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])
    return F.cross_entropy(sim, target)


def train_simclr(
    encoder: SmallCNN,
    x: torch.Tensor,
    *,
    epochs: int,
    lr: float = 2e-3,
    batch_size: int = 256,
    temperature: float = 0.2,
    seed: int = 0,
    progress=None,
) -> SmallCNN:
    """Self-supervised contrastive pre-training (Chen et al. 2020) of ``encoder.embed`` with a
    2-layer projection head, on unlabelled images only (labels are never seen)."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    dim = encoder.embed_dim
    projector = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, 64))
    params = list(encoder.features.parameters()) + list(projector.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)
    steps = epochs * (len(x) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=lr, total_steps=max(steps, 1), pct_start=0.2
    )
    for _ in range(epochs):
        encoder.train()
        for idx in _shuffled_batches(len(x), batch_size, gen, drop_last=True):
            batch = x[idx]
            z1 = projector(encoder.embed(augment(batch, gen)))
            z2 = projector(encoder.embed(augment(batch, gen)))
            _step(opt, nt_xent(z1, z2, temperature), sched, progress)
    encoder.eval()
    return encoder


def train_autoencoder(
    x: torch.Tensor,
    *,
    epochs: int,
    code: int = 64,
    lr: float = 2e-3,
    batch_size: int = 128,
    seed: int = 0,
    progress=None,
) -> nn.Module:
    """MLP autoencoder trained to reconstruct the [0, 1] pixels (mean squared error)."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = build("autoencoder", code=code)
    target = x * STD + MEAN
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-5)
    for _ in range(epochs):
        model.train()
        for idx in _shuffled_batches(len(x), batch_size, gen):
            _step(opt, F.mse_loss(torch.sigmoid(model(x[idx])), target[idx]), None, progress)
    model.eval()
    return model


def standardise(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """z-score every column with the training rows' mean and std (std floored at 1e-6)."""
    mean = train.mean(axis=0)
    std = np.maximum(train.std(axis=0), 1e-6)
    return [((a - mean) / std).astype(np.float32) for a in (train, *others)]


def linear_probe_logits(
    train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, *, seed: int = 0
) -> np.ndarray:
    """Fit a multinomial logistic-regression probe on standardised features and return the
    test logits; uses zoolens.measure.probe.fit_linear_probe (L2 chosen on a validation
    split, docs/design.md sec. 3)."""
    from zoolens.measure.probe import fit_linear_probe

    tr, te = standardise(np.asarray(train_x, np.float32), np.asarray(test_x, np.float32))
    probe = fit_linear_probe(tr, np.asarray(train_y), seed=seed, **PROBE_OPTIONS)
    return np.asarray(probe.decision_function(te), dtype=np.float32)


def fit_classical(
    name: str,
    params: dict[str, Any],
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    *,
    seed: int | None = 0,
) -> np.ndarray:
    """scikit-learn learners on raw pixels scaled to [0, 1]; returns test probabilities."""
    if name == "knn":
        from sklearn.neighbors import KNeighborsClassifier

        model = KNeighborsClassifier(n_neighbors=params["k"], n_jobs=1)
    elif name == "random-forest":
        from sklearn.ensemble import RandomForestClassifier

        model = RandomForestClassifier(
            n_estimators=params["trees"],
            max_depth=params.get("max_depth"),
            random_state=seed,
            n_jobs=2,
        )
    elif name == "naive-bayes":
        from sklearn.naive_bayes import GaussianNB

        model = GaussianNB()
    else:  # pragma: no cover - a programming error in the zoo spec
        raise ValueError(name)
    model.fit(train_x, train_y)
    return model.predict_proba(test_x).astype(np.float32)


def digits_images() -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's 8x8 handwritten digits (1,797 images, ships with scikit-learn), upscaled
    bilinearly to 24x24 and padded to 28x28 (as MNIST centres its digits), standardised like
    Fashion-MNIST."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    x = F.pad(F.interpolate(x, size=(24, 24), mode="bilinear", align_corners=False), (2,) * 4)
    return (x - MEAN) / STD, torch.tensor(digits.target, dtype=torch.int64)
