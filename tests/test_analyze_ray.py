"""``analyze --ray``: on a local Ray cluster (2 CPUs), the temperature fits and evaluation
chunks run as Ray tasks and every table is identical to the local run's (and to the
reference tables), through the Python API and the CLI; a zoo the workers cannot open is a
one-line error."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

import _analyze_reference as ref
from test_analyze_reference import compare_table

from zoolens.cli import app


def test_ray_unreachable_cluster_is_one_line(tmp_path, monkeypatch):
    """A cluster that cannot be reached (ray.init raising, as it does for a wrong address)
    is one error line naming the address, exit 1, no table written."""
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        pytest.skip("a Ray cluster is already running in this process")

    def unreachable(*args, **kwargs):
        raise ConnectionError("Could not connect to 10.0.0.9:6379\nmore detail")

    monkeypatch.setattr(ray, "init", unreachable)
    zoo = ref.build_synthetic(tmp_path / "zoo")
    result = CliRunner().invoke(
        app,
        [
            "--quiet",
            "analyze",
            str(zoo.path),
            "--base",
            "base",
            "--out",
            str(tmp_path / "o"),
            "--bootstrap",
            "0",
            "--ray-address",
            "10.0.0.9:6379",
        ],
    )
    assert result.exit_code == 1
    assert result.output == (
        "error: --ray: cannot start or reach a Ray cluster at "
        "10.0.0.9:6379 (ConnectionError: Could not connect to "
        "10.0.0.9:6379)\n"
    )
    assert not (tmp_path / "o" / "pairs.csv").exists()


@pytest.fixture(scope="module")
def cluster():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_ray_tables_equal_the_local_run(cluster, tmp_path, monkeypatch):
    """Every stage that has Ray tasks uses them here (blocks and groups made small enough
    for this zoo: the predictions three models a task, the CSV tables five rows a task, the
    headline's Spearman's rho 40 resamples a task), and every table and the headline are
    the local run's, bit for bit."""
    from zoolens.study import analyze as analyze_module
    from zoolens.study import headline as headline_module
    from zoolens.study import inputs as inputs_module
    from zoolens.study import tables
    from zoolens.study.analyze import analyze

    zoo_kw, options = ref.SYNTHETIC_CASES["synthetic"]
    zoo = ref.build_synthetic(tmp_path / "zoo", **zoo_kw)
    options = dict(options)
    base = options.pop("base")
    local = analyze(zoo, base, tmp_path / "local", parquet=False, **options)

    monkeypatch.setattr(inputs_module, "PREDICTION_GROUP", 3)
    monkeypatch.setattr(tables, "CSV_BLOCK_ROWS", 5)
    monkeypatch.setattr(headline_module, "_RESAMPLE_BLOCK_VALUES", 40 * len(local.pairs))
    tasks: dict[str, list] = {"predictions": [], "csv": []}

    def spy(real, kind):
        # map_tasks_ray(task, items, ...) and run_chunks_ray(task, ctx, bounds, ...): the
        # items, or the blocks' bounds
        def run(task, first, *args, **kwargs):
            tasks[kind].append((task.__name__, list(first if kind == "predictions" else args[0])))
            return real(task, first, *args, **kwargs)

        return run

    monkeypatch.setattr(
        inputs_module, "map_tasks_ray", spy(inputs_module.map_tasks_ray, "predictions")
    )
    monkeypatch.setattr(analyze_module, "run_chunks_ray", spy(analyze_module.run_chunks_ray, "csv"))
    remote = analyze(zoo, base, tmp_path / "ray", parquet=False, ray=True, **options)
    names = list(zoo.models)
    groups = [tuple(names[i : i + 3]) for i in range(0, len(names), 3)]
    assert ("predictions_task", groups) in tasks["predictions"]
    scored = [name for name in names if zoo.kind(name) != "decisions"]
    assert ("fit_task", scored) in tasks["predictions"]  # the same runner
    formatted = [bounds for task, bounds in tasks["csv"] if task == "csv_rows"]
    long_tables = [frame for frame in local.tables().values() if len(frame) > 5]
    assert len(formatted) == len(long_tables)  # every table over five rows, in blocks
    rows = len(local.pairs)
    assert [(s, min(s + 5, rows)) for s in range(0, rows, 5)] in formatted  # pairs.csv
    # the headline's Spearman's rho per resample: blocks of 40 resamples
    (bounds,) = [bounds for task, bounds in tasks["csv"] if task == "spearman_block"]
    assert bounds == [(s, min(s + 40, 300)) for s in range(0, 300, 40)]
    assert len(remote.tables()) == len(local.tables())
    for name, frame in local.tables().items():
        pd.testing.assert_frame_equal(remote.tables()[name], frame, check_exact=True)
        assert (tmp_path / "ray" / f"{name}.csv").read_bytes() == (
            tmp_path / "local" / f"{name}.csv"
        ).read_bytes(), name
    for key in ("headline", "temperature_fits"):
        assert json.dumps(remote.summary[key]) == json.dumps(local.summary[key])
    # and both equal the reference written by the implementation before the fused pass
    for table in sorted((ref.FIXTURES / "synthetic").glob("*.csv")):
        compare_table(f"ray/{table.stem}", tmp_path / "ray" / table.name, table)


