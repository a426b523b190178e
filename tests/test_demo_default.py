"""The default demo profile (slow: minutes): base CNN >= 0.88 on the full test set, and the
time it took (printed with -s; timings are measured in benchmarks/, never asserted in a test).

Run with: .venv/bin/python -m pytest -q -m slow tests/test_demo_default.py -s
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from zoolens.demo.data import DEBIAN_DIR
from zoolens.demo.zoo_build import BASE, PROFILES

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not DEBIAN_DIR.is_dir(), reason="Fashion-MNIST absent"),
]


def test_default_profile(tmp_path):
    from zoolens.demo.run import run_demo
    from zoolens.zoo.store import Zoo

    load_before = os.getloadavg()[0]
    result = run_demo(tmp_path / "demo", quick=False, fresh=True)
    load_after = os.getloadavg()[0]
    zoo = Zoo.open(result.zoo_path)
    assert zoo.models == list(PROFILES["default"].models)
    accuracy = float(np.mean(zoo.predictions(BASE) == zoo.labels))
    assert zoo.num_examples == 10000
    assert accuracy >= 0.88, f"base CNN test accuracy {accuracy:.4f} < 0.88"
    total = result.seconds["total"]
    print(
        f"default profile: {total:.0f}s wall, {result.seconds['total_cpu']:.0f}s CPU, "
        f"load {load_before:.1f} -> {load_after:.1f}, base accuracy {accuracy:.4f}"
    )
    # a second run re-analyses only
    again = run_demo(tmp_path / "demo", quick=False)
    assert set(again.cache_hits) >= set(PROFILES["default"].models)
