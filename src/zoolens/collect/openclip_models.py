"""open_clip adapter: ``open_clip:<arch>[/<pretrained tag>]`` -> a zero-shot classifier.

- model: ``open_clip.create_model_and_transforms(arch, pretrained=tag or None)``; the eval
  transform is the one open_clip returns;
- zero-shot head (Radford et al. 2021, Sec. 3.1.4): for class c and prompt templates t_1..t_T,
  w_c = normalize(mean_t normalize(encode_text(t_j.format(name_c)))); logits for an image x are
  ``exp(logit_scale) * normalize(encode_image(x)) @ W``; the head is recorded as "zero-shot"
  in the card, with the number of templates in hparams;
- embeddings: ``encode_image(x)`` (the image embedding, before normalisation);
- card: arch, arch_family, framework "contrastive", pretrain_data from the tag
  (laion2b_* -> LAION-2B, openai -> OpenAI-WIT), head "zero-shot", source.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from zoolens.collect._cards import arch_family, data_from_tag
from zoolens.collect._download import build_or_explain
from zoolens.collect.specs import LoadedModel, ModelEntry, build_preprocess
from zoolens.errors import ZoolensError

#: A short subset of the CLIP ImageNet prompt ensemble (Radford et al. 2021, notebook).
DEFAULT_TEMPLATES = (
    "a photo of a {}.",
    "a bad photo of a {}.",
    "a photo of many {}.",
    "a low resolution photo of the {}.",
    "a photo of the large {}.",
    "a photo of the small {}.",
    "a blurry photo of a {}.",
    "itap of a {}.",
)


def zero_shot_weights(model: Any, tokenizer: Any, class_names: Sequence[str],
                      templates: Sequence[str]):
    """(D, C) zero-shot classifier: per class, the normalised mean of normalised prompt
    embeddings (CLIP's prompt ensembling)."""
    import torch

    columns = []
    with torch.inference_mode():
        for name in class_names:
            readable = str(name).replace("_", " ")
            tokens = tokenizer([t.format(readable) for t in templates])
            emb = model.encode_text(tokens).float()
            emb = emb / emb.norm(dim=-1, keepdim=True)
            mean = emb.mean(dim=0)
            columns.append(mean / mean.norm())
    return torch.stack(columns, dim=1)


def load_open_clip(entry: ModelEntry, pretrained: bool,
                   class_names: Sequence[str] | None) -> LoadedModel:
    try:
        import open_clip
    except ImportError:
        raise ZoolensError(f"model {entry.spec}: open_clip is not installed "
                           f"(pip install 'zoolens[models]')") from None
    arch, _, tag = entry.target.partition("/")
    if arch not in open_clip.list_models():
        raise ZoolensError(f"model {entry.spec}: open_clip has no model {arch!r} "
                           f"(see open_clip.list_models())")
    if pretrained and not tag:
        raise ZoolensError(f"model {entry.spec}: name the pretrained weights, e.g. "
                           f"open_clip:{arch}/{(open_clip.list_pretrained_tags_by_model(arch) or ['TAG'])[0]}"
                           f" (or use --no-pretrained)")
    if pretrained and tag not in open_clip.list_pretrained_tags_by_model(arch):
        raise ZoolensError(f"model {entry.spec}: unknown pretrained tag {tag!r} for {arch}; use one "
                           f"of {', '.join(open_clip.list_pretrained_tags_by_model(arch)[:8])}")
    head = entry.head or "zero-shot"
    if head != "zero-shot":
        raise ZoolensError(f"model {entry.spec}: head {head!r} is not supported for open_clip "
                           f"(use 'zero-shot'; fit a linear probe on the embeddings with "
                           f"zoolens probe)")
    if not class_names:
        raise ZoolensError(f"model {entry.spec}: a zero-shot head needs class names")
    model, _, preprocess = build_or_explain(
        entry.spec, pretrained, entry.kwargs,
        lambda: open_clip.create_model_and_transforms(
            arch, pretrained=tag if pretrained else None, **entry.kwargs))
    model.eval()
    templates = tuple(entry.templates or DEFAULT_TEMPLATES)
    tokenizer = open_clip.get_tokenizer(arch)
    weights = zero_shot_weights(model, tokenizer, class_names, templates)
    state: dict[str, Any] = {"W": weights}

    def forward(x: Any):
        image = model.encode_image(x)
        feats = image.float()
        feats = feats / feats.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        if state["W"].device != feats.device:
            state["W"] = state["W"].to(feats.device)
        scale = model.logit_scale.exp().float()
        return scale * feats @ state["W"], image

    if entry.preprocess is not None:
        preprocess = build_preprocess(entry.preprocess, entry.spec)
    card: dict[str, Any] = {
        "arch": arch,
        "arch_family": arch_family(arch),
        "framework": "contrastive" if pretrained else "untrained",
        "pretrain_data": data_from_tag(tag) or tag if pretrained else "none",
        "hparams": {"pretrained_tag": tag if pretrained else None,
                    "prompt_templates": len(templates)},
        "head": "zero-shot",
        "source": f"open_clip:{arch}" + (f"/{tag}" if pretrained else ""),
    }
    return LoadedModel(entry.name, forward, model, preprocess, card)
