"""Run models over a dataset into per-example logits and pre-logit embeddings, resumably.

The unit of work is a *shard*: the examples ``[k*S, min((k+1)*S, N))`` of the dataset in its
fixed order (S = ``shard_size``, a multiple of the batch size). Inside a shard the examples go
through the model in batches of ``batch_size`` starting at the shard's first example, so the
batches — and, on the same device with the same thread count, the numbers — are identical
whether the shard runs here, after a restart, or as a Ray task (``collect.distributed``).

Each finished shard is written atomically (temp file, fsync, rename) to
``<work dir>/<model slug>/shard-<k>.safetensors`` with the global row indices it covers, so an
interrupted run resumes with the shards that are missing and never duplicates a row. The
work dir records a fingerprint of the run (model spec and options, the data set's example
ids, batch and shard size); shards of a different run are never mixed in. When every shard
exists they are assembled in example order and the model is added to the zoo with
``Zoo.add``; the model's shards are then deleted.

Images that cannot be decoded are skipped (no row in the zoo; listed in a warning and in the
card's ``notes``), or with ``strict`` stop the run with an error naming the file.

Inference runs under ``torch.inference_mode()`` on the chosen device (auto: cuda, then mps,
then cpu) with autocast (float16) on CUDA by default; logits and embeddings are stored as
float32.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from zoolens.collect.batches import RunOptions, run_batches, select_device
from zoolens.collect.cost import measure_cost
from zoolens.collect.distributed import run_into_store_ray
from zoolens.collect.images import ImageFolder, lookup_positions, position_index, skipped_note
from zoolens.collect.specs import LoadedModel, build_preprocess, load_model, module_forward
from zoolens.errors import ZoolensError, require_torch
from zoolens.progress import info, progress_bar
from zoolens.atomic import atomic_path, atomic_write_bytes
from zoolens.zoo._slug import short_hash, slugify
from zoolens.zoo.store import Zoo

__all__ = [
    "RunOptions",
    "run_batches",
    "select_device",
    "CollectedOutputs",
    "ShardStore",
    "run_model",
    "run_into_store",
    "collect_model",
    "collect_entries",
    "work_dir_for",
]

SHARD_FORMAT = 1


@dataclasses.dataclass
class CollectedOutputs:
    """Outputs of one model over a dataset: rows for the examples that decoded.

    ``indices``: (n,) int64 dataset positions, increasing; ``logits`` (n, C) float32;
    ``embeddings`` (n, D) float32 or None; ``skipped``: {dataset position: reason}.
    """

    indices: np.ndarray
    logits: np.ndarray
    embeddings: np.ndarray | None
    skipped: dict[int, str]
    card: dict[str, Any]


def shard_ranges(num_examples: int, shard_size: int) -> list[tuple[int, int]]:
    return [(s, min(s + shard_size, num_examples)) for s in range(0, num_examples, shard_size)]


# ---------------------------------------------------------------- shards on disk


class ShardStore:
    """The shards of one model run in ``work_dir/<slug>/`` (see the module docstring)."""

    def __init__(
        self,
        work_dir: str | Path,
        model_name: str,
        fingerprint: dict[str, Any],
        num_examples: int,
        shard_size: int,
        *,
        resume: bool = True,
    ):
        self._name = model_name
        self.num_examples = int(num_examples)
        self.shard_size = int(shard_size)
        self.ranges = shard_ranges(self.num_examples, self.shard_size)
        self.dir = self.folder_for(work_dir, model_name)
        self.fingerprint = {
            **fingerprint,
            "num_examples": self.num_examples,
            "shard_size": self.shard_size,
            "shard_format": SHARD_FORMAT,
        }
        run_file = self.dir / "run.json"
        if self.dir.exists():
            old = None
            try:
                old = json.loads(run_file.read_text())
            except (OSError, ValueError):
                pass
            if old != self.fingerprint:
                if resume and old is not None and any(self.dir.glob("shard-*.safetensors")):
                    diff = sorted(
                        k
                        for k in set(old) | set(self.fingerprint)
                        if old.get(k) != self.fingerprint.get(k)
                    )
                    raise ZoolensError(
                        f"{self.dir}: holds shards of a different run of model {model_name!r} "
                        f"(differs in {', '.join(diff)}); pass --no-resume to start over"
                    )
                shutil.rmtree(self.dir)
            elif not resume:
                shutil.rmtree(self.dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        if not run_file.exists():
            atomic_write_bytes(run_file, json.dumps(self.fingerprint, indent=1).encode())
        for tmp in self.dir.glob(".tmp-*"):  # leftovers of a killed write
            tmp.unlink(missing_ok=True)

    def shard_path(self, k: int) -> Path:
        return self.dir / f"shard-{k:06d}.safetensors"

    def _index(self, start: int) -> int:
        return start // self.shard_size

    def done(self) -> set[int]:
        """Shard numbers already written (and readable)."""
        out = set()
        for k in range(len(self.ranges)):
            if self.shard_path(k).exists():
                out.add(k)
        return out

    def missing_ranges(self) -> list[tuple[int, int]]:
        done = self.done()
        return [r for k, r in enumerate(self.ranges) if k not in done]

    def write(self, start: int, stop: int, arrays: dict[str, Any], card: dict[str, Any]) -> None:
        """Write one shard atomically (valid rows, their indices, skipped rows, the card)."""
        from safetensors.numpy import save_file

        k = self._index(start)
        if self.ranges[k] != (start, stop):
            raise RuntimeError(f"shard {start}:{stop} does not match the shard layout")
        tensors = {"indices": np.ascontiguousarray(arrays["indices"], dtype=np.int64)}
        if arrays.get("logits") is not None:
            tensors["logits"] = np.ascontiguousarray(arrays["logits"], dtype=np.float32)
        if arrays.get("embeddings") is not None:
            tensors["embeddings"] = np.ascontiguousarray(arrays["embeddings"], dtype=np.float32)
        meta = {
            "start": str(start),
            "stop": str(stop),
            "skipped": json.dumps({str(i): r for i, r in arrays["skipped"].items()}),
            "card": json.dumps(card, default=str),
        }
        with atomic_path(self.shard_path(k)) as tmp:
            save_file(tensors, str(tmp), metadata=meta)

    def assemble(self) -> CollectedOutputs:
        """All shards in example order; ZoolensError if one is missing or unreadable."""
        from safetensors import safe_open

        indices: list[np.ndarray] = []
        logits: list[Any] = []  # None where a shard lacks them (concatenate then refuses)
        embs: list[np.ndarray | None] = []
        skipped: dict[int, str] = {}
        card: dict[str, Any] = {}
        for k, (start, stop) in enumerate(self.ranges):
            path = self.shard_path(k)
            if not path.exists():
                raise ZoolensError(f"{path}: shard missing; run the collection again to finish it")
            try:
                with safe_open(str(path), framework="numpy") as f:
                    meta = f.metadata() or {}
                    idx = f.get_tensor("indices")
                    keys = set(f.keys())
                    lg = f.get_tensor("logits") if "logits" in keys else None
                    em = f.get_tensor("embeddings") if "embeddings" in keys else None
            except Exception as exc:
                raise ZoolensError(
                    f"{path}: unreadable shard ({exc}); delete it and resume"
                ) from None
            sk = {int(i): r for i, r in json.loads(meta.get("skipped", "{}")).items()}
            covered = np.union1d(idx, np.fromiter(sk, dtype=np.int64, count=len(sk)))
            if not np.array_equal(covered, np.arange(start, stop)):
                raise ZoolensError(
                    f"{path}: shard rows do not cover examples {start}..{stop - 1}; "
                    f"delete it and resume"
                )
            card = card or json.loads(meta.get("card", "{}"))
            skipped.update(sk)
            if len(idx):
                indices.append(idx)
                logits.append(lg)
                embs.append(em)
        if not indices:
            raise ZoolensError(f"{self.dir}: no example could be decoded")
        have_emb = all(e is not None for e in embs)
        order_idx = np.concatenate(indices)
        if np.any(np.diff(order_idx) <= 0):
            raise ZoolensError(f"{self.dir}: shard rows out of order or duplicated")
        return CollectedOutputs(
            order_idx,
            np.concatenate(logits),
            np.concatenate([e for e in embs if e is not None]) if have_emb else None,
            skipped,
            card,
        )

    @staticmethod
    def folder_for(work_dir: str | Path, model_name: str) -> Path:
        return Path(work_dir) / f"{slugify(model_name)}-{short_hash(model_name, length=8)}"

    @classmethod
    def discard(cls, work_dir: str | Path, model_name: str) -> None:
        """Delete a model's shards (and the work dir once it is empty)."""
        folder = cls.folder_for(work_dir, model_name)
        shutil.rmtree(folder, ignore_errors=True)
        try:
            folder.parent.rmdir()  # only when empty
        except OSError:
            pass

    def remove(self) -> None:
        self.discard(self.dir.parent, self._name)


