"""The zoo store: labels + per-model outputs + cards on disk (docs/design.md sec. 2).

``Zoo`` (store.py; the folder's names in layout.py, the manifest in manifest.py), ``ModelCard``
(cards.py), ``pair_category`` (categories.py), the file importers (importers.py, one reader per
format in readers/) and ``create.import_model`` (import, creating the zoo all or nothing).
Imports are lazy so ``import zoolens.zoo`` stays cheap.
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
