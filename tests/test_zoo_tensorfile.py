"""zoolens.zoo.tensorfile: safetensors written deterministically and read with checked
offsets. The safetensors library is the oracle for the format: it reads what we write, and
we read what it writes."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import save_file

from zoolens.errors import ZooCorruptedError
from zoolens.zoo.tensorfile import argmax_rows, memmap_tensor, read_header, write_tensors


def _tensors() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "logits": rng.normal(size=(7, 3)).astype(np.float32),
        "embeddings": rng.normal(size=(7, 2)).astype(np.float16),
        "decisions": rng.integers(0, 3, 7),
        "mask": np.array([True, False]),
        "empty": np.zeros((0, 4), np.float32),
    }


def test_written_files_are_read_by_the_library_and_by_us(tmp_path: Path) -> None:
    file = tmp_path / "a.safetensors"
    tensors = _tensors()
    write_tensors(file, tensors, {"kind": "logits", "zoolens_format": "1"})
    with safe_open(str(file), framework="numpy") as fh:
        assert fh.metadata() == {"kind": "logits", "zoolens_format": "1"}
        for name, arr in tensors.items():
            got = fh.get_tensor(name)
            assert got.dtype == arr.dtype and np.array_equal(got, arr)
    start, header = read_header(file, "m")
    for name, arr in tensors.items():
        assert np.array_equal(memmap_tensor(file, start, header[name]), arr)


def test_library_files_are_read_by_us(tmp_path: Path) -> None:
    file = tmp_path / "lib.safetensors"
    tensors = _tensors()
    save_file(tensors, str(file), metadata={"b": "2", "a": "1"})
    start, header = read_header(file, "m")
    for name, arr in tensors.items():
        assert np.array_equal(memmap_tensor(file, start, header[name]), arr)


def test_identical_data_gives_identical_bytes_whatever_the_dict_order(tmp_path: Path) -> None:
    tensors = _tensors()
    a, b = tmp_path / "a", tmp_path / "b"
    write_tensors(a, tensors, {"zoolens_format": "1", "kind": "logits"})
    write_tensors(b, dict(reversed(tensors.items())), {"kind": "logits", "zoolens_format": "1"})
    assert a.read_bytes() == b.read_bytes()
    # the library's own layout, except that metadata keys are sorted
    lib = tmp_path / "lib"
    save_file(tensors, str(lib), metadata={"kind": "logits"})
    write_tensors(a, tensors, {"kind": "logits"})
    assert a.read_bytes() == lib.read_bytes()


def _forge(tmp_path: Path, entries: dict, buffer: bytes, raw: bytes | None = None) -> Path:
    file = tmp_path / "forged.safetensors"
    text = raw if raw is not None else json.dumps(entries).encode()
    file.write_bytes(struct.pack("<Q", len(text)) + text + buffer)
    return file


F32 = {"dtype": "F32", "shape": [2]}


@pytest.mark.parametrize(
    "entries, buffer, match",
    [
        (
            {"a": {**F32, "data_offsets": [0, 8]}, "b": {**F32, "data_offsets": [4, 12]}},
            bytes(12),
            "overlaps the tensor before it",
        ),
        (
            {"a": {**F32, "data_offsets": [0, 8]}, "b": {**F32, "data_offsets": [12, 20]}},
            bytes(20),
            "leaves a hole",
        ),
        (
            {"a": {**F32, "data_offsets": [0, 8]}, "b": {**F32, "data_offsets": [0, 8]}},
            bytes(8),
            "overlaps",
        ),
        ({"a": {**F32, "data_offsets": [8, 16]}}, bytes(16), "leaves a hole"),
        ({"a": {**F32, "data_offsets": [0, 8]}}, bytes(4), "truncated"),
        ({"a": {**F32, "data_offsets": [0, 8]}}, bytes(9), "trailing bytes"),
        ({"a": {**F32, "data_offsets": [8, 0]}}, bytes(8), "do not hold shape"),
        ({"a": {**F32, "data_offsets": [0, 12]}}, bytes(12), "do not hold shape"),
        ({"a": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 0]}}, b"", "bad entry"),
        ({"a": {"dtype": "X9", "shape": [2], "data_offsets": [0, 8]}}, bytes(8), "bad entry"),
        ({"a": {**F32, "data_offsets": [0, 8.0]}}, bytes(8), "bad entry"),
        ({"__metadata__": {"k": 1}, "a": {**F32, "data_offsets": [0, 8]}}, bytes(8), "metadata"),
    ],
)
def test_malformed_offsets_are_refused(tmp_path: Path, entries, buffer, match) -> None:
    with pytest.raises(ZooCorruptedError, match=match):
        read_header(_forge(tmp_path, entries, buffer), "m")


def test_duplicate_keys_and_garbage_are_refused(tmp_path: Path) -> None:
    dup = (
        b'{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},'
        b'"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'
    )
    with pytest.raises(ZooCorruptedError, match="unreadable safetensors header"):
        read_header(_forge(tmp_path, {}, bytes(8), raw=dup), "m")
    with pytest.raises(ZooCorruptedError, match="unreadable"):
        read_header(_forge(tmp_path, {}, b"", raw=b"\xff\xfe"), "m")
    (tmp_path / "short").write_bytes(b"abc")
    with pytest.raises(ZooCorruptedError, match="no safetensors header"):
        read_header(tmp_path / "short", "m")
    (tmp_path / "long").write_bytes(struct.pack("<Q", 1 << 40) + b"{}")
    with pytest.raises(ZooCorruptedError, match="header length past the end"):
        read_header(tmp_path / "long", "m")


@pytest.mark.parametrize(
    "block_bytes,gap_bytes,map_min_bytes,sparsity",
    [
        (4 * 2**20, 32 * 2**10, 16 * 2**20, 2),  # the defaults: this small file is read
        (64, 16, 16 * 2**20, 2),
        (1, 1, 16 * 2**20, 2),
        (4 * 2**20, 32 * 2**10, 0, 2),  # sparse row sets gathered from a map of their span
        (64, 16, 0, 0),  # every row set gathered from a map
    ],
)
def test_positioned_reads_equal_the_memory_map(
    tmp_path: Path, monkeypatch, block_bytes, gap_bytes, map_min_bytes, sparsity
):
    """read_rows against indexing the memory map (the oracle), on dense, sparse, unsorted,
    repeated and negative row sets, slices with steps, for spans cut by size and by gaps,
    read or gathered from a map of the span (thin rows over a long span)."""
    import zoolens.zoo.tensorfile as tensorfile
    from zoolens.zoo.tensorfile import read_rows

    monkeypatch.setattr(tensorfile, "_READ_BLOCK_BYTES", block_bytes)
    monkeypatch.setattr(tensorfile, "_READ_GAP_BYTES", gap_bytes)
    monkeypatch.setattr(tensorfile, "_MAP_MIN_BYTES", map_min_bytes)
    monkeypatch.setattr(tensorfile, "_MAP_SPARSITY", sparsity)
    mapped_calls = []
    take_mapped = tensorfile._take_mapped
    monkeypatch.setattr(
        tensorfile, "_take_mapped", lambda *a: mapped_calls.append(1) or take_mapped(*a)
    )
    rng = np.random.default_rng(1)
    tensors = {
        "logits": rng.normal(size=(301, 17)).astype(np.float16),
        "decisions": rng.integers(0, 9, 301),
        "embeddings": rng.normal(size=(301, 3, 2)).astype(np.float32),
    }
    file = tmp_path / "m.safetensors"
    write_tensors(file, tensors, {})
    start, header = read_header(file, "m")
    index_sets = [
        np.arange(301),
        np.sort(rng.choice(301, 40, replace=False)),
        rng.integers(0, 301, 60),  # unsorted with repeats
        np.array([-1, 0, -301, 150]),
        np.array([], dtype=np.int64),
        np.array([7]),
    ]
    slices = [slice(None), slice(5, 90), slice(300, 301), slice(3, 200, 7), slice(10, 10)]
    for name in tensors:
        mapped = memmap_tensor(file, start, header[name])
        for rows in index_sets + slices:
            got = read_rows(file, start, header[name], rows)
            want = np.asarray(mapped[rows])
            assert got.dtype == want.dtype and got.shape == want.shape
            np.testing.assert_array_equal(got, want)
            assert got.flags.writeable and got.flags.c_contiguous
        for bad in (np.array([301]), np.array([0, -302])):  # as the map: IndexError
            with pytest.raises(IndexError):
                read_rows(file, start, header[name], bad)
    # which path ran: the map only where the thresholds send a row set there
    assert bool(mapped_calls) == (map_min_bytes == 0)


def test_entry_reads_equal_the_memory_map(tmp_path: Path) -> None:
    """read_entries against indexing the memory map (the oracle): scattered, unsorted and
    repeated entries, the first and last rows, rows far past the first mapping granule, in
    float16 and float32 (tensors after another one: a data offset that is not page-aligned);
    out-of-range rows raise IndexError as the map does."""
    from zoolens.zoo.tensorfile import read_entries

    rng = np.random.default_rng(2)
    tensors = {
        "a_first": rng.normal(size=(3, 5)).astype(np.float32),  # shifts what follows
        "f16": rng.normal(size=(9001, 13)).astype(np.float16),
        "f32": rng.normal(size=(9001, 13)).astype(np.float32),
    }
    file = tmp_path / "m.safetensors"
    write_tensors(file, tensors, {})
    start, header = read_header(file, "m")
    for name in ("f16", "f32"):
        mapped = memmap_tensor(file, start, header[name])
        for rows in (
            rng.integers(0, 9001, 500),
            np.array([0, 9000, 0]),
            np.array([8999, 9000]),
            np.array([4321]),
            np.array([], dtype=np.int64),
        ):
            cols = rng.integers(0, 13, len(rows))
            got = read_entries(file, start, header[name], rows, cols)
            want = np.asarray(mapped[rows, cols])
            assert got.dtype == want.dtype and got.shape == want.shape
            np.testing.assert_array_equal(got, want)
        for bad in (np.array([9001]), np.array([-1])):
            with pytest.raises(IndexError):
                read_entries(file, start, header[name], bad, np.array([0]))
        # a column out of range: numpy's IndexError, not a BufferError from closing the map
        # while the failed indexing's frame still held a view of it
        with pytest.raises(IndexError, match="out of bounds"):
            read_entries(file, start, header[name], np.array([5]), np.array([13]))


def test_positioned_reads_refuse_a_truncated_file(tmp_path: Path, monkeypatch) -> None:
    import zoolens.zoo.tensorfile as tensorfile
    from zoolens.zoo.tensorfile import read_rows

    file = tmp_path / "m.safetensors"
    write_tensors(file, {"logits": np.ones((50, 4), np.float32)}, {})
    start, header = read_header(file, "m")
    file.write_bytes(file.read_bytes()[:-100])  # cut after the header was checked
    with pytest.raises(ZooCorruptedError, match="truncated"):
        read_rows(file, start, header["logits"], np.array([49]))
    # and when thin rows would be gathered from a map of their span (never a SIGBUS)
    monkeypatch.setattr(tensorfile, "_MAP_MIN_BYTES", 0)
    with pytest.raises(ZooCorruptedError, match="truncated"):
        read_rows(file, start, header["logits"], np.array([0, 49]))
    # scattered entries come from the same kind of map (was a bare ValueError from mmap)
    with pytest.raises(ZooCorruptedError, match="truncated"):
        tensorfile.read_entries(file, start, header["logits"], np.array([49]), np.array([0]))


# Every float16 value, and the ones where integer keys and floats disagree or nearly do.
_EVERY_FLOAT16 = np.arange(2**16, dtype=np.uint16).view(np.float16)
_EDGES = np.array(
    [0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, -np.nan, 6e-8, -6e-8, 65504, -65504],
    np.float16,
)


def _torch_cases() -> list[bool]:
    """Whether torch is loaded, each case the process can be in: False always (numpy's
    casts), True where torch is installed (imported here, so as_float32 takes its cast)."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return [False]
    return [True, False]


