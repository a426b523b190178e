"""Pure measurements on numpy arrays: no I/O, no CLI, no zoo, no global state.

Every public function is reachable from here, as in ``sklearn.metrics``::

    >>> import numpy as np
    >>> from zoolens import measure
    >>> correct = np.array([[1, 1, 0, 0], [1, 0, 1, 0]], dtype=bool)  # 2 models x 4 examples
    >>> measure.error_inconsistency(correct)[0, 1]                      # exactly one right
    np.float64(0.5)

The submodules load on first use (``import zoolens`` and ``zoolens --help`` stay fast); each
one's docstring says what it measures: ``agreement``, ``calibration``, ``ensemble``, ``topk``,
``specialization``, ``stats``, ``features``, ``probe``, ``soup``, ``shift``. The public names
here are their ``__all__``, read from the modules themselves (nothing is listed twice).

Definitions follow docs/design.md sec. 3 and Gontijo-Lopes, Dauphin & Cubuk (2021).
"""

from __future__ import annotations

import functools
import importlib
from typing import Any

# The submodules whose ``__all__`` this package exports (tests/test_public_api.py checks
# that every module of the folder is here).
_SUBMODULES = (
    "agreement",
    "calibration",
    "ensemble",
    "topk",
    "specialization",
    "stats",
    "features",
    "probe",
    "soup",
    "shift",
)
# Not exported: the evaluation pass's fused kernels (used by study.stream and study.greedy).
_NOT_EXPORTED = ("fused",)


@functools.cache
def _module_of() -> dict[str, str]:
    """Public name -> the submodule defining it (importing every submodule once)."""
    return {
        name: module
        for module in _SUBMODULES
        for name in importlib.import_module(f"zoolens.measure.{module}").__all__
    }


def __getattr__(name: str) -> Any:
    if name == "__all__":
        return sorted(_module_of())
    module = _module_of().get(name)
    if module is None:
        raise AttributeError(f"module 'zoolens.measure' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"zoolens.measure.{module}"), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_module_of()))
