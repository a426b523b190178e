"""Uniform and greedy soups (Wortsman et al. 2022) against float64 references."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from zoolens.errors import ZoolensError
from zoolens.measure.soup import greedy_soup, uniform_soup


def _ingredients(k: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    out = []
    for i in range(k):
        out.append(
            {
                "conv.weight": torch.randn(4, 3, 3, 3, generator=gen),
                "bn.running_mean": torch.randn(4, generator=gen),
                "bn.num_batches_tracked": torch.tensor(100 + i, dtype=torch.int64),
                "half": torch.randn(5, generator=gen).to(torch.float16),
                "mask": torch.tensor([True, i % 2 == 0]),
            }
        )
    return out


def test_uniform_soup_is_the_float64_mean_cast_back():
    sds = _ingredients(5)
    soup = uniform_soup(sds)
    assert list(soup) == list(sds[0])
    for key in ("conv.weight", "bn.running_mean", "half"):
        ref = np.mean([sd[key].double().numpy() for sd in sds], axis=0)  # float64 oracle
        assert soup[key].dtype == sds[0][key].dtype
        np.testing.assert_array_equal(
            soup[key].numpy(), torch.from_numpy(ref).to(sds[0][key].dtype).numpy()
        )
    # integer / bool buffers are counters: copied from the first ingredient, not averaged
    assert soup["bn.num_batches_tracked"].item() == 100
    assert soup["bn.num_batches_tracked"].dtype == torch.int64
    assert soup["mask"].tolist() == [True, True]
    # inputs untouched
    assert sds[1]["bn.num_batches_tracked"].item() == 101


def test_float64_accumulation_beats_float32_rounding():
    # 1 + 3 x 4e-8: a float32 running sum loses each tiny value (half an ulp at 1 is 6e-8);
    # the float64 mean keeps them and lands one float32 ulp above 0.25.
    sds = [{"w": torch.tensor([1.0], dtype=torch.float32)}] + [
        {"w": torch.tensor([4e-8], dtype=torch.float32)} for _ in range(3)
    ]
    soup = uniform_soup(sds)
    exact = (1.0 + 3 * float(np.float32(4e-8))) / 4
    naive = np.float32(0)
    for sd in sds:
        naive = np.float32(naive + sd["w"].numpy()[0])
    assert soup["w"].item() == float(np.float32(exact))
    assert soup["w"].item() != float(naive / np.float32(4))


def test_single_ingredient_soup_is_a_copy():
    sd = _ingredients(1)[0]
    soup = uniform_soup([sd])
    for key in sd:
        assert torch.equal(soup[key], sd[key])
        assert soup[key].data_ptr() != sd[key].data_ptr()


def test_mismatched_keys_are_refused_naming_the_key():
    a, b = _ingredients(2)
    del b["bn.running_mean"]
    with pytest.raises(ZoolensError, match="bn.running_mean"):
        uniform_soup([a, b])
    a, b = _ingredients(2)
    b["extra.bias"] = torch.zeros(3)
    with pytest.raises(ZoolensError, match="extra.bias"):
        uniform_soup([a, b], names=["a.pt", "b.pt"])


def test_mismatched_shapes_are_refused_naming_the_key_and_shapes():
    a, b = _ingredients(2)
    b["conv.weight"] = torch.zeros(8, 3, 3, 3)
    with pytest.raises(ZoolensError, match=r"conv\.weight.*\(8, 3, 3, 3\).*\(4, 3, 3, 3\)"):
        uniform_soup([a, b])


def test_float_versus_integer_mismatch_is_refused():
    a, b = _ingredients(2)
    b["bn.num_batches_tracked"] = torch.tensor(3.0)
    with pytest.raises(ZoolensError, match="num_batches_tracked"):
        uniform_soup([a, b])


def test_empty_soup_is_refused():
    with pytest.raises(ZoolensError, match="at least one"):
        uniform_soup([])


def _score_by_target(target: torch.Tensor):
    # held-out "accuracy": closeness of the soup's weight to a target
    return lambda sd: -float(torch.linalg.norm(sd["w"].double() - target.double()))


def test_greedy_soup_follows_recipe_1():
    target = torch.zeros(3)
    sds = [
        {"w": torch.tensor(v)}
        for v in ([1.0, 0.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 5.0, 0.0], [0.5, 0.0, 0.0])
    ]
    result = greedy_soup(sds, _score_by_target(target))
    # individual scores: -1, -1, -5, -0.5 -> order 3, 0, 1, 2
    assert result.order == [3, 0, 1, 2]
    # start {3}: -0.5; +0 -> mean .75 -> -0.75 dropped; +1 -> mean -.25 -> -0.25 kept;
    # +2 -> mean (-.25, 2.5, 0) -> worse, dropped
    assert result.members == [3, 1]
    assert result.score == pytest.approx(-0.25)
    assert [h["kept"] for h in result.history] == [True, False, True, False]
    torch.testing.assert_close(result.state_dict["w"], torch.tensor([-0.25, 0.0, 0.0]))


@pytest.mark.parametrize("seed", range(20))
def test_greedy_soup_never_worse_than_best_ingredient(seed):
    gen = torch.Generator().manual_seed(seed)
    sds = [{"w": torch.randn(6, generator=gen)} for _ in range(6)]
    score = _score_by_target(torch.randn(6, generator=gen))
    result = greedy_soup(sds, score)
    best = max(score(sd) for sd in sds)
    assert result.score >= best
    assert score(result.state_dict) == pytest.approx(result.score)
    # the soup is exactly the uniform soup of its members
    torch.testing.assert_close(
        result.state_dict["w"], uniform_soup([sds[i] for i in result.members])["w"]
    )


def test_greedy_soup_refuses_wrong_score_count():
    sds = [{"w": torch.zeros(2)}, {"w": torch.ones(2)}]
    with pytest.raises(ZoolensError, match="2 ingredients"):
        greedy_soup(sds, lambda sd: 0.0, ingredient_scores=[1.0])
