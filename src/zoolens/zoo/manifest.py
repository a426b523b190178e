"""The zoo's manifest (``zoo.json``) as a typed schema, validated on every read.

Zoos are shared, so a manifest is untrusted input: ``parse_manifest`` checks every type and
range (strict: ``"10"`` is not a class count, ``true`` is not an index), that calibration
indices are unique, sorted and inside [0, N), that every model's recorded shape fits the
data set ((N, C) scores or top-k, (N,) decisions), that each card is a valid ``ModelCard``
and that every file name is a plain name (``models/<name>`` for model files); a failure is
one ``ZooCorruptedError`` line naming the manifest and the field. Unknown keys are kept
(written back in place after the known ones), so a newer zoolens's extra fields survive.

Layout (docs/design.md sec. 2)::

    format_version, created_by, created_at,
    dataset  {name, num_examples, num_classes, class_names, class_groups, multilabel,
              labelled (false: no labels.npy)}
    split    {seed, calibration_fraction, calibration_indices}
    files    {labels.npy | example_ids.npy | attributes.parquet: {sha256, size, mtime_ns}}
    models   {name: {card, kind, kinds, dtype, shape, topk, embedding_dim, stored_from,
                     source_file, file, sha256, size, mtime_ns, added_at}}
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from zoolens.errors import ZooCorruptedError
from zoolens.zoo.cards import ModelCard
from zoolens.zoo.outputs import KINDS, MAX_CLASSES

Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
Count = Annotated[int, Field(ge=0)]
# one plain file name: no separator, no leading dot (so neither '.', '..' nor hidden files)
PlainName = Annotated[str, StringConstraints(pattern=r"^[^/\\\x00.][^/\\\x00]*$", max_length=255)]
ModelFile = Annotated[
    str, StringConstraints(pattern=r"^models/[^/\\\x00.][^/\\\x00]*$", max_length=262)
]
ModelName = Annotated[
    str, StringConstraints(min_length=1, max_length=512, pattern=r"^[^\n\r\x00]*\S[^\n\r\x00]*$")
]


class _Schema(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow")


class FileRecord(_Schema):
    """An auxiliary file's sha256, size (bytes) and modification time (ns)."""

    sha256: Sha256
    size: Count
    mtime_ns: int | None = None


class Dataset(_Schema):
    """The evaluation set: N examples of C classes (names, named groups of classes)."""

    name: str
    num_examples: Annotated[int, Field(ge=1)]
    num_classes: Annotated[int, Field(ge=1, le=MAX_CLASSES)]
    class_names: list[str]
    class_groups: dict[str, list[Count]] = Field(default_factory=dict)
    multilabel: bool = False
    # False for an unlabelled zoo (``Zoo.create(..., labels=None)``, import --no-labels):
    # no labels.npy; measures that need labels refuse it in one line
    labelled: bool = True
    # folder of the image files when the example ids are paths under it (zoolens collect,
    # import --image-root); used to show the images in the report's drill-down
    image_root: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Dataset:
        if len(self.class_names) != self.num_classes:
            raise ValueError(
                f"{len(self.class_names)} class names for num_classes {self.num_classes}"
            )
        for key, members in self.class_groups.items():
            if not members or max(members) >= self.num_classes:
                raise ValueError(
                    f"class group {key!r} is empty or has a class id outside "
                    f"[0, {self.num_classes})"
                )
        return self


class Split(_Schema):
    """The seeded calibration split; the evaluation split is every other example."""

    seed: Count
    calibration_fraction: Annotated[float, Field(ge=0.0, lt=1.0)] | None = None
    calibration_indices: list[Count]


class ModelEntry(_Schema):
    """One model: its card, what is stored (kind, tensors, dtype, shape) and its file."""

    card: ModelCard
    kind: Literal[KINDS]  # type: ignore[valid-type]
    kinds: Annotated[list[str], Field(min_length=1)]
    dtype: str
    shape: list[Count]
    topk: Annotated[int, Field(ge=1)] | None = None
    embedding_dim: Annotated[int, Field(ge=1)] | None = None
    stored_from: str | None = None
    source_file: str | None = None
    file: ModelFile
    sha256: Sha256
    size: Count
    mtime_ns: int | None = None
    added_at: str | None = None


class Manifest(_Schema):
    """The whole manifest; ``to_json_dict`` gives what is written to zoo.json."""

    format_version: Annotated[int, Field(ge=1)]
    created_by: str | None = None
    created_at: str | None = None
    dataset: Dataset
    split: Split
    files: dict[PlainName, FileRecord] = Field(default_factory=dict)
    models: dict[ModelName, ModelEntry]

    @model_validator(mode="after")
    def _consistent(self) -> Manifest:
        n, c = self.dataset.num_examples, self.dataset.num_classes
        cal = self.split.calibration_indices
        if cal and (cal[-1] >= n or any(b <= a for a, b in zip(cal, cal[1:]))):
            raise ValueError(f"split.calibration_indices must be unique, sorted and in [0, {n})")
        if len(cal) >= n:
            raise ValueError(
                f"split.calibration_indices leave no evaluation example ({len(cal)} of {n})"
            )
        for name, e in self.models.items():
            expected = [n] if e.kind == "decisions" else [n, c]
            if e.shape != expected:
                raise ValueError(
                    f"model {name!r}: recorded shape {e.shape}, the zoo's "
                    f"{e.kind} have shape {expected}"
                )
            if (e.kind == "topk") != (e.topk is not None) or (e.topk or 0) > c:
                raise ValueError(
                    f"model {name!r}: topk {e.topk} does not fit kind {e.kind!r} and {c} classes"
                )
            if (e.embedding_dim is not None) != ("embeddings" in e.kinds):
                raise ValueError(
                    f"model {name!r}: embedding_dim {e.embedding_dim} disagrees "
                    f"with the stored tensors {e.kinds}"
                )
        return self

    def to_json_dict(self) -> dict[str, Any]:
        """Plain JSON data, in schema order (unknown keys kept, last)."""
        return self.model_dump(mode="json")


def parse_manifest(data: Any, file: Path) -> Manifest:
    """Validate manifest data read from ``file``; ZooCorruptedError naming the first bad
    field (and how many more there are) otherwise."""
    try:
        return Manifest.model_validate(data)
    except ValidationError as exc:
        raise ZooCorruptedError(f"{file}: invalid manifest: {_validation_message(exc)}") from None


def parse_model_entry(data: Any, name: str, file: Path) -> ModelEntry:
    """Validate one model's manifest entry (before it is added to the manifest in ``file``)."""
    try:
        return ModelEntry.model_validate(data)
    except ValidationError as exc:
        raise ZooCorruptedError(
            f"{file}: invalid entry for model {name!r}: {_validation_message(exc)}"
        ) from None


def _validation_message(exc: ValidationError) -> str:
    """A pydantic ValidationError as one line: where, what, and how many more problems."""
    errors = exc.errors()
    loc = _location(errors[0]["loc"])
    msg = errors[0]["msg"].removeprefix("Value error, ")
    more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
    return f"{loc + ': ' if loc else ''}{msg}{more}"


def _location(loc: tuple[Any, ...]) -> str:
    """('models', 'm1', 'card', 'hparams') -> "models['m1'].card.hparams"."""
    out = ""
    for i, part in enumerate(loc):
        if isinstance(part, int) or (i and loc[i - 1] in ("models", "files", "class_groups")):
            out += f"[{part!r}]"
        else:
            out += f".{part}" if out else str(part)
    return out
