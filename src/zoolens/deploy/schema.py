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

An ensemble file is data, never code (the file travels: mailed, attached to a paper,
downloaded). Reading one runs nothing; building its members (``resolve_members``, before
anything is built) refuses, unless the reader opts in for that run (``trust_code``):

- a ``python:module:function`` spec (it imports a module the file names and calls it with
  the file's kwargs) other than zoolens's own builders (:data:`BUILTIN_PYTHON_BUILDERS`);
- a ``torchscript:`` torch.export program (``torch.export.load`` unpickles), recognised on
  the resolved file the loader opens (``collect.specs.is_export_program``: a ``.pt2``
  suffix however the path is spelled, or a torch.export zip layout under any name).

Every file a member loads is checked before it is built, and the builder gets exactly the
path that was checked: every kwarg that names a path (a value under a checkpoint key such as
``checkpoint``, or a string holding ``/`` or ``\\``) must be listed in ``checkpoints``
under the same key and path, with its sha256, as must the soup state dict; the TorchScript
file of a ``torchscript:`` spec is checked against its sha256 when listed (key ``spec``, as
``zoolens export`` writes it), else only checked to be a regular file. Relative paths are
relative to the ensemble file's folder (its real path: a symlink's target) and may not leave it (a bundle, ``zoolens export
--bundle DIR``, is portable); absolute paths are kept. Numbers are bounded (temperatures
in [1e-4, 1e4], weights up to 10,000, shapes, preprocessing sizes and integer kwargs up to
:data:`MAX_SIDE` / :data:`MAX_KWARG_INT`), the file is at most :data:`MAX_FILE_BYTES` and
:data:`MAX_DEPTH` levels deep.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import stat
from pathlib import Path
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from zoolens.errors import ZoolensError

FORMAT: Final = "zoolens-ensemble"
VERSION: Final = 1

#: zoolens's own ``python:`` builders: they build a known network and load a checkpoint with
#: ``torch.load(weights_only=True)``, so a file may name them without ``trust_code``.
BUILTIN_PYTHON_BUILDERS = frozenset(
    {"zoolens.collect.cifar_resnet:pretrained", "zoolens.demo.models:soup_cnn"}
)
#: Kwargs whose string value is a file the builder loads (besides any value holding a path
#: separator): ``zoolens export`` ships exactly these, ``predict`` checks exactly these.
FILE_KEYS = frozenset(
    {
        "checkpoint",
        "checkpoint_path",
        "ckpt",
        "ckpt_path",
        "weights",
        "weights_path",
        "state_dict",
        "model_path",
        "pretrained_file",
        "file",
        "path",
    }
)
MIN_TEMPERATURE, MAX_TEMPERATURE = 1e-4, 1e4  # analyze fits T within [1e-3, 1e3]
MAX_WEIGHT = 10_000  # greedy multiplicity
MAX_CLASSES = 100_000
MAX_NAME_CHARS = 1_000  # a class or member name
MAX_SIDE = 1_024  # a preprocessed side, an input_shape entry (as collect.specs.MAX_SIDE)
MAX_KWARG_INT = 100_000  # an integer builder kwarg (a width, a class count)
MAX_SEED = 2**63 - 1
MAX_FILE_BYTES = 64 << 20
MAX_DEPTH = 32  # nesting of JSON objects and lists

_Side = Annotated[int, Field(ge=1, le=MAX_SIDE)]


class Checkpoint(BaseModel):
    """A file a member is built from: where, and its sha256 at export time."""

    model_config = ConfigDict(extra="forbid")

    key: str  # the collect kwarg naming it ("checkpoint"), "spec" or "state_dict"
    path: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class Member(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=MAX_NAME_CHARS)
    collect: dict[str, Any]
    checkpoints: list[Checkpoint] = Field(default_factory=list)
    state_dict: Checkpoint | None = None
    temperature: float = Field(ge=MIN_TEMPERATURE, le=MAX_TEMPERATURE, allow_inf_nan=False)
    weight: int = Field(ge=1, le=MAX_WEIGHT)
    input_shape: list[_Side] | None = Field(default=None, max_length=8)
    preprocessing: str | None = None
    cost: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _has_spec(self) -> Member:
        if not isinstance(self.collect.get("spec"), str):
            raise ValueError(f"member {self.name!r}: collect block without a spec")
        check_collect_block(self.collect, f"member {self.name!r}")
        return self


