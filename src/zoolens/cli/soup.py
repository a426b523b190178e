"""``zoolens soup``: uniform or greedy weight soups of same-architecture checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from zoolens.cli._app import app, handle_errors
from zoolens.errors import require_torch


@app.command("soup")
@handle_errors
def soup(
    checkpoints: Annotated[
        list[Path],
        typer.Argument(
            help="State dicts of fine-tuned models "
            "(torch .pt/.pth or .safetensors), same "
            "architecture and same pre-trained init."
        ),
    ],
    model: Annotated[
        str,
        typer.Option(
            "--model",
            help="python:package.module:function returning "
            "the network (or (network, transform, card)).",
        ),
    ],
    data: Annotated[
        Path,
        typer.Option(
            "--data",
            help="Held-out data to score ingredients: an "
            ".npz with x (model input) and y (class ids), or an image "
            "folder root/<class>/<image> (classes in sorted order; one "
            "image size unless the --model function returns a resizing "
            "transform).",
        ),
    ],
    greedy: Annotated[
        bool,
        typer.Option(
            "--greedy",
            help="Write the greedy soup (Wortsman et al. 2022, Recipe 1) instead of the uniform soup.",
        ),
    ] = False,
    out: Annotated[
        Path,
        typer.Option("--out", help="Where to write the soup's state dict (.pt, or .safetensors)."),
    ] = Path("soup.pt"),
    test: Annotated[
        Path | None,
        typer.Option(
            "--test",
            help="Optional test data (same formats as --data), scored but never used to choose.",
        ),
    ] = None,
    table: Annotated[
        Path | None,
        typer.Option("--table", help="Also write the comparison as soup.csv into this folder."),
    ] = None,
    export: Annotated[
        Path | None,
        typer.Option(
            "--export",
            help="Also write the soup as an ensemble "
            "file (as `zoolens export`): run it with `zoolens predict` or "
            "zoolens.load_ensemble.",
        ),
    ] = None,
) -> None:
    """Average the weights of fine-tuned checkpoints into a model soup.

    Floating tensors are averaged in float64 (and cast back); integer buffers such as
    BatchNorm counters are copied from the first checkpoint; mismatched keys or shapes are
    refused. Prints held-out (and test) accuracy of each ingredient, the best one, the
    uniform soup, the greedy soup and the logit ensemble.

    Example:  zoolens soup zoolens-demo/soup/finetune-*.pt --model
    python:zoolens.demo.models:soup_cnn --data zoolens-demo/soup/heldout.npz --greedy

    Example (shipped like an ensemble):  zoolens soup ft-*.pt --model python:mypkg.nets:make_net
    --data heldout/ --out soup.pt --export soup.json
    """
    require_torch("zoolens soup")
    from zoolens.errors import ZoolensError
    from zoolens.progress import info, progress_bar
    from zoolens.study.soup import (
        format_soup_table,
        load_heldout,
        load_state_dict,
        load_network,
        run_soups,
        save_state_dict,
        write_soup_table,
    )

    if out.exists() and out.is_dir():
        raise ZoolensError(f"--out {out}: is a folder; give a file name such as {out / 'soup.pt'}")
    if export is not None and (export.is_dir() or not export.parent.is_dir()):
        raise ZoolensError(
            f"--export {export}: give a file name in an existing folder, such as soup.json"
        )
    network, transform = load_network(model)
    state_dicts = [load_state_dict(p) for p in checkpoints]
    names = [
        p.name if [q.name for q in checkpoints].count(p.name) == 1 else str(p) for p in checkpoints
    ]
    heldout = load_heldout(data, transform)
    test_data = load_heldout(test, transform) if test is not None else None
    total = 3 * len(state_dicts) + 2
    with progress_bar(total, "soup: scoring", "evals") as advance:
        result = run_soups(network, state_dicts, names, heldout, test_data, progress=advance)
    chosen = result.greedy.state_dict if greedy else result.uniform
    save_state_dict(chosen, out)
    if export is not None:
        _export_soup(model, out, export, chosen, network, data, heldout, test_data, result, greedy)
    if table is not None:
        table.mkdir(parents=True, exist_ok=True)
        write_soup_table(result.table, table)
    print(format_soup_table(result.table))
    kind = "greedy" if greedy else "uniform"
    info(
        f"wrote the {kind} soup of "
        f"{len(result.greedy.members) if greedy else len(state_dicts)} ingredient(s) to {out}"
    )


def _export_soup(
    model: str,
    soup_file: Path,
    export: Path,
    chosen,
    network,
    data: Path,
    heldout,
    test_data,
    result,
    greedy: bool,
) -> None:
    """The soup as an ensemble file: one member, the network with the soup's weights; the
    accuracy on --test when given (held-out data chose the soup), else on --data."""
    from zoolens.deploy.export import export_soup
    from zoolens.progress import info
    from zoolens.study.soup import logits_of

    x, _ = heldout
    if data.is_dir():
        from zoolens.collect.images import ImageFolder

        class_names = list(ImageFolder(data).classes)
    else:
        num_classes = logits_of(network, chosen, x[:1]).shape[1]
        class_names = [str(c) for c in range(num_classes)]
    row = result.table[result.table.method == ("greedy_soup" if greedy else "uniform_soup")]
    on_test = test_data is not None
    accuracy = float(row[("test_acc" if on_test else "heldout_acc")].iloc[0])
    n = len((test_data if on_test else heldout)[1])
    export_soup(
        model,
        soup_file,
        export,
        class_names=class_names,
        input_shape=[int(s) for s in x.shape[1:]],
        accuracy=accuracy,
        n=n,
        what="test" if on_test else "heldout",
    )
    info(f"wrote the soup's ensemble file to {export}")
