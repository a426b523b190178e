"""Model specs and model list files: which models ``zoolens collect`` runs, and how to build them.

A spec string names a model and the library that builds it:

=============================================  ==============================================
``timm:resnet50.a1_in1k``                      ``timm.create_model`` (its data config preprocesses)
``torchvision:resnet18[/IMAGENET1K_V1]``       torchvision weights enum (default: ``DEFAULT``)
``open_clip:ViT-B-32[/laion2b_s34b_b79k]``     open_clip, zero-shot head from the class names
``torchscript:path/to/model.pt``               ``torch.jit.load`` (``.pt2``: ``torch.export.load``)
``python:package.module:function``            ``function(**kwargs)`` returns a model or
                                               ``(model, transform, card dict)``; a
                                               ``pretrained`` parameter gets --pretrained
=============================================  ==============================================

A model list (TOML or YAML) describes a whole zoo (a relative ``torchscript:`` path is read
from the list's folder when the file is there)::

    [defaults]                 # optional, applies to every entry
    pretrained = true
    [[models]]
    spec = "timm:resnet50.a1_in1k"
    name = "ResNet-50 A1"      # optional; default: the spec without its prefix
    pretrained = false         # optional; overrides --pretrained
    seed = 0                   # torch seed set before building (random init is reproducible)
    kwargs = { drop_rate = 0.0 }              # passed to the builder
    templates = ["a photo of a {}."]          # open_clip prompt templates
    head = "zero-shot"                        # open_clip: or "linear-probe" with probe_data
    probe_data = "train_images/"              # linear-probe head: root/<class>/<image>
    probe_l2 = 1e-4                           # optional; default chosen on a validation split
    preprocess = { resize = 32, mean = [0.5, 0.5, 0.5], std = [0.5, 0.5, 0.5] }
    [models.card]              # ModelCard fields that override what the adapter filled in
    pretrain_data = "ImageNet"

YAML: the same keys, ``models:`` a list of mappings (or the file a bare list). ``LIST`` may
also be a single spec string.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from zoolens.errors import ZoolensError

Adapter = Callable[["ModelEntry", bool, "Sequence[str] | None"], "LoadedModel"]
"""Builds the model of an entry: ``adapter(entry, pretrained, class_names) -> LoadedModel``."""

_ADAPTERS: dict[str, Adapter] = {}
# The order prefixes are listed in messages; an adapter registered later is appended.
_PREFIX_ORDER = ("timm", "torchvision", "open_clip", "torchscript", "python")


def register_adapter(prefix: str) -> Callable[[Adapter], Adapter]:
    """Register the function that builds models of spec ``prefix:...`` (as timm registers
    models): the adapter modules (``timm_models``, ...) import this module and register
    themselves; ``zoolens.collect`` imports them, so every adapter is known whenever
    ``zoolens.collect.specs`` is."""

    def register(adapter: Adapter) -> Adapter:
        if prefix in _ADAPTERS:
            raise AssertionError(f"adapter prefix {prefix!r} registered twice")
        _ADAPTERS[prefix] = adapter
        return adapter

    return register


def model_library(name: str, entry: ModelEntry) -> Any:
    """The library an adapter builds ``entry`` with (timm, open_clip), imported when first
    needed; ZoolensError naming the model and the extra to install when it is missing."""
    try:
        return importlib.import_module(name)
    except ImportError:
        raise ZoolensError(
            f"model {entry.spec}: {name} is not installed (pip install 'zoolens[models]')"
        ) from None


def prefixes() -> tuple[str, ...]:
    """The spec prefixes an adapter is registered for."""
    return tuple(sorted(_ADAPTERS, key=lambda p: (_PREFIX_ORDER + (p,)).index(p)))


_ENTRY_KEYS = {
    "spec",
    "name",
    "pretrained",
    "seed",
    "kwargs",
    "templates",
    "preprocess",
    "card",
    "head",
    "probe_data",
    "probe_l2",
}


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    """One model to collect: its spec and options (picklable, so Ray tasks can rebuild it)."""

    spec: str
    name: str
    pretrained: bool | None = None  # None: the command's --pretrained
    seed: int = 0
    kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    templates: tuple[str, ...] | None = None
    preprocess: dict[str, Any] | None = None
    card: dict[str, Any] = dataclasses.field(default_factory=dict)
    head: str | None = None  # open_clip: "zero-shot" (default) or "linear-probe"
    probe_data: str | None = None  # linear-probe head: a labelled training image folder
    probe_l2: float | None = None  # its L2 penalty (default: chosen on a validation split)
    # May the adapter unpickle (``torch.export.load`` of a .pt2 program)? The reader's
    # decision for this run, never a property of the model: True for the user's own model
    # list (``read_model_list``), ``--trust-code`` for a shipped ensemble file.
    allow_pickle: bool = False

    @property
    def prefix(self) -> str:
        return split_spec(self.spec)[0]

    @property
    def target(self) -> str:
        return split_spec(self.spec)[1]


@dataclasses.dataclass
class LoadedModel:
    """A built model ready for the runner.

    ``forward(batch) -> (logits (B, C), embeddings (B, D) or None)``; ``module`` is moved to
    the device and put in eval mode by the runner (None for plain callables); ``transform``
    maps a PIL RGB image to a (3, H, W) tensor; ``card`` holds ModelCard fields.
    """

    name: str
    forward: Callable[[Any], tuple[Any, Any]]
    module: Any = None
    transform: Callable[[Any], Any] | None = None
    card: dict[str, Any] = dataclasses.field(default_factory=dict)


def split_spec(spec: str) -> tuple[str, str]:
    """``"timm:resnet18"`` -> ``("timm", "resnet18")``; ZoolensError for an unknown prefix."""
    if not isinstance(spec, str) or ":" not in spec:
        raise ZoolensError(
            f"model spec {spec!r}: expected PREFIX:NAME with PREFIX one of "
            f"{', '.join(prefixes())} (e.g. timm:resnet18)"
        )
    prefix, target = spec.split(":", 1)
    if prefix not in _ADAPTERS:
        raise ZoolensError(
            f"model spec {spec!r}: unknown prefix {prefix!r}; use one of "
            f"{', '.join(prefixes())} (e.g. timm:resnet18)"
        )
    if not target.strip():
        raise ZoolensError(f"model spec {spec!r}: nothing after {prefix}:")
    if prefix == "python" and (target.count(":") != 1 or not all(target.split(":"))):
        raise ZoolensError(f"model spec {spec!r}: expected python:package.module:function")
    return prefix, target


def default_name(spec: str) -> str:
    prefix, target = split_spec(spec)
    if prefix == "torchscript":
        return Path(target).stem
    if prefix == "python":
        return target.split(":")[1]
    return target


def _entry_from_mapping(raw: Any, where: str, defaults: dict[str, Any]) -> ModelEntry:
    if isinstance(raw, str):
        raw = {"spec": raw}
    if not isinstance(raw, dict):
        raise ZoolensError(f"{where}: each model entry must be a table/mapping or a spec string")
    data = {**defaults, **raw}
    unknown = sorted(set(data) - _ENTRY_KEYS)
    if unknown:
        raise ZoolensError(
            f"{where}: unknown key(s) {', '.join(unknown)}; allowed: "
            f"{', '.join(sorted(_ENTRY_KEYS))}"
        )
    if "spec" not in data:
        raise ZoolensError(f"{where}: model entry without 'spec'")
    spec = str(data["spec"])
    split_spec(spec)
    for key in ("kwargs", "card", "preprocess"):
        if data.get(key) is not None and not isinstance(data[key], dict):
            raise ZoolensError(f"{where} ({spec}): {key!r} must be a table/mapping")
    check_preprocess(data.get("preprocess"), f"{where} ({spec})")
    templates = data.get("templates")
    if templates is not None:
        if isinstance(templates, str):
            templates = [templates]
        if not templates or not all(isinstance(t, str) and "{}" in t for t in templates):
            raise ZoolensError(f"{where} ({spec}): templates must be strings containing '{{}}'")
        templates = tuple(templates)
    pretrained = data.get("pretrained")
    if pretrained is not None and not isinstance(pretrained, bool):
        raise ZoolensError(f"{where} ({spec}): pretrained must be true or false")
    return ModelEntry(
        spec=spec,
        allow_pickle=True,  # the user's own model list: their files, their code
        name=str(data.get("name") or default_name(spec)),
        pretrained=pretrained,
        seed=int(data.get("seed", 0)),
        kwargs=dict(data.get("kwargs") or {}),
        templates=templates,
        preprocess=data.get("preprocess"),
        card=dict(data.get("card") or {}),
        head=data.get("head"),
        probe_data=str(data["probe_data"]) if data.get("probe_data") else None,
        probe_l2=float(data["probe_l2"]) if data.get("probe_l2") else None,
    )


def read_model_list(source: str | Path) -> list[ModelEntry]:
    """Entries of a TOML/YAML model list file, or one entry for a bare spec string."""
    path = Path(source)
    if not path.is_file():
        text = str(source)
        if ":" in text and path.suffix.lower() not in (".toml", ".yaml", ".yml"):
            return [_entry_from_mapping({"spec": text}, "model spec", {})]
        raise ZoolensError(
            f"{source}: model list file not found (give a .toml/.yaml list or a "
            f"spec such as timm:resnet18)"
        )
    suffix = path.suffix.lower()
    try:
        if suffix == ".toml":
            import tomllib

            data = tomllib.loads(path.read_text(encoding="utf-8"))
        elif suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        else:
            raise ZoolensError(f"{path}: model list must be .toml, .yaml or .yml")
    except ZoolensError:
        raise
    except Exception as exc:  # tomllib.TOMLDecodeError, yaml.YAMLError
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ZoolensError(f"{path}: cannot parse model list ({msg})") from None
    defaults: dict[str, Any] = {}
    if isinstance(data, dict):
        defaults = data.get("defaults") or {}
        if not isinstance(defaults, dict):
            raise ZoolensError(f"{path}: 'defaults' must be a table/mapping")
        models = data.get("models")
    else:
        models = data
    if not isinstance(models, list) or not models:
        raise ZoolensError(f"{path}: no models (expected [[models]] entries with a 'spec')")
    entries = [
        _relative_to_list(_entry_from_mapping(raw, f"{path} entry {i + 1}", defaults), path)
        for i, raw in enumerate(models)
    ]
    names = [e.name for e in entries]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ZoolensError(f"{path}: model name {dup[0]!r} appears twice (give each a 'name')")
    return entries


def _relative_to_list(entry: ModelEntry, list_path: Path) -> ModelEntry:
    """A relative ``torchscript:`` path is read from the model list's folder when the file
    is there (a list ships beside its models), else from the working folder, as before."""
    if entry.prefix != "torchscript":
        return entry
    target = Path(entry.target)
    beside = list_path.parent / target
    if target.is_absolute() or not beside.is_file():
        return entry
    return dataclasses.replace(entry, spec=f"torchscript:{beside.resolve()}")


PREPROCESS_KEYS = ("resize", "crop", "mean", "std", "interpolation")
INTERPOLATIONS = ("nearest", "nearest_exact", "bilinear", "bicubic", "box", "hamming", "lanczos")
#: Pixels: the largest resize or crop side. Classifiers take 224 to 600 px (the largest
#: common inputs, EfficientNet-L2's 800, ViT-H/14's 518, BiT's 480, are below 1,024); one
#: 3 x 1,024 x 1,024 float32 image is 12 MiB (at 8,192 it was 805 MB). At 2,048 a batch of
#: three through a four-channel convolution already ran out of a 4 GiB address space.
MAX_SIDE = 1_024


def check_preprocess(config: Any, where: str) -> None:
    """ZoolensError (one line) unless ``config`` is a preprocess mapping zoolens can build:
    known keys, ``resize`` / ``crop`` one or two sides in [1, MAX_SIDE], ``mean`` / ``std``
    1 to 4 finite numbers (``std`` non-zero), a known ``interpolation``."""
    import math

    if config is None:
        return
    if not isinstance(config, dict):
        raise ZoolensError(f"{where}: preprocess must be a table/mapping")
    unknown = sorted(str(k) for k in set(config) - set(PREPROCESS_KEYS))
    if unknown:
        raise ZoolensError(
            f"{where}: unknown preprocess key(s) {', '.join(unknown)[:200]}"
            f" (allowed: {', '.join(PREPROCESS_KEYS)})"
        )
    for key in ("resize", "crop", "mean", "std"):
        value = config.get(key)
        if value is None:
            continue
        if key in ("resize", "crop"):
            sides = value if isinstance(value, list) else [value]
            valid = 1 <= len(sides) <= 2 and all(
                type(v) is int and 1 <= v <= MAX_SIDE  # noqa: E721
                for v in sides
            )
            wanted = f"one or two whole numbers of pixels in [1, {MAX_SIDE}]"
        else:
            valid = (
                isinstance(value, list)
                and 1 <= len(value) <= 4
                and all(
                    isinstance(v, (int, float))
                    and not isinstance(v, bool)
                    and math.isfinite(v)
                    and abs(v) <= 1e6
                    and (key == "mean" or v != 0)
                    for v in value
                )
            )
            wanted = "1 to 4 finite numbers" + (" (non-zero)" if key == "std" else "")
        if not valid:
            raise ZoolensError(
                f"{where}: preprocess {key} must be {wanted} (got {str(value)[:40]})"
            )
    mode = config.get("interpolation")
    if mode is not None and str(mode).lower() not in INTERPOLATIONS:
        raise ZoolensError(
            f"{where}: preprocess interpolation {str(mode)[:40]!r}; use one of "
            f"{', '.join(INTERPOLATIONS)}"
        )


class ResizeGuard:
    """Before a ``Resize(size)``: an image whose resized long side would pass MAX_SIDE (a
    resize of the short side scales a 1 x 100,000 image to 32 x 3,200,000) is skipped as
    unreadable (``UndecodableImage``, listed with its reason) instead of allocated."""

    def __init__(self, size: int | list[int]):
        self.size = size

    def __call__(self, image: Any) -> Any:
        from zoolens.collect.images import UndecodableImage

        width, height = image.size
        if isinstance(self.size, list) and len(self.size) == 2:
            return image  # an exact (height, width): already within MAX_SIDE
        side = self.size[0] if isinstance(self.size, list) else self.size
        longest = side * max(width, height) / max(1, min(width, height))
        if longest > MAX_SIDE:
            raise UndecodableImage(
                Path(),
                f"{width} x {height} pixels; resizing its short side to {side} makes the "
                f"long side {longest:,.0f} px, beyond {MAX_SIDE:,}",
            )
        return image

    def __repr__(self) -> str:
        return f"ResizeGuard(max_side={MAX_SIDE})"


def build_preprocess(config: dict[str, Any] | None, spec: str):
    """A torchvision transform from ``{resize, crop, mean, std}`` (any subset; ToTensor
    always); the config is checked first (``check_preprocess``)."""
    from torchvision import transforms

    check_preprocess(config, f"model {spec}")
    config = dict(config or {})
    steps: list[Any] = []
    if config.get("resize") is not None:
        steps.append(ResizeGuard(config["resize"]))
        mode = getattr(
            transforms.InterpolationMode, str(config.get("interpolation", "bilinear")).upper()
        )
        steps.append(transforms.Resize(config["resize"], interpolation=mode))
    if config.get("crop") is not None:
        steps.append(transforms.CenterCrop(config["crop"]))
    steps.append(transforms.ToTensor())
    if config.get("mean") is not None or config.get("std") is not None:
        steps.append(
            transforms.Normalize(
                config.get("mean", (0.0, 0.0, 0.0)), config.get("std", (1.0, 1.0, 1.0))
            )
        )
    return transforms.Compose(steps)


def module_forward(module: Any) -> Callable[[Any], tuple[Any, Any]]:
    """``forward`` for a plain module: a ``(logits, embeddings)`` tuple is kept as is; a bare
    logits tensor gets the input of the last ``nn.Linear`` as its embedding (captured by a
    forward pre-hook), or none when the module has no Linear layer."""
    import torch
    from torch import nn

    last_linear = None
    if isinstance(module, nn.Module) and not isinstance(module, torch.jit.ScriptModule):
        for sub in module.modules():
            if isinstance(sub, nn.Linear):
                last_linear = sub
    captured: dict[str, Any] = {}

    def hook(_mod, args):
        captured["emb"] = args[0]

    def forward(x):
        captured.clear()
        # The hook lives only for this call: the user's module is left as it was.
        handle = last_linear.register_forward_pre_hook(hook) if last_linear is not None else None
        try:
            out = module(x)
        finally:
            if handle is not None:
                handle.remove()
        if isinstance(out, (tuple, list)):
            if len(out) != 2:
                raise ZoolensError("model forward must return logits or (logits, embeddings)")
            return out[0], out[1]
        if isinstance(out, dict):
            return out["logits"], out.get("embeddings")
        emb = captured.get("emb")
        if emb is not None and (emb.ndim != 2 or emb.shape[0] != out.shape[0]):
            emb = None
        return out, emb

    return forward


@register_adapter("python")
def _load_python(
    entry: ModelEntry, pretrained: bool, class_names: Sequence[str] | None = None
) -> LoadedModel:
    module_name, func_name = entry.target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ZoolensError(f"model {entry.spec}: cannot import {module_name} ({exc})") from None
    func = getattr(module, func_name, None)
    if not callable(func):
        raise ZoolensError(f"model {entry.spec}: {module_name} has no function {func_name}")
    kwargs = dict(entry.kwargs)
    try:
        import inspect

        if "pretrained" in inspect.signature(func).parameters and "pretrained" not in kwargs:
            kwargs["pretrained"] = pretrained  # --pretrained/--no-pretrained reach the function
    except (TypeError, ValueError):  # builtins without a signature
        pass
    try:
        result = func(**kwargs)
    except ZoolensError:
        raise
    except TypeError as exc:
        raise ZoolensError(
            f"model {entry.spec}: bad kwargs {sorted(entry.kwargs)} ({exc})"
        ) from None
    transform = None
    card: dict[str, Any] = {}
    if isinstance(result, tuple):
        if len(result) != 3:
            raise ZoolensError(
                f"model {entry.spec}: the function must return a model or "
                f"(model, transform, card dict)"
            )
        model, transform, card = result
        card = dict(card or {})
    else:
        model = result
    card.setdefault("source", entry.spec)
    if entry.preprocess is not None or transform is None:
        transform = build_preprocess(entry.preprocess, entry.spec)
    fwd = module_forward(model) if not hasattr(model, "zoolens_forward") else model.zoolens_forward
    return LoadedModel(
        entry.name, fwd, model if hasattr(model, "parameters") else None, transform, card
    )


@register_adapter("torchscript")
def _load_torchscript(
    entry: ModelEntry, pretrained: bool, class_names: Sequence[str] | None = None
) -> LoadedModel:
    import torch

    path = Path(entry.target)
    if not path.is_file():
        raise ZoolensError(f"model {entry.spec}: TorchScript file {path} not found")
    import warnings

    program = is_export_program(path)
    if program and not entry.allow_pickle:
        raise ZoolensError(
            f"model {entry.spec}: {path.name} is a torch.export program, which "
            f"torch.export.load unpickles; refused (trust the file's author: --trust-code)"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # jit is deprecated in torch >= 2.9
            if program:  # saved with torch.export.save
                module = _without_train_mode(torch.export.load(str(path)).module())
            else:  # torch.jit's own C++ unpickler: TorchScript types only, no Python globals
                module = torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:
        raise ZoolensError(
            f"model {entry.spec}: cannot load TorchScript ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''})"
        ) from None
    card = {"arch": path.stem, "framework": None, "source": str(path)}
    return LoadedModel(
        entry.name,
        module_forward(module),
        module,
        build_preprocess(entry.preprocess, entry.spec),
        card,
    )


def is_export_program(path: str | Path) -> bool:
    """Would ``path`` be loaded with ``torch.export.load`` (which unpickles)? Decided on the
    path the loader opens: its suffix is ``.pt2`` (any case), or its content is a zip
    archive laid out as torch.export saves one (an ``archive_format`` record or a
    ``model_weights_config.json``), whatever its name."""
    import zipfile

    path = Path(path)
    if path.suffix.lower() == ".pt2":
        return True
    try:
        if not zipfile.is_zipfile(path):
            return False
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (OSError, zipfile.BadZipFile, ValueError):
        return False
    return any(
        name.rsplit("/", 1)[-1] in ("archive_format", "model_weights_config.json") for name in names
    )


def _without_train_mode(module: Any) -> Any:
    """The GraphModule of a torch.export program raises NotImplementedError on
    ``train()``/``eval()`` (an exported graph has its mode baked in): make both no-ops, so
    the runner and ``load_ensemble`` can treat it like any module."""
    import types

    module.train = types.MethodType(lambda self, mode=True: self, module)
    module.eval = types.MethodType(lambda self: self, module)
    return module


def load_model(
    entry: ModelEntry, *, pretrained: bool = True, class_names: Sequence[str] | None = None
) -> LoadedModel:
    """Build the model an entry describes (seeded: random init is the same in every process).

    ``pretrained`` is the command-wide default; the entry's own ``pretrained`` wins.
    ``class_names`` are needed by zero-shot heads (open_clip). The returned card merges the
    adapter's fields with the entry's ``card`` overrides (overrides win).
    """
    import torch

    use_pretrained = entry.pretrained if entry.pretrained is not None else pretrained
    torch.manual_seed(entry.seed)
    loaded = _ADAPTERS[entry.prefix](entry, use_pretrained, class_names)
    loaded.name = entry.name
    loaded.card = {**loaded.card, **entry.card}
    if not use_pretrained and "seed" not in entry.card and loaded.card.get("seed") is None:
        loaded.card["seed"] = entry.seed  # random init: the seed is what tells Reinit pairs apart
    return loaded
