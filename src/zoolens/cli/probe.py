"""``zoolens probe``: linear probes on embeddings — feature combination, diversity, CKA,
downstream transfer and stacking (paper Sec. 4.6-4.7, Figs. 6, 7, 13).

A thin wrapper over ``zoolens.study.probe`` (imported inside the command so ``zoolens --help``
stays instant).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from zoolens.cli._app import app, handle_errors, parse_model_pairs, refuse_inside_zoo
from zoolens.errors import ZoolensError, require_torch


def parse_floats(text: str, option: str) -> list[float]:
    """ "0,.25,.5" -> [0.0, 0.25, 0.5]; ZoolensError naming the option on a bad value."""
    values = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            values.append(float(part))
        except ValueError:
            raise ZoolensError(f"{option} {text!r}: {part!r} is not a number") from None
    if not values:
        raise ZoolensError(f"{option} {text!r}: no values given")
    return values


def _names(text: str | None) -> list[str] | None:
    if text is None:
        return None
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise ZoolensError(f"--models {text!r}: no model names given")
    return names


def _format_probe(result) -> str:
    lines = []
    probe = result.tables.get("probe")  # none on an unlabelled zoo (CKA only)
    for (a, b), group in () if probe is None else probe.groupby(["model_a", "model_b"], sort=False):
        lines.append(f"{a} + {b}: probe accuracy by rate f (fraction of {a}'s dims kept)")
        stats = group.groupby("rate").accuracy.agg(["mean", "std"])
        for rate, row in stats.iterrows():
            spread = 0.0 if row["std"] != row["std"] else row["std"]
            lines.append(f"  f={rate:<5g} {100 * row['mean']:6.2f}% ± {100 * spread:.2f}")
        div = result.summary.get("diversity", {}).get(f"{a} + {b}")
        if div:
            few = div["fewest_dims"]
            lines.append(
                f"  fewest dims to reach {100 * div['target_accuracy']:.2f}% (of "
                f"{div['total_dims']}): diverse {few['diverse']}, random {few['random']}"
            )
    if "cka" in result.tables:
        lines.append("CKA (linear / RBF / debiased) and error consistency:")
        for row in result.tables["cka"].itertuples():
            lines.append(
                f"  {row.model_a} ~ {row.model_b}: {row.cka_linear:.3f} / "
                f"{row.cka_rbf:.3f} / {row.cka_debiased:.3f}, kappa "
                f"{row.error_consistency:.3f}"
            )
    return "\n".join(lines)


def _format_stacking(result) -> str:
    transfer, stacking = result.tables["transfer"], result.tables["stacking"]
    lines = ["downstream probe (" + str(transfer.downstream_metric.iloc[0]) + "):"]
    for row in transfer.itertuples():
        lines.append(
            f"  {row.model}: {100 * row.downstream_value:.2f}% (upstream accuracy "
            f"{100 * row.upstream_accuracy:.2f}%)"
        )
    lines.append("stacked (both full embeddings concatenated):")
    for row in stacking.itertuples():
        lines.append(
            f"  {row.model_a} + {row.model_b}: {100 * row.value_stacked:.2f}% "
            f"(alone {100 * row.value_a:.2f}% / {100 * row.value_b:.2f}%)"
        )
    return "\n".join(lines)


@app.command()
@handle_errors
def probe(
    zoo: Annotated[Path, typer.Argument(help="The zoo folder; its models need embeddings.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for the tables (CSV + sibling JSON).")],
    models: Annotated[
        str | None,
        typer.Option(
            "--models", help="Comma list of models (default: every model with embeddings)."
        ),
    ] = None,
    pair: Annotated[
        list[str] | None,
        typer.Option(
            "--pair",
            help="A,B: probe only this pair (repeatable; default: every pair of --models).",
        ),
    ] = None,
    rates: Annotated[
        str,
        typer.Option(
            "--rates",
            help="Fractions f of model A's dimensions kept (B gets the inverse rate), each in [0, 1].",
        ),
    ] = "0,.25,.5,.75,1",
    draws: Annotated[
        int, typer.Option("--draws", min=1, help="Random draws of dimensions per rate.")
    ] = 3,
    stack: Annotated[
        bool,
        typer.Option(
            "--stack",
            help="Downstream mode: transfer.csv and "
            "stacking.csv from --downstream instead of probe/diversity/cka.",
        ),
    ] = False,
    downstream: Annotated[
        Path | None,
        typer.Option(
            "--downstream",
            help="With --stack: a zoo holding the "
            "same models' embeddings on a labelled downstream set "
            "(single- or multi-label).",
        ),
    ] = None,
    seed: Annotated[
        int, typer.Option("--seed", help="Seed of the train/test split and the draws.")
    ] = 0,
    test_fraction: Annotated[
        float,
        typer.Option("--test-fraction", help="Share of examples held out to score each probe."),
    ] = 0.3,
    l2_grid: Annotated[
        str,
        typer.Option(
            "--l2-grid",
            help="Candidate "
            "L2 penalties λ (mean loss + λ/2·‖W‖²), chosen on a validation "
            "part of the training split.",
        ),
    ] = "1e-1,1e-2,1e-3,1e-4,1e-5,1e-6",
    float64: Annotated[bool, typer.Option("--float64", help="Fit probes in float64.")] = False,
    device: Annotated[
        str | None,
        typer.Option("--device", help="torch device for the probes, e.g. cuda (default: cpu)."),
    ] = None,
    diversity: Annotated[
        bool,
        typer.Option("--diversity/--no-diversity", help="Also write diversity.csv (Fig. 6 right)."),
    ] = True,
    cka: Annotated[
        bool, typer.Option("--cka/--no-cka", help="Also write cka.csv (Fig. 13).")
    ] = True,
    rbf_max_examples: Annotated[
        int,
        typer.Option(
            "--rbf-max-examples",
            min=4,
            help="Random subsample for RBF CKA (memory ~ 3·n²·8 bytes).",
        ),
    ] = 10_000,
) -> None:
    """Linear probes on model embeddings (paper Sec. 4.6-4.7): combine two models' features at
    inverse rates (probe.csv), fewest diverse dimensions (diversity.csv), CKA against error
    consistency (cka.csv); with --stack, downstream transfer and stacking (transfer.csv,
    stacking.csv).

    Example:  zoolens probe my_zoo --models resnet50,clip --rates 0,.25,.5,.75,1 --draws 3 --out results

    Example:  zoolens probe my_zoo --stack --downstream pets_zoo --out results
    """
    require_torch("zoolens probe")
    from zoolens.study.probe import ProbeSettings, run_probe, run_stacking

    grid = tuple(parse_floats(l2_grid, "--l2-grid"))
    settings = ProbeSettings(
        l2_grid=grid, seed=seed, dtype="float64" if float64 else "float32", device=device
    )
    names = _names(models)
    refuse_inside_zoo(out)
    if stack:
        if downstream is None:
            raise ZoolensError(
                "--stack needs --downstream DATASET_ZOO (the same models' "
                "embeddings on a downstream labelled set)"
            )
        result = run_stacking(
            zoo,
            downstream,
            names,
            out_dir=out,
            pairs=parse_model_pairs(pair, "--pair"),
            seed=seed,
            test_fraction=test_fraction,
            settings=settings,
        )
        print(_format_stacking(result))
    else:
        if downstream is not None:
            raise ZoolensError("--downstream is only used with --stack")
        result = run_probe(
            zoo,
            names,
            out_dir=out,
            pairs=parse_model_pairs(pair, "--pair"),
            rates=parse_floats(rates, "--rates"),
            draws=draws,
            seed=seed,
            test_fraction=test_fraction,
            settings=settings,
            diversity=diversity,
            cka=cka,
            rbf_max_examples=rbf_max_examples,
        )
        print(_format_probe(result))
    print(f"tables written to {out}")
