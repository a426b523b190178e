"""Fashion-MNIST loading: the IDX reader on hand-made files, the data sources, bad input."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from zoolens.demo import data as demo_data
from zoolens.demo.data import DEBIAN_DIR, load_fashion_mnist, read_idx
from zoolens.errors import ZoolensError


def _write_idx(path: Path, array: np.ndarray, *, gz: bool = True) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", s) for s in array.shape)
    payload = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    if gz:
        with gzip.open(path, "wb") as handle:
            handle.write(payload)
    else:
        path.write_bytes(payload)


def test_read_idx_hand_fixture(tmp_path):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    _write_idx(tmp_path / "a.gz", images)
    np.testing.assert_array_equal(read_idx(tmp_path / "a.gz"), images)
    labels = np.array([9, 0, 3], dtype=np.uint8)
    _write_idx(tmp_path / "b", labels, gz=False)
    np.testing.assert_array_equal(read_idx(tmp_path / "b"), labels)


def test_read_idx_refuses_bad_magic_and_truncation(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x00\x00\x0d\x01\x00\x00\x00\x01\x00")
    with pytest.raises(ZoolensError, match="bad magic"):
        read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(bytes([0, 0, 8, 1]) + struct.pack(">I", 10) + b"\x01\x02")
    with pytest.raises(ZoolensError, match="truncated"):
        read_idx(tmp_path / "short")


def test_data_folder_without_the_dataset_says_how_to_get_it(tmp_path):
    (tmp_path / "readme.txt").write_text("nothing here")
    with pytest.raises(ZoolensError, match="apt-get install dataset-fashion-mnist"):
        load_fashion_mnist(tmp_path)
    with pytest.raises(ZoolensError, match="no such folder"):
        load_fashion_mnist(tmp_path / "absent")


def test_wrong_shapes_are_refused(tmp_path):
    for key, stem in demo_data.FILES.items():
        shape = (5, 28, 28) if "images" in key else (5,)
        _write_idx(tmp_path / f"{stem}.gz", np.zeros(shape, dtype=np.uint8))
    with pytest.raises(ZoolensError, match="shape"):
        load_fashion_mnist(tmp_path)


def test_nothing_found_anywhere_gives_one_clear_line(monkeypatch, tmp_path):
    monkeypatch.setattr(demo_data, "DEBIAN_DIR", tmp_path / "no-debian")
    monkeypatch.delenv("ZOOLENS_FASHION_MNIST", raising=False)
    with pytest.raises(ZoolensError) as info:
        load_fashion_mnist(allow_download=False)
    message = str(info.value)
    assert "\n" not in message and "--data" in message and "dataset-fashion-mnist" in message


@pytest.mark.skipif(not DEBIAN_DIR.is_dir(), reason="Debian dataset-fashion-mnist not installed")
def test_debian_files_are_the_real_dataset():
    data = load_fashion_mnist()
    assert data.train_images.shape == (60000, 28, 28)
    assert data.test_images.shape == (10000, 28, 28)
    # Published facts: 6,000 training and 1,000 test images per class; first test labels.
    np.testing.assert_array_equal(np.bincount(data.train_labels), [6000] * 10)
    np.testing.assert_array_equal(np.bincount(data.test_labels), [1000] * 10)
    assert data.test_labels[:10].tolist() == [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]
    # --data with the same folder reads the same arrays
    again = load_fashion_mnist(DEBIAN_DIR)
    assert again.fingerprint == data.fingerprint
    sub = data.subsample(1000, seed=0)
    assert len(sub) == 1000 and np.all(np.diff(sub) > 0)
