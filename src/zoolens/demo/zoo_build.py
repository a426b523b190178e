"""Build the demo zoo: models that differ from a base CNN along each of the paper's axes.

Gontijo-Lopes et al. (2021), Sec. 3, group a pair of models by how their training differs:
Reinit (only the seed), HParam (hyper-parameters), Arch (architecture family), Framework
(training methodology) and Dataset (pre-training data). The demo trains, on Fashion-MNIST:

- Base: a small supervised CNN (``cnn-base``).
- Reinit: the same CNN with other seeds.
- HParam: dropout, label smoothing, strong weight decay, a lower learning rate.
- Arch: an MLP, a small ResNet, a tiny vision transformer.
- Framework: SimCLR-style contrastive pre-training on the unlabelled training images plus a
  linear probe; an autoencoder plus a linear probe; k-NN, logistic regression, a random forest
  and Gaussian naive Bayes on raw pixels.
- Dataset: a CNN trained on scikit-learn's 8x8 handwritten digits (upscaled) probed on
  Fashion-MNIST; an untrained (random) CNN probed on Fashion-MNIST.

Several of these are deliberately weak but very different (naive Bayes, random features,
digit features, the autoencoder): the paper's Sec. 4.5 finds that such models can still lift a
strong one in an ensemble. Every model is trained on the same seeded subsample of the 60,000
training images (profile ``train_size``) and scored on all 10,000 test images; cards say so.
Linear probes use ``zoolens.measure.probe.fit_linear_probe`` on standardised features.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from zoolens.demo.cache import ModelCache, spec_key
from zoolens.demo.data import FashionMNIST
from zoolens.progress import info, progress_bar

BASE = "cnn-base"
DATASET_NAME = "fashion-mnist"


@dataclass(frozen=True)
class Profile:
    """Sizes and epochs of one demo profile."""

    name: str
    train_size: int  # training subsample (same for every model)
    held_size: int  # held-out training images (soup selection), disjoint from it
    cnn_epochs: int
    arch_epochs: int
    simclr_epochs: int
    ae_epochs: int
    digits_epochs: int
    finetune_epochs: int
    soup_ingredients: int
    models: tuple[str, ...]  # which zoo members (names) to build
    knn_train: int = 0  # 0 = the whole training subsample
    forest_trees: int = 100
    minutes: int = 7  # stated time on 2 CPU cores, nothing cached (README)


ALL_MODELS = (
    "cnn-base",
    "cnn-seed1",
    "cnn-seed2",
    "cnn-dropout0.3",
    "cnn-labelsmooth0.1",
    "cnn-wd0.05",
    "cnn-lr1e-3",
    "mlp",
    "resnet-small",
    "vit-tiny",
    "simclr-cnn+probe",
    "autoencoder+probe",
    "knn-pixels",
    "logreg-pixels",
    "random-forest-pixels",
    "naive-bayes-pixels",
    "digits-cnn+probe",
    "random-cnn+probe",
)

PROFILES = {
    "default": Profile(
        "default",
        train_size=20000,
        held_size=5000,
        cnn_epochs=4,
        arch_epochs=4,
        simclr_epochs=4,
        ae_epochs=4,
        digits_epochs=15,
        finetune_epochs=1,
        soup_ingredients=5,
        models=ALL_MODELS,
        forest_trees=100,
        minutes=7,
    ),
    "quick": Profile(
        "quick",
        train_size=5000,
        held_size=2000,
        cnn_epochs=3,
        arch_epochs=3,
        simclr_epochs=2,
        ae_epochs=3,
        digits_epochs=8,
        finetune_epochs=1,
        soup_ingredients=3,
        forest_trees=30,
        minutes=4,
        models=(
            "cnn-base",
            "cnn-seed1",
            "cnn-labelsmooth0.1",
            "mlp",
            "simclr-cnn+probe",
            "autoencoder+probe",
            "knn-pixels",
            "naive-bayes-pixels",
            "digits-cnn+probe",
            "random-cnn+probe",
        ),
    ),
}

CNN_HP = {
    "epochs": None,
    "lr": 3e-3,
    "weight_decay": 5e-4,
    "label_smoothing": 0.0,
    "dropout": 0.0,
    "batch_size": 128,
    "optimizer": "AdamW + one-cycle",
}


@dataclass
class Spec:
    """One zoo member: how to train it (trainer + params) and its card fields (seed None:
    a classical learner that draws nothing at random)."""

    name: str
    trainer: str
    params: dict[str, Any]
    card: dict[str, Any]
    seed: int | None = 0
    depends: tuple[str, ...] = ()


def _card(
    arch: str,
    family: str,
    framework: str,
    pretrain: str,
    head: str,
    hparams: dict[str, Any],
    note: str,
    profile: Profile,
) -> dict[str, Any]:
    return {
        "arch": arch,
        "arch_family": family,
        "framework": framework,
        "pretrain_data": pretrain,
        "head": head,
        "hparams": hparams,
        "source": "zoolens demo (trained on this machine)",
        "notes": (
            f"{note} Trained on a seeded subsample of {profile.train_size:,} of the "
            f"60,000 Fashion-MNIST training images (the same subsample for every "
            f"demo model); scored on all 10,000 test images."
        ),
    }


def model_specs(profile: Profile) -> list[Spec]:
    """The zoo members of ``profile`` in zoo order (base first)."""
    p = profile
    cnn = dict(CNN_HP, epochs=p.cnn_epochs)
    specs: list[Spec] = []

    def cnn_spec(name: str, seed: int, note: str, **change: Any) -> Spec:
        hp = dict(cnn, **change)
        return Spec(
            name,
            "supervised",
            {"arch": "cnn", **hp},
            _card(
                "SmallCNN-16-32", "cnn", "supervised", DATASET_NAME, "linear (trained)", hp, note, p
            ),
            seed=seed,
        )

    specs.append(cnn_spec(BASE, 0, "The base model: a small supervised CNN."))
    specs.append(cnn_spec("cnn-seed1", 1, "Reinit: the base recipe with seed 1."))
    specs.append(cnn_spec("cnn-seed2", 2, "Reinit: the base recipe with seed 2."))
    # HParam models also use their own seeds: the categories are nested (each adds
    # divergence to the one before), so an HParam pair differs in the seed as well.
    specs.append(
        cnn_spec("cnn-dropout0.3", 3, "HParam: dropout 0.3 before the head (seed 3).", dropout=0.3)
    )
    specs.append(
        cnn_spec(
            "cnn-labelsmooth0.1", 4, "HParam: label smoothing 0.1 (seed 4).", label_smoothing=0.1
        )
    )
    specs.append(
        cnn_spec("cnn-wd0.05", 5, "HParam: strong weight decay 0.05 (seed 5).", weight_decay=0.05)
    )
    specs.append(
        cnn_spec("cnn-lr1e-3", 6, "HParam: peak learning rate 1e-3, base 3e-3 (seed 6).", lr=1e-3)
    )
    arch_hp = dict(cnn, epochs=p.arch_epochs)
    for seed, (name, arch, label, family, lr) in enumerate(
        (
            ("mlp", "mlp", "MLP-256-128", "mlp", 2e-3),
            ("resnet-small", "resnet", "ResNet-6 (16-32)", "resnet", 3e-3),
            ("vit-tiny", "vit", "ViT (dim 64, depth 3, 7x7 patches)", "vit", 2e-3),
        ),
        start=7,
    ):
        hp = dict(arch_hp, lr=lr)
        specs.append(
            Spec(
                name,
                "supervised",
                {"arch": arch, **hp},
                _card(
                    label,
                    family,
                    "supervised",
                    DATASET_NAME,
                    "linear (trained)",
                    hp,
                    f"Arch: a {label} trained like the base (seed {seed}).",
                    p,
                ),
                seed=seed,
            )
        )
    simclr_hp = {
        "epochs": p.simclr_epochs,
        "lr": 2e-3,
        "batch_size": 256,
        "temperature": 0.2,
        "augment": "flip, scale, shift, contrast, noise, cut-out",
        "probe": "fit_linear_probe on standardised embeddings",
    }
    specs.append(
        Spec(
            "simclr-cnn+probe",
            "simclr-probe",
            simclr_hp,
            _card(
                "SmallCNN-16-32",
                "cnn",
                "self-supervised contrastive (SimCLR)",
                DATASET_NAME,
                "linear probe",
                simclr_hp,
                "Framework: SimCLR-style contrastive pre-training on the "
                "unlabelled training images, then a linear probe on its 128-d embedding.",
                p,
            ),
            seed=10,
            depends=("simclr-encoder",),
        )
    )
    ae_hp = {
        "epochs": p.ae_epochs,
        "lr": 2e-3,
        "code": 64,
        "batch_size": 128,
        "probe": "fit_linear_probe on standardised codes",
    }
    specs.append(
        Spec(
            "autoencoder+probe",
            "autoencoder-probe",
            ae_hp,
            _card(
                "MLP autoencoder 784-256-64",
                "mlp",
                "autoencoder (reconstruction)",
                DATASET_NAME,
                "linear probe",
                ae_hp,
                "Framework: an autoencoder trained to reconstruct the "
                "unlabelled images, then a linear probe on its 64-d code.",
                p,
            ),
            seed=11,
        )
    )
    knn_hp = {"k": 10, "weights": "uniform", "features": "raw pixels in [0, 1]"}
    specs.append(
        Spec(
            "knn-pixels",
            "classical",
            {"learner": "knn", **knn_hp},
            _card(
                "k-nearest neighbours",
                "knn",
                "classical: k-NN",
                DATASET_NAME,
                "none",
                knn_hp,
                "Framework: k-NN vote fractions on raw pixels.",
                p,
            ),
            seed=None,
        )
    )
    lr_hp = {
        "features": "standardised raw pixels",
        "probe": "fit_linear_probe (L2 chosen on a validation split)",
    }
    specs.append(
        Spec(
            "logreg-pixels",
            "logreg",
            lr_hp,
            _card(
                "multinomial logistic regression",
                "linear",
                "classical: logistic regression",
                DATASET_NAME,
                "linear",
                lr_hp,
                "Framework: logistic regression on raw pixels.",
                p,
            ),
            seed=12,
        )
    )
    rf_hp = {"trees": p.forest_trees, "max_depth": None, "features": "raw pixels in [0, 1]"}
    specs.append(
        Spec(
            "random-forest-pixels",
            "classical",
            {"learner": "random-forest", **rf_hp},
            _card(
                "random forest",
                "trees",
                "classical: random forest",
                DATASET_NAME,
                "none",
                rf_hp,
                "Framework: a random forest on raw pixels.",
                p,
            ),
            seed=13,
        )
    )
    nb_hp = {"features": "raw pixels in [0, 1]"}
    specs.append(
        Spec(
            "naive-bayes-pixels",
            "classical",
            {"learner": "naive-bayes", **nb_hp},
            _card(
                "Gaussian naive Bayes",
                "naive-bayes",
                "classical: naive Bayes",
                DATASET_NAME,
                "none",
                nb_hp,
                "Framework: deliberately weak but "
                "very different (paper Sec. 4.5): Gaussian naive Bayes on pixels.",
                p,
            ),
            seed=None,
        )
    )
    digits_hp = {
        "epochs": p.digits_epochs,
        "lr": 3e-3,
        "batch_size": 64,
        "upstream": "sklearn load_digits, 1,797 8x8 images upscaled to 28x28",
        "probe": "fit_linear_probe on standardised embeddings",
    }
    specs.append(
        Spec(
            "digits-cnn+probe",
            "digits-probe",
            digits_hp,
            _card(
                "SmallCNN-16-32",
                "cnn",
                "supervised",
                "sklearn-digits (8x8, upscaled)",
                "linear probe",
                digits_hp,
                "Dataset: a CNN trained on handwritten digits; its 128-d "
                "embedding is probed on Fashion-MNIST.",
                p,
            ),
            seed=14,
        )
    )
    rand_hp = {
        "init": "PyTorch default (Kaiming uniform), untrained",
        "probe": "fit_linear_probe on standardised embeddings",
    }
    specs.append(
        Spec(
            "random-cnn+probe",
            "random-probe",
            rand_hp,
            _card(
                "SmallCNN-16-32",
                "cnn",
                "none (random features)",
                "none (untrained)",
                "linear probe",
                rand_hp,
                "Dataset: an untrained CNN (random features), then a linear "
                "probe: deliberately weak but different (paper Sec. 4.5).",
                p,
            ),
            seed=15,
        )
    )
    wanted = set(profile.models)
    return [s for s in specs if s.name in wanted]


def soup_specs(profile: Profile) -> list[Spec]:
    """Fine-tuning runs for the soups: same init (the SimCLR encoder + its linear-probe head),
    different hyper-parameters (Wortsman et al. 2022)."""
    grid = [
        {"lr": 1e-3, "weight_decay": 1e-4, "label_smoothing": 0.0, "seed": 0},
        {"lr": 3e-4, "weight_decay": 1e-4, "label_smoothing": 0.1, "seed": 1},
        {"lr": 1e-3, "weight_decay": 1e-2, "label_smoothing": 0.1, "seed": 2},
        {"lr": 2e-3, "weight_decay": 1e-3, "label_smoothing": 0.0, "seed": 3},
        {"lr": 5e-4, "weight_decay": 1e-2, "label_smoothing": 0.0, "seed": 4},
    ][: profile.soup_ingredients]
    out = []
    for i, g in enumerate(grid):
        hp = {"epochs": profile.finetune_epochs, "batch_size": 128, **g}
        out.append(
            Spec(
                f"finetune-{i}",
                "finetune",
                hp,
                {},
                seed=int(g["seed"]),
                depends=("simclr-encoder",),
            )
        )
    return out


@dataclass
class BuildContext:
    data: FashionMNIST
    profile: Profile
    cache: ModelCache
    threads: int = 2
    tensors: Any = None
    train_index: np.ndarray | None = None
    held_index: np.ndarray | None = None
    built: dict[str, dict[str, Any]] = field(default_factory=dict)
    timings: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        return f"{self.data.fingerprint}:{self.profile.train_size}:{self.profile.held_size}"


def prepare(ctx: BuildContext) -> None:
    """Seeded training subsample and a disjoint held-out set, as standardised tensors."""
    import torch

    from zoolens.demo.train import Tensors, to_tensor

    torch.set_num_threads(ctx.threads)
    rng = np.random.default_rng(0)
    perm = rng.permutation(len(ctx.data.train_labels))
    ctx.train_index = np.sort(perm[: ctx.profile.train_size])
    ctx.held_index = np.sort(
        perm[ctx.profile.train_size : ctx.profile.train_size + ctx.profile.held_size]
    )
    d = ctx.data
    ctx.tensors = Tensors(
        to_tensor(d.train_images[ctx.train_index]),
        torch.from_numpy(d.train_labels[ctx.train_index]),
        to_tensor(d.train_images[ctx.held_index]),
        torch.from_numpy(d.train_labels[ctx.held_index]),
        to_tensor(d.test_images),
        torch.from_numpy(d.test_labels),
    )


def _key(ctx: BuildContext, spec: Spec) -> str:
    from zoolens.demo.train import PROBE_OPTIONS

    deps = {d: ctx.built[d]["meta"]["key"] for d in spec.depends}
    # the probe settings shape every probed model and the soups' shared head
    return spec_key(
        {
            "name": spec.name,
            "trainer": spec.trainer,
            "params": spec.params,
            "seed": spec.seed,
            "depends": deps,
            "probe": PROBE_OPTIONS,
        },
        ctx.fingerprint,
    )


def _steps(n: int, batch: int, epochs: int) -> int:
    return epochs * -(-n // batch)


def _np(t) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float32)


# --------------------------------------------------------------------------- trainers


def _fit_on_train(model: Any, ctx: BuildContext, spec: Spec, advance: Any) -> None:
    """Supervised training on the training split with the spec's hyper-parameters."""
    from zoolens.demo.train import train_supervised

    p = spec.params
    train_supervised(
        model,
        ctx.tensors.x_train,
        ctx.tensors.y_train,
        weight_decay=p["weight_decay"],
        label_smoothing=p["label_smoothing"],
        **_schedule(spec, advance),
    )


