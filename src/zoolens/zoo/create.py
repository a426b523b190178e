"""Importing a model file into a zoo, creating the zoo from a labels file and this first
model file when asked (``zoolens import --create``), all or nothing: when any step fails
(the labels, the ids, the model file, the sanity check with ``strict``) a zoo created here
is removed again -- the folder too when it did not exist before -- so a script gets what the
CLI gives: a whole zoo with its first model, or no zoo.

    from zoolens.zoo.create import NewZoo, import_model

    zoo, read_as = import_model("my.zoo", "resnet.npz", "resnet", key="logits",
                                create=NewZoo(labels="labels.npy"))
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zoolens.errors import ZoolensError
from zoolens.progress import info
from zoolens.zoo.classes import ClassIndex, read_class_names
from zoolens.zoo.classmap import model_class_index, read_class_map
from zoolens.zoo.idjoin import match_ids, strip_id_prefix
from zoolens.zoo.importers import (
    TABLE_SUFFIXES,
    column_ref,
    import_file,
    label_names,
    labels_for_create,
    load_outputs,
    read_ids,
    read_labels,
)
from zoolens.zoo.store import (
    ATTRIBUTES_FILE,
    IDS_FILE,
    LABELS_FILE,
    LOCK_FILE,
    MANIFEST,
    MODELS_DIR,
    Zoo,
)


@dataclass(frozen=True)
class NewZoo:
    """How to create the zoo (``import --create``): its labels from ``labels`` (a file;
    ``labels_key`` / ``labels_column`` / ``labels_id_column`` as ``labels_for_create``) or
    from the model file's ``label_column``, or none (``no_labels``, with ``num_classes`` or
    ``class_names``); the class names (``--class-names``: a comma list or a file; default
    with name labels: their sorted set) and the calibration split."""

    labels: str | Path | None = None
    labels_key: str | None = None
    labels_column: str | int | None = None
    labels_id_column: str | int | None = None
    no_labels: bool = False
    class_names: str | None = None
    num_classes: int | None = None
    dataset_name: str = "dataset"
    calibration_fraction: float = 0.2
    split_seed: int = 0


def import_model(
    zoo: str | Path,
    file: str | Path,
    name: str,
    *,
    create: NewZoo | None = None,
    class_map: str | Path | None = None,
    class_map_agg: str = "mean",
    model_classes: str | None = None,
    image_root: str | Path | None = None,
    **options: Any,
) -> tuple[Zoo, str]:
    """Import ``file`` into the zoo at ``zoo`` as model ``name``; ``options`` are the
    keyword arguments of ``importers.import_file`` (kind, key, columns, label_column,
    id_column, header, card, strict ...), with ``label_column`` as given on the command line
    (``column_ref``). Creates the zoo first when ``create`` is given. Returns the open zoo and the kind the file was read
    as. ``class_map`` + ``model_classes`` (a count M or the model's class names): the file
    scores the model's own classes, mapped into the zoo's (``zoo.classmap``);
    ``image_root``: the folder of the example images, recorded in the zoo.

    All or nothing: when anything fails, a zoo created by this call is removed (the folder
    too when it did not exist before) and the error is raised."""
    zoo, file = Path(zoo), Path(file)
    if image_root is not None and not Path(image_root).is_dir():
        raise ZoolensError(f"--image-root {image_root}: not a folder")
    if (class_map is None) != (model_classes is None):
        raise ZoolensError("--class-map and --model-classes go together (the map needs M)")
    model_count, model_index = (
        model_class_index(model_classes) if model_classes is not None else (None, None)
    )
    folder_existed = zoo.exists()
    made_zoo = False
    try:
        if create is not None:
            _create(
                zoo,
                file,
                create,
                model_count=model_count,
                model_index=model_index,
                class_mapped=class_map is not None,
                **options,
            )
            made_zoo = True
        target = Zoo.open(zoo)
        mapping = (
            read_class_map(
                class_map,
                target.class_index(),
                int(model_count or 0),
                model_classes=model_index,
                agg=class_map_agg,
            )
            if class_map is not None
            else None
        )
        read_as = import_file(
            target,
            file,
            name,
            **{**options, "label_column": column_ref(options.get("label_column"))},
            class_map=mapping,
        )
        if image_root is not None:
            target.set_image_root(Path(image_root))
    except BaseException:
        if made_zoo:  # a failed create-and-import leaves no half-made zoo behind
            remove_new_zoo(zoo, folder_existed)
        raise
    return target, read_as


def _create(
    zoo: Path,
    file: Path,
    new: NewZoo,
    *,
    model_count: int | None,
    model_index: ClassIndex | None,
    class_mapped: bool,
    label_column: str | int | None = None,
    label_offset: int = 0,
    id_column: str | int | None = None,
    header: bool | None = None,
    id_prefix: str | None = None,
    id_pattern: str | None = None,
    kind: str | None = None,
    key: str | None = None,
    columns: str | slice | None = None,
    topk_layout: str = "blocks",
    abstain: Sequence[str] = (),
    **_: Any,
) -> None:
    """Create the zoo at ``zoo`` from the labels (``new``) and the first model file."""
    if (zoo / MANIFEST).exists():
        raise ZoolensError(f"{zoo}: --create given but a zoo already exists here")
    if new.no_labels and (new.labels is not None or label_column is not None):
        raise ZoolensError("--no-labels cannot be combined with --labels or --label-column")
    if new.labels is None and label_column is None and not new.no_labels:
        raise ZoolensError(
            "--create needs --labels FILE or --label-column C (or --no-labels "
            "with --num-classes K for an unlabelled set)"
        )
    names, aliases = (
        read_class_names(new.class_names) if new.class_names is not None else (None, {})
    )
    if names is None and not new.no_labels:  # labels given as class names: sorted
        names = (
            label_names(new.labels, key=new.labels_key, column=new.labels_column, header=header)
            if new.labels is not None
            else _table_label_names(file, label_column, header)
        )
    classes = ClassIndex(names, aliases) if names is not None else None
    n_rows = None
    y: np.ndarray | None
    if new.no_labels:
        y = None
        n_rows, ids = _unlabelled_rows(
            file,
            num_classes=(
                model_count
                if model_count is not None
                else len(names)
                if names is not None
                else new.num_classes
            ),
            classes=model_index if class_mapped else classes,
            id_column=id_column,
            header=header,
            id_prefix=id_prefix,
            id_pattern=id_pattern,
            kind=kind,
            key=key,
            columns=columns,
            topk_layout=topk_layout,
            abstain=abstain,
        )
    elif new.labels is not None:
        y, ids = labels_for_create(
            new.labels,
            file,
            key=new.labels_key,
            column=new.labels_column,
            labels_id_column=new.labels_id_column,
            id_column=id_column,
            header=header,
            offset=label_offset,
            classes=classes,
            id_prefix=id_prefix,
            id_pattern=id_pattern,
        )
    else:  # label_column: not None without labels (checked above)
        y, ids = _labels_from_table(file, label_column, label_offset, id_column, header, classes)
    Zoo.create(
        zoo,
        y,
        class_names=names,
        class_aliases=aliases,
        num_classes=new.num_classes,
        dataset_name=new.dataset_name,
        calibration_fraction=new.calibration_fraction,
        seed=new.split_seed,
        example_ids=ids,
        num_examples=n_rows,
    )
    created = Zoo.open(zoo)
    info(
        f"created zoo {zoo} ({created.num_examples} examples"
        + (")" if y is not None else ", no labels)")
    )


def remove_new_zoo(zoo: Path, folder_existed: bool) -> None:
    """Remove a zoo created in ``zoo`` (only the zoo's own files when the folder existed)."""
    if not folder_existed:
        shutil.rmtree(zoo, ignore_errors=True)
        return
    for rel in (MANIFEST, LABELS_FILE, IDS_FILE, ATTRIBUTES_FILE, LOCK_FILE):
        (zoo / rel).unlink(missing_ok=True)
    shutil.rmtree(zoo / MODELS_DIR, ignore_errors=True)


def _labels_from_table(
    file: Path,
    label_column: Any,
    offset: int,
    id_column: str | int | None,
    header: bool | None,
    classes: ClassIndex | None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """--create --label-column C: the labels (and ids) from the model file itself."""
    table = file.suffix.lower() in TABLE_SUFFIXES
    if not table and file.suffix.lower() == ".npy":
        raise ZoolensError(
            f"{file}: a .npy file holds a single array, so it cannot carry "
            "--label-column; give --labels FILE"
        )
    y = (
        read_labels(
            file, column=column_ref(label_column), header=header, offset=offset, classes=classes
        )
        if table
        else read_labels(file, key=str(label_column), offset=offset, classes=classes)
    )
    if y.ndim != 1:
        raise ZoolensError(f"{file}: the label array {str(label_column)!r} must be 1-D")
    ids = read_ids(file, id_column, header=header) if id_column is not None else None
    return y, ids


def _unlabelled_rows(
    file: Path,
    *,
    num_classes: int | None,
    classes: ClassIndex | None,
    id_prefix: str | None,
    id_pattern: str | None,
    **load: Any,
) -> tuple[int, np.ndarray | None]:
    """--create --no-labels: the new zoo's number of examples and its ids (None without
    --id-column or a JSON file keyed by id), read from the first model file."""
    if num_classes is None:
        raise ZoolensError("--no-labels needs the classes: give --num-classes K or --class-names")
    loaded = load_outputs(file, num_classes=int(num_classes), classes=classes, **load)
    ids = loaded.ids
    if ids is not None and id_prefix:
        ids = strip_id_prefix(ids, id_prefix, file)
    if ids is not None and id_pattern:
        ids = match_ids(ids, id_pattern, file)
    return loaded.rows, ids


def _table_label_names(file: Path, label_column: Any, header: bool | None) -> list[str] | None:
    if file.suffix.lower() in TABLE_SUFFIXES:
        return label_names(file, column=column_ref(label_column), header=header)
    if file.suffix.lower() == ".npy":
        return None
    return label_names(file, key=str(label_column))
