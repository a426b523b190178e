"""``analyze``: one zoo in, the paper's tables out (Gontijo-Lopes et al. 2021, Sec. 3-4.5).

One visible pipeline; each stage is a function ``stage_<name>`` with typed inputs and
outputs, timed under its name (``study.stages.STAGES``, the one list: summary.json's
``timings_s``, ``zoolens analyze --verbose``, the benchmark); no work runs outside a stage:

1. ``inputs`` (``study.inputs.read_inputs`` -> ``ZooInputs``): names checked, every model's
   predictions -> the correctness matrix R on the evaluation split and on all examples,
   cards, the categories of every pair and of every model relative to the base.
2. ``temperatures`` (``study.inputs.calibrate`` -> ``Calibration``): each model's
   calibration-split scores read once -> temperature T (``fit_temperature``); then the models
   table is built (once; ``study.inputs.models_table``) and the pool filter checked on it.
3. ``selection`` (``study.greedy.run_selection``, evaluate=False): greedy chooses on the
   calibration split before the pass (the pool's calibrated rows held in memory or, when
   they exceed ``memory_budget``, lazily: per-row softmax statistics and the entries the
   pruned selection asks for, recomputed from the zoo; identical results). Skipped, and
   left to ``greedy``, with ``--pool``, without a calibration split, with ``--combine
   logits`` or multi-label truth.
4. ``evaluation`` (``study.stream.run_eval_pass`` -> ``EvalPass``): the evaluation split in
   example chunks; per chunk every model's scores are read once, NLL / confidence before and
   after scaling are taken, and the calibrated block (models, chunk, classes) decides every
   pair ensemble (exact top-k kernel, ``measure.topk``), the all-model ensemble, majority
   vote, each greedy prefix and the requested interpolation curves; each scored pair's
   ensemble correctness is kept as one bit an example. After the chunks, the pairs'
   counts, bootstrap intervals and the resampled sums later stages read are taken one
   block of pairs at a time over the whole split (``study.pairblocks``; the sums frozen,
   ``ResampledSums``). The chunk size keeps the block and its companions within
   ``memory_budget``, and so does the pair block.
5. ``tables`` (``study.assemble.build_tables`` -> ``Tables``): models (filled in), pairs,
   reliability, specialization (confidence angles against the base; groups are each class,
   the zoo's class groups and each attribute column's values) and theta.
6. ``interpolation``: the default curves (base with its best sidekick, paper Fig. 11) need
   the pairs table to know the sidekick, so the two models' evaluation rows are read once
   more (skipped when ``--interpolate`` named the pairs: their curves came from stage 4).
7. ``drilldown`` (``study.drilldown``): the examples only one of the base and its best
   sidekick gets right.
8. ``greedy`` (``study.greedy``, a ``Selection``): stage 3's selection with each prefix's
   evaluation accuracy from stage 4 (``with_evaluation``), or, where stage 3 was skipped,
   the whole selection now, reading the member added at each step on the evaluation split
   to report; then pareto.csv (accuracy against cost).
9. ``headline`` (``study.headline.headline``): the findings summary.json leads with; it only
   reads the tables and the frozen sums.
10. ``shift`` (only with ``--shift``, ``study.shift.analyze_shift``): the same models on the
   shifted sets.
11. ``write``: every table, cards.json, then summary.json (atomic; summary last).

Every measure is taken on the evaluation split; the calibration split only fits temperatures
and chooses greedy members. ``accuracy_all`` is over all examples (the number to compare with
published accuracies). Decision-only models take part in agreement, dominance and majority
vote and are NaN (never dropped) in every probability-based column; top-k models enter
through ``Zoo.scores`` with the remaining mass spread evenly over the other classes.
"""

from __future__ import annotations

