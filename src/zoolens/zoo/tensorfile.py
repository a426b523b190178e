"""Safetensors files, read lazily through a memory map and written deterministically.

The format (https://github.com/huggingface/safetensors, "Format"): an 8-byte little-endian
header length n, n bytes of a UTF-8 JSON object ``{name: {"dtype", "shape",
"data_offsets": [begin, end]}, "__metadata__": {str: str}}``, then the byte buffer; offsets
are relative to the buffer's start. The buffer must be covered exactly: the tensors, sorted
by ``begin``, start at 0, each one begins where the previous ends (ordered and disjoint, no
holes) and the last ends at the end of the file (in bounds). ``read_header`` checks all of
this, so a memory map can never reach past a tensor into its neighbour or past the file.

The library's own reader (``safe_open``) copies every slice it serves and cannot take an
index array, so the zoo maps the file itself: reading rows ``a:b`` or ``rows[idx]`` touches
only those rows. ``write_tensors`` writes the layout the library writes (tensors by
decreasing alignment, then by name; the header padded with spaces to a multiple of 8) with
the metadata keys sorted, so identical data always gives identical bytes (the library's
``save_file`` orders metadata keys by a hash seed, so its output differs run to run).
"""

from __future__ import annotations

import json
import mmap
import os
import struct
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from zoolens.errors import ZooCorruptedError

DTYPE_CODES = {
    "F64": np.float64,
    "F32": np.float32,
    "F16": np.float16,
    "I64": np.int64,
    "I32": np.int32,
    "I16": np.int16,
    "I8": np.int8,
    "U8": np.uint8,
    "BOOL": np.bool_,
}
_CODE_OF = {np.dtype(t): code for code, t in DTYPE_CODES.items()}
MAX_HEADER_BYTES = 100 << 20
METADATA_KEY = "__metadata__"


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise ValueError("a key occurs twice in the header")
    return out


