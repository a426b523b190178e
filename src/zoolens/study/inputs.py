"""The first stages of ``analyze``: what it is asked (:class:`AnalyzeOptions`), what it reads
from the zoo once (:class:`ZooInputs`, :func:`read_inputs`) and the fitted temperatures
(:class:`Calibration`, :func:`calibrate`). Gontijo-Lopes et al. (2021) Sec. 3.

Every later stage (``study.stream``'s evaluation pass, ``study.assemble``'s tables,
``study.headline``) takes these typed values instead of the zoo and loose arguments.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, Protocol, cast

import numpy as np
import pandas as pd

from zoolens.errors import ZoolensError
from zoolens.measure.agreement import correctness
from zoolens.measure.calibration import TemperatureFit, fit_temperature
from zoolens.measure.ensemble import check_combine
from zoolens.progress import track
from zoolens.study import tables
from zoolens.study.distributed import map_tasks_ray, worker_zoo
from zoolens.study.threads import model_workers

DEFAULT_MEMORY_BUDGET = 2**30
INTERPOLATION_WEIGHTS = tuple(float(w) for w in np.round(np.linspace(0.0, 1.0, 11), 10))
# models.csv columns measured by the evaluation pass (not known before it).
EVALUATION_COLUMNS = (
    "accuracy_lo",
    "accuracy_hi",
    "nll_before",
    "nll_after",
    "ece_before",
    "ece_after",
)


# Limits on analyze's options (field: CLI flag, lowest, highest): beyond them a run would not
# finish in any reasonable time or not fit in memory (1e9 resamples: terabytes).
OPTION_LIMITS: dict[str, tuple[str, int, int]] = {
    "n_bootstrap": ("--bootstrap", 0, 100_000),
    "seed": ("--seed", 0, 2**32 - 1),
    "max_steps": ("--max-steps", 1, 10_000),
    "chunk_size": ("--chunk-size", 1, 2**31 - 1),
    "memory_budget": ("--memory-gb", 2**20, 2**50),
    "folds": ("--folds", 2, 100),
}


def check_option_limits(options: Any) -> None:
    """Every ``OPTION_LIMITS`` field of ``options`` is an integer inside its limits (None:
    the default is used); ZoolensError naming the option and the range otherwise."""
    for name, (flag, lo, hi) in OPTION_LIMITS.items():
        value = getattr(options, name, None)
        if value is None:
            continue
        gib = name == "memory_budget"
        shown = f"{value / 2**30:.4g}" if gib and isinstance(value, (int, float)) else repr(value)
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ZoolensError(f"{name} ({flag}) must be an integer, got {shown}")
        if not lo <= value <= hi:
            low, high = (
                (f"{lo / 2**30:.4g}", f"{hi / 2**30:,.0f} GiB") if gib else (f"{lo:,}", f"{hi:,}")
            )
            raise ZoolensError(f"{flag} {shown}: must lie in {low} .. {high}")


@dataclass(frozen=True)
class AnalyzeOptions:
    """Everything ``analyze`` is asked, checked once (see ``study.analyze.analyze``)."""

    base: str
    pool: str | tuple[str, ...] | None = None
    start: str | None = None
    max_steps: int = 25
    combine: str = "probs"
    n_bootstrap: int = 1000
    seed: int = 0
    chunk_size: int | None = None
    memory_budget: int = DEFAULT_MEMORY_BUDGET
    interpolation_pairs: tuple[tuple[str, str], ...] = ()
    interpolation_weights: tuple[float, ...] = INTERPOLATION_WEIGHTS
    exact_topk: bool = True
    parquet: bool = True
    command: str | None = None
    # False: no calibration split (all examples measured, temperatures 1, greedy
    # cross-fitted in ``folds`` folds); also what a zoo with calibration fraction 0 gets
    calibration: bool = True
    folds: int = 5
    # cost limits such as "gflops=8" (study.budget): budgeted best sidekick and greedy
    budget: str | None = None
    # per-model fits and evaluation chunks as Ray tasks (study.distributed); None address:
    # RAY_ADDRESS or a local cluster
    ray: bool = False
    ray_address: str | None = None
    # which pairs are measured: "all" (every pair) or "base" (the base's M - 1 pairs only:
    # time and memory linear in the number of models; the base's rows are the same)
    pairs: str = "all"

    def __post_init__(self) -> None:
        check_combine(self.combine)
        check_option_limits(self)
        check_pairs(self.pairs)

    @property
    def greedy_start(self) -> str:
        return self.base if self.start is None else self.start

    @property
    def pool_setting(self) -> str | list[str] | None:
        """The pool as summary.json records it."""
        return self.pool if self.pool is None or isinstance(self.pool, str) else list(self.pool)


class ZooReader(Protocol):
    """What a stage of ``analyze`` may ask of a zoo (``zoo.store.Zoo`` is one; a test's
    stand-in needs only these). Reads only: no stage writes to the zoo."""

    @property
    def path(self) -> Path: ...

    @property
    def models(self) -> list[str]: ...

    @property
    def num_examples(self) -> int: ...

    @property
    def num_classes(self) -> int: ...

    @property
    def is_multilabel(self) -> bool: ...

    @property
    def labels(self) -> np.ndarray: ...

    @property
    def calibration_indices(self) -> np.ndarray: ...

    @property
    def evaluation_indices(self) -> np.ndarray: ...

    @property
    def class_names(self) -> list[str]: ...

    @property
    def example_ids(self) -> np.ndarray | None: ...

    @property
    def class_groups(self) -> dict[str, list[int]]: ...

    @property
    def attributes(self) -> Any: ...  # a DataFrame or None

    def model_info(self, name: str) -> dict[str, Any]: ...

    def require_labels(self, what: str) -> None: ...

    def kind(self, name: str) -> str: ...

    def card(self, name: str) -> Any: ...

    def predictions(self, name: str) -> np.ndarray: ...

    def scores(self, name: str, rows: Any = None) -> np.ndarray: ...

    def stored_scores(self, name: str, rows: Any = None) -> np.ndarray: ...

    def stored_entries(self, name: str, rows: np.ndarray, classes: np.ndarray) -> np.ndarray: ...

    def file_hashes(self) -> dict[str, str]: ...


PAIRS_MODES = ("all", "base")


def check_pairs(pairs: str) -> str:
    """``pairs`` is one of :data:`PAIRS_MODES`; ZoolensError naming the option otherwise."""
    if pairs not in PAIRS_MODES:
        raise ZoolensError(f"--pairs {pairs!r}: choose 'base' or 'all'")
    return pairs


@dataclass(frozen=True)
class ZooInputs:
    """What every stage needs from the zoo, read once: names, kinds, cards, splits, every
    model's top-1 and correctness, and the pair categories relative to the base. Frozen:
    a stage reads it and never changes it (:func:`with_base` returns a new one)."""

    zoo: ZooReader
    names: list[str]
    kinds: list[str]
    cards: list[Any]
    has_scores: np.ndarray  # (M,) bool: not decision-only
    cal: np.ndarray
    ev: np.ndarray
    labels: np.ndarray
    predictions: np.ndarray  # (M, N) int64
    correct_all: np.ndarray  # (M, N) bool
    correct: np.ndarray  # (M, N_eval) bool, the evaluation split
    base_index: int = 0
    # the measured pairs (pairs.csv's rows, np.triu_indices order): every pair, or with
    # pairs="base" only the base's M - 1 (measure.agreement.base_pair_index)
    pairs: str = "all"
    pair_a: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    pair_b: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    # category of each model relative to the base (models.csv) and of each measured pair
    base_category: list[str] = field(default_factory=list)
    pair_category: list[str] = field(default_factory=list)
    # category -> (P,) mask of the pairs (base, other) whose other is in it
    category_masks: dict[str, np.ndarray] = field(default_factory=dict)
    interpolation_pairs: list[tuple[int, int]] = field(default_factory=list)

    @property
    def calibrated(self) -> bool:
        """False without a calibration split: temperatures 1, greedy cross-fitted."""
        return bool(self.cal.size)

    @property
    def scored(self) -> list[int]:
        return [int(i) for i in np.flatnonzero(self.has_scores)]

    @property
    def num_classes(self) -> int:
        return int(self.zoo.num_classes)

    def index(self, name: str, role: str) -> int:
        check_model(self.zoo, name, role)
        return self.names.index(name)


@dataclass(frozen=True)
class Calibration:
    """Stage 2: each scored model's temperature (NaN for decision-only models) and fit."""

    temperatures: np.ndarray  # (M,)
    fits: dict[str, TemperatureFit]


