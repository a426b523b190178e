"""The benchmark table of ``benchmarks/RESULTS.md``, written from the measurements only.

Every measured row is kept in ``results.json`` beside RESULTS.md: the row (``_common.row``'s
fields), when it was measured (UTC), the load average before and after the run, and which
run (command, size, machine, versions) measured it. A run — ``python -m benchmarks`` or a
single module's ``main`` such as ``python -m benchmarks.bench_analyze --size full`` —
replaces the rows it measured (same benchmark, case, zoolens side and baseline) and keeps every other row with its
own date, then rewrites the part of RESULTS.md between :data:`START` and :data:`END` (the
header, the table and the runs behind it); the prose around it is left as it is. So the
table always carries the last figure measured for each case, and says when.

A RESULTS.md without the markers (or none at all) gets the whole default page.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import math
import os
import platform
from pathlib import Path
from typing import Any

START = "<!-- benchmark table: written by benchmarks/_results.py from results.json -->"
END = "<!-- end of benchmark table -->"

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
    ("measured", "measured (UTC; load before → after)"),
]

ROWS_MEAN = """## What the rows mean

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
- **hub: analyze --pairs base**: one base and thousands of candidates, only the base's pairs
  (`benchmarks/bench_hub.py`).
"""


def now_utc() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def load_average() -> str:
    return ", ".join(f"{x:.1f}" for x in os.getloadavg())


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


def store_path(results_md: Path) -> Path:
    """results.json beside the RESULTS.md it feeds."""
    return Path(results_md).with_name("results.json")


def read_store(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {"runs": {}, "rows": []}
    data = json.loads(path.read_text(encoding="utf-8"))
    return {"runs": dict(data.get("runs", {})), "rows": list(data.get("rows", []))}


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return _jsonable(value.item())  # numpy scalars
    return value


def row_key(r: dict) -> tuple[str, ...]:
    """What a row measures: benchmark, case, zoolens side and baseline (one case can have
    several rows, e.g. the kernel and the end-to-end time, or two baselines)."""
    return tuple(str(r.get(k) or "") for k in ("benchmark", "case", "ours", "baseline"))


def merge(store: dict[str, Any], rows: list[dict], run: dict[str, Any]) -> dict[str, Any]:
    """``store`` with ``rows`` (measured by ``run``) replacing the rows that measure the same
    thing (:func:`row_key`); every other row kept, in its place; new ones appended."""
    run_id = run["measured"]
    store["runs"][run_id] = run
    fresh = {
        row_key(r): {
            **{k: _jsonable(v) for k, v in r.items()},
            "measured": run_id,
            "load": r.get("load") or f"{run['load_start']} → {run['load_end']}",
        }
        for r in rows
    }
    kept = []
    for old in store["rows"]:
        key = row_key(old)
        kept.append(fresh.pop(key) if key in fresh else old)
    store["rows"] = kept + list(fresh.values())
    used = {r["measured"] for r in store["rows"]}
    store["runs"] = {k: v for k, v in store["runs"].items() if k in used}
    return store


def _fmt_s(x: Any) -> str:
    if x is None:
        return ""
    try:
        x = float(x)
    except (TypeError, ValueError):
        return str(x)
    if x != x:
        return "n/a"
    return f"{x:.3g}" if x < 100 else f"{x:,.0f}"


def _cell(key: str, r: dict) -> str:
    v = r.get(key)
    if key in ("ours_s", "baseline_s"):
        return _fmt_s(v)
    if key == "speedup":
        return "" if v is None else f"{v:,.1f}x"
    if key in ("peak_mib", "baseline_peak_mib"):
        return "" if v is None else f"{v:,.0f}"
    if key == "met":
        return {True: "yes", False: "**NO**", None: ""}.get(v, str(v))
    if key == "measured":
        return "" if v is None else f"{v}; {r.get('load') or 'load not recorded'}"
    return "" if v is None else str(v).replace("|", "/").replace("\n", " ")


def markdown_table(rows: list[dict]) -> str:
    lines = ["| " + " | ".join(h for _, h in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in rows:
        lines.append("| " + " | ".join(_cell(k, r) for k, _ in COLUMNS) + " |")
    return "\n".join(lines)


def table_block(store: dict[str, Any]) -> str:
    """The generated part of RESULTS.md: header, table, and the runs its rows come from."""
    runs = sorted(store["runs"].items())
    lines = [
        START,
        "",
        "The table below is regenerated by every benchmark run (`python -m benchmarks`, or one",
        "module's `main`, e.g. `python -m benchmarks.bench_analyze --size full`) from",
        "`benchmarks/results.json`: a run replaces the rows it measured and keeps every other",
        "row as last measured, with its date and the machine's load average (1, 5, 15 min)",
        "before and after its run. zoolens and each baseline run in the same process, one after",
        "the other, so the ratio is the number to read: the machine is shared, and absolute",
        "times move with the load.",
        "",
        'Peak memory: "peak MiB" is the peak resident set size above the level before the call',
        '(RSS sampled every 5 ms), except rows that say "fresh process", which report that',
        "process's own peak RSS (VmHWM). Baselines that cannot run at full size are timed on a",
        "subset (the row says which) and scaled linearly.",
        "",
        markdown_table(store["rows"]),
        "",
        "Runs behind the rows:",
        "",
    ]
    for run_id, run in runs:
        lines.append(
            f"- {run_id}: `{run.get('command', '?')}` ({run.get('size', '?')} size"
            + (f", {run['runs']} timed runs per measurement" if run.get("runs") else "")
            + (f", took {run['elapsed_min']:.1f} min" if run.get("elapsed_min") else "")
            + f"); load {run.get('load_start', '?')} → {run.get('load_end', '?')}; "
            + f"{run.get('machine', 'machine not recorded')}"
            + (f"; {run['versions']}" if run.get("versions") else "")
            + (f"; {run['env']}" if run.get("env") else "")
        )
    lines += ["", END]
    return "\n".join(lines)


def write_page(results_md: Path, store: dict[str, Any]) -> None:
    """Rewrite the generated block of ``results_md`` (atomically), keeping the prose."""
    path = Path(results_md)
    block = table_block(store)
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if START in text and END in text:
        head, rest = text.split(START, 1)
        _, tail = rest.split(END, 1)
        page = head + block + tail
    else:
        page = f"# zoolens benchmarks\n\n{block}\n\n{ROWS_MEAN}"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, path)


def record(
    results_md: Path,
    rows: list[dict],
    *,
    command: str,
    size: str,
    load_start: str,
    machine: dict[str, str] | None = None,
    runs: int | None = None,
    elapsed_s: float | None = None,
) -> Path:
    """Merge ``rows`` (just measured) into results.json beside ``results_md`` and rewrite
    its table; returns the store's path."""
    info = machine or {}
    run = {
        "measured": now_utc(),
        "command": command,
        "size": size,
        "runs": runs,
        "elapsed_min": None if elapsed_s is None else round(elapsed_s / 60, 1),
        "load_start": load_start,
        "load_end": load_average(),
        "machine": (
            f"{info['cpu']}, {info['cores']} cores, {info['ram']} RAM; {info['os']}; "
            f"Python {info['python']}"
            if info
            else None
        ),
        "versions": info.get("versions"),
        "env": info.get("env"),
    }
    store_file = store_path(results_md)
    store = merge(read_store(store_file), rows, run)
    tmp = store_file.with_name(store_file.name + ".tmp")
    tmp.write_text(json.dumps(store, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, store_file)
    write_page(results_md, store)
    return store_file


def module_main(
    module: str, doc: str, sizes: Any, run: Any, *, extra: Any = None, repo: Path | None = None
) -> int:
    """The ``main`` of a single benchmark module (``python -m benchmarks.<module> --size S``):
    run it, print its rows, and record them (``--out``, default benchmarks/RESULTS.md;
    ``--no-write`` prints only). ``run(args)`` returns the rows; ``extra(parser)`` adds the
    module's own options."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--size", choices=sorted(sizes), default="quick")
    if extra is not None:
        extra(parser)
    parser.add_argument(
        "--out",
        type=Path,
        default=(repo or Path(__file__).resolve().parents[1]) / "benchmarks" / "RESULTS.md",
        help="the RESULTS.md whose table gets the rows (benchmarks/_results.py)",
    )
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    load_start = load_average()
    print(f"load average {load_start}", file=sys.stderr, flush=True)
    rows = run(args)
    for r in rows:
        print(
            f"| {r['benchmark']} | {r['case']} | {_fmt_s(r['ours_s'])} s | "
            f"{_cell('peak_mib', r)} MiB | {r['target']} | {_cell('met', r)} | {r['check']} | "
            f"{r['notes']} |"
        )
    print(f"load average at the end {load_average()}", file=sys.stderr, flush=True)
    if not args.no_write:
        record(
            args.out,
            rows,
            command=" ".join([f"python -m benchmarks.{module}", *sys.argv[1:]]),
            size=args.size,
            load_start=load_start,
            machine=machine(),
        )
        print(f"rows recorded in {args.out}", file=sys.stderr, flush=True)
    return 0
