"""Reference tables of ``analyze`` on fixed zoos, to prove a rewrite changes no number.

``tests/fixtures/analyze_reference/<case>/`` holds the tables (CSV) and the summary's
findings (``summary.json``: headline, temperature fits, notes, settings) that the
implementation before the staged pipeline and the fused evaluation pass (commit 92949a9)
wrote on four cases: three synthetic zoos (every output kind, multilabel, calibrated
logits) and the real CIFAR-10 zoo of ``../shared/data/cifar10-probs``.
``tests/test_analyze_reference.py`` runs today's ``analyze`` on the same zoos and compares.

Regenerate (only when a table is meant to change, and say so in the commit):

    PYTHONPATH=src python tests/_analyze_reference.py tests/fixtures/analyze_reference
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

FIXTURES = Path(__file__).parent / "fixtures" / "analyze_reference"
# summary.json blocks that describe findings (provenance, timings and paths are left out).
SUMMARY_KEYS = (
    "headline",
    "temperature_fits",
    "temperature_warnings",
    "notes",
    "decision_only_models",
    "topk_models",
    "splits",
    "multilabel",
)

CIFAR_FILES = {
    "lenet-5": ("lenet-5-cifar-10.npz", dict(arch="lenet5")),
    "wideresnet-16-4": ("wideresnet-16-4-cifar-10.npz", dict(arch="wrn16-4")),
    "vgg16": ("vgg16-keras-cifar-10.npz", dict(arch="vgg16", framework="keras")),
    "out-of-fold": ("cifar10_test_set_pyx.npy", dict(arch="unknown")),
    "densenet-bc": ("densenet-bc-L190-k40.csv", dict(arch="densenet")),
    "preresnet-110": ("preresnet-110.csv", dict(arch="preresnet110")),
    "resnet-110": ("resnet-110.csv", dict(arch="resnet110")),
    "low-accuracy": ("human_model_truth_cifar10h.csv", dict(arch="unknown2")),
}


def _softmax64(z: np.ndarray, t: float = 1.0) -> np.ndarray:
    s = z.astype(np.float64) / t
    s = s - s.max(axis=1, keepdims=True)
    e = np.exp(s)
    return e / e.sum(axis=1, keepdims=True)


def build_synthetic(
    path: Path, *, n: int = 260, c: int = 5, seed: int = 0, multilabel: bool = False
):
    """Seven models of every output kind over a shared latent difficulty."""
    from zoolens.zoo.store import Zoo

    rng = np.random.default_rng(seed)
    labels = rng.integers(0, c, n)
    truth: np.ndarray = labels
    if multilabel:
        truth = np.zeros((n, c), dtype=np.uint8)
        truth[np.arange(n), labels] = 1
        extra = rng.integers(0, c, n)
        truth[np.arange(n), extra] |= (rng.random(n) < 0.4).astype(np.uint8)
        truth[:3] = 0
    attributes = pd.DataFrame(
        {"domain": rng.choice(["photo", "sketch", "paint"], n), "blur": rng.integers(0, 2, n)}
    )
    zoo = Zoo.create(
        path,
        truth,
        class_names=[f"class{k}" for k in range(c)],
        calibration_fraction=0.3,
        seed=1,
        attributes=attributes,
        class_groups={"nature": [0, 1], "things": [3, 4]},
    )
    difficulty = rng.normal(size=n)

    def logits(strength: float, scale: float) -> np.ndarray:
        z = rng.normal(size=(n, c)) * scale
        z[np.arange(n), labels] += strength - 0.8 * difficulty
        return z.astype(np.float32)

    card = dict(arch="resnet50", framework="supervised", pretrain_data="ImageNet", seed=0)
    zoo.add("base", logits=logits(2.0, 1.0), card=card)
    zoo.add("reinit", logits=logits(1.8, 1.3), card={**card, "seed": 1})
    zoo.add("wide", probs=_softmax64(logits(1.5, 0.6)), card={**card, "arch": "resnet101"})
    zoo.add("vit", logits=logits(1.2, 2.5), card={**card, "arch": "vit_b16"})
    top = _softmax64(logits(1.0, 1.0), 0.7)
    order = np.argsort(-top, axis=1)[:, :2]
    zoo.add(
        "clip-top2",
        topk_indices=order,
        topk_values=np.take_along_axis(top, order, 1),
        card={**card, "framework": "contrastive"},
    )
    zoo.add(
        "humans",
        decisions=np.where(rng.random(n) < 0.85, labels, rng.integers(0, c, n)),
        card={**card, "framework": "human"},
    )
    zoo.add("weak", logits=logits(0.4, 1.0), card={**card, "pretrain_data": "JFT"})
    zoo.add("fp16", logits=logits(1.6, 1.1).astype(np.float16), card={**card, "arch": "convnext"})
    return zoo


def build_cifar10(path: Path, data: Path):
    """The real CIFAR-10 zoo: eight models' probabilities and the CIFAR-10H vote counts."""
    from zoolens.zoo.store import Zoo

    arrays: dict[str, np.ndarray] = {}
    votes = labels = None
    for name, (file, _) in CIFAR_FILES.items():
        source = data / file
        if file.endswith(".npz"):
            npz = np.load(source)
            arrays[name] = npz["predictions" if "predictions" in npz else "probs"]
        elif file.endswith(".npy"):
            arrays[name] = np.load(source)
        else:
            table = np.loadtxt(source, delimiter=",")
            arrays[name] = table[:, 10:20] if name == "low-accuracy" else table[:, 11:21]
            if name == "densenet-bc":
                votes, labels = table[:, 1:11], table[:, 0].astype(np.int64)
    zoo = Zoo.create(
        path,
        labels,
        seed=0,
        class_names=[
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
        ],
        class_groups={"animals": [2, 3, 4, 5, 6, 7], "vehicles": [0, 1, 8, 9]},
    )
    for name, probs in arrays.items():
        card = dict(CIFAR_FILES[name][1])
        card.setdefault("framework", "supervised")
        zoo.add(name, probs=probs / probs.sum(axis=1, keepdims=True), card=card)
    zoo.add("cifar10h-humans", counts=votes, card=dict(framework="human"))
    return zoo