EnsembleKind = Literal["greedy", "sidekick", "models", "soup"]
Combine = Literal["probs", "logits"]


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
    kind: EnsembleKind
    combine: Combine
    class_names: list[Annotated[str, Field(max_length=MAX_NAME_CHARS)]] = Field(
        min_length=1, max_length=MAX_CLASSES
    )
    members: list[Member] = Field(min_length=1, max_length=1_000)
    accuracy: Accuracy | None = None
    provenance: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _distinct_members(self) -> EnsembleFile:
        names = [m.name for m in self.members]
        if len(set(names)) != len(names):
            raise ValueError("a member is listed twice (give repeats as its weight)")
        return self


def check_collect_block(collect: dict[str, Any], who: str) -> None:
    """ValueError unless a member's collect block holds only sane values: a mapping of
    kwargs whose integers lie within ±MAX_KWARG_INT and floats are finite, a buildable
    preprocess (``collect.specs.check_preprocess``), a seed torch accepts."""
    from zoolens.collect.specs import check_preprocess

    kwargs = collect.get("kwargs")
    if kwargs is not None and not isinstance(kwargs, dict):
        raise ValueError(f"{who}: kwargs must be a mapping")
    for key, value in walk_values(kwargs or {}):
        if isinstance(value, bool) or value is None or isinstance(value, str):
            continue
        if isinstance(value, int) and abs(value) > MAX_KWARG_INT:
            raise ValueError(
                f"{who}: kwarg {key} is beyond ±{MAX_KWARG_INT:,} (a width or class "
                f"count that would allocate gigabytes)"
            )
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{who}: kwarg {key} is not a finite number")
    seed = collect.get("seed", 0)
    if seed is not None and not (type(seed) is int and 0 <= seed <= MAX_SEED):  # noqa: E721
        raise ValueError(f"{who}: seed must be a whole number in [0, 2**63)")
    if collect.get("pretrained") is not None and not isinstance(collect["pretrained"], bool):
        raise ValueError(f"{who}: pretrained must be true or false")
    templates = collect.get("templates")
    if templates is not None and not (
        isinstance(templates, list)
        and len(templates) <= 1_000
        and all(isinstance(t, str) and len(t) <= MAX_NAME_CHARS for t in templates)
    ):
        raise ValueError(f"{who}: templates must be at most 1,000 prompt strings")
    l2 = collect.get("probe_l2")
    if l2 is not None and not (
        isinstance(l2, (int, float)) and not isinstance(l2, bool) and 0 < l2 < 1e6
    ):
        raise ValueError(f"{who}: probe_l2 must be a positive number below 1e6")
    try:
        check_preprocess(collect.get("preprocess"), who)
    except ZoolensError as exc:
        raise ValueError(str(exc)) from None


