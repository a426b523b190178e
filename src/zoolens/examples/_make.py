"""Regenerate the example files (deterministic): ``python -m zoolens.examples._make``."""

from __future__ import annotations

import numpy as np

from zoolens.examples import FOLDER

N, C = 2000, 10


def make(folder=FOLDER) -> None:
    rng = np.random.default_rng(2021)
    labels = rng.integers(0, C, N)
    difficulty = rng.normal(size=N)
    confusion = rng.integers(0, C, N)  # the class an example looks like when it fools a model

    def logits(strength: float, noise: float, seed: int) -> np.ndarray:
        own = np.random.default_rng(seed)
        z = own.normal(size=(N, C)) * noise
        z[np.arange(N), labels] += strength - difficulty
        z[np.arange(N), confusion] += 0.8 * np.clip(difficulty, 0, None)
        return z

    np.save(folder / "labels.npy", labels.astype(np.int64))
    for name, seed in (("resnet", 1), ("resnet-seed1", 2)):
        np.savez(folder / f"{name}.npz", logits=logits(2.4, 1.0, seed).astype(np.float16))
    z = logits(3.2, 1.3, 3)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    np.savetxt(folder / "vit.csv", p, fmt="%.4f", delimiter=",")
    knn = np.where(
        rng.random(N) < 0.72 - 0.1 * np.clip(difficulty, 0, None), labels, rng.integers(0, C, N)
    )
    np.save(folder / "knn.npy", knn.astype(np.int64))


if __name__ == "__main__":
    make()
