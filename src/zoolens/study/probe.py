"""Representation studies over a zoo: feature combination, diversity, CKA, transfer, stacking.

Gontijo-Lopes, Dauphin & Cubuk (2021), Sec. 4.6-4.7:
- Fig. 6 left (``probe.csv``): L2-normalise two models' embeddings, keep a random
  n_A = floor(f·D_A) dims of A and n_B = min(round((1−f)·D_B), max(D_A, D_B) − n_A) of B,
  concatenate, linear probe; f = 0, .25, .5, .75, 1 over several random draws.
- Fig. 6 right (``diversity.csv``): rank the concatenated embedding's dims by mean |corr| with
  the others on the probe's training split; probe the k most diverse dims (and k random dims,
  averaged over draws) for k = D/8 … D; the smallest k reaching the target accuracy (default:
  the better single model's full-embedding probe) is in ``diversity.json``.
- Fig. 13 (``cka.csv``): linear, RBF and debiased CKA of every pair, beside the pair's error
  consistency κ on the zoo's evaluation split.
- Fig. 7 (``transfer.csv``, ``stacking.csv``): probe each model's embedding on a downstream
  labelled set (accuracy, or VOC 11-point mAP when multi-label) against its upstream accuracy,
  and stacked generalization (Wolpert 1992): the probe on two full embeddings concatenated.

Probes train on a seeded random split of the examples (``test_fraction`` held out) and choose
their L2 penalty on a validation part of the training split (``zoolens.measure.probe``). The
array-level functions below take numpy arrays; ``run_probe`` / ``run_stacking`` read a zoo
and write the tables (CSV, no comment lines) with a sibling ``<table>.json`` holding
``table_version`` and how the table was made.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from zoolens import __version__
from zoolens.contracts import columns
from zoolens.errors import ZoolensError, require_torch
from zoolens.measure.agreement import correctness, error_consistency
from zoolens.measure.features import (
    cka_matrix,
    combine_at_rates,
    diversity_ranking,
    k_grid,
    l2_normalize_rows,
    linear_cka_matrices,
)
from zoolens.measure.probe import fit_linear_probe
from zoolens.progress import info, progress_bar
from zoolens.study.tables import output_folder, write_table
from zoolens.zoo.store import Zoo

PROBE_COLUMNS = columns("probe")
DIVERSITY_COLUMNS = columns("diversity")
CKA_COLUMNS = columns("cka")
TRANSFER_COLUMNS = columns("transfer")
STACKING_COLUMNS = columns("stacking")
DEFAULT_RATES = (0.0, 0.25, 0.5, 0.75, 1.0)
# Default λ grid of the study's probes (for L2-normalised rows; see measure.probe).
STUDY_L2_GRID = (1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6)

Advance = Callable[[int], None]


def _no_progress(n: int = 1) -> None:
    return None


@dataclass(frozen=True)
class ProbeSettings:
    """How each probe is fit (passed to ``fit_linear_probe``); ``seed`` seeds its validation
    split."""

    l2_grid: tuple[float, ...] = STUDY_L2_GRID
    validation_fraction: float = 0.2
    seed: int = 0
    dtype: str = "float32"
    device: str | None = None
    max_iter: int = 1000
    tol: float = 1e-6

    def fit(self, x: np.ndarray, y: np.ndarray, multilabel: bool = False) -> Any:
        return fit_linear_probe(
            x,
            y,
            l2_grid=list(self.l2_grid),
            validation_fraction=self.validation_fraction,
            seed=self.seed,
            dtype=self.dtype,
            device=self.device,
            multilabel=multilabel,
            max_iter=self.max_iter,
            tol=self.tol,
        )


@dataclass
class ProbeResult:
    """Tables written (name → DataFrame) and the run's notes (JSON-ready)."""

    tables: dict[str, pd.DataFrame]
    summary: dict[str, Any] = field(default_factory=dict)
    out_dir: Path | None = None


# ----------------------------------------------------------------------------- checks, splits


def check_rates(rates: Sequence[float]) -> list[float]:
    """Rates as floats; ZoolensError naming the first one outside [0, 1]."""
    out = []
    for rate in rates:
        rate = float(rate)
        if not 0.0 <= rate <= 1.0:
            raise ZoolensError(
                f"rate {rate:g} is outside [0, 1] (the fraction of model A's dimensions kept)"
            )
        out.append(rate)
    if not out:
        raise ZoolensError("no rates given")
    return out


