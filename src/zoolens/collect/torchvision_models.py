"""torchvision adapter: ``torchvision:<name>[/<WEIGHTS>]`` -> a LoadedModel.

- model: ``torchvision.models.get_model(name, weights=...)``; WEIGHTS is a member of the
  model's weights enum (``IMAGENET1K_V1``, ``IMAGENET1K_V2`` …; default ``DEFAULT``), or none
  with ``--no-pretrained``;
- preprocessing: ``weights.transforms()`` (the weights' own eval transform; used for random
  init too, since it needs no download);
- embeddings: the input of the model's last ``nn.Linear`` (the pre-logit features), captured by
  a forward pre-hook (models without a Linear head record no embeddings);
- card: arch, arch_family, framework (supervised), pretrain_data (from the weights name),
  hparams {"weights": …, "recipe": …}, head "linear", source (the weights URL).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from zoolens.collect._cards import arch_family, data_from_tag
from zoolens.collect._download import build_or_explain
from zoolens.collect.specs import (
    LoadedModel,
    ModelEntry,
    build_preprocess,
    module_forward,
    register_adapter,
)
from zoolens.errors import ZoolensError


@register_adapter("torchvision")
def load_torchvision(
    entry: ModelEntry, pretrained: bool, class_names: Sequence[str] | None = None
) -> LoadedModel:
    from torchvision import models

    name, _, weights_name = entry.target.partition("/")
    if name not in models.list_models():
        raise ZoolensError(
            f"model {entry.spec}: torchvision has no model {name!r} "
            f"(see torchvision.models.list_models())"
        )
    try:
        enum = models.get_model_weights(name)
    except ValueError:
        enum = None
    weights = None
    if enum is not None:
        key = weights_name or "DEFAULT"
        try:
            weights = enum[key] if key != "DEFAULT" else enum.DEFAULT
        except KeyError:
            raise ZoolensError(
                f"model {entry.spec}: {enum.__name__} has no {key!r}; use one of "
                f"{', '.join(m.name for m in enum)}"
            ) from None
    elif weights_name:
        raise ZoolensError(f"model {entry.spec}: torchvision has no weights for {name!r}")
    model = build_or_explain(
        entry.spec,
        pretrained,
        entry.kwargs,
        lambda: models.get_model(name, weights=weights if pretrained else None, **entry.kwargs),
    )
    model.eval()
    if entry.preprocess is not None or weights is None:
        transform = build_preprocess(entry.preprocess, entry.spec)
    else:
        transform = weights.transforms()
    card: dict[str, Any] = {
        "arch": name,
        "arch_family": arch_family(name),
        "framework": "supervised" if pretrained else "untrained",
        "pretrain_data": (data_from_tag(weights.name) or weights.name)
        if pretrained and weights
        else "none",
        "hparams": (
            {"weights": weights.name, "recipe": weights.meta.get("recipe")}
            if pretrained and weights
            else {}
        ),
        "head": "linear",
        "source": f"torchvision:{name}" + (f" ({weights.url})" if pretrained and weights else ""),
    }
    return LoadedModel(entry.name, module_forward(model), model, transform, card)
