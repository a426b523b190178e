"""Zoos unlike the demo, built from the real third-party outputs in ../shared/data: every model
top-1 only (a class and its confidence, as timm's inference dumps with k = 1) and every model
decision-only (the 30 published CIFAR-10 models' predicted classes, Recht et al. 2018)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from conftest import shared_path

PROBS = "cifar10-probs"
DECISIONS = "cifar10.1-predictions/cifar10-test"


def _labels_and_probs(folder: Path) -> tuple[np.ndarray, dict[str, tuple[np.ndarray, dict]]]:
    dense = np.loadtxt(folder / "densenet-bc-L190-k40.csv", delimiter=",")
    labels = dense[:, 0].astype(np.int64)
    models = {
        "densenet": (dense[:, 11:21], {"arch": "densenet-bc", "framework": "supervised"}),
        "resnet-110": (
            np.loadtxt(folder / "resnet-110.csv", delimiter=",")[:, 11:21],
            {"arch": "resnet-110", "arch_family": "resnet", "framework": "supervised"},
        ),
        "preresnet-110": (
            np.loadtxt(folder / "preresnet-110.csv", delimiter=",")[:, 11:21],
            {"arch": "preresnet-110", "arch_family": "resnet", "framework": "supervised"},
        ),
        "wideresnet": (
            np.load(folder / "wideresnet-16-4-cifar-10.npz")["predictions"],
            {"arch": "wrn-16-4", "arch_family": "resnet", "framework": "supervised"},
        ),
        "vgg16": (
            np.load(folder / "vgg16-keras-cifar-10.npz")["probs"],
            {"arch": "vgg16", "framework": "supervised"},
        ),
        "lenet": (
            np.load(folder / "lenet-5-cifar-10.npz")["predictions"],
            {"arch": "lenet-5", "framework": "supervised", "pretrain_data": "none"},
        ),
        "humans": (
            dense[:, 1:11] / dense[:, 1:11].sum(axis=1, keepdims=True),
            {"arch": "people", "framework": "human"},
        ),
    }
    return labels, models


def build_top1_zoo(path: Path):
    """Seven CIFAR-10 models, each stored as top-1 class + its probability only."""
    from zoolens.zoo.store import Zoo

    folder = shared_path(PROBS)
    labels, models = _labels_and_probs(folder)
    zoo = Zoo.create(path, labels, class_names=[f"class{k}" for k in range(10)])
    for name, (probs, card) in models.items():
        top = probs.argmax(axis=1)
        zoo.add(
            name,
            topk_indices=top[:, None],
            topk_values=probs[np.arange(len(top)), top][:, None].astype(np.float32),
            card=card,
        )
    return zoo


DECISION_MODELS = {
    "resnet_basic_110": {"arch": "resnet-110", "arch_family": "resnet"},
    "resnet_basic_56": {"arch": "resnet-56", "arch_family": "resnet"},
    "resnet_basic_32": {"arch": "resnet-32", "arch_family": "resnet"},
    "densenet_BC_100_12": {"arch": "densenet-bc-100", "arch_family": "densenet"},
    "vgg16_keras": {"arch": "vgg16", "arch_family": "vgg"},
    "shake_shake_26_2x64d_SSI_cutout16": {
        "arch": "shake-shake-26",
        "arch_family": "resnet",
        "hparams": {"cutout": 16},
    },
    "random_features_256k_aug": {"arch": "random-features", "framework": "kernel"},
    "alexnet_tf_ben": {"arch": "alexnet", "arch_family": "alexnet"},
}


def build_decision_zoo(path: Path):
    """Eight published CIFAR-10 models, decisions only (no probabilities at all)."""
    from zoolens.zoo.store import Zoo

    labels = _labels_and_probs(shared_path(PROBS))[0]
    folder = shared_path(DECISIONS)
    zoo = Zoo.create(path, labels, class_names=[f"class{k}" for k in range(10)])
    for name, card in DECISION_MODELS.items():
        pred = np.asarray(
            json.loads((folder / f"{name}_predictions.json").read_text()), dtype=np.int64
        )
        zoo.add(name, decisions=pred, card={"framework": "supervised", **card})
    return zoo
