"""open_clip adapter: ``open_clip:<arch>[/<pretrained tag>]`` -> a zero-shot classifier.

- model: ``open_clip.create_model_and_transforms(arch, pretrained=tag or None)``; the eval
  transform is the one open_clip returns;
- zero-shot head (Radford et al. 2021, Sec. 3.1.4): for class c and prompt templates t_1..t_T,
  w_c = normalize(mean_t normalize(encode_text(t_j.format(name_c)))); logits for an image x are
  ``exp(logit_scale) * normalize(encode_image(x)) @ W``; the head is recorded as "zero-shot"
  in the card, with the number of templates in hparams;
- linear-probe head (``head = "linear-probe"``, ``probe_data = <image folder>``; Radford et
  al. 2021 Sec. 3.2, Kornblith et al. 2019): a multinomial logistic regression
  (``zoolens.measure.probe.fit_linear_probe``, L-BFGS, λ chosen on a validation split unless
  ``probe_l2`` is given) on the L2-normalised image embeddings of a labelled training folder
  with the same classes; logits ``normalize(encode_image(x)) @ Wᵀ + b``; head "linear-probe";
- embeddings: ``encode_image(x)`` (the image embedding, before normalisation);
- card: arch, arch_family, framework "contrastive", pretrain_data from the tag
  (laion2b_* -> LAION-2B, openai -> OpenAI-WIT), head "zero-shot", source.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from zoolens.collect._cards import arch_family, data_from_tag
from zoolens.collect._download import build_or_explain
from zoolens.collect.images import ImageFolder, UndecodableImage
from zoolens.collect.specs import (
    LoadedModel,
    ModelEntry,
    build_preprocess,
    model_library,
    register_adapter,
)
from zoolens.errors import ZoolensError
from zoolens.measure.probe import fit_linear_probe
from zoolens.progress import progress_bar

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


def zero_shot_weights(
    model: Any, tokenizer: Any, class_names: Sequence[str], templates: Sequence[str]
):
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


def fit_probe_head(
    model: Any,
    preprocess: Any,
    root: str,
    class_names: Sequence[str],
    l2: float | None,
    spec: str,
    batch_size: int = 64,
):
    """Fit the linear-probe head on a labelled folder: ``(W (C, D), b (C,), card hparams)``."""
    import torch

    folder = ImageFolder(root, classes=list(class_names))
    feats = []
    with (
        torch.inference_mode(),
        progress_bar(len(folder), f"{spec} probe features", unit="img") as advance,
    ):
        for start in range(0, len(folder), batch_size):
            stop = min(start + batch_size, len(folder))
            try:
                x = torch.stack([preprocess(folder.load(i)) for i in range(start, stop)])
            except UndecodableImage as exc:
                raise ZoolensError(f"{exc} (probe_data of {spec})") from None
            f = model.encode_image(x).float()
            feats.append(f / f.norm(dim=-1, keepdim=True).clamp_min(1e-12))
            advance(stop - start)
    probe = fit_linear_probe(
        torch.cat(feats).numpy(), folder.labels, l2_grid=l2 if l2 is not None else None
    )
    weight = torch.zeros(len(class_names), probe.coef_.shape[1], dtype=torch.float32)
    bias = torch.full((len(class_names),), -1e4, dtype=torch.float32)
    cols = torch.as_tensor(np.asarray(probe.classes_, dtype=np.int64))
    weight[cols] = torch.as_tensor(probe.coef_, dtype=torch.float32)
    bias[cols] = torch.as_tensor(probe.intercept_, dtype=torch.float32)
    return (
        weight,
        bias,
        {
            "probe_data": str(root),
            "probe_l2": float(probe.l2),
            "probe_train_examples": int(len(folder)),
        },
    )


@register_adapter("open_clip")
def load_open_clip(
    entry: ModelEntry, pretrained: bool, class_names: Sequence[str] | None = None
) -> LoadedModel:
    open_clip = model_library("open_clip", entry)
    arch, _, tag = entry.target.partition("/")
    if arch not in open_clip.list_models():
        raise ZoolensError(
            f"model {entry.spec}: open_clip has no model {arch!r} (see open_clip.list_models())"
        )
    if pretrained and not tag:
        raise ZoolensError(
            f"model {entry.spec}: name the pretrained weights, e.g. "
            f"open_clip:{arch}/{(open_clip.list_pretrained_tags_by_model(arch) or ['TAG'])[0]}"
            f" (or use --no-pretrained)"
        )
    if pretrained and tag not in open_clip.list_pretrained_tags_by_model(arch):
        raise ZoolensError(
            f"model {entry.spec}: unknown pretrained tag {tag!r} for {arch}; use one "
            f"of {', '.join(open_clip.list_pretrained_tags_by_model(arch)[:8])}"
        )
    head = entry.head or "zero-shot"
    if head not in ("zero-shot", "linear-probe"):
        raise ZoolensError(
            f"model {entry.spec}: unknown head {head!r} for open_clip (use "
            f"'zero-shot' or 'linear-probe')"
        )
    if head == "linear-probe" and not entry.probe_data:
        raise ZoolensError(
            f"model {entry.spec}: the linear-probe head needs probe_data (a "
            f"labelled training image folder with the same classes)"
        )
    if not class_names:
        raise ZoolensError(f"model {entry.spec}: a {head} head needs class names")
    model, _, preprocess = build_or_explain(
        entry.spec,
        pretrained,
        entry.kwargs,
        lambda: open_clip.create_model_and_transforms(
            arch, pretrained=tag if pretrained else None, **entry.kwargs
        ),
    )
    model.eval()
    if entry.preprocess is not None:
        preprocess = build_preprocess(entry.preprocess, entry.spec)
    templates = tuple(entry.templates or DEFAULT_TEMPLATES)
    hparams: dict[str, Any] = {"pretrained_tag": tag if pretrained else None}
    if head == "zero-shot":
        tokenizer = open_clip.get_tokenizer(arch)
        # exp(logit_scale) * normalize(image) @ W: the scale is folded into the (C, D) weight
        weight = (
            zero_shot_weights(model, tokenizer, class_names, templates)
            * model.logit_scale.exp().float().detach()
        ).T.contiguous()
        bias = None
        hparams["prompt_templates"] = len(templates)
    else:
        assert entry.probe_data is not None  # checked above for the linear-probe head
        weight, bias, probe_info = fit_probe_head(
            model, preprocess, entry.probe_data, class_names, entry.probe_l2, entry.spec
        )
        hparams.update(probe_info)
    state: dict[str, Any] = {"W": weight, "b": bias}

    def forward(x: Any):
        image = model.encode_image(x)
        feats = image.float()
        feats = feats / feats.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        if state["W"].device != feats.device:
            state["W"] = state["W"].to(feats.device)
            state["b"] = None if state["b"] is None else state["b"].to(feats.device)
        logits = feats @ state["W"].T
        return (logits if state["b"] is None else logits + state["b"]), image

    card: dict[str, Any] = {
        "arch": arch,
        "arch_family": arch_family(arch),
        "framework": "contrastive" if pretrained else "untrained",
        "pretrain_data": data_from_tag(tag) or tag if pretrained else "none",
        "hparams": hparams,
        "head": head,
        "source": f"open_clip:{arch}" + (f"/{tag}" if pretrained else ""),
    }
    return LoadedModel(entry.name, forward, model, preprocess, card)
