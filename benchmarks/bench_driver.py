"""The driver's share of ``analyze --ray`` at 1,000 models (issue 28, item 4): the two
driver stages that became Ray tasks, each against the same work on the driver, on a local
Ray cluster of this machine's CPUs, with the extrapolation to 32 one-CPU workers.

- predictions: reading every model's top classes (``study.inputs.load_inputs``), on the
  driver's model threads against ``ray=True`` (``predictions_task``, ``PREDICTION_GROUP``
  models a task); the predictions must be identical.
- pairs.csv: the CSV text of a pairs table of 499,500 rows (1,000 models, every pair; the
  contract's 39 columns, half the float columns fractions k/10,000 as the accuracies are,
  half full-precision as the intervals of ratios are) by pandas' ``to_csv`` on the driver,
  against ``study.tables.write_csv`` with Ray blocks (``csv_rows``, ``CSV_BLOCK_ROWS`` rows
  a task); the bytes must be identical.

32 workers are extrapolated, not measured (this machine has 2 CPUs): a stage's time there
is its tasks' seconds as each took on its worker here (reads included: the extrapolation
assumes the shared filesystem serves 32 workers as this disk serves 2), dealt to 32 workers
in order, plus the driver's own part (the local Ray run's wall less its tasks' seconds over
this machine's CPUs).

Sizes: full (the 1,000 x 10,000 x 1,000 zoo of ``bench_analyze --size huge``, generated if
missing, 20 GB; 499,500 rows), quick (1,000 x 2,000 x 20 zoo; 499,500 rows), tiny (40 x 1,000
x 20; 2,000 rows, blocks of 500).

Example:  python -m benchmarks.bench_driver --size quick
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks._common import ensure_zoo, row, say
from benchmarks._results import module_main
from benchmarks.bench_ensemble import spec_for, zoo_name

SIZES = {
    "full": dict(models=1000, examples=10_000, classes=1_000, rows=499_500, block=None),
    "quick": dict(models=1000, examples=2_000, classes=20, rows=499_500, block=None),
    "tiny": dict(models=40, examples=1_000, classes=20, rows=2_000, block=500),
}
WORKERS = 32


def _pairs_frame(rows: int):
    """A pairs-shaped table: the contract's columns, names and categories as text."""
    import pandas as pd

    from zoolens.study.tables import TABLE_COLUMNS

    rng = np.random.default_rng(0)
    names = np.array([f"synthetic-{i:03d}" for i in range(1000)], dtype=object)
    columns = {}
    for i, column in enumerate(TABLE_COLUMNS["pairs"]):
        if column in ("model_a", "model_b"):
            columns[column] = names[rng.integers(0, len(names), rows)]
        elif column == "category":
            columns[column] = np.array(["Arch", "HParam", "Reinit"], object)[
                rng.integers(0, 3, rows)
            ]
        elif i % 2:
            columns[column] = rng.integers(0, 10_001, rows) / 10_000
        else:
            columns[column] = rng.random(rows)
    return pd.DataFrame(columns)


def timed_predictions_task(names: tuple[str, ...], zoo_path: str) -> tuple[np.ndarray, float]:
    """``study.inputs.predictions_task`` and its seconds on the worker (reads included)."""
    from zoolens.study.inputs import predictions_task

    t0 = time.perf_counter()
    result = predictions_task(names, zoo_path)
    return result, time.perf_counter() - t0


def timed_csv_rows(frame, start: int, stop: int) -> tuple[str, float]:
    """``study.tables.csv_rows`` and its seconds on the worker."""
    from zoolens.study.tables import csv_rows

    t0 = time.perf_counter()
    text = csv_rows(frame, start, stop)
    return text, time.perf_counter() - t0


def _extrapolated(task_seconds: list[float], ray_wall: float, cpus: int) -> tuple[float, float]:
    """(the driver's own seconds, the stage on WORKERS one-CPU workers): the tasks' seconds
    as measured on this cluster's workers, dealt to WORKERS in submission order (each
    worker takes the next task when it is free), plus what the driver did meanwhile."""
    driver = max(0.0, ray_wall - sum(task_seconds) / cpus)
    free = [0.0] * WORKERS
    for seconds in task_seconds:
        free[free.index(min(free))] += seconds
    return driver, driver + max(free)


