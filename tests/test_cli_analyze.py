"""``zoolens analyze`` / ``zoolens ensemble`` through the CLI: outputs, summary, bad input."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from zoolens.cli import app
from zoolens.study import tables

runner = CliRunner()


def _zoo(path, *, models=3, n=120, c=4, calibration_fraction=0.25, seed=0):
    from zoolens.zoo.store import Zoo

    rng = np.random.default_rng(seed)
    labels = rng.integers(0, c, n)
    zoo = Zoo.create(path, labels, calibration_fraction=calibration_fraction, seed=seed)
    for m in range(models):
        z = rng.normal(size=(n, c)).astype(np.float32)
        z[np.arange(n), labels] += 1.0 + 0.5 * m
        zoo.add(f"m{m}", logits=z, card={"arch": f"net{m}", "framework": "supervised"})
    return zoo


@pytest.fixture(scope="module")
def small_zoo(tmp_path_factory):
    return _zoo(tmp_path_factory.mktemp("cli") / "zoo")


def test_analyze_writes_tables_and_prints_summary(small_zoo, tmp_path):
    out = tmp_path / "res"
    result = runner.invoke(
        app,
        [
            "--quiet",
            "analyze",
            str(small_zoo.path),
            "--base",
            "m0",
            "--out",
            str(out),
            "--bootstrap",
            "50",
            "--max-steps",
            "3",
            "--pool",
            "accuracy<0.99",
            "--interpolate",
            "m0,m2",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "best sidekick for m0: m" in result.output
    pairs = pd.read_csv(out / "pairs.csv")
    best = pairs[pairs.model_a == "m0"].sort_values("ensemble_acc", ascending=False).iloc[0]
    assert (
        f"best sidekick for m0: {best.model_b} (ensemble {best.ensemble_acc:.3f}" in result.output
    )
    for name, columns in tables.TABLE_COLUMNS.items():
        if name.startswith("shift_"):  # only with --shift: no empty files otherwise
            assert not (out / f"{name}.csv").exists()
            continue
        assert list(pd.read_csv(out / f"{name}.csv").columns) == columns
    summary = json.loads((out / "summary.json").read_text())
    # Rebuilt from the parsed options in-process (sys.argv is pytest's here).
    assert summary["command"].startswith("zoolens analyze ")
    assert "--base m0" in summary["command"] and "--interpolate m0,m2" in summary["command"]
    assert summary["settings"]["n_bootstrap"] == 50
    assert summary["settings"]["max_steps"] == 3
    assert len(pd.read_csv(out / "greedy.csv")) == 4
    inter = pd.read_csv(out / "interpolation.csv")
    assert set(zip(inter.model_a, inter.model_b)) == {("m0", "m2")}


def test_ensemble_command(small_zoo, tmp_path):
    result = runner.invoke(
        app,
        [
            "--quiet",
            "ensemble",
            str(small_zoo.path),
            "--start",
            "m0",
            "--pool",
            "m1,m2",
            "--max-steps",
            "4",
            "--out",
            str(tmp_path / "g"),
        ],
    )
    assert result.exit_code == 0, result.output
    greedy = pd.read_csv(tmp_path / "g" / "greedy.csv")
    assert list(greedy.columns) == tables.TABLE_COLUMNS["greedy"]
    assert len(greedy) == 5 and greedy.start.eq("m0").all()
    assert set(greedy.added[1:]) <= {"m1", "m2"}
    assert "kept" in result.output and "over m0 alone" in result.output
    printed = runner.invoke(
        app,
        [
            "--quiet",
            "ensemble",
            str(small_zoo.path),
            "--start",
            "m2",
            "--pool",
            "accuracy<0.99",
            "--max-steps",
            "2",
        ],
    )
    assert printed.exit_code == 0, printed.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["--base", "nope"], "no model named 'nope'"),
        (["--base", "m0", "--pool", "accuracy<0"], "pool is empty"),
        (["--base", "m0", "--pool", "m1,ghost"], "'ghost' is not in the zoo"),
        (["--base", "m0", "--combine", "votes"], "combine 'votes': use 'probs' or 'logits'"),
        (["--base", "m0", "--interpolate", "m0"], "give two model names"),
        (["--base", "m0", "--pool", "acc<0.5"], "unknown column 'acc'"),
    ],
)
def test_analyze_bad_input_is_one_line(small_zoo, tmp_path, args, message):
    result = runner.invoke(
        app,
        ["analyze", str(small_zoo.path), "--out", str(tmp_path / "o"), "--bootstrap", "0", *args],
    )
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output
    assert len([line for line in result.output.splitlines() if line.startswith("error:")]) == 1


def test_one_model_zoo_and_empty_calibration_split(tmp_path):
    one = _zoo(tmp_path / "one", models=1)
    result = runner.invoke(
        app, ["analyze", str(one.path), "--base", "m0", "--out", str(tmp_path / "o1")]
    )
    assert result.exit_code != 0 and "has 1 model" in result.output
    # calibration fraction 0 (issue 14): analysed on all examples, temperatures 1,
    # greedy cross-fitted (tests/test_no_calibration.py checks the numbers)
    nocal = _zoo(tmp_path / "nocal", calibration_fraction=0.0)
    for command in (
        ["analyze", str(nocal.path), "--base", "m0", "--out", str(tmp_path / "o2")],
        ["ensemble", str(nocal.path), "--start", "m0"],
    ):
        result = runner.invoke(app, command)
        assert result.exit_code == 0, result.output
        assert "cross-fitted in 5 folds" in result.output
    missing = runner.invoke(
        app, ["analyze", str(tmp_path / "nothing"), "--base", "m0", "--out", str(tmp_path / "o3")]
    )
    assert missing.exit_code != 0 and "error:" in missing.output


def test_ensemble_bad_start(small_zoo):
    result = runner.invoke(app, ["ensemble", str(small_zoo.path), "--start", "zzz"])
    assert result.exit_code != 0 and "no model named 'zzz'" in result.output


@pytest.mark.parametrize("command", ["analyze", "ensemble"])
def test_help_has_example(command):
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0 and "Example:" in result.output


def test_bad_pool_fails_before_the_evaluation_pass(small_zoo, tmp_path):
    result = runner.invoke(
        app,
        [
            "analyze",
            str(small_zoo.path),
            "--base",
            "m0",
            "--out",
            str(tmp_path / "o"),
            "--pool",
            "accuracy<0",
        ],
    )
    assert result.exit_code != 0 and "pool is empty" in result.output
    assert "evaluation pass" not in result.output  # failed before streaming the scores
    later = runner.invoke(
        app,
        ["--quiet", "ensemble", str(small_zoo.path), "--start", "m0", "--pool", "ece_after<0.5"],
    )
    assert later.exit_code != 0 and "has no value for any model" in later.output
    ok = runner.invoke(
        app,
        [
            "--quiet",
            "analyze",
            str(small_zoo.path),
            "--base",
            "m0",
            "--out",
            str(tmp_path / "o2"),
            "--bootstrap",
            "0",
            "--pool",
            "ece_after<1 and accuracy>0",
        ],
    )
    assert ok.exit_code == 0, ok.output


def test_analyze_start_begins_the_greedy_table_and_equals_the_api(small_zoo, tmp_path):
    from zoolens.study.analyze import analyze as run_analysis

    out = tmp_path / "res"
    options = dict(pool="m0,m1", max_steps=3)
    result = runner.invoke(
        app,
        [
            "--quiet",
            "analyze",
            str(small_zoo.path),
            "--base",
            "m0",
            "--start",
            "m2",
            "--pool",
            options["pool"],
            "--max-steps",
            "3",
            "--bootstrap",
            "0",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    greedy = pd.read_csv(out / "greedy.csv")
    # Step 0 is the start alone; m2 is not in the pool, so it can only be there as the start.
    assert greedy.start.eq("m2").all() and greedy.added.iloc[0] == "m2"
    assert greedy.members.iloc[0] == "m2"
    assert all(m.startswith("m2;") for m in greedy.members.iloc[1:])
    assert set(greedy.added.iloc[1:]) <= {"m0", "m1"}
    assert "greedy from m2:" in result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["settings"]["greedy_start"] == "m2"
    assert summary["headline"]["greedy"]["start"] == "m2"
    api = run_analysis(small_zoo.path, "m0", start="m2", n_bootstrap=0, **options)
    pd.testing.assert_frame_equal(greedy, api.greedy.reset_index(drop=True), check_dtype=False)
    # Without --start the base starts, and the table differs from the m2 one.
    default = run_analysis(small_zoo.path, "m0", n_bootstrap=0, **options)
    assert default.greedy.start.eq("m0").all() and not default.greedy.equals(api.greedy)


def test_analyze_start_matches_ensemble_start(small_zoo, tmp_path):
    """Same start, pool and steps: analyze's greedy table is ensemble's."""
    common = ["--start", "m1", "--pool", "accuracy<0.99", "--max-steps", "4"]
    a = runner.invoke(
        app,
        [
            "--quiet",
            "analyze",
            str(small_zoo.path),
            "--base",
            "m0",
            "--bootstrap",
            "0",
            "--out",
            str(tmp_path / "a"),
            *common,
        ],
    )
    e = runner.invoke(
        app, ["--quiet", "ensemble", str(small_zoo.path), "--out", str(tmp_path / "e"), *common]
    )
    assert a.exit_code == 0 and e.exit_code == 0, a.output + e.output
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "a" / "greedy.csv"), pd.read_csv(tmp_path / "e" / "greedy.csv")
    )


def test_greedy_chosen_before_the_pass_equals_greedy_chosen_after_it(tmp_path):
    """By default analyze chooses greedy before its evaluation pass and takes every
    prefix's evaluation accuracy from the pass (stage ``selection``); with a --pool it
    chooses after the pass and reads the evaluation rows itself, as ``zoolens ensemble``
    does. Same pool (every model): greedy.csv byte for byte, and the summary's greedy."""
    zoo = _zoo(tmp_path / "zoo", models=6, n=400, c=5)
    pool = ",".join(f"m{m}" for m in range(6))
    runs = {
        "early": ["analyze", str(zoo.path), "--base", "m1"],
        "late": ["analyze", str(zoo.path), "--base", "m1", "--pool", pool],
        "ensemble": ["ensemble", str(zoo.path), "--start", "m1"],
    }
    for name, args in runs.items():
        result = runner.invoke(
            app, ["--quiet", *args, "--max-steps", "7", "--out", str(tmp_path / name)]
        )
        assert result.exit_code == 0, result.output
    early = (tmp_path / "early" / "greedy.csv").read_bytes()
    assert early == (tmp_path / "late" / "greedy.csv").read_bytes()
    assert early == (tmp_path / "ensemble" / "greedy.csv").read_bytes()
    summaries = [json.loads((tmp_path / n / "summary.json").read_text()) for n in ("early", "late")]
    assert summaries[0]["headline"]["greedy"] == summaries[1]["headline"]["greedy"]
    assert "selection" in summaries[0]["timings_s"]


