"""``zoolens predict`` and ``load_ensemble``: run an exported ensemble on new images.

Each member is rebuilt from its collect block by the collect adapters
(``collect.specs.load_model``; a soup member then gets its averaged state dict), after every
checkpoint's sha256 is checked against the ensemble file. Members run through the collect
runner (``collect.runner.run_model``, or Ray tasks with ``use_ray``: same batches, same
devices, same mixed-precision default), so on the same machine and batch size their logits
are the ones ``zoolens collect`` stored. The ensemble then decides as ``zoolens analyze``
scored it: ``argmax_c Σ_m w_m x_m[c]`` with ``x_m = softmax(z_m / T_m)`` ("probs") or
``z_m / T_m`` ("logits"), summed in float64, lowest class index on ties. Reported
probabilities: ``Σ w_m x_m / Σ w_m`` ("probs") or its softmax ("logits").

Images: ``IMAGES/<class>/<image>`` (labels known when the folder names are class names: the
CSV gets a ``label`` column and the accuracy is reported) or a flat folder of images. Every
preprocessed image must have the member's recorded input shape (an image of another size is
an error naming it). Undecodable images are skipped and listed. Nothing is written unless
every member ran: the CSV atomically at the end; with ``zoo``, every member's logits and
embeddings are added to a zoo (created from the labelled folder), so the new images can be
analysed later.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

from zoolens.deploy.schema import EnsembleFile, Member, read_ensemble_file, resolve_members
from zoolens.errors import ZoolensError, require_torch
from zoolens.measure.ensemble import ensemble_inputs


# ---------------------------------------------------------------- members


def member_entry(member: Member, *, trust_code: bool = False):
    """The ``collect.specs.ModelEntry`` of a member (unknown collect keys ignored); it may
    unpickle (a .pt2 program) only with ``trust_code``, whatever the file says."""
    from zoolens.collect.specs import ModelEntry

    known = {f.name for f in dataclasses.fields(ModelEntry)}
    data = {k: v for k, v in member.collect.items() if k in known}
    data["name"] = member.name
    data["allow_pickle"] = bool(trust_code)  # the reader's decision, never the file's
    if data.get("templates") is not None:
        data["templates"] = tuple(data["templates"])
    data.setdefault("kwargs", {})
    data["card"] = {}
    try:
        return ModelEntry(**data)
    except TypeError as exc:
        raise ZoolensError(f"member {member.name!r}: bad collect block ({exc})") from None


def build_member(member: Member, class_names: list[str], *, trust_code: bool = False):
    """The LoadedModel of a member (soups: the state dict loaded, strictly)."""
    from zoolens.collect.specs import build_preprocess, load_model

    entry = member_entry(member, trust_code=trust_code)
    loaded = load_model(
        entry, pretrained=bool(member.collect.get("pretrained", True)), class_names=class_names
    )
    if member.state_dict is not None:
        from zoolens.study.soup import load_state_dict

        if loaded.module is None:
            raise ZoolensError(f"member {member.name!r}: a soup needs an nn.Module")
        try:
            loaded.module.load_state_dict(load_state_dict(member.state_dict.path), strict=True)
        except RuntimeError as exc:
            raise ZoolensError(
                f"member {member.name!r}: the soup's state dict does not fit "
                f"the network ({str(exc).splitlines()[0]})"
            ) from None
    if loaded.transform is None:
        loaded.transform = build_preprocess(None, entry.spec)
    return loaded


def member_resources(where: str | Path, member: Member) -> Any:
    """A failed allocation while ``member`` is built or run: one line naming the file and
    the member (``collect.runner.allocation_failures``), never a traceback."""
    from zoolens.collect.runner import allocation_failures

    return allocation_failures(f"{where}: member {member.name!r}")


def build_named(where: str | Path, member: Member, class_names: list[str], trust_code: bool):
    """:func:`build_member`, its errors one line naming the ensemble file and the member."""
    with member_resources(where, member):
        try:
            return build_member(member, class_names, trust_code=trust_code)
        except ZoolensError as exc:
            if str(exc).startswith(str(where)):
                raise
            raise ZoolensError(f"{where}: member {member.name!r}: {exc}") from None


# ---------------------------------------------------------------- images


class FlatImages:
    """A flat folder of images (no labels): ``files`` sorted by name, ids = file names."""

    def __init__(self, root: Path, transform: Any = None):
        from zoolens.collect.images import IMAGE_EXTENSIONS

        self.root = root
        self.transform = transform
        self.files = sorted(
            p
            for p in root.iterdir()
            if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS
        )
        if not self.files:
            raise ZoolensError(
                f"{root}: no images (expected IMAGES/<file> or IMAGES/<class>/<file>)"
            )
        self.example_ids = np.asarray([p.name for p in self.files])
        self.labels = np.full(len(self.files), -1, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.files)

    def with_transform(self, transform: Any) -> FlatImages:
        clone = object.__new__(FlatImages)
        clone.__dict__.update(self.__dict__)
        clone.transform = transform
        return clone

    def load(self, index: int):
        from zoolens.collect.images import ImageFolder

        # Same decoding and errors (FlatImages has the attributes ImageFolder.load reads).
        return ImageFolder.load(cast(ImageFolder, self), index)

    def __getitem__(self, index: int):
        from zoolens.collect.images import transformed

        return transformed(self.load(index), self.transform, self.files[index])


def open_images(images: str | Path, class_names: list[str]):
    """(dataset, labels as indices into ``class_names`` or -1, labelled?)."""
    from zoolens.collect.images import ImageFolder

    root = Path(images)
    if not root.is_dir():
        raise ZoolensError(f"{root}: image folder not found")
    folders = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        flat = FlatImages(root)
        return flat, flat.labels, False
    if set(folders) == set(class_names):
        named = ImageFolder(root, classes=class_names)
        return named, named.labels, True
    data = ImageFolder(root)
    index = {name: k for k, name in enumerate(class_names)}
    labels = np.array([index.get(data.classes[c], -1) for c in data.labels], dtype=np.int64)
    return data, labels, bool((labels >= 0).all())


class _ShapeChecked:
    """Dataset view that refuses a preprocessed image whose shape is not the member's."""

    def __init__(self, dataset: Any, shape: list[int], member: str):
        self.dataset, self.shape, self.member = dataset, tuple(shape), member

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        item = self.dataset[index]
        if tuple(item.shape) != self.shape:
            raise ZoolensError(
                f"{self.dataset.files[index]}: preprocessed to "
                f"{list(item.shape)}, member {self.member!r} takes "
                f"{list(self.shape)} (an image of another size?)"
            )
        return item