from collections.abc import Sequence
import contextlib
import dataclasses
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from zoolens.errors import ZoolensError
from zoolens.progress import info
from zoolens.study import stream, tables
from zoolens.study.assemble import (
    RELIABILITY_BINS,
    Tables,
    build_tables,
    calibration_settings,
    cards_payload,
    greedy_tables,
    interpolation_curves,
    interpolation_specs,
    interpolation_table,
    model_notes,
)
from zoolens.study.bootstrap import Resamples
from zoolens.study.budget import Budget, pareto_summary, pareto_table, parse_budget
from zoolens.study.distributed import ray_session, run_chunks_ray
from zoolens.study.greedy import (
    GreedyOutcome,
    GreedySkipped,
    Selection,
    step_members,
    with_evaluation,
)
from zoolens.study.headline import greedy_summary, headline, ranked_sidekicks
from zoolens.study.inputs import (
    DEFAULT_MEMORY_BUDGET,
    EVALUATION_COLUMNS,
    INTERPOLATION_WEIGHTS,
    AnalyzeOptions,
    Calibration,
    ZooInputs,
    ZooReader,
    calibrate,
    MODEL_GROUP,
    block_models,
    check_model,
    chunk_examples,
    load_inputs,
    models_table,
    open_zoo,
    pair_names,
    read_inputs,
    with_base,
)
from zoolens.study.provenance import provenance
from zoolens.study.pairblocks import pair_block_size
from zoolens.study.scale import check_base_only, pairs_summary
from zoolens.study.stages import STAGES, StageTimer
from zoolens.study.threads import one_torch_thread

if TYPE_CHECKING:
    from zoolens.study.shift import ShiftResult

__all__ = [
    "AnalysisResult",
    "AnalyzeOptions",
    "analyze",
    "run_analysis",
    "run_greedy",
    "DEFAULT_MEMORY_BUDGET",
    "INTERPOLATION_WEIGHTS",
    "STAGES",
    "Selection",
    "ZooReader",
]


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
    # the shift study (``analyze(..., shift=...)``); empty tables and None otherwise
    shift_models: pd.DataFrame = field(default_factory=lambda: tables.empty_table("shift_models"))
    shift_pairs: pd.DataFrame = field(default_factory=lambda: tables.empty_table("shift_pairs"))
    shift_fits: pd.DataFrame = field(default_factory=lambda: tables.empty_table("shift_fits"))
    shift: Any = None  # study.shift.ShiftResult
    # accuracy against inference cost (study.budget); empty when no card has a cost
    pareto: pd.DataFrame = field(default_factory=lambda: tables.empty_table("pareto"))
    # examples only one of the base and its best sidekick gets right (study.drilldown)
    drilldown: pd.DataFrame = field(default_factory=lambda: tables.empty_table("drilldown"))

    def tables(self) -> dict[str, pd.DataFrame]:
        """Every table to write; the shift_* tables only after a shift study (no empty
        shift files without ``--shift``)."""
        return {
            name: getattr(self, name)
            for name in tables.TABLE_COLUMNS
            if self.shift is not None or not name.startswith("shift_")
        }


def analyze(
    zoo: Any,
    base: str,
    out_dir: str | Path | None = None,
    *,
    pool: str | Sequence[str] | None = None,
    start: str | None = None,
    max_steps: int = 25,
    combine: str = "probs",
    n_bootstrap: int = 1000,
    seed: int = 0,
    chunk_size: int | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    interpolation_pairs: Sequence[tuple[str, str]] | None = None,
    interpolation_weights: Sequence[float] = INTERPOLATION_WEIGHTS,
    exact_topk: bool = True,
    parquet: bool = True,
    command: str | None = None,
    calibration: bool = True,
    folds: int = 5,
    shift: Any = None,
    reference_name: str = "reference",
    budget: str | None = None,
    ray: bool = False,
    ray_address: str | None = None,
    pairs: str = "all",
) -> AnalysisResult:
    """Calibrate every model and measure every pair; write the tables to ``out_dir``.

    Args:
        zoo: a Zoo or the path of one.
        base: the model the others are compared with (categories, specialization, theta,
            best sidekick); also the greedy start unless ``start`` is given.
        out_dir: folder for models/pairs/specialization/greedy/theta/reliability/
            interpolation (.csv and .parquet) and summary.json; None writes nothing.
        pool: greedy candidates: a filter on the models table ("accuracy<0.78"), a comma
            list or a sequence of names; None = every model with probabilities.
        max_steps: greedy steps (docs/design.md sec. 3).
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
        shift: other evaluation sets of the same models, set name -> zoo (or path), or
            (name, zoo) pairs: adds the shift study (``study.shift.analyze_shift``: tables
            shift_models/shift_pairs/shift_fits, summary.json "shift"), this zoo being the
            reference set named ``reference_name``.
        budget: cost limits such as "gflops=8" or "latency_ms=20,mparams=50"
            (``study.budget``): the best sidekick and greedy selection only consider
            ensembles whose summed cost fits; summary.json gets a "budget" block.
        ray, ray_address: run the temperature fits and the evaluation pass's example chunks
            as Ray tasks (``study.distributed``; tables identical to the local run).
        pairs: "all" (every pair) or "base": only the base's M - 1 pairs, in time and
            memory linear in the number of models; their pairs.csv rows and every other
            table's rows are those of the all-pairs run (``study.scale``).

    Returns an :class:`AnalysisResult` whose DataFrames have exactly the CSV columns.
    """
    options = AnalyzeOptions(
        base=base,
        pool=pool if pool is None or isinstance(pool, str) else tuple(pool),
        start=start,
        max_steps=max_steps,
        combine=combine,
        n_bootstrap=n_bootstrap,
        seed=seed,
        chunk_size=chunk_size,
        memory_budget=memory_budget,
        interpolation_pairs=pair_names(interpolation_pairs),
        interpolation_weights=tuple(interpolation_weights),
        exact_topk=exact_topk,
        parquet=parquet,
        command=command,
        calibration=calibration,
        folds=folds,
        budget=budget,
        ray=ray or ray_address is not None,
        ray_address=ray_address,
        pairs=pairs,
    )
    return run_analysis(zoo, options, out_dir, shift=shift, reference_name=reference_name)


