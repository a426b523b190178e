"""The whole ``zoolens analyze --base`` on an ImageNet-shaped float16 zoo, in a fresh process.

Everything the paper's Sections 3-4.5 need, in one command: temperatures, all-pairs
agreement, all-pair ensembles (exact top-k kernel), specialization, greedy selection,
bootstrap intervals. Measured: wall time of the command, the process's peak RSS, the stage
timings summary.json records (their sum against the analysis' own elapsed time) and the
per-chunk time of the evaluation pass, from which a cluster's time is extrapolated:

    evaluation on W workers ≈ chunks × median chunk time / W
    total ≈ inputs + temperatures / W + evaluation on W workers + (the other stages of
            ``zoolens.study.stages.STAGES``, on the driver)

``--runs N`` makes N whole analyses for the first row, which then reports the median run
(wall, stages) and the largest peak, and checks that every run's tables equal the first's:
this machine's speed moves ~10 % from one run to the next, and up to ~30 % from hour to
hour, so the notes also give the machine's speed just before and after the runs
(``_common.exp_probe``: float64 exp with every core busy, the analysis' main kernel).

A second row runs the same command with torch unimportable (the light install,
``pip install zoolens``: numpy's kernels) and compares its time (target: within 1.2x) and its
tables (6 significant digits) with the first (``--no-light`` skips it).

With ``--ray`` rows (by default at the sizes full and huge; ``--no-ray`` skips them) the
same command runs with ``--ray`` on a local Ray cluster and its tables are compared byte for
byte with the local run's.

Sizes: tiny, quick, full (82 x 50,000 x 1,000; targets (issue 28): <= 45 s, peak RSS < 4
GiB, stage timings within 5 % of the elapsed time) and huge (1,000 x 10,000 x 1,000, every
pair, the default 1,000 bootstrap resamples; targets: <= 10 minutes, peak RSS < 8 GiB: the
pairs' resampled sums kept for the headline are exact integers, 1 GB per statistic as
uint16 at 499,500 pairs, ``study.pairblocks``).

Example:  python -m benchmarks.bench_analyze --size full --runs 3 --no-ray --no-light
"""

from __future__ import annotations

import json
import os
import shutil

from benchmarks._common import DATA, NO_TORCH, ensure_zoo, exp_probe, python_child, row, say
from benchmarks._results import module_main
from benchmarks.bench_ensemble import SIZES as ZOO_SIZES
from benchmarks.bench_ensemble import spec_for, zoo_name
from zoolens.study.stages import STAGES

HUGE = dict(models=1000, examples=10_000, classes=1_000)
SIZES = {
    "full": ZOO_SIZES["full"],
    "quick": ZOO_SIZES["quick"],
    "tiny": ZOO_SIZES["tiny"],
    "huge": HUGE,
}
EXTRA: dict[str, list[str]] = {}


def _analyze(path, out, extra: list[str], light: bool = False) -> dict:
    argv = ["analyze", str(path), "--base", "synthetic-000", "--out", str(out), *extra]
    say(f"analyze{' (torch unimportable)' if light else ''}: zoolens {' '.join(argv)}")
    code = (NO_TORCH if light else "") + (
        "from typer.testing import CliRunner\n"
        "from zoolens.cli import app\n"
        f"r = CliRunner().invoke(app, ['--quiet'] + {argv!r})\n"
        "result = {'exit_code': r.exit_code, 'output': r.output[-2000:],"
        " 'exception': repr(r.exception) if r.exception else None}\n"
    )
    child = python_child(code)
    res = child["result"] or {}
    child["ok"] = child["rc"] == 0 and res.get("exit_code") == 0
    child["summary"] = (
        json.loads((out / "summary.json").read_text())
        if child["ok"] and (out / "summary.json").exists()
        else {}
    )
    if not child["ok"]:
        child["error"] = (
            f"FAILED rc={child['rc']} {res.get('exception') or ''} "
            f"{(res.get('output') or child['output'])[-300:]}"
        )
    return child