@pytest.mark.parametrize(
    "start, message",
    [
        ("zzz", "no model named 'zzz' (--start)"),
        ("human", "greedy start 'human' (--start) is decision-only"),
    ],
)
def test_analyze_bad_start_is_one_line_and_writes_nothing(tmp_path, start, message):
    zoo = _zoo(tmp_path / "zoo")
    zoo.add("human", decisions=np.asarray(zoo.labels))
    out = tmp_path / "o"
    result = runner.invoke(
        app,
        [
            "analyze",
            str(zoo.path),
            "--base",
            "m0",
            "--start",
            start,
            "--out",
            str(out),
            "--bootstrap",
            "0",
        ],
    )
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output
    assert [line for line in result.output.splitlines() if line.strip()] == [
        line for line in result.output.splitlines() if line.startswith("error:")
    ]
    assert len(result.output.strip().splitlines()) == 1
    assert "evaluation pass" not in result.output  # refused before reading the scores
    assert not out.exists()


def test_ensemble_writes_the_cards_analyze_writes(tmp_path):
    from zoolens.zoo.store import Zoo

    zoo = _zoo(tmp_path / "zoo")
    zoo.add(
        "human",
        decisions=np.asarray(zoo.labels),
        card={"arch": "people", "framework": "crowd", "notes": "label-noise free"},
    )
    zoo = Zoo.open(zoo.path)
    e = runner.invoke(
        app,
        [
            "--quiet",
            "ensemble",
            str(zoo.path),
            "--start",
            "m0",
            "--max-steps",
            "2",
            "--out",
            str(tmp_path / "e"),
        ],
    )
    a = runner.invoke(
        app,
        [
            "--quiet",
            "analyze",
            str(zoo.path),
            "--base",
            "m0",
            "--bootstrap",
            "0",
            "--max-steps",
            "2",
            "--out",
            str(tmp_path / "a"),
        ],
    )
    assert e.exit_code == 0 and a.exit_code == 0, e.output + a.output
    written = json.loads((tmp_path / "e" / "cards.json").read_text())
    assert written == json.loads((tmp_path / "a" / "cards.json").read_text())
    # Independent of analyze: the zoo's own cards, one per models.csv row, in zoo order.
    assert written["table_version"] == tables.TABLE_VERSION
    assert (
        list(written["cards"])
        == zoo.models
        == list(pd.read_csv(tmp_path / "e" / "models.csv").model)
    )
    for name in zoo.models:
        assert written["cards"][name] == json.loads(zoo.card(name).model_dump_json())
    assert written["cards"]["human"]["notes"] == "label-noise free"
    # Written atomically, like the tables: no temporary file is left behind.
    assert sorted(p.name for p in (tmp_path / "e").iterdir()) == sorted(
        [
            "cards.json",
            "summary.json",
            "greedy.csv",
            "greedy.json",
            "greedy.parquet",
            "models.csv",
            "models.json",
            "models.parquet",
        ]
    )