def _predictions_row(cfg: dict, cpus: int) -> dict:
    from zoolens.study import inputs as inputs_module
    from zoolens.zoo.store import Zoo

    path = ensure_zoo(zoo_name(cfg), spec_for(cfg))
    zoo = Zoo.open(path)
    names = list(zoo.models)
    task_seconds: list[float] = []
    real_map = inputs_module.map_tasks_ray

    def timed_map(task, items, *args, **kwargs):
        # The same tasks, each returning its seconds on the worker too.
        pairs = real_map(timed_predictions_task, items, *args, **kwargs)
        task_seconds.extend(seconds for _, seconds in pairs)
        return [result for result, _ in pairs]

    t0 = time.perf_counter()
    inputs_module.map_tasks_ray = timed_map
    try:
        ray_inputs = inputs_module.load_inputs(zoo, ray=True)
    finally:
        inputs_module.map_tasks_ray = real_map
    ray_wall = time.perf_counter() - t0
    t0 = time.perf_counter()
    local = inputs_module.load_inputs(zoo)
    local_wall = time.perf_counter() - t0
    same = np.array_equal(ray_inputs.predictions, local.predictions)
    group = inputs_module.PREDICTION_GROUP
    tasks = -(-len(names) // group)
    seconds = task_seconds
    driver, on_workers = _extrapolated(seconds, ray_wall, cpus)
    shape = f"{cfg['models']:,} x {cfg['examples']:,} x {cfg['classes']:,} float16"
    return row(
        "analyze --ray: driver stages",
        f"predictions of {shape}, local Ray cluster ({cpus} CPUs)",
        ours=f"load_inputs(ray=True): {tasks} tasks of {group} models",
        ours_s=ray_wall,
        baseline="load_inputs on the driver's model threads",
        baseline_s=local_wall,
        target=f"identical predictions; extrapolated to {WORKERS} workers (issue 28, item 4)",
        met=same,
        check=(
            f"identical predictions: {'yes' if same else 'NO'}; a task "
            f"{np.median(seconds):.2f} s on its worker (median of {len(seconds)}; "
            f"{sum(seconds):.1f} s in all); the driver's own part {driver:.1f} s; "
            f"extrapolated on {WORKERS} workers: {on_workers:.1f} s"
        ),
        notes="the Ray run first, then the driver's: the zoo read from disk where it outgrows the page cache",
    )


def _csv_row(cfg: dict, cpus: int) -> dict:
    from zoolens.study import tables
    from zoolens.study.distributed import run_chunks_ray

    frame = _pairs_frame(cfg["rows"])
    block = cfg["block"] or tables.CSV_BLOCK_ROWS
    saved, tables.CSV_BLOCK_ROWS = tables.CSV_BLOCK_ROWS, block
    try:
        with tempfile.TemporaryDirectory(prefix="zoolens-bench-driver-") as tmp:
            whole, blocks = Path(tmp) / "whole.csv", Path(tmp) / "blocks.csv"
            t0 = time.perf_counter()
            tables.write_csv(whole, frame)
            local_wall = time.perf_counter() - t0
            t0 = time.perf_counter()
            seconds: list[float] = []

            def run_blocks(task, table, bounds):
                # csv_rows's blocks, each returning its seconds on the worker too.
                assert task is tables.csv_rows
                for text, took in run_chunks_ray(
                    timed_csv_rows, table, bounds, None, what="pairs.csv", unit="rows"
                ):
                    seconds.append(took)
                    yield text

            tables.write_csv(blocks, frame, run_blocks)
            ray_wall = time.perf_counter() - t0
            same = whole.read_bytes() == blocks.read_bytes()
            size_mb = whole.stat().st_size / 1e6
    finally:
        tables.CSV_BLOCK_ROWS = saved
    bounds = [(s, min(s + block, len(frame))) for s in range(0, len(frame), block)]
    driver, on_workers = _extrapolated(seconds, ray_wall, cpus)
    return row(
        "analyze --ray: driver stages",
        f"pairs.csv of {len(frame):,} rows x {frame.shape[1]} columns ({size_mb:.0f} MB), "
        f"local Ray cluster ({cpus} CPUs)",
        ours=f"write_csv with Ray blocks: {len(bounds)} tasks of {block:,} rows",
        ours_s=ray_wall,
        baseline="pandas to_csv of the whole table on the driver",
        baseline_s=local_wall,
        target=f"identical bytes; extrapolated to {WORKERS} workers (issue 28, item 4)",
        met=same,
        check=(
            f"identical bytes: {'yes' if same else 'NO'}; a block {np.median(seconds):.2f} s "
            f"on its worker (median of {len(seconds)}); the driver's own part {driver:.1f} s; "
            f"extrapolated on {WORKERS} workers: {on_workers:.1f} s"
        ),
        notes="the driver's part: putting the table, receiving the texts, writing the file",
    )


def run(size: str = "quick", runs: int = 1) -> list[dict]:
    import ray

    cfg = SIZES[size]
    cpus = len(os.sched_getaffinity(0))
    say(f"local Ray cluster of {cpus} CPUs")
    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
    try:
        return [_predictions_row(cfg, cpus), _csv_row(cfg, cpus)]
    finally:
        ray.shutdown()


def main() -> int:
    return module_main("bench_driver", __doc__, SIZES, lambda args: run(args.size))


if __name__ == "__main__":
    raise SystemExit(main())