# case -> (zoo builder kwargs, analyze kwargs)
SYNTHETIC_CASES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "synthetic": (
        {},
        dict(
            base="base",
            pool="accuracy<0.9",
            max_steps=6,
            n_bootstrap=300,
            seed=5,
            chunk_size=37,
            interpolation_pairs=[("base", "vit")],
        ),
    ),
    "synthetic_logits": (
        {"seed": 3},
        dict(base="reinit", combine="logits", max_steps=4, n_bootstrap=150, seed=2),
    ),
    "synthetic_multilabel": (
        {"seed": 1, "multilabel": True},
        dict(base="base", max_steps=3, n_bootstrap=100, seed=0, chunk_size=50),
    ),
}
CIFAR_CASE = (
    "cifar10",
    dict(base="resnet-110", pool="accuracy<0.94", max_steps=5, n_bootstrap=200, seed=0),
)


def run_case(zoo: Any, out: Path, options: dict[str, Any]) -> Path:
    """Run ``analyze`` with ``options`` and write its tables and summary to ``out``."""
    from zoolens.study.analyze import analyze

    options = dict(options)
    analyze(zoo, options.pop("base"), out, parquet=False, **options)
    return out


def findings(summary: dict[str, Any]) -> dict[str, Any]:
    """The blocks of summary.json compared with the reference."""
    return {key: summary[key] for key in SUMMARY_KEYS if key in summary}


def write_fixture(out_dir: Path, data: Path | None) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        cases = [
            (name, build_synthetic(Path(tmp) / name, **zoo_kw), options)
            for name, (zoo_kw, options) in SYNTHETIC_CASES.items()
        ]
        if data is not None and data.is_dir():
            cases.append((CIFAR_CASE[0], build_cifar10(Path(tmp) / "cifar10", data), CIFAR_CASE[1]))
        for name, zoo, options in cases:
            target = out_dir / name
            target.mkdir(parents=True, exist_ok=True)
            run_case(zoo, Path(tmp) / f"{name}-out", options)
            for csv in sorted((Path(tmp) / f"{name}-out").glob("*.csv")):
                (target / csv.name).write_bytes(csv.read_bytes())
            summary = json.loads((Path(tmp) / f"{name}-out" / "summary.json").read_text())
            (target / "summary.json").write_text(
                json.dumps(findings(summary), indent=1, sort_keys=True) + "\n"
            )
            print(f"wrote {target}")


if __name__ == "__main__":
    here = Path(__file__).resolve().parent
    write_fixture(
        Path(sys.argv[1]) if len(sys.argv) > 1 else FIXTURES,
        here.parent.parent / "shared" / "data" / "cifar10-probs",
    )
