"""Smoke test of the benchmark suite at its tiny size: it runs, checks what it claims, and
writes a results table. (Speed targets are never part of CI's pass/fail.)"""

from __future__ import annotations

import re
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import REPO

sys.path.insert(0, str(REPO))

from benchmarks import __main__ as runner  # noqa: E402
from benchmarks import generator  # noqa: E402


def test_generator_hits_its_accuracy_and_temperature_targets():
    from zoolens.measure.calibration import fit_temperature

    spec = generator.resolve(
        generator.ZooSpec(num_models=3, num_examples=3000, num_classes=100, seed=3)
    )
    y = generator.labels(spec)
    for m, model in enumerate(spec.models):
        z = generator.model_logits(spec, m)
        assert z.shape == (3000, 100) and z.dtype == np.float32
        assert abs((z.argmax(1) == y).mean() - model["target_accuracy"]) < 0.03
        assert 0.7 <= model["target_temperature"] <= 1.7
        t = fit_temperature(z[2000:], y[2000:]).temperature
        assert abs(t - model["target_temperature"]) < 0.1 * model["target_temperature"]
    # Rows of one model are reproducible piecewise (chunked generation).
    np.testing.assert_array_equal(
        generator.model_logits(spec, 1, slice(100, 2000)), generator.model_logits(spec, 1)[100:2000]
    )


def test_tiny_suite_runs_and_writes_results(tmp_path, monkeypatch):
    monkeypatch.setattr("benchmarks._common.DATA", tmp_path / "data")
    import os

    import torch

    out = tmp_path / "RESULTS.md"
    threads, env = torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS")
    assert (
        runner.main(
            [
                "--size",
                "tiny",
                "--runs",
                "1",
                "--out",
                str(out),
                "--only",
                "agreement,ensemble,greedy",
            ]
        )
        == 0
    )
    # The runner pins one thread while it runs, and gives the process its settings back.
    assert torch.get_num_threads() == threads and os.environ.get("OMP_NUM_THREADS") == env
    text = out.read_text()
    assert "| benchmark |" in text and "cores" in text and "numpy" in text
    for name in (
        "agreement",
        "pair ensembles",
        "pair ensembles, streamed",
        "greedy selection",
        "generator",
    ):
        assert f"| {name} |" in text
    # The correctness checks the table reports must hold even at the tiny size.
    assert "predictions identical on 3 pairs x 1,000: yes" in text
    assert "identical picks: yes" in text
    assert "FAILED" not in text


def test_unknown_benchmark_is_refused():
    with pytest.raises(SystemExit):
        runner.main(["--only", "nope", "--no-write"])


def test_cli_bench_help_and_bad_size():
    from zoolens.cli import app

    res = CliRunner().invoke(app, ["bench", "--help"])
    assert res.exit_code == 0 and "Example" in res.output
    res = CliRunner().invoke(app, ["bench", "--size", "huge"])
    assert res.exit_code != 0 and "choose full, quick or tiny" in res.output


def test_cuda_check_runs_and_prints_its_table(capsys, monkeypatch):
    """benchmarks/cuda_check.py at its smoke size: exit 0 and the markdown table (CPU rows
    here; the CUDA rows and their agreement checks need a GPU)."""
    from benchmarks import cuda_check

    monkeypatch.setattr(sys, "argv", ["cuda_check.py", "--small", "--threads", "1"])
    assert cuda_check.main() == 0
    out = capsys.readouterr().out
    assert "| device | step | seconds |" in out
    assert "fused pass 2 x 2,000 x 100 float16" in out and "linear probe" in out


def test_hub_benchmark_base_only_at_tiny_size(tmp_path, monkeypatch):
    """bench_hub at its tiny size: ``--pairs base`` runs in a fresh process, writes the
    base's M − 1 pairs and equals the ``--pairs all`` run (base rows and every other CSV)."""
    monkeypatch.setattr("benchmarks._common.DATA", tmp_path / "data")
    monkeypatch.setattr("benchmarks.bench_hub.DATA", tmp_path / "data")
    from benchmarks import bench_hub

    (hub,) = bench_hub.run("tiny")
    assert hub["met"] is True, hub["check"]
    assert "pairs: base, 40 pairs.csv rows" in hub["check"]
    assert "identical to the --pairs all run: yes" in hub["check"]
    assert "load average" in hub["notes"] and hub["peak_mib"] > 0