def run_analysis(
    zoo: Any,
    options: AnalyzeOptions,
    out_dir: str | Path | None = None,
    *,
    shift: Any = None,
    reference_name: str = "reference",
) -> AnalysisResult:
    """The pipeline of the module doc on ``options``; see :func:`analyze`."""
    with (
        one_torch_thread(),  # parallel across models instead (study.threads)
        ray_session(options.ray_address) if options.ray else contextlib.nullcontext(),
    ):
        return _run_analysis(zoo, options, out_dir, shift=shift, reference_name=reference_name)


@dataclass(frozen=True)
class Prepared:
    """Stage ``inputs``: the zoo read once, the parsed budget, the opened shift sets."""

    zoo: ZooReader
    inputs: ZooInputs
    budget: Budget | None
    shift_sets: Any  # study.shift.open_sets' sets; None without --shift


@dataclass(frozen=True)
class EarlySelection:
    """Stage ``selection``: the pool and the greedy selection made on the calibration split
    before the evaluation pass (its evaluation columns filled by the pass)."""

    pool_names: list[str]
    selection: Selection


@dataclass(frozen=True)
class Evaluated:
    """Stages ``temperatures`` and ``evaluation``: temperatures, the models table, the
    evaluation plan and the frozen pass."""

    calibration: Calibration
    models: pd.DataFrame
    plan: stream.EvalPlan
    evaluation: stream.EvalPass


@dataclass(frozen=True)
class Chosen:
    """Stage ``greedy``: the pool, the selection and the tables it fills (with pareto.csv,
    which needs the greedy table)."""

    pool_names: list[str]
    selection: Selection
    greedy: pd.DataFrame
    greedy_folds: pd.DataFrame
    pareto: pd.DataFrame

    def tables(self) -> dict[str, pd.DataFrame]:
        """The tables by their file names (the fields of AnalysisResult they fill)."""
        return {"greedy": self.greedy, "greedy_folds": self.greedy_folds, "pareto": self.pareto}


