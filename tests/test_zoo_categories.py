"""Model cards and pair categories (docs/design.md sec. 3; Gontijo-Lopes et al. 2021, Sec. 3)."""

from __future__ import annotations

import pytest

from zoolens import ModelCard
from zoolens.errors import ZoolensError
from zoolens.zoo.cards import to_card
from zoolens.zoo.categories import arch_family_of, normalize, pair_category

BASE = dict(
    name="base",
    arch="resnet50",
    arch_family="resnet",
    framework="supervised",
    pretrain_data="ImageNet",
    hparams={"lr": 0.1, "aug": "standard"},
    seed=0,
    head="trained",
)


def card(**changes):
    return ModelCard(**{**BASE, "name": "other", **changes})


@pytest.mark.parametrize(
    "changes, expected",
    [
        ({}, "Same"),
        ({"seed": 1}, "Reinit"),
        ({"hparams": {"lr": 0.01, "aug": "standard"}}, "HParam"),
        ({"arch": "resnet101"}, "HParam"),  # same family: the paper files it as HParam
        ({"head": "linear probe"}, "HParam"),
        ({"arch": "vit_b16", "arch_family": "vit"}, "Arch"),
        ({"framework": "contrastive"}, "Framework"),
        ({"pretrain_data": "JFT-300M"}, "Dataset"),
        # first match wins: dataset beats every other difference
        ({"pretrain_data": "JFT-300M", "framework": "clip", "arch": "vit", "seed": 4}, "Dataset"),
        ({"framework": "simclr", "arch": "vit_b16", "arch_family": "vit", "seed": 4}, "Framework"),
        ({"arch": "vit_b16", "arch_family": "vit", "hparams": {}, "seed": 4}, "Arch"),
        ({"hparams": {"lr": 0.1, "aug": "standard", "wd": 1e-4}, "seed": 3}, "HParam"),
        # things that never matter
        ({"source": "https://x", "notes": "n"}, "Same"),
        # explicit override in the other card
        ({"pretrain_data": "JFT-300M", "category": "reinit"}, "Reinit"),
    ],
)
def test_rules_first_match_wins(changes, expected):
    assert pair_category(ModelCard(**BASE), card(**changes)) == expected


@pytest.mark.parametrize(
    "a, b",
    [
        ("IN", "ImageNet"),
        ("imagenet-1k", "in1k"),
        ("ImageNet 1K", "ILSVRC-2012"),
        ("IN-21k", "imagenet22k"),
        ("JFT", "jft-300M"),
        ("CIFAR-10", "cifar10"),
    ],
)
def test_dataset_aliases(a, b):
    assert normalize(a) == normalize(b)
    assert pair_category(card(pretrain_data=a), card(pretrain_data=b)) == "Same"


def test_alias_keeps_distinct_datasets_apart():
    assert normalize("ImageNet") != normalize("ImageNet-21k")
    assert pair_category(card(pretrain_data="IN"), card(pretrain_data="IN21k")) == "Dataset"


def test_arch_family_fallback():
    assert arch_family_of(ModelCard(arch="resnet50")) == "resnet"
    assert arch_family_of(ModelCard(arch="ResNet-101x0.5")) == "resnet"
    assert arch_family_of(ModelCard(arch="vit_base_patch16_224")) == "vit"
    base = ModelCard(arch="ResNet-101x0.5")
    assert pair_category(base, ModelCard(arch="ResNet-50x2")) == "HParam"  # paper's example
    assert pair_category(base, ModelCard(arch="efficientnet_b0")) == "Arch"


def test_dicts_and_case_insensitive_strings():
    assert pair_category(dict(BASE), {**BASE, "framework": "SUPERVISED", "name": "x"}) == "Same"
    assert pair_category(BASE, {**BASE, "hparams": {"lr": 0.1, "aug": "Standard"}}) == "Same"
    assert pair_category(BASE, {**BASE, "hparams": {"lr": 0.10000, "aug": "standard"}}) == "Same"


def test_missing_fields_compare_equal_only_to_missing():
    assert pair_category(ModelCard(), ModelCard()) == "Same"
    assert pair_category(ModelCard(framework="supervised"), ModelCard()) == "Framework"


def test_card_validation():
    assert to_card(None, "m") == ModelCard(name="m")
    assert to_card({"name": "old", "seed": 3}, "m").name == "m"
    assert to_card(ModelCard(name="x", arch="a"), "m") == ModelCard(name="m", arch="a")
    assert ModelCard(category="dataset").category == "Dataset"
    with pytest.raises(ZoolensError, match="'m'.*framwork"):
        to_card({"framwork": "supervised"}, "m")
    with pytest.raises(ZoolensError, match="category"):
        to_card({"category": "Different"}, "m")
    with pytest.raises(ZoolensError, match="seed"):
        to_card({"seed": "abc"}, "m")
    assert ModelCard.model_validate_json(ModelCard(**BASE).model_dump_json()) == ModelCard(**BASE)


def test_pair_categories_equal_pair_category_on_every_pair():
    """``pair_categories`` (each card normalised once, pairs compared as integer codes)
    gives ``pair_category``'s answer (the oracle) on every pair of a zoo whose cards mix
    every rule: explicit categories, dataset aliases, missing values, hyper-parameter dicts
    whose values differ only in type (1 and 1.0 are equal after normalisation) or in nested
    lists, the arch family's fallback, seeds missing or equal."""
    import itertools

    import numpy as np

    from zoolens.zoo.categories import pair_categories

    rng = np.random.default_rng(7)
    choices = dict(
        arch=["resnet50", "resnet101", "vit_b16", None, "ResNet-50"],
        arch_family=[None, "resnet", "ResNet", "vit"],
        framework=["supervised", "sup", "contrastive", None],
        pretrain_data=["ImageNet", "in1k", "imagenet-21k", None, ""],
        hparams=[{"lr": 1}, {"lr": 1.0}, {"lr": 0.1, "aug": ["a", "b"]}, {"aug": ["a", "B"]}, {}],
        seed=[None, 0, 1],
        head=["trained", None, "zero-shot"],
        category=[None, None, None, "Arch", "Dataset"],
    )
    cards = [
        ModelCard(name=f"m{i}", **{k: v[rng.integers(len(v))] for k, v in choices.items()})
        for i in range(38)
    ]
    cards.append(cards[0].model_copy(update={"name": "twin"}))  # "Same" as m0
    cards.append(cards[1].model_copy(update={"name": "reseeded", "seed": 99}))
    a, b = (np.array(index) for index in zip(*itertools.permutations(range(40), 2)))
    expected = [pair_category(cards[i], cards[j]) for i, j in zip(a, b)]
    got = pair_categories(cards, a, b)
    assert got == expected
    assert set(expected) >= {"Same", "Reinit", "HParam", "Arch", "Framework", "Dataset"}
    assert pair_categories([c.model_dump() for c in cards], a[:50], b[:50]) == expected[:50]
    assert pair_categories(cards, a[:0], b[:0]) == []


def test_pair_categories_with_an_unhashable_card_value_compare_pair_by_pair():
    """A card built in Python may hold a set (unhashable): the codes cannot be made, and the
    answer is pair_category's, pair by pair."""
    import numpy as np

    from zoolens.zoo.categories import pair_categories

    cards = [card(hparams={"tags": {"a"}}), card(hparams={"tags": {"a"}}), card(seed=3)]
    a, b = np.array([0, 0, 1]), np.array([1, 2, 2])
    expected = [pair_category(cards[i], cards[j]) for i, j in zip(a, b)]
    assert pair_categories(cards, a, b) == expected == ["Same", "HParam", "HParam"]