def _train_supervised(ctx: BuildContext, spec: Spec, advance) -> dict[str, Any]:
    import torch

    from zoolens.demo.models import build
    from zoolens.demo.train import predict

    t = ctx.tensors
    p = spec.params
    torch.manual_seed(spec.seed)
    kwargs = {"dropout": p["dropout"]} if p["arch"] == "cnn" else {}
    model = build(p["arch"], **kwargs)
    _fit_on_train(model, ctx, spec, advance)
    return {
        "kind": "logits",
        "scores": predict(model, t.x_test).float(),
        "embeddings": predict(model, t.x_test, embed=True).float(),
    }


def _probe(ctx: BuildContext, train_emb, test_emb, seed: int = 0):
    import torch

    from zoolens.demo.train import linear_probe_logits

    logits = linear_probe_logits(
        _np(train_emb), ctx.tensors.y_train.numpy(), _np(test_emb), seed=seed
    )
    return torch.from_numpy(logits)


def _train_simclr_encoder(ctx: BuildContext, spec: Spec, advance) -> dict[str, Any]:
    import torch

    from zoolens.demo.models import SmallCNN
    from zoolens.demo.train import train_simclr

    torch.manual_seed(spec.seed)
    encoder = SmallCNN()
    train_simclr(
        encoder,
        ctx.tensors.x_train,
        temperature=spec.params["temperature"],
        **_schedule(spec, advance),
    )
    return {
        "kind": "encoder",
        "state_dict": {k: v.clone() for k, v in encoder.state_dict().items()},
    }


