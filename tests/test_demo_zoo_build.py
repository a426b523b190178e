"""The demo zoo's design without training: every axis present, cards complete, categories
as the paper defines them (docs/design.md sec. 3), the network shapes."""

from __future__ import annotations

import pytest
import torch

from zoolens.demo.models import build, soup_cnn
from zoolens.demo.train import augment, nt_xent
from zoolens.demo.zoo_build import BASE, PROFILES, model_specs, soup_specs
from zoolens.zoo.cards import ModelCard
from zoolens.zoo.categories import pair_category

EXPECTED = {
    "cnn-seed1": "Reinit",
    "cnn-seed2": "Reinit",
    "cnn-dropout0.3": "HParam",
    "cnn-labelsmooth0.1": "HParam",
    "cnn-wd0.05": "HParam",
    "cnn-lr1e-3": "HParam",
    "mlp": "Arch",
    "resnet-small": "Arch",
    "vit-tiny": "Arch",
    "simclr-cnn+probe": "Framework",
    "autoencoder+probe": "Framework",
    "knn-pixels": "Framework",
    "logreg-pixels": "Framework",
    "random-forest-pixels": "Framework",
    "naive-bayes-pixels": "Framework",
    "digits-cnn+probe": "Dataset",
    "random-cnn+probe": "Dataset",
}


@pytest.mark.parametrize("profile", ["default", "quick"])
def test_every_axis_and_full_cards(profile):
    specs = model_specs(PROFILES[profile])
    assert specs[0].name == BASE
    cards = {s.name: ModelCard(name=s.name, seed=s.seed, **s.card) for s in specs}
    found = set()
    for name, card in cards.items():
        for field in ("arch", "arch_family", "framework", "pretrain_data", "head", "notes"):
            assert getattr(card, field), (name, field)
        assert card.hparams, name
        assert f"{PROFILES[profile].train_size:,}" in card.notes  # the subsample is stated
        if name != BASE:
            category = pair_category(cards[BASE], card)
            assert category == EXPECTED[name], name
            found.add(category)
    assert found == {"Reinit", "HParam", "Arch", "Framework", "Dataset"}
    # the soup ingredients share one init and differ in hyper-parameters
    ingredients = soup_specs(PROFILES[profile])
    assert len(ingredients) >= 3
    assert len({tuple(sorted(s.params.items())) for s in ingredients}) == len(ingredients)
    assert all(s.depends == ("simclr-encoder",) for s in ingredients)


def test_default_profile_is_a_superset_of_quick():
    assert set(PROFILES["quick"].models) < set(PROFILES["default"].models)
    assert PROFILES["default"].train_size > PROFILES["quick"].train_size


@pytest.mark.parametrize("arch", ["cnn", "mlp", "resnet", "vit"])
def test_networks_map_images_to_logits_and_embeddings(arch):
    torch.manual_seed(0)
    net = build(arch).eval()
    x = torch.randn(3, 1, 28, 28)
    assert net(x).shape == (3, 10)
    assert net.embed(x).shape == (3, net.embed_dim)
    assert soup_cnn().state_dict().keys() == build("cnn").state_dict().keys()


def test_augment_and_nt_xent():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(8, 1, 28, 28)
    a, b = augment(x, gen), augment(x, gen)
    assert a.shape == x.shape and not torch.equal(a, b)
    # NT-Xent: identical views give a lower loss than unrelated views
    z = torch.randn(16, 4)
    assert nt_xent(z, z, 0.2) < nt_xent(z, torch.randn(16, 4), 0.2)
    # hand value for two examples: the positive competes with the two negatives
    z1 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    t = 0.5
    # row 0 of [z1; z1]: sims to (row1, row2=positive, row3) = (0, 1, 0) / t
    expected = -torch.log(
        torch.exp(torch.tensor(2.0))
        / (torch.exp(torch.tensor(2.0)) + 2 * torch.exp(torch.tensor(0.0)))
    )
    torch.testing.assert_close(nt_xent(z1, z1, t), expected)
