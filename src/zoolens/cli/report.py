"""``zoolens report``: the paper's figures and tables for a results folder, as one HTML file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from zoolens.cli._app import app, handle_errors, refuse_inside_zoo


@app.command("report")
@handle_errors
def report(
    results_dir: Annotated[
        Path,
        typer.Argument(help="Results folder written by `zoolens analyze` (and `zoolens probe`)."),
    ],
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="The HTML file to write (self-contained, works offline)."),
    ] = Path("report.html"),
    png_dir: Annotated[
        Path | None, typer.Option("--png-dir", help="Also save every figure as PNG in this folder.")
    ] = None,
    pairs: Annotated[
        str,
        typer.Option(
            "--pairs",
            help="Pairs drawn in the pair figures: 'base' (pairs with the base "
            "model, as in the paper) or 'all'.",
        ),
    ] = "base",
) -> None:
    """Draw the paper's figures and tables for a results folder as one self-contained HTML file.

    Missing or malformed tables are left out with a one-line warning (also listed in the report); a folder with no result table at all is an error.

    Example:  zoolens report results/ --out report.html --png-dir figures/
    """
    from zoolens.progress import info
    from zoolens.report.html import build_report

    refuse_inside_zoo(out)
    refuse_inside_zoo(png_dir, "--png-dir")
    result = build_report(results_dir, out, png_dir=png_dir, which=pairs, progress=info)
    info(
        f"wrote {result.path} ({len(result.figures)} figures"
        + (f", {len(result.png_files)} PNG files in {png_dir}" if png_dir else "")
        + ")"
    )
