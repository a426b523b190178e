"""The same answer on every machine, from a light install (issue 24).

- The README Quick start's analyze tables agree to 6 significant digits — compared within
  ``test_analyze_reference.FLOAT_TOLERANCE`` (1e-6 relative, stricter), integers, text and
  decisions exactly — whether numpy runs its AVX-512, AVX2 or baseline SIMD paths
  (``NPY_DISABLE_CPU_FEATURES``, the settings of ``tests/_simd.py``), each run in its own
  process since numpy picks its paths at import.
- Without torch (the light install: a ``sitecustomize`` put first on the path makes
  ``import torch`` fail as where it is not installed), the whole
  Quick start (import, analyze, report) runs, its tables agree with the torch install's, and
  the commands that need torch say in one line which extra to install, exit 1, no traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

import _simd
from conftest import REPO
from test_analyze_reference import compare_json, compare_table
from test_readme_quickstart import quick_start_block, quick_start_env, run_quick_start

sys.path.insert(0, str(REPO))

from benchmarks._common import NO_TORCH  # noqa: E402  (the light install: torch unimportable)


def _split_block() -> tuple[str, str, str]:
    """The Quick start block as (making the zoo, the analyze line, the rest)."""
    lines = quick_start_block().splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("zoolens analyze"))
    return "\n".join(lines[:at]) + "\n", lines[at], "\n".join(lines[at + 1 :]) + "\n"


@pytest.fixture(scope="module")
def quick_start(tmp_path_factory):
    """The Quick start's zoo, made once, and its analyze output with every SIMD path on."""
    tmp = tmp_path_factory.mktemp("portable")
    work = tmp / "work"
    work.mkdir()
    make, analyze, _ = _split_block()
    done = run_quick_start(tmp, work, quick_start_env(tmp), make + analyze + "\n")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return tmp, work


def _compare_outputs(got: Path, want: Path, name: str) -> None:
    tables = sorted(want.glob("*.csv"))
    assert len(tables) >= 7, [t.name for t in tables]
    for table in tables:
        compare_table(f"{name}/{table.stem}", got / table.name, table)
    summary = json.loads((got / "summary.json").read_text())
    reference = json.loads((want / "summary.json").read_text())
    for key in ("headline", "temperature_fits", "notes"):
        compare_json(summary[key], reference[key], f"{name}.{key}")


_OFF_SETTINGS = [s for s in _simd.settings() if s != "default"] or [
    pytest.param(
        "none",
        marks=pytest.mark.skip(
            reason="no dispatched SIMD path to switch off (this CPU has none, or "
            "NPY_DISABLE_CPU_FEATURES already switched them off)"
        ),
    )
]


@pytest.mark.parametrize("setting", _OFF_SETTINGS)
def test_quick_start_tables_agree_with_simd_paths_off(quick_start, setting):
    """Each setting's analyze, in a fresh process, against the run with every path on."""
    tmp, work = quick_start
    off = _simd.settings()[setting]
    _, analyze, _ = _split_block()
    line = analyze.replace("--out results/", f"--out results-{setting}/")
    assert line != analyze
    env = quick_start_env(tmp / setting, NPY_DISABLE_CPU_FEATURES=off)
    check = (
        "python -c 'import json, numpy._core._multiarray_umath as m; "
        "print(json.dumps(m.__cpu_features__))'\n"
    )
    done = run_quick_start(tmp / setting, work, env, check + line + "\n")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    features = json.loads(done.stdout.splitlines()[0])  # numpy's features, name -> on
    assert not any(features[name] for name in off.split()), features  # really switched off
    _compare_outputs(work / f"results-{setting}", work / "results", setting)


def _no_torch_env(tmp: Path) -> dict[str, str]:
    shim = tmp / "no-torch"
    shim.mkdir(parents=True, exist_ok=True)
    (shim / "sitecustomize.py").write_text(NO_TORCH)
    return quick_start_env(tmp, pythonpath=str(shim))


def test_quick_start_without_torch(quick_start):
    """import, analyze, report with torch unimportable; the tables equal the torch run's."""
    tmp, work = quick_start
    light = tmp / "light"
    (light / "work").mkdir(parents=True)
    env = _no_torch_env(light)
    probe = "python -c 'import torch' 2>/dev/null && exit 3 || true\n"
    done = run_quick_start(light, light / "work", env, probe + quick_start_block())
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert (light / "work" / "report.html").stat().st_size > 50_000
    _compare_outputs(light / "work" / "results", work / "results", "light")


@pytest.mark.parametrize(
    "command",
    [
        "zoolens demo --quick",
        "zoolens probe my.zoo --out results",
        "zoolens collect torchvision:resnet18 --data images/ --zoo my.zoo --create",
        "zoolens soup a.safetensors b.safetensors --model python:nets:make --data held.npz",
        "zoolens predict ensemble.zip images/",
    ],
)
def test_torch_commands_name_the_extra(tmp_path, command):
    """A command that needs torch, on the light install: one line naming the extra, exit 1."""
    env = _no_torch_env(tmp_path)
    (tmp_path / "work").mkdir()
    done = run_quick_start(tmp_path, tmp_path / "work", env, command + "\n")
    assert done.returncode == 1, done.stdout + done.stderr
    lines = (done.stdout + done.stderr).strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, lines
    assert lines[0].startswith("error: ") and "pip install 'zoolens[torch]'" in lines[0], lines


def test_light_install_declares_no_torch_and_all_has_every_extra():
    """``pip install zoolens`` pulls no torch, CUDA library or triton (the CI step checks the
    installed venv: scripts/check_light_install.sh); ``[all]`` is every extra but dev."""
    import re
    import tomllib

    root = Path(__file__).resolve().parents[1]
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]

    def name(requirement: str) -> str:
        return re.split(r"[<>=!~\[ ;]", requirement, maxsplit=1)[0].lower()

    heavy = {"torch", "torchvision", "triton", "timm", "open_clip_torch", "scikit-learn"}
    light = {name(r) for r in project["dependencies"]}
    assert not light & heavy and not any(n.startswith(("nvidia", "cuda")) for n in light)
    extras = project["optional-dependencies"]
    assert {"torch", "torchvision"} <= {name(r) for r in extras["torch"]}
    (everything,) = extras["all"]
    assert set(everything.split("[")[1].rstrip("]").split(",")) == set(extras) - {"all", "dev"}
    setup = (root / "scripts" / "setup.sh").read_text()
    assert '-e ".[all,dev]"' in setup and setup.count('step "') >= 4


def test_torch_functions_name_the_extra(tmp_path):
    """The Python API's torch-needing entry points, on the light install: ZoolensError (a
    ValueError) with the one line, before touching any file."""
    code = (
        "import zoolens\n"
        "from zoolens.collect.runner import collect_entries\n"
        "from zoolens.demo.run import run_demo\n"
        "calls = [lambda: zoolens.run_probe('z', 'y'), lambda: zoolens.load_ensemble('e'),\n"
        "         lambda: run_demo('d'), lambda: collect_entries([], None, 'z')]\n"
        "for call in calls:\n"
        "    try:\n"
        "        call()\n"
        "    except zoolens.ZoolensError as exc:\n"
        "        print(exc)\n"
    )
    env = _no_torch_env(tmp_path)
    done = run_quick_start(tmp_path, tmp_path, env, f"python - <<'EOF'\n{code}EOF\n")
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert len(lines) == 4, done.stdout + done.stderr
    assert all("pip install 'zoolens[torch]'" in line for line in lines), lines
    assert not (tmp_path / "d").exists()
