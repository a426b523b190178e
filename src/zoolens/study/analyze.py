"""``analyze``: one zoo in, the paper's tables out (Gontijo-Lopes et al. 2021, Sec. 3-4.5).

What happens, in order, and how often each model's scores are read (issue 8: bounded reads,
example chunks, so a zoo larger than RAM works):

1. predictions of every model (``Zoo.predictions``) -> the correctness matrix R on the
   evaluation split and on all examples; all-pair agreement from R (one matrix product).
2. read 1: each model's calibration-split scores -> temperature T (``fit_temperature``).
3. read 2: the evaluation split in example chunks; per chunk every model's scores are read,
   NLL / confidence before and after scaling are taken, and the calibrated probabilities
   (``softmax(z / T)``; ``z / T`` with ``combine="logits"``) of all models form one
   (models, chunk, classes) float32 block from which every pair ensemble (exact top-k kernel,
   ``measure.topk``), the all-model ensemble, majority vote and interpolation curves are
   decided; bootstrap sums for every interval accumulate chunk by chunk. The chunk size is
   chosen so this block and its companions stay within ``memory_budget``.
4. specialization (confidence angles against the base) from the stored (models, N_eval)
   float32 confidences; groups are each class, the zoo's class groups and each attribute
   column's values.
5. the default interpolation curves (base with its best sidekick, paper Fig. 11): the two
   models' evaluation rows once more.
6. greedy selection (``study.greedy``): reads the pool on the calibration split to choose
   (calibrated rows held in memory, or staged on disk as memory maps when they exceed
   ``memory_budget``; identical results), and the member added at each step on the
   evaluation split to report.

So each model's scores are read at most: once for predictions, once on the calibration split,
once on the evaluation split, plus (calibration rows) once if it is a greedy candidate,
(evaluation rows) once per greedy step that adds it and once if it is in an interpolation
pair — never once per pair.

Every measure is taken on the evaluation split; the calibration split only fits temperatures
and chooses greedy members. ``accuracy_all`` is over all examples (the number to compare with
published accuracies). Decision-only models take part in agreement, dominance and majority
vote and are NaN (never dropped) in every probability-based column; top-k models enter
through ``Zoo.scores`` with the remaining mass spread evenly over the other classes.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from zoolens.errors import ZoolensError
from zoolens.measure.agreement import correctness, pairwise_agreement
from zoolens.measure.calibration import ece_from_bins, fit_temperature, reliability_bins
from zoolens.measure.stats import percentile_interval
from zoolens.progress import info, track
from zoolens.study import tables
from zoolens.study.bootstrap import StreamingBootstrap
from zoolens.study.provenance import provenance

RELIABILITY_BINS = 15
DEFAULT_MEMORY_BUDGET = 2**30
# models.csv columns measured by the evaluation pass (not known before it).
EVALUATION_COLUMNS = ("accuracy_lo", "accuracy_hi", "nll_before", "nll_after", "ece_before",
                      "ece_after")
INTERPOLATION_WEIGHTS = tuple(np.round(np.linspace(0.0, 1.0, 11), 10))
TOPK_NOTE = ("top-k models: the probability mass outside the stored top-k is spread evenly "
             "over the other classes (Zoo.scores) before calibration and ensembling")
NO_CALIBRATION_NOTE = ("no calibration split: every measure is taken on all {n} examples, "
                       "temperatures are fixed at 1 (nothing is fitted), class-aware "
                       "interpolation is left out, and greedy selection is cross-fitted "
                       "({folds} folds: members chosen on {folds_less} folds, accuracy scored "
                       "on the held-out fold; greedy_folds.csv)")
DECISIONS_NOTE = ("decision-only models take part in agreement, dominance and majority vote; "
                  "their probability-based columns (temperature, NLL, ECE, ensembles, "
                  "confidence angles) are NaN")


@dataclass
class AnalysisResult:
    """The tables of one analysis (columns exactly as the CSV files) and summary.json."""

    models: pd.DataFrame
    pairs: pd.DataFrame
    specialization: pd.DataFrame
    greedy: pd.DataFrame
    theta: pd.DataFrame
    reliability: pd.DataFrame
    interpolation: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)
    # cross-fitted greedy's per-fold steps (no calibration split); empty otherwise
    greedy_folds: pd.DataFrame = field(default_factory=lambda: tables.empty_table("greedy_folds"))

    def tables(self) -> dict[str, pd.DataFrame]:
        return {name: getattr(self, name) for name in tables.TABLE_COLUMNS}


# --------------------------------------------------------------------------------------
# inputs


@dataclass
class ZooInputs:
    """What every step needs from the zoo, read once: names, kinds, splits, correctness."""

    zoo: Any
    names: list[str]
    kinds: list[str]
    has_scores: np.ndarray  # (M,) bool: not decision-only
    cal: np.ndarray
    ev: np.ndarray
    labels: np.ndarray
    predictions: np.ndarray  # (M, N) int64
    correct_all: np.ndarray  # (M, N) bool
    correct: np.ndarray  # (M, N_eval) bool, the evaluation split

    @property
    def calibrated(self) -> bool:
        """False without a calibration split: temperatures 1, greedy cross-fitted."""
        return bool(self.cal.size)

    @property
    def scored(self) -> list[int]:
        return [int(i) for i in np.flatnonzero(self.has_scores)]

    def index(self, name: str, role: str) -> int:
        check_model(self.zoo, name, role)
        return self.names.index(name)


def check_model(zoo: Any, name: str, role: str) -> None:
    """ZoolensError naming the zoo, the option and the models when ``name`` is not in it."""
    names = list(zoo.models)
    if name not in names:
        shown = ", ".join(names[:20]) + (" …" if len(names) > 20 else "")
        raise ZoolensError(f"zoo {zoo.path}: no model named {name!r} ({role}); "
                           f"models: {shown}")


def open_zoo(zoo: Any) -> Any:
    """A Zoo from a Zoo or a path (ZoolensError when the folder is not a zoo)."""
    if hasattr(zoo, "scores") and hasattr(zoo, "models"):
        return zoo
    from zoolens.zoo.store import Zoo

    return Zoo.open(Path(zoo))


def load_inputs(zoo: Any, *, min_models: int = 2, calibration: bool = True) -> ZooInputs:
    """Read names, kinds, splits and every model's predictions; check the zoo is analysable.

    Without a calibration split (``calibration=False``, or a zoo created with calibration
    fraction 0) the evaluation split is every example and ``cal`` is empty: temperatures are
    fixed at 1 and greedy selection is cross-fitted (``study.greedy.run_crossfit``).
    """
    names = list(zoo.models)
    if len(names) < min_models:
        raise ZoolensError(
            f"zoo {zoo.path}: has {len(names)} model{'s' if len(names) != 1 else ''}; "
            f"comparing models needs at least {min_models}")
    cal = np.asarray(zoo.calibration_indices, dtype=np.int64)
    ev = np.asarray(zoo.evaluation_indices, dtype=np.int64)
    if not calibration or cal.size == 0:
        cal = np.zeros(0, dtype=np.int64)
        ev = np.arange(int(zoo.num_examples), dtype=np.int64)
    if ev.size == 0:
        raise ZoolensError(f"zoo {zoo.path}: the evaluation split is empty; re-create the "
                           "zoo with a calibration fraction below 1")
    kinds = [zoo.kind(name) for name in names]
    labels = np.asarray(zoo.labels)
    predictions = np.stack([np.asarray(zoo.predictions(name), dtype=np.int64)
                            for name in names])
    correct_all = correctness(predictions, labels)
    return ZooInputs(zoo=zoo, names=names, kinds=kinds,
                     has_scores=np.array([kind != "decisions" for kind in kinds]),
                     cal=cal, ev=ev, labels=labels, predictions=predictions,
                     correct_all=correct_all, correct=correct_all[:, ev])


def fit_temperatures(inputs: ZooInputs) -> dict[str, Any]:
    """Read 1: each scored model's calibration-split scores -> its TemperatureFit (none
    without a calibration split: see :func:`temperature_array`)."""
    fits: dict[str, Any] = {}
    if not inputs.calibrated:
        return fits
    labels_cal = inputs.labels[inputs.cal]
    for i in track(inputs.scored, description="temperature scaling", unit="models"):
        name = inputs.names[i]
        scores = inputs.zoo.scores(name, rows=inputs.cal)
        try:
            fits[name] = fit_temperature(scores, labels_cal)
        except ZoolensError as exc:
            raise ZoolensError(f"model {name!r}: {exc}") from None
    return fits


def temperature_array(inputs: ZooInputs, fits: dict[str, Any]) -> np.ndarray:
    """(M,) temperatures: the fitted ones, 1 for every scored model without a calibration
    split (nothing is fitted), NaN for decision-only models."""
    fixed = 1.0 if not inputs.calibrated else np.nan
    return np.array([fits[name].temperature if name in fits
                     else (fixed if inputs.has_scores[i] else np.nan)
                     for i, name in enumerate(inputs.names)])


def chunk_examples(num_scored: int, num_classes: int, num_pairs: int, n_bootstrap: int,
                   budget: int) -> int:
    """Examples per chunk so one chunk's working set stays within ``budget`` bytes.

    Per example: the calibrated block (models x classes float32) and the same again for
    temporaries, pair predictions / correctness / bootstrap values (about 24 bytes per pair),
    and the bootstrap weights of the chunk (4 bytes per resample).
    """
    per_example = 8 * num_scored * num_classes + 24 * num_pairs + 4 * n_bootstrap + 64
    return max(1, int(budget // per_example))


# --------------------------------------------------------------------------------------
# the analysis


def analyze(zoo: Any, base: str, out_dir: str | Path | None = None, *,
            pool: str | Sequence[str] | None = None, start: str | None = None,
            max_steps: int = 25, combine: str = "probs", n_bootstrap: int = 1000,
            seed: int = 0, chunk_size: int | None = None,
            memory_budget: int = DEFAULT_MEMORY_BUDGET,
            interpolation_pairs: Sequence[tuple[str, str]] | None = None,
            interpolation_weights: Sequence[float] = INTERPOLATION_WEIGHTS,
            exact_topk: bool = True, parquet: bool = True,
            command: str | None = None, calibration: bool = True,
            folds: int = 5) -> AnalysisResult:
    """Calibrate every model and measure every pair; write the tables to ``out_dir``.

    Args:
        zoo: a Zoo or the path of one.
        base: the model the others are compared with (categories, specialization, theta,
            best sidekick); also the greedy start unless ``start`` is given.
        out_dir: folder for models/pairs/specialization/greedy/theta/reliability/
            interpolation (.csv and .parquet) and summary.json; None writes nothing.
        pool: greedy candidates: a filter on the models table ("accuracy<0.78"), a comma
            list or a sequence of names; None = every model with probabilities.
        max_steps: greedy steps (DESIGN.md sec. 3).
        combine: "probs" averages calibrated probabilities, "logits" calibrated logits
            (z / T, the paper's Fig. 11 variant).
        n_bootstrap, seed: example-resampling bootstrap (0 resamples: intervals are NaN).
        chunk_size: evaluation examples per chunk; default from ``memory_budget`` (bytes).
        interpolation_pairs: pairs for the Fig. 11 curves; default (base, best sidekick).
        exact_topk: pair ensembles by the exact top-k kernel (default) or full rows; the
            predictions are identical.
        command: the command line recorded in summary.json.
        calibration: False measures on all examples without fitting anything (temperatures
            1, greedy cross-fitted in ``folds`` folds); also the case for a zoo created with
            calibration fraction 0.

    Returns an :class:`AnalysisResult` whose DataFrames have exactly the CSV columns.
    """
    started = time.perf_counter()
    if combine not in ("probs", "logits"):
        raise ZoolensError(f"combine must be 'probs' or 'logits', got {combine!r}")
    zoo = open_zoo(zoo)
    # Names first: a typo should fail before any array is read.
    for name, role in ([(base, "--base")] + ([] if start is None else [(start, "--start")])
                       + [(m, "--interpolate") for pair in interpolation_pairs or []
                          for m in pair]):
        check_model(zoo, name, role)
    inputs = load_inputs(zoo, calibration=calibration)
    base_index = inputs.index(base, "--base")
    start_defaulted = start is None
    start = base if start is None else start
    if not start_defaulted and not inputs.has_scores[inputs.index(start, "--start")]:
        # Before the evaluation pass: the selection would refuse it only at the very end.
        raise ZoolensError(f"zoo {zoo.path}: greedy start {start!r} (--start) is "
                           "decision-only: ensembles need probabilities")
    pair_specs = [(inputs.index(a, "--interpolate"), inputs.index(b, "--interpolate"))
                  for a, b in (interpolation_pairs or [])]
    for a, b in pair_specs:
        if a == b or not (inputs.has_scores[a] and inputs.has_scores[b]):
            raise ZoolensError(
                f"--interpolate {inputs.names[a]},{inputs.names[b]}: needs two different "
                "models with probabilities")
    info(f"analysing {len(inputs.names)} models on {len(inputs.ev)} evaluation examples "
         f"({len(inputs.cal)} calibration) of {zoo.path}")

    fits = fit_temperatures(inputs)
    temperatures = temperature_array(inputs, fits)
    agreement = pairwise_agreement(inputs.correct)
    cards = [zoo.card(name) for name in inputs.names]
    from zoolens.zoo.categories import pair_category

    a_idx, b_idx = np.triu_indices(len(inputs.names), 1)
    pair_category_values = [pair_category(cards[a], cards[b]) for a, b in zip(a_idx, b_idx)]
    base_category = [pair_category(cards[base_index], card) for card in cards]
    category_masks = _base_category_masks(base_index, base_category, a_idx, b_idx)

    if pool is not None:
        # Fail fast on a bad --pool (syntax, columns, names, nothing matching) instead of
        # after the evaluation pass; the columns that pass measures are checked, not applied.
        from zoolens.study.pool import select_pool

        select_pool(_models_table(inputs, cards, base_category, temperatures), pool,
                    defer=EVALUATION_COLUMNS)

    num_pairs = len(a_idx)
    num_scored = int(inputs.has_scores.sum())
    if chunk_size is None:
        chunk_size = chunk_examples(num_scored, int(zoo.num_classes), num_pairs, n_bootstrap,
                                    memory_budget)
    boot = StreamingBootstrap(len(inputs.ev), n_bootstrap, seed)
    from zoolens.study.stream import run_eval_pass

    # The default interpolation pair (base, best sidekick) is only known after the pass; its
    # curves then come from a second, two-model pass (see _interpolation_curves).
    specs = _interpolation_specs(pair_specs, inputs, interpolation_weights)
    evaluation = run_eval_pass(
        zoo, inputs.names, inputs.has_scores, temperatures, inputs.ev, inputs.labels,
        inputs.correct, inputs.predictions[:, inputs.ev], combine=combine,
        chunk_size=chunk_size, boot=boot, category_masks=category_masks,
        interpolation=specs, exact_topk=exact_topk)

    # Binned once: reliability.csv shows the bins, models.csv's ECE columns derive from them.
    bins = _reliability_bins(inputs, evaluation)
    models = _models_table(inputs, cards, base_category, temperatures, evaluation, boot, bins)
    pairs = _pairs_table(inputs, agreement, pair_category_values, evaluation, boot)
    pairs, undefined = _pair_gains_and_undefined(zoo, inputs, pairs, base_index, evaluation,
                                                 boot)
    reliability = _reliability_table(inputs, bins)

    from zoolens.study.specialize import example_groups, specialization_table, theta_table

    attributes = zoo.attributes
    groups = example_groups(inputs.labels[inputs.ev], list(zoo.class_names),
                            dict(zoo.class_groups),
                            None if attributes is None
                            else attributes.iloc[inputs.ev].reset_index(drop=True))
    specialization = specialization_table(base_index, inputs.names, inputs.correct,
                                          evaluation.confidence_after, groups)
    theta = theta_table(base_index, inputs.names, inputs.correct, evaluation.confidence_after)

    sidekicks = _ranked_sidekicks(pairs, base)
    if not pair_specs and sidekicks:
        sidekick = inputs.names.index(sidekicks[0]["model"])
        specs = _interpolation_specs([(base_index, sidekick)], inputs, interpolation_weights)
        _interpolation_curves(zoo, inputs, temperatures, specs, combine, memory_budget)
    interpolation = _interpolation_table(inputs, specs)

    pool_names, selection = _greedy(inputs, temperatures, models, pool, start,
                                    combine=combine, max_steps=max_steps,
                                    memory_budget=memory_budget, optional=True,
                                    default_start=start_defaulted, folds=folds, seed=seed)

    summary = provenance(zoo, command=command, seeds={"bootstrap": seed})
    summary.update({
        "base": base,
        "settings": {"pool": pool if pool is None or isinstance(pool, str) else list(pool),
                     "pool_models": pool_names, "greedy_start": start,
                     "max_steps": max_steps, "combine": combine,
                     "n_bootstrap": n_bootstrap, "interval": "percentile, 95%",
                     "chunk_size": chunk_size, "exact_topk": exact_topk,
                     "reliability_bins": RELIABILITY_BINS,
                     **_calibration_settings(inputs, folds)},
        "splits": {"calibration": len(inputs.cal), "evaluation": len(inputs.ev),
                   "all": int(zoo.num_examples)},
        "multilabel": bool(zoo.is_multilabel),
    })
    summary.update(_model_notes(inputs, fits, groups, folds))
    summary["undefined"] = undefined  # {column: {pairs, reason}}: NaN by construction
    summary["headline"] = _headline(inputs, base, start, models, pairs, sidekicks, evaluation,
                                    boot, category_masks, selection)
    summary["elapsed_s"] = round(time.perf_counter() - started, 3)
    if exact_topk and evaluation.prune.entries:
        summary["topk_fallback_rate"] = evaluation.prune.fallback_rate

    greedy_table, greedy_folds = _greedy_tables(selection)
    result = AnalysisResult(models=models, pairs=pairs, specialization=specialization,
                            greedy=greedy_table, theta=theta, reliability=reliability,
                            interpolation=interpolation, summary=summary,
                            greedy_folds=greedy_folds)
    if out_dir is not None:
        tables.write_results(out_dir, result.tables(), summary, parquet=parquet,
                             cards=_cards_payload(inputs.names, cards))
    return result


# --------------------------------------------------------------------------------------
# pieces of the analysis


def _calibration_settings(inputs: ZooInputs, folds: int) -> dict[str, Any]:
    """summary.json settings saying whether a calibration split was used."""
    if inputs.calibrated:
        return {"calibration": "split", "greedy_selection": "calibration split"}
    return {"calibration": "none", "temperature": 1.0,
            "greedy_selection": "cross-fitted", "greedy_folds": folds}


def _greedy_tables(selection) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(greedy.csv, greedy_folds.csv): a cross-fitted selection has no single step path,
    so greedy.csv is empty and its folds' steps go to greedy_folds.csv."""
    from zoolens.study.greedy import CrossFitOutcome

    if isinstance(selection, str):
        return tables.empty_table("greedy"), tables.empty_table("greedy_folds")
    if isinstance(selection, CrossFitOutcome):
        return tables.empty_table("greedy"), selection.table
    return selection.table, tables.empty_table("greedy_folds")


def _cards_payload(names: Sequence[str], cards: Sequence[Any]) -> dict[str, Any]:
    """cards.json's ``cards`` block: model name -> its ModelCard as JSON, in zoo order (the
    rows of models.csv)."""
    return {name: card.model_dump(mode="json") for name, card in zip(names, cards)}


def _base_category_masks(base: int, base_category: list[str], a_idx: np.ndarray,
                         b_idx: np.ndarray) -> dict[str, np.ndarray]:
    """For each category: (P,) mask of the pairs (base, other) whose other is in it."""
    other = np.where(a_idx == base, b_idx, np.where(b_idx == base, a_idx, -1))
    masks = {}
    for category in dict.fromkeys(base_category[m] for m in other[other >= 0]):
        masks[category] = (other >= 0) & (np.array(base_category + ["?"])[other] == category)
    return masks


def _interpolation_specs(pair_specs, inputs: ZooInputs, weights):
    """Weight and class-aware interpolation curves (paper Fig. 11) for the chosen pairs.

    mode "weight": score = w·x_a + (1 − w)·x_b for w in ``weights`` (w = 0.5 is the plain
    pair ensemble, w = 1 model a alone). mode "class_aware": the weight of model a is w on the
    classes where a is at least as accurate as b on the calibration split and 1 − w on the
    others (``measure.ensemble.class_aware_mask`` / ``class_weights``).
    """
    from zoolens.measure.ensemble import class_aware_mask
    from zoolens.study.stream import InterpolationSpec

    specs = []
    correct_cal = inputs.correct_all[:, inputs.cal]
    for a, b in pair_specs:
        specs.append(InterpolationSpec(a, b, "weight", list(weights)))
        if not inputs.calibrated:
            continue  # the class-aware mask would be chosen on the examples it is scored on
        mask = class_aware_mask(correct_cal[a], correct_cal[b], inputs.labels[inputs.cal],
                                int(inputs.zoo.num_classes))
        specs.append(InterpolationSpec(a, b, "class_aware", list(weights), mask))
    return specs


def _interpolation_curves(zoo, inputs: ZooInputs, temperatures, specs, combine,
                          memory_budget) -> None:
    """A two-model pass over the evaluation split for curves chosen after the main pass."""
    from zoolens.measure.ensemble import ensemble_inputs
    from zoolens.study.stream import accumulate_interpolation

    models = sorted({spec.a for spec in specs} | {spec.b for spec in specs})
    position = {m: k for k, m in enumerate(models)}
    num_classes = int(zoo.num_classes)
    chunk = max(1, memory_budget // (8 * num_classes * len(models)))
    for start in range(0, len(inputs.ev), chunk):
        rows = inputs.ev[start:start + chunk]
        block = np.stack([ensemble_inputs(zoo.scores(inputs.names[m], rows=rows),
                                          float(temperatures[m]), combine) for m in models])
        accumulate_interpolation(specs, block, position, inputs.labels[rows])


def _interpolation_table(inputs: ZooInputs, specs) -> pd.DataFrame:
    if not specs:
        return tables.empty_table("interpolation")
    n = len(inputs.ev)
    frames = [pd.DataFrame({"model_a": inputs.names[spec.a], "model_b": inputs.names[spec.b],
                            "mode": spec.mode, "weight": np.asarray(spec.weights, float),
                            "ensemble_acc": spec.correct / n}) for spec in specs]
    return pd.concat(frames, ignore_index=True)[tables.INTERPOLATION_COLUMNS]


def _models_table(inputs: ZooInputs, cards, base_category, temperatures, evaluation=None,
                  boot: StreamingBootstrap | None = None,
                  bins: dict[tuple[str, int], dict[str, np.ndarray]] | None = None
                  ) -> pd.DataFrame:
    """models.csv; without the evaluation pass (``zoolens ensemble``) the interval, NLL and
    ECE columns are NaN. ``bins``: :func:`_reliability_bins` (the ECE columns' source)."""
    num_models = len(inputs.names)
    nan = np.full(num_models, np.nan)
    lo, hi = boot.interval("accuracy", num_models) if boot is not None else (nan, nan)
    ece = {"before": nan.copy(), "after": nan.copy()}
    for (stage, m), model_bins in (bins or {}).items():
        ece[stage][m] = ece_from_bins(model_bins)
    frame = pd.DataFrame({
        "model": inputs.names,
        "arch": [card.arch for card in cards],
        "framework": [card.framework for card in cards],
        "pretrain_data": [card.pretrain_data for card in cards],
        "head": [card.head for card in cards],
        "category": base_category,
        "accuracy": inputs.correct.mean(axis=1),
        "accuracy_lo": lo,
        "accuracy_hi": hi,
        "accuracy_all": inputs.correct_all.mean(axis=1),
        "temperature": temperatures,
        "nll_before": evaluation.nll_before if evaluation is not None else nan,
        "nll_after": evaluation.nll_after if evaluation is not None else nan,
        "ece_before": ece["before"],
        "ece_after": ece["after"],
        "kind": inputs.kinds,
        "accuracy_eval_n": len(inputs.ev),
    })
    return frame[tables.MODELS_COLUMNS]


def _pairs_table(inputs: ZooInputs, agreement, categories, evaluation,
                 boot: StreamingBootstrap) -> pd.DataFrame:
    from zoolens.measure.ensemble import ensemble_rates
    from zoolens.measure.stats import mcnemar_p_values

    num_models = len(inputs.names)
    a, b = np.triu_indices(num_models, 1)
    scored = evaluation.pair_scored

    def on_scored(values: np.ndarray) -> np.ndarray:
        full = np.full(len(a), np.nan)
        full[scored] = values
        return full

    num_scored_pairs = int(scored.sum())
    rates = ({key: on_scored(value) for key, value in ensemble_rates(evaluation.counts).items()}
             if evaluation.counts is not None
             else {key: np.full(len(a), np.nan) for key in
                   ("ensemble_acc", "ensemble_gain", "conversion_rate", "neither_conversion")})
    ei_lo, ei_hi = boot.interval("error_inconsistency", len(a))
    ens_lo, ens_hi = (on_scored(v) for v in boot.interval("ensemble_acc", num_scored_pairs))
    gain_lo, gain_hi = (on_scored(v) for v in boot.interval("ensemble_gain", num_scored_pairs))
    paired_p = on_scored(boot.p_not_positive("ensemble_minus_best", num_scored_pairs))
    conv_lo, conv_hi, neither_lo, neither_hi = (
        on_scored(v) for v in _conversion_intervals(boot, a[scored], b[scored], scored,
                                                    evaluation.counts, num_models))
    acc = agreement["accuracy"]
    mcnemar = np.where(scored, mcnemar_p_values(evaluation.ensemble_only,
                                                evaluation.best_only), np.nan)
    frame = pd.DataFrame({
        "model_a": [inputs.names[i] for i in a],
        "model_b": [inputs.names[j] for j in b],
        "category": categories,
        "acc_a": acc[a],
        "acc_b": acc[b],
        "error_inconsistency": agreement["error_inconsistency"][a, b],
        "error_inconsistency_lo": ei_lo,
        "error_inconsistency_hi": ei_hi,
        "both_right": agreement["both_right"][a, b],
        "both_wrong": agreement["both_wrong"][a, b],
        "error_consistency": agreement["error_consistency"][a, b],
        "dominance_ab": agreement["dominance"][a, b],
        "dominance_ba": agreement["dominance"][b, a],
        "ensemble_acc": rates["ensemble_acc"],
        "ensemble_acc_lo": ens_lo,
        "ensemble_acc_hi": ens_hi,
        "ensemble_gain": rates["ensemble_gain"],
        "ensemble_gain_lo": gain_lo,
        "ensemble_gain_hi": gain_hi,
        "conversion_rate": rates["conversion_rate"],
        "conversion_rate_lo": conv_lo,
        "conversion_rate_hi": conv_hi,
        "neither_conversion": rates["neither_conversion"],
        "neither_conversion_lo": neither_lo,
        "neither_conversion_hi": neither_hi,
        "mcnemar_p": mcnemar,
        "paired_bootstrap_p": paired_p,
    })
    # gain_over_best / gain_over_base are added by _pair_gains_and_undefined (study.gains)
    return frame


def _pair_gains_and_undefined(zoo, inputs: ZooInputs, pairs: pd.DataFrame, base_index: int,
                              evaluation, boot: StreamingBootstrap):
    """pairs.csv with ``gain_over_best`` / ``gain_over_base`` (and bounds), and structural
    NaNs (``study.gains``); returns (pairs in contract order, summary note of what is
    undefined and why)."""
    from zoolens.study.gains import gain_columns, structurally_undefined, top1_only

    a_idx, b_idx = np.triu_indices(len(inputs.names), 1)
    pairs = pairs.assign(**gain_columns(pairs, inputs.names[base_index], boot,
                                        evaluation.pair_scored, base_index, a_idx, b_idx))
    topk = [zoo.model_info(name).get("topk") for name in inputs.names]
    pairs, undefined = structurally_undefined(pairs, top1_only(inputs.kinds, topk), a_idx, b_idx)
    return pairs[tables.PAIRS_COLUMNS], undefined


def _conversion_intervals(boot: StreamingBootstrap, a: np.ndarray, b: np.ndarray,
                          scored: np.ndarray, counts, num_models: int):
    """Bootstrap intervals of the conversion rates of the scored pairs (a[k], b[k]).

    conversion_rate = Σ ens∧(r_a⊕r_b) / Σ r_a⊕r_b and neither_conversion =
    Σ ens∧¬r_a∧¬r_b / Σ ¬r_a∧¬r_b, each sum taken on the same resamples. The denominators
    come from sums the pass already holds: Σ W·(r_a⊕r_b) (error inconsistency) and
    Σ W·(¬r_a∧¬r_b) = N − (Σ W·r_a + Σ W·r_b + Σ W·(r_a⊕r_b)) / 2, since every resample
    draws N examples and r_a + r_b = 2·(r_a∧r_b) + r_a⊕r_b (exact integers in float64).
    Returns (conversion lo, hi, neither lo, hi), (P_scored,) each.
    """
    size = len(a)
    if counts is None or boot.counts is None:
        nan = np.full(size, np.nan)
        return nan, nan, nan, nan
    xor = boot.sums("error_inconsistency", len(scored))[:, scored]
    right = boot.sums("accuracy", num_models)
    both_wrong = boot.num_examples - (right[:, a] + right[:, b] + xor) / 2
    conv = boot.ratio_interval(boot.sums("converted", size), xor, counts.exactly_one > 0)
    neither = boot.ratio_interval(boot.sums("neither_converted", size), both_wrong,
                                  counts.both_wrong > 0)
    return conv[0], conv[1], neither[0], neither[1]


def _reliability_bins(inputs: ZooInputs, evaluation) -> dict[tuple[str, int],
                                                            dict[str, np.ndarray]]:
    """``(stage, model index) -> measure.calibration.reliability_bins`` of each scored model's
    evaluation-split confidence before and after temperature scaling (model order, then
    "before", "after")."""
    return {(stage, m): reliability_bins(conf, inputs.correct[m], RELIABILITY_BINS)
            for m in inputs.scored
            for stage, conf in (("before", evaluation.confidence_before[m]),
                                ("after", evaluation.confidence_after[m]))}


def _reliability_table(inputs: ZooInputs,
                       bins: dict[tuple[str, int], dict[str, np.ndarray]]) -> pd.DataFrame:
    """reliability.csv from :func:`_reliability_bins`: one row per model, stage and bin."""
    frames = [pd.DataFrame({
        "model": inputs.names[m], "stage": stage,
        "bin": np.arange(RELIABILITY_BINS), "bin_lo": b["bin_lo"],
        "bin_hi": b["bin_hi"], "count": b["bin_count"],
        "mean_confidence": b["bin_confidence"], "accuracy": b["bin_accuracy"]})
        for (stage, m), b in bins.items()]
    if not frames:
        return tables.empty_table("reliability")
    return pd.concat(frames, ignore_index=True)[tables.RELIABILITY_COLUMNS]


def _ranked_sidekicks(pairs: pd.DataFrame, base: str) -> list[dict[str, Any]]:
    """Pairs with the base ranked by ensemble accuracy (ties: zoo order), best first."""
    mine = pairs[(pairs["model_a"] == base) | (pairs["model_b"] == base)]
    mine = mine[mine["ensemble_acc"].notna()]
    rows = []
    for _, row in mine.iterrows():
        base_is_a = row["model_a"] == base
        acc_base = row["acc_a"] if base_is_a else row["acc_b"]
        rows.append({
            "model": row["model_b"] if base_is_a else row["model_a"],
            "category": row["category"],
            "accuracy": row["acc_b"] if base_is_a else row["acc_a"],
            "ensemble_acc": row["ensemble_acc"],
            "ensemble_acc_lo": row["ensemble_acc_lo"],
            "ensemble_acc_hi": row["ensemble_acc_hi"],
            "over_base": row["ensemble_acc"] - acc_base,
            "ensemble_gain": row["ensemble_gain"],
            "error_inconsistency": row["error_inconsistency"],
            "mcnemar_p": row["mcnemar_p"],
            "paired_bootstrap_p": row["paired_bootstrap_p"],
        })
    # Stable sort keeps zoo order among equal ensemble accuracies.
    return sorted(rows, key=lambda r: -r["ensemble_acc"])


def _model_notes(inputs: ZooInputs, fits, groups, folds: int = 5) -> dict[str, Any]:
    decisions = [n for n, k in zip(inputs.names, inputs.kinds) if k == "decisions"]
    topk_models = [n for n, k in zip(inputs.names, inputs.kinds) if k == "topk"]
    notes: dict[str, Any] = {
        "decision_only_models": decisions,
        "topk_models": topk_models,
        "temperature_fits": {
            name: {"temperature": fit.temperature, "converged": fit.converged,
                   "at_bound": fit.at_bound, "iterations": fit.iterations,
                   "message": fit.message} for name, fit in fits.items()},
        "temperature_warnings": [
            f"{name}: {fit.message}" for name, fit in fits.items()
            if fit.at_bound or not fit.converged],
        "notes": [],
    }
    if not inputs.calibrated:
        notes["notes"].append(NO_CALIBRATION_NOTE.format(n=len(inputs.ev), folds=folds,
                                                         folds_less=folds - 1))
    if decisions:
        notes["notes"].append(DECISIONS_NOTE)
    if topk_models:
        notes["notes"].append(TOPK_NOTE)
    if groups.skipped_attributes:
        notes["notes"].append(
            "attribute columns with more than 1000 distinct values are not used as groups: "
            + ", ".join(groups.skipped_attributes))
    return notes


def _headline(inputs: ZooInputs, base: str, start: str, models: pd.DataFrame,
              pairs: pd.DataFrame, sidekicks: list[dict[str, Any]], evaluation,
              boot: StreamingBootstrap, category_masks: dict[str, np.ndarray],
              selection) -> dict[str, Any]:
    """The findings summary.json leads with (paper Fig. 1, 2, 5).

    Every mean comes with a 95 % percentile interval on the shared example resamples: the
    category means of error inconsistency and of conversion rate (``lo``/``hi``), the
    Spearman correlation of error inconsistency with ensemble gain (per resample both
    recomputed from resampled sums, then ranked) and the greedy gain over the start (paired,
    ``gain_over_start_lo``/``_hi``).
    """
    from scipy.stats import spearmanr

    n = len(inputs.ev)
    base_row = models[models["model"] == base].iloc[0]
    categories = list(category_masks)
    cat_lo, cat_hi = boot.interval("category_ei", len(categories))
    ei = pairs["error_inconsistency"].to_numpy()
    conversion = pairs["conversion_rate"].to_numpy()
    resampled = _resampled_pair_statistics(boot, evaluation, len(inputs.names))
    by_category = {}
    conversion_by_category = {}
    for k, category in enumerate(categories):
        mask = category_masks[category]
        by_category[category] = {"mean": float(ei[mask].mean()), "lo": cat_lo[k],
                                 "hi": cat_hi[k], "n_pairs": int(mask.sum())}
        defined = mask & np.isfinite(conversion)
        values = conversion[defined]
        conv_lo, conv_hi = _category_mean_interval(resampled["conversion"], defined, boot)
        conversion_by_category[category] = {
            "mean": float(values.mean()) if values.size else None,
            "lo": conv_lo if values.size else None, "hi": conv_hi if values.size else None,
            "n_pairs": int(values.size)}

    def correlation(mask: np.ndarray) -> dict[str, Any]:
        mask = mask & np.isfinite(pairs["ensemble_gain"].to_numpy())
        frame = pairs[mask]
        if len(frame) < 3 or frame["error_inconsistency"].nunique() < 2 \
                or frame["ensemble_gain"].nunique() < 2:
            return {"rho": None, "lo": None, "hi": None, "p_value": None,
                    "n_pairs": int(len(frame))}
        rho, p_value = spearmanr(frame["error_inconsistency"], frame["ensemble_gain"])
        lo, hi = _spearman_interval(resampled["error_inconsistency"][:, mask],
                                    resampled["ensemble_gain"][:, mask], boot)
        return {"rho": float(rho), "lo": lo, "hi": hi, "p_value": float(p_value),
                "n_pairs": int(len(frame))}

    with_base = (pairs["model_a"] == base).to_numpy() | (pairs["model_b"] == base).to_numpy()
    scored = len(inputs.scored)
    return {
        "base": {"model": base, "accuracy": base_row["accuracy"],
                 "accuracy_lo": base_row["accuracy_lo"], "accuracy_hi": base_row["accuracy_hi"],
                 "accuracy_all": base_row["accuracy_all"]},
        "best_sidekick": sidekicks[0] if sidekicks else None,
        "ranked_sidekicks": sidekicks[:5],
        "mean_error_inconsistency_by_category": by_category,
        "conversion_rate_by_category": conversion_by_category,
        "spearman_ei_vs_gain": {"all_pairs": correlation(np.ones(len(pairs), dtype=bool)),
                                "pairs_with_base": correlation(with_base)},
        "all_models_ensemble_acc": evaluation.all_models_right / n if scored else None,
        "all_models_ensemble_members": scored,
        "majority_vote_acc": evaluation.majority_right / n,
        "majority_vote_members": len(inputs.names),
        "greedy": {"start": start, **_greedy_summary(selection, boot)},
    }


def _resampled_pair_statistics(boot: StreamingBootstrap, evaluation,
                               num_models: int) -> dict[str, np.ndarray]:
    """(B, P) per-resample pair statistics (pairs in ``np.triu_indices`` order, NaN for
    pairs without probabilities or when there are no resamples), from the sums the
    evaluation pass accumulated on the shared resamples:

    - error_inconsistency_b = Σ_n W[b, n]·(r_a ⊕ r_b)[n] / N
    - ensemble_gain_b = Σ_n W[b, n]·(e − (r_a + r_b)/2)[n] / N
    - conversion_b = Σ_n W[b, n]·(e ∧ (r_a ⊕ r_b))[n] / Σ_n W[b, n]·(r_a ⊕ r_b)[n]
      (NaN where the resampled denominator is 0).
    """
    num_pairs = num_models * (num_models - 1) // 2
    size = max(boot.n_bootstrap, 0)
    out = {key: np.full((size, num_pairs), np.nan)
           for key in ("error_inconsistency", "ensemble_gain", "conversion")}
    if boot.counts is None:
        return out
    scored = evaluation.pair_scored
    num_scored = int(scored.sum())
    xor = boot.sums("error_inconsistency", num_pairs)
    out["error_inconsistency"] = xor / boot.num_examples
    if evaluation.counts is None or not num_scored:
        return out
    out["ensemble_gain"][:, scored] = boot.means("ensemble_gain", num_scored)
    den = xor[:, scored]
    with np.errstate(invalid="ignore", divide="ignore"):
        out["conversion"][:, scored] = np.where(
            den > 0, boot.sums("converted", num_scored) / den, np.nan)
    return out


def _quantiles(values: np.ndarray, boot: StreamingBootstrap) -> tuple[float | None, float | None]:
    """Percentile interval of resampled values, leaving out undefined (NaN) resamples."""
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None, None
    lo, hi = percentile_interval(values, boot.level, skip_nan=False)
    return float(lo), float(hi)


def _category_mean_interval(conversion: np.ndarray, defined: np.ndarray,
                            boot: StreamingBootstrap) -> tuple[float | None, float | None]:
    """Interval of a category's mean conversion rate: per resample the mean over the
    category's pairs whose full-sample rate is defined (``defined``, (P,) bool) of their
    resampled rates, leaving out a pair whose resampled denominator is 0 (and a resample
    where no pair is left)."""
    if not defined.any() or conversion.shape[0] == 0:
        return None, None
    rates = conversion[:, defined]
    present = np.isfinite(rates)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(present, rates, 0.0).sum(axis=1) / present.sum(axis=1)
    return _quantiles(means, boot)


def _spearman_interval(ei: np.ndarray, gain: np.ndarray,
                       boot: StreamingBootstrap) -> tuple[float | None, float | None]:
    """Interval of Spearman's rho between the pairs' error inconsistency and ensemble gain:
    per resample, both recomputed from the resampled sums ((B, P) each), ranked within the
    resample (average ranks for ties, as ``scipy.stats.spearmanr``) and correlated (Pearson
    of the ranks); a resample where either is constant is left out. Vectorised over B."""
    from scipy.stats import rankdata

    if ei.shape[0] == 0 or not np.isfinite(ei).all() or not np.isfinite(gain).all():
        return None, None
    x = rankdata(ei, axis=1)
    y = rankdata(gain, axis=1)
    x -= x.mean(axis=1, keepdims=True)
    y -= y.mean(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = (x * y).sum(axis=1) / np.sqrt((x * x).sum(axis=1) * (y * y).sum(axis=1))
    return _quantiles(rho, boot)


def _greedy(inputs: ZooInputs, temperatures: np.ndarray, models: pd.DataFrame, pool, start,
            *, combine: str, max_steps: int, memory_budget: int, optional: bool = False,
            default_start: bool = False, folds: int = 5, seed: int = 0):
    """The pool ``pool`` selects from the models table, and the greedy selection over it.

    Returns ``(pool names, GreedyOutcome)``, or ``(pool names, reason)`` when ``optional``
    (analyze's defaults) and the selection cannot run: the default start (the base) is
    decision-only. A pool too big for ``memory_budget`` runs with its calibration rows staged
    on disk (``study.greedy``), with identical results. Without a calibration split the
    selection is cross-fitted over all examples (``study.greedy.run_crossfit``).
    """
    from zoolens.study.greedy import run_crossfit, run_selection
    from zoolens.study.pool import select_pool

    pool_names = (select_pool(models, pool) if pool is not None
                  else [name for name, ok in zip(inputs.names, inputs.has_scores) if ok])
    if optional and default_start and not inputs.has_scores[inputs.names.index(start)]:
        reason = (f"the base {start!r} is decision-only (no probabilities to ensemble); "
                  "run `zoolens ensemble --start` from a model with probabilities")
        # The rest of the analysis still runs; the summary says why greedy was skipped.
        info(f"greedy selection skipped: {reason}")
        return pool_names, reason
    if not inputs.calibrated:
        return pool_names, run_crossfit(
            inputs.zoo, inputs.names, inputs.has_scores, temperatures, start, pool_names,
            ev=inputs.ev, labels=inputs.labels, combine=combine, max_steps=max_steps,
            memory_budget=memory_budget, folds=folds, seed=seed)
    selection = run_selection(inputs.zoo, inputs.names, inputs.has_scores, temperatures, start,
                              pool_names, cal=inputs.cal, ev=inputs.ev, labels=inputs.labels,
                              combine=combine, max_steps=max_steps,
                              memory_budget=memory_budget)
    return pool_names, selection


def _greedy_summary(selection, boot: StreamingBootstrap | None = None) -> dict[str, Any]:
    """The greedy block of summary.json; with ``boot``, the paired bootstrap interval of
    the gain over the start: per resample b, ``Σ_n W[b, n]·(e_n − s_n) / N`` with e, s the
    kept ensemble's and the start's per-example evaluation correctness."""
    if isinstance(selection, str):
        return {"skipped": selection}
    gain = {}
    if boot is not None:
        lo = hi = None
        if boot.counts is not None and selection.evaluation_correct is not None:
            diff = (selection.evaluation_correct.astype(np.float32)
                    - selection.start_evaluation_correct.astype(np.float32))
            boot.add("greedy_gain", diff, slice(0, boot.num_examples))
            lo, hi = (float(v[0]) for v in boot.interval("greedy_gain", 1))
        gain = {"gain_over_start_lo": lo, "gain_over_start_hi": hi}
    from zoolens.study.greedy import CrossFitOutcome

    if isinstance(selection, CrossFitOutcome):
        return {"cross_fitted": True, "folds": selection.folds,
                "members": selection.members, "member_folds": selection.member_folds,
                "calibration_acc": selection.calibration_acc,
                "evaluation_acc": selection.evaluation_acc,
                "fold_evaluation_acc": selection.fold_evaluation_acc,
                "fold_spread": selection.fold_spread,
                "start_evaluation_acc": selection.start_evaluation_acc,
                "gain_over_start": selection.evaluation_acc - selection.start_evaluation_acc,
                **gain,
                "excluded_decision_only": selection.excluded,
                "staged_on_disk": selection.staged}
    return {"members": selection.members, "steps_kept": len(selection.members),
            "calibration_acc": selection.calibration_acc,
            "evaluation_acc": selection.evaluation_acc,
            "start_evaluation_acc": selection.start_evaluation_acc,
            "gain_over_start": selection.evaluation_acc - selection.start_evaluation_acc,
            **gain,
            "excluded_decision_only": selection.excluded,
            "staged_on_disk": selection.staged}


def _p_value(p: Any) -> str:
    if p is None or not np.isfinite(p):
        return "=n/a"
    return f"={p:.2g}" if p > 0 else "<1e-300"  # 0.0 is an underflow, not a certainty


def _pct(value: Any) -> str:
    return "n/a" if value is None or not np.isfinite(value) else f"{value:.3f}"


def format_summary(summary: dict[str, Any]) -> str:
    """The short ranked summary ``zoolens analyze`` prints."""
    head = summary["headline"]
    base = head["base"]
    lines = [f"{base['model']} (base): accuracy {_pct(base['accuracy'])} "
             f"[{_pct(base['accuracy_lo'])}, {_pct(base['accuracy_hi'])}] on the evaluation "
             f"split, {_pct(base['accuracy_all'])} on all examples"]
    best = head["best_sidekick"]
    if best is None:
        lines.append(f"best sidekick for {base['model']}: none (no pair with the base has "
                     "probabilities on both sides)")
    else:
        lines.append(f"best sidekick for {base['model']}: {best['model']} (ensemble "
                     f"{_pct(best['ensemble_acc'])}, {best['over_base']:+.3f} over "
                     f"{base['model']} alone; EI {_pct(best['error_inconsistency'])}, "
                     f"McNemar p{_p_value(best['mcnemar_p'])})")
        for rank, row in enumerate(head["ranked_sidekicks"][1:], start=2):
            lines.append(f"  {rank}. {row['model']} [{row['category']}]: ensemble "
                         f"{_pct(row['ensemble_acc'])} ({row['over_base']:+.3f})")
    categories = head["mean_error_inconsistency_by_category"]
    if categories:
        lines.append("mean error inconsistency with the base by category: " + ", ".join(
            f"{cat} {_pct(v['mean'])} [{_pct(v['lo'])}, {_pct(v['hi'])}]"
            for cat, v in categories.items()))
    correlation = head["spearman_ei_vs_gain"]["all_pairs"]
    if correlation["rho"] is not None:
        lines.append("Spearman(error inconsistency, ensemble gain) over all pairs: "
                     f"{correlation['rho']:.3f} [{_pct(correlation.get('lo'))}, "
                     f"{_pct(correlation.get('hi'))}]")
    ensemble = (f"ensemble of all {head['all_models_ensemble_members']} models with "
                f"probabilities: {_pct(head['all_models_ensemble_acc'])}; "
                if head["all_models_ensemble_acc"] is not None else "")
    lines.append(f"{ensemble}majority vote of all {head['majority_vote_members']}: "
                 f"{_pct(head['majority_vote_acc'])}")
    greedy = head["greedy"]
    if "skipped" in greedy:
        lines.append(f"greedy selection skipped: {greedy['skipped']}")
    elif greedy.get("cross_fitted"):
        often = ", ".join(f"{m} ({c}/{greedy['folds']})"
                          for m, c in list(greedy["member_folds"].items())[:5])
        lines.append(f"greedy from {greedy['start']}, cross-fitted in {greedy['folds']} folds: "
                     f"held-out accuracy {_pct(greedy['evaluation_acc'])} (fold spread "
                     f"{_pct(greedy['fold_spread'])}, {greedy['gain_over_start']:+.3f} over "
                     f"the start); chosen most often: {often}")
    else:
        lines.append(f"greedy from {greedy['start']}: {greedy['steps_kept']} members kept, "
                     f"evaluation accuracy {_pct(greedy['evaluation_acc'])} "
                     f"({greedy['gain_over_start']:+.3f} over the start"
                     + (f", [{greedy['gain_over_start_lo']:+.3f}, "
                        f"{greedy['gain_over_start_hi']:+.3f}]"
                        if greedy.get("gain_over_start_lo") is not None else "") + ")")
    if summary.get("settings", {}).get("calibration") == "none":
        lines.append("no calibration split: all measures on all examples, temperatures "
                     "fixed at 1")
    for warning in summary.get("temperature_warnings", []):
        lines.append(f"note: temperature of {warning}")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------
# greedy selection alone (``zoolens ensemble``)


def run_greedy(zoo: Any, start: str, out_dir: str | Path | None = None, *,
               pool: str | Sequence[str] | None = None, max_steps: int = 25,
               combine: str = "probs", memory_budget: int = DEFAULT_MEMORY_BUDGET,
               parquet: bool = True, command: str | None = None,
               calibration: bool = True, folds: int = 5, seed: int = 0
               ) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Greedy forward selection alone: returns (greedy table, summary) and writes
    greedy.csv, models.csv (the table the pool filter reads, without intervals), cards.json
    (the model cards of the models.csv rows, as ``analyze`` writes them) and summary.json
    when ``out_dir`` is given. Without a calibration split (``calibration=False`` or a zoo
    with calibration fraction 0) the selection is cross-fitted in ``folds`` folds: the
    returned table is then greedy_folds.csv's."""
    if combine not in ("probs", "logits"):
        raise ZoolensError(f"combine must be 'probs' or 'logits', got {combine!r}")
    zoo = open_zoo(zoo)
    check_model(zoo, start, "--start")
    inputs = load_inputs(zoo, min_models=1, calibration=calibration)
    start_index = inputs.index(start, "--start")
    fits = fit_temperatures(inputs)
    temperatures = temperature_array(inputs, fits)
    from zoolens.zoo.categories import pair_category

    cards = [zoo.card(name) for name in inputs.names]
    models = _models_table(inputs, cards,
                           [pair_category(cards[start_index], card) for card in cards],
                           temperatures)
    pool_names, selection = _greedy(inputs, temperatures, models, pool, start,
                                    combine=combine, max_steps=max_steps,
                                    memory_budget=memory_budget, folds=folds, seed=seed)
    summary = provenance(zoo, command=command, seeds={"cross_fit": seed})
    summary.update({
        "start": start,
        "settings": {"pool": pool if pool is None or isinstance(pool, str) else list(pool),
                     "pool_models": pool_names, "max_steps": max_steps, "combine": combine,
                     **_calibration_settings(inputs, folds)},
        "splits": {"calibration": len(inputs.cal), "evaluation": len(inputs.ev),
                   "all": int(zoo.num_examples)},
        "greedy": _greedy_summary(selection),
    })
    summary.update(_model_notes(inputs, fits, _NO_GROUPS, folds))
    greedy_table, greedy_folds = _greedy_tables(selection)
    if out_dir is not None:
        written = {"models": models, "greedy": greedy_table}
        if not inputs.calibrated:
            written["greedy_folds"] = greedy_folds
        tables.write_results(out_dir, written, summary,
                             parquet=parquet, cards=_cards_payload(inputs.names, cards))
    return selection.table, summary


class _NoGroups:
    skipped_attributes: list[str] = []


_NO_GROUPS = _NoGroups()


def format_greedy(table: pd.DataFrame, summary: dict[str, Any]) -> str:
    """The step table ``zoolens ensemble`` prints (kept steps marked with *); for a
    cross-fitted selection, each fold's kept members and held-out accuracy."""
    greedy = summary["greedy"]
    if greedy.get("cross_fitted"):
        lines = [f"greedy selection from {summary['start']} "
                 f"({len(summary['settings']['pool_models'])} candidates), cross-fitted in "
                 f"{greedy['folds']} folds (no calibration split):",
                 "  fold  select  held-out  kept members"]
        for fold, steps in table.groupby("fold", sort=True):
            kept = steps[steps["kept"]]
            last = kept.iloc[-1]
            lines.append(f"  {fold:4d}  {last.selection_acc:.3f}   {last.held_out_acc:.3f}"
                         f"     {last.members}")
        often = ", ".join(f"{m} ({c}/{greedy['folds']})"
                          for m, c in greedy["member_folds"].items())
        lines.append(f"held-out accuracy {greedy['evaluation_acc']:.3f} (fold spread "
                     f"{greedy['fold_spread']:.3f}; {greedy['gain_over_start']:+.3f} over "
                     f"{summary['start']} alone); chosen most often: {often}")
        return "\n".join(lines)
    lines = [f"greedy selection from {summary['start']} "
             f"({len(summary['settings']['pool_models'])} candidates):",
             "  step  calib  eval   added"]
    for row in table.itertuples(index=False):
        mark = "*" if row.kept else " "
        lines.append(f"{mark} {row.step:4d}  {row.calibration_acc:.3f}  "
                     f"{row.evaluation_acc:.3f}  {row.added}")
    lines.append(f"kept {greedy['steps_kept']} members: evaluation accuracy "
                 f"{greedy['evaluation_acc']:.3f} ({greedy['gain_over_start']:+.3f} over "
                 f"{summary['start']} alone)")
    return "\n".join(lines)
