"""Card fields the adapters share: architecture family and upstream data from library names."""

from __future__ import annotations

import re


def arch_family(arch: str) -> str:
    """Leading letters of an architecture name (plus a ``v2``-style suffix).

    "resnet50" -> "resnet", "vit_tiny_patch16_224" -> "vit", "resnetv2_50x1" -> "resnetv2",
    "ViT-B-32" -> "vit", "efficientnet_b0" -> "efficientnet".
    """
    match = re.match(r"[a-z]+(?:v\d+)?", arch.lower())
    return match.group(0) if match else arch.lower()


# Substrings of a pretrained tag -> upstream data set (first match wins; order matters:
# "in21k_ft_in1k" was pretrained on ImageNet-21k).
_TAG_DATA = (
    ("laion2b", "LAION-2B"),
    ("laion400m", "LAION-400M"),
    ("laion", "LAION"),
    ("datacomp", "DataComp"),
    ("commonpool", "CommonPool"),
    ("metaclip", "MetaCLIP"),
    ("openai", "OpenAI-WIT"),
    ("yfcc", "YFCC-15M"),
    ("cc12m", "CC12M"),
    ("jft", "JFT-300M"),
    ("ig1b", "IG-1B"),
    ("ig", "Instagram"),
    ("in22k", "ImageNet-21k"),
    ("in21k", "ImageNet-21k"),
    ("in12k", "ImageNet-12k"),
    ("in1k", "ImageNet-1k"),
)

_TAG_FRAMEWORK = (
    ("clip", "contrastive"),
    ("laion", "contrastive"),
    ("openai", "contrastive"),
    ("dino", "self-supervised"),
    ("mae", "self-supervised"),
    ("swsl", "semi-supervised"),
    ("ssl", "semi-supervised"),
    ("distill", "distilled"),
)


def data_from_tag(tag: str | None) -> str | None:
    if not tag:
        return None
    low = tag.lower()
    for needle, data in _TAG_DATA:
        if needle in low:
            return data
    return None


def framework_from_tag(tag: str | None, default: str = "supervised") -> str:
    low = (tag or "").lower()
    for needle, framework in _TAG_FRAMEWORK:
        if needle in low:
            return framework
    return default