def _run_analysis(
    zoo: ZooReader | str | Path,
    options: AnalyzeOptions,
    out_dir: str | Path | None,
    *,
    shift: Any,
    reference_name: str,
) -> AnalysisResult:
    """The stages of ``study.stages.STAGES``, each timed under its name."""
    timer = StageTimer()
    with timer.stage("inputs"):
        prepared = stage_inputs(zoo, options, shift, reference_name)
    inputs = prepared.inputs
    with timer.stage("temperatures"):
        calibration, models = stage_temperatures(inputs, options)
    with timer.stage("selection"):
        early = stage_selection(inputs, calibration, models, options, prepared.budget)
    with timer.stage("evaluation"):
        plan, evaluation = stage_evaluation(inputs, calibration, options, early)
    evaluated = Evaluated(calibration, models, plan, evaluation)
    with timer.stage("tables"):
        built, sidekicks = stage_tables(inputs, evaluated, options, prepared.budget)
    with timer.stage("interpolation"):
        interpolation = stage_interpolation(inputs, evaluated, options, sidekicks)
    with timer.stage("drilldown"):
        drilldown = stage_drilldown(prepared.zoo, inputs, calibration, options, sidekicks)
    with timer.stage("greedy"):
        chosen = stage_greedy(inputs, evaluated, built, options, prepared.budget, early)
    with timer.stage("headline"):
        summary = stage_headline(prepared, evaluated, built, sidekicks, chosen, options)
    shift_result = None
    if prepared.shift_sets is not None:
        with timer.stage("shift"):
            shift_result = stage_shift(prepared, calibration, options, reference_name)
            summary["shift"] = shift_result.summary
    with timer.stage("write"):
        result = stage_write(
            out_dir, inputs, options, built, interpolation, drilldown, chosen, shift_result,
            summary, timer,
        )  # fmt: skip
    return result


def stage_inputs(
    zoo: ZooReader | str | Path, options: AnalyzeOptions, shift: Any, reference_name: str
) -> Prepared:
    """Stage 1: open the zoo, check every name and option that can be checked before an
    array is read (a bad --budget or --shift fails in a second), read the inputs."""
    reader = open_zoo(zoo)
    budget = (
        parse_budget(options.budget, list(reader.models), [reader.card(n) for n in reader.models])
        if options.budget is not None
        else None
    )
    inputs = read_inputs(reader, options)
    shift_sets = None
    if shift:
        from zoolens.study.shift import open_sets

        check_base_only(options.pairs, "--shift")
        shift_sets = open_sets(reader, shift, reference_name=reference_name)
    if budget is not None and not inputs.calibrated:
        raise ZoolensError(
            "--budget needs a calibration split (cross-fitted greedy "
            "selection has no budget yet); drop --no-calibration"
        )
    info(
        f"analysing {len(inputs.names)} models on {len(inputs.ev)} evaluation examples "
        f"({len(inputs.cal)} calibration) of {reader.path}"
    )
    return Prepared(reader, inputs, budget, shift_sets)


def stage_temperatures(
    inputs: ZooInputs, options: AnalyzeOptions
) -> tuple[Calibration, pd.DataFrame]:
    """Stage 2: the temperatures and the models table; a bad --pool fails here."""
    calibration = calibrate(inputs, ray=options.ray, ray_address=options.ray_address)
    models = models_table(inputs, calibration)
    if options.pool is not None:
        # Fail fast on a bad --pool (syntax, columns, names, nothing matching) instead
        # of after the evaluation pass; the columns the pass measures are checked, not
        # applied.
        from zoolens.study.pool import select_pool

        select_pool(models, options.pool, defer=EVALUATION_COLUMNS)
    return calibration, models


def stage_selection(
    inputs: ZooInputs,
    calibration: Calibration,
    models: pd.DataFrame,
    options: AnalyzeOptions,
    budget: Budget | None,
) -> EarlySelection | None:
    """Stage 3: the greedy selection on the calibration split, before the evaluation pass,
    which then reports every prefix on the evaluation split from the calibrated rows it
    computes anyway (``study.stream.greedy_prefix_correct``) instead of this stage reading
    and calibrating each added model's evaluation rows again. None (the whole selection
    then runs in the greedy stage, after the pass, with the same results) where the
    selection needs the pass: a ``--pool`` (it may filter on measured columns), no
    calibration split (cross-fitted on the evaluation examples), ``--combine logits`` (the
    pass's calibrated logits are z·(1/T), the selection's z/T) or multi-label truth (the
    pass calibrates those rows with ``measure.ensemble.ensemble_inputs``)."""
    if (
        options.pool is not None
        or not inputs.calibrated
        or options.combine != "probs"
        or np.ndim(inputs.labels) != 1  # multi-label: the pass calibrates with ensemble_inputs
    ):
        return None
    pool_names, selection = select_greedy(
        inputs, calibration, models, options, optional=True, budget=budget, evaluate=False
    )
    return EarlySelection(pool_names, selection)


