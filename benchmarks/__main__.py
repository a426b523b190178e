"""Run the benchmark suite: ``python -m benchmarks [--quick] [--only NAME[,NAME]]``.

Each benchmark times zoolens and its baseline in this same process (medians over
``--runs``, default 3), with peak memory, prints one table, and records its rows with the
machine, package versions and load in ``benchmarks/results.json``, from which the table of
``benchmarks/RESULTS.md`` is regenerated (``benchmarks/_results.py``: rows not measured by
this run keep their last figure and date). Sizes: ``full`` (the paper's ImageNet
shape: 82 models x 50,000 examples x 1,000 classes; generates an ~8 GB float16 zoo under
benchmarks/_data, deleted afterwards unless --keep-data), ``--quick`` (minutes) and
``--size tiny`` (seconds; the CI smoke test). Never part of CI's pass/fail: the table says
honestly which targets are met.

Example:  python -m benchmarks --quick --only agreement,temperature
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
import time
import traceback
from pathlib import Path

from benchmarks import _common
from benchmarks._common import DATA, REPO, SIZES, remove_zoo, row, say
from benchmarks._results import _cell, machine, record

# Order matters: analyze runs after the others (it needs the big zoo), hub last (its own
# zoo of thousands of models).
BENCHMARKS = ["zoo", "agreement", "temperature", "ensemble", "greedy", "probe", "analyze", "hub"]


def _load(name: str):
    return importlib.import_module(f"benchmarks.bench_{name}")


def run_one(name: str, size: str, runs: int) -> list[dict]:
    module = _load(name)
    if name == "probe":  # bench_probe's contract: run(quick) -> rows (its own keys)
        # the runner's thread count (limit_threads put it in the environment for children)
        threads = int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1)
        rows = [_probe_row(r) for r in module.run(quick=size != "full", threads=threads)]
    elif name == "analyze":
        rows = module.run(size)
    else:
        rows = module.run(size, runs)
    return [_normalise(name, r) for r in rows]


def _probe_row(r: dict) -> dict:
    """Map bench_probe's keys (name, ours_s, baseline_s, ratio, peak_mem_mb, note)."""
    full = r.get("name", "").startswith("probe 50,000x2,048x1,000")
    acc = abs(r.get("accuracy_ours", 0.0) - r.get("accuracy_baseline", 0.0))
    return row(
        "probe",
        r.get("name", ""),
        ours="measure.probe (full-batch L-BFGS, product-free line search)",
        ours_s=r.get("ours_s"),
        baseline="sklearn LogisticRegression(lbfgs)",
        baseline_s=r.get("baseline_s"),
        peak_mib=r.get("peak_mem_mb"),
        target=">= 3x, same tol, acc within 0.3 pts" if full else "",
        met=(r["ratio"] >= 3.0 and acc <= 0.003) if full else None,
        check=r.get("note", ""),
        notes="separate processes; repeats as its note says (bench_probe)",
    )


def _normalise(name: str, r: dict) -> dict:
    base = row(
        r.get("benchmark", name),
        str(r.get("case", "")),
        ours=str(r.get("ours", "")),
        ours_s=r.get("ours_s", r.get("seconds", float("nan"))),
    )
    base.update(r)
    if base.get("speedup") is None and base.get("baseline_s") and base.get("ours_s"):
        base["speedup"] = base["baseline_s"] / base["ours_s"]
    return base


def print_table(rows: list[dict]) -> None:
    short = [
        ("benchmark", 24),
        ("case", 34),
        ("ours_s", 10),
        ("baseline_s", 10),
        ("speedup", 9),
        ("peak_mib", 9),
        ("met", 6),
        ("check", 60),
    ]
    print("  ".join(f"{k[:w]:<{w}}" for k, w in short))
    for r in rows:
        print("  ".join(f"{_cell(k, r)[:w]:<{w}}" for k, w in short))


