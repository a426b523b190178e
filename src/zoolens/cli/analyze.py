"""``zoolens analyze`` and ``zoolens ensemble``: the paper's pair measurements and greedy search.

Thin wrappers: parse options, call ``zoolens.study.analyze`` (imported inside the commands so
``zoolens --help`` stays instant), print a short ranked summary.
"""

from __future__ import annotations

from pathlib import Path

import typer

from zoolens.cli._app import app, handle_errors, invocation, parse_model_pairs
from zoolens.errors import ZoolensError


def _check_combine(combine: str) -> str:
    if combine not in ("probs", "logits"):
        raise ZoolensError(f"--combine {combine!r}: use 'probs' or 'logits'")
    return combine


@app.command()
@handle_errors
def analyze(
    ctx: typer.Context,
    zoo: Path = typer.Argument(..., help="The zoo folder (made by `zoolens import` or `collect`)."),
    base: str = typer.Option(..., "--base", help="The base model every other one is compared "
                             "with (the paper's ResNet-50)."),
    out: Path = typer.Option(..., "--out", help="Folder for the tables (CSV, Parquet) and "
                             "summary.json."),
    pool: str = typer.Option(None, "--pool", help="Greedy-search candidates: a filter on "
                             "models.csv such as \"accuracy<0.78\" (<, <=, >, >=, ==, !=, "
                             "joined by 'and') or a comma list of names. Default: all models "
                             "with probabilities."),
    start: str = typer.Option(None, "--start", help="The model the greedy ensemble starts "
                              "from (as `zoolens ensemble --start`; default: --base)."),
    max_steps: int = typer.Option(25, "--max-steps", min=1, help="Greedy selection steps."),
    combine: str = typer.Option("probs", "--combine", help="Ensemble by averaging calibrated "
                                "'probs' (default) or calibrated 'logits' (the paper's Fig. 11)."),
    bootstrap: int = typer.Option(1000, "--bootstrap", min=0, help="Bootstrap resamples for "
                                  "confidence intervals and paired tests (0: none)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap resampling."),
    interpolate: list[str] = typer.Option(None, "--interpolate", help="A,B: weight and "
                                          "class-aware interpolation curve for this pair "
                                          "(repeatable; default: base with its best sidekick)."),
    chunk_size: int = typer.Option(None, "--chunk-size", min=1, help="Examples per streamed "
                                   "chunk (default: from --memory-gb)."),
    memory_gb: float = typer.Option(1.0, "--memory-gb", min=0.01, help="Memory budget (GiB) "
                                    "for calibrated probabilities held at once: streamed "
                                    "chunks and the greedy candidates (a larger pool is "
                                    "staged on disk, in TMPDIR)."),
    full_rows: bool = typer.Option(False, "--full-rows", help="Compute pair ensembles on full "
                                   "probability rows instead of the exact top-k kernel "
                                   "(same results, slower; for checking)."),
    no_calibration: bool = typer.Option(
        False, "--no-calibration", help="Measure everything on all examples: temperatures "
        "fixed at 1, greedy selection cross-fitted in --folds folds (what a zoo created with "
        "--calibration-fraction 0 gets anyway)."),
    folds: int = typer.Option(5, "--folds", min=2, max=100, help="Folds of the cross-fitted "
                              "greedy selection when there is no calibration split."),
) -> None:
    """Calibrate every model and measure every pair (paper Sec. 3-4.5).

    Error inconsistency, ensembles, specialization by class / class group / attribute, greedy
    selection, bootstrap intervals and paired tests; tables (CSV, Parquet) and summary.json
    go to --out, a ranked summary ("best sidekick for BASE: ...") to the terminal.

    Example:  zoolens analyze my_zoo --base resnet50 --out results --pool "accuracy<0.78"

    Example (published numbers on all examples):  zoolens analyze cifar.zoo --base resnet
    --out results --no-calibration
    """
    from zoolens.study.analyze import analyze as run_analysis
    from zoolens.study.analyze import format_summary

    result = run_analysis(
        zoo, base, out, pool=pool, start=start, max_steps=max_steps,
        combine=_check_combine(combine),
        n_bootstrap=bootstrap, seed=seed, chunk_size=chunk_size,
        memory_budget=int(memory_gb * 2**30),
        interpolation_pairs=parse_model_pairs(interpolate, "--interpolate"),
        exact_topk=not full_rows,
        command=invocation(ctx), calibration=not no_calibration, folds=folds)
    print(format_summary(result.summary))
    print(f"tables written to {out}")


@app.command()
@handle_errors
def ensemble(
    ctx: typer.Context,
    zoo: Path = typer.Argument(..., help="The zoo folder."),
    start: str = typer.Option(..., "--start", help="The model the ensemble starts from."),
    pool: str = typer.Option(None, "--pool", help="Candidates: a filter on models.csv such as "
                             "\"accuracy<0.78\" or a comma list of names (default: all models "
                             "with probabilities)."),
    max_steps: int = typer.Option(25, "--max-steps", min=1, help="Greedy selection steps."),
    combine: str = typer.Option("probs", "--combine", help="Average calibrated 'probs' or "
                                "'logits'."),
    out: Path = typer.Option(None, "--out", help="Folder for greedy.csv, models.csv, cards.json "
                             "and summary.json (default: print only)."),
    memory_gb: float = typer.Option(1.0, "--memory-gb", min=0.01, help="Memory budget for "
                                    "calibrated probabilities (GiB); a larger pool is staged "
                                    "on disk, in TMPDIR."),
    no_calibration: bool = typer.Option(
        False, "--no-calibration", help="No calibration split: temperatures 1, members "
        "chosen by cross-fitting (chosen on k-1 folds, scored on the held-out fold)."),
    folds: int = typer.Option(5, "--folds", min=2, max=100, help="Cross-fitting folds."),
    seed: int = typer.Option(0, "--seed", help="Seed of the cross-fitting folds."),
) -> None:
    """Greedy forward ensemble selection alone (paper Sec. 4.5).

    From --start, each step adds (with replacement) the candidate that most improves
    calibration-split accuracy; the best prefix is kept; evaluation-split accuracy is reported
    at every step, never used to choose. Without a calibration split (--no-calibration, or
    a zoo with calibration fraction 0) the selection is cross-fitted.

    Example:  zoolens ensemble my_zoo --start resnet50 --pool "accuracy<0.78" --max-steps 25
    """
    from zoolens.study.analyze import format_greedy, run_greedy

    table, summary = run_greedy(zoo, start, out, pool=pool, max_steps=max_steps,
                                combine=_check_combine(combine),
                                memory_budget=int(memory_gb * 2**30), command=invocation(ctx),
                                calibration=not no_calibration, folds=folds, seed=seed)
    print(format_greedy(table, summary))
    if out is not None:
        print(f"tables written to {out}")
