"""ImageNet-shaped synthetic zoos: M models x N examples x C classes of float16 logits.

Each model's raw logit for example i and class c is

    u[i, c] = a_m * [c = y_i]                       signal: sets the model's accuracy
              - d * h_i * [c = y_i]                 shared latent difficulty h_i ~ N(0, 1)
              + g * [c in group(y_i), c != y_i]     look-alike classes (groups of 10)
              + sqrt(r_m) * U[i, c]                 noise shared by every model
              + sqrt(f_m) * F_family(m)[i, c]       noise shared within a model family
              + sqrt(1 - r_m - f_m) * E_m[i, c]     the model's own noise

with U, F, E independent standard normals. The shared terms make errors correlated (hard
examples are hard for all, and models confuse the same look-alikes); r_m, drawn per model
from ``shared``, gives a controllable spread of error correlation (high r_m: the model errs
where the others err). a_m is solved (a quantile of the margins) so that the model's accuracy
is a target drawn from ``accuracy`` (default 71-84 %, inside the ImageNet-like 70-85 % with a
margin for sampling error). Finally the logits are scaled by s_m so that temperature scaling
fitted on them returns a target T_m drawn from ``temperature`` (default 0.72-1.68, inside the
paper's 0.7-1.7 for ImageNet models), i.e. the models are
over- or under-confident the way real ones are, and their calibrated probabilities are as
peaked as real ones (this is what the exact top-k pruning sees, so it is not flattered).

Everything is generated in example chunks from seeds derived from (seed, what, chunk), so
any model's logits can be regenerated alone, and a zoo is written model by model (one
model's float16 logits in memory at a time, never the whole zoo).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

GROUP_SIZE = 10  # look-alike classes: ids c // 10 (like ImageNet's dog breeds)
_CHUNK = 4096


@dataclass
class ZooSpec:
    """What to generate. Defaults: the paper's ImageNet zoo shape."""

    num_models: int = 82
    num_examples: int = 50_000
    num_classes: int = 1_000
    # Targets sit inside the ImageNet-like 70-85 % / 0.7-1.7 ranges with a margin for the
    # sampling error of solving them on a few thousand examples.
    accuracy: tuple[float, float] = (0.71, 0.84)
    shared: tuple[float, float] = (0.05, 0.6)  # r_m range: spread of error correlation
    family_share: float = 0.15
    num_families: int = 6
    difficulty: float = 1.0  # d: weight of the shared per-example difficulty
    lookalike: float = 1.0  # g: boost of the true class's group mates
    temperature: tuple[float, float] = (0.72, 1.68)
    seed: int = 0
    # Filled by resolve(): per-model parameters.
    models: list[dict] = field(default_factory=list)

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.num_models, self.num_examples, self.num_classes


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, *key]))


def labels(spec: ZooSpec) -> np.ndarray:
    """(N,) int64 true labels, uniform over the classes."""
    return _rng(spec.seed, 1).integers(0, spec.num_classes, spec.num_examples).astype(np.int64)


def _shared_noise(spec: ZooSpec, key: tuple, n: int, cache: dict | None) -> np.ndarray:
    """Standard normal (n, C) noise shared by several models (all, or one family); drawn
    from its own seed, so it is the same whoever draws it; ``cache`` (write_zoo's) keeps it
    for the next model instead of drawing it again."""
    if cache is not None and key in cache:
        return cache[key]
    noise = _rng(spec.seed, *key).standard_normal((n, spec.num_classes), dtype=np.float32)
    if cache is not None:
        cache[key] = noise
    return noise