def stage_evaluation(
    inputs: ZooInputs,
    calibration: Calibration,
    options: AnalyzeOptions,
    early: EarlySelection | None = None,
) -> tuple[stream.EvalPlan, stream.EvalPass]:
    """Stage 4: the evaluation pass (``study.stream``), with the prefixes of a greedy
    selection made before it."""
    steps: tuple[int, ...] = ()
    if early is not None and isinstance(early.selection, GreedyOutcome):
        steps = tuple(inputs.names.index(name) for name in step_members(early.selection))
    plan = dataclasses.replace(evaluation_plan(inputs, options), greedy_steps=steps)
    return plan, stream.run_eval_pass(inputs, calibration, plan)


def stage_tables(
    inputs: ZooInputs, evaluated: Evaluated, options: AnalyzeOptions, budget: Budget | None
) -> tuple[Tables, list[dict[str, Any]]]:
    """Stage 5: the tables of the pass and the base's sidekicks, ranked (within budget)."""
    built = build_tables(inputs, evaluated.models, evaluated.evaluation, evaluated.plan.resamples)
    sidekicks = ranked_sidekicks(built.pairs, options.base)
    if budget is not None:
        sidekicks = budget.sidekicks(sidekicks, options.base)
    return built, sidekicks


def stage_interpolation(
    inputs: ZooInputs,
    evaluated: Evaluated,
    options: AnalyzeOptions,
    sidekicks: list[dict[str, Any]],
) -> pd.DataFrame:
    """Stage 6: the interpolation table. The default pair (base, best sidekick) is known
    only now; its curves come from a two-model pass over the evaluation rows."""
    specs = list(evaluated.plan.interpolation)
    if not inputs.interpolation_pairs and sidekicks:
        sidekick = inputs.names.index(sidekicks[0]["model"])
        specs = interpolation_specs(
            [(inputs.base_index, sidekick)], inputs, options.interpolation_weights
        )
        interpolation_curves(
            inputs, evaluated.calibration, specs, options.combine, options.memory_budget
        )
    return interpolation_table(inputs, specs)


def stage_drilldown(
    zoo: ZooReader,
    inputs: ZooInputs,
    calibration: Calibration,
    options: AnalyzeOptions,
    sidekicks: list[dict[str, Any]],
) -> pd.DataFrame:
    """Stage 7: the examples only one of the base and its best sidekick gets right."""
    from zoolens.study.drilldown import drilldown_table

    return drilldown_table(
        zoo,
        inputs.names,
        calibration.temperatures,
        inputs.ev,
        options.base,
        sidekicks[0]["model"] if sidekicks else None,
    )


def stage_greedy(
    inputs: ZooInputs,
    evaluated: Evaluated,
    built: Tables,
    options: AnalyzeOptions,
    budget: Budget | None,
    early: EarlySelection | None = None,
) -> Chosen:
    """Stage 8: greedy selection (or the one of stage ``selection``, with the evaluation
    pass's prefix results), its tables, and accuracy against cost (pareto.csv)."""
    if early is None:
        pool_names, selection = select_greedy(
            inputs, evaluated.calibration, built.models, options, optional=True, budget=budget
        )
    else:
        pool_names, selection = early.pool_names, early.selection
        if isinstance(selection, GreedyOutcome):
            assert evaluated.evaluation.greedy_correct is not None  # the pass had its steps
            selection = with_evaluation(selection, evaluated.evaluation.greedy_correct)
    greedy_table, greedy_folds = greedy_tables(selection)
    pareto = pareto_table(
        inputs.names, inputs.cards, options.base, built.models, built.pairs, greedy_table, budget
    )
    return Chosen(pool_names, selection, greedy_table, greedy_folds, pareto)