# ---------------------------------------------------------------- one model, any dataset


def _as_loaded(model: Any, name: str):
    """Wrap an nn.Module or a callable ``x -> logits | (logits, embeddings)`` as a LoadedModel."""
    if hasattr(model, "forward") and hasattr(model, "module") and hasattr(model, "card"):
        return model
    fwd = module_forward(model)
    return LoadedModel(name, fwd, model if hasattr(model, "parameters") else None, None, {})


def run_model(
    model: Any,
    dataset: Any,
    *,
    work_dir: str | Path | None = None,
    name: str = "model",
    options: RunOptions | None = None,
    fingerprint: dict[str, Any] | None = None,
    card: dict[str, Any] | None = None,
) -> CollectedOutputs:
    """Run any model over any dataset, sharded and resumable; returns the assembled outputs.

    ``model``: a LoadedModel, an ``nn.Module`` or a callable returning logits or
    ``(logits, embeddings)`` (a bare-logits module's embedding is the input of its last
    Linear). ``dataset[i]``: a tensor or ``(tensor, label)`` (or an ImageFolder whose
    transform makes tensors). ``work_dir`` keeps the shards (a temporary folder when None:
    then nothing is resumable). ``fingerprint`` identifies the run for resuming (default: the
    name, the dataset length and the options that change numbers).
    """
    import tempfile

    options = options or RunOptions()
    loaded = _as_loaded(model, name)
    shard_size = options.effective_shard_size()
    fp = (
        fingerprint
        if fingerprint is not None
        else {"name": name, "batch_size": options.batch_size, "amp": options.amp}
    )
    own_tmp = work_dir is None
    work = Path(tempfile.mkdtemp(prefix="zoolens-collect-")) if work_dir is None else Path(work_dir)
    try:
        store = ShardStore(work, name, fp, len(dataset), shard_size, resume=options.resume)
        the_card = {**getattr(loaded, "card", {}), **(card or {})}
        run_into_store(loaded, dataset, store, options, the_card, description=name)
        out = store.assemble()
        return out
    finally:
        if own_tmp:
            shutil.rmtree(work, ignore_errors=True)


