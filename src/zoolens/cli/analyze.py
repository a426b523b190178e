"""``zoolens analyze`` and ``zoolens ensemble``: the paper's pair measurements and greedy search.

Thin wrappers: parse options, call ``zoolens.study.analyze`` (imported inside the commands so
``zoolens --help`` stays instant), print a short ranked summary (the presentation text lives
here: :func:`format_summary`, :func:`format_greedy`, :func:`format_timings`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
import typer

from zoolens.cli._app import (
    app,
    gib_to_bytes,
    handle_errors,
    invocation,
    parse_model_pairs,
    refuse_inside_zoo,
)
from zoolens.cli import options as opt
from zoolens.measure.shift import MIN_R2_POINTS
from zoolens.progress import terminal_text
from zoolens.study import stages


@app.command()
@handle_errors
def analyze(
    ctx: typer.Context,
    zoo: Annotated[
        Path, typer.Argument(help="The zoo folder (made by `zoolens import` or `collect`).")
    ],
    base: Annotated[
        str,
        typer.Option(
            "--base",
            help="The base model every other one is compared with (the paper's ResNet-50).",
        ),
    ],
    out: Annotated[
        Path, typer.Option("--out", help="Folder for the tables (CSV, Parquet) and summary.json.")
    ],
    pool: opt.Pool = None,
    start: Annotated[
        str | None,
        typer.Option(
            "--start",
            help="The model the greedy ensemble starts "
            "from (as `zoolens ensemble --start`; default: --base).",
        ),
    ] = None,
    max_steps: opt.MaxSteps = 25,
    combine: opt.Combine = "probs",
    bootstrap: Annotated[
        int,
        typer.Option(
            "--bootstrap",
            help="Bootstrap resamples for confidence intervals and paired tests (0: none).",
        ),
    ] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the bootstrap resampling.")] = 0,
    interpolate: Annotated[
        list[str] | None,
        typer.Option(
            "--interpolate",
            help="A,B: weight and "
            "class-aware interpolation curve for this pair "
            "(repeatable; default: base with its best sidekick).",
        ),
    ] = None,
    chunk_size: Annotated[
        int | None,
        typer.Option(
            "--chunk-size", help="Examples per streamed chunk (default: from --memory-gb)."
        ),
    ] = None,
    memory_gb: Annotated[
        float,
        typer.Option(
            "--memory-gb",
            help="Memory budget (GiB) "
            "for calibrated probabilities held at once: streamed "
            "chunks and the greedy candidates (a larger pool is "
            "held lazily, recomputed from the zoo on demand).",
        ),
    ] = 1.0,
    budget: Annotated[
        str | None,
        typer.Option(
            "--budget",
            help="Inference cost limit per example, in "
            "the cards' units: gflops=8, gmacs=4, mparams=50, params=…, "
            "latency_ms=20 (comma-join several). The best sidekick and greedy "
            "selection then only consider ensembles whose summed cost (over "
            "distinct members) fits; models without a cost are left out.",
        ),
    ] = None,
    full_rows: Annotated[
        bool,
        typer.Option(
            "--full-rows",
            help="Compute pair ensembles on full "
            "probability rows instead of the exact top-k kernel "
            "(same results, slower; for checking).",
        ),
    ] = False,
    no_calibration: opt.NoCalibration = False,
    folds: opt.Folds = 5,
    ray: Annotated[
        bool,
        typer.Option(
            "--ray",
            help="Run the temperature fits and the "
            "evaluation pass's example chunks as Ray tasks (every node must "
            "see the zoo at the same path); tables identical to a local run.",
        ),
    ] = False,
    ray_address: opt.RayAddress = None,
    pairs: Annotated[
        str,
        typer.Option(
            "--pairs",
            help="Which pairs to measure: 'all' (every pair, default) or 'base' (only the base's "
            "pairs: time and memory linear in the number of models, for a hub of thousands; the "
            "base's rows are the all-pairs run's; left out: the all-pairs correlation and the "
            "report's kappa matrix).",
        ),
    ] = "all",
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose",
            "-v",
            help=f"Also print the wall time of each stage ({stages.describe()}); summary.json "
            "records them either way (timings_s).",
        ),
    ] = False,
    shift: Annotated[
        list[str] | None,
        typer.Option(
            "--shift",
            help="NAME=ZOO: the same models on "
            "another evaluation set (a zoo with the same classes and "
            "model names; repeatable). Adds shift_models.csv, "
            "shift_pairs.csv, shift_fits.csv: accuracy and agreement "
            "on the line, effective robustness, sidekick ranks.",
        ),
    ] = None,
    reference_name: Annotated[
        str,
        typer.Option(
            "--reference-name", help="The name of ZOO's evaluation set in the shift tables."
        ),
    ] = "reference",
) -> None:
    """Calibrate every model and measure every pair (paper Sec. 3-4.5).

    Error inconsistency, ensembles, specialization by class / class group / attribute, greedy
    selection, bootstrap intervals and paired tests; tables (CSV, Parquet) and summary.json
    go to --out, a ranked summary ("best sidekick for BASE: ...") to the terminal.

    Example:  zoolens analyze my_zoo --base resnet50 --out results --pool "accuracy<0.78"

    Example (under a cost budget; writes pareto.csv):  zoolens analyze my_zoo --base resnet50
    --out results --budget gflops=8

    Example (on a Ray cluster):  zoolens analyze /shared/zoo --base resnet50 --out results
    --ray-address auto

    Example (published numbers on all examples):  zoolens analyze cifar.zoo --base resnet
    --out results --no-calibration

    Example (one base among thousands of candidates):  zoolens analyze hub.zoo --base mine
    --out results --pairs base

    Under distribution shift:  zoolens analyze cifar10.zoo --base resnet110 --out results
    --reference-name cifar10 --shift cifar10.1=cifar10.1.zoo
    """
    from zoolens.study.analyze import analyze as run_analysis
    from zoolens.study.shift import parse_shift_options

    shift_sets = parse_shift_options(shift)
    refuse_inside_zoo(out)

    result = run_analysis(
        zoo,
        base,
        out,
        pool=pool,
        start=start,
        max_steps=max_steps,
        combine=combine,
        n_bootstrap=bootstrap,
        seed=seed,
        chunk_size=chunk_size,
        memory_budget=gib_to_bytes(memory_gb),
        interpolation_pairs=parse_model_pairs(interpolate, "--interpolate"),
        exact_topk=not full_rows,
        budget=budget,
        command=invocation(ctx),
        calibration=not no_calibration,
        folds=folds,
        shift=shift_sets,
        reference_name=reference_name,
        ray=ray or ray_address is not None,
        ray_address=ray_address,
        pairs=pairs,
    )
    print(terminal_text(format_summary(result.summary)))
    if result.shift is not None:
        print(terminal_text(format_shift(result.shift.summary)))
    if verbose:
        print(format_timings(result.summary))
    print(f"tables written to {out}")


@app.command()
@handle_errors
def ensemble(
    ctx: typer.Context,
    zoo: opt.ZooArgument,
    start: Annotated[str, typer.Option("--start", help="The model the ensemble starts from.")],
    pool: opt.Pool = None,
    max_steps: opt.MaxSteps = 25,
    combine: opt.Combine = "probs",
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Folder for greedy.csv, models.csv, cards.json "
            "and summary.json (default: print only).",
        ),
    ] = None,
    memory_gb: Annotated[
        float,
        typer.Option(
            "--memory-gb",
            help="Memory budget for "
            "calibrated probabilities (GiB); a larger pool is held "
            "lazily, recomputed from the zoo on demand.",
        ),
    ] = 1.0,
    no_calibration: opt.NoCalibration = False,
    folds: opt.Folds = 5,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the cross-fitting folds.")] = 0,
) -> None:
    """Greedy forward ensemble selection alone (paper Sec. 4.5).

    From --start, each step adds (with replacement) the candidate that most improves
    calibration-split accuracy; the best prefix is kept; evaluation-split accuracy is reported
    at every step, never used to choose. Without a calibration split (--no-calibration, or
    a zoo with calibration fraction 0) the selection is cross-fitted.

    Example:  zoolens ensemble my_zoo --start resnet50 --pool "accuracy<0.78" --max-steps 25
    """
    from zoolens.study.analyze import run_greedy

    refuse_inside_zoo(out)
    table, summary = run_greedy(
        zoo,
        start,
        out,
        pool=pool,
        max_steps=max_steps,
        combine=combine,
        memory_budget=gib_to_bytes(memory_gb),
        command=invocation(ctx),
        calibration=not no_calibration,
        folds=folds,
        seed=seed,
    )
    print(terminal_text(format_greedy(table, summary)))
    if out is not None:
        print(f"tables written to {out}")


# --------------------------------------------------------------------------------------
# presentation text


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
    lines = [
        f"{base['model']} (base): accuracy {_pct(base['accuracy'])} "
        f"[{_pct(base['accuracy_lo'])}, {_pct(base['accuracy_hi'])}] on the evaluation "
        f"split, {_pct(base['accuracy_all'])} on all examples"
    ]
    best = head["best_sidekick"]
    # the family pairs.csv adjusts over: every pair, or the base's (--pairs base)
    family = "the base's pairs" if summary.get("pairs") == "base" else "all pairs"
    budget = summary.get("budget") or {}
    if best is None and budget.get("sidekicks_before_budget"):
        lines.append(
            f"best sidekick for {base['model']}: none within the budget {budget['budget']} "
            f"({budget['sidekicks_before_budget']} pair(s) with the base have an ensemble; "
            "the budget excludes every one"
            + (", the base alone does not fit it" if budget.get("base_fits") is False else "")
            + ")"
        )
    elif best is None:
        lines.append(
            f"best sidekick for {base['model']}: none (no pair with the base has "
            "probabilities on both sides)"
        )
    else:
        lines.append(
            f"best sidekick for {base['model']}: {best['model']} (ensemble "
            f"{_pct(best['ensemble_acc'])}, {best['over_base']:+.3f} over "
            f"{base['model']} alone; EI {_pct(best['error_inconsistency'])}, "
            f"McNemar p{_p_value(best['mcnemar_p'])}"
            + (
                f", Holm-adjusted over {family} p{_p_value(best['mcnemar_p_holm'])}"
                if best.get("mcnemar_p_holm") is not None and np.isfinite(best["mcnemar_p_holm"])
                else ""
            )
            + ")"
        )
        for rank, row in enumerate(head["ranked_sidekicks"][1:], start=2):
            lines.append(
                f"  {rank}. {row['model']} [{row['category']}]: ensemble "
                f"{_pct(row['ensemble_acc'])} ({row['over_base']:+.3f})"
            )
    categories = head["mean_error_inconsistency_by_category"]
    if categories:
        lines.append(
            "mean error inconsistency with the base by category: "
            + ", ".join(
                f"{cat} {_pct(v['mean'])} [{_pct(v['lo'])}, {_pct(v['hi'])}]"
                for cat, v in categories.items()
            )
        )
    over = "all pairs"
    correlation = head["spearman_ei_vs_gain"]["all_pairs"]
    if correlation is None:  # --pairs base: only the base's pairs were measured
        over, correlation = (
            "the pairs with the base",
            head["spearman_ei_vs_gain"]["pairs_with_base"],
        )
    n_pairs = correlation.get("n_pairs") or 0
    if n_pairs < 5:  # a rank correlation over 3 pairs is +-1 by luck (the report says the same)
        lines.append(
            "Spearman(error inconsistency, ensemble gain): too few pairs "
            f"(n = {n_pairs}; at least 5 needed)"
        )
    elif correlation["rho"] is not None:
        lines.append(
            f"Spearman(error inconsistency, ensemble gain) over {over}: "
            f"{correlation['rho']:.3f} [{_pct(correlation.get('lo'))}, "
            f"{_pct(correlation.get('hi'))}] (n = {n_pairs})"
        )
    ensemble = (
        f"ensemble of all {head['all_models_ensemble_members']} models with "
        f"probabilities: {_pct(head['all_models_ensemble_acc'])}; "
        if head["all_models_ensemble_acc"] is not None
        else ""
    )
    lines.append(
        f"{ensemble}majority vote of all {head['majority_vote_members']}: "
        f"{_pct(head['majority_vote_acc'])}"
        + (f" ({head['majority_vote_note']})" if head.get("majority_vote_note") else "")
    )
    greedy = head["greedy"]
    if "skipped" in greedy:
        lines.append(f"greedy selection skipped: {greedy['skipped']}")
    elif greedy.get("cross_fitted"):
        often = ", ".join(
            f"{m} ({c}/{greedy['folds']})" for m, c in list(greedy["member_folds"].items())[:5]
        )
        lines.append(
            f"greedy from {greedy['start']}, cross-fitted in {greedy['folds']} folds: "
            f"held-out accuracy {_pct(greedy['evaluation_acc'])} (fold spread "
            f"{_pct(greedy['fold_spread'])}, {greedy['gain_over_start']:+.3f} over "
            f"the start); chosen most often: {often}"
        )
    else:
        counts: dict[str, int] = {}
        for member in greedy.get("members") or []:
            counts[member] = counts.get(member, 0) + 1
        weights = ", ".join(f"{m} {c}/{greedy['steps_kept']}" for m, c in counts.items())
        lines.append(
            f"greedy from {greedy['start']}: {len(counts)} distinct models in "
            f"{greedy['steps_kept']} steps (weights: {weights}), "
            f"evaluation accuracy {_pct(greedy['evaluation_acc'])} "
            f"({greedy['gain_over_start']:+.3f} over the start"
            + (
                f", [{greedy['gain_over_start_lo']:+.3f}, {greedy['gain_over_start_hi']:+.3f}]"
                if greedy.get("gain_over_start_lo") is not None
                else ""
            )
            + ")"
        )
    if summary.get("settings", {}).get("calibration") == "none":
        lines.append("no calibration split: all measures on all examples, temperatures fixed at 1")
    budget = summary.get("budget")
    if budget is not None:
        lines.append(
            f"budget {budget['budget']}: best sidekick and greedy chosen among "
            f"ensembles that fit" + (f"; {budget['note']}" if budget.get("note") else "")
        )
    for warning in summary.get("temperature_warnings", []):
        lines.append(f"note: temperature of {warning}")
    return "\n".join(lines)


def format_timings(summary: dict[str, Any]) -> str:
    """One line per stage of ``analyze`` (summary.json's timings_s) and the total."""
    timings = summary.get("timings_s", {})
    total = summary.get("elapsed_s") or sum(timings.values()) or float("nan")
    lines = ["stage timings (wall):"]
    lines += [
        f"  {name:<14}{seconds:9.3f} s  {100 * seconds / total:5.1f} %"
        for name, seconds in timings.items()
    ]
    lines.append(f"  {'total':<14}{total:9.3f} s")
    return "\n".join(lines)


def format_greedy(table: pd.DataFrame, summary: dict[str, Any]) -> str:
    """The step table ``zoolens ensemble`` prints (kept steps marked with *); for a
    cross-fitted selection, each fold's kept members and held-out accuracy."""
    greedy = summary["greedy"]
    if greedy.get("cross_fitted"):
        lines = [
            f"greedy selection from {summary['start']} "
            f"({len(summary['settings']['pool_models'])} candidates), cross-fitted in "
            f"{greedy['folds']} folds (no calibration split):",
            "  fold  select  held-out  kept members",
        ]
        for fold, steps in table.groupby("fold", sort=True):
            kept = steps[steps["kept"]]
            last = kept.iloc[-1]
            lines.append(
                f"  {fold:4d}  {last.selection_acc:.3f}   {last.held_out_acc:.3f}"
                f"     {last.members}"
            )
        often = ", ".join(f"{m} ({c}/{greedy['folds']})" for m, c in greedy["member_folds"].items())
        lines.append(
            f"held-out accuracy {greedy['evaluation_acc']:.3f} (fold spread "
            f"{greedy['fold_spread']:.3f}; {greedy['gain_over_start']:+.3f} over "
            f"{summary['start']} alone); chosen most often: {often}"
        )
        return "\n".join(lines)
    lines = [
        f"greedy selection from {summary['start']} "
        f"({len(summary['settings']['pool_models'])} candidates):",
        "  step  calib  eval   added",
    ]
    for row in table.itertuples(index=False):
        mark = "*" if row.kept else " "
        lines.append(
            f"{mark} {row.step:4d}  {row.calibration_acc:.3f}  "
            f"{row.evaluation_acc:.3f}  {row.added}"
        )
    lines.append(
        f"kept {greedy['steps_kept']} members: evaluation accuracy "
        f"{greedy['evaluation_acc']:.3f} ({greedy['gain_over_start']:+.3f} over "
        f"{summary['start']} alone)"
    )
    return "\n".join(lines)


def _estimate_lines(entry: dict[str, Any] | None) -> list[str]:
    """The label-free estimates' lines of one shifted set (summary.json's shift.estimates)."""
    if not entry:
        return []
    out = [
        "  accuracy estimated without labels (ALine-D, ALine-S beside): estimated_accuracy "
        "in shift_models.csv"
        + ("" if entry.get("premise_holds") else " (premise fails: see the notes)")
    ]
    mae: Any
    worst: Any
    cover: Any
    mae, worst, cover = (
        entry.get("mean_abs_error"),
        entry.get("max_abs_error"),
        entry.get("coverage"),
    )
    if mae and mae.get("aline_d") is not None:
        text = (
            f"  against the measured accuracy: mean |error| {100 * mae['aline_d']:.1f} points "
            f"(max {100 * worst['aline_d']:.1f}; ALine-S {100 * mae['aline_s']:.1f}; the "
            f"reference accuracy as the guess {100 * mae['reference_accuracy']:.1f})"
        )
        if cover and cover.get("aline_d") is not None:
            text += f", 95% intervals cover {100 * cover['aline_d']:.0f}% of the models"
        out.append(text)
    return out


def format_shift(summary: dict[str, Any]) -> str:
    """The lines ``zoolens analyze --shift`` prints (summary.json's "shift" block)."""
    lines = []
    sidekick = summary.get("best_sidekick")
    for s in summary["sets"][1:]:
        name = s["name"]
        parts = []
        for measure in ("accuracy", "agreement"):
            f = summary["fits"].get(name, {}).get(measure)
            if f and f["slope"] is not None and math.isfinite(f["slope"]):
                if f["r2"] is not None and math.isfinite(f["r2"]):
                    r2 = f", R² {f['r2']:.3f} ({f['n_points']} points)"
                elif f["n_points"] < MIN_R2_POINTS:
                    r2 = f" (a line through {f['n_points']} points only: no R² claimed)"
                else:
                    r2 = f", R² n/a ({f['n_points']} points)"
                parts.append(
                    f"{measure} on the line: slope {f['slope']:.3f}, intercept "
                    f"{f['intercept']:+.3f}{r2}"
                )
        line = f"under shift {name} ({s['examples']} examples, {s['models']} models"
        line += "" if s.get("labelled", True) else ", no labels"
        lines.append(line + "): " + ("; ".join(parts) if parts else "no fit"))
        lines += _estimate_lines(summary.get("estimates", {}).get(name))
        if sidekick is not None:
            rank = sidekick["rank"].get(name)
            lines.append(
                f"  best sidekick on the reference, {sidekick['model']}: "
                + (
                    f"rank {rank} of {sidekick['partners'][name]} on {name}"
                    if rank is not None
                    else f"not ranked on {name}"
                )
            )
    for note in summary.get("notes", []):
        lines.append(f"note: {note}")
    return "\n".join(lines)