def _worker_error(exc: ZoolensError) -> ZoolensError:
    """A ZoolensError re-raised by a DataLoader worker carries a traceback; keep its line."""
    text = str(exc)
    if "Traceback" in text:
        last = [ln for ln in text.splitlines() if ln.strip()][-1]
        return ZoolensError(last.split("ZoolensError: ", 1)[-1])
    return exc


# ---------------------------------------------------------------- predicting


@dataclass
class Prediction:
    """Per-image results: ``ids`` (n,), ``labels`` (n,) (-1 unknown), ``scores`` (n, C) float64
    decision sums, ``probs`` (n, C), ``skipped`` {id: reason}, ``member_outputs`` {name:
    CollectedOutputs} (rows in ``positions`` order)."""

    ensemble: EnsembleFile
    ids: np.ndarray
    positions: np.ndarray
    labels: np.ndarray
    scores: np.ndarray
    probs: np.ndarray
    skipped: dict[str, str] = field(default_factory=dict)
    member_outputs: dict[str, Any] = field(default_factory=dict)

    @property
    def predictions(self) -> np.ndarray:
        return self.scores.argmax(axis=1)

    @property
    def accuracy(self) -> float | None:
        if len(self.labels) == 0 or (self.labels < 0).any():
            return None
        return float((self.predictions == self.labels).mean())

    def table(self, top_k: int = 1) -> pd.DataFrame:
        """The predictions CSV: image, [label], top{j}_class, top{j}_index, top{j}_prob."""
        names = np.asarray(self.ensemble.class_names, dtype=object)
        k = max(1, min(int(top_k), len(names)))
        order = np.argsort(-self.scores, axis=1, kind="stable")[:, :k]
        frame = {"image": self.ids}
        if (self.labels >= 0).all():
            frame["label"] = names[self.labels]
        for j in range(k):
            frame[f"top{j + 1}_class"] = names[order[:, j]]
            frame[f"top{j + 1}_index"] = order[:, j]
            frame[f"top{j + 1}_prob"] = np.take_along_axis(self.probs, order[:, j : j + 1], axis=1)[
                :, 0
            ]
        return pd.DataFrame(frame)