def stage_headline(
    prepared: Prepared,
    evaluated: Evaluated,
    built: Tables,
    sidekicks: list[dict[str, Any]],
    chosen: Chosen,
    options: AnalyzeOptions,
) -> dict[str, Any]:
    """Stage 9: summary.json's content (provenance, settings, notes, the headline)."""
    zoo, inputs, budget = prepared.zoo, prepared.inputs, prepared.budget
    calibration, plan, evaluation = evaluated.calibration, evaluated.plan, evaluated.evaluation
    summary = provenance(zoo, command=options.command, seeds={"bootstrap": options.seed})
    summary.update(
        {
            "base": options.base,
            "settings": {
                "pool": options.pool_setting,
                "pool_models": chosen.pool_names,
                "greedy_start": options.greedy_start,
                "max_steps": options.max_steps,
                "combine": options.combine,
                "n_bootstrap": options.n_bootstrap,
                "interval": "percentile, 95%",
                "chunk_size": plan.chunk_size,
                "exact_topk": options.exact_topk,
                "reliability_bins": RELIABILITY_BINS,
                **calibration_settings(inputs, options.folds),
            },
            "splits": split_sizes(inputs),
            "multilabel": bool(zoo.is_multilabel),
        }
    )
    summary.update(model_notes(inputs, calibration, built.groups.skipped_attributes, options.folds))
    summary["undefined"] = built.undefined  # {column: {pairs, reason}}: NaN by construction
    summary["headline"] = headline(
        inputs,
        options.base,
        options.greedy_start,
        built.models,
        built.pairs,
        sidekicks,
        evaluation,
        plan.resamples,
        chosen.selection,
        # with --ray, Spearman's rho per resample in blocks of resamples as Ray tasks
        ray_blocks(options, "headline (Spearman's rho per resample)", "resamples"),
    )
    pairs_summary(summary, options.pairs)
    # the per-block times a cluster's time scales from (README, Ray): the evaluation
    # pass's example chunks, then the pairs' bootstrap's blocks of pairs (study.pairblocks)
    if evaluation.chunk_seconds:
        summary["evaluation_chunks"] = _block_times(
            evaluation.chunk_seconds,
            "chunks",
            ("examples_per_chunk", min(plan.chunk_size, len(inputs.ev))),
            options.ray,
        )
    if evaluation.pair_block_seconds:
        summary["pair_blocks"] = _block_times(
            evaluation.pair_block_seconds,
            "blocks",
            ("pairs_per_block", min(plan.pair_block, len(inputs.pair_a))),
            options.ray,
        )
    if options.exact_topk and evaluation.prune.entries:
        summary["topk_fallback_rate"] = evaluation.prune.fallback_rate
    if budget is not None:
        summary["budget"] = budget.summary(options.base, sidekicks)
    return summary


def _block_times(
    seconds: Sequence[float], count_key: str, size: tuple[str, int], ray: bool
) -> dict[str, Any]:
    """summary.json's record of blocks of work run one after another or as tasks: how many,
    their size, and the median, largest and total of their wall times."""
    times = np.asarray(seconds)
    return {
        count_key: len(times),
        size[0]: size[1],
        "median_s": round(float(np.median(times)), 4),
        "max_s": round(float(times.max()), 4),
        "total_s": round(float(times.sum()), 3),
        "ray": ray,
    }


def stage_shift(
    prepared: Prepared, calibration: Calibration, options: AnalyzeOptions, reference_name: str
) -> ShiftResult:
    """Stage 10 (only with --shift): the same models on the shifted sets; the reference rows
    and temperatures are this analysis's own."""
    from zoolens.study.shift import analyze_shift

    inputs = prepared.inputs
    return analyze_shift(
        prepared.zoo,
        (),
        options.base,
        sets=prepared.shift_sets,
        reference_rows=inputs.ev,
        temperatures=dict(zip(inputs.names, calibration.temperatures)),
        combine=options.combine,
        n_bootstrap=options.n_bootstrap,
        seed=options.seed,
        memory_budget=options.memory_budget,
        exact_topk=options.exact_topk,
        reference_name=reference_name,
    )