def test_ray_through_the_cli(cluster, tmp_path):
    zoo = ref.build_synthetic(tmp_path / "zoo", seed=3)
    runner = CliRunner()
    outs = {}
    for flag in ([], ["--ray"]):
        out = tmp_path / ("ray" if flag else "local")
        result = runner.invoke(
            app,
            [
                "--quiet",
                "analyze",
                str(zoo.path),
                "--base",
                "base",
                "--out",
                str(out),
                "--bootstrap",
                "40",
                "--max-steps",
                "2",
                "--chunk-size",
                "50",
                *flag,
            ],
        )
        assert result.exit_code == 0, result.output
        outs[bool(flag)] = out
    for csv in sorted(outs[False].glob("*.csv")):
        assert (outs[True] / csv.name).read_bytes() == csv.read_bytes(), csv.name


def test_ray_base_only_equals_the_local_base_only_run(cluster, tmp_path):
    """``--pairs base`` on Ray: the chunk tasks carry the pair list; every table identical."""
    from zoolens.study.analyze import analyze

    zoo = ref.build_synthetic(tmp_path / "zoo", seed=5)
    options = dict(n_bootstrap=60, max_steps=2, chunk_size=40, pairs="base")
    local = analyze(zoo, "vit", tmp_path / "local", parquet=False, **options)
    remote = analyze(zoo, "vit", tmp_path / "ray", parquet=False, ray=True, **options)
    assert len(local.pairs) == len(local.models) - 1
    assert remote.summary["evaluation_chunks"]["ray"] is True
    assert remote.summary["pair_blocks"]["ray"] is True  # the pairs' bootstrap as tasks too
    for name in local.tables():
        assert (tmp_path / "ray" / f"{name}.csv").read_bytes() == (
            tmp_path / "local" / f"{name}.csv"
        ).read_bytes(), name


def test_ray_damaged_model_file_is_the_local_one_line(cluster, tmp_path):
    """A model file damaged after the zoo was made fails its predictions task on a worker:
    the same one error line as the local run (naming the file), exit 1, nothing written."""
    zoo = ref.build_synthetic(tmp_path / "zoo", seed=3)
    (victim,) = (zoo.path / "models").glob("wide-*.safetensors")
    victim.write_bytes(victim.read_bytes()[:-16])  # truncated
    lines = {}
    for flag in ([], ["--ray"]):
        out = tmp_path / ("ray" if flag else "local")
        argv = ["--quiet", "analyze", str(zoo.path), "--base", "base", "--out", str(out)]
        result = CliRunner().invoke(app, [*argv, "--bootstrap", "0", *flag])
        assert result.exit_code == 1, result.output
        assert result.output.startswith("error: ") and result.output.count("\n") == 1
        assert victim.name in result.output
        assert not out.exists()
        lines[bool(flag)] = result.output
    assert lines[True] == lines[False]
