"""The ensemble file: everything needed to rebuild and run a chosen ensemble, checked.

``ensemble.json`` (format "zoolens-ensemble", version 1):

- ``kind``: "greedy", "sidekick", "models" (a list given by hand) or "soup";
- ``combine``: "probs" — predict ``argmax_c Σ_m w_m softmax(z_m / T_m)[c]`` — or "logits" —
  ``argmax_c Σ_m w_m (z_m / T_m)[c]``; the reported class probabilities are the weighted mean
  of the members' calibrated probabilities (``probs``) or the softmax of the weighted mean of
  calibrated logits (``logits``); ties go to the lowest class index (as ``zoolens analyze``);
- ``class_names``: the classes, in output order;
- ``members``: each with its ``collect`` block (the model-list entry ``zoolens collect``
  recorded: spec such as ``timm:resnet50.a1_in1k`` or ``python:module:function``, kwargs,
  pretrained, seed, preprocess, head …), ``checkpoints`` (every file the entry names, with
  its sha256, checked before a member is built), ``temperature`` (fitted on the zoo's
  calibration split), ``weight`` (greedy multiplicity), ``input_shape`` (one preprocessed
  example, e.g. [3, 32, 32]), ``preprocessing`` (the transform, as text, for people) and,
  for a soup, ``state_dict`` (the averaged weights loaded into the built network);
- ``accuracy``: measured on the zoo's evaluation split, with a bootstrap interval;
- ``provenance``: zoolens version, the results folder, the zoo path and file hashes.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from zoolens.errors import ZoolensError

FORMAT = "zoolens-ensemble"
VERSION = 1


class Checkpoint(BaseModel):
    """A file a member is built from: where, and its sha256 at export time."""

    model_config = ConfigDict(extra="forbid")

    key: str  # the collect kwarg naming it ("checkpoint"), "spec" or "state_dict"
    path: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class Member(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    collect: dict[str, Any]
    checkpoints: list[Checkpoint] = Field(default_factory=list)
    state_dict: Checkpoint | None = None
    temperature: float = Field(gt=0, allow_inf_nan=False)
    weight: int = Field(ge=1)
    input_shape: list[int] | None = None
    preprocessing: str | None = None
    cost: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _has_spec(self) -> Member:
        if not isinstance(self.collect.get("spec"), str):
            raise ValueError(f"member {self.name!r}: collect block without a spec")
        return self


class Accuracy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: float
    lo: float | None = None
    hi: float | None = None
    n: int
    split: str = "evaluation"
    interval: str = ""


class EnsembleFile(BaseModel):
    """A versioned, validated ensemble (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["zoolens-ensemble"] = FORMAT
    version: Literal[1] = VERSION
    kind: Literal["greedy", "sidekick", "models", "soup"]
    combine: Literal["probs", "logits"]
    class_names: list[str] = Field(min_length=1)
    members: list[Member] = Field(min_length=1)
    accuracy: Accuracy | None = None
    provenance: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _distinct_members(self) -> EnsembleFile:
        names = [m.name for m in self.members]
        if len(set(names)) != len(names):
            raise ValueError("a member is listed twice (give repeats as its weight)")
        return self


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_ensemble_file(path: str | Path) -> EnsembleFile:
    """Parse and validate an ensemble file; ZoolensError (one line naming the file and the
    first problem) when it is missing, not JSON, or does not match the schema."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ZoolensError(f"{path}: ensemble file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ZoolensError(
            f"{path}: not a JSON ensemble file ({' '.join(str(exc).split())})"
        ) from None
    if isinstance(data, dict) and data.get("version") not in (None, VERSION):
        raise ZoolensError(
            f"{path}: ensemble file version {data.get('version')!r}; this "
            f"zoolens reads version {VERSION}"
        )
    try:
        return EnsembleFile.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "file"
        raise ZoolensError(
            f"{path}: invalid ensemble file ({where}: {first['msg']}; "
            f"{len(exc.errors())} problem(s))"
        ) from None


def check_checkpoints(ensemble: EnsembleFile, where: str | Path) -> None:
    """Every checkpoint exists and still has the sha256 recorded at export."""
    for member in ensemble.members:
        files = list(member.checkpoints) + ([member.state_dict] if member.state_dict else [])
        for ckpt in files:
            path = Path(ckpt.path)
            if not path.is_file():
                raise ZoolensError(f"{where}: member {member.name!r}: checkpoint {path} not found")
            if sha256_file(path) != ckpt.sha256:
                raise ZoolensError(
                    f"{where}: member {member.name!r}: checkpoint {path} no "
                    f"longer matches its recorded sha256 (changed since export)"
                )
