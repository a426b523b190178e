"""timm adapter: ``timm:<name>[.<pretrained tag>]`` -> a LoadedModel.

- model: ``timm.create_model(name, pretrained=..., **kwargs)``;
- preprocessing: ``timm.data.resolve_data_config({}, model=model)`` and
  ``timm.data.create_transform(**config)`` (the eval transform the weights were made for);
- outputs: ``feats = model.forward_features(x)``; the pre-logit embedding is
  ``model.forward_head(feats, pre_logits=True)`` (pooled, before the classifier) and the logits
  ``model.forward_head(feats)``;
- card: arch (timm architecture), arch_family, framework and pretrain_data from the pretrained
  tag (e.g. ``augreg_in21k_ft_in1k`` -> ImageNet-21k), hparams {"pretrained_tag": tag},
  head "linear", source "timm:<name>" (plus the hub id).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from zoolens.collect._cards import arch_family, data_from_tag, framework_from_tag
from zoolens.collect._download import build_or_explain
from zoolens.collect.specs import (
    LoadedModel,
    ModelEntry,
    build_preprocess,
    model_library,
    register_adapter,
)
from zoolens.errors import ZoolensError


@register_adapter("timm")
def load_timm(
    entry: ModelEntry, pretrained: bool, class_names: Sequence[str] | None = None
) -> LoadedModel:
    timm = model_library("timm", entry)
    from timm.data import create_transform, resolve_data_config

    name = entry.target
    if not timm.is_model(name):
        raise ZoolensError(
            f"model {entry.spec}: timm has no model {name.split('.')[0]!r} (see timm.list_models())"
        )
    try:
        cfg = timm.models.get_pretrained_cfg(name)
    except RuntimeError as exc:
        raise ZoolensError(f"model {entry.spec}: {exc}") from None
    model = build_or_explain(
        entry.spec,
        pretrained,
        entry.kwargs,
        lambda: timm.create_model(name, pretrained=pretrained, **entry.kwargs),
    )
    model.eval()
    if entry.preprocess is not None:
        transform = build_preprocess(entry.preprocess, entry.spec)
    else:
        transform = create_transform(**resolve_data_config({}, model=model), is_training=False)

    def forward(x: Any):
        feats = model.forward_features(x)
        return model.forward_head(feats), model.forward_head(feats, pre_logits=True)

    pcfg = getattr(model, "pretrained_cfg", None) or (cfg.to_dict() if cfg else {})
    arch = pcfg.get("architecture") or name.split(".")[0]
    tag = pcfg.get("tag") or (name.split(".", 1)[1] if "." in name else None)
    card: dict[str, Any] = {
        "arch": arch,
        "arch_family": arch_family(arch),
        "framework": framework_from_tag(tag) if pretrained else "untrained",
        "pretrain_data": data_from_tag(tag) if pretrained else "none",
        "hparams": {"pretrained_tag": tag} if tag and pretrained else {},
        "head": "linear",
        "source": f"timm:{name}"
        + (f" (hf-hub:{pcfg['hf_hub_id']})" if pretrained and pcfg.get("hf_hub_id") else ""),
    }
    return LoadedModel(entry.name, forward, model, transform, card)