def _detail(child: dict) -> str:
    s = child["summary"]
    if not child["ok"]:
        return child["error"]
    timings = s.get("timings_s", {})
    total = sum(timings.values())
    chunks = s.get("evaluation_chunks", {})
    # The stages in pipeline order, by the one list (study.stages.STAGES).
    ordered = [(k, timings[k]) for k in STAGES if k in timings]
    ordered += [(f"{k} (not a stage of STAGES)", v) for k, v in timings.items() if k not in STAGES]
    parts = [
        f"stages {', '.join(f'{k} {v:.1f}' for k, v in ordered)} s; sum "
        f"{total:.1f} s = {100 * total / s['elapsed_s']:.1f} % of the analysis' "
        f"{s['elapsed_s']:.1f} s (process wall {child['wall_s']:.1f} s, the rest is "
        "interpreter start and imports)"
    ]
    if chunks:
        parts.append(
            f"evaluation: {chunks['chunks']} chunks of {chunks['examples_per_chunk']}"
            f" examples, median {chunks['median_s']:.2f} s per chunk"
        )
    blocks = s.get("pair_blocks", {})
    if blocks:
        parts.append(
            f"pairs' bootstrap: {blocks['blocks']} blocks of {blocks['pairs_per_block']} pairs,"
            f" median {blocks['median_s']:.2f} s per block"
        )
    if "topk_fallback_rate" in s:
        parts.append(f"top-k full-row fallback {s['topk_fallback_rate']:.2e}")
    return "; ".join(parts)


def _light_row(path, out, extra: list[str], shape: str, local: dict, pairs: int = 3) -> dict:
    """The same command with torch unimportable (the light install: numpy's kernels in
    measure.fused and the temperature fit): within 1.2x of the torch install's time, tables
    equal to 6 significant digits (integers and text exactly). On a shared machine one run
    says little, so ``pairs`` runs of each alternate (light, torch, light, ...; the torch
    install's first run is ``local``) and the medians are compared: the analysis' own time
    (summary.json elapsed_s, without interpreter start and torch's import), the process's
    wall time and its CPU time (all threads)."""
    import statistics

    light_out = out.parent / f"{out.name}-light"
    again_out = out.parent / f"{out.name}-again"
    torch_runs, light_runs = [local], []
    differ = None
    for k in range(pairs):
        shutil.rmtree(light_out, ignore_errors=True)
        light_runs.append(_analyze(path, light_out, extra, light=True))
        if k == 0 and light_runs[0]["ok"] and local["ok"]:
            differ = _differing_cells(out, light_out)
        if k < pairs - 1:
            shutil.rmtree(again_out, ignore_errors=True)
            torch_runs.append(_analyze(path, again_out, extra))
    shutil.rmtree(light_out, ignore_errors=True)
    shutil.rmtree(again_out, ignore_errors=True)
    ok = all(r["ok"] for r in torch_runs + light_runs)

    def median(runs: list[dict], key: str) -> float:
        values = [r["summary"]["elapsed_s"] if key == "analysis" else r[key] for r in runs]
        return statistics.median(values) if ok else float("nan")

    ratios = {
        key: median(light_runs, key) / median(torch_runs, key)
        for key in ("analysis", "wall_s", "cpu_s")
    }
    return row(
        "zoolens analyze --base, light install",
        f"{shape}, fresh process, torch unimportable",
        ours=f"zoolens analyze on numpy kernels (no torch); median of {pairs} runs",
        ours_s=median(light_runs, "wall_s"),
        baseline=f"the same command with torch installed, median of {pairs} runs",
        baseline_s=median(torch_runs, "wall_s"),
        peak_mib=light_runs[0]["peak_mib"],
        target="analysis <= 1.2x the torch install's; tables equal to 6 significant digits",
        met=bool(ok and ratios["analysis"] <= 1.2 and differ == 0),
        check=(
            f"light / torch medians: analysis {ratios['analysis']:.2f}x "
            f"({median(light_runs, 'analysis'):.1f} s vs {median(torch_runs, 'analysis'):.1f} s), "
            f"process wall {ratios['wall_s']:.2f}x (torch's import included), CPU "
            f"{ratios['cpu_s']:.2f}x ({median(light_runs, 'cpu_s'):.1f} s vs "
            f"{median(torch_runs, 'cpu_s'):.1f} s); cells differing beyond 6 significant "
            f"digits: {differ}; first light run: " + _detail(light_runs[0])
        ),
        notes=f"{pairs} runs each, alternating",
    )


