"""Producing model outputs by running models: ``zoolens collect`` and its Python API.

- :func:`zoolens.collect.runner.run_model` — any module/callable over any dataset -> outputs
- :func:`zoolens.collect.runner.collect_model` — the same, straight into a zoo
- :func:`zoolens.collect.runner.collect_entries` — a model list over an image folder -> zoo
- :class:`zoolens.collect.images.ImageFolder`, :func:`~zoolens.collect.images.ids_in_label_order`
- :func:`zoolens.collect.specs.read_model_list`, :func:`~zoolens.collect.specs.load_model`
- :mod:`zoolens.collect.cifar_resnet` — He et al. (2016) CIFAR ResNets (akamaster checkpoints)

Names are imported lazily (torch loads only when one is used). The model adapters
(timm, torchvision, open_clip; torchscript and python in ``specs``) register themselves
with ``specs.register_adapter`` when imported here, as timm registers its models.
"""

from __future__ import annotations

import importlib

from zoolens.collect import openclip_models, timm_models, torchvision_models  # noqa: F401

_EXPORTS = {
    "run_model": "zoolens.collect.runner",
    "collect_model": "zoolens.collect.runner",
    "collect_entries": "zoolens.collect.runner",
    "RunOptions": "zoolens.collect.runner",
    "CollectedOutputs": "zoolens.collect.runner",
    "DataIndex": "zoolens.collect.runner",
    "ImageFolder": "zoolens.collect.images",
    "ids_in_label_order": "zoolens.collect.images",
    "ModelEntry": "zoolens.collect.specs",
    "LoadedModel": "zoolens.collect.specs",
    "read_model_list": "zoolens.collect.specs",
    "load_model": "zoolens.collect.specs",
}

__all__ = sorted(_EXPORTS)  # noqa: PLE0605 (the names of _EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'zoolens.collect' has no attribute {name!r}")
