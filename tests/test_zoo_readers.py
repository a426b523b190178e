"""The reader registry (``zoo.readers``): one reader per suffix, looked up case-insensitively;
a new format is one ``Reader`` subclass and one ``register_reader`` call, and every public
import function then reads it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from zoolens.errors import ZoolensError
from zoolens.zoo import readers
from zoolens.zoo.importers import load_outputs
from zoolens.zoo.readers.arrays import NpyReader
from zoolens.zoo.readers.base import Loaded, Reader, Request
from zoolens.zoo.readers.kinds import resolve_kind


def test_shipped_suffixes_in_message_order() -> None:
    assert readers.SUPPORTED_SUFFIXES == (
        ".npy", ".npz", ".safetensors", ".pt", ".pth", ".csv", ".tsv", ".txt", ".json",
    )  # fmt: skip


def test_lookup_is_case_insensitive_and_checks_the_file(tmp_path: Path) -> None:
    f = tmp_path / "M.NPY"
    np.save(tmp_path / "m.npy", np.zeros((3, 2)))
    (tmp_path / "m.npy").rename(f)
    assert isinstance(readers.reader_for(f), NpyReader)
    with pytest.raises(ZoolensError, match="no such file"):
        readers.reader_for(tmp_path / "absent.npy")
    (tmp_path / "x.parquet").write_bytes(b"x")
    with pytest.raises(ZoolensError, match=r"unsupported file type \.parquet; supported: \.npy"):
        readers.reader_for(tmp_path / "x.parquet")
    (tmp_path / "empty.csv").write_bytes(b"")
    with pytest.raises(ZoolensError, match="file is empty"):
        readers.reader_for(tmp_path / "empty.csv")


def test_one_reader_per_suffix() -> None:
    with pytest.raises(ValueError, match="already registered"):
        readers.register_reader(NpyReader(), ".npy")
    with pytest.raises(ValueError, match="lower case"):
        readers.register_reader(NpyReader(), ".NPX")


class _SpaceSeparated(Reader):
    """A toy format: rows of whitespace-separated numbers."""

    def outputs(self, path: Path, request: Request) -> Loaded:
        self.refuse_side_columns(path, request)
        arr = np.loadtxt(path, ndmin=2)
        return resolve_kind(
            path, arr, request.kind, request.num_classes, request.topk_layout, names=None
        )


def test_a_registered_format_is_read_by_the_public_functions(tmp_path: Path) -> None:
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    f = tmp_path / "m.ssv"
    np.savetxt(f, probs)
    readers.register_reader(_SpaceSeparated(), ".ssv")
    try:
        loaded = load_outputs(f, num_classes=3, kind="probs")
    finally:
        readers._READERS.pop(".ssv")
    assert loaded.kind == "probs"
    np.testing.assert_array_equal(loaded.arrays["probs"], probs)  # exact: written with %.18e
