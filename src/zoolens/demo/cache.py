"""The demo's model cache: trained outputs keyed by model spec and data, checked by version.

Each trained model is one file ``DIR/cache/<slug>-<key>.pt`` (``torch.save`` of plain tensors,
strings and numbers, read back with ``torch.load(weights_only=True)``) holding its test-set
scores, embeddings, optional state dict and a ``meta`` dict. ``key`` is the sha256 of the
model's spec (trainer, hyper-parameters, seed, profile sizes) and the data fingerprint, so a
changed spec or data set never hits an old entry. The zoolens version is part of the cache's
identity too: an entry written by another zoolens version is never used silently — it is
retrained (with a message saying so), as are entries that cannot be read.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from zoolens import __version__
from zoolens.progress import info
from zoolens.atomic import atomic_path
from zoolens.zoo._slug import slugify  # noqa: F401  (re-exported for the builder)

CACHE_FORMAT = 1


def spec_key(spec: dict[str, Any], data_fingerprint: str) -> str:
    """First 16 hex digits of sha256(canonical JSON of spec + data fingerprint)."""
    payload = json.dumps(
        {"spec": spec, "data": data_fingerprint, "format": CACHE_FORMAT},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


class ModelCache:
    """Read/write cached model outputs under ``folder`` (created on first write)."""

    def __init__(self, folder: Path, *, fresh: bool = False):
        self.folder = Path(folder)
        self.fresh = fresh
        self.hits: list[str] = []
        self.retrained: list[str] = []

    def path(self, name: str, key: str) -> Path:
        return self.folder / f"{slugify(name)}-{key}.pt"

    def load(self, name: str, key: str, *, count: bool = True) -> dict[str, Any] | None:
        """The cached entry, or None (absent, --fresh, unreadable or another version)."""
        import torch

        path = self.path(name, key)
        if self.fresh or not path.is_file():
            return None
        try:
            entry = torch.load(path, map_location="cpu", weights_only=True)
            meta = entry["meta"]
        except Exception as exc:  # noqa: BLE001 - a damaged cache entry is simply retrained
            info(f"cache: {path.name} cannot be read ({type(exc).__name__}); retraining {name}")
            self.retrained.append(name)
            return None
        version = meta.get("zoolens_version")
        if version != __version__:
            info(
                f"cache: {path.name} was trained by zoolens {version}, this is zoolens "
                f"{__version__}; retraining {name} (cached outputs of another version are "
                f"never mixed in)"
            )
            self.retrained.append(name)
            return None
        if meta.get("key") != key:
            info(f"cache: {path.name} does not match its spec; retraining {name}")
            self.retrained.append(name)
            return None
        if count:
            self.hits.append(name)
        return entry

    def save(self, name: str, key: str, entry: dict[str, Any]) -> dict[str, Any]:
        """Write ``entry`` (its meta gains version, key and name); returns it as stored."""
        import torch

        self.folder.mkdir(parents=True, exist_ok=True)
        entry = dict(entry)
        entry["meta"] = dict(entry.get("meta", {}), zoolens_version=__version__, key=key, name=name)
        with atomic_path(self.path(name, key)) as tmp:
            torch.save(entry, tmp)
        return entry
