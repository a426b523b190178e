"""``zoolens demo``: train a small zoo on Fashion-MNIST, analyse it, write an HTML report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from zoolens.cli._app import app, handle_errors
from zoolens.errors import require_torch


@app.command("demo")
@handle_errors
def demo(
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Output folder (zoo, tables, report, "
            "cache). [default: zoolens-demo, or zoolens-demo-quick with "
            "--quick]",
            show_default=False,
        ),
    ] = None,
    quick: Annotated[
        bool,
        typer.Option(
            "--quick",
            help="Ten models, fewer epochs: about 4 "
            "minutes on 2 CPU cores (the default profile: about 7); the "
            "CI profile.",
        ),
    ] = False,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Retrain every model (ignore the cache).")
    ] = False,
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            help="Folder with the four Fashion-MNIST "
            "*-ubyte.gz files (default: Debian's dataset-fashion-mnist, "
            "then a torchvision download).",
        ),
    ] = None,
    threads: Annotated[
        int | None,
        typer.Option(
            "--threads",
            min=1,
            help="CPU threads for training (default: 2, or 1 when the machine is busy).",
        ),
    ] = None,
) -> None:
    """Train a zoo on Fashion-MNIST (CPU, about 7 minutes), run the whole study, write the report.

    The zoo differs from a base CNN along each of the paper's axes (Reinit, HParam, Arch,
    Framework, Dataset), plus model soups of fine-tuned networks. Trained models are cached
    under OUT/cache, so a second run only re-analyses. At the end the paper's findings are
    printed as this zoo shows them.

    Example:  zoolens demo --quick --out /tmp/zoolens-demo
    """
    require_torch("zoolens demo")
    from zoolens.demo.findings import format_findings
    from zoolens.demo.run import run_demo

    result = run_demo(out, quick=quick, fresh=fresh, data_dir=data, threads=threads)
    print(f"zoo: {result.zoo_path}  ({len(result.accuracies)} models)")
    for name, acc in result.accuracies.items():
        print(f"  {name:<22} test accuracy {acc:.4f}")
    print(f"tables: {result.results_dir}")
    if result.report_path is not None:
        print(f"report: {result.report_path}")
    print(format_findings(result.findings))
    for item in result.missing:
        print(f"not included: {item}")
    print(
        f"done in {result.seconds.get('total', 0):.0f}s "
        f"({len(result.cache_hits)} models from the cache)"
    )
