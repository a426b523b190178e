"""``zoolens collect``: run a list of models over an image folder into a zoo."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from zoolens.cli._app import app, handle_errors
from zoolens.cli import options as opt
from zoolens.errors import require_torch


@app.command("collect")
@handle_errors
def collect(
    model_list: Annotated[
        str,
        typer.Argument(
            metavar="LIST",
            help="Model list (.toml/.yaml) or one spec such as "
            "timm:resnet18, torchvision:resnet18/IMAGENET1K_V1, "
            "open_clip:ViT-B-32/laion2b_s34b_b79k, "
            "torchscript:PATH, python:module:function (your own code: the list is yours, "
            "so collect runs python: specs without --trust-code).",
        ),
    ],
    data: Annotated[Path, typer.Option("--data", help="Image folder: DATA/<class name>/<image>.")],
    zoo: Annotated[Path, typer.Option("--zoo", help="The zoo to add the models to.")],
    create: opt.CreateZoo = False,
    classes: Annotated[
        Path | None,
        typer.Option(
            "--classes",
            help="Class list file (one name per line) fixing class order; "
            "default: the folder names sorted.",
        ),
    ] = None,
    batch_size: opt.BatchSize = 64,
    shard_size: Annotated[
        int | None,
        typer.Option(
            "--shard-size", min=1, help="Examples per resumable shard (default 16 batches)."
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers", min=0, help="DataLoader worker processes (default: min(4, CPUs - 1))."
        ),
    ] = None,
    device: opt.Device = "auto",
    amp: opt.Amp = None,
    threads: opt.TorchThreads = None,
    pretrained: Annotated[
        bool,
        typer.Option(
            "--pretrained/--no-pretrained",
            help="Load pretrained weights (default) or build random-init "
            "models; a list entry's 'pretrained' wins.",
        ),
    ] = True,
    ray: Annotated[
        bool,
        typer.Option(
            "--ray", help="Run (model x shard) jobs as Ray tasks (RAY_ADDRESS or a local cluster)."
        ),
    ] = False,
    ray_address: opt.RayAddress = None,
    strict: opt.StopAtBadImage = False,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume/--no-resume", help="Reuse finished shards of an interrupted run (default)."
        ),
    ] = True,
    replace: Annotated[
        bool, typer.Option("--replace", help="Recompute models already in the zoo.")
    ] = False,
    order_by_ids: Annotated[
        Path | None,
        typer.Option(
            "--order-by-ids",
            help="Text file of example ids (relative paths), one per "
            "line: the zoo's row order (a new zoo, or one "
            "imported without ids).",
        ),
    ] = None,
    order_by_labels: Annotated[
        Path | None,
        typer.Option(
            "--order-by-labels",
            help="Labels (.npy/.npz/.txt) of a canonical order: the "
            "k-th image of class c becomes the k-th example "
            "of class c (a new zoo, or one imported without "
            "ids).",
        ),
    ] = None,
    dataset_name: Annotated[
        str | None, typer.Option("--dataset-name", help="Data set name recorded in a new zoo.")
    ] = None,
) -> None:
    r"""Run models over an image folder and add their logits and embeddings to a zoo.

    Work is written in resumable shards beside the zoo (ZOO.collect/): after an interruption, run the same command again to continue.

    The model list is your own file, so python:module:function specs run here as written
    (import the module, call the function); an ensemble file someone sends you is different:
    `zoolens predict` runs such specs only with --trust-code.

    Example:  zoolens collect "python:zoolens.collect.cifar_resnet:pretrained" --data images/ --zoo myzoo --create

    Example:  zoolens collect models.toml --data images/ --zoo myzoo --create

    A model list (models.toml; YAML takes the same keys, models: a list of mappings):

    \[defaults]                      # optional, applies to every entry
    preprocess = { mean = [0.5, 0.5, 0.5], std = [0.5, 0.5, 0.5] }
    \[\[models]]
    spec = "torchscript:tiny-a.pt"   # or timm:NAME, torchvision:NAME/WEIGHTS,
    name = "tiny-a"                  #    open_clip:ARCH/TAG, python:module:function
    seed = 0                         # set before building: random init is reproducible
    kwargs = {}                      # passed to the builder (python: specs)
    \[models.card]                    # card fields: arch, framework, pretrain_data, ...
    arch = "tiny-cnn"
    framework = "supervised"

    A relative torchscript path is read from the list's folder. A working list with three
    tiny TorchScript models and 32 images: $(python -m zoolens.examples)/collect.
    """
    require_torch("zoolens collect")
    import os

    import numpy as np

    from zoolens.collect.images import ImageFolder, ids_in_label_order, read_order_file
    from zoolens.collect.runner import RunOptions, collect_entries
    from zoolens.collect.specs import read_model_list
    from zoolens.errors import ZoolensError

    entries = read_model_list(model_list)
    folder = ImageFolder(data, classes=classes)
    if order_by_ids is not None and order_by_labels is not None:
        raise ZoolensError("give --order-by-ids or --order-by-labels, not both")
    order = None
    if order_by_ids is not None:
        order = [str(x) for x in read_order_file(order_by_ids)]
    elif order_by_labels is not None:
        target = read_order_file(order_by_labels)
        try:
            target = np.asarray(target).astype(np.int64)
        except ValueError:
            raise ZoolensError(f"{order_by_labels}: labels must be integers") from None
        if target.ndim != 1:
            raise ZoolensError(f"{order_by_labels}: labels must be one-dimensional")
        order = list(ids_in_label_order(folder.example_ids, folder.labels, target))
    if workers is None:
        workers = max(0, min(4, (os.cpu_count() or 1) - 1))
    options = RunOptions(
        batch_size=batch_size,
        shard_size=shard_size,
        device=device,
        num_workers=workers,
        amp=amp,
        threads=threads,
        strict=strict,
        resume=resume,
    )
    use_ray = ray or ray_address is not None
    result = collect_entries(
        entries,
        folder,
        zoo,
        create=create,
        pretrained=pretrained,
        options=options,
        order_ids=order,
        dataset_name=dataset_name,
        replace=replace,
        ray_address=ray_address,
        use_ray=use_ray,
    )
    from zoolens.progress import info

    info(f"{result.path}: {len(result.models)} models, {result.num_examples} examples")