@pytest.mark.parametrize("torch_loaded", _torch_cases())
@pytest.mark.parametrize(
    "pool",
    [
        _EVERY_FLOAT16,
        _EVERY_FLOAT16[~np.isnan(_EVERY_FLOAT16)],
        _EDGES,
        np.array([0.0, -0.0, -1.0], np.float16),
    ],
    ids=["all", "all-but-nan", "edges", "zeros"],
)
def test_float16_row_argmax_is_numpys(monkeypatch, pool: np.ndarray, torch_loaded: bool) -> None:
    """Oracle: numpy's argmax on a float32 copy (float16 -> float32 is exact): the lowest
    index on ties (+0 and -0 tie), the first NaN of a row with one. With torch loaded a
    writeable block takes torch's float32 cast; a read-only one (a map), and every block
    without torch, the integer keys, whose blocks with a NaN take the float32 fallback
    (reversed views included); every path is checked."""
    import sys

    if not torch_loaded:
        monkeypatch.delitem(sys.modules, "torch", raising=False)
    rng = np.random.default_rng(0)
    paths = set()
    for _ in range(400):
        block = rng.choice(pool, size=(int(rng.integers(1, 30)), int(rng.integers(1, 9))))
        if rng.random() < 0.5:
            block = block[:, ::-1]  # not contiguous
        if rng.random() < 0.5:
            block.flags.writeable = False  # as a read-only map's rows
        expected = np.argmax(block.astype(np.float32), axis=1)
        got = argmax_rows(block)
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, expected)
        paths.add((bool(np.isnan(block).any()), block.flags.writeable))
    nan = {False, True} if np.isnan(pool).any() else {False}
    assert paths == {(has_nan, writeable) for has_nan in nan for writeable in (False, True)}


