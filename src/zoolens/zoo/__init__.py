"""The zoo store: labels + per-model outputs + cards on disk (docs/design.md sec. 2).

``Zoo`` (store.py), ``ModelCard`` (cards.py), ``pair_category`` (categories.py) and the file
importers (importers.py). Imports are lazy so ``import zoolens.zoo`` stays cheap.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Zoo", "ModelCard", "pair_category", "ZooWarning"]


def __getattr__(name: str) -> Any:
    if name in ("Zoo", "ZooWarning"):
        from zoolens.zoo import store

        return getattr(store, name)
    if name == "ModelCard":
        from zoolens.zoo.cards import ModelCard

        return ModelCard
    if name == "pair_category":
        from zoolens.zoo.categories import pair_category

        return pair_category
    raise AttributeError(f"module 'zoolens.zoo' has no attribute {name!r}")
