"""Model cards: how a model was trained, in a few comparable fields.

A card says what a model *is* so that pairs of models can be grouped the way the paper groups
them (Gontijo-Lopes et al. 2021, Sec. 3: Reinit, HParam, Arch, Framework, Dataset; see
``zoolens.zoo.categories``). Every field but ``name`` is optional; missing fields compare
equal to each other.

Fields
------
name           the model's name in the zoo (free text; the zoo keeps it in sync)
arch           architecture, e.g. "resnet50", "ViT-B/16"
arch_family    e.g. "resnet", "vit"; when empty, categories use the leading letters of arch
framework      training methodology: supervised, contrastive, distilled, zero-shot, human,
               classical, ...
pretrain_data  upstream data set, e.g. "ImageNet", "JFT-300M", "LAION-2B" (aliases normalised)
hparams        dict of hyper-parameters (learning rate, augmentation, width, ...)
seed           random seed (only this may differ within the "Reinit" category)
head           trained, linear probe, zero-shot, fine-tuned
source         where the outputs or weights came from (URL, file, paper)
category       explicit category relative to any base (overrides the rules)
notes          free text
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from zoolens.errors import ZoolensError

CATEGORIES = ("Same", "Reinit", "HParam", "Arch", "Framework", "Dataset")


class ModelCard(BaseModel):
    """How one model was trained (see the module docstring for each field)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    name: str = ""
    arch: str | None = None
    arch_family: str | None = None
    framework: str | None = None
    pretrain_data: str | None = None
    hparams: dict[str, Any] = Field(default_factory=dict)
    seed: int | None = None
    head: str | None = None
    source: str | None = None
    category: str | None = None
    notes: str | None = None

    @field_validator("category")
    @classmethod
    def _known_category(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        for known in CATEGORIES:
            if value.strip().lower() == known.lower():
                return known
        raise ValueError(f"unknown category {value!r}; use one of {', '.join(CATEGORIES)}")

    @field_validator("arch", "arch_family", "framework", "pretrain_data", "head", "source",
                     "notes", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        return value


def to_card(card: ModelCard | dict[str, Any] | None, name: str) -> ModelCard:
    """Coerce ``card`` (a ModelCard, a dict or None) to a ModelCard named ``name``.

    The zoo's model name is authoritative: the card's ``name`` is set to it.
    Raises ZoolensError (one line naming the model and the bad field) on invalid input.
    """
    if card is None:
        return ModelCard(name=name)
    if isinstance(card, ModelCard):
        return card.model_copy(update={"name": name})
    if isinstance(card, dict):
        data = dict(card)
        data["name"] = name
        try:
            return ModelCard.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'card'}: {err['msg']}"
                for err in exc.errors())
            allowed = ", ".join(ModelCard.model_fields)
            raise ZoolensError(f"model {name!r}: invalid card ({problems}); card fields are "
                               f"{allowed}") from None
    raise ZoolensError(f"model {name!r}: card must be a ModelCard or a dict, "
                       f"not {type(card).__name__}")