def _differing_cells(a_dir, b_dir) -> int:
    """Cells of the CSV tables of two analyze folders that differ: text and integers at all,
    other numbers beyond 6 significant digits (relative 5e-6)."""
    import math

    import pandas as pd

    count = 0
    for table in sorted(a_dir.glob("*.csv")):
        a = pd.read_csv(table, dtype=str, keep_default_na=False)
        b = pd.read_csv(b_dir / table.name, dtype=str, keep_default_na=False)
        if a.shape != b.shape:
            return -1
        for x, y in zip(a.to_numpy().ravel(), b.to_numpy().ravel()):
            if x == y:
                continue
            try:
                fx, fy = float(x), float(y)
            except ValueError:
                count += 1
                continue
            if "." not in x + y or not math.isclose(fx, fy, rel_tol=5e-6, abs_tol=1e-9):
                count += 1
    return count


def _warm_page_cache(path) -> str:
    """Read the zoo's files once before the timed run when they fit in half the free
    memory, so the row measures the analysis, not the disk (a zoo another benchmark pushed
    out of the page cache took 10 s longer in the inputs stage alone); says which."""
    import psutil

    files = [f for f in sorted(path.rglob("*")) if f.is_file()]
    size = sum(f.stat().st_size for f in files)
    if size > psutil.virtual_memory().available // 2:
        return f"zoo ({size / 2**30:.1f} GiB) not pre-read: larger than half the free memory"
    for f in files:
        with open(f, "rb", buffering=0) as handle:
            while handle.read(64 * 2**20):
                pass
    return f"zoo files ({size / 2**30:.1f} GiB) read once before (page cache warm)"


def _speed_note(before: float | None, after: float | None) -> str:
    """The machine's speed around the runs (``_common.exp_probe``), for the notes."""
    if before is None or after is None:
        return ""
    return (
        f"; machine speed (float64 exp, every core busy) {before:.2f} ns an element and "
        f"thread before the runs, {after:.2f} after"
    )