def _raw_logits(
    spec: ZooSpec,
    model: dict,
    rows: slice,
    y: np.ndarray,
    signal: float | None = None,
    cache: dict | None = None,
) -> np.ndarray:
    """(n, C) float32 raw logits u (before the confidence scale) for examples ``rows``."""
    start = rows.start
    n, num_classes = rows.stop - rows.start, spec.num_classes
    chunk_id = start // _CHUNK
    r, f = model["shared"], spec.family_share
    own = math.sqrt(max(1.0 - r - f, 0.0))
    u = _rng(spec.seed, 4, model["index"], chunk_id).standard_normal(
        (n, num_classes), dtype=np.float32
    )
    u *= np.float32(own)
    u += np.float32(math.sqrt(r)) * _shared_noise(spec, (2, chunk_id), n, cache)
    u += np.float32(math.sqrt(f)) * _shared_noise(spec, (3, model["family"], chunk_id), n, cache)
    hardness = _rng(spec.seed, 5, chunk_id).standard_normal(n).astype(np.float32)
    yr = y[rows]
    group_start = (yr // GROUP_SIZE) * GROUP_SIZE
    cols = group_start[:, None] + np.arange(GROUP_SIZE)
    valid = cols < num_classes
    ri = np.broadcast_to(np.arange(n)[:, None], cols.shape)
    u[ri[valid], cols[valid]] += np.float32(spec.lookalike)
    a = model["signal"] if signal is None else signal
    u[np.arange(n), yr] += np.float32(a - spec.lookalike) - np.float32(spec.difficulty) * hardness
    return u


def _chunks(num_examples: int, limit: int | None = None) -> Iterator[slice]:
    stop = num_examples if limit is None else min(limit, num_examples)
    for s in range(0, stop, _CHUNK):
        yield slice(s, min(s + _CHUNK, stop))


def resolve(spec: ZooSpec, *, calibration_examples: int = 8192) -> ZooSpec:
    """Draw each model's targets and solve its signal a_m and confidence scale s_m.

    a_m: the target-accuracy quantile of the margins on ``calibration_examples`` examples;
    s_m = T_m / T_raw with T_raw the temperature fitted on the raw logits of those examples.
    """
    from zoolens.measure.calibration import fit_temperature

    rng = _rng(spec.seed, 0)
    y = labels(spec)
    probe = slice(0, min(calibration_examples, spec.num_examples))
    spec.models = []
    for m in range(spec.num_models):
        model = {
            "index": m,
            "name": f"synthetic-{m:03d}",
            "family": int(rng.integers(0, spec.num_families)),
            "shared": float(rng.uniform(*spec.shared)),
            "target_accuracy": float(rng.uniform(*spec.accuracy)),
            "target_temperature": float(rng.uniform(*spec.temperature)),
        }
        # Accuracy at signal a: right iff a > margin = max_{c != y} u0[c] - u0[y], where u0
        # are the raw logits at a = 0; the target accuracy is a quantile of the margins.
        u0 = _raw_logits(spec, model, probe, y, 0.0)
        yp = y[probe]
        true = u0[np.arange(len(yp)), yp].copy()
        u0[np.arange(len(yp)), yp] = -np.inf
        margin = u0.max(axis=1) - true
        model["signal"] = float(np.quantile(margin, model["target_accuracy"]))
        del u0
        fit_rows = slice(0, min(2048, spec.num_examples))
        t_raw = fit_temperature(
            _raw_logits(spec, model, fit_rows, y), y[fit_rows], tol=1e-6
        ).temperature
        model["scale"] = model["target_temperature"] / t_raw
        spec.models.append(model)
    return spec


def model_logits(
    spec: ZooSpec, m: int, rows: slice | None = None, cache: dict | None = None
) -> np.ndarray:
    """(n, C) float32 logits of model m for examples ``rows`` (all by default).

    ``cache``: a dict kept across calls to reuse the shared noise (write_zoo passes one:
    about (1 + families) x N x C x 4 bytes, 1.4 GB at the full size, instead of drawing it
    again for every model)."""
    if not spec.models:
        resolve(spec)
    rows = rows or slice(0, spec.num_examples)
    y = labels(spec)
    model = spec.models[m]
    parts = []
    for s in range(rows.start, rows.stop, _CHUNK):
        chunk_start = (s // _CHUNK) * _CHUNK
        chunk = slice(chunk_start, min(chunk_start + _CHUNK, spec.num_examples))
        u = _raw_logits(spec, model, chunk, y, cache=cache)
        u *= np.float32(model["scale"])
        lo, hi = max(rows.start, chunk.start), min(rows.stop, chunk.stop)
        parts.append(u[lo - chunk.start : hi - chunk.start])
    return np.concatenate(parts) if len(parts) > 1 else parts[0]


def write_zoo(
    path: str | Path, spec: ZooSpec, *, dtype: str = "float16", progress: bool = True
) -> Path:
    """Write the zoo with the Zoo API, one model at a time; returns the path."""
    from zoolens import Zoo

    if not spec.models:
        resolve(spec)
    y = labels(spec)
    zoo = Zoo.create(path, y, dataset_name=f"synthetic-imagenet-{spec.seed}", seed=spec.seed)
    cache: dict = {}
    with zoo.batch():  # one manifest write for the whole zoo (thousands of models)
        _write_models(zoo, spec, dtype, cache, progress)
    return Path(path)


def _write_models(zoo, spec: ZooSpec, dtype: str, cache: dict, progress: bool) -> None:
    from zoolens import ModelCard

    for model in spec.models:
        if progress:
            print(
                f"  writing {model['name']} ({model['index'] + 1}/{spec.num_models})",
                file=sys.stderr,
                flush=True,
            )
        logits = model_logits(spec, model["index"], cache=cache).astype(dtype)
        card = ModelCard(
            name=model["name"],
            arch=f"synthetic-family-{model['family']}",
            arch_family=f"family-{model['family']}",
            framework="synthetic",
            pretrain_data="synthetic",
            seed=model["index"],
            hparams={
                "shared": round(model["shared"], 4),
                "target_accuracy": round(model["target_accuracy"], 4),
                "target_temperature": round(model["target_temperature"], 4),
            },
        )
        zoo.add(model["name"], logits=logits, card=card, dtype=dtype)
        del logits
