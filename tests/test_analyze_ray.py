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


def test_ray_tables_equal_the_local_run(cluster, tmp_path):
    from zoolens.study.analyze import analyze

    zoo_kw, options = ref.SYNTHETIC_CASES["synthetic"]
    zoo = ref.build_synthetic(tmp_path / "zoo", **zoo_kw)
    options = dict(options)
    base = options.pop("base")
    local = analyze(zoo, base, tmp_path / "local", parquet=False, **options)
    remote = analyze(zoo, base, tmp_path / "ray", parquet=False, ray=True, **options)
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
