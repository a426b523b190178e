"""Greedy selection over memory-mapped candidates and over lazy candidates (a pool larger
than the memory budget, study.greedy).

Oracle: the same selection on in-memory arrays (itself tested against a plain Caruana loop in
tests/test_measure_ensemble.py and tests/test_study_analyze.py); the results must be identical.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from zoolens.errors import ZoolensError
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


class _Zoo:
    """A zoo reader stand-in: stored scores (any float dtype) by model and row."""

    def __init__(self, z):
        self.z, self.reads = z, 0

    def stored_scores(self, name, rows=None):
        self.reads += 1
        return self.z[name][rows]

    def stored_entries(self, name, rows, classes):
        self.reads += 1
        return self.z[name][rows, classes]


def _Source(z, temperature, combine):
    from zoolens.study.greedy import _CalibratedRows

    return _CalibratedRows(_Zoo({"m": z}), "m", temperature, combine)


@pytest.mark.parametrize("kept_rows", [0, 120, 300])
@pytest.mark.parametrize("combine", ["probs", "logits"])
@pytest.mark.parametrize("num_classes,dtype", [(13, np.float16), (40, np.float32), (7, np.float64)])
def test_lazy_candidate_equals_the_calibrated_rows_bit_for_bit(
    combine, num_classes, dtype, kept_rows
):
    """Every way the selection reads a lazy candidate gives the in-memory array's bits,
    with none, some or all of its rows' stored scores kept in memory."""
    from zoolens.measure.topk import top1_and_second
    from zoolens.study.greedy import KeptRows, _LazyCandidate

    rng = np.random.default_rng(num_classes)
    z = (rng.normal(size=(500, num_classes)) * 6).astype(dtype)
    cal = np.sort(rng.choice(500, 300, replace=False))
    source = _Source(z, 1.37, combine)
    whole = source[cal]
    kept = KeptRows.from_order(rng.permutation(300), kept_rows * num_classes * z.itemsize)
    lazy = _LazyCandidate(source, cal, num_classes, kept=kept)
    assert lazy.kept_count == kept_rows
    assert lazy.shape == whole.shape and lazy.dtype == whole.dtype
    np.testing.assert_array_equal(np.asarray(lazy), whole)
    np.testing.assert_array_equal(np.array(lazy, dtype=np.float64), whole.astype(np.float64))
    for got, want in zip(lazy.top1_and_second(), top1_and_second(whole)):
        np.testing.assert_array_equal(got, want)
    for _ in range(5):  # cache hits, misses and repeated rows mixed
        flat = rng.integers(0, whole.size, 400)
        np.testing.assert_array_equal(lazy.take(flat), whole.take(flat))
    rows = np.array([4, 0, 4, 299])
    np.testing.assert_array_equal(lazy[rows], whole[rows])
    np.testing.assert_array_equal(lazy[10:20], whole[10:20])
    np.testing.assert_array_equal(lazy[7], whole[7])


def test_lazy_candidate_serves_the_running_class_from_its_cache():
    from zoolens.study.greedy import _LazyCandidate

    rng = np.random.default_rng(3)
    z = rng.normal(size=(50, 9)).astype(np.float32)
    source = _Source(z, 1.0, "probs")
    lazy = _LazyCandidate(source, np.arange(50), 9)
    top = np.argmax(z, axis=1)
    flat = np.arange(50) * 9 + top
    reads = source.zoo.reads
    first = lazy.take(flat)
    assert source.zoo.reads == reads + 1  # one read of the rows it misses
    np.testing.assert_array_equal(lazy.take(flat), first)
    assert source.zoo.reads == reads + 1  # then served from the cache


def test_lazy_candidate_reads_only_the_rows_it_did_not_keep():
    """Entries and rows on kept rows come from memory; a request that mixes kept and other
    rows reads just the others (one read), and the values are the array's."""
    from zoolens.study.greedy import KeptRows, _LazyCandidate

    rng = np.random.default_rng(5)
    n, c = 60, 11
    z = rng.normal(size=(n, c)).astype(np.float16)
    source = _Source(z, 0.9, "probs")
    whole = source[np.arange(n)]
    order = rng.permutation(n)
    lazy = _LazyCandidate(
        source, np.arange(n), c, kept=KeptRows.from_order(order, 20 * c * z.itemsize)
    )
    kept, other = np.sort(order[:20]), np.sort(order[20:])
    reads = source.zoo.reads
    flat = kept * c + rng.integers(0, c, len(kept))
    np.testing.assert_array_equal(lazy.take(flat), whole.take(flat))
    np.testing.assert_array_equal(lazy[kept], whole[kept])
    assert source.zoo.reads == reads  # nothing read
    mixed = np.sort(np.concatenate([kept[:5], other[:5]]))
    flat = mixed * c + (np.arange(len(mixed)) % c)
    np.testing.assert_array_equal(lazy.take(flat), whole.take(flat))
    assert source.zoo.reads == reads + 1  # one read, of the five rows not kept
    np.testing.assert_array_equal(lazy[mixed], whole[mixed])
    assert source.zoo.reads == reads + 2


def test_kept_rows_refuse_an_order_that_is_not_a_permutation():
    """A repeated or missing row would make a row serve another row's scores."""
    from zoolens.study.greedy import KeptRows

    kept = KeptRows.from_order(np.array([2, 0, 1]), 10)
    assert kept.rank.tolist() == [1, 2, 0] and kept.count(4) == 2
    for order in ([0, 0, 1], [0, 1, 3], [-1, 0, 1]):
        with pytest.raises(ZoolensError, match="not a permutation"):
            KeptRows.from_order(np.array(order), 10)