def read_header(path: Path, model: str) -> tuple[int, dict[str, Any]]:
    """(data_start, header) of a safetensors file: ``data_start`` is the file offset of the
    byte buffer; ZooCorruptedError (one line naming ``model`` and the file) on anything
    malformed: a short or overlong header, bad JSON, a duplicate key, an unknown dtype, a
    tensor whose size disagrees with its shape, offsets out of order, overlapping, leaving
    a hole or reaching past the end of the file."""
    where = f"model {model!r}: file {path}"
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            raw_len = fh.read(8)
            if len(raw_len) < 8:
                raise ZooCorruptedError(f"{where} is truncated (no safetensors header)")
            (n,) = struct.unpack("<Q", raw_len)
            if n > min(size - 8, MAX_HEADER_BYTES):
                raise ZooCorruptedError(
                    f"{where} is truncated or not a safetensors file (header length past the end)"
                )
            header = json.loads(fh.read(n).decode("utf-8"), object_pairs_hook=_no_duplicate_keys)
    except FileNotFoundError:
        raise ZooCorruptedError(f"{where} is missing") from None
    except ZooCorruptedError:  # a ValueError too: keep its own message
        raise
    except (UnicodeDecodeError, ValueError):  # json.JSONDecodeError is a ValueError
        raise ZooCorruptedError(f"{where} is corrupted (unreadable safetensors header)") from None
    if not isinstance(header, dict):
        raise ZooCorruptedError(f"{where} is corrupted (bad safetensors header)")
    data_start = 8 + n
    metadata = header.get(METADATA_KEY, {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise ZooCorruptedError(
            f"{where} is corrupted (safetensors metadata must map strings to strings)"
        )
    spans: list[tuple[int, int, str]] = []
    for key, info in header.items():
        if key == METADATA_KEY:
            continue
        try:
            dtype = np.dtype(DTYPE_CODES[info["dtype"]])
            shape = info["shape"]
            offsets = info["data_offsets"]
            if not (
                isinstance(shape, list)
                and isinstance(offsets, list)
                and len(offsets) == 2
                and all(type(v) is int and v >= 0 for v in shape + offsets)
            ):
                raise ValueError
            begin, end = offsets
            count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        except (KeyError, TypeError, ValueError):
            raise ZooCorruptedError(
                f"{where} is corrupted (bad entry {key!r} in the safetensors header)"
            ) from None
        if end < begin or end - begin != count * dtype.itemsize:
            raise ZooCorruptedError(
                f"{where} is corrupted (tensor {key!r}: offsets "
                f"{begin}..{end} do not hold shape {shape} of "
                f"{info['dtype']})"
            )
        spans.append((begin, end, key))
    position = 0
    for begin, end, key in sorted(spans):
        if begin != position:
            what = "overlaps the tensor before it" if begin < position else "leaves a hole"
            raise ZooCorruptedError(
                f"{where} is corrupted (tensor {key!r} {what}: offsets "
                "must be ordered and disjoint)"
            )
        position = end
    if data_start + position != size:
        what = "truncated" if data_start + position > size else "corrupted (trailing bytes)"
        raise ZooCorruptedError(
            f"{where} is {what}: the tensors end at byte "
            f"{data_start + position}, the file has {size}"
        )
    return data_start, header


def memmap_tensor(path: Path, data_start: int, info: Mapping[str, Any]) -> np.ndarray:
    """A read-only memory map of one tensor (``info``: its entry in a header that
    ``read_header`` checked)."""
    dtype = np.dtype(DTYPE_CODES[info["dtype"]]).newbyteorder("<")
    shape = tuple(int(v) for v in info["shape"])
    begin = int(info["data_offsets"][0])
    if int(np.prod(shape, dtype=np.int64)) == 0:
        return np.empty(shape, dtype=dtype)
    return np.memmap(path, dtype=dtype, mode="r", offset=data_start + begin, shape=shape)


# Positioned reads: one read covers consecutive wanted rows up to this many bytes, and a
# run of unwanted rows longer than _READ_GAP_BYTES is skipped rather than read.
_READ_BLOCK_BYTES = 4 * 2**20
_READ_GAP_BYTES = 32 * 2**10
# Rows spread thinly over a long span (fewer than one in _MAP_SPARSITY of its rows wanted, the
# span at least _MAP_MIN_BYTES: a calibration split's rows, one in five) are gathered from a
# memory map of the span instead: the reads above would copy every row between them (five
# times the bytes wanted), a map touches only the pages of the wanted rows, and one unmap a
# call is cheap at this size (measured on 82 x 10,000 of 50,000 rows x 1,000 float16,
# two models side by side: 12.8 instead of 19.4 ms a model).
_MAP_SPARSITY = 2
_MAP_MIN_BYTES = 16 * 2**20


def _pread_exact(handle: Any, view: memoryview, offset: int, path: Path) -> None:
    done = 0
    while done < len(view):
        if hasattr(os, "preadv"):
            got = os.preadv(handle.fileno(), [view[done:]], offset + done)
        else:  # no preadv (Windows): the handle is this call's own, so seeking is safe
            handle.seek(offset + done)
            got = handle.readinto(view[done:])
        if not got:
            raise ZooCorruptedError(f"{path}: file ends before its tensor data (truncated?)")
        done += got


def read_rows(path: Path, data_start: int, info: Mapping[str, Any], rows: Any) -> np.ndarray:
    """Rows of one tensor, copied into a new array with positioned reads (``os.preadv``).

    ``rows``: a slice, or a 1-D integer array of row indices in range (negative ones count
    from the end; any order, repeats allowed). Wanted rows close together are read as one
    span (at most ``_READ_BLOCK_BYTES``, skipping gaps over ``_READ_GAP_BYTES``).

    Same values as indexing :func:`memmap_tensor`, mostly without mapping the file: a fresh
    map per read faults each touched page into the process and unmaps it afterwards, which
    stalls every thread of the process (a TLB shootdown per unmap) when models are read side
    by side chunk by chunk; a read copies from the page cache instead. Rows spread thinly
    over a long span (``_MAP_SPARSITY``, ``_MAP_MIN_BYTES``) are the exception: one map of
    the span per call, where reading the span would copy several times the bytes wanted.
    """
    dtype = np.dtype(DTYPE_CODES[info["dtype"]]).newbyteorder("<")
    shape = tuple(int(v) for v in info["shape"])
    num_rows = shape[0] if shape else 1
    row_shape = shape[1:]
    row_bytes = int(np.prod(row_shape, dtype=np.int64)) * dtype.itemsize
    begin = data_start + int(info["data_offsets"][0])
    if isinstance(rows, slice):
        start, stop, step = rows.indices(num_rows)
        if step == 1:
            out = np.empty((max(0, stop - start), *row_shape), dtype=dtype)
            if out.size:
                with open(path, "rb", buffering=0) as handle:
                    view = _byte_view(out.reshape(-1).view(np.uint8))
                    _pread_exact(handle, view, begin + start * row_bytes, path)
            return out
        rows = np.arange(start, stop, step)
    index = np.asarray(rows, dtype=np.int64).reshape(-1)
    if index.size and (index.min() < -num_rows or index.max() >= num_rows):
        raise IndexError(f"{path}: row index out of range for {num_rows} rows")
    index = np.where(index < 0, index + num_rows, index)
    out = np.empty((len(index), *row_shape), dtype=dtype)
    if not out.size:
        return out
    if np.all(index[1:] >= index[:-1]):
        order, wanted = None, index
    else:
        order = np.argsort(index, kind="stable")
        wanted = index[order]
    span_rows = int(wanted[-1]) - int(wanted[0]) + 1
    if span_rows * row_bytes >= _MAP_MIN_BYTES and len(index) * _MAP_SPARSITY < span_rows:
        first = int(wanted[0])
        shape = (span_rows, *row_shape)
        length = span_rows * row_bytes
        return _take_mapped(path, begin + first * row_bytes, length, dtype, shape, (index - first,))
    max_rows = max(1, _READ_BLOCK_BYTES // row_bytes)
    gap_rows = max(1, _READ_GAP_BYTES // row_bytes)
    gaps = np.flatnonzero(np.diff(wanted) > gap_rows) + 1  # a span never crosses these
    flat_out = out.reshape(len(index), -1)
    buffer = np.empty(max_rows * (row_bytes // dtype.itemsize), dtype=dtype)
    with open(path, "rb", buffering=0) as handle:
        i = 0
        while i < len(wanted):
            first = int(wanted[i])
            j = int(np.searchsorted(wanted, first + max_rows, side="left"))
            g = int(np.searchsorted(gaps, i, side="right"))
            if g < len(gaps):
                j = min(j, int(gaps[g]))
            span = int(wanted[j - 1]) - first + 1
            block = buffer[: span * (row_bytes // dtype.itemsize)]
            _pread_exact(handle, _byte_view(block.view(np.uint8)), begin + first * row_bytes, path)
            block = block.reshape(span, -1)
            if order is None:  # straight into the output rows, no temporary
                np.take(block, wanted[i:j] - first, axis=0, out=flat_out[i:j], mode="clip")
            else:
                flat_out[order[i:j]] = block[wanted[i:j] - first]
            i = j
    return out


def _take_mapped(
    path: Path, start: int, length: int, dtype: np.dtype, shape: tuple[int, ...], index: tuple
) -> np.ndarray:
    """``span.reshape(shape)[index]`` (fancy indexing: a copy), ``span`` the ``length`` bytes
    at ``start`` of ``path`` as ``dtype``, read through a memory map of just that span, which
    is unmapped and the file closed before returning. A file shorter than the span is refused
    (ZooCorruptedError) before mapping: touching a map past the end of a file kills the
    process instead of raising."""
    aligned = start - start % mmap.ALLOCATIONGRANULARITY
    with open(path, "rb", buffering=0) as handle:
        if os.fstat(handle.fileno()).st_size < start + length:
            raise ZooCorruptedError(f"{path}: file ends before its tensor data (truncated?)")
        with mmap.mmap(
            handle.fileno(), start - aligned + length, access=mmap.ACCESS_READ, offset=aligned
        ) as mapped:
            span = np.frombuffer(
                mapped, dtype=dtype, count=length // dtype.itemsize, offset=start - aligned
            )
            try:
                out = span.reshape(shape)[index]
            finally:
                del span  # the map closes only once no array looks into it (else BufferError)
    return out


def read_entries(
    path: Path, data_start: int, info: Mapping[str, Any], rows: np.ndarray, cols: np.ndarray
) -> np.ndarray:
    """Entries ``(rows[j], cols[j])`` of a 2-D tensor (row indices in range, non-negative),
    copied out of a memory map of just the rows' span (:func:`_take_mapped`): one page read
    per distinct page touched, for callers that want a few scattered entries per row
    (greedy's lazy candidates), where :func:`read_rows` would copy whole rows or spans. Same
    values as indexing :func:`memmap_tensor` (stored dtype)."""
    dtype = np.dtype(DTYPE_CODES[info["dtype"]]).newbyteorder("<")
    num_rows, num_cols = (int(v) for v in info["shape"])
    index = np.asarray(rows, dtype=np.int64)
    if not index.size:
        return np.empty(index.shape, dtype=dtype)
    first, last = int(index.min()), int(index.max())
    if first < 0 or last >= num_rows:
        raise IndexError(f"{path}: row index out of range for {num_rows} rows")
    row_bytes = num_cols * dtype.itemsize
    start = data_start + int(info["data_offsets"][0]) + first * row_bytes
    length = (last - first + 1) * row_bytes
    return _take_mapped(path, start, length, dtype, (-1, num_cols), (index - first, cols))


def write_tensors(
    path: Path, tensors: Mapping[str, np.ndarray], metadata: Mapping[str, str]
) -> None:
    """Write ``tensors`` to ``path`` as a safetensors file (see the module docstring): the same
    arrays and metadata always give the same bytes, whatever the dict orders."""
    arrays = {name: np.ascontiguousarray(a) for name, a in tensors.items()}
    for name, a in arrays.items():
        if a.dtype.newbyteorder("=") not in _CODE_OF:
            raise TypeError(f"tensor {name!r}: dtype {a.dtype} has no safetensors code")
    order = sorted(arrays, key=lambda k: (-arrays[k].dtype.itemsize, k))
    header: dict[str, Any] = {METADATA_KEY: {str(k): str(metadata[k]) for k in sorted(metadata)}}
    offset = 0
    for name in order:
        a = arrays[name]
        header[name] = {
            "dtype": _CODE_OF[a.dtype.newbyteorder("=")],
            "shape": list(a.shape),
            "data_offsets": [offset, offset + a.nbytes],
        }
        offset += a.nbytes
    raw = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(raw)))
        fh.write(raw)
        for name in order:
            little = arrays[name].astype(arrays[name].dtype.newbyteorder("<"), copy=False)
            if little.size:
                fh.write(_byte_view(np.ascontiguousarray(little)).cast("B"))


def _byte_view(array: np.ndarray) -> memoryview:
    """A memoryview of a contiguous array's buffer."""
    # numpy's stubs give ndarray the buffer protocol (__buffer__) only for Python >= 3.12.
    return memoryview(array)  # type: ignore[arg-type]


# float16 bits b, read as int16, map to keys b ^ ((b >> 15) & 0x7FFF) (the magnitude bits of
# negative values flipped): integers in the order of the floats for every value but NaN and
# -0 (key -1, below +0's 0). Keys above _KEY_INF or below -_KEY_INF - 1 are NaN.
_KEY_INF = 0x7C00


def argmax_rows(block: np.ndarray) -> np.ndarray:
    """(n,) int64 index of each row's largest value, exactly ``np.argmax(block, axis=1)``
    (the lowest index on ties, the first NaN where a row has one).

    float16 rows (a stored model's logits): numpy's argmax on float16 is not vectorised.
    When the process has torch loaded (an analysis has) and the block is writeable (rows
    read into memory, not a read-only map), the rows are cast to float32 by torch's
    vectorised cast (exact) and numpy's vectorised float32 argmax decides: about 1.5x
    faster than the integer keys below (26 against 39 ms for 50,000 x 1,000; the full-size
    benchmark's predictions of 82 models, read included: 3.7 instead of 4.9 CPU-s).
    Otherwise they are compared as 16-bit integer keys, several times faster
    than numpy's argmax on float16 or on numpy's float32 copy. The keys order values as the
    floats do except NaN and the zeros (-0 is below +0 as a key, equal as a float): a block
    holding a NaN, and the rows whose largest value is +0, are decided on float32 copies
    instead (float16 converts to float32 exactly).
    """
    if block.dtype != np.float16 or block.ndim != 2 or 0 in block.shape:
        return np.argmax(block, axis=1)
    if sys.modules.get("torch") is not None and block.flags.writeable:
        return np.argmax(as_float32(block), axis=1)
    block = np.ascontiguousarray(block)
    keys = block.view(np.int16) >> 15
    keys &= 0x7FFF
    keys ^= block.view(np.int16)
    if int(keys.max()) > _KEY_INF or int(keys.min()) < -_KEY_INF - 1:
        return np.argmax(as_float32(block), axis=1)
    index = np.argmax(keys, axis=1)
    zero = np.flatnonzero(keys[np.arange(len(index)), index] == 0)
    if zero.size:
        index[zero] = np.argmax(as_float32(block[zero]), axis=1)
    return index.astype(np.int64, copy=False)


def as_float32(array: np.ndarray) -> np.ndarray:
    """``array``'s values in float32 (exact from float16; ``array`` itself when it is
    float32). A float16 array is cast by torch when the process has already loaded it (an
    analysis has): its cast is vectorised, numpy's float16 cast is not (about 14x slower);
    the values are the same either way. torch is never imported for this (nor given what
    it cannot take: a read-only array, or a negative stride, which a C-contiguous array can
    still have along an axis of length 1)."""
    torch = sys.modules.get("torch")
    if array.dtype == np.float16 and torch is not None and array.flags.writeable:
        contiguous = np.ascontiguousarray(array)
        if min(contiguous.strides, default=0) >= 0:
            # Into numpy's allocation: numpy advises huge pages for large arrays (torch's
            # allocator does not), so a 40 MB result takes 20 page faults instead of
            # 10,000 (sys time: 3 s of the full-size temperature stage).
            out = np.empty(contiguous.shape, dtype=np.float32)
            torch.from_numpy(out).copy_(torch.from_numpy(contiguous))
            return out
    return np.asarray(array, dtype=np.float32)
