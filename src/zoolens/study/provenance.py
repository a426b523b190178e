"""Provenance block of ``summary.json``: what was analysed, with what, by which command.

Enough to reproduce a results folder: the zoolens version, the zoo's path and the sha256 of
every zoo file (``Zoo.file_hashes()``), the calibration-split seed, the random seeds of the
study, the library versions that change numbers, and the command line.
"""

from __future__ import annotations

import datetime as _dt
import platform
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from zoolens import __version__
from zoolens.contracts import RESULTS_FORMAT_VERSION, TABLE_VERSION


def _split_seed(zoo: Any) -> Any:
    # The Zoo API does not promise a seed attribute; fall back to the manifest's split block.
    for attribute in ("seed", "split_seed"):
        value = getattr(zoo, attribute, None)
        if isinstance(value, int):
            return value
    manifest = getattr(zoo, "manifest", None)
    if isinstance(manifest, Mapping):
        split = manifest.get("split", {})
        if isinstance(split, Mapping):
            return split.get("seed")
    return None


def provenance(zoo: Any, *, command: str | None, seeds: Mapping[str, int]) -> dict[str, Any]:
    """The provenance fields every ``summary.json`` starts with."""
    import numpy
    import pandas
    import scipy

    return {
        "format_version": RESULTS_FORMAT_VERSION,
        "table_version": TABLE_VERSION,
        "zoolens_version": __version__,
        "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "zoo": {
            "path": str(Path(zoo.path).resolve()),
            "dataset": getattr(zoo, "dataset_name", None),
            "num_examples": int(zoo.num_examples),
            "num_classes": int(zoo.num_classes),
            "num_models": len(zoo.models),
            "file_hashes": dict(zoo.file_hashes()),
            # the report embeds drilldown thumbnails only from files under it
            "image_root": getattr(zoo, "image_root", None),
        },
        "split_seed": _split_seed(zoo),
        "seeds": dict(seeds),
        "versions": {
            "python": platform.python_version(),
            "numpy": numpy.__version__,
            "scipy": scipy.__version__,
            "pandas": pandas.__version__,
        },
    }