def stage_write(
    out_dir: str | Path | None,
    inputs: ZooInputs,
    options: AnalyzeOptions,
    built: Tables,
    interpolation: pd.DataFrame,
    drilldown: pd.DataFrame,
    chosen: Chosen,
    shift_result: ShiftResult | None,
    summary: dict[str, Any],
    timer: StageTimer,
) -> AnalysisResult:
    """Stage 11: the result, every table, cards.json, then summary.json, staged so the
    folder changes as a whole or not at all. summary.json's timings are taken just before
    it is written (its own few milliseconds are the write stage's last)."""
    if len(chosen.pareto):
        summary["pareto"] = pareto_summary(chosen.pareto, inputs.names, inputs.cards)
    result = AnalysisResult(
        **built.tables(),
        **chosen.tables(),
        interpolation=interpolation,
        drilldown=drilldown,
        summary=summary,
        shift=shift_result,
        **(shift_result.tables() if shift_result is not None else {}),
    )
    staged = None if out_dir is None else tables.StagedOutput(out_dir)
    if staged is not None:
        staged.write_tables(
            result.tables(),
            parquet=options.parquet,
            cards=cards_payload(inputs),
            # With --ray, large tables' CSV text is made by Ray tasks (pairs.csv: the
            # driver's longest write at 1,000 models); the same bytes.
            csv_blocks=ray_blocks(options, "CSV tables", "rows"),
        )
    summary["timings_s"] = timer.rounded()
    summary["elapsed_s"] = round(timer.elapsed(), 3)
    if staged is not None:
        # summary.json last, so a crash never leaves a summary describing half-written
        # tables.
        staged.commit(summary)
    return result


def ray_blocks(options: AnalyzeOptions, what: str, unit: str) -> Any:
    """With ``--ray``, a runner of blocks as Ray tasks in order (``run_blocks(task, ctx,
    bounds)``: ``study.distributed.run_chunks_ray`` at the analysis' cluster; ``what`` /
    ``unit`` name the work and its blocks' items in messages); None without."""
    if not options.ray:
        return None
    return functools.partial(run_chunks_ray, address=options.ray_address, what=what, unit=unit)


def split_sizes(inputs: ZooInputs) -> dict[str, int]:
    """summary.json's "splits": calibration, evaluation and all examples."""
    return {
        "calibration": len(inputs.cal),
        "evaluation": len(inputs.ev),
        "all": int(inputs.zoo.num_examples),
    }


def evaluation_plan(inputs: ZooInputs, options: AnalyzeOptions) -> stream.EvalPlan:
    """How stage 3 runs: chunk size (from the memory budget unless given), the bootstrap
    resamples, the requested interpolation curves, the pair kernel."""
    num_pairs = len(inputs.pair_a)
    # rows kept beside a base-only group: the greedy prefixes' models, the curves' pairs
    kept = options.max_steps + 1 + 2 * len(inputs.interpolation_pairs)
    chunk_size = options.chunk_size or chunk_examples(
        block_models(len(inputs.scored), inputs.pairs, kept),
        inputs.num_classes,
        num_pairs,
        options.n_bootstrap,
        options.memory_budget,
    )
    return stream.EvalPlan(
        combine=options.combine,
        chunk_size=chunk_size,
        resamples=Resamples(len(inputs.ev), options.n_bootstrap, options.seed),
        interpolation=interpolation_specs(
            inputs.interpolation_pairs, inputs, options.interpolation_weights
        ),
        exact_topk=options.exact_topk,
        ray=options.ray,
        ray_address=options.ray_address,
        model_group=None if inputs.pairs == "all" else MODEL_GROUP,
        pair_block=pair_block_size(len(inputs.ev), options.n_bootstrap, options.memory_budget),
    )