def run_into_store(
    loaded: Any,
    dataset: Any,
    store: ShardStore,
    options: RunOptions,
    card: dict[str, Any],
    description: str = "",
    timings: list[tuple[int, float]] | None = None,
) -> None:
    """Compute the store's missing shards locally, with a progress bar (images/s)."""
    missing = store.missing_ranges()
    total = store.num_examples
    todo = sum(stop - start for start, stop in missing)
    if not missing:
        info(f"{description}: all {len(store.ranges)} shards already computed (resumed)")
        return
    if todo < total:
        info(f"{description}: resuming, {total - todo} of {total} examples already computed")
    t0 = time.perf_counter()
    with progress_bar(total, description, unit="img") as advance:
        advance(total - todo)
        run_batches(
            loaded,
            dataset,
            missing,
            options,
            on_shard=lambda s, e, arrays: store.write(s, e, arrays, card),
            on_batch=advance,
            timings=timings,
        )
    dt = time.perf_counter() - t0
    info(f"{description}: {todo} images in {dt:.1f} s ({todo / max(dt, 1e-9):,.1f} img/s)")


# ---------------------------------------------------------------- a model list into a zoo


@contextlib.contextmanager
def allocation_failures(who: str) -> Iterator[None]:
    """A failed allocation while a model is built or run (MemoryError, torch's "can't
    allocate memory"): one line naming the model, never a traceback."""
    from zoolens.errors import is_out_of_memory, out_of_memory_error

    try:
        yield
    except (MemoryError, RuntimeError) as exc:
        if not is_out_of_memory(exc):
            raise
        raise out_of_memory_error(who, exc) from None


