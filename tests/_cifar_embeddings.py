"""Real embeddings for tests: the pretrained CIFAR-10 ResNets of ../shared/data on the JPEG images.

A plain torch forward pass (He et al. 2016 CIFAR ResNets, option-A shortcuts) until
``zoolens.collect.cifar_resnet`` lands; results are cached as .npz under a per-session folder.
Images: the first ``per_class`` files (sorted by name) of each class folder, so example k of
class c is the k-th example of class c in the canonical test order (data README).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
           "truck"]
CHECKPOINTS = {"resnet20": "resnet20-12fca82f.th", "resnet32": "resnet32-d509ac18.th",
               "resnet44": "resnet44-014dd654.th", "resnet56": "resnet56-4bfd9763.th"}
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def _build(depth: int):
    import torch
    from torch import nn
    import torch.nn.functional as F

    class Block(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.pad = cout - cin if (stride != 1 or cin != cout) else None

        def forward(self, x):
            out = F.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            if self.pad is None:
                short = x
            else:  # option A: subsample by 2, zero-pad the new channels on both sides
                short = F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad // 2, self.pad // 2))
            return F.relu(out + short)

    class ResNet(nn.Module):
        def __init__(self, n: int):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(16)
            layers, cin = [], 16
            for cout, stride in ((16, 1), (32, 2), (64, 2)):
                blocks = []
                for i in range(n):
                    blocks.append(Block(cin, cout, stride if i == 0 else 1))
                    cin = cout
                layers.append(nn.Sequential(*blocks))
            self.layer1, self.layer2, self.layer3 = layers
            self.linear = nn.Linear(64, 10)

        def embed(self, x):
            x = F.relu(self.bn1(self.conv1(x)))
            x = self.layer3(self.layer2(self.layer1(x)))
            return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)

    return ResNet((depth - 2) // 6)


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
    x = (x - np.array(MEAN, np.float32)[None, :, None, None]) / np.array(STD, np.float32)[None, :, None, None]
    return np.ascontiguousarray(x, dtype=np.float32), np.asarray(labels, dtype=np.int64)


def cifar_embeddings(data_root: Path, cache_dir: Path, models: tuple[str, ...] = ("resnet20", "resnet56"),
                     per_class: int = 300) -> dict[str, np.ndarray]:
    """{"labels": (N,), "<model>": (N, 64) embeddings, "<model>_logits": (N, 10)} (cached)."""
    import torch

    cache = cache_dir / f"cifar_embeddings_{per_class}_{'_'.join(models)}.npz"
    if cache.exists():
        with np.load(cache) as z:
            return {k: z[k] for k in z.files}
    x, labels = load_images(data_root / "cifar10-test-jpeg" / "test", per_class)
    out: dict[str, np.ndarray] = {"labels": labels}
    for name in models:
        depth = int(name.removeprefix("resnet"))
        net = _build(depth)
        state = torch.load(data_root / "cifar10-resnets" / CHECKPOINTS[name], map_location="cpu",
                           weights_only=True)["state_dict"]
        net.load_state_dict({k.removeprefix("module."): v for k, v in state.items()})
        net.eval()
        embs = []
        with torch.inference_mode():
            for start in range(0, len(x), 500):
                embs.append(net.embed(torch.from_numpy(x[start:start + 500])))
            emb = torch.cat(embs)
            logits = net.linear(emb)
        out[name] = emb.numpy().astype(np.float32)
        out[f"{name}_logits"] = logits.numpy().astype(np.float32)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp.npz")
    np.savez(tmp, **out)
    tmp.replace(cache)
    return out


def cifar_session_embeddings(tmp_path_factory, models: tuple[str, ...] = ("resnet20", "resnet32"),
                             per_class: int = 200) -> dict[str, np.ndarray]:
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
