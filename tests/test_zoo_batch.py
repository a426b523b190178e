"""``Zoo.batch``: many adds, one manifest write, all or nothing."""

from __future__ import annotations

import numpy as np
import pytest

from zoolens.errors import ZoolensError
from zoolens.zoo import store
from zoolens.zoo.store import MODELS_DIR, Zoo


def _zoo(path, n=30, c=4):
    labels = np.random.default_rng(0).integers(0, c, n)
    return Zoo.create(path, labels, calibration_fraction=0.2, seed=0)


def _logits(k, n=30, c=4):
    return np.random.default_rng(k).normal(size=(n, c)).astype(np.float32)


def _entries(zoo):
    """Manifest entries without the times of writing (they differ run to run)."""
    return {
        name: {k: v for k, v in entry.items() if k not in ("added_at", "mtime_ns")}
        for name, entry in zoo.manifest["models"].items()
    }


def test_a_batch_equals_one_add_at_a_time_with_one_manifest_write(tmp_path, monkeypatch):
    one = _zoo(tmp_path / "one")
    for k in range(12):
        one.add(f"m{k}", logits=_logits(k), card={"arch": f"a{k % 3}"})
    writes = []
    real = store._write_manifest
    monkeypatch.setattr(store, "_write_manifest", lambda *a: (writes.append(1), real(*a)))
    batched = _zoo(tmp_path / "batched")
    writes.clear()
    with batched.batch() as zoo:
        assert zoo is batched
        for k in range(12):
            batched.add(f"m{k}", logits=_logits(k), card={"arch": f"a{k % 3}"})
        assert batched.models == [f"m{k}" for k in range(12)]  # visible inside the block
    assert len(writes) == 1
    reopened = Zoo.open(tmp_path / "batched")
    assert _entries(reopened) == _entries(one)
    for k in range(12):
        np.testing.assert_array_equal(reopened.scores(f"m{k}"), one.scores(f"m{k}"))
    reopened.verify()  # every file's hash as the manifest records it
    assert reopened.orphan_files() == []


def test_a_failing_batch_leaves_the_zoo_as_it_was(tmp_path):
    zoo = _zoo(tmp_path / "z")
    zoo.add("kept", logits=_logits(0))
    before = sorted(p.name for p in (tmp_path / "z" / MODELS_DIR).iterdir())
    with pytest.raises(RuntimeError, match="disk on fire"):
        with zoo.batch():
            zoo.add("new1", logits=_logits(1))
            zoo.add("kept", logits=_logits(2), replace=True)
            raise RuntimeError("disk on fire")
    assert zoo.models == ["kept"]
    assert sorted(p.name for p in (tmp_path / "z" / MODELS_DIR).iterdir()) == before
    reopened = Zoo.open(tmp_path / "z")
    assert reopened.models == ["kept"]
    np.testing.assert_array_equal(reopened.scores("kept"), _logits(0))
    # a bad model inside a batch: its one-line error, and nothing of the batch is kept
    with pytest.raises(ZoolensError, match="new2"):
        with zoo.batch():
            zoo.add("ok", logits=_logits(3))
            zoo.add("new2", logits=np.zeros((5, 4), dtype=np.float32))
    assert Zoo.open(tmp_path / "z").models == ["kept"]


def test_replacing_inside_a_batch_removes_the_old_file_once_written(tmp_path):
    zoo = _zoo(tmp_path / "z")
    zoo.add("m", logits=_logits(0))
    old = zoo.manifest["models"]["m"]["file"]
    with zoo.batch():
        zoo.add("m", logits=_logits(1), replace=True)
        assert (tmp_path / "z" / old).exists()  # kept until the manifest no longer names it
    assert not (tmp_path / "z" / old).exists()
    np.testing.assert_array_equal(Zoo.open(tmp_path / "z").scores("m"), _logits(1))


def test_other_changes_and_nested_batches_are_refused_inside(tmp_path):
    zoo = _zoo(tmp_path / "z")
    zoo.add("m", logits=_logits(0))
    with zoo.batch():
        with pytest.raises(ZoolensError, match="only add"):
            zoo.remove("m")
        with pytest.raises(ZoolensError, match="already inside"):
            with zoo.batch():
                pass
        with pytest.raises(ZoolensError, match="already in the zoo"):
            zoo.add("m", logits=_logits(1))
    assert Zoo.open(tmp_path / "z").models == ["m"]
    zoo.remove("m")  # allowed again after the block
    assert zoo.models == []


def test_rolling_back_keeps_a_file_the_batch_rewrote_with_its_original_content(tmp_path):
    """A batch that replaces a model and then puts its first outputs back rewrites the
    original file (same name, same hash); a rollback must not delete it."""
    zoo = _zoo(tmp_path / "z")
    zoo.add("a", logits=_logits(0))
    with pytest.raises(RuntimeError):
        with zoo.batch():
            zoo.add("a", logits=_logits(1), replace=True)
            zoo.add("a", logits=_logits(0), replace=True)
            raise RuntimeError("stop")
    reopened = Zoo.open(tmp_path / "z")
    np.testing.assert_array_equal(reopened.scores("a"), _logits(0))
    reopened.verify()
    assert reopened.orphan_files() == []


def test_reads_and_reload_inside_a_batch(tmp_path):
    zoo = _zoo(tmp_path / "z")
    zoo.add("a", logits=_logits(0))
    other = Zoo.open(tmp_path / "z")
    with other.batch():
        assert other.models == ["a"]  # the manifest as the batch read it
        other.add("b", logits=_logits(1))
        np.testing.assert_array_equal(other.scores("b"), _logits(1))
        with pytest.raises(ZoolensError, match="cannot reload"):
            other.reload()
    zoo.reload()
    assert zoo.models == ["a", "b"]
