"""demo.train's loops share one shuffle-and-batch helper; each trainer equals, weight for
weight, its definition written out here as a plain loop: torch seeded, one permutation of
the examples per epoch from the seeded generator, batches in that order, one optimiser
step per batch."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from zoolens.demo.models import STD, MEAN, SmallCNN, build
from zoolens.demo.train import (
    _shuffled_batches,
    augment,
    nt_xent,
    train_autoencoder,
    train_simclr,
    train_supervised,
)


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # bit-identical reruns
    yield
    torch.set_num_threads(threads)


def _plain_supervised(model, x, y, *, epochs, lr, batch_size, seed):
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=5e-4)
    steps = epochs * math.ceil(len(x) / batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.25)
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), batch_size):
            idx = perm[i : i + batch_size]
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
            sched.step()
    return model.eval()


def _plain_simclr(encoder, x, *, epochs, batch_size, seed, lr=2e-3, temperature=0.2):
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    dim = encoder.embed_dim
    projector = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, 64))
    params = list(encoder.features.parameters()) + list(projector.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=lr, total_steps=max(epochs * (len(x) // batch_size), 1), pct_start=0.2
    )
    for _ in range(epochs):
        encoder.train()
        perm = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x) - batch_size + 1, batch_size):
            batch = x[perm[i : i + batch_size]]
            z1 = projector(encoder.embed(augment(batch, gen)))
            z2 = projector(encoder.embed(augment(batch, gen)))
            opt.zero_grad(set_to_none=True)
            nt_xent(z1, z2, temperature).backward()
            opt.step()
            sched.step()
    return encoder.eval()


def _plain_autoencoder(x, *, epochs, batch_size, seed, code=8, lr=2e-3):
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = build("autoencoder", code=code)
    target = x * STD + MEAN
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-5)
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), batch_size):
            idx = perm[i : i + batch_size]
            opt.zero_grad(set_to_none=True)
            F.mse_loss(torch.sigmoid(model(x[idx])), target[idx]).backward()
            opt.step()
    return model.eval()


def _assert_same_weights(a: nn.Module, b: nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


def _data(n=42, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g)


def test_shuffled_batches_cover_a_fresh_permutation():
    gen, ref = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    batches = list(_shuffled_batches(10, 4, gen))
    perm = torch.randperm(10, generator=ref)
    assert [b.tolist() for b in batches] == [
        perm[:4].tolist(),
        perm[4:8].tolist(),
        perm[8:].tolist(),
    ]
    kept = list(_shuffled_batches(10, 4, gen, drop_last=True))
    perm = torch.randperm(10, generator=ref)
    assert [b.tolist() for b in kept] == [perm[:4].tolist(), perm[4:8].tolist()]
    assert list(_shuffled_batches(3, 4, gen, drop_last=True)) == []
    torch.randperm(3, generator=ref)  # an epoch without a full batch still draws its order
    assert torch.equal(gen.get_state(), ref.get_state())


def test_supervised_is_the_plain_minibatch_loop():
    x, y = _data()
    calls = []
    torch.manual_seed(0)
    new = train_supervised(
        SmallCNN((4, 8), 16), x, y, epochs=2, lr=1e-2, batch_size=16, seed=5, progress=calls.append
    )
    torch.manual_seed(0)
    plain = _plain_supervised(SmallCNN((4, 8), 16), x, y, epochs=2, lr=1e-2, batch_size=16, seed=5)
    _assert_same_weights(new, plain)
    assert len(calls) == 2 * 3  # 42 examples in batches of 16: 16, 16, 10


def test_simclr_is_the_plain_minibatch_loop():
    x, _ = _data(40)
    calls = []
    torch.manual_seed(1)
    new = train_simclr(
        SmallCNN((4, 8), 16), x, epochs=2, batch_size=16, seed=2, progress=calls.append
    )
    torch.manual_seed(1)
    plain = _plain_simclr(SmallCNN((4, 8), 16), x, epochs=2, batch_size=16, seed=2)
    _assert_same_weights(new, plain)
    assert len(calls) == 2 * 2  # the last 8 examples of each epoch are dropped


def test_autoencoder_is_the_plain_minibatch_loop():
    x, _ = _data(37)
    new = train_autoencoder(x, epochs=2, code=8, batch_size=16, seed=4)
    plain = _plain_autoencoder(x, epochs=2, batch_size=16, seed=4, code=8)
    _assert_same_weights(new, plain)
