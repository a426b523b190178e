"""Safe file names for free-text model names.

A model name may be anything ("ResNet-50 (seed 3)", "../../etc/passwd", "模型"); the file that
stores it is ``<slug>-<shorthash>.safetensors`` where the slug keeps only ``[a-z0-9._-]`` (at
most 40 characters, no leading dots) and the short hash makes it unique. Nothing of the raw
name reaches the file system, so no name can escape the zoo folder.
"""

from __future__ import annotations

import hashlib
import re

_UNSAFE = re.compile(r"[^a-z0-9._-]+")
# What model_file_name produces: a slug (no leading dot, at most 40 characters), '-', 12 hex
# digits of hash, '.safetensors'. Only files named like this are ever deleted by the zoo.
_WRITTEN_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,39}-[0-9a-f]{12}\.safetensors")


def slugify(name: str, max_len: int = 40) -> str:
    """Lower-case ``name``, replace every run of unsafe characters by '-', trim dots/dashes."""
    slug = _UNSAFE.sub("-", name.lower())
    slug = re.sub(r"\.{2,}", ".", slug).strip(".-_")[:max_len].strip(".-_")
    return slug or "model"


def short_hash(*parts: str, length: int = 12) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()[:length]


def model_file_name(name: str, content_sha256: str) -> str:
    """``<slug>-<shorthash>.safetensors``; the hash covers the name and the file content, so a
    replaced model gets a new file (the old one stays valid until the manifest moves on)."""
    return f"{slugify(name)}-{short_hash(name, content_sha256)}.safetensors"


def is_written_model_file_name(file_name: str) -> bool:
    """True when ``file_name`` (one path component) has the form ``model_file_name`` gives."""
    return _WRITTEN_NAME.fullmatch(file_name) is not None
