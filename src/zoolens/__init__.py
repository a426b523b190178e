"""zoolens: how differently do these models behave, and which ones complement each other?

A toolkit around Gontijo-Lopes, Dauphin & Cubuk (2021), "No One Representation to Rule Them
All: Overlapping Features of Training Methods". See README.md for a tour.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["Zoo", "ModelCard", "ZoolensError", "__version__"]


def __getattr__(name: str):
    # Lazy so that `import zoolens` (and `zoolens --help`) stays fast.
    if name == "Zoo":
        from zoolens.zoo.store import Zoo

        return Zoo
    if name == "ModelCard":
        from zoolens.zoo.cards import ModelCard

        return ModelCard
    if name == "ZoolensError":
        from zoolens.errors import ZoolensError

        return ZoolensError
    raise AttributeError(f"module 'zoolens' has no attribute {name!r}")