def _encoder_from(ctx: BuildContext, name: str):
    from zoolens.demo.models import SmallCNN

    model = SmallCNN()
    model.load_state_dict(ctx.built[name]["state_dict"])
    model.eval()
    return model


def _train_simclr_probe(ctx: BuildContext, spec: Spec, advance) -> dict[str, Any]:
    from zoolens.demo.train import predict

    enc = _encoder_from(ctx, "simclr-encoder")
    t = ctx.tensors
    tr, te = predict(enc, t.x_train, embed=True), predict(enc, t.x_test, embed=True)
    return {"kind": "logits", "scores": _probe(ctx, tr, te), "embeddings": te.float()}


def _train_autoencoder_probe(ctx: BuildContext, spec: Spec, advance) -> dict[str, Any]:
    from zoolens.demo.train import predict, train_autoencoder

    t = ctx.tensors
    ae = train_autoencoder(t.x_train, code=spec.params["code"], **_schedule(spec, advance))
    tr, te = predict(ae, t.x_train, embed=True), predict(ae, t.x_test, embed=True)
    return {"kind": "logits", "scores": _probe(ctx, tr, te), "embeddings": te.float()}


def _pixels(ctx: BuildContext) -> tuple[np.ndarray, np.ndarray]:
    d = ctx.data
    return (
        d.train_images[ctx.train_index].reshape(-1, 784).astype(np.float32) / 255.0,
        d.test_images.reshape(-1, 784).astype(np.float32) / 255.0,
    )


