"""File readers: one per format, behind a registry from file suffix to reader.

``reader_for(path)`` checks the file (exists, is a file, not empty, a known suffix) and
gives the reader of its suffix; ``zoo.importers`` asks it for outputs, labels or ids. The
formats shipped (``SUPPORTED_SUFFIXES``, in this order in messages):

``.npy``            one array (allow_pickle=False)                    ``arrays.NpyReader``
``.npz``            several arrays                                    ``arrays.NpzReader``
``.safetensors``    several tensors                                   ``arrays.SafetensorsReader``
``.pt`` / ``.pth``  a tensor or a dict of tensors (weights_only=True) ``arrays.TorchReader``
``.csv`` / ``.tsv`` / ``.txt``  a text table                          ``table.TableReader``
``.json``           a list, or an object from example id to entry     ``jsonfile.JsonReader``

A new format is one ``Reader`` subclass (``readers.base``) and one ``register_reader`` call,
as a collect adapter is one ``collect.specs.register_adapter`` call.
"""

from __future__ import annotations

from pathlib import Path

from zoolens.errors import ZoolensError
from zoolens.zoo.readers.arrays import NpyReader, NpzReader, SafetensorsReader, TorchReader
from zoolens.zoo.readers.base import Loaded, Reader, Request
from zoolens.zoo.readers.jsonfile import JsonReader
from zoolens.zoo.readers.table import TABLE_SUFFIXES, TableReader

__all__ = ["Loaded", "Reader", "Request", "register_reader", "reader_for", "SUPPORTED_SUFFIXES"]

_READERS: dict[str, Reader] = {}


def register_reader(reader: Reader, *suffixes: str) -> Reader:
    """Read files ending in ``suffixes`` (lower case, with the dot) with ``reader``; a
    suffix already taken is an error (one reader per format)."""
    for suffix in suffixes:
        if not suffix.startswith(".") or suffix != suffix.lower():
            raise ValueError(f"reader suffix {suffix!r}: lower case, starting with a dot")
        if suffix in _READERS:
            raise ValueError(f"a reader for {suffix} is already registered")
        _READERS[suffix] = reader
    return reader


def supported_suffixes() -> tuple[str, ...]:
    """The suffixes a reader is registered for, in the order they were registered."""
    return tuple(_READERS)


def reader_for(path: Path) -> Reader:
    """The reader of ``path``'s suffix (case-insensitive); a one-line ZoolensError when the
    file is missing, a folder, of an unknown type or empty."""
    suffix = path.suffix.lower()
    if not path.exists():
        raise ZoolensError(f"{path}: no such file")
    if path.is_dir():
        raise ZoolensError(f"{path}: is a folder, not a file")
    if suffix not in _READERS:
        raise ZoolensError(
            f"{path}: unsupported file type {suffix or '(none)'}; supported: "
            f"{' '.join(supported_suffixes())}"
        )
    if path.stat().st_size == 0:
        raise ZoolensError(f"{path}: file is empty")
    return _READERS[suffix]


register_reader(NpyReader(), ".npy")
register_reader(NpzReader(), ".npz")
register_reader(SafetensorsReader(), ".safetensors")
register_reader(TorchReader(), ".pt", ".pth")
register_reader(TableReader(), *TABLE_SUFFIXES)
register_reader(JsonReader(), ".json")

SUPPORTED_SUFFIXES = supported_suffixes()  # the shipped formats