def work_dir_for(zoo_path: str | Path) -> Path:
    """Where shards live while a zoo is being collected: ``<zoo>.collect/`` beside the zoo."""
    zoo_path = Path(zoo_path)
    return zoo_path.parent / f"{zoo_path.name}.collect"


def entry_record(entry: Any, pretrained: bool) -> dict[str, Any]:
    """The card's ``collect`` block: what rebuilds the model (``zoolens export``/``predict``)."""
    record = dataclasses.asdict(entry)
    record.pop("card", None)
    record.pop("allow_pickle", None)  # the reader's decision, never shipped with the model
    record["pretrained"] = entry.pretrained if entry.pretrained is not None else pretrained
    if record.get("templates") is not None:
        record["templates"] = list(record["templates"])
    return json.loads(json.dumps(record, default=str))


def _entry_fingerprint(
    entry: Any, pretrained: bool, data_fp: str, options: RunOptions, device_type: str
) -> dict[str, Any]:
    return {
        "spec": entry.spec,
        "name": entry.name,
        "pretrained": entry.pretrained if entry.pretrained is not None else pretrained,
        "seed": entry.seed,
        "kwargs": json.loads(json.dumps(entry.kwargs, default=str)),
        "templates": list(entry.templates) if entry.templates else None,
        "preprocess": entry.preprocess,
        "head": entry.head,
        "probe_data": entry.probe_data,
        "probe_l2": entry.probe_l2,
        "data": data_fp,
        "batch_size": options.batch_size,
        "amp": options.amp if options.amp is not None else device_type == "cuda",
    }


class DataIndex:
    """What a zoo needs to know about a dataset: labels, example ids, class names.

    ImageFolder provides these itself; for any other dataset, build one with the labels (or
    the dataset's ``targets``/``labels`` attribute) and optional ids (default: "0".."N-1").
    """

    def __init__(
        self,
        labels: Any,
        example_ids: Sequence[str] | None = None,
        classes: Sequence[str] | None = None,
        name: str = "dataset",
    ):
        self.labels = np.asarray(labels).astype(np.int64)
        n = len(self.labels)
        self.example_ids = (
            np.asarray([str(e) for e in example_ids])
            if example_ids is not None
            else np.asarray([str(i) for i in range(n)])
        )
        if len(self.example_ids) != n or len(set(self.example_ids.tolist())) != n:
            raise ZoolensError(
                f"{name}: need {n} unique example ids, got {len(set(self.example_ids.tolist()))}"
            )
        n_classes = int(self.labels.max()) + 1 if n else 0
        self.classes = (
            [str(c) for c in classes] if classes is not None else [str(c) for c in range(n_classes)]
        )
        self.name = name
        self._position_of = position_index(self.example_ids.tolist())

    def __len__(self) -> int:
        return len(self.labels)

    def positions(self, example_ids: Sequence[str]) -> np.ndarray:
        """Positions (row numbers) of the given example ids."""
        return lookup_positions(self._position_of, example_ids, self.name)


def _data_name(data: Any) -> str:
    root = getattr(data, "root", None)
    return str(root) if root is not None else getattr(data, "name", "the dataset")


