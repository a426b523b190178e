"""The CIFAR-10 ResNets of He et al. (2016), "Deep Residual Learning for Image Recognition", Sec. 4.2.

Architecture (paper Sec. 4.2, "option A" shortcuts of Sec. 3.3):

- a 3x3 convolution with 16 filters, batch norm, ReLU;
- three stages of ``n`` BasicBlocks each, widths 16, 32, 64; the first block of stages 2 and 3
  halves the spatial size with a stride-2 convolution;
- a BasicBlock is ``relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))``;
- option A shortcut: the identity, and where the shape changes, the input subsampled with
  stride 2 (``x[:, :, ::2, ::2]``) and zero-padded with ``planes // 4`` channels on each side
  (parameter-free);
- global average pooling to a 64-d vector (the pre-logit embedding), then ``linear`` 64 -> 10.

Depth is ``6n + 2``: resnet20 (n=3), resnet32 (5), resnet44 (7), resnet56 (9), resnet110 (18).
Parameter names match akamaster/pytorch_resnet_cifar10 (after stripping ``module.``), so its
checkpoints (``../shared/data/cifar10-resnets/``) load with :func:`load_checkpoint`.
``forward`` returns ``(logits, embeddings)``, the pair the collect runner records.

From a model list (``zoolens collect``)::

    [[models]]
    spec = "python:zoolens.collect.cifar_resnet:pretrained"
    name = "resnet20"
    kwargs = { checkpoint = "../shared/data/cifar10-resnets/resnet20-12fca82f.th" }
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from zoolens.errors import ZoolensError

#: Input normalisation of the akamaster checkpoints: RGB in [0, 1], then (x - mean) / std.
CIFAR_MEAN = (0.485, 0.456, 0.406)
CIFAR_STD = (0.229, 0.224, 0.225)

CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)


class LambdaLayer(nn.Module):
    """Option A shortcut: stride-2 subsampling plus zero channel padding (no parameters)."""

    def __init__(self, pad: int):
        super().__init__()
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad), "constant", 0.0)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and an option A shortcut (He et al. 2016, Fig. 2)."""

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_planes != planes:
            self.shortcut = LambdaLayer(planes // 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """ResNet-(6n+2) for 32x32 inputs; ``forward(x) -> (logits (B, 10), embeddings (B, 64))``."""

    def __init__(self, blocks_per_stage: int, num_classes: int = 10):
        super().__init__()
        if blocks_per_stage < 1:
            raise ValueError("blocks_per_stage must be >= 1")
        self.blocks_per_stage = blocks_per_stage
        self.depth = 6 * blocks_per_stage + 2
        self.conv1 = nn.Conv2d(3, 16, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.in_planes = 16
        self.layer1 = self._stage(16, blocks_per_stage, stride=1)
        self.layer2 = self._stage(32, blocks_per_stage, stride=2)
        self.layer3 = self._stage(64, blocks_per_stage, stride=2)
        self.linear = nn.Linear(64, num_classes)
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(module.weight)

    def _stage(self, planes: int, n: int, stride: int) -> nn.Sequential:
        layers = []
        for s in [stride] + [1] * (n - 1):
            layers.append(BasicBlock(self.in_planes, planes, s))
            self.in_planes = planes
        return nn.Sequential(*layers)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The 64-d pre-logit embedding (global average pool after the last stage)."""
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        return F.adaptive_avg_pool2d(out, 1).flatten(1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        emb = self.embed(x)
        return self.linear(emb), emb


def resnet20(num_classes: int = 10) -> CifarResNet:
    return CifarResNet(3, num_classes)


def resnet32(num_classes: int = 10) -> CifarResNet:
    return CifarResNet(5, num_classes)


def resnet44(num_classes: int = 10) -> CifarResNet:
    return CifarResNet(7, num_classes)


def resnet56(num_classes: int = 10) -> CifarResNet:
    return CifarResNet(9, num_classes)


def resnet110(num_classes: int = 10) -> CifarResNet:
    return CifarResNet(18, num_classes)


def _clean_state_dict(raw: Any, path: Path) -> dict[str, torch.Tensor]:
    state = raw.get("state_dict", raw) if isinstance(raw, dict) else None
    if not isinstance(state, dict) or not state:
        raise ZoolensError(f"{path}: not a CIFAR ResNet checkpoint (no state_dict)")
    return {k.removeprefix("module."): v for k, v in state.items()}


def load_checkpoint(path: str | Path, map_location: str = "cpu") -> CifarResNet:
    """Build the CifarResNet matching a checkpoint and load its weights (safe loader).

    The depth is read from the checkpoint (number of blocks in ``layer1``). Loads with
    ``torch.load(weights_only=True)``; keys may carry DataParallel's ``module.`` prefix.
    BatchNorm ``num_batches_tracked`` counters missing from old checkpoints are left at 0.
    """
    path = Path(path)
    if not path.is_file():
        raise ZoolensError(f"{path}: checkpoint not found")
    try:
        raw = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # pickle errors, truncated files …
        raise ZoolensError(f"{path}: cannot load checkpoint ({type(exc).__name__}: {exc})") from exc
    state = _clean_state_dict(raw, path)
    blocks = {int(m.group(1)) for k in state if (m := re.match(r"layer1\.(\d+)\.", k))}
    if not blocks or "linear.weight" not in state:
        raise ZoolensError(f"{path}: keys do not match a CIFAR ResNet (conv1, layer1..3, linear)")
    model = CifarResNet(max(blocks) + 1, num_classes=state["linear.weight"].shape[0])
    expected = model.state_dict()
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        raise ZoolensError(
            f"{path}: checkpoint does not match resnet{model.depth} "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    for k, v in expected.items():
        state.setdefault(k, v)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ZoolensError(
            f"{path}: checkpoint shapes do not match resnet{model.depth}: "
            f"{str(exc).splitlines()[-1].strip()}"
        ) from exc
    return model.eval()


def cifar_transform():
    """The preprocessing the akamaster checkpoints expect: ToTensor, Normalize(mean, std)."""
    from torchvision import transforms

    return transforms.Compose([transforms.ToTensor(), transforms.Normalize(CIFAR_MEAN, CIFAR_STD)])


#: The depths of He et al.'s CIFAR ResNets (2016, Sec. 4.2): 6n+2 layers, from ResNet-8 up to
#: ResNet-1202 (n = 200), the deepest they trained; deeper would only allocate memory.
MIN_DEPTH, MAX_DEPTH = 8, 1202


def pretrained(
    checkpoint: str | None = None, depth: int = 20, seed: int | None = None, num_classes: int = 10
):
    """Model-list entry point: ``(model, transform, card dict)`` for a CIFAR ResNet.

    With ``checkpoint`` the weights (and depth, and classes) come from the file; without it a
    random-init ``resnet{depth}`` with ``num_classes`` outputs is built (seeded when ``seed``
    is given).
    """
    if checkpoint is not None:
        model = load_checkpoint(checkpoint)
        source = str(checkpoint)
    else:
        if (
            not isinstance(depth, int)
            or (depth - 2) % 6 != 0
            or not MIN_DEPTH <= depth <= MAX_DEPTH
        ):
            raise ZoolensError(
                f"CIFAR ResNet depth must be 6n+2 in [{MIN_DEPTH}, {MAX_DEPTH}] (He et al. "
                f"2016, Sec. 4.2, go up to ResNet-1202), got {str(depth)[:20]}"
            )
        if seed is not None:
            torch.manual_seed(seed)
        model = CifarResNet((depth - 2) // 6, num_classes).eval()
        source = "random-init"
    card = {
        "arch": f"resnet{model.depth}",
        "arch_family": "resnet",
        "framework": "supervised",
        "pretrain_data": "cifar-10",
        "head": "linear",
        "source": source,
        "hparams": {"depth": model.depth, "shortcut": "A"},
        "seed": seed,
    }
    return model, cifar_transform(), card