def walk_values(value: Any, key: str = "") -> list[tuple[str, Any]]:
    """Every leaf of nested mappings and lists as (dotted key, value), e.g. ``("a.0.b", 1)``."""
    leaves: list[tuple[str, Any]] = []
    stack = [(key, value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, dict):
            stack.extend((f"{where}.{k}" if where else str(k), v) for k, v in item.items())
        elif isinstance(item, list):
            stack.extend((f"{where}.{i}" if where else str(i), v) for i, v in enumerate(item))
        else:
            leaves.append((where, item))
    return sorted(leaves, key=lambda kv: kv[0])


def path_kwargs(kwargs: dict[str, Any]) -> list[tuple[str, str]]:
    """The (dotted key, value) of every kwarg that names a file: a string under a checkpoint
    key (:data:`FILE_KEYS`) or holding a path separator. Export ships exactly these, predict
    checks exactly these."""
    return [
        (key, value)
        for key, value in walk_values(kwargs)
        if isinstance(value, str)
        and value
        and (key.rsplit(".", 1)[-1] in FILE_KEYS or "/" in value or "\\" in value)
    ]


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _depth(value: Any) -> int:
    """The nesting depth of parsed JSON (iterative: a deep file cannot exhaust the stack)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, level)
            if level > MAX_DEPTH:
                return level
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, level + 1) for child in children)
    return deepest


def read_ensemble_file(path: str | Path) -> EnsembleFile:
    """Parse and validate an ensemble file; ZoolensError (one line naming the file and the
    first problem) when it is missing, not a regular file, too large or too deep, not JSON,
    or does not match the schema. Reading runs nothing (see the module docstring)."""
    path = Path(path)
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            raise ZoolensError(f"{path}: not a regular file")
        if info.st_size > MAX_FILE_BYTES:
            raise ZoolensError(
                f"{path}: {info.st_size:,} bytes; an ensemble file is at most "
                f"{MAX_FILE_BYTES >> 20} MiB"
            )
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ZoolensError(f"{path}: ensemble file not found") from None
    except RecursionError:
        raise ZoolensError(f"{path}: not a JSON ensemble file (nested too deeply)") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError, huge ints
        if isinstance(exc, ZoolensError):
            raise
        raise ZoolensError(
            f"{path}: not a JSON ensemble file ({' '.join(str(exc).split())[:200]})"
        ) from None
    if _depth(data) > MAX_DEPTH:
        raise ZoolensError(
            f"{path}: invalid ensemble file (nested more than {MAX_DEPTH} levels deep)"
        )
    if isinstance(data, dict) and data.get("version") not in (None, VERSION):
        raise ZoolensError(
            f"{path}: ensemble file version {str(data.get('version'))[:20]}; this "
            f"zoolens reads version {VERSION}"
        )
    try:
        return EnsembleFile.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])[:100] or "file"
        raise ZoolensError(
            f"{path}: invalid ensemble file ({where}: {first['msg'][:300]}; "
            f"{len(exc.errors())} problem(s))"
        ) from None
    except (OverflowError, RecursionError, TypeError) as exc:
        raise ZoolensError(
            f"{path}: invalid ensemble file ({type(exc).__name__}: {str(exc)[:200]})"
        ) from None


def _local_path(text: str, base: Path, where: str, who: str) -> Path:
    """A path from an ensemble file: absolute as written; relative ones against ``base`` (the
    file's folder), never leaving it (``../x`` is refused)."""
    if "\x00" in text:
        raise ZoolensError(f"{where}: {who}: path with a NUL character")
    path = Path(text).expanduser() if text.startswith("~") else Path(text)
    if path.is_absolute():
        return Path(os.path.normpath(path))
    joined = Path(os.path.normpath(base / path))
    if joined != base and base not in joined.parents:
        raise ZoolensError(f"{where}: {who}: path {text[:200]!r} leaves the ensemble file's folder")
    return joined


def require_regular_file(path: Path, what: str, missing: type[OSError] = OSError) -> None:
    """``path`` is a regular file (a FIFO or device is never opened): a one-line
    ZoolensError starting with ``what`` otherwise (``missing``: the stat errors that mean
    "not found")."""
    try:
        info = os.stat(path)
    except missing:
        raise ZoolensError(f"{what} {path} not found") from None
    if not stat.S_ISREG(info.st_mode):
        raise ZoolensError(f"{what} {path} is not a regular file")


def _check_file(path: Path, sha256: str | None, where: str, who: str) -> None:
    """``path`` is a regular file (never a FIFO or device: hashing one would hang) with the
    recorded sha256 (when one is recorded)."""
    require_regular_file(path, f"{where}: {who}: checkpoint", FileNotFoundError)
    if sha256 is not None and sha256_file(path) != sha256:
        raise ZoolensError(
            f"{where}: {who}: checkpoint {path} no "
            f"longer matches its recorded sha256 (changed since export)"
        )


def untrusted_code(member: Member) -> str | None:
    """Why building ``member`` runs code the file chose, as far as its spec text tells (None
    when it does not): a ``python:`` spec. A torch.export program is decided on the resolved
    file the loader opens (``collect.specs.is_export_program``, in :func:`resolve_members`),
    never on the text: ``model.pt2/`` and ``model.pt2/.`` name the same file."""
    spec = str(member.collect.get("spec", ""))
    prefix, _, target = spec.partition(":")
    if prefix == "python" and target not in BUILTIN_PYTHON_BUILDERS:
        return "imports and calls Python code the file names"
    return None


PT2_WHY = "is a torch.export program (.pt2), which torch unpickles"


def resolve_members(
    ensemble: EnsembleFile, path: str | Path, *, trust_code: bool = False
) -> EnsembleFile:
    """The ensemble with every file its members load resolved and checked, before anything
    is built (see the module docstring): code only with ``trust_code``; known spec prefixes;
    relative paths against the file's folder; every file a member loads (TorchScript file,
    path kwargs, soup state dict) a listed checkpoint of that key and path, a regular file
    with its recorded sha256; the returned members load exactly those checked paths."""
    from zoolens.collect.specs import is_export_program, split_spec

    where = str(path)
    # the real file's folder: a symlinked ensemble file reads the files beside its target
    base = Path(os.path.realpath(path)).parent
    if not trust_code:
        for member in ensemble.members:
            why = untrusted_code(member)
            if why is not None:
                raise _untrusted(where, member, why)
    members = []
    for member in ensemble.members:
        who = f"member {member.name!r}"
        collect = json.loads(json.dumps(member.collect))
        try:
            prefix, target = split_spec(collect["spec"])
        except ZoolensError as exc:
            raise ZoolensError(f"{where}: {who}: {exc}") from None
        checked: dict[str, tuple[Path, Checkpoint]] = {}
        for ckpt in member.checkpoints:
            if ckpt.key in checked:
                raise ZoolensError(f"{where}: {who}: checkpoint key {ckpt.key!r} listed twice")
            local = _local_path(ckpt.path, base, where, who)
            checked[ckpt.key] = (local, ckpt.model_copy(update={"path": str(local)}))
        loads: dict[str, str] = {}  # checkpoint key -> the path the member's entry names
        if prefix == "torchscript":
            script = _local_path(target, base, where, who)
            if "spec" in checked:  # listed: the very file checked
                loads["spec"] = target
            else:  # a hand-written file may name its TorchScript file alone: still local
                _check_file(script, None, where, who)
            collect["spec"] = f"torchscript:{script}"
        loads.update(path_kwargs(collect.get("kwargs") or {}))
        for key, named in loads.items():
            local = _local_path(named, base, where, who)
            if key not in checked or checked[key][0] != local:
                if "/" not in named and "\\" not in named and not os.path.lexists(local):
                    raise ZoolensError(  # a name such as a weights enum, not a path
                        f"{where}: {who}: kwarg {key} is {named[:200]!r}, which is not a "
                        f"file (a weights name?); a member's kwargs may name only files "
                        f"listed among its checkpoints"
                        + (
                            f" (torchvision weights are named in the spec, e.g. "
                            f"torchvision:resnet18/{named[:40]})"
                            if prefix == "torchvision"
                            else ""
                        )
                    )
                raise ZoolensError(
                    f"{where}: {who}: {'the spec' if key == 'spec' else f'kwarg {key}'} "
                    f"names {named[:200]!r}, which is not among its checkpoints (every "
                    f"file a member loads is listed with its sha256)"
                )
            _check_file(local, checked[key][1].sha256, where, who)
        for key, (local, ckpt) in checked.items():
            if key not in loads:
                _check_file(local, ckpt.sha256, where, who)
        # decided on the checked regular file the loader opens (its normalised path and
        # content), exactly as the loader decides: any spelling of a .pt2 path, any suffix
        if prefix == "torchscript" and not trust_code and is_export_program(script):
            raise _untrusted(where, member, PT2_WHY)
        kwargs = collect.get("kwargs") or {}
        for key in loads:
            if key != "spec":
                try:
                    set_dotted(kwargs, key, str(checked[key][0]))
                except (KeyError, IndexError, ValueError):  # a key holding "."
                    raise ZoolensError(f"{where}: {who}: kwarg key {key!r} is ambiguous") from None
        if collect.get("probe_data"):
            collect["probe_data"] = str(_local_path(str(collect["probe_data"]), base, where, who))
        update: dict[str, Any] = {
            "collect": collect,
            "checkpoints": [ckpt for _, ckpt in checked.values()],
        }
        if member.state_dict is not None:
            local = _local_path(member.state_dict.path, base, where, who)
            _check_file(local, member.state_dict.sha256, where, who)
            update["state_dict"] = member.state_dict.model_copy(update={"path": str(local)})
        members.append(member.model_copy(update=update))
    return ensemble.model_copy(update={"members": members})


def _untrusted(where: str, member: Member, why: str) -> ZoolensError:
    spec = str(member.collect["spec"])[:200]
    return ZoolensError(
        f"{where}: member {member.name!r}: spec {spec!r} {why}; refused (run with "
        f"--trust-code, or trust_code=True, only for a file whose author you trust)"
    )


def set_dotted(tree: Any, key: str, value: str) -> None:
    """Set the leaf of nested mappings and lists that :func:`walk_values` calls ``key``."""
    parts = key.split(".")
    for part in parts[:-1]:
        tree = tree[int(part)] if isinstance(tree, list) else tree[part]
    if isinstance(tree, list):
        tree[int(parts[-1])] = value
    else:
        tree[parts[-1]] = value