@pytest.mark.parametrize(
    "torch_state", ["blocked", *(["loaded"] if True in _torch_cases() else [])]
)
def test_float16_argmax_path_follows_torch_state(monkeypatch, torch_state: str) -> None:
    """Which path decides a NaN-free float16 block: torch's float32 cast (through
    ``as_float32``) only when torch is loaded and the block writeable; the integer keys when
    torch is blocked (``sys.modules["torch"] = None``, as some environments do to keep it
    out: numpy's float16 cast would be the slow path) or the block read-only. Same answers
    either way (oracle: numpy's argmax on a float32 copy)."""
    import sys

    import zoolens.zoo.tensorfile as tensorfile

    if torch_state == "blocked":
        monkeypatch.setitem(sys.modules, "torch", None)
    cast = []
    real = tensorfile.as_float32
    monkeypatch.setattr(tensorfile, "as_float32", lambda a: cast.append(a.shape) or real(a))
    rng = np.random.default_rng(4)
    block = rng.normal(size=(40, 13)).astype(np.float16)
    expected = np.argmax(block.astype(np.float32), axis=1)
    np.testing.assert_array_equal(argmax_rows(block), expected)
    assert cast == ([(40, 13)] if torch_state == "loaded" else [])
    cast.clear()
    block.flags.writeable = False
    np.testing.assert_array_equal(argmax_rows(block), expected)
    assert cast == []