def check_model(zoo: Any, name: str, role: str) -> None:
    """ZoolensError naming the zoo, the option and the models when ``name`` is not in it."""
    names = list(zoo.models)
    if name not in names:
        shown = ", ".join(names[:20]) + (" …" if len(names) > 20 else "")
        raise ZoolensError(f"zoo {zoo.path}: no model named {name!r} ({role}); models: {shown}")


def open_zoo(zoo: ZooReader | str | Path) -> ZooReader:
    """A Zoo from a Zoo or a path (ZoolensError when the folder is not a zoo)."""
    if hasattr(zoo, "scores") and hasattr(zoo, "models"):
        return cast(ZooReader, zoo)
    from zoolens.zoo.store import Zoo

    return Zoo.open(Path(zoo))


#: Models per predictions task with ``--ray`` (:func:`predictions_task`): a task reads
#: ``PREDICTION_GROUP`` models' score files, enough work to outweigh a task's overhead.
PREDICTION_GROUP = 8


def load_inputs(
    zoo: ZooReader,
    *,
    min_models: int = 2,
    calibration: bool = True,
    ray: bool = False,
    ray_address: str | None = None,
) -> ZooInputs:
    """Read names, kinds, cards, splits and every model's predictions; check the zoo is
    analysable (no base-relative fields: see :func:`read_inputs`). With ``ray`` the
    predictions are read by Ray tasks, :data:`PREDICTION_GROUP` models each
    (:func:`predictions_task`; the workers open the zoo by its path).

    Without a calibration split (``calibration=False``, or a zoo created with calibration
    fraction 0) the evaluation split is every example and ``cal`` is empty: temperatures are
    fixed at 1 and greedy selection is cross-fitted (``study.greedy.run_crossfit``).
    """
    names = list(zoo.models)
    if len(names) < min_models:
        raise ZoolensError(
            f"zoo {zoo.path}: has {len(names)} model{'s' if len(names) != 1 else ''}; "
            f"comparing models needs at least {min_models}"
        )
    cal = np.asarray(zoo.calibration_indices, dtype=np.int64)
    ev = np.asarray(zoo.evaluation_indices, dtype=np.int64)
    if not calibration or cal.size == 0:
        cal = np.zeros(0, dtype=np.int64)
        ev = np.arange(int(zoo.num_examples), dtype=np.int64)
    if ev.size == 0:
        raise ZoolensError(
            f"zoo {zoo.path}: the evaluation split is empty; re-create the "
            "zoo with a calibration fraction below 1"
        )
    kinds = [zoo.kind(name) for name in names]
    labels = np.asarray(zoo.labels)
    if ray:
        groups = [
            tuple(names[i : i + PREDICTION_GROUP]) for i in range(0, len(names), PREDICTION_GROUP)
        ]
        predictions = np.concatenate(
            map_tasks_ray(
                predictions_task,
                groups,
                ray_address,
                shared=(str(zoo.path),),
                announce=f"predictions: {len(groups)} task(s) on Ray",
                what=lambda group: f"predictions of models {group[0]!r} to {group[-1]!r}: Ray task",
            )
        )
    else:
        # Models side by side (each argmax runs on its own core, study.threads).
        with model_workers() as workers:
            predictions = np.stack(list(workers.map(partial(model_predictions, zoo), names)))
    correct_all = correctness(predictions, labels)
    return ZooInputs(
        zoo=zoo,
        names=names,
        kinds=kinds,
        cards=[zoo.card(name) for name in names],
        has_scores=np.array([kind != "decisions" for kind in kinds]),
        cal=cal,
        ev=ev,
        labels=labels,
        predictions=predictions,
        correct_all=correct_all,
        correct=correct_all[:, ev],
    )