def _rows_for_zoo(zoo: Any, data: Any, out: CollectedOutputs, model: str) -> np.ndarray:
    """Row of ``out`` for each zoo example (joined on example ids), labels checked."""
    if zoo.example_ids is None:
        if zoo.num_examples != len(out.indices):
            raise ZoolensError(
                f"zoo {zoo.path}: has {zoo.num_examples} examples without ids; "
                f"{_data_name(data)} gives {len(out.indices)} for model {model!r}"
            )
        rows = np.arange(len(out.indices))
        target_positions = out.indices
    else:
        target_positions = data.positions(zoo.example_ids)
        # out.indices is strictly increasing (assemble checks it): look rows up by bisection
        indices = np.asarray(out.indices, dtype=np.int64)
        rows = np.searchsorted(indices, target_positions).astype(np.int64)
        found = rows < len(indices)
        found[found] = indices[rows[found]] == target_positions[found]
        if not found.all():
            missing = target_positions[~found]
            raise ZoolensError(
                f"model {model!r}: {len(missing)} example(s) of the zoo could not "
                f"be decoded, e.g. {data.example_ids[missing[0]]}"
            )
    labels = np.asarray(data.labels)[target_positions]
    zoo_labels = np.asarray(zoo.labels)
    if zoo_labels.ndim == 1 and not np.array_equal(labels, zoo_labels):
        bad = int(np.sum(labels != zoo_labels))
        raise ZoolensError(
            f"zoo {zoo.path}: labels differ from {_data_name(data)}'s at "
            f"{bad} of {len(labels)} examples (different order or class list?)"
        )
    return rows


def _open_zoo(zoo_path: Path, create: bool, data: Any, order_ids: Sequence[str] | None):
    """The zoo (None when it is still to be created) and the checked order ids."""
    zoo = None
    if (zoo_path / "zoo.json").exists():
        zoo = Zoo.open(zoo_path)
    elif not create:
        raise ZoolensError(f"{zoo_path}: no zoo there; pass --create to make one")
    if order_ids is None:
        return zoo, None
    ordered = np.asarray([str(x) for x in order_ids])
    have = set(map(str, data.example_ids))
    if len(ordered) != len(have) or set(ordered.tolist()) != have:
        extra = [x for x in ordered if x not in have][:1]
        raise ZoolensError(
            f"order file: must list each of the {len(have)} example ids of "
            f"{_data_name(data)} exactly once" + (f" ({extra[0]!r} is not in it)" if extra else "")
        )
    if zoo is not None:
        if zoo.example_ids is not None:
            if [str(x) for x in zoo.example_ids] != ordered.tolist():
                raise ZoolensError(
                    f"{zoo_path}: the zoo already has example ids, which fix its "
                    f"order; drop the ordering option"
                )
        elif len(ordered) != zoo.num_examples:
            raise ZoolensError(
                f"{zoo_path}: the zoo has {zoo.num_examples} examples, the order "
                f"names {len(ordered)}"
            )
        else:
            # A zoo imported without ids (e.g. third-party outputs in canonical order): the
            # order names the example behind each row; record it so later runs join on ids.
            labels = np.asarray(data.labels)[data.positions(ordered)]
            if zoo.labels.ndim == 1 and not np.array_equal(labels, zoo.labels):
                bad = int(np.sum(labels != zoo.labels))
                raise ZoolensError(
                    f"{zoo_path}: the order gives labels that differ from the "
                    f"zoo's at {bad} of {len(labels)} examples"
                )
            zoo.set_example_ids(ordered.tolist())
    return zoo, ordered


