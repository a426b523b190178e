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
cost           inference cost per example (:class:`ModelCost`): parameters, multiply-
               accumulates, measured latency with its batch size and device; filled in by
               ``zoolens collect``, settable by hand (``zoolens import --cost``, ``--card``)
collect        how ``zoolens collect`` built the model (spec, kwargs, pretrained, seed,
               preprocess, ...): what ``zoolens export`` writes so the model can be rebuilt
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from zoolens.errors import ZoolensError

CATEGORIES = ("Same", "Reinit", "HParam", "Arch", "Framework", "Dataset")


class ModelCost(BaseModel):
    """Inference cost of one model, per example.

    ``params``: parameters; ``macs``: multiply-accumulates for one example (FLOPs = 2 MACs,
    as ``torch.utils.flop_counter`` counts a multiply and an add); ``latency_ms``: measured
    wall time per example, in batches of ``batch_size`` on ``device``; ``input_shape``: the
    preprocessed input of one example, e.g. ``[3, 32, 32]``; ``source``: who measured it.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    params: int | None = Field(default=None, ge=0)
    macs: float | None = Field(default=None, ge=0)
    latency_ms: float | None = Field(default=None, ge=0)
    batch_size: int | None = Field(default=None, ge=1)
    device: str | None = None
    input_shape: list[int] | None = None
    source: str | None = None


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
    cost: ModelCost | None = None
    collect: dict[str, Any] | None = None

    @field_validator("category")
    @classmethod
    def _known_category(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        for known in CATEGORIES:
            if value.strip().lower() == known.lower():
                return known
        raise ValueError(f"unknown category {value!r}; use one of {', '.join(CATEGORIES)}")

    @field_validator(
        "arch",
        "arch_family",
        "framework",
        "pretrain_data",
        "head",
        "source",
        "notes",
        mode="before",
    )
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
                for err in exc.errors()
            )
            allowed = ", ".join(ModelCard.model_fields)
            raise ZoolensError(
                f"model {name!r}: invalid card ({problems}); card fields are {allowed}"
            ) from None
    raise ZoolensError(
        f"model {name!r}: card must be a ModelCard or a dict, not {type(card).__name__}"
    )


#: Units a cost can be given in (``--budget``, ``--cost``): unit -> (ModelCost field,
#: multiplier, divisor): the cost in the unit is ``field value * multiplier / divisor``.
#: FLOPs count a multiply-accumulate as two operations. (Multiplier and divisor kept apart so
#: that conversions of round numbers stay exact: 8 gflops is exactly 4e9 MACs.)
COST_UNITS: dict[str, tuple[str, float, float]] = {
    "params": ("params", 1.0, 1.0),
    "mparams": ("params", 1.0, 1e6),
    "macs": ("macs", 1.0, 1.0),
    "mmacs": ("macs", 1.0, 1e6),
    "gmacs": ("macs", 1.0, 1e9),
    "flops": ("macs", 2.0, 1.0),
    "mflops": ("macs", 2.0, 1e6),
    "gflops": ("macs", 2.0, 1e9),
    "latency_ms": ("latency_ms", 1.0, 1.0),
}


def parse_cost_items(text: str, option: str) -> dict[str, float]:
    """``"gflops=8,latency_ms=20"`` -> ``{"gflops": 8.0, "latency_ms": 20.0}``.

    ZoolensError (one line naming ``option``) for an unknown unit, a repeated unit, or a
    value that is not a finite non-negative number.
    """
    import math

    items: dict[str, float] = {}
    for part in str(text).split(","):
        unit, sep, value = part.partition("=")
        unit = unit.strip().lower()
        if not sep or not unit:
            raise ZoolensError(
                f"{option} {text!r}: give UNIT=VALUE pairs such as gflops=8 "
                f"(units: {', '.join(COST_UNITS)})"
            )
        if unit not in COST_UNITS:
            raise ZoolensError(
                f"{option} {text!r}: unknown unit {unit!r}; use one of {', '.join(COST_UNITS)}"
            )
        if unit in items:
            raise ZoolensError(f"{option} {text!r}: unit {unit!r} given twice")
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not math.isfinite(number) or number < 0:
            raise ZoolensError(
                f"{option} {text!r}: {unit} must be a non-negative number, got {value.strip()!r}"
            )
        items[unit] = number
    return items


def cost_from_items(items: dict[str, float], source: str = "set by hand") -> dict[str, Any]:
    """A ModelCost dict from ``parse_cost_items`` output (each unit converted to its field);
    ZoolensError when two units give the same field."""
    cost: dict[str, Any] = {"source": source}
    for unit, value in items.items():
        field, multiplier, divisor = COST_UNITS[unit]
        if field in cost:
            raise ZoolensError(f"--cost: {field} is given twice (as {unit} and another unit)")
        number = value * divisor / multiplier
        cost[field] = int(round(number)) if field == "params" else number
    return cost


def cost_in(card: ModelCard, unit: str) -> float | None:
    """The card's cost in ``unit`` (a key of COST_UNITS), or None when the card has none."""
    field, multiplier, divisor = COST_UNITS[unit]
    value = getattr(card.cost, field, None) if card.cost is not None else None
    return None if value is None else float(value) * multiplier / divisor
