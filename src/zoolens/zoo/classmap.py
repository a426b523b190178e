"""Class maps: a model's outputs over its own classes, scored in the zoo's classes.

Public evaluation sets often use a subset or a coarsening of the models' classes: ImageNet-R
and ImageNet-A use 200 of ImageNet's 1,000 classes (200 groups of one class), model-vs-human
scores 1,000-class models in 16 coarse categories. A class map (``import --class-map
MAP.json``) is a JSON object from each zoo class (its name, an alias or its id) to the list
of model classes in its group (model class ids, or names / wnids given ``--model-classes``).
Every zoo class appears exactly once, every model class at most once, and only classes the
model has; anything else is refused in one line naming the file.

What the zoo stores, by what the model gives (C zoo classes, M model classes):

- probabilities (logits through their softmax, log-probabilities through exp, counts as
  fractions): per zoo class the **mean** of its group's probabilities (model-vs-human's
  rule, Geirhos et al. 2021, ``helper/probabilities_to_decision``), or their ``sum`` or
  ``max`` (``--class-map-agg``), stored as logits ``log(max(q, 1e-12))``: softmax of the
  stored scores is q normalised, so the top-1 is the group with the largest aggregate;
- top-k lists: a decision, the group of the first listed class that falls into a group;
- decisions: the group of the decided class.

A decision (or top-k list) outside every group is an abstention (class id -1): wrong in
accuracy and in every agreement measure; the import says how many there were.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable
from typing import Any

import numpy as np

from zoolens.errors import ZoolensError
from zoolens.zoo.classes import ABSTAIN, ClassIndex, parse_json

AGGREGATIONS = ("mean", "sum", "max")
MAX_MAP_BYTES = 64 * 2**20  # a map of 1,000,000 classes is a few MiB
SCORE_FLOOR = 1e-12  # as the store's probability floor (log(1e-12) for a zero aggregate)


@dataclass(frozen=True)
class ClassMap:
    """``groups[c]``: the model class ids of zoo class c; ``num_model_classes``: M."""

    groups: tuple[np.ndarray, ...]
    num_model_classes: int
    agg: str = "mean"
    source: str = "class map"
    model_classes: ClassIndex | None = None

    def __post_init__(self) -> None:
        if self.agg not in AGGREGATIONS:
            raise ZoolensError(
                f"{self.source}: unknown aggregation {self.agg!r}; use one of "
                f"{', '.join(AGGREGATIONS)}"
            )

    @property
    def num_classes(self) -> int:
        return len(self.groups)

    def lookup(self) -> np.ndarray:
        """(M,) the zoo class of each model class, -1 for one in no group."""
        table = np.full(self.num_model_classes, ABSTAIN, dtype=np.int64)
        for c, members in enumerate(self.groups):
            table[members] = c
        return table

    def aggregate(self, probs: np.ndarray) -> np.ndarray:
        """(N, C) float64: per zoo class the mean (sum, max) of its group's probabilities
        ``probs`` (N, M)."""
        probs = np.asarray(probs, dtype=np.float64)
        out = np.empty((probs.shape[0], self.num_classes))
        reducers: dict[str, Callable[..., Any]] = {"mean": np.mean, "sum": np.sum, "max": np.max}
        reduce = reducers[self.agg]
        for c, members in enumerate(self.groups):
            out[:, c] = reduce(probs[:, members], axis=1)
        return out

    def apply(self, kind: str, arrays: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], int]:
        """The model's outputs of ``kind`` in the zoo's classes, and how many rows fell
        outside every group (decisions and top-k; 0 for probabilities)."""
        first = next(iter(arrays.values()))
        if kind in ("logits", "probs", "log_probs", "counts"):
            probs = _as_probabilities(kind, np.asarray(first, dtype=np.float64))
            if probs.shape[1] != self.num_model_classes:
                raise ZoolensError(
                    f"{self.source}: the model's {kind} have {probs.shape[1]} columns, the "
                    f"map is for a model of {self.num_model_classes} classes"
                )
            scores = np.log(np.maximum(self.aggregate(probs), SCORE_FLOOR))
            return {"logits": scores}, 0
        lookup = self.lookup()
        if kind == "decisions":
            decisions = np.asarray(first, dtype=np.int64)
            self._check_ids(decisions[decisions != ABSTAIN])
            mapped = np.where(decisions == ABSTAIN, ABSTAIN, lookup[np.maximum(decisions, 0)])
            return {"decisions": mapped}, int(np.sum((mapped == ABSTAIN) & (decisions != ABSTAIN)))
        if kind == "topk":
            indices = np.asarray(arrays["topk_indices"], dtype=np.int64)
            self._check_ids(indices.ravel())
            groups = lookup[indices]
            hit = groups != ABSTAIN
            first_hit = np.argmax(hit, axis=1)
            mapped = np.where(hit.any(axis=1), groups[np.arange(len(groups)), first_hit], ABSTAIN)
            return {"decisions": mapped}, int(np.sum(mapped == ABSTAIN))
        raise ZoolensError(f"{self.source}: a class map cannot map {kind} outputs")

    def _check_ids(self, ids: np.ndarray) -> None:
        bad = ids[(ids < 0) | (ids >= self.num_model_classes)]
        if bad.size:
            raise ZoolensError(
                f"{self.source}: the model's outputs name class {int(bad[0])}, outside the "
                f"model's {self.num_model_classes} classes"
            )


def _as_probabilities(kind: str, arr: np.ndarray) -> np.ndarray:
    if kind == "logits":
        shifted = arr - arr.max(axis=1, keepdims=True)
        e = np.exp(shifted)
        return e / e.sum(axis=1, keepdims=True)
    if kind == "log_probs":
        return np.exp(arr)
    if kind == "counts":
        total = arr.sum(axis=1, keepdims=True)
        return arr / np.where(total > 0, total, 1)
    return arr


def model_class_index(value: str) -> tuple[int, ClassIndex | None]:
    """``--model-classes``: a count M, or class names (as ``--class-names``: a comma list or
    a file; ImageNet's ``wnid name`` lines keep the wnids as aliases)."""
    from zoolens.zoo.classes import read_class_names

    text = str(value).strip()
    if text.isdigit():
        count = int(text)
        if count < 1:
            raise ZoolensError(f"--model-classes {value}: the model needs at least one class")
        return count, None
    names, aliases = read_class_names(text)
    return len(names), ClassIndex(names, aliases)


def read_class_map(
    path: str | Path,
    zoo_classes: ClassIndex,
    num_model_classes: int,
    *,
    model_classes: ClassIndex | None = None,
    agg: str = "mean",
) -> ClassMap:
    """Read and check ``MAP.json`` (module docstring) for a zoo with classes ``zoo_classes``
    and a model of ``num_model_classes`` classes (named by ``model_classes``, if given)."""
    path = Path(path)
    where = f"--class-map {path}"
    try:
        if path.stat().st_size > MAX_MAP_BYTES:
            raise ZoolensError(f"{where}: larger than {MAX_MAP_BYTES // 2**20} MiB")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ZoolensError(f"{where}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ZoolensError(f"{where}: unreadable ({exc})") from None

    # objects as their (key, value) pairs: json.loads would keep only a repeated key's last
    data = parse_json(text, where, object_pairs_hook=_Pairs)
    if not isinstance(data, _Pairs) or not data:
        raise ZoolensError(
            f"{where}: expected a JSON object from each zoo class to a list of model classes"
        )
    num_zoo = len(zoo_classes.names)
    groups: list[np.ndarray | None] = [None] * num_zoo
    owner: dict[int, str] = {}
    for key, members in data:
        c = _zoo_class(key, zoo_classes, num_zoo, where)
        if groups[c] is not None:
            raise ZoolensError(
                f"{where}: zoo class {zoo_classes.names[c]!r} is named twice (as {key!r})"
            )
        if not isinstance(members, list) or not members:
            raise ZoolensError(
                f"{where}: zoo class {key!r} needs a non-empty list of model classes"
            )
        ids = []
        for member in members:
            m = _model_class(member, model_classes, num_model_classes, where, key)
            if m in owner:
                raise ZoolensError(
                    f"{where}: model class {member!r} is named twice (in {owner[m]!r} and {key!r})"
                )
            owner[m] = str(key)
            ids.append(m)
        groups[c] = np.asarray(ids, dtype=np.int64)
    missing = [zoo_classes.names[c] for c, g in enumerate(groups) if g is None]
    if missing:
        more = f" (and {len(missing) - 3} more)" if len(missing) > 3 else ""
        raise ZoolensError(
            f"{where}: no group for zoo class(es) {', '.join(map(repr, missing[:3]))}{more}; "
            "every zoo class needs its list of model classes"
        )
    return ClassMap(
        tuple(g for g in groups if g is not None),
        int(num_model_classes),
        agg,
        where,
        model_classes,
    )


class _Pairs(list):
    """A JSON object read as its list of (key, value) pairs, in file order."""


def _zoo_class(key: str, classes: ClassIndex, count: int, where: str) -> int:
    if key in classes.names or key in classes.aliases:
        return classes.id_of(key, where, "zoo class")
    if key.strip().isdigit() and int(key) < count:
        return int(key)
    return classes.id_of(key, where, "zoo class")  # raises, naming the closest


def _model_class(member: Any, classes: ClassIndex | None, count: int, where: str, key: str) -> int:
    if isinstance(member, bool) or not isinstance(member, (int, str)):
        raise ZoolensError(f"{where}: group {key!r}: {member!r} is not a class id or name")
    if isinstance(member, int):
        m = member
    elif classes is not None:
        m = classes.id_of(member, where, f"group {key!r}")
    else:
        raise ZoolensError(
            f"{where}: group {key!r} names model class {member!r}: give the model's class "
            "names (--model-classes FILE) or use class ids"
        )
    if not 0 <= m < count:
        raise ZoolensError(
            f"{where}: group {key!r}: model class {m} is not one of the model's {count} classes"
        )
    return int(m)