def select_greedy(
    inputs: ZooInputs,
    calibration: Calibration,
    models: pd.DataFrame,
    options: AnalyzeOptions,
    *,
    optional: bool = False,
    budget: Budget | None = None,
    evaluate: bool = True,
) -> tuple[list[str], Selection]:
    """The pool ``options.pool`` selects from the models table, and the greedy selection
    over it from ``options.greedy_start``.

    Returns ``(pool names, GreedyOutcome | CrossFitOutcome)``, or ``(pool names,
    GreedySkipped(reason))`` when ``optional``
    (analyze's defaults) and the selection cannot run: the default start (the base) is
    decision-only. A pool too big for ``memory_budget`` runs with its calibration rows held
    lazily (``study.greedy``), with identical results. Without a calibration split the
    selection is cross-fitted over all examples (``study.greedy.run_crossfit``).
    """
    from zoolens.study.greedy import disagreement_order, run_crossfit, run_selection
    from zoolens.study.pool import select_pool

    start = options.greedy_start
    pool_names = (
        select_pool(models, options.pool)
        if options.pool is not None
        else [name for name, ok in zip(inputs.names, inputs.has_scores) if ok]
    )
    if optional and options.start is None and not inputs.has_scores[inputs.names.index(start)]:
        reason = (
            f"the base {start!r} is decision-only (no probabilities to ensemble); "
            "run `zoolens ensemble --start` from a model with probabilities"
        )
        # The rest of the analysis still runs; the summary (and the CLI's recap, once)
        # says why greedy was skipped.
        return pool_names, GreedySkipped(reason)
    if optional and budget is not None and not budget.fits([start]):
        reason = (
            f"the start {start!r} alone does not fit the budget {budget.describe()} "
            "(or has no cost on its card)"
        )
        return pool_names, GreedySkipped(reason)
    select = functools.partial(
        run_selection,
        inputs.zoo,
        inputs.names,
        inputs.has_scores,
        calibration.temperatures,
        start,
        pool_names,
        labels=inputs.labels,
        combine=options.combine,
        max_steps=options.max_steps,
        memory_budget=options.memory_budget,
    )
    if not inputs.calibrated:
        return pool_names, run_crossfit(
            select, inputs.names, inputs.ev, folds=options.folds, seed=options.seed
        )

    # The rows the candidates disagree on most first: a lazily held pool keeps its stored
    # scores there (study.greedy.KeptRows).
    def row_order(candidates: np.ndarray) -> np.ndarray:
        return disagreement_order(inputs.predictions, inputs.cal, candidates)

    return pool_names, select(
        cal=inputs.cal, ev=inputs.ev, budget=budget, evaluate=evaluate, row_order=row_order
    )


# --------------------------------------------------------------------------------------
# greedy selection alone (``zoolens ensemble``)


def run_greedy(
    zoo: Any,
    start: str,
    out_dir: str | Path | None = None,
    *,
    pool: str | Sequence[str] | None = None,
    max_steps: int = 25,
    combine: str = "probs",
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    parquet: bool = True,
    command: str | None = None,
    calibration: bool = True,
    folds: int = 5,
    seed: int = 0,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Greedy forward selection alone: returns (greedy table, summary) and writes
    greedy.csv, models.csv (the table the pool filter reads, without intervals), cards.json
    (the model cards of the models.csv rows, as ``analyze`` writes them) and summary.json
    when ``out_dir`` is given. Without a calibration split (``calibration=False`` or a zoo
    with calibration fraction 0) the selection is cross-fitted in ``folds`` folds: the
    returned table is then greedy_folds.csv's."""
    options = AnalyzeOptions(
        base=start,
        start=start,
        pool=pool if pool is None or isinstance(pool, str) else tuple(pool),
        max_steps=max_steps,
        combine=combine,
        memory_budget=memory_budget,
        parquet=parquet,
        command=command,
        calibration=calibration,
        folds=folds,
        seed=seed,
    )
    zoo = open_zoo(zoo)
    check_model(zoo, start, "--start")
    # Greedy needs no pair: the start's pairs only (linear in M, like --pairs base).
    inputs = with_base(
        load_inputs(zoo, min_models=1, calibration=calibration), start, "--start", pairs="base"
    )
    with one_torch_thread():
        calibration_ = calibrate(inputs)
        models = models_table(inputs, calibration_)
        pool_names, selection = select_greedy(inputs, calibration_, models, options)
    summary = provenance(zoo, command=command, seeds={"cross_fit": seed})
    summary.update(
        {
            "start": start,
            "settings": {
                "pool": options.pool_setting,
                "pool_models": pool_names,
                "max_steps": max_steps,
                "combine": combine,
                **calibration_settings(inputs, folds),
            },
            "splits": split_sizes(inputs),
            "greedy": greedy_summary(selection),
        }
    )
    summary.update(model_notes(inputs, calibration_, folds=folds))
    greedy_table, greedy_folds = greedy_tables(selection)
    if out_dir is not None:
        written = {"models": models, "greedy": greedy_table}
        if not inputs.calibrated:
            written["greedy_folds"] = greedy_folds
        tables.write_results(
            out_dir, written, summary, parquet=parquet, cards=cards_payload(inputs)
        )
    assert not isinstance(selection, GreedySkipped)  # only analyze's defaults skip
    return selection.table, summary
