"""The zoo's file integrity (``Zoo`` inherits it): the recorded sha256 of every file, a
re-hash only when a file's size or mtime differs from its record, ``verify()`` hashing
everything, and the files on disk that no manifest entry names."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from zoolens.errors import ZooCorruptedError
from zoolens.zoo import layout
from zoolens.zoo.layout import MODELS_DIR
from zoolens.zoo.manifest import FileRecord, Manifest, ModelEntry
from zoolens.zoo.tensorfile import read_header


class StoreIntegrity:
    """File checks of a zoo folder at ``_path`` described by ``_manifest``."""

    _path: Path
    _manifest: Manifest
    _rehashed: set[tuple[str, int, int]]

    def file_hashes(self) -> dict[str, str]:
        """File name (relative to the zoo) -> sha256, for every file the manifest records."""
        out = {rel: info.sha256 for rel, info in self._files.items()}
        for entry in self._manifest.models.values():
            out[entry.file] = entry.sha256
        return out

    def verify(self, progress: bool = False) -> None:
        """Hash every file and check its format; ZooCorruptedError naming each bad file (and
        its model). Also reports model files present on disk but not in the manifest."""
        problems: list[str] = []
        items: list[tuple[str, str | None, str, int | None]] = [
            (rel, None, info.sha256, info.size) for rel, info in self._files.items()
        ]
        items += [(e.file, name, e.sha256, e.size) for name, e in self._manifest.models.items()]
        iterable: Any = items
        if progress:
            from zoolens.progress import track

            iterable = track(items, description="verify", unit="files")
        for rel, model, sha, size in iterable:
            file = self._path / rel
            label = f"{file}" + (f" (model {model!r})" if model is not None else "")
            if not file.is_file():
                problems.append(f"{label} is missing")
                continue
            actual_size = file.stat().st_size
            if size is not None and actual_size != size:
                problems.append(
                    f"{label} has {actual_size} bytes, recorded {size} (truncated or modified)"
                )
                continue
            if layout.sha256_file(file) != sha:
                problems.append(f"{label} does not match its recorded sha256 (corrupted)")
                continue
            if model is not None:
                try:
                    self._check_tensors(model, file)
                except ZooCorruptedError as exc:
                    problems.append(str(exc))
        if problems:
            more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
            raise ZooCorruptedError(
                f"{len(problems)} bad file(s) in zoo {self._path}: "
                + "; ".join(problems[:3])
                + more
            )

    def orphan_files(self) -> list[Path]:
        """Files in models/ that no manifest entry points to (left by a crash)."""
        known = {e.file for e in self._manifest.models.values()}
        folder = self._path / MODELS_DIR
        if not folder.is_dir():
            return []
        return sorted(p for p in folder.iterdir() if f"{MODELS_DIR}/{p.name}" not in known)

    # ---------------------------------------------------------------------------- internals

    @property
    def _files(self) -> dict[str, FileRecord]:
        return self._manifest.files

    def _load_npy(self, rel: str) -> np.ndarray:
        self._check_aux_file(rel)
        file = self._path / rel
        try:
            return np.load(file, allow_pickle=False)
        except FileNotFoundError:
            raise ZooCorruptedError(f"{file} is missing") from None
        except Exception as exc:
            raise ZooCorruptedError(f"{file}: unreadable ({exc})") from None

    def _check_aux_file(self, rel: str) -> None:
        info = self._files.get(rel)
        if info is None:
            return
        self._check_file(self._path / rel, info, None)

    def _check_file(
        self, file: Path, info: FileRecord | ModelEntry, model: str | None
    ) -> os.stat_result:
        """Re-hash ``file`` if its size or mtime differs from the manifest's record; returns
        the file's stat."""
        label = f"{file}" + (f" (model {model!r})" if model is not None else "")
        try:
            st = file.stat()
        except FileNotFoundError:
            raise ZooCorruptedError(f"{label} is missing") from None
        if st.st_size == info.size and st.st_mtime_ns == info.mtime_ns:
            return st
        key = (str(file), st.st_size, st.st_mtime_ns)
        if key in self._rehashed:
            return st
        if st.st_size != info.size:
            raise ZooCorruptedError(
                f"{label} has {st.st_size} bytes, recorded {info.size} (truncated or modified)"
            )
        if layout.sha256_file(file) != info.sha256:
            raise ZooCorruptedError(
                f"{label} does not match its recorded sha256 (corrupted "
                "or modified since it was added)"
            )
        self._rehashed.add(key)
        return st

    def _check_tensors(self, name: str, file: Path) -> None:
        entry = self._manifest.models[name]
        _, header = read_header(file, name)
        for tensor in entry.kinds:
            if tensor not in header:
                raise ZooCorruptedError(f"model {name!r}: file {file} has no tensor {tensor!r}")
            if int(header[tensor]["shape"][0]) != self._manifest.dataset.num_examples:
                raise ZooCorruptedError(
                    f"model {name!r}: file {file}: tensor {tensor!r} has "
                    f"{header[tensor]['shape'][0]} rows, zoo has "
                    f"{self._manifest.dataset.num_examples}"
                )
