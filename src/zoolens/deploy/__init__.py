"""From a finding to a runnable ensemble: export, predict, load.

Layer: above ``collect`` (models are rebuilt and run by its adapters and runner) and
``study`` (results tables, the zoo), below ``cli``.

- :mod:`zoolens.deploy.schema` — the ensemble file (``ensemble.json``), a versioned
  pydantic model: members with their collect specs and checkpoint sha256, temperatures,
  weights, combine rule, class names, preprocessing, measured accuracy, provenance.
- :mod:`zoolens.deploy.export` — ``zoolens export RESULTS --ensemble greedy|sidekick|A,B``
  and the soup export (``zoolens soup --export``).
- :mod:`zoolens.deploy.predict` — ``zoolens predict ensemble.json IMAGES`` and
  :func:`load_ensemble` (an ``nn.Module``).
"""

from __future__ import annotations

__all__ = [
    "EnsembleFile",
    "export_ensemble",
    "load_ensemble",
    "predict_images",
    "read_ensemble_file",
]

_EXPORTS = {
    "EnsembleFile": "zoolens.deploy.schema",
    "read_ensemble_file": "zoolens.deploy.schema",
    "export_ensemble": "zoolens.deploy.export",
    "load_ensemble": "zoolens.deploy.predict",
    "predict_images": "zoolens.deploy.predict",
}


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'zoolens.deploy' has no attribute {name!r}")
