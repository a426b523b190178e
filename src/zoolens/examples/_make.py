"""Regenerate the example files (deterministic): ``python -m zoolens.examples._make``.

The Quick start's files come first and from their own generator, so adding examples never
changes them; ``shift/`` and ``collect/`` have generators of their own (seeds 2022, 2023).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from zoolens.examples import FOLDER

N, C = 2000, 10
SHIFT_N = 1000
IMAGE_CLASSES = ("blue", "gray", "green", "red")  # sorted: the image folder's class order
COLORS = {"blue": (0.35, 0.4, 0.6), "gray": (0.45, 0.45, 0.45), "green": (0.38, 0.55, 0.38)}
COLORS["red"] = (0.58, 0.38, 0.34)
IMAGES_PER_CLASS = 8
IMAGE_SIZE = 16


def _outputs(
    folder: Path, rng: np.random.Generator, n: int, shift: float, seeds: tuple, knn_slope: float
) -> None:
    """labels.npy and the four imaginary models' files on ``n`` examples; ``shift`` makes
    every example harder (a distribution shift that keeps the classes), ``knn_slope`` how
    much the k-NN's accuracy drops with difficulty."""
    labels = rng.integers(0, C, n)
    difficulty = rng.normal(size=n) + shift
    confusion = rng.integers(0, C, n)  # the class an example looks like when it fools a model

    def logits(strength: float, noise: float, seed: int) -> np.ndarray:
        own = np.random.default_rng(seed)
        z = own.normal(size=(n, C)) * noise
        z[np.arange(n), labels] += strength - difficulty
        z[np.arange(n), confusion] += 0.8 * np.clip(difficulty, 0, None)
        return z

    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "labels.npy", labels.astype(np.int64))
    for name, seed in (("resnet", seeds[0]), ("resnet-seed1", seeds[1])):
        np.savez(folder / f"{name}.npz", logits=logits(2.4, 1.0, seed).astype(np.float16))
    z = logits(3.2, 1.3, seeds[2])
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    np.savetxt(folder / "vit.csv", p, fmt="%.4f", delimiter=",")
    knn = np.where(
        rng.random(n) < 0.72 - knn_slope * np.clip(difficulty, 0, None),
        labels,
        rng.integers(0, C, n),
    )
    np.save(folder / "knn.npy", knn.astype(np.int64))


def make(folder=FOLDER) -> None:
    _outputs(Path(folder), np.random.default_rng(2021), N, 0.0, (1, 2, 3), 0.1)
    _outputs(Path(folder) / "shift", np.random.default_rng(2022), SHIFT_N, 0.6, (11, 12, 13), 0.3)
    make_collect(Path(folder) / "collect")


def _images(rng: np.random.Generator, per_class: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, 3, S, S) float32 images in [0, 1] and their class indices: each class a colour,
    with per-image brightness, noise and a random bright square that blurs the colours."""
    xs, ys = [], []
    for k, name in enumerate(IMAGE_CLASSES):
        for _ in range(per_class):
            img = np.empty((3, IMAGE_SIZE, IMAGE_SIZE), np.float32)
            img[:] = np.asarray(COLORS[name], np.float32)[:, None, None] * rng.uniform(0.5, 1.3)
            img += rng.normal(0, 0.3, img.shape).astype(np.float32)
            r, c = rng.integers(0, IMAGE_SIZE - 6, 2)
            img[:, r : r + 6, c : c + 6] += rng.uniform(0, 0.5, (3, 1, 1)).astype(np.float32)
            xs.append(np.clip(img, 0, 1))
            ys.append(k)
    return np.stack(xs), np.asarray(ys)


def make_collect(folder: Path) -> None:
    """Three tiny TorchScript CNNs (a few KB each: a seeded random convolution, ReLU, average
    pooling and a linear head fitted by least squares on images made here), the small image
    folder they are collected on (``images/<class>/<k>.png``) and their model list."""
    import torch
    from PIL import Image
    from torch import nn

    rng = np.random.default_rng(2023)
    folder.mkdir(parents=True, exist_ok=True)
    train_x, train_y = _images(rng, 40)  # fits the heads; never shipped
    test_x, test_y = _images(rng, IMAGES_PER_CLASS)
    for x, y in ((test_x, test_y),):
        for i, (img, k) in enumerate(zip(x, y)):
            out = folder / "images" / IMAGE_CLASSES[k] / f"{i:02d}.png"
            out.parent.mkdir(parents=True, exist_ok=True)
            pixels = (np.transpose(img, (1, 2, 0)) * 255).round().astype(np.uint8)
            Image.fromarray(pixels).save(out, optimize=True)
    for name, width, seed in (("tiny-a", 8, 0), ("tiny-b", 8, 1), ("tiny-c", 4, 2)):
        torch.manual_seed(seed)
        conv = nn.Conv2d(3, width, 3, padding=1)
        body = nn.Sequential(conv, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        with torch.no_grad():
            # the same preprocessing as the model list: (x - 0.5) / 0.5
            feats = body((torch.from_numpy(train_x) - 0.5) / 0.5).double().numpy()
        design = np.hstack([feats, np.ones((len(feats), 1))])
        target = np.eye(len(IMAGE_CLASSES))[train_y]
        coef = np.linalg.solve(design.T @ design + 1e-3 * np.eye(width + 1), design.T @ target)
        head = nn.Linear(width, len(IMAGE_CLASSES))
        with torch.no_grad():
            head.weight.copy_(torch.from_numpy(coef[:-1].T * 2.0))
            head.bias.copy_(torch.from_numpy(coef[-1] * 2.0))
        model = nn.Sequential(body, head).eval()
        scripted = torch.jit.trace(model, torch.zeros(1, 3, IMAGE_SIZE, IMAGE_SIZE))
        torch.jit.save(scripted, str(folder / f"{name}.pt"))
    (folder / "models.toml").write_text(MODEL_LIST, encoding="utf-8")


MODEL_LIST = """\
# A model list for `zoolens collect` (TOML; YAML takes the same keys): three tiny CNNs saved
# as TorchScript, a few KB each. A relative path is read from this file's folder.
[defaults]                   # applies to every entry
preprocess = { mean = [0.5, 0.5, 0.5], std = [0.5, 0.5, 0.5] }

[[models]]
spec = "torchscript:tiny-a.pt"   # or timm:NAME, torchvision:NAME/WEIGHTS,
name = "tiny-a"                  #    open_clip:ARCH/TAG, python:module:function
seed = 0                         # set before building: random init is reproducible
kwargs = {}                      # passed to the builder (python: specs)
[models.card]                    # card fields: arch, arch_family, framework, pretrain_data, ...
arch = "tiny-cnn"
framework = "supervised"
seed = 0

[[models]]
spec = "torchscript:tiny-b.pt"
name = "tiny-b"
[models.card]
arch = "tiny-cnn"
framework = "supervised"
seed = 1                         # the same network, another seed: a Reinit pair with tiny-a

[[models]]
spec = "torchscript:tiny-c.pt"
name = "tiny-c"
[models.card]
arch = "tiny-cnn-narrow"         # half the channels: an HParam pair with tiny-a
framework = "supervised"
"""


if __name__ == "__main__":
    make()