def _seed(spec: Spec) -> int:
    """The seed of a network's training (every network spec has one)."""
    assert spec.seed is not None, spec.name
    return spec.seed


def _schedule(spec: Spec, advance) -> dict[str, Any]:
    """The keyword arguments every network trainer of demo.train takes from its spec: the
    spec's epochs, learning rate, batch size and seed, and the progress callback."""
    p = spec.params
    return {
        "epochs": p["epochs"],
        "lr": p["lr"],
        "batch_size": p["batch_size"],
        "seed": _seed(spec),
        "progress": advance,
    }


def _train_classical(ctx: BuildContext, spec: Spec, advance) -> dict[str, Any]:
    import torch

    from zoolens.demo.train import fit_classical

    train_x, test_x = _pixels(ctx)
    p = dict(spec.params)
    probs = fit_classical(
        p.pop("learner"), p, train_x, ctx.tensors.y_train.numpy(), test_x, seed=spec.seed
    )
    return {"kind": "probs", "scores": torch.from_numpy(probs)}


def _train_logreg(ctx: BuildContext, spec: Spec, advance) -> dict[str, Any]:
    import torch

    train_x, test_x = _pixels(ctx)
    return {
        "kind": "logits",
        "scores": _probe(ctx, torch.from_numpy(train_x), torch.from_numpy(test_x)),
    }


