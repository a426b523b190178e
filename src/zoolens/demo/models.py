"""The demo's small networks (PyTorch): each returns logits and exposes ``embed``.

Every network maps a (B, 1, 28, 28) float batch (pixels scaled to [0, 1], then standardised
with the Fashion-MNIST mean/std) to (B, 10) logits; ``embed(x)`` returns the pre-logit
representation used for the linear-probe study (paper Sec. 4.6). They are kept tiny so the
whole zoo trains on two CPU cores in minutes:

- ``SmallCNN``: two 3x3 conv blocks (BatchNorm, ReLU, max-pool), a hidden layer, a linear head;
  the base model, its Reinit/HParam variants, the SimCLR and digits encoders, the random
  features and the soup's ingredients.
- ``MLP``: two hidden layers on the flattened pixels.
- ``SmallResNet``: a stem and two stages of one BasicBlock each (He et al. 2016), global pooling.
- ``TinyViT``: a vision transformer (Dosovitskiy et al. 2021) on 7x7 patches (16 tokens).
- ``AutoEncoder``: an MLP encoder/decoder for the autoencoder framework.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

MEAN, STD = 0.2860, 0.3530  # Fashion-MNIST training-set pixel mean/std on [0, 1]


class SmallCNN(nn.Module):
    def __init__(
        self,
        channels: tuple[int, int] = (16, 32),
        hidden: int = 128,
        dropout: float = 0.0,
        num_classes: int = 10,
    ):
        super().__init__()
        c1, c2 = channels
        self.features = nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=1, bias=False),
            nn.BatchNorm2d(c1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1, bias=False),
            nn.BatchNorm2d(c2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(c2 * 7 * 7, hidden),
            nn.ReLU(),
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, num_classes)
        self.embed_dim = hidden

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.embed(x)))


class MLP(nn.Module):
    def __init__(self, hidden: tuple[int, int] = (256, 128), num_classes: int = 10):
        super().__init__()
        h1, h2 = hidden
        self.features = nn.Sequential(
            nn.Flatten(), nn.Linear(784, h1), nn.ReLU(), nn.Linear(h1, h2), nn.ReLU()
        )
        self.head = nn.Linear(h2, num_classes)
        self.embed_dim = h2

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class SmallResNet(nn.Module):
    """Stem (3x3 conv, stride 2 -> 14x14), two stages of widths (16, 32) with one BasicBlock
    each (the second stage at stride 2 -> 7x7): a 6-layer ResNet, about 1.5x the base CNN's
    multiply-adds (two blocks per stage cost 4.5x the CNN's CPU time)."""

    def __init__(self, widths: tuple[int, int] = (16, 32), blocks: int = 1, num_classes: int = 10):
        super().__init__()
        w1, w2 = widths
        self.stem = nn.Sequential(
            nn.Conv2d(1, w1, 3, 2, 1, bias=False), nn.BatchNorm2d(w1), nn.ReLU()
        )
        layers: list[nn.Module] = []
        cin = w1
        for stage, width in enumerate((w1, w2)):
            for i in range(blocks):
                layers.append(BasicBlock(cin, width, 2 if (stage > 0 and i == 0) else 1))
                cin = width
        self.layers = nn.Sequential(*layers)
        self.head = nn.Linear(w2, num_classes)
        self.embed_dim = w2

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(self.stem(x)).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))


class TinyViT(nn.Module):
    """Patches of 7x7 pixels (16 tokens) + a class token, pre-norm transformer encoder."""

    def __init__(
        self, dim: int = 64, depth: int = 3, heads: int = 4, patch: int = 7, num_classes: int = 10
    ):
        super().__init__()
        self.patch = patch
        tokens = (28 // patch) ** 2
        self.proj = nn.Linear(patch * patch, dim)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.randn(1, tokens + 1, dim) * 0.02)
        layer = nn.TransformerEncoderLayer(
            dim, heads, dim * 2, dropout=0.0, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)
        self.embed_dim = dim

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        p = self.patch
        b = x.shape[0]
        patches = x.unfold(2, p, p).unfold(3, p, p).reshape(b, -1, p * p)
        tokens = torch.cat([self.cls.expand(b, -1, -1), self.proj(patches)], dim=1) + self.pos
        return self.norm(self.encoder(tokens)[:, 0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))


class AutoEncoder(nn.Module):
    """784 -> 256 -> code -> 256 -> 784 (sigmoid output on [0, 1] pixels)."""

    def __init__(self, code: int = 64):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, code)
        )
        self.decoder = nn.Sequential(
            nn.ReLU(), nn.Linear(code, 256), nn.ReLU(), nn.Linear(256, 784)
        )
        self.embed_dim = code

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x)).view(-1, 1, 28, 28)


ARCHITECTURES = {
    "cnn": SmallCNN,
    "mlp": MLP,
    "resnet": SmallResNet,
    "vit": TinyViT,
    "autoencoder": AutoEncoder,
}


def build(arch: str, **kwargs) -> nn.Module:
    """Construct a demo network by name (see ARCHITECTURES)."""
    return ARCHITECTURES[arch](**kwargs)


def soup_cnn() -> nn.Module:
    """The soup ingredients' architecture, for ``zoolens soup --model
    python:zoolens.demo.models:soup_cnn`` on the demo's checkpoints."""
    return SmallCNN()
