"""zoolens: how differently do these models behave, and which ones complement each other?

A toolkit around Gontijo-Lopes, Dauphin & Cubuk (2021), "No One Representation to Rule Them
All: Overlapping Features of Training Methods". See README.md for a tour and ARCHITECTURE.md
for the layers.

The public API, loaded on first use so that ``import zoolens`` stays fast:

- :class:`Zoo`, :class:`ModelCard`: the store of model outputs and what each model is;
- :func:`analyze`, :func:`run_greedy`, :func:`run_probe`: the studies, writing result tables;
  :func:`analyze_shift`: the same models on several evaluation sets (``analyze(shift=...)``);
- :func:`build_report`: the HTML report of a results folder;
- :func:`load_ensemble`: an exported ensemble file (``zoolens export``) as an ``nn.Module``;
- :mod:`zoolens.measure`: the measurements on plain arrays (``zoolens.measure.error_inconsistency``
  and friends); :mod:`zoolens.contracts`: every result table's columns;
- :class:`ZoolensError`: every problem with the user's input (a ``ValueError``).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# Public name -> (module, attribute).
_LAZY: dict[str, tuple[str, str]] = {
    "Zoo": ("zoolens.zoo.store", "Zoo"),
    "ModelCard": ("zoolens.zoo.cards", "ModelCard"),
    "ZoolensError": ("zoolens.errors", "ZoolensError"),
    "analyze": ("zoolens.study.analyze", "analyze"),
    "run_greedy": ("zoolens.study.analyze", "run_greedy"),
    "analyze_shift": ("zoolens.study.shift", "analyze_shift"),
    "run_probe": ("zoolens.study.probe", "run_probe"),
    "build_report": ("zoolens.report", "build_report"),
    "load_ensemble": ("zoolens.deploy.predict", "load_ensemble"),
}
_SUBMODULES = ("measure", "contracts")

__all__ = [
    "ModelCard",
    "Zoo",
    "ZoolensError",
    "__version__",
    "analyze",
    "analyze_shift",
    "build_report",
    "contracts",
    "load_ensemble",
    "measure",
    "run_greedy",
    "run_probe",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attribute = _LAZY[name]
        value = getattr(importlib.import_module(module), attribute)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"zoolens.{name}")
    else:
        raise AttributeError(f"module 'zoolens' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
