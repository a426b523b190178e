"""Greedy selection over memory-mapped candidates (a pool staged on disk, study.greedy).

Oracle: the same selection on in-memory arrays (itself tested against a plain Caruana loop in
tests/test_measure_ensemble.py and tests/test_study_analyze.py); the results must be identical.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from zoolens.measure.ensemble import greedy_forward_selection
from zoolens.study.pages import memory_map, release_pages


def _probs(rng, m, n, c):
    z = rng.normal(size=(m, n, c)) * 2
    z[:, :, 0] += 1.0
    q = np.exp(z - z.max(axis=2, keepdims=True))
    q /= q.sum(axis=2, keepdims=True)
    # Coarse values make exact ties and near-ties, so the pruned scorer's fallbacks run.
    return (np.round(q * 8) / 8).astype(np.float32)


def _mapped_rss_kib(path: Path) -> int:
    """Resident KiB of the process's mappings of ``path`` (/proc/self/smaps)."""
    total, inside = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = line.split()
        if head and "-" in head[0] and len(head) >= 5:  # a mapping's header line
            inside = line.endswith(str(path))
        elif inside and line.startswith("Rss:"):
            total += int(head[1])
    return total


def test_memory_mapped_pool_gives_identical_selection_and_releases_pages(tmp_path):
    rng = np.random.default_rng(3)
    m, n, c = 7, 900, 12
    probs = _probs(rng, m, n, c)
    labels = rng.integers(0, c, size=n)
    cal, ev = np.arange(0, n, 2), np.arange(1, n, 2)
    expected = greedy_forward_selection(
        probs,
        labels,
        start=2,
        pool=range(m),
        max_steps=9,
        calibration_index=cal,
        evaluation_index=ev,
    )
    # Candidates as read-only maps of their calibration rows (what study.greedy stages).
    files, maps = [], []
    for k in range(m):
        path = tmp_path / f"c{k}.f32"
        probs[k][cal].tofile(path)
        files.append(path)
        maps.append(np.memmap(path, dtype=np.float32, mode="r", shape=(len(cal), c)))

    class Rows:
        def __init__(self, k):
            self.k = k

        def __getitem__(self, rows):
            return maps[self.k] if rows is cal else probs[self.k][rows]

    got = greedy_forward_selection(
        [Rows(k) for k in range(m)],
        labels,
        start=2,
        pool=range(m),
        max_steps=9,
        calibration_index=cal,
        evaluation_index=ev,
        after_use=release_pages,
    )
    assert got.members == expected.members
    np.testing.assert_array_equal(got.calibration_correct, expected.calibration_correct)
    np.testing.assert_array_equal(got.evaluation_accuracy, expected.evaluation_accuracy)
    assert got.kept == expected.kept
    if sys.platform.startswith("linux"):
        # Every page was touched (precompute), then dropped after use.
        assert all(_mapped_rss_kib(path) == 0 for path in files)


def test_memory_map_detection(tmp_path):
    path = tmp_path / "x.f32"
    np.arange(4096, dtype=np.float32).tofile(path)
    shared = np.memmap(path, dtype=np.float32, mode="r", shape=(8, 512))
    assert memory_map(np.ascontiguousarray(np.asarray(shared)[2:4]).reshape(-1)) is not None
    assert memory_map(np.memmap(path, dtype=np.float32, mode="c", shape=(8, 512))) is None
    assert memory_map(np.zeros(3)) is None


def test_staged_rows_serve_the_map_for_calibration_rows_only():
    from zoolens.study.greedy import _StagedRows

    class Source:
        def __getitem__(self, rows):
            return ("read", tuple(np.asarray(rows)))

    cal = np.array([1, 4, 6])
    staged = np.zeros((3, 2), dtype=np.float32)
    rows = _StagedRows(Source(), cal, staged)
    assert rows[cal] is staged and rows[cal.copy()] is staged
    assert rows[np.array([0, 2])] == ("read", (0, 2))


def test_staging_writes_the_in_memory_values(tmp_path):
    from zoolens.study.greedy import staged_pool

    rng = np.random.default_rng(0)
    arrays = [rng.random((10, 5), dtype=np.float32) for _ in range(3)]
    cal = np.array([0, 3, 7])
    with staged_pool(arrays, cal, 5, tmp_path) as staged:
        for array, model in zip(arrays, staged):
            np.testing.assert_array_equal(model[cal], array[cal])
            np.testing.assert_array_equal(model[np.array([1])], array[[1]])
        assert len(list(tmp_path.iterdir())) == 1
    assert not list(tmp_path.iterdir())


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__])
