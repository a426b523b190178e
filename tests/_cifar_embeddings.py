"""Real embeddings for tests: the pretrained CIFAR-10 ResNets of ../shared/data on the JPEG images.

The network is ``zoolens.collect.cifar_resnet`` (He et al. 2016 CIFAR ResNets, option-A
shortcuts; tested by the collect engineer against third-party outputs); the 64-d pre-logit
embeddings and logits are cached as .npz beside pytest's session folder.
Images: the first ``per_class`` files (sorted by name) of each class folder, so example k of
class c is the k-th example of class c in the canonical test order (data README).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
CHECKPOINTS = {
    "resnet20": "resnet20-12fca82f.th",
    "resnet32": "resnet32-d509ac18.th",
    "resnet44": "resnet44-014dd654.th",
    "resnet56": "resnet56-4bfd9763.th",
}


def load_images(jpeg_root: Path, per_class: int) -> tuple[np.ndarray, np.ndarray]:
    """(N, 3, 32, 32) float32 normalised images and (N,) labels, class-major order."""
    from PIL import Image

    images, labels = [], []
    for c, name in enumerate(CLASSES):
        files = sorted((jpeg_root / name).glob("*.jpg"))[:per_class]
        for f in files:
            with Image.open(f) as im:
                images.append(np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0)
            labels.append(c)
    x = np.stack(images).transpose(0, 3, 1, 2)
    from zoolens.collect.cifar_resnet import CIFAR_MEAN, CIFAR_STD

    mean = np.array(CIFAR_MEAN, np.float32)[None, :, None, None]
    x = (x - mean) / np.array(CIFAR_STD, np.float32)[None, :, None, None]
    return np.ascontiguousarray(x, dtype=np.float32), np.asarray(labels, dtype=np.int64)


def cifar_embeddings(
    data_root: Path,
    cache_dir: Path,
    models: tuple[str, ...] = ("resnet20", "resnet56"),
    per_class: int = 300,
) -> dict[str, np.ndarray]:
    """{"labels": (N,), "<model>": (N, 64) embeddings, "<model>_logits": (N, 10)} (cached)."""
    import torch

    from zoolens.collect.cifar_resnet import load_checkpoint

    cache = cache_dir / f"cifar_embeddings_v2_{per_class}_{'_'.join(models)}.npz"
    if cache.exists():
        with np.load(cache) as z:
            return {k: z[k] for k in z.files}
    x, labels = load_images(data_root / "cifar10-test-jpeg" / "test", per_class)
    out: dict[str, np.ndarray] = {"labels": labels}
    for name in models:
        net = load_checkpoint(data_root / "cifar10-resnets" / CHECKPOINTS[name])
        embs = []
        with torch.inference_mode():
            for start in range(0, len(x), 500):
                embs.append(net.embed(torch.from_numpy(x[start : start + 500])))
            emb = torch.cat(embs)
            logits = net.linear(emb)
        out[name] = emb.numpy().astype(np.float32)
        out[f"{name}_logits"] = logits.numpy().astype(np.float32)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp.npz")
    np.savez(tmp, **out)
    tmp.replace(cache)
    return out


def cifar_session_embeddings(
    tmp_path_factory, models: tuple[str, ...] = ("resnet20", "resnet32"), per_class: int = 200
) -> dict[str, np.ndarray]:
    """The default test subset (2,000 images, two depths), computed once and cached.

    The cache sits beside pytest's per-session folder (its parent), so one pytest session —
    and later ones on the same machine — pay the ~15 s forward pass only once. Skips with a
    reason when ../shared/data is absent.
    """
    from conftest import shared_path

    shared_path("cifar10-resnets")
    jpeg = shared_path("cifar10-test-jpeg")
    cache_dir = tmp_path_factory.getbasetemp().parent / "zoolens-cifar-embeddings"
    return cifar_embeddings(jpeg.parent, cache_dir, models=models, per_class=per_class)