def model_predictions(zoo: ZooReader, name: str) -> np.ndarray:
    """One model's top class per example, (N,) int64."""
    return np.asarray(zoo.predictions(name), np.int64)


def predictions_task(names: tuple[str, ...], zoo_path: str) -> np.ndarray:
    """The top classes of the models ``names``, (len(names), N) int64: the body of a Ray
    task of :func:`load_inputs` (the worker reopens the zoo by path)."""
    zoo = worker_zoo(zoo_path)
    return np.stack([model_predictions(zoo, name) for name in names])


def with_base(inputs: ZooInputs, base: str, role: str = "--base", pairs: str = "all") -> ZooInputs:
    """Fill the base-relative fields: base index, the measured pairs (every pair, or the
    base's with ``pairs="base"``), model and pair categories, category masks."""
    from zoolens.measure.agreement import base_pair_index, pair_index
    from zoolens.zoo.categories import pair_categories, pair_category

    base_index = inputs.index(base, role)
    cards = inputs.cards
    num_models = len(inputs.names)
    a_idx, b_idx = (
        base_pair_index(num_models, base_index)
        if check_pairs(pairs) == "base"
        else pair_index(num_models)
    )
    base_category = [pair_category(cards[base_index], card) for card in cards]
    return replace(
        inputs,
        pairs=pairs,
        pair_a=a_idx,
        pair_b=b_idx,
        base_index=base_index,
        base_category=base_category,
        pair_category=pair_categories(cards, a_idx, b_idx),
        category_masks=base_category_masks(base_index, base_category, a_idx, b_idx),
    )