def test_row_argmax_of_other_dtypes_is_numpys() -> None:
    rng = np.random.default_rng(1)
    for dtype in (np.float32, np.float64, np.int16):
        block = rng.integers(-3, 3, size=(50, 7)).astype(dtype)
        np.testing.assert_array_equal(argmax_rows(block), np.argmax(block, axis=1))


def test_float32_cast_is_numpys_with_and_without_torch(monkeypatch) -> None:
    """Oracle: numpy's float16 -> float32 cast (exact), on every float16 value, by torch's
    cast (when the process has torch loaded) and by numpy's (when it has not)."""
    import sys

    from zoolens.zoo.tensorfile import as_float32

    values = _EVERY_FLOAT16.copy()
    layouts = [  # C order; reversed rows; a column reversed along its length-1 axis
        values.reshape(256, 256),
        values.reshape(256, 256)[::-1],
        values.reshape(-1, 1)[:, ::-1],
    ]
    for torch_loaded in _torch_cases():
        if not torch_loaded:
            monkeypatch.delitem(sys.modules, "torch", raising=False)
        for array in layouts:
            expected = array.astype(np.float32)
            got = as_float32(array)
            assert got.dtype == np.float32
            # bit for bit but NaN payloads (NaN stays NaN: a model's NaN scores are refused)
            finite = ~np.isnan(expected)
            np.testing.assert_array_equal(
                got[finite].view(np.uint32), expected[finite].view(np.uint32)
            )
            np.testing.assert_array_equal(np.isnan(got), ~finite)
    float32 = np.ones((3, 2), np.float32)
    assert as_float32(float32) is float32