def probe_split(n: int, test_fraction: float = 0.3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Seeded random (train, test) split of n examples; test = round(fraction·n), both sorted."""
    if not 0.0 < test_fraction < 1.0:
        raise ZoolensError(f"test fraction {test_fraction:g} must lie strictly between 0 and 1")
    n_test = int(round(test_fraction * n))
    if n_test < 1 or n - n_test < 2:
        raise ZoolensError(f"{n} examples are too few for a probe train/test split")
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])


def _check_pair(
    emb_a: np.ndarray, emb_b: np.ndarray, labels: np.ndarray, names: Sequence[str]
) -> None:
    for name, emb in zip(names, (emb_a, emb_b)):
        if np.ndim(emb) != 2:
            raise ZoolensError(
                f"model {name!r}: embeddings must be (examples, dims), got shape {np.shape(emb)}"
            )
        if emb.shape[0] != len(labels):
            raise ZoolensError(
                f"model {name!r}: embeddings have {emb.shape[0]} rows but there "
                f"are {len(labels)} labels"
            )


class _ProbeCache:
    """Probe test scores keyed by the selected columns, so f = 0 / f = 1 (all draws select
    every dim) and k = D (diverse = random = everything) are fit once."""

    def __init__(
        self,
        z: np.ndarray,
        labels: np.ndarray,
        train: np.ndarray,
        test: np.ndarray,
        settings: ProbeSettings,
        multilabel: bool = False,
    ):
        self.z, self.labels, self.train, self.test = z, labels, train, test
        self.settings, self.multilabel = settings, multilabel
        self.scores: dict[bytes, float] = {}
        self.fits = 0

    def score(self, dims: np.ndarray) -> float:
        dims = np.sort(np.asarray(dims, dtype=np.int64))
        key = dims.tobytes()
        if key not in self.scores:
            x = self.z[:, dims]
            probe = self.settings.fit(x[self.train], self.labels[self.train], self.multilabel)
            self.scores[key] = float(probe.score(x[self.test], self.labels[self.test]))
            self.fits += 1
        return self.scores[key]


# ----------------------------------------------------------------------------- Fig. 6


def feature_combination_table(
    emb_a: np.ndarray,
    emb_b: np.ndarray,
    labels: np.ndarray,
    train: np.ndarray,
    test: np.ndarray,
    *,
    names: tuple[str, str] = ("A", "B"),
    rates: Sequence[float] = DEFAULT_RATES,
    draws: int = 3,
    seed: int = 0,
    settings: ProbeSettings = ProbeSettings(),
    advance: Advance = _no_progress,
    _cache: _ProbeCache | None = None,
) -> pd.DataFrame:
    """probe.csv rows for one pair: test accuracy of the probe on A and B combined at rate f.

    Rows (model_a, model_b, rate, draw, n_dims_a, n_dims_b, accuracy); rate = f, the fraction
    of A kept (f = 1: A alone, f = 0: B alone). Dimension draws as
    ``zoolens.measure.features.combine_at_rates`` (seeded per rate and draw).
    """
    rates = check_rates(rates)
    _check_pair(emb_a, emb_b, labels, names)
    cache = _cache or _ProbeCache(_joint(emb_a, emb_b), labels, train, test, settings)
    d_a = emb_a.shape[1]
    rows = []
    for rate, draw, comb in combine_at_rates(
        emb_a, emb_b, rates, draws=draws, seed=seed, normalize=False
    ):
        acc = cache.score(np.concatenate([comb.dims_a, comb.dims_b + d_a]))
        rows.append((names[0], names[1], rate, draw, comb.dims_a.size, comb.dims_b.size, acc))
        advance(1)
    return pd.DataFrame(rows, columns=PROBE_COLUMNS)


def _joint(emb_a: np.ndarray, emb_b: np.ndarray) -> np.ndarray:
    """[l2(A) | l2(B)]: each model's rows normalised over its full embedding (docs/design.md sec. 3)."""
    a = l2_normalize_rows(emb_a)
    b = l2_normalize_rows(emb_b)
    return np.concatenate([a, b.astype(a.dtype, copy=False)], axis=1)


def diversity_table(
    emb_a: np.ndarray,
    emb_b: np.ndarray,
    labels: np.ndarray,
    train: np.ndarray,
    test: np.ndarray,
    *,
    names: tuple[str, str] = ("A", "B"),
    target_accuracy: float | None = None,
    steps: int = 8,
    draws: int = 3,
    seed: int = 0,
    settings: ProbeSettings = ProbeSettings(),
    advance: Advance = _no_progress,
    _cache: _ProbeCache | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """diversity.csv rows for one pair, and the fewest dims reaching the target.

    The concatenated, row-normalised embedding Z = [l2(A) | l2(B)] (D dims) is ranked by
    ``diversity_ranking(Z[train])``; for k on ``k_grid(D, steps)`` the probe on the k most
    diverse dims ("diverse") and on k random dims ("random", mean over ``draws``) is scored
    on the test split. ``target_accuracy`` defaults to the better single model's probe on its
    full embedding. Returns the table and {target_accuracy, fewest_dims: {selection: k|None}}.
    """
    _check_pair(emb_a, emb_b, labels, names)
    cache = _cache or _ProbeCache(_joint(emb_a, emb_b), labels, train, test, settings)
    d_a, d = emb_a.shape[1], emb_a.shape[1] + emb_b.shape[1]
    if target_accuracy is None:
        target_accuracy = max(cache.score(np.arange(d_a)), cache.score(np.arange(d_a, d)))
    order = diversity_ranking(cache.z[train])
    rows = []
    for k in k_grid(d, steps):
        rows.append((names[0], names[1], "diverse", k, cache.score(order[:k]), target_accuracy))
        advance(1)
        accs = []
        for draw in range(draws):
            rng = np.random.default_rng([seed, k, draw, 6])
            accs.append(cache.score(rng.choice(d, size=k, replace=False)))
            advance(1)
        rows.append((names[0], names[1], "random", k, float(np.mean(accs)), target_accuracy))
    table = pd.DataFrame(rows, columns=DIVERSITY_COLUMNS)
    fewest = {}
    for selection in ("diverse", "random"):
        hit = table[(table.selection == selection) & (table.accuracy >= target_accuracy)]
        fewest[selection] = int(hit.k.min()) if len(hit) else None
    return table, {
        "target_accuracy": float(target_accuracy),
        "fewest_dims": fewest,
        "total_dims": int(d),
    }


# ----------------------------------------------------------------------------- Fig. 13


def _pairs_of(names: Sequence[str]) -> list[tuple[int, int]]:
    return list(itertools.combinations(range(len(names)), 2))


def cka_table(
    embeddings: Mapping[str, np.ndarray],
    *,
    correct: np.ndarray | None = None,
    rbf_max_examples: int | None = 10_000,
    threshold: float = 0.5,
    seed: int = 0,
) -> pd.DataFrame:
    """cka.csv: one row per unordered pair (a before b in the mapping's order).

    cka_linear, cka_rbf (threshold t, at most ``rbf_max_examples`` rows), cka_debiased
    (linear, unbiased HSIC) from ``linear_cka_matrices`` (one pass of cross products for both) and
    ``cka_matrix`` (no loop over pairs), and the pair's error consistency κ
    (``zoolens.measure.agreement.error_consistency``) from the (M, N) boolean correctness
    matrix ``correct`` (rows in the mapping's order); NaN when ``correct`` is None.
    """
    names = list(embeddings)
    if len(names) < 2:
        raise ZoolensError(f"CKA needs at least two models with embeddings, got {len(names)}")
    mats = [embeddings[n] for n in names]
    lin, deb = linear_cka_matrices(mats)
    rbf = cka_matrix(
        mats, kernel="rbf", threshold=threshold, max_examples=rbf_max_examples, seed=seed
    )
    if correct is not None:
        kappa = error_consistency(np.asarray(correct, dtype=bool))
    else:
        kappa = np.full((len(names), len(names)), np.nan)
    rows = [
        (names[i], names[j], lin[i, j], rbf[i, j], deb[i, j], kappa[i, j])
        for i, j in _pairs_of(names)
    ]
    return pd.DataFrame(rows, columns=CKA_COLUMNS)


# ----------------------------------------------------------------------------- Fig. 7


def transfer_and_stacking_tables(
    embeddings: Mapping[str, np.ndarray],
    labels: np.ndarray,
    train: np.ndarray,
    test: np.ndarray,
    *,
    upstream_accuracy: Mapping[str, float] | None = None,
    pairs: Sequence[tuple[str, str]] | None = None,
    multilabel: bool | None = None,
    settings: ProbeSettings = ProbeSettings(),
    advance: Advance = _no_progress,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """transfer.csv and stacking.csv from downstream embeddings.

    Each model's full embedding (L2-normalised rows) is probed on the downstream train split
    and scored on its test split: accuracy, or VOC 11-point mAP when ``labels`` is an (N, C)
    0/1 matrix (``downstream_metric`` "accuracy" | "map11"). Stacking (Wolpert 1992; paper
    Fig. 7 right): the probe on [l2(A) | l2(B)] for every pair (default: all pairs in order).
    """
    names = list(embeddings)
    labels = np.asarray(labels)
    if multilabel is None:
        multilabel = labels.ndim == 2
    metric = "map11" if multilabel else "accuracy"
    normed = {}
    for name in names:
        if np.ndim(embeddings[name]) != 2 or embeddings[name].shape[0] != labels.shape[0]:
            raise ZoolensError(
                f"model {name!r}: downstream embeddings have shape "
                f"{np.shape(embeddings[name])} but there are {labels.shape[0]} "
                "downstream labels"
            )
        normed[name] = l2_normalize_rows(embeddings[name])
    if pairs is None:
        pairs = [(names[i], names[j]) for i, j in _pairs_of(names)]
    for a, b in pairs:
        for name in (a, b):
            if name not in normed:
                raise ZoolensError(f"model {name!r} has no downstream embeddings")

    def score(x: np.ndarray) -> float:
        probe = settings.fit(x[train], labels[train], multilabel)
        advance(1)
        return float(probe.score(x[test], labels[test]))

    single = {name: score(normed[name]) for name in names}
    upstream_accuracy = upstream_accuracy or {}
    transfer = pd.DataFrame(
        [
            (name, float(upstream_accuracy.get(name, np.nan)), metric, single[name])
            for name in names
        ],
        columns=TRANSFER_COLUMNS,
    )
    rows = []
    for a, b in pairs:
        stacked = np.concatenate([normed[a], normed[b].astype(normed[a].dtype, copy=False)], 1)
        rows.append((a, b, metric, single[a], single[b], score(stacked)))
    return transfer, pd.DataFrame(rows, columns=STACKING_COLUMNS)


# ----------------------------------------------------------------------------- zoo level


def _open(zoo: Any) -> Any:
    if hasattr(zoo, "embeddings") and hasattr(zoo, "models"):
        return zoo
    return Zoo.open(Path(zoo))


def _select_models(zoo: Any, models: Sequence[str] | None, role: str = "") -> list[str]:
    """The requested models (default: every model with embeddings), each checked."""
    if models is None:
        chosen = [m for m in zoo.models if zoo.has_embeddings(m)]
        if len(chosen) < 2:
            raise ZoolensError(
                f"zoo {zoo.path}{role}: {len(chosen)} model(s) with embeddings; "
                "probes compare at least two"
            )
        return chosen
    chosen = list(dict.fromkeys(models))
    for name in chosen:
        if name not in zoo.models:
            raise ZoolensError(f"zoo {zoo.path}{role}: no model named {name!r}")
        if not zoo.has_embeddings(name):
            raise ZoolensError(
                f"zoo {zoo.path}{role}: model {name!r} has no embeddings "
                "(add them with `zoolens import --embeddings` or collect them)"
            )
    if len(chosen) < 2:
        raise ZoolensError("give at least two models (--models A,B)")
    return chosen


def _resolve_pairs(
    names: list[str], pairs: Sequence[tuple[str, str]] | None
) -> list[tuple[str, str]]:
    if pairs is None:
        return [(names[i], names[j]) for i, j in _pairs_of(names)]
    for a, b in pairs:
        for name in (a, b):
            if name not in names:
                raise ZoolensError(
                    f"pair ({a}, {b}): model {name!r} is not among the probed "
                    f"models ({', '.join(names)})"
                )
    return list(pairs)


def _load_embeddings(zoo: Any, names: Sequence[str]) -> dict[str, np.ndarray]:
    embs = {name: np.asarray(zoo.embeddings(name)) for name in names}
    for name, emb in embs.items():
        if emb.shape[0] != zoo.num_examples:
            raise ZoolensError(
                f"zoo {zoo.path}: model {name!r} has {emb.shape[0]} embedding rows "
                f"but the zoo has {zoo.num_examples} examples"
            )
        if not np.all(np.isfinite(emb)):
            raise ZoolensError(f"zoo {zoo.path}: model {name!r} has NaN or infinite embeddings")
    return embs


def _correctness_or_none(zoo: Any, names: Sequence[str]) -> np.ndarray | None:
    """Correctness on the evaluation split (as pairs.csv), or None if a model has no outputs."""
    try:
        preds = np.stack([np.asarray(zoo.predictions(n), dtype=np.int64) for n in names])
    except ZoolensError:
        return None
    ev = np.asarray(zoo.evaluation_indices, dtype=np.int64)
    return correctness(preds[:, ev], np.asarray(zoo.labels)[ev])


def _write_tables(
    out_dir: str | Path, tables: Mapping[str, pd.DataFrame], meta: Mapping[str, Any]
) -> Path:
    """Each table as ``<name>.csv`` with its sibling ``<name>.json`` (table_version, table,
    run metadata), atomically, through study.tables, as analyze's tables."""
    out = output_folder(out_dir)
    for name, frame in tables.items():
        write_table(out, name, frame, parquet=False, meta=meta)
    return out


def _meta(zoo: Any, settings: ProbeSettings, **extra: Any) -> dict[str, Any]:
    return {
        "zoolens_version": __version__,
        "zoo": str(zoo.path),
        "command": " ".join(sys.argv),
        "probe_settings": asdict(settings),
        **extra,
    }


def run_probe(
    zoo: Any,
    models: Sequence[str] | None = None,
    *,
    out_dir: str | Path | None = None,
    pairs: Sequence[tuple[str, str]] | None = None,
    rates: Sequence[float] = DEFAULT_RATES,
    draws: int = 3,
    seed: int = 0,
    test_fraction: float = 0.3,
    settings: ProbeSettings | None = None,
    diversity: bool = True,
    cka: bool = True,
    steps: int = 8,
    rbf_max_examples: int | None = 10_000,
) -> ProbeResult:
    """Fig. 6 and Fig. 13 over a zoo: probe.csv, diversity.csv, cka.csv (+ sibling JSONs).

    ``models`` (default: all with embeddings) are all checked for embeddings; probes run for
    ``pairs`` (default: every pair of ``models``); CKA for every pair of ``models`` with the
    pair's error consistency on the zoo's evaluation split. The probe's own train/test split
    is a seeded random split of all the zoo's examples (``test_fraction`` held out).

    An unlabelled zoo (``Zoo.has_labels`` false) gets CKA only, κ left empty: probes and
    error consistency need labels, which one info line says; without ``cka`` it is an error.
    """
    require_torch("zoolens.run_probe (linear probes)")
    rates = check_rates(rates)
    if draws < 1:
        raise ZoolensError(f"draws must be at least 1, got {draws}")
    zoo = _open(zoo)
    names = _select_models(zoo, models)
    pair_list = _resolve_pairs(names, pairs)
    if zoo.is_multilabel:
        raise ZoolensError(
            f"zoo {zoo.path} is multi-label: feature-combination probes need one "
            "class per example; use it as a --downstream set with --stack"
        )
    settings = settings or ProbeSettings(seed=seed)
    if not zoo.has_labels:
        if not cka:
            zoo.require_labels("probe.csv and diversity.csv (linear probes)")
        info(
            f"zoo {zoo.path} has no labels: probe.csv and diversity.csv (linear probes) and "
            "error consistency need labels; writing cka.csv only, κ left empty"
        )
        pair_list, diversity = [], False
    labels = np.asarray(zoo.labels) if zoo.has_labels else np.zeros(0, dtype=np.int64)
    train, test = probe_split(zoo.num_examples, test_fraction, seed)
    embs = _load_embeddings(zoo, names)

    probe_frames, diversity_frames, fewest = [], [], {}
    total = sum(
        len(rates) * draws
        + (
            len(k_grid(embs[a].shape[1] + embs[b].shape[1], steps)) * (1 + draws)
            if diversity
            else 0
        )
        for a, b in pair_list
    )
    info(f"probing {len(pair_list)} pair(s) on {train.size} training / {test.size} test examples")
    with progress_bar(total, "probes", "probe") as advance:
        for a, b in pair_list:
            cache = _ProbeCache(_joint(embs[a], embs[b]), labels, train, test, settings)
            # the pair, its splits and the probe settings, as both tables take them
            pair: dict[str, Any] = dict(
                names=(a, b), draws=draws, seed=seed, settings=settings, advance=advance
            )
            probe_frames.append(
                feature_combination_table(
                    embs[a], embs[b], labels, train, test, rates=rates, _cache=cache, **pair
                )
            )
            if diversity:
                table, summary = diversity_table(
                    embs[a], embs[b], labels, train, test, steps=steps, _cache=cache, **pair
                )
                diversity_frames.append(table)
                fewest[f"{a} + {b}"] = summary
    tables = {"probe": pd.concat(probe_frames, ignore_index=True)} if probe_frames else {}
    if diversity:
        tables["diversity"] = pd.concat(diversity_frames, ignore_index=True)
    if cka:
        info(f"CKA for {len(names) * (len(names) - 1) // 2} pair(s)")
        tables["cka"] = cka_table(
            embs,
            correct=_correctness_or_none(zoo, names) if zoo.has_labels else None,
            rbf_max_examples=rbf_max_examples,
            seed=seed,
        )
    meta = _meta(
        zoo,
        settings,
        seed=seed,
        rates=rates,
        draws=draws,
        test_fraction=test_fraction,
        n_train=int(train.size),
        n_test=int(test.size),
        models=names,
        pairs=[list(p) for p in pair_list],
        diversity=fewest,
        rbf_max_examples=rbf_max_examples,
        error_consistency_split="evaluation",
    )
    out = _write_tables(out_dir, tables, meta) if out_dir is not None else None
    return ProbeResult(tables=tables, summary=meta, out_dir=out)


def run_stacking(
    zoo: Any,
    downstream: Any,
    models: Sequence[str] | None = None,
    *,
    out_dir: str | Path | None = None,
    pairs: Sequence[tuple[str, str]] | None = None,
    seed: int = 0,
    test_fraction: float = 0.3,
    settings: ProbeSettings | None = None,
) -> ProbeResult:
    """Fig. 7 over a downstream zoo: transfer.csv and stacking.csv (+ sibling JSONs).

    ``downstream`` holds the same models' embeddings (matched by name) on a labelled
    downstream set, single- or multi-label. Upstream accuracy is each model's top-1 accuracy
    over all of ``zoo``'s examples (NaN for a model the upstream zoo does not hold).
    """
    require_torch("zoolens.study.probe.run_stacking")
    zoo = _open(zoo)
    down = _open(downstream)
    names = _select_models(down, models, role=" (downstream)")
    pair_list = _resolve_pairs(names, pairs)
    settings = settings or ProbeSettings(seed=seed)
    down.require_labels("downstream probes (--stack)")
    labels = np.asarray(down.labels)
    train, test = probe_split(down.num_examples, test_fraction, seed)
    upstream = {}
    for name in names:
        try:
            upstream[name] = float(zoo.accuracy(name)) if name in zoo.models else float("nan")
        except ZoolensError:
            upstream[name] = float("nan")
    embs = _load_embeddings(down, names)
    info(f"downstream probes for {len(names)} model(s) and {len(pair_list)} pair(s)")
    with progress_bar(len(names) + len(pair_list), "downstream probes", "probe") as advance:
        transfer, stacking = transfer_and_stacking_tables(
            embs,
            labels,
            train,
            test,
            upstream_accuracy=upstream,
            pairs=pair_list,
            multilabel=bool(down.is_multilabel),
            settings=settings,
            advance=advance,
        )
    meta = _meta(
        zoo,
        settings,
        downstream=str(down.path),
        seed=seed,
        test_fraction=test_fraction,
        n_train=int(train.size),
        n_test=int(test.size),
        models=names,
        pairs=[list(p) for p in pair_list],
        downstream_multilabel=bool(down.is_multilabel),
    )
    tables = {"transfer": transfer, "stacking": stacking}
    out = _write_tables(out_dir, tables, meta) if out_dir is not None else None
    return ProbeResult(tables=tables, summary=meta, out_dir=out)