def _train_digits_probe(ctx: BuildContext, spec: Spec, advance) -> dict[str, Any]:
    import torch

    from zoolens.demo.models import SmallCNN
    from zoolens.demo.train import digits_images, predict, train_supervised

    x, y = digits_images()
    torch.manual_seed(spec.seed)
    model = SmallCNN()
    train_supervised(model, x, y, **_schedule(spec, advance))
    t = ctx.tensors
    tr, te = predict(model, t.x_train, embed=True), predict(model, t.x_test, embed=True)
    return {"kind": "logits", "scores": _probe(ctx, tr, te), "embeddings": te.float()}


def _train_random_probe(ctx: BuildContext, spec: Spec, advance) -> dict[str, Any]:
    import torch

    from zoolens.demo.models import SmallCNN
    from zoolens.demo.train import predict

    torch.manual_seed(spec.seed)
    model = SmallCNN().eval()
    t = ctx.tensors
    tr, te = predict(model, t.x_train, embed=True), predict(model, t.x_test, embed=True)
    return {"kind": "logits", "scores": _probe(ctx, tr, te), "embeddings": te.float()}


def _train_finetune(ctx: BuildContext, spec: Spec, advance) -> dict[str, Any]:
    from zoolens.demo.train import predict

    model = _encoder_from(ctx, "simclr-encoder")
    model.head.load_state_dict(ctx.built["soup-init"]["head"])
    _fit_on_train(model, ctx, spec, advance)
    return {
        "kind": "ingredient",
        "state_dict": {k: v.clone() for k, v in model.state_dict().items()},
        "scores": predict(model, ctx.tensors.x_test).float(),
    }