def _add_outputs(
    zoo: Any,
    zoo_path: Path,
    data: Any,
    out: CollectedOutputs,
    name: str,
    order_ids: np.ndarray | None,
    dataset_name: str,
    replace: bool,
) -> Any:
    """Add one model's assembled outputs (creating the zoo first when needed); returns the zoo."""
    card = dict(out.card)
    if out.skipped:
        note = skipped_note([data.example_ids[i] for i in sorted(out.skipped)])
        info(f"warning: {name}: {note}")
        card["notes"] = f"{card['notes']}; {note}" if card.get("notes") else note
    n_classes = zoo.num_classes if zoo is not None else len(data.classes)
    if out.logits.shape[1] != n_classes:
        raise ZoolensError(
            f"model {name!r}: gives {out.logits.shape[1]} classes, the "
            f"{'zoo' if zoo is not None else 'data set'} has {n_classes}; "
            f"use a model with a matching head"
        )
    if zoo is None:
        rows = out.indices
        if order_ids is not None:  # the decoded examples, in the order's order
            order_pos = data.positions(order_ids)
            rows = order_pos[np.isin(order_pos, out.indices)]
        ids = np.asarray(data.example_ids)[rows]
        labels = np.asarray(data.labels)[rows]
        zoo = Zoo.create(
            zoo_path,
            labels,
            class_names=list(data.classes),
            dataset_name=dataset_name,
            example_ids=list(ids),
        )
        root = getattr(data, "root", None)
        if root is not None and Path(root).is_dir():
            zoo.set_image_root(root)  # the ids are paths under it: the report shows the images
    rows = _rows_for_zoo(zoo, data, out, name)
    zoo.add(
        name,
        logits=out.logits[rows],
        embeddings=None if out.embeddings is None else out.embeddings[rows],
        card=card,
        replace=replace or name in zoo.models,
    )
    info(
        f"{name}: added to {zoo_path} ({len(rows)} examples, "
        f"{'with' if out.embeddings is not None else 'no'} embeddings)"
    )
    return zoo


def collect_model(
    model: Any,
    dataset: Any,
    zoo_path: str | Path,
    *,
    name: str,
    labels: Any = None,
    class_names: Sequence[str] | None = None,
    example_ids: Sequence[str] | None = None,
    card: dict[str, Any] | None = None,
    create: bool = False,
    options: RunOptions | None = None,
    replace: bool = False,
    dataset_name: str | None = None,
    order_ids: Sequence[str] | None = None,
) -> Any:
    """Run one model over any dataset and add its logits and embeddings to a zoo.

    ``model``: a LoadedModel, an ``nn.Module`` or a callable (see :func:`run_model`).
    ``dataset``: an ImageFolder (labels, ids and classes come from it; the model's own
    transform is applied when the folder has none) or any torch Dataset of tensors or
    ``(tensor, label)`` pairs, with ``labels`` given or found in ``dataset.targets`` /
    ``dataset.labels``. Shards go to ``work_dir_for(zoo_path)`` and are resumed after an
    interruption; the zoo is created with ``create``. Returns the Zoo.
    """
    options = options or RunOptions()
    zoo_path = Path(zoo_path)
    loaded = _as_loaded(model, name)
    data: ImageFolder | DataIndex
    if isinstance(dataset, ImageFolder):
        data = dataset
        if dataset.transform is None:
            dataset = dataset.with_transform(loaded.transform or build_preprocess(None, name))
        fp_data = data.fingerprint()
    else:
        if labels is None:
            labels = getattr(dataset, "targets", None)
            labels = getattr(dataset, "labels", None) if labels is None else labels
        if labels is None:
            raise ZoolensError(
                f"model {name!r}: give labels for the dataset (it has no "
                f"'targets' or 'labels' attribute)"
            )
        if len(labels) != len(dataset):
            raise ZoolensError(f"model {name!r}: {len(labels)} labels for {len(dataset)} examples")
        data = DataIndex(labels, example_ids, class_names, name=dataset_name or "dataset")
        # sha256, not hash(): the fingerprint must be the same in the next process
        fp_data = f"{len(dataset)}:" + short_hash(*data.example_ids.tolist(), length=16)
    zoo, order = _open_zoo(zoo_path, create, data, order_ids)
    if zoo is not None and name in zoo.models and not replace:
        raise ZoolensError(f"model {name!r} is already in {zoo_path} (replace=True recomputes it)")
    device = select_device(options.device)
    fp = {
        "name": name,
        "data": fp_data,
        "batch_size": options.batch_size,
        "amp": options.amp if options.amp is not None else device.type == "cuda",
    }
    store = ShardStore(
        work_dir_for(zoo_path),
        name,
        fp,
        len(dataset),
        options.effective_shard_size(),
        resume=options.resume,
    )
    the_card = {**getattr(loaded, "card", {}), **(card or {})}
    run_into_store(loaded, dataset, store, options, the_card, description=name)
    out = store.assemble()
    zoo = _add_outputs(
        zoo,
        zoo_path,
        data,
        out,
        name,
        order,
        str(dataset_name or getattr(getattr(data, "root", None), "name", "dataset")),
        replace,
    )
    store.remove()
    return zoo