def run(
    size: str = "quick", runs: int = 1, ray: bool | None = None, light: bool = True
) -> list[dict]:
    zcfg = SIZES[size]
    path = ensure_zoo(zoo_name(zcfg), spec_for(zcfg))
    extra = EXTRA.get(size, [])
    out = DATA / f"analyze-{zoo_name(zcfg)}"
    shutil.rmtree(out, ignore_errors=True)
    warm = _warm_page_cache(path)
    speed_before = exp_probe()
    local = _analyze(path, out, extra)
    # More runs (--runs): the row is the median run's (a busy hour moves one run by ~10 %);
    # every run's tables must equal the first's.
    runs_made, same_tables = [local], True
    for _ in range(max(1, runs) - 1):
        again = DATA / f"analyze-again-{zoo_name(zcfg)}"
        shutil.rmtree(again, ignore_errors=True)
        runs_made.append(_analyze(path, again, extra))
        same_tables &= runs_made[-1]["ok"] and all(
            (again / f.name).read_bytes() == f.read_bytes() for f in sorted(out.glob("*.csv"))
        )
        shutil.rmtree(again, ignore_errors=True)
    speed = _speed_note(speed_before, exp_probe())
    median_run = (
        sorted(runs_made, key=lambda r: r["wall_s"])[len(runs_made) // 2]
        if all(r["ok"] for r in runs_made)
        else local
    )
    shape = f"{zcfg['models']:,} x {zcfg['examples']:,} x {zcfg['classes']:,} float16"
    wall = median_run["wall_s"]
    peaks = [r["peak_mib"] for r in runs_made if r["peak_mib"] is not None]
    peak = max(peaks) if len(peaks) == len(runs_made) else None
    s = median_run["summary"]
    within = bool(s) and abs(sum(s["timings_s"].values()) - s["elapsed_s"]) <= 0.05 * s["elapsed_s"]
    limit_mib = 8192 if size == "huge" else 4096
    met = (
        all(r["ok"] for r in runs_made)
        and same_tables
        and peak is not None
        and peak < limit_mib
        and within
        and (size != "full" or wall <= 45)
        and (size != "huge" or wall <= 600)
    )
    threads = os.environ.get("OMP_NUM_THREADS") or str(len(os.sched_getaffinity(0)))
    rows = [
        row(
            "zoolens analyze --base",
            f"{shape}, fresh process",
            ours="zoolens analyze "
            f"(CLI, {' '.join(extra) or 'defaults: 1000 bootstrap resamples'}, 25 greedy "
            f"steps; {threads} threads)",
            ours_s=wall,
            peak_mib=peak,
            target={
                "full": "<= 45 s, peak RSS < 4 GiB, stages within 5 % (issue 28)",
                "huge": "<= 10 min, peak RSS < 8 GiB, stages within 5 % (issue 28)",
            }.get(size, f"peak RSS < {limit_mib // 1024} GiB, stages within 5 %"),
            met=met,
            check=_detail(median_run),
            notes=(
                "1 run (a whole analysis); "
                if len(runs_made) == 1
                else f"median of {len(runs_made)} runs (process walls "
                + ", ".join(f"{r['wall_s']:.1f}" for r in runs_made)
                + f" s; peak the largest; tables identical across runs: {same_tables}); "
            )
            + warm
            + speed,
        )
    ]
    if light:
        rows.append(_light_row(path, out, extra, shape, local, pairs=max(runs, 3)))
    if ray if ray is not None else size in ("full", "huge"):
        ray_out = DATA / f"analyze-ray-{zoo_name(zcfg)}"
        shutil.rmtree(ray_out, ignore_errors=True)
        remote = _analyze(path, ray_out, extra + ["--ray"])
        same = (
            remote["ok"]
            and local["ok"]
            and all(
                (ray_out / f.name).exists() and (ray_out / f.name).read_bytes() == f.read_bytes()
                for f in sorted(out.glob("*.csv"))
            )
        )
        rows.append(
            row(
                "zoolens analyze --base --ray",
                f"{shape}, local Ray cluster ({len(os.sched_getaffinity(0))} CPUs), fresh process",
                ours="zoolens analyze --ray (fits and evaluation chunks as Ray tasks)",
                ours_s=remote["wall_s"],
                peak_mib=remote["peak_mib"],
                target="tables identical to the local run",
                met=same,
                check=(f"every CSV byte-identical to the local run: {same}; " + _detail(remote)),
                notes="driver process peak (Ray workers are separate processes)",
            )
        )
        shutil.rmtree(ray_out, ignore_errors=True)
    return rows


def main() -> int:
    say(f"data under {DATA}")

    def options(parser) -> None:
        parser.add_argument("--ray", action="store_true", help="also run with --ray")
        parser.add_argument(
            "--no-ray",
            action="store_true",
            help="skip the --ray run (made by default at the full and huge sizes)",
        )
        parser.add_argument(
            "--no-light", action="store_true", help="skip the run with torch unimportable"
        )
        parser.add_argument(
            "--runs",
            type=int,
            default=1,
            help="whole analyses for the main row, which reports the median run (default 1)",
        )

    def ray_run(args) -> bool | None:
        return False if args.no_ray else (args.ray or None)

    return module_main(
        "bench_analyze",
        __doc__,
        SIZES,
        lambda args: run(args.size, args.runs, ray=ray_run(args), light=not args.no_light),
        extra=options,
    )


if __name__ == "__main__":
    raise SystemExit(main())
