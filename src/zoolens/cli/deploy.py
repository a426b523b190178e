"""``zoolens export`` and ``zoolens predict``: ship a chosen ensemble, run it on new images."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from zoolens.cli._app import app, handle_errors, refuse_inside_zoo
from zoolens.cli import options as opt
from zoolens.errors import require_torch

TRUST_CODE_HELP = (
    "Allow members that run code the ensemble file names: python:module:function specs "
    "(other than zoolens's own builders) and .pt2 programs (unpickled). Without it such a "
    "file is refused before anything is built. Give it only for a file whose author you "
    "trust as you would trust their Python code."
)


@app.command("export")
@handle_errors
def export(
    results: Annotated[Path, typer.Argument(help="Results folder of `zoolens analyze`.")],
    ensemble: Annotated[
        str,
        typer.Option(
            "--ensemble",
            help="greedy (the kept greedy ensemble), "
            "sidekick (the base with its best sidekick; under --budget the "
            "budgeted one) or model names A,B,… (a repeated name weighs "
            "more).",
        ),
    ],
    out: Annotated[
        Path | None,
        typer.Option("--out", help="The ensemble file to write (default: ensemble.json)."),
    ] = None,
    zoo: Annotated[
        Path | None,
        typer.Option("--zoo", help="The analysed zoo (default: the path in summary.json)."),
    ] = None,
    bundle: Annotated[
        Path | None,
        typer.Option(
            "--bundle",
            metavar="DIR",
            help="Write a portable folder instead: DIR/ensemble.json and every checkpoint it "
            "needs (DIR/files/), named by relative paths; copy DIR anywhere and run "
            "`zoolens predict DIR/ensemble.json IMAGES` there.",
        ),
    ] = None,
) -> None:
    """Write a chosen ensemble as a versioned, checked ensemble file.

    It holds each member's collect spec and checkpoint sha256, temperature and weight, the
    combine rule, class names, preprocessing, the accuracy measured on the evaluation split
    (with a bootstrap interval) and provenance. Run it with `zoolens predict`, or in Python
    with zoolens.load_ensemble(path). Only files under checkpoint kwargs (checkpoint,
    weights, …) and TorchScript files are recorded and shipped.

    Example:  zoolens export results/ --ensemble greedy --out ensemble.json

    Example (a folder to share):  zoolens export results/ --ensemble greedy --bundle shipped/
    """
    from zoolens.deploy.export import export_ensemble
    from zoolens.collect.specs import is_export_program
    from zoolens.deploy.schema import PT2_WHY, untrusted_code
    from zoolens.progress import info

    refuse_inside_zoo(out if bundle is None else bundle, "--out" if bundle is None else "--bundle")
    spec = export_ensemble(results, ensemble, out, zoo=zoo, bundle=bundle)
    if bundle is not None:
        out = bundle / "ensemble.json"
    elif out is None:
        out = Path("ensemble.json")
    acc = spec.accuracy
    assert acc is not None  # export_ensemble measures every ensemble it writes
    members = ", ".join(f"{m.name}x{m.weight}" if m.weight > 1 else m.name for m in spec.members)
    print(
        f"{spec.kind} ensemble of {members}: accuracy {acc.value:.4f}"
        + (f" [{acc.lo:.4f}, {acc.hi:.4f}]" if acc.lo is not None else "")
        + f" on {acc.n} evaluation examples; written to {out}"
    )
    for member in spec.members:
        why = untrusted_code(member)
        prefix, _, target = str(member.collect.get("spec", "")).partition(":")
        if prefix == "torchscript" and is_export_program(Path(out).parent / target):
            why = PT2_WHY
        if why is not None:
            info(
                f"note: member {member.name!r} {why}: `zoolens predict` runs it only "
                f"with --trust-code"
            )


@app.command("predict")
@handle_errors
def predict(
    ensemble: Annotated[
        Path, typer.Argument(help="Ensemble file (`zoolens export`, `zoolens soup --export`).")
    ],
    images: Annotated[
        Path,
        typer.Argument(
            help="Image folder: IMAGES/<class>/<image> (labels "
            "known: accuracy reported) or IMAGES/<image>."
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            help="Predictions CSV: image, label (when known), top1_class, top1_index, top1_prob, …",
        ),
    ] = Path("predictions.csv"),
    top_k: Annotated[int, typer.Option("--top-k", min=1, help="Classes per image in the CSV.")] = 1,
    zoo: Annotated[
        Path | None,
        typer.Option(
            "--zoo",
            help="Also add every member's logits and "
            "embeddings to this zoo (IMAGES/<class>/<image> with the "
            "ensemble's classes).",
        ),
    ] = None,
    create: opt.CreateZoo = False,
    batch_size: opt.BatchSize = 64,
    workers: Annotated[
        int, typer.Option("--workers", min=0, help="DataLoader worker processes.")
    ] = 0,
    device: opt.Device = "auto",
    amp: opt.Amp = None,
    threads: opt.TorchThreads = None,
    ray: Annotated[
        bool, typer.Option("--ray", help="Run members as Ray tasks (as collect).")
    ] = False,
    ray_address: opt.RayAddress = None,
    strict: opt.StopAtBadImage = False,
    trust_code: Annotated[bool, typer.Option("--trust-code", help=TRUST_CODE_HELP)] = False,
) -> None:
    """Run an exported ensemble on images and write per-image top-k classes and probabilities.

    Members are rebuilt by the collect adapters (checkpoints checked against their sha256),
    run with the same preprocessing and batching as `zoolens collect`, calibrated with their
    temperatures and combined by the ensemble's rule. An ensemble file is data: relative
    paths resolve against its folder (never the working directory), a checkpoint a member
    loads must be listed with its sha256, and members that run code the file names
    (python: specs, .pt2) are refused unless you give --trust-code.

    Example:  zoolens predict ensemble.json new_images/ --out predictions.csv --top-k 3

    Example (a file whose author you trust, with its own Python builder):
    zoolens predict theirs.json new_images/ --trust-code
    """
    require_torch("zoolens predict")
    from zoolens.collect.runner import RunOptions
    from zoolens.deploy.predict import add_to_zoo, predict_images, write_predictions
    from zoolens.errors import ZoolensError
    from zoolens.progress import info

    if out.is_dir():
        raise ZoolensError(
            f"--out {out}: is a folder; give a file name such as {out / 'predictions.csv'}"
        )
    if not out.parent.is_dir():
        raise ZoolensError(f"--out {out}: folder {out.parent} does not exist")
    refuse_inside_zoo(out)
    options = RunOptions(
        batch_size=batch_size,
        device=device,
        num_workers=workers,
        amp=amp,
        threads=threads,
        strict=strict,
        resume=False,
    )
    result = predict_images(
        ensemble,
        images,
        options=options,
        use_ray=ray or ray_address is not None,
        ray_address=ray_address,
        trust_code=trust_code,
    )
    if zoo is not None:
        add_to_zoo(result, images, zoo, create=create)
    write_predictions(result, out, top_k)
    if result.skipped:
        from zoolens.collect.images import skipped_note

        info(f"warning: {skipped_note(list(result.skipped))}")
    accuracy = result.accuracy
    print(
        f"{len(result.ids)} images predicted by the {result.ensemble.kind} ensemble "
        f"({len(result.ensemble.members)} members)"
        + (f"; accuracy {accuracy:.4f}" if accuracy is not None else "")
        + f"; written to {out}"
    )