def collect_entries(
    entries: Sequence[Any],
    folder: Any,
    zoo_path: str | Path,
    *,
    create: bool = False,
    pretrained: bool = True,
    options: RunOptions | None = None,
    order_ids: Sequence[str] | None = None,
    dataset_name: str | None = None,
    replace: bool = False,
    ray_address: str | None = None,
    use_ray: bool = False,
) -> Any:
    """Collect every model entry over an ImageFolder into the zoo at ``zoo_path``.

    The zoo is opened (or, with ``create``, created after the first model from the folder's
    labels, class names and example ids, in ``order_ids`` order when given; images that
    could not be decoded are left out). A zoo without example ids gets ``order_ids`` as its
    ids. Models already in the zoo are skipped unless ``replace``. Each model runs locally,
    or as Ray tasks when ``use_ray``; its shards live in ``work_dir_for(zoo_path)`` until the
    model is in the zoo. Returns the Zoo.
    """
    require_torch("collect")
    options = options or RunOptions()
    zoo_path = Path(zoo_path)
    zoo, order = _open_zoo(zoo_path, create, folder, order_ids)
    device = select_device(options.device)
    shard_size = options.effective_shard_size()
    work = work_dir_for(zoo_path)
    data_fp = folder.fingerprint()
    for entry in entries:
        if zoo is not None and entry.name in zoo.models and not replace:
            info(f"{entry.name}: already in the zoo, skipped (--replace recomputes it)")
            # shards left by a run killed between adding the model and cleaning up
            ShardStore.discard(work, entry.name)
            continue
        fp = _entry_fingerprint(entry, pretrained, data_fp, options, device.type)
        store = ShardStore(work, entry.name, fp, len(folder), shard_size, resume=options.resume)
        loaded = None
        timings: list[tuple[int, float]] = []  # forward passes of this run: latency for free
        with allocation_failures(f"model {entry.name!r}"):
            if store.missing_ranges():
                if use_ray:
                    run_into_store_ray(
                        entry, folder, store, options, pretrained=pretrained, address=ray_address
                    )
                else:
                    loaded = load_model(entry, pretrained=pretrained, class_names=folder.classes)
                    transform = loaded.transform or build_preprocess(None, entry.spec)
                    run_into_store(
                        loaded,
                        folder.with_transform(transform),
                        store,
                        options,
                        loaded.card,
                        description=entry.name,
                        timings=timings,
                    )
            out = store.assemble()
            out.card["collect"] = entry_record(entry, pretrained)
            if "cost" not in entry.card:  # a cost set by hand in the model list wins
                if loaded is None:  # resumed or run on Ray: build it here to measure it
                    loaded = load_model(entry, pretrained=pretrained, class_names=folder.classes)
                transform = loaded.transform or build_preprocess(None, entry.spec)
                out.card["collect"]["preprocessing"] = repr(transform)
                out.card["cost"] = measure_cost(
                    loaded,
                    folder.with_transform(transform),
                    device,
                    options.batch_size,
                    timings=timings,
                )
        zoo = _add_outputs(
            zoo, zoo_path, folder, out, entry.name, order, dataset_name or folder.root.name, replace
        )
        store.remove()
    if zoo is None:
        zoo = Zoo.open(zoo_path)
    return zoo