def limit_threads(n: int):
    """Same thread count for everything: this process (threadpoolctl, torch) and children
    (environment variables, read when their numpy / torch start). Returns a function that
    restores the previous settings (the runner may be called in-process, e.g. by tests)."""
    from threadpoolctl import threadpool_limits

    saved_env = {
        v: os.environ.get(v) for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
    }
    for var in saved_env:
        os.environ[var] = str(n)
    try:
        import torch

        saved_torch = torch.get_num_threads()  # before threadpoolctl changes OpenMP's count
    except ImportError:
        torch = saved_torch = None
    limits = threadpool_limits(n)
    if torch is not None:
        torch.set_num_threads(n)

    def restore() -> None:
        limits.restore_original_limits()
        if torch is not None:
            torch.set_num_threads(saved_torch)
        for var, value in saved_env.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value

    return restore


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--quick", action="store_true", help="quick sizes (minutes)")
    p.add_argument("--size", choices=SIZES, default=None, help="full, quick or tiny")
    p.add_argument("--only", default="", help=f"comma list of: {', '.join(BENCHMARKS)}")
    p.add_argument("--runs", type=int, default=3, help="timed runs per measurement (>= 1)")
    p.add_argument(
        "--out",
        type=Path,
        default=REPO / "benchmarks" / "RESULTS.md",
        help="where to write the results (markdown)",
    )
    p.add_argument("--no-write", action="store_true", help="print only")
    p.add_argument("--quiet", action="store_true", help="no progress lines (the table only)")
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="BLAS/OpenMP/torch threads for zoolens and baselines alike (default 1: "
        "on a shared 2-core machine two busy-waiting BLAS threads can make a "
        "matrix product 10-80x slower)",
    )
    p.add_argument(
        "--keep-data",
        action="store_true",
        help="keep generated full-size zoos under benchmarks/_data",
    )
    args = p.parse_args(argv)
    size = args.size or ("quick" if args.quick else "full")
    names = [n.strip() for n in args.only.split(",") if n.strip()] or BENCHMARKS
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        p.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    if args.runs < 1:
        p.error("--runs must be >= 1")

    restore = limit_threads(args.threads)
    _common.QUIET = args.quiet
    try:
        return _run(args, argv, size, names)
    finally:
        restore()
        _common.QUIET = False


def _run(args, argv: list[str], size: str, names: list[str]) -> int:
    info = machine()
    info["env"] = f"{args.threads} BLAS/OpenMP/torch thread(s); " + info["env"]
    say(f"benchmarks ({size}): {', '.join(names)}; data under {DATA}")
    t0 = time.perf_counter()
    rows: list[dict] = []
    for name in names:
        say(f"--- {name}")
        try:
            if name == "probe" and importlib.util.find_spec("benchmarks.bench_probe") is None:
                rows.append(
                    row(
                        "probe",
                        "-",
                        ours="benchmarks/bench_probe.py",
                        ours_s=None,
                        check="not available (module missing)",
                    )
                )
                continue
            got = run_one(name, size, args.runs)
        except Exception as exc:  # noqa: BLE001 - one failure must not hide the others
            traceback.print_exc()
            got = [
                row(
                    name,
                    "-",
                    ours="",
                    ours_s=None,
                    met=False,
                    check=f"FAILED: {type(exc).__name__}: {exc}"[:300],
                )
            ]
        rows.extend(got)
        print_table(got)
    elapsed = time.perf_counter() - t0
    uses_zoo = {"ensemble", "greedy", "analyze"} & set(names)
    if size == "full" and not args.keep_data:  # the ~8 GB and ~19 GB zoos: free the disk
        from benchmarks.bench_ensemble import SIZES as ZS
        from benchmarks.bench_ensemble import zoo_name
        from benchmarks.bench_hub import SIZES as HUB

        if uses_zoo:
            remove_zoo(zoo_name(ZS["full"]))
        if "hub" in names:
            remove_zoo(zoo_name(HUB["full"]))
    print()
    print_table(rows)
    if not args.no_write:
        store = record(
            args.out,
            rows,
            command=" ".join(["python -m benchmarks", *argv]),
            size=size,
            load_start=info["load"],
            machine=info,
            runs=args.runs,
            elapsed_s=elapsed,
        )
        say(f"wrote {args.out} (table) and {store} (every measured row)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
