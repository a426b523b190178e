"""``zoolens soup``: uniform or greedy weight soups of same-architecture checkpoints."""

from __future__ import annotations

from pathlib import Path

import typer

from zoolens.cli._app import app, handle_errors


@app.command("soup")
@handle_errors
def soup(
    checkpoints: list[Path] = typer.Argument(..., help="State dicts of fine-tuned models "
                                             "(torch .pt/.pth or .safetensors), same "
                                             "architecture and same pre-trained init."),
    model: str = typer.Option(..., "--model", help="python:package.module:function returning "
                              "the network (or (network, transform, card))."),
    data: Path = typer.Option(..., "--data", help="Held-out data to score ingredients: an "
                              ".npz with x (model input) and y (class ids), or an image "
                              "folder root/<class>/<image> (classes in sorted order; one "
                              "image size unless the --model function returns a resizing "
                              "transform)."),
    greedy: bool = typer.Option(False, "--greedy", help="Write the greedy soup (Wortsman et "
                                "al. 2022, Recipe 1) instead of the uniform soup."),
    out: Path = typer.Option(Path("soup.pt"), "--out", help="Where to write the soup's state "
                             "dict (.pt, or .safetensors)."),
    test: Path = typer.Option(None, "--test", help="Optional test data (same formats as "
                              "--data), scored but never used to choose."),
    table: Path = typer.Option(None, "--table", help="Also write the comparison as soup.csv "
                               "into this folder."),
) -> None:
    """Average the weights of fine-tuned checkpoints into a model soup.

    Floating tensors are averaged in float64 (and cast back); integer buffers such as
    BatchNorm counters are copied from the first checkpoint; mismatched keys or shapes are
    refused. Prints held-out (and test) accuracy of each ingredient, the best one, the
    uniform soup, the greedy soup and the logit ensemble.

    Example:  zoolens soup zoolens-demo/soup/finetune-*.pt --model
    python:zoolens.demo.models:soup_cnn --data zoolens-demo/soup/heldout.npz --greedy
    """
    from zoolens.errors import ZoolensError
    from zoolens.progress import info, progress_bar
    from zoolens.study.soup import (format_soup_table, load_heldout, load_state_dict,
                                    load_network, run_soups, save_state_dict,
                                    write_soup_table)

    if out.exists() and out.is_dir():
        raise ZoolensError(f"--out {out}: is a folder; give a file name such as {out / 'soup.pt'}")
    network, transform = load_network(model)
    state_dicts = [load_state_dict(p) for p in checkpoints]
    names = [p.name if [q.name for q in checkpoints].count(p.name) == 1 else str(p)
             for p in checkpoints]
    heldout = load_heldout(data, transform)
    test_data = load_heldout(test, transform) if test is not None else None
    total = 3 * len(state_dicts) + 2
    with progress_bar(total, "soup: scoring", "evals") as advance:
        result = run_soups(network, state_dicts, names, heldout, test_data, progress=advance)
    chosen = result.greedy.state_dict if greedy else result.uniform
    save_state_dict(chosen, out)
    if table is not None:
        table.mkdir(parents=True, exist_ok=True)
        write_soup_table(result.table, table)
    print(format_soup_table(result.table))
    kind = "greedy" if greedy else "uniform"
    info(f"wrote the {kind} soup of "
         f"{len(result.greedy.members) if greedy else len(state_dicts)} ingredient(s) to {out}")
