"""A newcomer's first hour (issue 15): set-up says how to get `zoolens` on PATH, no
deprecation warning from our pyproject, flags shown as flags, one stated demo time per
profile, --quick in its own folder, progress bars that finish."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from zoolens.cli import app

ROOT = Path(__file__).resolve().parents[1]


def test_setup_prints_the_activation_line_and_quiets_only_pip_config_noise():
    script = (ROOT / "scripts" / "setup.sh").read_text()
    assert 'echo "  source .venv/bin/activate"' in script
    assert "is ignored: it is neither a file nor a directory" in script  # the one filtered line


def test_pyproject_license_is_an_spdx_string():
    """A TOML table here makes setuptools >= 77 warn three times during set-up."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["license"] == "Apache-2.0"
    requires = project["build-system"]["requires"]
    assert any(
        r.startswith("setuptools>=") and int(r.split(">=")[1].split(".")[0]) >= 77 for r in requires
    )


@pytest.mark.parametrize("command", [["demo"], ["analyze"], ["report"], ["import"], ["probe"]])
def test_flags_are_shown_as_flags_in_help(command):
    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.output
    if command == ["demo"]:
        line = next(line for line in result.output.splitlines() if "│ --quick" in line)
        assert re.search(r"--quick\s{2,}Ten models", line), line


def test_one_stated_time_per_profile():
    from zoolens.demo.zoo_build import PROFILES

    quick, default = PROFILES["quick"].minutes, PROFILES["default"].minutes
    readme = (ROOT / "README.md").read_text()
    assert (
        f"about {default}\nminutes on 2 CPU cores" in readme
        or f"about {default} minutes on 2 CPU cores" in readme
    )
    assert f"`--quick` (ten models, fewer epochs) about {quick}\nminutes" in readme
    assert f"{quick}-minute" in readme
    stated = set(re.findall(r"(\d+)[-\s]+minutes?", readme.split("## Benchmarks")[0]))
    assert stated == {str(quick), str(default)}, stated
    help_text = CliRunner().invoke(app, ["demo", "--help"], env={"COLUMNS": "200"}).output
    assert f"about {quick} minutes on 2 CPU cores" in help_text
    assert f"about {default}" in help_text


def test_quick_writes_to_its_own_folder_unless_out_says(monkeypatch):
    import zoolens.demo.run as run

    seen = {}

    def fake_run_demo(out, **kwargs):
        seen["out"] = out
        seen["resolved"] = run.default_out(kwargs["quick"]) if out is None else Path(out)
        raise run.ZoolensError("stop here")

    monkeypatch.setattr(run, "run_demo", fake_run_demo)
    CliRunner().invoke(app, ["demo", "--quick"])
    assert seen == {"out": None, "resolved": Path("zoolens-demo-quick")}
    CliRunner().invoke(app, ["demo"])
    assert seen["resolved"] == Path("zoolens-demo")
    CliRunner().invoke(app, ["demo", "--quick", "--out", "mine"])
    assert seen["resolved"] == Path("mine")


def test_progress_bars_finish():
    from zoolens.progress import progress_bar, set_quiet

    set_quiet(False)
    with progress_bar(17, "estimated total") as advance:
        for _ in range(15):  # the work ended early (e.g. a greedy soup that stopped)
            advance(1)
    task = advance.bar.tasks[0]
    assert task.completed == task.total == 17
    with progress_bar(0, "no countable steps") as advance:
        pass
    task = advance.bar.tasks[0]
    assert task.completed == task.total == 1  # never "0/0"
    with pytest.raises(RuntimeError):
        with progress_bar(5, "fails") as advance:
            advance(2)
            raise RuntimeError("boom")
    assert advance.bar.tasks[0].completed == 2  # an error leaves the bar where it stopped


def test_track_finishes_when_the_consumer_stops_after_the_last_item():
    from zoolens.progress import set_quiet, track

    set_quiet(False)
    bars = []
    import zoolens.progress as progress

    original = progress.progress_bar

    def spy(*args, **kwargs):
        context = original(*args, **kwargs)
        advance = context.__enter__()
        bars.append(advance)

        class Wrapped:
            def __enter__(self):
                return advance

            def __exit__(self, *exc):
                return context.__exit__(*exc)

        return Wrapped()

    progress.progress_bar = spy
    try:
        names = ["a", "b", "c"]
        pairs = list(zip(names, track(range(3), description="zip")))  # zip closes track
    finally:
        progress.progress_bar = original
    assert len(pairs) == 3
    task = bars[0].bar.tasks[0]
    assert task.completed == task.total == 3


def test_import_and_collect_help_show_what_they_mean():
    """Issue 27, item 8: rich markup no longer eats [wnid, name], .json is among the formats,
    and collect --help shows the model-list format that the shipped example uses."""
    env = {"COLUMNS": "200"}
    text = CliRunner().invoke(app, ["import", "--help"], env=env).output
    flat = " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())
    assert '{"0": [wnid, name], ...}' in flat
    assert ".pt .json (a list of class ids" in flat
    collect = CliRunner().invoke(app, ["collect", "--help"], env=env).output
    for line in ("[[models]]", 'spec = "torchscript:tiny-a.pt"', 'name = "tiny-a"', "kwargs = {}"):
        assert line in collect, line
    assert "[models.card]" in collect and 'arch = "tiny-cnn"' in collect
    # the format shown is the one the shipped list uses, and that list parses
    from zoolens.collect.specs import read_model_list
    from zoolens.examples import path

    entries = read_model_list(path() / "collect" / "models.toml")
    assert [e.name for e in entries] == ["tiny-a", "tiny-b", "tiny-c"]
    # a relative torchscript path is read from the list's folder
    assert entries[0].spec == f"torchscript:{(path() / 'collect' / 'tiny-a.pt').resolve()}"
    assert entries[0].card["arch"] == "tiny-cnn" and entries[0].preprocess["mean"] == [0.5] * 3
