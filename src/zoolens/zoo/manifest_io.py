"""Reading and writing the zoo's manifest file: every path it names is checked to stay
inside the zoo before the schema (``zoo.manifest``) is; the write is atomic and validated
first, so no invalid manifest is ever written."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from zoolens.atomic import atomic_write_bytes
from zoolens.errors import ZooCorruptedError, ZoolensError
from zoolens.zoo.layout import FORMAT_VERSION, MANIFEST, MODELS_DIR
from zoolens.zoo.manifest import Manifest, parse_manifest


def check_contained(root: Path, manifest: Mapping[str, Any], file: Path) -> None:
    """Every path the manifest names stays inside the zoo: a model's ``file`` is
    ``models/<name>`` and each key of ``files`` is ``<name>``, where ``<name>`` is one plain
    file name (no absolute path, no '..', no separator, not hidden) that is not a link out of
    its folder. ZooCorruptedError (one line naming the model and the path) otherwise."""
    real_root = os.path.realpath(root)
    models_dir = root / MODELS_DIR
    real_models = os.path.join(real_root, MODELS_DIR)
    if models_dir.is_symlink() and os.path.realpath(models_dir) != real_models:
        raise ZooCorruptedError(
            f"{file}: {models_dir} is a link to a folder outside the zoo; refusing to open this zoo"
        )
    models = manifest.get("models")
    for name, entry in models.items() if isinstance(models, dict) else ():
        rel = entry.get("file") if isinstance(entry, dict) else None
        folder, _, base = rel.partition("/") if isinstance(rel, str) else ("", "", "")
        check_plain_file(
            models_dir,
            real_models,
            base if folder == MODELS_DIR else None,
            f"{file}: model {name!r}: file {rel!r}",
            f"the zoo's {MODELS_DIR}/",
        )
    files = manifest.get("files")
    for rel in files if isinstance(files, dict) else ():
        check_plain_file(
            root,
            real_root,
            rel if rel != MANIFEST else None,
            f"{file}: files lists {rel!r}",
            "the zoo",
        )


def check_plain_file(folder: Path, real_folder: str, base: Any, what: str, where: str) -> None:
    """``base`` is one plain file name in ``folder`` and, if a link, points into it."""
    if (
        not isinstance(base, str)
        or not base
        or base.startswith(".")
        or any(ch in base for ch in "/\\\0")
    ):
        raise ZooCorruptedError(
            f"{what}, which is not a file name inside {where} folder "
            "(absolute paths and '..' are refused); refusing to open this "
            "zoo"
        )
    link = folder / base
    if link.is_symlink() and os.path.dirname(os.path.realpath(link)) != real_folder:
        raise ZooCorruptedError(
            f"{what}, a link to {os.path.realpath(link)}, outside {where} "
            "folder; refusing to open this zoo"
        )


def read_manifest(path: Path) -> Manifest:
    """The zoo's manifest, read and validated (``zoolens.zoo.manifest``): paths are checked
    to stay inside the zoo first, then every field against the schema."""
    file = path / MANIFEST
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ZoolensError(
            f"{path}: not a zoo (no {MANIFEST}; create one with "
            "`zoolens import ZOO FILE --create --labels LABELS`)"
        ) from None
    except (IsADirectoryError, UnicodeDecodeError) as exc:
        raise ZooCorruptedError(f"{file}: unreadable manifest ({exc})") from None
    try:
        manifest = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ZooCorruptedError(
            f"{file}: corrupted manifest ({exc.msg} at line {exc.lineno})"
        ) from None
    except RecursionError:
        raise ZooCorruptedError(f"{file}: corrupted manifest (nested too deeply)") from None
    if not isinstance(manifest, dict) or not {
        "format_version",
        "dataset",
        "split",
        "models",
    } <= set(manifest):
        raise ZooCorruptedError(
            f"{file}: not a zoolens manifest (missing format_version, dataset, split or models)"
        )
    version = manifest["format_version"]
    if type(version) is int and version > FORMAT_VERSION:
        raise ZoolensError(
            f"{file}: zoo format_version {version} is newer than this zoolens "
            f"supports ({FORMAT_VERSION}); upgrade zoolens"
        )
    check_contained(path, manifest, file)
    return parse_manifest(manifest, file)


def write_manifest(path: Path, manifest: Manifest) -> None:
    """Write zoo.json atomically; the long index list stays on one line (readable diffs).
    The data is validated against the schema first, so no invalid manifest is ever written."""
    data = manifest.to_json_dict()
    parse_manifest(data, path / MANIFEST)
    placeholder = "@@calibration_indices@@"
    split = dict(data["split"])
    indices = split["calibration_indices"]
    split["calibration_indices"] = placeholder
    text = json.dumps({**data, "split": split}, indent=2, ensure_ascii=False)
    text = text.replace(json.dumps(placeholder), json.dumps(indices, separators=(",", ":")), 1)
    atomic_write_bytes(path / MANIFEST, (text + "\n").encode("utf-8"))
