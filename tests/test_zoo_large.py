"""Zoos larger than memory: arrays round-trip exactly and a scan stays small in memory.

A zoo is built from deterministic random chunks; a *fresh* subprocess then scans it model by
model (row slices through ``Zoo.scores`` plus ``Zoo.predictions``), regenerating each chunk to
compare it exactly (float32) or to float16 rounding. A background thread samples the
subprocess's anonymous resident memory (``RssAnon`` in /proc/self/status: memory that is not
pages mapped from the zoo's files) and the test bounds its peak. The full > 2 GiB version is
marked slow; a 75 MB version with a tight bound runs in CI.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from zoolens import Zoo

ROWS_PER_CHUNK = 1000


def chunk(seed: int, i: int, rows: int, c: int) -> np.ndarray:
    return np.random.default_rng([seed, i]).standard_normal((rows, c), dtype=np.float32) * 3


SCAN = textwrap.dedent("""
    import json, sys, threading, time
    import numpy as np

    def rss_anon_kib():
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1])
        raise RuntimeError("no RssAnon")

    from zoolens import Zoo
    sys.path.insert(0, sys.argv[2])
    from test_zoo_large import ROWS_PER_CHUNK, chunk

    peak, stop = [rss_anon_kib()], threading.Event()
    baseline = peak[0]

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], rss_anon_kib())
            time.sleep(0.002)

    threading.Thread(target=sample, daemon=True).start()
    zoo = Zoo.open(sys.argv[1])
    n, c = zoo.num_examples, zoo.num_classes
    checked = 0
    for name in zoo.models:
        seed = zoo.card(name).seed
        half = zoo.model_info(name)["dtype"] == "float16"
        for i, start in enumerate(range(0, n, ROWS_PER_CHUNK)):
            stop_row = min(n, start + ROWS_PER_CHUNK)
            got = zoo.scores(name, rows=slice(start, stop_row))
            want = chunk(seed, i, stop_row - start, c)
            if half:
                want = want.astype(np.float16).astype(np.float32)
            if not np.array_equal(got, want):
                raise SystemExit(f"{name}: rows {start}:{stop_row} differ")
            checked += got.size
            peak[0] = max(peak[0], rss_anon_kib())
        pred = zoo.predictions(name)
        assert pred.shape == (n,)
    stop.set()
    print(json.dumps({"checked": checked, "peak_anon_kib": peak[0],
                      "baseline_anon_kib": baseline}))
""")


def build(path, n: int, c: int, specs: list[tuple[str, int, str]]) -> int:
    """Create a zoo with one model per (name, seed, dtype); returns the bytes of model data."""
    zoo = Zoo.create(path, np.zeros(n, dtype=np.int64), num_classes=c)
    total = 0
    for name, seed, dtype in specs:
        arr = np.empty((n, c), dtype=np.float32)
        for i, start in enumerate(range(0, n, ROWS_PER_CHUNK)):
            stop = min(n, start + ROWS_PER_CHUNK)
            arr[start:stop] = chunk(seed, i, stop - start, c)
        zoo.add(name, logits=arr, dtype=dtype, card={"seed": seed})
        del arr
        total += zoo.model_info(name)["size"]
    return total


def scan(path) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [os.path.join(os.path.dirname(__file__), "..", "src"), env.get("PYTHONPATH", "")]
    )
    proc = subprocess.run(
        [sys.executable, "-c", SCAN, str(path), os.path.dirname(__file__)],
        capture_output=True,
        text=True,
        env=env,
        timeout=1200,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(autouse=True)
def _linux_only():
    if not os.path.exists("/proc/self/status"):
        pytest.skip("needs /proc/self/status (Linux) to read RssAnon")


def test_scan_reads_rows_not_whole_files(tmp_path):
    """CI-sized: a 50 MB float32 and a 25 MB float16 model; the scan's anonymous memory must
    grow by far less than one model (it would grow by >= 50 MB if one were loaded whole)."""
    n, c = 20000, 625
    total = build(tmp_path / "zoo", n, c, [("a", 1, "float32"), ("h", 3, "float16")])
    assert total > 70e6
    out = scan(tmp_path / "zoo")
    assert out["checked"] == 2 * n * c
    growth_mib = (out["peak_anon_kib"] - out["baseline_anon_kib"]) / 1024
    assert growth_mib < 20, out


@pytest.mark.slow
def test_zoo_over_2gib_round_trips_under_1gib_anonymous_memory(tmp_path):
    n, c = 120000, 1250
    specs = [(f"m{i}", 10 + i, "float32") for i in range(4)] + [("half", 20, "float16")]
    total = build(tmp_path / "zoo", n, c, specs)
    assert total > 2 * 1024**3
    out = scan(tmp_path / "zoo")
    assert out["checked"] == len(specs) * n * c
    print(
        f"zoo {total / 2**30:.2f} GiB scanned; peak anonymous memory "
        f"{out['peak_anon_kib'] / 1024:.0f} MiB (baseline {out['baseline_anon_kib'] / 1024:.0f})"
    )
    assert out["peak_anon_kib"] < 1024 * 1024, out
