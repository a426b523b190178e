"""The public API: discoverable from ``import zoolens`` like ``sklearn.metrics``, loaded lazily,
and one error type that is a ``ValueError``."""

from __future__ import annotations

import importlib
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

import zoolens
from zoolens import measure
from zoolens.cli import app
from zoolens.errors import ZoolensError
from zoolens.zoo.store import Zoo

runner = CliRunner()


def _fresh_python(code: str) -> str:
    """stdout of ``code`` run in a new interpreter (nothing imported yet)."""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    return done.stdout.strip()


def test_import_zoolens_is_light_and_analyze_is_one_attribute_away():
    heavy = _fresh_python(
        "import sys, zoolens; print(sorted(m for m in ('numpy', 'pandas', "
        "'torch', 'zoolens.study') if m in sys.modules))"
    )
    assert heavy == "[]"
    assert (
        _fresh_python("import zoolens; print(zoolens.analyze.__module__)")
        == "zoolens.study.analyze"
    )
    from zoolens.study.analyze import analyze, run_greedy
    from zoolens.study.probe import run_probe

    assert zoolens.analyze is analyze and zoolens.run_greedy is run_greedy
    assert zoolens.run_probe is run_probe
    assert zoolens.Zoo is Zoo and zoolens.ZoolensError is ZoolensError
    assert zoolens.measure is measure and set(zoolens.__all__) <= set(dir(zoolens))
    assert sorted(zoolens.__all__) == sorted([*zoolens._LAZY, *zoolens._SUBMODULES, "__version__"])
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        zoolens.nope  # noqa: B018


def test_measure_exports_every_public_name_of_its_submodules():
    from pathlib import Path

    folder = Path(measure.__file__).parent
    modules = {p.stem for p in folder.glob("*.py") if not p.stem.startswith("_")}
    assert modules == {*measure._SUBMODULES, *measure._NOT_EXPORTED}  # a new one is exported
    names = [
        (name, module)
        for module in measure._SUBMODULES
        for name in importlib.import_module(f"zoolens.measure.{module}").__all__
    ]
    assert len(names) == len({name for name, _ in names})  # no name in two modules
    assert sorted(name for name, _ in names) == measure.__all__
    for name, module in names:
        assert getattr(measure, name) is getattr(
            importlib.import_module(f"zoolens.measure.{module}"), name
        )
    assert set(measure.__all__) <= set(dir(measure))
    correct = np.array([[1, 1, 0, 0], [1, 0, 1, 0]], dtype=bool)
    assert measure.error_inconsistency(correct)[0, 1] == 0.5  # mean(r_a XOR r_b)
    with pytest.raises(AttributeError):
        measure.not_a_measure  # noqa: B018


def test_zoolens_error_is_a_value_error(tmp_path):
    assert issubclass(ZoolensError, ValueError)
    with pytest.raises(ValueError, match="no-such-zoo"):
        Zoo.open(tmp_path / "no-such-zoo")


def test_combine_is_checked_once_at_the_boundary_before_any_array_is_read(tmp_path):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 60)
    zoo = Zoo.create(tmp_path / "z", labels)
    zoo.add("a", logits=rng.normal(size=(60, 3)))
    zoo.add("b", logits=rng.normal(size=(60, 3)))
    with pytest.raises(ZoolensError, match="combine 'median': use 'probs' or 'logits'"):
        zoolens.analyze(zoo, "a", combine="median")
    for command in (
        ["analyze", str(zoo.path), "--base", "a", "--out", str(tmp_path / "r")],
        ["ensemble", str(zoo.path), "--start", "a"],
    ):
        result = runner.invoke(app, [*command, "--combine", "median"])
        assert result.exit_code != 0
        assert result.output.strip() == "error: combine 'median': use 'probs' or 'logits'"
    assert not (tmp_path / "r").exists()