def test_disagreement_order_against_counting_each_row(monkeypatch):
    """The rows by the count of their most frequent prediction (smallest first, ties in row
    order), against collections.Counter row by row."""
    from collections import Counter

    from zoolens.study import greedy as greedy_module
    from zoolens.study.greedy import disagreement_order

    rng = np.random.default_rng(8)
    for models, rows, classes in [(1, 5, 3), (7, 200, 4), (30, 500, 12), (5, 0, 3)]:
        predictions = rng.integers(-1, classes, size=(models, rows))  # -1: an abstention
        most = [Counter(predictions[:, j].tolist()).most_common(1)[0][1] for j in range(rows)]
        want = sorted(range(rows), key=lambda j: (most[j], j))
        np.testing.assert_array_equal(disagreement_order(predictions), want)
    assert disagreement_order(np.zeros((0, 4), dtype=np.int64)).tolist() == [0, 1, 2, 3]
    # listed columns and models, in blocks of columns: the same order as on the copy
    predictions = rng.integers(0, 6, size=(9, 300))
    columns, models = np.sort(rng.choice(300, 120, replace=False)), np.array([0, 2, 3, 7, 8])
    want = disagreement_order(predictions[models][:, columns])
    np.testing.assert_array_equal(disagreement_order(predictions, columns, models), want)
    monkeypatch.setattr(greedy_module, "_ORDER_BLOCK", 17)
    np.testing.assert_array_equal(disagreement_order(predictions, columns, models), want)


def test_lazy_pool_selection_equals_the_in_memory_selection():
    """greedy_forward_selection over lazy candidates (study.greedy.lazy_pool) against the
    same selection over the calibrated arrays: same members, accuracies and correctness."""
    from zoolens.study.greedy import KeptRows, lazy_pool

    rng = np.random.default_rng(11)
    m, n, c = 7, 400, 12
    z = (rng.normal(size=(m, n, c)) * 3).astype(np.float16)
    z[:, :, 0] += 1.5
    labels = rng.integers(0, c, n)
    cal, ev = np.arange(0, n, 2), np.arange(1, n, 2)
    select = dict(start=1, pool=range(m), max_steps=9, calibration_index=cal, evaluation_index=ev)
    for combine in ("probs", "logits"):
        sources = [_Source(z[k], 0.8 + 0.1 * k, combine) for k in range(m)]
        eager = greedy_forward_selection([s[np.arange(n)] for s in sources], labels, **select)
        # no stored rows kept, half of them, all of them
        for kept_rows in (0, len(cal) // 2, len(cal)):
            kept = KeptRows.from_order(rng.permutation(len(cal)), kept_rows * c * 2)
            lazy = greedy_forward_selection(lazy_pool(sources, cal, c, kept=kept), labels, **select)
            assert lazy.members == eager.members
            np.testing.assert_array_equal(lazy.calibration_correct, eager.calibration_correct)
            np.testing.assert_array_equal(lazy.evaluation_correct, eager.evaluation_correct)


def test_prefixes_from_the_evaluation_pass_equal_the_selection_s_own():
    """analyze reports each greedy prefix from the evaluation pass's calibrated rows
    (study.stream.greedy_prefix_correct, row blocks side by side); the selection reading
    its evaluation rows itself (greedy_forward_selection) gives the same correctness,
    repeats and ties included."""
    from concurrent.futures import ThreadPoolExecutor

    from zoolens.measure.fused import fused_rows
    from zoolens.study.stream import greedy_prefix_correct

    rng = np.random.default_rng(5)
    m, n, c = 6, 301, 9
    z = (rng.normal(size=(m, n, c)) * 2).astype(np.float16)
    z[:, :, 3] += 1.0
    z[:, :40] = z[0, :40]  # identical rows: ties in every running sum
    labels = rng.integers(0, c, n)
    cal, ev = np.arange(0, n, 3), np.setdiff1d(np.arange(n), np.arange(0, n, 3))
    temperatures = [0.7 + 0.15 * k for k in range(m)]
    sources = [_Source(z[k], temperatures[k], "probs") for k in range(m)]
    result = greedy_forward_selection(
        [s[np.arange(n)] for s in sources],
        labels,
        start=2,
        pool=range(m),
        max_steps=8,
        calibration_index=cal,
        evaluation_index=ev,
    )
    assert len(set(result.members)) < len(result.members)  # a repeat is exercised
    block = np.stack(
        [fused_rows(z[k][ev], labels[ev], temperatures[k]).ensemble_input for k in range(m)]
    )
    with ThreadPoolExecutor(2) as pool:
        got = greedy_prefix_correct(block, result.members, labels[ev], pool.map)
    np.testing.assert_array_equal(got, result.evaluation_correct)


def test_a_failing_evaluation_read_stops_the_selection():
    """The evaluation rows are added on a thread of their own; a read that fails there is
    the selection's error (raised, not lost), and no step after it is reported."""

    class Failing:
        """A model whose evaluation rows cannot be read (its calibration rows can)."""

        def __init__(self, rows):
            self.rows = rows

        def __getitem__(self, index):
            return self.rows[index]

        def add_rows(self, total, rows):
            raise RuntimeError("cannot read the evaluation rows")

    rng = np.random.default_rng(1)
    m, n, c = 4, 60, 5
    probs = rng.dirichlet(np.ones(c), size=(m, n)).astype(np.float32)
    labels = rng.integers(0, c, n)
    models = [probs[0], Failing(probs[1]), Failing(probs[2]), Failing(probs[3])]
    with pytest.raises(RuntimeError, match="cannot read the evaluation rows"):
        greedy_forward_selection(
            models,
            labels,
            start=0,
            pool=[1, 2, 3],
            max_steps=5,
            calibration_index=np.arange(30),
            evaluation_index=np.arange(30, n),
        )


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__])
