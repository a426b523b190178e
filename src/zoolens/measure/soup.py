"""Model soups: averaging the weights of fine-tuned models (Wortsman et al. 2022).

Wortsman et al. (2022), "Model soups: averaging weights of multiple fine-tuned models improves
accuracy without increasing inference time", ICML. Networks fine-tuned from the *same*
pre-trained initialisation with different hyper-parameters often lie in one low-error basin,
so the average of their weights is itself a good network.

- uniform soup (their Eq. 1 with equal weights): θ = (1/k) Σ_i θ_i, for every floating-point
  tensor of the state dicts, accumulated in float64 and cast back to the tensor's own dtype.
  Integer and boolean buffers (BatchNorm's ``num_batches_tracked``) are counters, not weights:
  they are copied from the first ingredient. (BatchNorm running means/variances are floating
  buffers and are averaged like weights, as in the paper's code.)
- greedy soup (their Recipe 1): sort the ingredients by held-out score, best first; start the
  soup with the best; try each next ingredient in that order and keep it only if the uniform
  soup of the kept ones plus it scores at least as well on held-out data as the soup without
  it. By construction the greedy soup's held-out score is never below the best ingredient's.

Pure maths on state dicts (mappings of name -> torch tensor): no files, no models; loading
and scoring live in ``zoolens.study.soup``. Ingredients with different keys, shapes or a
floating/integer mismatch are refused with a ZoolensError naming the tensor.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from zoolens.errors import ZoolensError

__all__ = ["uniform_soup", "greedy_soup", "GreedySoup", "check_compatible"]


def _label(names: Sequence[str] | None, i: int) -> str:
    return f"ingredient {names[i]!r}" if names is not None else f"ingredient {i}"


def check_compatible(
    state_dicts: Sequence[Mapping[str, Any]], names: Sequence[str] | None = None
) -> None:
    """Raise ZoolensError unless every state dict has the first one's keys, shapes and kinds
    (floating vs. integer/bool) of tensors."""
    if len(state_dicts) == 0:
        raise ZoolensError("a soup needs at least one ingredient, got none")
    first = state_dicts[0]
    for i, sd in enumerate(state_dicts[1:], start=1):
        missing = [k for k in first if k not in sd]
        extra = [k for k in sd if k not in first]
        if missing:
            raise ZoolensError(
                f"{_label(names, i)} lacks key {missing[0]!r} that "
                f"{_label(names, 0)} has ({len(missing)} missing)"
            )
        if extra:
            raise ZoolensError(
                f"{_label(names, i)} has key {extra[0]!r} that "
                f"{_label(names, 0)} lacks ({len(extra)} extra)"
            )
        for key, ref in first.items():
            tensor = sd[key]
            if tuple(tensor.shape) != tuple(ref.shape):
                raise ZoolensError(
                    f"key {key!r}: {_label(names, i)} has shape "
                    f"{tuple(tensor.shape)}, {_label(names, 0)} has "
                    f"{tuple(ref.shape)}"
                )
            if tensor.is_floating_point() != ref.is_floating_point():
                raise ZoolensError(
                    f"key {key!r}: {_label(names, i)} has dtype {tensor.dtype}, "
                    f"{_label(names, 0)} has {ref.dtype}"
                )


def uniform_soup(
    state_dicts: Sequence[Mapping[str, Any]], names: Sequence[str] | None = None
) -> dict[str, Any]:
    """The uniform soup: θ[key] = (1/k) Σ_i θ_i[key] for floating tensors (float64 sum, cast
    back to the first ingredient's dtype); integer/bool tensors copied from the first.

    state_dicts: k >= 1 mappings of name -> torch.Tensor with identical keys and shapes
    (ZoolensError otherwise, naming the key). Returns a new dict in the first ingredient's key
    order, on the CPU; the inputs are not modified.
    """
    import torch

    check_compatible(state_dicts, names)
    k = len(state_dicts)
    soup: dict[str, Any] = {}
    for key, ref in state_dicts[0].items():
        if not ref.is_floating_point():
            soup[key] = ref.detach().cpu().clone()
            continue
        total = torch.zeros(ref.shape, dtype=torch.float64)
        for sd in state_dicts:
            total += sd[key].detach().cpu().to(torch.float64)
        soup[key] = (total / k).to(ref.dtype)
    return soup


@dataclass
class GreedySoup:
    """Result of :func:`greedy_soup`.

    order: ingredient indices sorted by individual held-out score (best first; ties keep the
    input order); members: the indices kept, in the order they were added; state_dict: the
    soup of the members; score: its held-out score; ingredient_scores: each ingredient's own
    held-out score (input order); history: one dict per tried ingredient (index, score of the
    soup with it, kept).
    """

    order: list[int]
    members: list[int]
    state_dict: dict[str, Any]
    score: float
    ingredient_scores: list[float]
    history: list[dict[str, Any]] = field(default_factory=list)


def greedy_soup(
    state_dicts: Sequence[Mapping[str, Any]],
    score_fn: Callable[[Mapping[str, Any]], float],
    *,
    ingredient_scores: Sequence[float] | None = None,
    names: Sequence[str] | None = None,
) -> GreedySoup:
    """Wortsman et al. (2022) Recipe 1 (greedy soup), higher ``score_fn`` is better.

    score_fn(state_dict) -> held-out score (e.g. accuracy on a held-out split, never the test
    set). ingredient_scores: the ingredients' own scores when already known (else computed
    with score_fn). Each candidate is kept iff score(uniform_soup(kept + [candidate])) >=
    score(uniform_soup(kept)), so the result scores at least the best ingredient.
    """
    check_compatible(state_dicts, names)
    if ingredient_scores is None:
        ingredient_scores = [float(score_fn(sd)) for sd in state_dicts]
    scores = [float(s) for s in ingredient_scores]
    if len(scores) != len(state_dicts):
        raise ZoolensError(f"{len(scores)} ingredient scores for {len(state_dicts)} ingredients")
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    members = [order[0]]
    best_score = scores[order[0]]
    soup = uniform_soup([state_dicts[order[0]]])
    history = [{"index": order[0], "score": best_score, "kept": True}]
    for i in order[1:]:
        candidate = uniform_soup([state_dicts[j] for j in members + [i]], names=None)
        score = float(score_fn(candidate))
        kept = score >= best_score
        history.append({"index": i, "score": score, "kept": kept})
        if kept:
            members.append(i)
            best_score, soup = score, candidate
    return GreedySoup(
        order=order,
        members=members,
        state_dict=soup,
        score=best_score,
        ingredient_scores=scores,
        history=history,
    )
