"""Run the benchmark suite: ``python -m benchmarks [--quick] [--only NAME[,NAME]]``.

Each benchmark times zoolens and its baseline in this same process (medians over
``--runs``, default 3), with peak memory, prints one table and writes it with the machine
and package versions to ``benchmarks/RESULTS.md``. Sizes: ``full`` (the paper's ImageNet
shape: 82 models x 50,000 examples x 1,000 classes; generates an ~8 GB float16 zoo under
benchmarks/_data, deleted afterwards unless --keep-data), ``--quick`` (minutes) and
``--size tiny`` (seconds; the CI smoke test). Never part of CI's pass/fail: the table says
honestly which targets are met.

Example:  python -m benchmarks --quick --only agreement,temperature
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import importlib.util
import os
import platform
import sys
import time
import traceback
from pathlib import Path

from benchmarks import _common
from benchmarks._common import DATA, REPO, SIZES, remove_zoo, row, say

# Order matters: analyze runs last (it needs the big zoo and is the longest).
BENCHMARKS = ["zoo", "agreement", "temperature", "ensemble", "greedy", "probe", "analyze"]


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


def _fmt_s(x) -> str:
    if x is None:
        return ""
    try:
        x = float(x)
    except (TypeError, ValueError):
        return str(x)
    if x != x:
        return "n/a"
    return f"{x:.3g}" if x < 100 else f"{x:,.0f}"


def _fmt_met(m) -> str:
    return {True: "yes", False: "**NO**", None: ""}.get(m, str(m))


COLUMNS = [
    ("benchmark", "benchmark"),
    ("case", "case"),
    ("ours", "zoolens"),
    ("ours_s", "zoolens s"),
    ("baseline", "baseline"),
    ("baseline_s", "baseline s"),
    ("speedup", "speedup"),
    ("peak_mib", "peak MiB"),
    ("baseline_peak_mib", "baseline peak MiB"),
    ("target", "target"),
    ("met", "met"),
    ("check", "check"),
    ("notes", "notes"),
]


def _cell(key: str, r: dict) -> str:
    v = r.get(key)
    if key in ("ours_s", "baseline_s"):
        return _fmt_s(v)
    if key == "speedup":
        return "" if v is None else f"{v:,.1f}x"
    if key in ("peak_mib", "baseline_peak_mib"):
        return "" if v is None else f"{v:,.0f}"
    if key == "met":
        return _fmt_met(v)
    return "" if v is None else str(v).replace("|", "/").replace("\n", " ")


def markdown_table(rows: list[dict]) -> str:
    lines = ["| " + " | ".join(h for _, h in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in rows:
        lines.append("| " + " | ".join(_cell(k, r) for k, _ in COLUMNS) + " |")
    return "\n".join(lines)


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


def machine() -> dict[str, str]:
    import psutil

    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for mod in ("zoolens", "numpy", "scipy", "torch", "sklearn", "netcal", "psutil"):
        try:
            versions[mod] = importlib.import_module(mod).__version__
        except Exception:  # noqa: BLE001 - report what is there
            versions[mod] = "not installed"
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "ram": f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
        "os": platform.platform(),
        "python": platform.python_version(),
        "versions": ", ".join(f"{k} {v}" for k, v in versions.items()),
        "load": ", ".join(f"{x:.1f}" for x in os.getloadavg()),
        "env": ", ".join(f"{k}={os.environ[k]}" for k in ("OPENBLAS_CORETYPE",) if k in os.environ)
        or "OPENBLAS_CORETYPE unset",
    }


def write_results(
    path: Path,
    rows: list[dict],
    info: dict,
    size: str,
    runs: int,
    elapsed: float,
    load_end: str,
    argv: list[str],
) -> None:
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    text = f"""# zoolens benchmarks

Written by `python -m benchmarks {" ".join(argv)}` on {now} ({size} size, median of
{runs} runs per timing unless a row says otherwise; suite took {elapsed / 60:.1f} min).
zoolens and each baseline run in the same process, one after the other, so the ratio is
the number to read: the machine is shared (load average {info["load"]} at the start,
{load_end} at the end), and absolute times move with the load.

- Machine: {info["cpu"]}, {info["cores"]} cores, {info["ram"]} RAM; {info["os"]}
- Python {info["python"]}; {info["versions"]}
- Environment: {info["env"]}

Peak memory: "peak MiB" is the peak resident set size above the level before the call
(RSS sampled every 5 ms), except rows that say "fresh process", which report that
process's own peak RSS (VmHWM, the high-water mark of its resident set). Baselines that cannot run at full size are timed on a
subset (the row says which) and scaled linearly.

{markdown_table(rows)}

## What the rows mean

- **agreement**: `measure.agreement.pairwise_agreement` (all pairs from R Rᵀ) against a
  Python loop over pairs calling `sklearn.metrics.confusion_matrix` and `cohen_kappa_score`.
- **temperature**: `measure.calibration.fit_temperature` (safeguarded Newton on log T, one
  fused pass per step) against netcal's `TemperatureScaling` and a torch L-BFGS fit.
- **generator**: realism of the synthetic ImageNet-shaped zoo (`benchmarks/generator.py`):
  accuracies, temperatures fitted by `fit_temperature` on the calibration split, pair EI.
- **pair ensembles**: the exact top-k pruned kernel (`measure.topk`) against the
  straightforward per-pair numpy computation on full probabilities, predictions compared;
  plus the end-to-end time from the float16 zoo and the full-row reference kernel.
- **pair ensembles, streamed**: 30 models streamed in chunks in a fresh process (peak RSS).
- **greedy selection**: `measure.ensemble.greedy_forward_selection` against a plain numpy
  Caruana loop (running sum, candidate by candidate), picks compared.
- **probe**: from `benchmarks/bench_probe.py` (linear probes; its own baselines).
- **zoolens analyze --base**: the whole command in a fresh process; "light install": the
  same with torch unimportable (numpy's kernels, as after `pip install zoolens`), its time
  against the row above and its tables compared to 6 significant digits.
- **zoo**: opening a zoo of 100 models, and refusing a CSV row too wide to parse
  (`benchmarks/bench_zoo.py`; the tests check the behaviour, never the time).
"""
    path.write_text(text)


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
    if size == "full" and uses_zoo and not args.keep_data:  # the ~8 GB zoo: free the disk
        from benchmarks.bench_ensemble import SIZES as ZS
        from benchmarks.bench_ensemble import zoo_name

        remove_zoo(zoo_name(ZS["full"]))
    print()
    print_table(rows)
    if not args.no_write:
        load_end = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        write_results(args.out, rows, info, size, args.runs, elapsed, load_end, argv)
        say(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