def read_inputs(zoo: ZooReader, options: AnalyzeOptions) -> ZooInputs:
    """Stage 1: check the names the options give, read the zoo once, fill the base-relative
    fields and the interpolation pairs. Fails (ZoolensError) before any array is read when a
    name is wrong, and before the evaluation pass when the options cannot run."""
    zoo.require_labels("analyze (accuracy, error inconsistency, ensembles)")
    for name, role in (
        [(options.base, "--base")]
        + ([] if options.start is None else [(options.start, "--start")])
        + [(m, "--interpolate") for pair in options.interpolation_pairs for m in pair]
    ):
        check_model(zoo, name, role)
    loaded = load_inputs(
        zoo, calibration=options.calibration, ray=options.ray, ray_address=options.ray_address
    )
    inputs = with_base(loaded, options.base, pairs=options.pairs)
    if options.start is not None and not inputs.has_scores[inputs.index(options.start, "--start")]:
        # Before the evaluation pass: the selection would refuse it only at the very end.
        raise ZoolensError(
            f"zoo {zoo.path}: greedy start {options.start!r} (--start) is "
            "decision-only: ensembles need probabilities"
        )
    pairs = [
        (inputs.index(a, "--interpolate"), inputs.index(b, "--interpolate"))
        for a, b in options.interpolation_pairs
    ]
    for a, b in pairs:
        if a == b or not (inputs.has_scores[a] and inputs.has_scores[b]):
            raise ZoolensError(
                f"--interpolate {inputs.names[a]},{inputs.names[b]}: needs two different "
                "models with probabilities"
            )
    return replace(inputs, interpolation_pairs=pairs)


def base_category_masks(
    base: int, base_category: list[str], a_idx: np.ndarray, b_idx: np.ndarray
) -> dict[str, np.ndarray]:
    """For each category: (P,) mask of the pairs (base, other) whose other is in it."""
    other = np.where(a_idx == base, b_idx, np.where(b_idx == base, a_idx, -1))
    masks = {}
    for category in dict.fromkeys(base_category[m] for m in other[other >= 0]):
        masks[category] = (other >= 0) & (np.array(base_category + ["?"])[other] == category)
    return masks


def calibrate(
    inputs: ZooInputs,
    threads: int | None = None,
    *,
    ray: bool = False,
    ray_address: str | None = None,
) -> Calibration:
    """Stage 2: each scored model's calibration-split scores -> its TemperatureFit; without
    a calibration split nothing is fitted and every scored model's temperature is 1
    (decision-only models: NaN)."""
    fits: dict[str, TemperatureFit] = {}
    if inputs.calibrated:
        labels_cal = inputs.labels[inputs.cal]

        def fit(i: int) -> TemperatureFit:
            return fit_model(inputs.zoo, inputs.names[i], inputs.cal, labels_cal)

        if ray:
            names = [inputs.names[i] for i in inputs.scored]
            fitted = map_tasks_ray(
                fit_task,
                names,
                ray_address,
                shared=(str(inputs.zoo.path), inputs.cal, labels_cal),
                announce=f"temperature scaling: {len(names)} fit task(s) on Ray",
                what=lambda name: f"temperature fit of model {name!r}: Ray task",
            )
            fits.update(zip(names, fitted))
            return _calibration(inputs, fits)
        # Models in parallel threads (study.threads); zoo order kept.
        with model_workers(threads) as workers:
            for i, result in zip(
                inputs.scored,
                track(
                    workers.map(fit, inputs.scored),
                    total=len(inputs.scored),
                    description="temperature scaling",
                    unit="models",
                ),
            ):
                fits[inputs.names[i]] = result
    return _calibration(inputs, fits)


