"""Stage 4 of ``analyze``: the result tables from the evaluation pass (docs/design.md sec. 5).

Pure functions of the typed stage outputs (``study.inputs.ZooInputs`` / ``Calibration``,
``study.stream.EvalPass``, ``study.bootstrap.Resamples``); nothing here reads the zoo's
scores except :func:`interpolation_curves`, the two-model pass for the default Fig. 11 pair
(base, best sidekick), which is known only once the pairs table exists.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from zoolens.measure.calibration import ece_from_bins, reliability_bins
from zoolens.measure.ensemble import class_aware_mask, ensemble_rates
from zoolens.measure.fused import calibrated_inputs
from zoolens.measure.stats import bh_q_values, holm_adjusted, mcnemar_p_values
from zoolens.study import tables
from zoolens.study.bootstrap import Resamples
from zoolens.study.greedy import CrossFitOutcome, GreedySkipped, Selection
from zoolens.study.inputs import Calibration, ZooInputs
from zoolens.study.stream import EvalPass, InterpolationSpec, accumulate_interpolation
from zoolens.study.threads import default_threads, model_workers

RELIABILITY_BINS = 15
TOPK_NOTE = (
    "top-k models: the probability mass outside the stored top-k is spread evenly "
    "over the other classes (Zoo.scores) before calibration and ensembling"
)
NO_CALIBRATION_NOTE = (
    "no calibration split: every measure is taken on all {n} examples, "
    "temperatures are fixed at 1 (nothing is fitted), class-aware "
    "interpolation is left out, and greedy selection is cross-fitted "
    "({folds} folds: members chosen on {folds_less} folds, accuracy scored "
    "on the held-out fold; greedy_folds.csv)"
)
DECISIONS_NOTE = (
    "decision-only models take part in agreement, dominance and majority vote; "
    "their probability-based columns (temperature, NLL, ECE, ensembles, "
    "confidence angles) are NaN"
)

Bins = dict[tuple[str, int], dict[str, np.ndarray]]


@dataclass
class Tables:
    """The tables of one analysis (columns exactly as the CSV files), before greedy."""

    models: pd.DataFrame
    pairs: pd.DataFrame
    specialization: pd.DataFrame
    theta: pd.DataFrame
    reliability: pd.DataFrame
    groups: Any  # study.specialize.example_groups (skipped attributes for the notes)
    # {column: {pairs, reason}}: pairs.csv cells NaN by construction (study.gains)
    undefined: dict[str, Any]

    def tables(self) -> dict[str, pd.DataFrame]:
        """The tables by their file names (the fields of AnalysisResult they fill)."""
        return {
            "models": self.models,
            "pairs": self.pairs,
            "specialization": self.specialization,
            "theta": self.theta,
            "reliability": self.reliability,
        }


def build_tables(
    inputs: ZooInputs, models: pd.DataFrame, evaluation: EvalPass, resamples: Resamples
) -> Tables:
    """Stage 4: models (``models``, the table before the pass, filled in), pairs,
    reliability, specialization and theta."""
    from zoolens.study.specialize import example_groups, specialization_table, theta_table

    # Binned once: reliability.csv shows the bins, models.csv's ECE columns derive from them.
    bins = reliability_bin_table(inputs, evaluation)
    models = fill_models_table(models, inputs, evaluation, resamples, bins)
    pairs = pairs_table(inputs, measured_pair_agreement(inputs), evaluation)
    pairs, undefined = pair_gains_and_undefined(inputs, pairs, evaluation)
    zoo = inputs.zoo
    attributes = zoo.attributes
    groups = example_groups(
        inputs.labels[inputs.ev],
        list(zoo.class_names),
        dict(zoo.class_groups),
        None if attributes is None else attributes.iloc[inputs.ev].reset_index(drop=True),
    )
    specialization = specialization_table(
        inputs.base_index, inputs.names, inputs.correct, evaluation.confidence_after, groups
    )
    theta = theta_table(
        inputs.base_index, inputs.names, inputs.correct, evaluation.confidence_after
    )
    return Tables(
        models=models,
        pairs=pairs,
        specialization=specialization,
        theta=theta,
        reliability=reliability_table(inputs, bins),
        groups=groups,
        undefined=undefined,
    )


def cards_payload(inputs: ZooInputs) -> dict[str, Any]:
    """cards.json's ``cards`` block: model name -> its ModelCard as JSON, in zoo order (the
    rows of models.csv)."""
    return {name: card.model_dump(mode="json") for name, card in zip(inputs.names, inputs.cards)}


def interpolation_specs(
    pairs: Sequence[tuple[int, int]], inputs: ZooInputs, weights: Sequence[float]
) -> list[InterpolationSpec]:
    """Weight and class-aware interpolation curves (paper Fig. 11) for the chosen pairs.

    mode "weight": score = w·x_a + (1 − w)·x_b for w in ``weights`` (w = 0.5 is the plain
    pair ensemble, w = 1 model a alone). mode "class_aware": the weight of model a is w on the
    classes where a is at least as accurate as b on the calibration split and 1 − w on the
    others (``measure.ensemble.class_aware_mask`` / ``class_weights``).
    """
    specs = []
    correct_cal = inputs.correct_all[:, inputs.cal]
    for a, b in pairs:
        specs.append(InterpolationSpec(a, b, "weight", list(weights)))
        if not inputs.calibrated:
            continue  # the class-aware mask would be chosen on the examples it is scored on
        mask = class_aware_mask(
            correct_cal[a], correct_cal[b], inputs.labels[inputs.cal], inputs.num_classes
        )
        specs.append(InterpolationSpec(a, b, "class_aware", list(weights), mask))
    return specs


def interpolation_curves(
    inputs: ZooInputs,
    calibration: Calibration,
    specs: Sequence[InterpolationSpec],
    combine: str,
    memory_budget: int,
) -> None:
    """A two-model pass over the evaluation split for curves chosen after the main pass:
    example chunks side by side on a ``study.threads.model_workers`` pool (each chunk counts
    its own right answers; whole numbers, so the sum does not depend on the order), each
    ``1/threads`` of what ``memory_budget`` allows one chunk alone."""
    zoo = inputs.zoo
    models = sorted({spec.a for spec in specs} | {spec.b for spec in specs})
    position = {m: k for k, m in enumerate(models)}
    threads = default_threads()
    chunk = max(1, memory_budget // (8 * inputs.num_classes * len(models) * threads))
    # Equal chunks, a multiple of the threads in number: one 33,554-row chunk and one of
    # 6,446 kept one core idle most of the stage (40,000 rows at the default budget).
    pieces = threads * math.ceil(len(inputs.ev) / (chunk * threads))
    chunk = max(1, math.ceil(len(inputs.ev) / pieces))

    def count(start: int) -> list[np.ndarray]:
        rows = inputs.ev[start : start + chunk]
        # each model's calibrated rows written in place (np.stack of fresh blocks doubled
        # the stage's memory traffic)
        block = np.empty((len(models), len(rows), inputs.num_classes), dtype=np.float32)
        for k, m in enumerate(models):
            calibrated_inputs(
                zoo.stored_scores(inputs.names[m], rows=rows),
                float(calibration.temperatures[m]),
                combine,
                out=block[k],
            )
        right = [np.zeros(len(spec.weights), dtype=np.int64) for spec in specs]
        accumulate_interpolation(specs, block, position, inputs.labels[rows], right)
        return right

    with model_workers(threads) as workers:
        for right in workers.map(count, range(0, len(inputs.ev), chunk)):
            for spec, chunk_right in zip(specs, right):
                spec.correct += chunk_right


def interpolation_table(inputs: ZooInputs, specs: Sequence[InterpolationSpec]) -> pd.DataFrame:
    if not specs:
        return tables.empty_table("interpolation")
    n = len(inputs.ev)
    frames = [
        pd.DataFrame(
            {
                "model_a": inputs.names[spec.a],
                "model_b": inputs.names[spec.b],
                "mode": spec.mode,
                "weight": np.asarray(spec.weights, float),
                "ensemble_acc": spec.correct / n,
            }
        )
        for spec in specs
    ]
    return pd.concat(frames, ignore_index=True)[tables.TABLE_COLUMNS["interpolation"]]


def fill_models_table(
    models: pd.DataFrame, inputs: ZooInputs, evaluation: EvalPass, resamples: Resamples, bins: Bins
) -> pd.DataFrame:
    """models.csv: ``models`` (``study.inputs.models_table``) with the columns the
    evaluation pass measures filled in. ``bins``: :func:`reliability_bin_table` (the ECE
    columns' source)."""
    num_models = len(inputs.names)
    frame = models.copy()
    assert evaluation.sums is not None, "the pass's sums are made when it ends"
    lo, hi = resamples.interval(evaluation.sums.accuracy)
    ece = {"before": np.full(num_models, np.nan), "after": np.full(num_models, np.nan)}
    for (stage, m), model_bins in bins.items():
        ece[stage][m] = ece_from_bins(model_bins)
    frame["accuracy_lo"] = lo
    frame["accuracy_hi"] = hi
    frame["nll_before"] = evaluation.nll_before
    frame["nll_after"] = evaluation.nll_after
    frame["ece_before"] = ece["before"]
    frame["ece_after"] = ece["after"]
    return frame[tables.TABLE_COLUMNS["models"]]


def measured_pair_agreement(inputs: ZooInputs) -> dict[str, np.ndarray]:
    """The agreement measures of the measured pairs (``inputs.pair_a`` / ``pair_b``), (P,)
    each (``accuracy`` (M,)): from the all-pairs product (``pairwise_agreement``) when every
    pair is measured, else pair by pair (``listed_pair_agreement``, linear in M; the same
    bits)."""
    from zoolens.measure.agreement import listed_pair_agreement, pairwise_agreement

    a, b = inputs.pair_a, inputs.pair_b
    if inputs.pairs != "all":
        return listed_pair_agreement(inputs.correct, a, b)
    matrix = pairwise_agreement(inputs.correct)
    per_pair = {
        key: matrix[key][a, b]
        for key in ("error_inconsistency", "both_right", "both_wrong", "error_consistency")
    }
    return {
        "accuracy": matrix["accuracy"],
        **per_pair,
        "dominance_ab": matrix["dominance"][a, b],
        "dominance_ba": matrix["dominance"][b, a],
    }


def pairs_table(
    inputs: ZooInputs, agreement: dict[str, np.ndarray], evaluation: EvalPass
) -> pd.DataFrame:
    """pairs.csv's rows for the measured pairs; ``agreement``: :func:`measured_pair_agreement`."""
    a, b = inputs.pair_a, inputs.pair_b
    scored = evaluation.pair_scored
    rates = {
        key: np.full(len(a), np.nan)
        for key in ("ensemble_acc", "ensemble_gain", "conversion_rate", "neither_conversion")
    }
    if evaluation.counts is not None:
        for key, value in ensemble_rates(evaluation.counts).items():
            rates[key][scored] = value
    # the interval columns, from the pairs' bootstrap after the pass (study.pairblocks)
    bounds = evaluation.pair_intervals
    acc = agreement["accuracy"]
    mcnemar = (
        np.where(scored, mcnemar_p_values(evaluation.ensemble_only, evaluation.best_only), np.nan)
        if evaluation.ensemble_only is not None and evaluation.best_only is not None
        else np.full(len(a), np.nan)
    )
    frame = pd.DataFrame(
        {
            "model_a": [inputs.names[i] for i in a],
            "model_b": [inputs.names[j] for j in b],
            "category": inputs.pair_category,
            "acc_a": acc[a],
            "acc_b": acc[b],
            "error_inconsistency": agreement["error_inconsistency"],
            "error_inconsistency_lo": bounds["error_inconsistency_lo"],
            "error_inconsistency_hi": bounds["error_inconsistency_hi"],
            "both_right": agreement["both_right"],
            "both_wrong": agreement["both_wrong"],
            "error_consistency": agreement["error_consistency"],
            "error_consistency_lo": bounds["error_consistency_lo"],
            "error_consistency_hi": bounds["error_consistency_hi"],
            "dominance_ab": agreement["dominance_ab"],
            "dominance_ba": agreement["dominance_ba"],
            "ensemble_acc": rates["ensemble_acc"],
            "ensemble_acc_lo": bounds["ensemble_acc_lo"],
            "ensemble_acc_hi": bounds["ensemble_acc_hi"],
            "ensemble_gain": rates["ensemble_gain"],
            "ensemble_gain_lo": bounds["ensemble_gain_lo"],
            "ensemble_gain_hi": bounds["ensemble_gain_hi"],
            "conversion_rate": rates["conversion_rate"],
            "conversion_rate_lo": bounds["conversion_rate_lo"],
            "conversion_rate_hi": bounds["conversion_rate_hi"],
            "neither_conversion": rates["neither_conversion"],
            "neither_conversion_lo": bounds["neither_conversion_lo"],
            "neither_conversion_hi": bounds["neither_conversion_hi"],
            "mcnemar_p": mcnemar,
            "paired_bootstrap_p": bounds["paired_bootstrap_p"],
        }
    )
    # gain_over_best / gain_over_base are added by pair_gains_and_undefined (study.gains)
    return frame


def pair_gains_and_undefined(
    inputs: ZooInputs, pairs: pd.DataFrame, evaluation: EvalPass
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """pairs.csv with ``gain_over_best`` / ``gain_over_base`` (and bounds), and structural
    NaNs (``study.gains``); returns (pairs in contract order, summary note of what is
    undefined and why)."""
    from zoolens.study.gains import gain_columns, structurally_undefined, top1_only

    a_idx, b_idx = inputs.pair_a, inputs.pair_b
    base_index = inputs.base_index
    pairs = pairs.assign(**gain_columns(pairs, evaluation.pair_intervals, base_index, a_idx, b_idx))
    topk = [inputs.zoo.model_info(name).get("topk") for name in inputs.names]
    pairs, undefined = structurally_undefined(pairs, top1_only(inputs.kinds, topk), a_idx, b_idx)
    return pairs.assign(**adjusted_p_columns(pairs))[tables.TABLE_COLUMNS["pairs"]], undefined


def adjusted_p_columns(pairs: pd.DataFrame) -> dict[str, np.ndarray]:
    """Holm-adjusted p-values and Benjamini-Hochberg q-values of ``mcnemar_p`` and
    ``paired_bootstrap_p``, the family being the table's pairs that have that p-value
    (``measure.stats.holm_adjusted`` / ``bh_q_values``): thousands of pairs tested at once
    make some raw p < 0.05 by chance alone."""
    out = {}
    for column in ("mcnemar_p", "paired_bootstrap_p"):
        raw = pairs[column].to_numpy(np.float64)
        out[f"{column}_holm"] = holm_adjusted(raw)
        out[f"{column.removesuffix('_p')}_q_bh"] = bh_q_values(raw)
    return out


def reliability_bin_table(inputs: ZooInputs, evaluation: EvalPass) -> Bins:
    """``(stage, model index) -> measure.calibration.reliability_bins`` of each scored model's
    evaluation-split confidence before and after temperature scaling (model order, then
    "before", "after")."""
    return {
        (stage, m): reliability_bins(conf, inputs.correct[m], RELIABILITY_BINS)
        for m in inputs.scored
        for stage, conf in (
            ("before", evaluation.confidence_before[m]),
            ("after", evaluation.confidence_after[m]),
        )
    }


def reliability_table(inputs: ZooInputs, bins: Bins) -> pd.DataFrame:
    """reliability.csv from :func:`reliability_bin_table`: one row per model, stage, bin."""
    if not bins:
        return tables.empty_table("reliability")
    # One frame from whole columns (a frame per model and stage took minutes at 10,000
    # models); the same rows and dtypes as concatenating them.
    keys, values = list(bins), list(bins.values())

    def stacked(field: str) -> np.ndarray:
        return np.concatenate([np.asarray(b[field]) for b in values])

    return pd.DataFrame(
        {
            "model": np.repeat(
                np.array([inputs.names[m] for _, m in keys], dtype=object), RELIABILITY_BINS
            ),
            "stage": np.repeat(
                np.array([stage for stage, _ in keys], dtype=object), RELIABILITY_BINS
            ),
            "bin": np.tile(np.arange(RELIABILITY_BINS), len(keys)),
            "bin_lo": stacked("bin_lo"),
            "bin_hi": stacked("bin_hi"),
            "count": stacked("bin_count"),
            "mean_confidence": stacked("bin_confidence"),
            "accuracy": stacked("bin_accuracy"),
        }
    )[tables.TABLE_COLUMNS["reliability"]]


def model_notes(
    inputs: ZooInputs,
    calibration: Calibration,
    skipped_attributes: Sequence[str] = (),
    folds: int = 5,
) -> dict[str, Any]:
    """summary.json's model blocks: decision-only and top-k models, temperature fits and
    warnings, notes."""
    fits = calibration.fits
    decisions = [n for n, k in zip(inputs.names, inputs.kinds) if k == "decisions"]
    topk_models = [n for n, k in zip(inputs.names, inputs.kinds) if k == "topk"]
    notes: dict[str, Any] = {
        "decision_only_models": decisions,
        "topk_models": topk_models,
        "temperature_fits": {
            name: {
                "temperature": fit.temperature,
                "converged": fit.converged,
                "at_bound": fit.at_bound,
                "iterations": fit.iterations,
                "message": fit.message,
            }
            for name, fit in fits.items()
        },
        "temperature_warnings": [
            f"{name}: {fit.message}"
            for name, fit in fits.items()
            if fit.at_bound or not fit.converged
        ],
        "notes": [],
    }
    if not inputs.calibrated:
        notes["notes"].append(
            NO_CALIBRATION_NOTE.format(n=len(inputs.ev), folds=folds, folds_less=folds - 1)
        )
    if decisions:
        notes["notes"].append(DECISIONS_NOTE)
    if topk_models:
        notes["notes"].append(TOPK_NOTE)
    if skipped_attributes:
        notes["notes"].append(
            "attribute columns with more than 1000 distinct values are not used as groups: "
            + ", ".join(skipped_attributes)
        )
    return notes


def calibration_settings(inputs: ZooInputs, folds: int) -> dict[str, Any]:
    """summary.json settings saying whether a calibration split was used."""
    if inputs.calibrated:
        return {"calibration": "split", "greedy_selection": "calibration split"}
    return {
        "calibration": "none",
        "temperature": 1.0,
        "greedy_selection": "cross-fitted",
        "greedy_folds": folds,
    }


def greedy_tables(selection: Selection) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(greedy.csv, greedy_folds.csv): a cross-fitted selection has no single step path,
    so greedy.csv is empty and its folds' steps go to greedy_folds.csv."""
    if isinstance(selection, GreedySkipped):
        return tables.empty_table("greedy"), tables.empty_table("greedy_folds")
    if isinstance(selection, CrossFitOutcome):
        return tables.empty_table("greedy"), selection.table
    return selection.table, tables.empty_table("greedy_folds")