def combine_members(
    ensemble: EnsembleFile, logits: dict[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """(decision sums (n, C) float64, probabilities (n, C)) from each member's logits."""
    total = None
    for member in ensemble.members:
        # float32 inputs (as analyze), widened before weighting (as greedy's float64 sum)
        x = ensemble_inputs(logits[member.name], member.temperature, ensemble.combine).astype(
            np.float64
        )
        total = member.weight * x if total is None else total + member.weight * x
    assert total is not None  # an ensemble has at least one member
    mean = total / sum(m.weight for m in ensemble.members)
    if ensemble.combine == "probs":
        probs = mean
    else:
        from zoolens.measure.calibration import softmax

        probs = softmax(mean, 1.0, dtype=np.float64)
    bad = ~(np.isfinite(total).all(axis=1) & np.isfinite(probs).all(axis=1))
    if bad.any():
        raise ZoolensError(
            f"the ensemble's probabilities are not finite on {int(bad.sum())} image(s) "
            f"(a member gives inf/NaN logits, or a temperature is extreme); nothing written"
        )
    return total, probs


def predict_images(
    ensemble_path: str | Path,
    images: str | Path,
    *,
    options: Any = None,
    use_ray: bool = False,
    ray_address: str | None = None,
    trust_code: bool = False,
) -> Prediction:
    """Run the ensemble of ``ensemble_path`` on an image folder (see the module docstring).

    ``trust_code``: allow members that run code the file names (``python:`` specs other
    than zoolens's own builders, ``.pt2`` programs); without it they are refused before
    anything is built (``deploy.schema.resolve_members``)."""
    from zoolens.collect.images import ImageFolder
    from zoolens.collect.runner import RunOptions, run_model

    ensemble = resolve_members(
        read_ensemble_file(ensemble_path), ensemble_path, trust_code=trust_code
    )
    options = options or RunOptions()
    data, labels, _ = open_images(images, ensemble.class_names)
    if use_ray and not isinstance(data, ImageFolder):
        raise ZoolensError("--ray needs IMAGES/<class>/<image> (Ray workers re-scan the folder)")
    outputs = {}
    for member in ensemble.members:
        with member_resources(ensemble_path, member):
            loaded = build_named(ensemble_path, member, ensemble.class_names, trust_code)
            view = data.with_transform(loaded.transform)
            if member.input_shape is not None:
                view = _ShapeChecked(view, member.input_shape, member.name)
            _check_classes(loaded, view, member, len(ensemble.class_names), ensemble_path)
            try:
                if use_ray and member.state_dict is None:
                    outputs[member.name] = _run_on_ray(
                        member, data, view, options, ray_address, trust_code
                    )
                else:
                    outputs[member.name] = run_model(
                        loaded, view, name=member.name, options=options
                    )
            except ZoolensError as exc:
                raise _worker_error(exc) from None
        out = outputs[member.name]
        if out.logits.shape[1] != len(ensemble.class_names):
            raise ZoolensError(
                f"{ensemble_path}: member {member.name!r} gives "
                f"{out.logits.shape[1]} classes, the ensemble file lists "
                f"{len(ensemble.class_names)}"
            )
    # the images every member decoded, in folder order
    positions = outputs[ensemble.members[0].name].indices
    for out in outputs.values():
        positions = np.intersect1d(positions, out.indices)
    logits = {
        name: out.logits[np.searchsorted(out.indices, positions)] for name, out in outputs.items()
    }
    scores, probs = combine_members(ensemble, logits)
    ids = np.asarray(data.example_ids)
    skipped = {
        str(ids[i]): reason for out in outputs.values() for i, reason in sorted(out.skipped.items())
    }
    return Prediction(
        ensemble, ids[positions], positions, labels[positions], scores, probs, skipped, outputs
    )


def _check_classes(
    loaded: Any, view: Any, member: Member, num_classes: int, where: str | Path
) -> None:
    """Fail fast: the member's output width on the first decodable image is the file's class
    count (before a whole run over the images)."""
    import torch

    from zoolens.collect.images import UndecodableImage

    for index in range(len(view)):
        try:
            item = view[index]
        except UndecodableImage:
            continue
        if loaded.module is not None and hasattr(loaded.module, "eval"):
            loaded.module.eval()
        try:
            with torch.inference_mode():
                logits, _ = loaded.forward(torch.as_tensor(item)[None])
        except (ZoolensError, MemoryError):
            raise
        except Exception as exc:  # the member's own network: any library error is its own
            from zoolens.errors import is_out_of_memory, one_line

            if is_out_of_memory(exc):
                raise
            raise ZoolensError(
                f"{where}: member {member.name!r} fails on one image "
                f"({type(exc).__name__}: {one_line(exc, 200)})"
            ) from None
        if logits.shape[-1] != num_classes:
            raise ZoolensError(
                f"{where}: member {member.name!r} gives {logits.shape[-1]} "
                f"classes, the ensemble file lists {num_classes}"
            )
        return


SCRATCH_PREFIX = "zoolens-predict-"


def _run_on_ray(
    member: Member,
    folder: Any,
    view: Any,
    options: Any,
    address: str | None,
    trust_code: bool = False,
):
    """One member as Ray shard tasks (``collect.distributed``), images shape-checked here."""
    import shutil
    import tempfile

    from zoolens.collect.distributed import run_into_store_ray
    from zoolens.collect.runner import ShardStore

    from zoolens.collect.images import UndecodableImage

    for index in range(len(view)):  # Ray workers preprocess on their own: check shapes first
        try:
            view[index]
        except UndecodableImage:  # skipped and listed by the runner, as in collect
            pass
    from zoolens.zoo.scratch import owned_name, sweep_dead

    # named by this process, so a run killed with SIGKILL is swept by the next one
    parent = Path(tempfile.gettempdir())
    sweep_dead(parent, SCRATCH_PREFIX)
    work = Path(tempfile.mkdtemp(prefix=owned_name(SCRATCH_PREFIX, ""), dir=parent))
    try:
        store = ShardStore(
            work,
            member.name,
            {"predict": member.name},
            len(folder),
            options.effective_shard_size(),
            resume=False,
        )
        run_into_store_ray(
            member_entry(member, trust_code=trust_code),
            folder,
            store,
            options,
            pretrained=bool(member.collect.get("pretrained", True)),
            address=address,
        )
        return store.assemble()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def write_predictions(prediction: Prediction, out: str | Path, top_k: int = 1) -> Path:
    from zoolens.atomic import atomic_write_with

    out = Path(out)
    if out.is_dir():
        raise ZoolensError(
            f"--out {out}: is a folder; give a file name such as {out / 'predictions.csv'}"
        )
    if not out.parent.is_dir():
        raise ZoolensError(f"--out {out}: folder {out.parent} does not exist")
    from zoolens.study.tables import csv_safe_frame

    table = csv_safe_frame(prediction.table(top_k))  # image ids, class names: no formulas
    atomic_write_with(out, lambda tmp: table.to_csv(tmp, index=False))
    return out


def add_to_zoo(
    prediction: Prediction,
    images: str | Path,
    zoo_path: str | Path,
    *,
    create: bool = False,
    replace: bool = False,
) -> Any:
    """Every member's logits and embeddings into a zoo (created from the labelled folder)."""
    from zoolens.collect.images import ImageFolder
    from zoolens.collect.runner import _add_outputs, _open_zoo

    ensemble = prediction.ensemble
    root = Path(images)
    try:
        folder = ImageFolder(root, classes=ensemble.class_names)
    except ZoolensError as exc:
        raise ZoolensError(
            f"--zoo needs IMAGES/<class>/<image> with the ensemble's "
            f"{len(ensemble.class_names)} class folders ({exc})"
        ) from None
    zoo_path = Path(zoo_path)
    zoo, _ = _open_zoo(zoo_path, create, folder, None)
    for member in ensemble.members:
        if zoo is not None and member.name in zoo.models and not replace:
            raise ZoolensError(f"model {member.name!r} is already in {zoo_path} (--replace)")
    for member in ensemble.members:
        out = prediction.member_outputs[member.name]
        out.card = {
            **out.card,
            "collect": member.collect,
            "cost": member.cost,
            "notes": f"collected by zoolens predict (ensemble {ensemble.kind})",
        }
        zoo = _add_outputs(zoo, zoo_path, folder, out, member.name, None, root.name, replace)
    return zoo


# ---------------------------------------------------------------- Python: nn.Module


def load_ensemble(path: str | Path, *, trust_code: bool = False):
    """The ensemble of an ensemble file as a ``torch.nn.Module`` (checkpoints checked).

    ``trust_code=True`` allows members that run code the file names (``python:`` specs
    other than zoolens's own builders, ``.pt2`` programs); without it they are refused
    (ZoolensError naming the member and spec) before anything is built.

    ``model(x)`` takes a preprocessed batch (B, *input_shape) — every member gets the same
    tensor, so its members must share one preprocessing — or a list of PIL images (each
    member applies its own transform) and returns (B, C) class probabilities as the
    ensemble file defines them; ``model.predict(x)`` the (B,) classes (``argmax`` of the
    decision sum, lowest index on ties); ``model.class_names``; ``model.transforms`` (one
    per member); ``model.spec`` (the EnsembleFile).
    """
    torch = require_torch("zoolens.load_ensemble")
    from torch import nn

    ensemble = resolve_members(read_ensemble_file(path), path, trust_code=trust_code)
    loaded = [
        build_named(path, member, ensemble.class_names, trust_code) for member in ensemble.members
    ]

    class Ensemble(nn.Module):
        def __init__(self):
            super().__init__()
            self.spec = ensemble
            self.class_names = list(ensemble.class_names)
            self.transforms = [m.transform for m in loaded]
            self.members = nn.ModuleList(
                [m.module for m in loaded if isinstance(m.module, nn.Module)]
            )
            self._forwards = [m.forward for m in loaded]
            self.eval()

        def _scores(self, x) -> Any:  # a torch.Tensor
            total = None
            for member, forward, transform in zip(
                ensemble.members, self._forwards, self.transforms
            ):
                batch = torch.stack([transform(img) for img in x]) if isinstance(x, list) else x
                logits, _ = forward(batch)
                # as measure.ensemble.ensemble_inputs: float64, then float32 (the values the
                # analysis and `zoolens predict` sum), summed in float64
                z = logits.float().double() / member.temperature
                xm = torch.softmax(z, dim=1) if ensemble.combine == "probs" else z
                xm = xm.float().double()
                total = xm * member.weight if total is None else total + member.weight * xm
            assert total is not None  # an ensemble has at least one member
            return total

        @torch.inference_mode()
        def forward(self, x):
            total = self._scores(x)
            mean = total / sum(m.weight for m in ensemble.members)
            return mean if ensemble.combine == "probs" else torch.softmax(mean, dim=1)

        @torch.inference_mode()
        def predict(self, x) -> Any:  # a torch.Tensor
            return self._scores(x).argmax(dim=1)

    return Ensemble()