def fit_model(zoo: Any, name: str, cal: np.ndarray, labels_cal: np.ndarray) -> TemperatureFit:
    """One model's temperature fit on the calibration rows; errors name the model."""
    try:
        # in the stored dtype: float16 widens exactly inside the fit (measure.calibration),
        # so the fit is that of the float32 scores, without a float32 copy per model
        return fit_temperature(zoo.stored_scores(name, rows=cal), labels_cal)
    except ZoolensError as exc:
        raise ZoolensError(f"model {name!r}: {exc}") from None


def fit_task(name: str, zoo_path: str, cal: np.ndarray, labels_cal: np.ndarray) -> TemperatureFit:
    """:func:`fit_model` as the body of a Ray task (``study.distributed.map_tasks_ray``:
    the worker reopens the zoo by path)."""
    return fit_model(worker_zoo(zoo_path), name, cal, labels_cal)


def _calibration(inputs: ZooInputs, fits: dict[str, TemperatureFit]) -> Calibration:
    fixed = 1.0 if not inputs.calibrated else np.nan
    temperatures = np.array(
        [
            fits[name].temperature if name in fits else (fixed if inputs.has_scores[i] else np.nan)
            for i, name in enumerate(inputs.names)
        ]
    )
    return Calibration(temperatures=temperatures, fits=fits)


def models_table(inputs: ZooInputs, calibration: Calibration) -> pd.DataFrame:
    """models.csv before the evaluation pass: cards, categories, accuracies, temperatures;
    the columns the pass measures (:data:`EVALUATION_COLUMNS`) NaN. The pool filter reads
    it; ``study.assemble.fill_models_table`` fills the rest."""
    num_models = len(inputs.names)
    nan = np.full(num_models, np.nan)
    cards = inputs.cards
    frame = pd.DataFrame(
        {
            "model": inputs.names,
            "arch": [card.arch for card in cards],
            "framework": [card.framework for card in cards],
            "pretrain_data": [card.pretrain_data for card in cards],
            "head": [card.head for card in cards],
            "category": inputs.base_category,
            "accuracy": inputs.correct.mean(axis=1),
            "accuracy_lo": nan,
            "accuracy_hi": nan.copy(),
            "accuracy_all": inputs.correct_all.mean(axis=1),
            "temperature": calibration.temperatures,
            "nll_before": nan.copy(),
            "nll_after": nan.copy(),
            "ece_before": nan.copy(),
            "ece_after": nan.copy(),
            "kind": inputs.kinds,
            "accuracy_eval_n": len(inputs.ev),
            # on all examples, like accuracy_all: no-answer decisions (zoo.classes.ABSTAIN)
            "abstentions": (inputs.predictions < 0).sum(axis=1),
        }
    )
    return frame[tables.TABLE_COLUMNS["models"]]


# Base-only pairs: the evaluation pass makes a chunk's calibrated rows this many models at
# a time (study.stream._grouped_block), so its chunks need not shrink as 1 / M.
MODEL_GROUP = 256


def block_models(num_scored: int, pairs: str, kept: int) -> int:
    """Models whose calibrated rows a chunk of the evaluation pass holds at once: all scored
    models for all pairs, or when they fit one group; for base-only pairs past that a group
    of :data:`MODEL_GROUP`, the base's slot beside it and up to ``kept`` more (the greedy
    prefixes' and interpolation curves' models)."""
    if pairs == "all" or num_scored <= MODEL_GROUP:
        return num_scored
    return MODEL_GROUP + 1 + min(kept, num_scored)


def chunk_examples(
    num_scored: int, num_classes: int, num_pairs: int, n_bootstrap: int, budget: int
) -> int:
    """Examples per chunk so one chunk's working set stays within ``budget`` bytes.

    Per example: the calibrated block (``num_scored`` models, :func:`block_models`, x
    classes float32) and the same again for temporaries, pair predictions / correctness /
    bootstrap values (about 24 bytes per pair), and the bootstrap weights of the chunk
    (4 bytes per resample).
    """
    per_example = 8 * num_scored * num_classes + 24 * num_pairs + 4 * n_bootstrap + 64
    return max(1, int(budget // per_example))


def pair_names(pairs: Sequence[tuple[str, str]] | None) -> tuple[tuple[str, str], ...]:
    return tuple((str(a), str(b)) for a, b in (pairs or ()))