def test_results_table_keeps_unmeasured_rows_and_the_prose(tmp_path):
    """The table is regenerated from results.json: a run replaces the rows it measured (same
    benchmark and case), keeps the others with their own date, and leaves the prose around
    the generated block as it was."""
    from benchmarks import _results
    from benchmarks._common import row

    page = tmp_path / "RESULTS.md"
    first = [
        row("analyze", "full", ours="x", ours_s=318.0),
        row("greedy", "small", ours="y", ours_s=2.5),
    ]
    _results.record(page, first, command="python -m benchmarks", size="full", load_start="1.0")
    text = page.read_text()
    assert "| analyze | full | x | 318 |" in text and _results.START in text
    # hand-written prose after the block survives the next run
    page.write_text(text + "\n## Notes by hand\n\nanalyze took 97 s on a quiet machine.\n")
    store = _results.read_store(_results.store_path(page))
    store["runs"] = {"2000-01-01 00:00 UTC": {"command": "old"}}
    for r in store["rows"]:
        r["measured"] = "2000-01-01 00:00 UTC"
    _results.store_path(page).write_text(__import__("json").dumps(store))
    _results.record(
        page,
        [row("analyze", "full", ours="x", ours_s=97.0), row("hub", "tiny", ours="z", ours_s=1.0)],
        command="python -m benchmarks.bench_analyze --size full",
        size="full",
        load_start="0.4, 0.5, 0.6",
    )
    text = page.read_text()
    table = [line for line in text.splitlines() if line.startswith("| ")]
    assert [line.split(" | ")[0] for line in table[1:]] == ["| analyze", "| greedy", "| hub"]
    assert "| 318 |" not in text and "| analyze | full | x | 97 |" in text
    greedy = next(line for line in table if line.startswith("| greedy"))
    assert "| 2.5 |" in greedy and "| 2000-01-01 00:00 UTC; 1.0 → " in greedy
    assert "analyze took 97 s on a quiet machine." in text
    assert "`python -m benchmarks.bench_analyze --size full`" in text and "`old`" in text


def test_committed_results_table_is_the_one_generated_from_results_json(tmp_path):
    """benchmarks/RESULTS.md's table is exactly what benchmarks/results.json generates (no
    hand-edited figure), and every row says when it was measured."""
    from benchmarks import _results

    page = REPO / "benchmarks" / "RESULTS.md"
    store = _results.read_store(_results.store_path(page))
    copy = tmp_path / "RESULTS.md"
    copy.write_text(page.read_text())
    _results.write_page(copy, store)
    assert copy.read_text() == page.read_text()
    assert store["rows"] and all(r["measured"] in store["runs"] for r in store["rows"])


def test_driver_benchmark_at_tiny_size(tmp_path, monkeypatch):
    """bench_driver at its tiny size: the predictions and pairs.csv as Ray tasks on a local
    cluster equal the driver's (identical predictions, identical bytes), and the rows carry
    the extrapolation to 32 workers."""
    pytest.importorskip("ray")
    import ray

    if ray.is_initialized():
        pytest.skip("a Ray cluster is already running in this process")
    monkeypatch.setattr("benchmarks._common.DATA", tmp_path / "data")
    from benchmarks import bench_driver

    predictions, csv = bench_driver.run("tiny")
    for result in (predictions, csv):
        assert result["met"] is True, result["check"]
        assert "extrapolated on 32 workers" in result["check"]
    assert "identical predictions: yes" in predictions["check"]
    assert "5 tasks of 8 models" in predictions["ours"]
    assert "identical bytes: yes" in csv["check"] and "4 tasks of 500 rows" in csv["ours"]


def test_analyze_benchmark_reports_the_median_of_its_runs(tmp_path, monkeypatch):
    """bench_analyze with ``runs=3`` at the tiny size: the main row is the median run's
    (its wall among the three), the peak the largest, and every run's tables equal the
    first's."""
    monkeypatch.setattr("benchmarks._common.DATA", tmp_path / "data")
    monkeypatch.setattr("benchmarks.bench_analyze.DATA", tmp_path / "data")
    from benchmarks import bench_analyze

    (main_row,) = bench_analyze.run("tiny", 3, ray=False, light=False)
    notes = main_row["notes"]
    assert "median of 3 runs" in notes and "tables identical across runs: True" in notes
    walls = sorted(float(w) for w in notes.split("process walls ")[1].split(" s;")[0].split(", "))
    assert f"{main_row['ours_s']:.1f}" == f"{walls[1]:.1f}"
    assert main_row["peak_mib"] > 0 and "FAILED" not in main_row["check"]
    # the machine's speed around the runs (torch's float64 exp, every core busy): two
    # positive figures (the test asserts no time, only that they are there and parse)
    speeds = notes.split("machine speed (float64 exp, every core busy) ")[1]
    figures = [float(x) for x in re.findall(r"(\d+\.\d+) (?:ns|after)", speeds)]
    assert len(figures) == 2 and min(figures) > 0
