"""``zoolens bench``: the benchmark suite (speed and memory against baselines).

A thin wrapper over ``python -m benchmarks`` in the source checkout (the benchmarks live in
``benchmarks/`` beside ``src/``, not in the installed package).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from zoolens.cli._app import app, handle_errors
from zoolens.errors import ZoolensError


def _checkout() -> Path:
    """The repository root holding benchmarks/__main__.py, or a ZoolensError."""
    import zoolens

    root = Path(zoolens.__file__).resolve().parents[2]
    if not (root / "benchmarks" / "__main__.py").is_file():
        raise ZoolensError(
            f"{root}: no benchmarks/ folder here; zoolens bench runs from a "
            "source checkout (git clone, pip install -e .)"
        )
    return root


@app.command("bench")
@handle_errors
def bench(
    quick: Annotated[
        bool,
        typer.Option(
            "--quick",
            help="Quick sizes (minutes) instead of the "
            "full ImageNet shape (82 x 50,000 x 1,000; generates ~8 GB).",
        ),
    ] = False,
    size: Annotated[Optional[str], typer.Option("--size", help="full, quick or tiny.")] = None,
    only: Annotated[
        str,
        typer.Option(
            "--only",
            help="Comma list of: agreement, temperature, ensemble, greedy, probe, analyze.",
        ),
    ] = "",
    runs: Annotated[
        int, typer.Option("--runs", min=1, help="Timed runs per measurement (median).")
    ] = 3,
    out: Annotated[
        Optional[Path],
        typer.Option("--out", help="Results file (markdown; default benchmarks/RESULTS.md)."),
    ] = None,
    threads: Annotated[
        int,
        typer.Option(
            "--threads", min=1, help="BLAS/OpenMP/torch threads for zoolens and baselines alike."
        ),
    ] = 1,
    keep_data: Annotated[
        bool, typer.Option("--keep-data", help="Keep generated full-size zoos.")
    ] = False,
) -> None:
    """Time zoolens against its baselines (sklearn loops, netcal, torch, plain numpy) and write
    a results table with the machine and package versions.

    Example:  zoolens bench --quick --only agreement,temperature
    """
    if size is not None and size not in ("full", "quick", "tiny"):
        raise ZoolensError(f"--size {size!r}: choose full, quick or tiny")
    root = _checkout()
    argv = [sys.executable, "-m", "benchmarks", "--runs", str(runs), "--threads", str(threads)]
    if quick:
        argv.append("--quick")
    if size:
        argv += ["--size", size]
    if only:
        argv += ["--only", only]
    if out is not None:
        argv += ["--out", str(Path(out).resolve())]
    if keep_data:
        argv.append("--keep-data")
    from zoolens.progress import is_quiet

    if is_quiet():
        argv.append("--quiet")
    code = subprocess.call(argv, cwd=root)
    if code != 0:
        raise ZoolensError(f"benchmark run failed (exit {code}); see the output above")