TRAINERS: dict[str, Callable[..., dict[str, Any]]] = {
    "supervised": _train_supervised,
    "simclr-encoder": _train_simclr_encoder,
    "simclr-probe": _train_simclr_probe,
    "autoencoder-probe": _train_autoencoder_probe,
    "classical": _train_classical,
    "logreg": _train_logreg,
    "digits-probe": _train_digits_probe,
    "random-probe": _train_random_probe,
    "finetune": _train_finetune,
}


def _progress_total(ctx: BuildContext, spec: Spec) -> int:
    p, n = spec.params, ctx.profile.train_size
    if spec.trainer in ("supervised", "finetune", "autoencoder-probe"):
        return _steps(n, p["batch_size"], p["epochs"])
    if spec.trainer == "simclr-encoder":
        return p["epochs"] * (n // p["batch_size"])
    if spec.trainer == "digits-probe":
        return _steps(1797, p["batch_size"], p["epochs"])
    return 0


def build_one(ctx: BuildContext, spec: Spec) -> dict[str, Any]:
    """Train ``spec`` (or read it from the cache); record it in ``ctx.built``."""
    key = _key(ctx, spec)
    entry = ctx.cache.load(spec.name, key)
    if entry is None:
        total = _progress_total(ctx, spec)
        start, cpu = time.perf_counter(), time.process_time()
        with progress_bar(total, f"train {spec.name}", "batches") as advance:
            entry = TRAINERS[spec.trainer](ctx, spec, advance)
        seconds = time.perf_counter() - start
        entry["meta"] = {
            "train_seconds": seconds,
            "spec": _jsonable(spec.params),
            "train_cpu_seconds": time.process_time() - cpu,
            "trainer": spec.trainer,
        }
        entry = ctx.cache.save(spec.name, key, entry)
        if spec.trainer not in ("simclr-encoder",):
            info(
                f"trained {spec.name} in {seconds:.1f}s"
                + (f", test accuracy {_accuracy(ctx, entry):.4f}" if "scores" in entry else "")
            )
    ctx.built[spec.name] = entry
    ctx.timings[spec.name] = {
        "wall": float(entry["meta"].get("train_seconds", 0.0)),
        "cpu": float(entry["meta"].get("train_cpu_seconds", 0.0)),
    }
    return entry


def _jsonable(value: Any) -> Any:
    import json

    return json.loads(json.dumps(value, default=str))


def _accuracy(ctx: BuildContext, entry: dict[str, Any]) -> float:
    pred = entry["scores"].argmax(dim=1).numpy()
    return float(np.mean(pred == ctx.data.test_labels))


def simclr_encoder_spec(profile: Profile) -> Spec:
    hp = {"epochs": profile.simclr_epochs, "lr": 2e-3, "batch_size": 256, "temperature": 0.2}
    return Spec("simclr-encoder", "simclr-encoder", hp, {}, seed=10)


def soup_init(ctx: BuildContext) -> dict[str, Any]:
    """The soups' shared initialisation: the SimCLR encoder with a linear-probe head fitted on
    its frozen embeddings (LP-FT, as Wortsman et al. start from a zero-shot/LP head)."""
    import torch

    from zoolens.demo.train import PROBE_OPTIONS, predict, standardise
    from zoolens.measure.probe import fit_linear_probe

    enc = _encoder_from(ctx, "simclr-encoder")
    emb = _np(predict(enc, ctx.tensors.x_train, embed=True))
    # fold the standardisation into the head so the network needs no extra layer
    mean, std = emb.mean(axis=0), np.maximum(emb.std(axis=0), 1e-6)
    (z,) = standardise(emb)
    probe = fit_linear_probe(z, ctx.tensors.y_train.numpy(), seed=0, **PROBE_OPTIONS)
    weight = probe.coef_ / std[None, :]
    bias = probe.intercept_ - weight @ mean
    head = {
        "weight": torch.from_numpy(weight.astype(np.float32)),
        "bias": torch.from_numpy(bias.astype(np.float32)),
    }
    ctx.built["soup-init"] = {"head": head, "meta": {"key": "derived"}}
    return head