def test_one_list_of_stages():
    """study.stages.STAGES is the one list: each name is a stage function of study.analyze,
    the timer refuses any other name, and --verbose's help names them all."""
    from zoolens.study import analyze as analyze_module
    from zoolens.study import stages

    assert all(callable(getattr(analyze_module, f"stage_{name}")) for name in stages.STAGES)
    assert stages.OPTIONAL_STAGES <= set(stages.STAGES)
    with pytest.raises(ValueError, match="not a stage"):
        with stages.StageTimer().stage("pareto"):
            pass
    command = typer.main.get_command(app).commands["analyze"]
    verbose = next(p for p in command.params if "--verbose" in getattr(p, "opts", ()))
    help_text = getattr(verbose, "help", "") or ""
    assert all(name in help_text for name in stages.STAGES), help_text


def test_verbose_prints_stage_timings_that_add_up(small_zoo, tmp_path):
    """--verbose prints one line per stage; summary.json records the same stages, in the
    pipeline's order (that their sum is the analysis's elapsed time within 5 % is a timing:
    benchmarks/bench_analyze.py checks it)."""
    from zoolens.study.analyze import STAGES
    from zoolens.study.stages import OPTIONAL_STAGES

    out = tmp_path / "res"
    result = runner.invoke(
        app,
        [
            "--quiet",
            "analyze",
            str(small_zoo.path),
            "--base",
            "m0",
            "--out",
            str(out),
            "--bootstrap",
            "50",
            "--max-steps",
            "2",
            "--verbose",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    timings = summary["timings_s"]
    assert tuple(timings) == tuple(stage for stage in STAGES if stage not in OPTIONAL_STAGES)
    assert all(seconds >= 0 for seconds in timings.values())
    assert summary["elapsed_s"] >= 0
    assert "stage timings (wall):" in result.output
    for stage in timings:
        assert f"  {stage} " in result.output
    quiet = runner.invoke(
        app,
        [
            "--quiet",
            "analyze",
            str(small_zoo.path),
            "--base",
            "m0",
            "--out",
            str(tmp_path / "q"),
            "--bootstrap",
            "0",
            "--max-steps",
            "2",
        ],
    )
    assert quiet.exit_code == 0 and "stage timings" not in quiet.output
