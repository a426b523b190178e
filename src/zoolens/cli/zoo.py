"""Zoo commands: ``zoolens import``, ``zoolens info``, ``zoolens remove``, ``zoolens verify``."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import Annotated, Any, Optional, overload

import typer

from zoolens.cli._app import app, handle_errors
from zoolens.cli import options as opt
from zoolens.errors import ZoolensError
from zoolens.progress import terminal_text


def _print_warnings(caught: list[warnings.WarningMessage]) -> None:
    for w in caught:
        print(f"warning: {terminal_text(' '.join(str(w.message).split()))}", file=sys.stderr)


def _parse_hparams(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ZoolensError(f"--hparam {item!r}: expected KEY=VALUE")
        key, value = item.split("=", 1)
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


def _read_card_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ZoolensError(f"{path}: card file not found") from None
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as exc:
        raise ZoolensError(
            f"{path}: unreadable card ({' '.join(str(exc).split())[:200]})"
        ) from None
    if not isinstance(data, dict):
        raise ZoolensError(f"{path}: a card file must hold a mapping of card fields")
    return data


@overload
def _column(value: str) -> str | int: ...
@overload
def _column(value: None) -> None: ...
def _column(value: str | None) -> str | int | None:
    from zoolens.zoo.importers import column_ref

    return column_ref(value)


@app.command("import")
@handle_errors
def import_(
    zoo: Annotated[Path, typer.Argument(help="Zoo folder (created with --create).")],
    file: Annotated[
        Path,
        typer.Argument(
            help="Outputs file: .npy .npz .safetensors .pt .json (a list of class ids or of score "
            "rows, or an object from example id to either) .csv .tsv"
        ),
    ],
    name: Annotated[str, typer.Option("--name", "-n", help="Model name in the zoo (free text).")],
    kind: Annotated[
        Optional[str],
        typer.Option(
            "--kind",
            "-k",
            help="logits | probs | log_probs | counts | decisions | topk (detected when omitted).",
        ),
    ] = None,
    key: Annotated[
        Optional[str],
        typer.Option("--key", help="Array in an npz/safetensors/pt file (top-k: INDICES,VALUES)."),
    ] = None,
    columns: Annotated[
        Optional[str],
        typer.Option("--columns", help="Columns A:B of a table, 0-based, B excluded (e.g. 11:21)."),
    ] = None,
    label_column: Annotated[
        Optional[str],
        typer.Option(
            "--label-column",
            help="Each row's label: a CSV column, or the key of a 1-D array in an "
            "npz/safetensors/pt file; checked against the zoo's (or, with --create and no "
            "--labels, used as the labels).",
        ),
    ] = None,
    label_offset: Annotated[
        int,
        typer.Option(
            "--label-offset", help="Subtracted from labels read from files (1 for 1-based)."
        ),
    ] = 0,
    id_column: Annotated[
        Optional[str],
        typer.Option(
            "--id-column",
            help="Each row's example id: a CSV column, or the key of a 1-D id array in an "
            "npz (strings or integers), safetensors (integers only) or pt/pth (tensor, or "
            "list of str/int) file. Rows are joined to the zoo's ids and reordered; a "
            "missing, extra or repeated id is an error. Integer ids match zoo ids as "
            'integers (17 = "00017"). With --create they become the zoo\'s ids. Not for '
            ".npy.",
        ),
    ] = None,
    header: Annotated[
        Optional[bool],
        typer.Option("--header/--no-header", help="CSV header row (default: detected)."),
    ] = None,
    topk_layout: Annotated[
        str,
        typer.Option(
            "--topk-layout",
            help="Top-k tables without telling header names: 'blocks' (k ids then k probs) or "
            "'pairs' (id, prob, id, prob ...).",
        ),
    ] = "blocks",
    replace: Annotated[
        bool, typer.Option("--replace", help="Replace a model of the same name.")
    ] = False,
    float16: Annotated[bool, typer.Option("--float16", help="Store scores as float16.")] = False,
    embeddings: Annotated[
        Optional[Path],
        typer.Option(
            "--embeddings", help="Optional (N, D) embeddings file (npy/npz/safetensors/pt)."
        ),
    ] = None,
    embeddings_key: Annotated[Optional[str], typer.Option("--embeddings-key")] = None,
    card_file: Annotated[
        Optional[Path],
        typer.Option("--card", help="Model card as JSON or YAML (options below override it)."),
    ] = None,
    arch: Annotated[Optional[str], typer.Option("--arch")] = None,
    arch_family: Annotated[Optional[str], typer.Option("--arch-family")] = None,
    framework: Annotated[
        Optional[str],
        typer.Option(
            "--framework", help="supervised, contrastive, distilled, zero-shot, human ..."
        ),
    ] = None,
    pretrain_data: Annotated[Optional[str], typer.Option("--pretrain-data")] = None,
    head: Annotated[Optional[str], typer.Option("--head")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed")] = None,
    source: Annotated[
        Optional[str], typer.Option("--source", help="Default: the file path.")
    ] = None,
    category: Annotated[
        Optional[str], typer.Option("--category", help="Explicit category override.")
    ] = None,
    notes: Annotated[Optional[str], typer.Option("--notes")] = None,
    hparam: Annotated[
        list[str] | None, typer.Option("--hparam", help="KEY=VALUE (repeatable).")
    ] = None,
    cost: Annotated[
        Optional[str],
        typer.Option(
            "--cost",
            help="Inference cost per example, e.g. gmacs=4.1,params=25.6e6,"
            "latency_ms=3.2 (units: params, mparams, macs, mmacs, gmacs, flops, mflops, gflops, "
            "latency_ms); used by `zoolens analyze --budget`.",
        ),
    ] = None,
    create: Annotated[bool, typer.Option("--create", help="Create the zoo first.")] = False,
    no_labels: Annotated[
        bool,
        typer.Option(
            "--no-labels",
            help="With --create: an unlabelled zoo (deployment images, a benchmark before "
            "annotation; needs --num-classes K or --class-names). Agreement, CKA and "
            "`analyze --shift NAME=ZOO`'s label-free accuracy estimates work on it; measures "
            "that need labels refuse it in one line.",
        ),
    ] = False,
    labels: Annotated[
        Optional[Path],
        typer.Option("--labels", help="With --create: labels file (npy, npz, pt, CSV)."),
    ] = None,
    labels_key: Annotated[
        Optional[str], typer.Option("--labels-key", help="Array holding the labels in --labels.")
    ] = None,
    labels_column: Annotated[
        Optional[str],
        typer.Option("--labels-column", help="CSV column holding the labels in --labels."),
    ] = None,
    labels_id_column: Annotated[
        Optional[str],
        typer.Option(
            "--labels-id-column",
            help="With --create: the example-id column (CSV) or array (npz/pt/safetensors) of "
            "--labels. The zoo is keyed by these ids and every file with ids is joined by "
            "them, never by row position. A --id-column whose name the labels file also "
            "has does the same.",
        ),
    ] = None,
    id_prefix: Annotated[
        Optional[str],
        typer.Option(
            "--id-prefix",
            help="Text every id in the file starts with and the zoo's ids "
            "lack (a subject prefix such as 's01_'); removed before the rows are joined.",
        ),
    ] = None,
    id_pattern: Annotated[
        Optional[str],
        typer.Option(
            "--id-pattern",
            help="A regular expression whose first group is the example id, for ids that differ "
            "between files by a per-row prefix or suffix (a trial number or subject code before "
            "the image name), e.g. '^s\\d+_t\\d+_(.+)$'; applied to the model file's ids "
            "and, with --create, to the labels file's.",
        ),
    ] = None,
    class_map: Annotated[
        Optional[Path],
        typer.Option(
            "--class-map",
            help="MAP.json: each zoo class (name) -> the list of the model's classes in its "
            "group (ids, or names/wnids with --model-classes), for a model whose classes are a "
            "superset or a refinement of the zoo's (1,000 ImageNet classes scored in 16 "
            "categories, or 200 of them). Probabilities are aggregated per group (logits through "
            "their softmax), top-k lists by the first entry in a group, decisions by lookup "
            "(outside every group: wrong, and counted).",
        ),
    ] = None,
    class_map_agg: Annotated[
        str,
        typer.Option(
            "--class-map-agg",
            help="How a group's probabilities combine: mean (model-vs-human's rule), sum or max.",
        ),
    ] = "mean",
    model_classes: Annotated[
        Optional[str],
        typer.Option(
            "--model-classes",
            help="With --class-map: the model's classes, a count M (e.g. 1000) or their names "
            "(as --class-names: a comma list or a file, ImageNet's 'wnid name' lines keeping the "
            "wnids as aliases).",
        ),
    ] = None,
    abstain: Annotated[
        list[str] | None,
        typer.Option(
            "--abstain",
            help='A decision value meaning "no answer" (repeatable), besides '
            "na, NA, n/a, empty cells and JSON null; stored as an abstention, which counts as wrong "
            "in accuracy and in every agreement measure.",
        ),
    ] = None,
    strict: Annotated[
        bool,
        typer.Option(
            "--strict",
            help="Make the after-import sanity warning (accuracy or agreement "
            "with the other models at chance level by a one-sided binomial test; or a model "
            "right on every example, or far more often than every other model, which may be "
            "the labels) an error; the zoo is left unchanged.",
        ),
    ] = False,
    class_names: Annotated[
        Optional[str],
        typer.Option(
            "--class-names",
            help="With --create: comma-separated names, or a file: one name per line, "
            "'wnid,name' or 'wnid name' lines (ImageNet; the wnid becomes an alias), a JSON "
            # "\\[" keeps rich's markup (rich_markup_mode) from reading [wnid, name] as a style
            'list, or a JSON object {"0": \\[wnid, name], ...}. Labels and decisions may '
            "then be class names (default with name labels: their sorted set).",
        ),
    ] = None,
    num_classes: Annotated[
        Optional[int], typer.Option("--num-classes", help="With --create (default: max label + 1).")
    ] = None,
    dataset_name: Annotated[str, typer.Option("--dataset-name")] = "dataset",
    calibration_fraction: Annotated[float, typer.Option("--calibration-fraction")] = 0.2,
    split_seed: Annotated[int, typer.Option("--split-seed")] = 0,
    image_root: Annotated[
        Optional[Path],
        typer.Option(
            "--image-root",
            help="Folder of the example images, when the zoo's example ids "
            "are paths under it (e.g. cat/0001.jpg): the report's drill-down then shows them.",
        ),
    ] = None,
) -> None:
    """Import one model's outputs from a file into a zoo (optionally creating the zoo).

    Example: zoolens import cifar.zoo densenet.csv --name densenet --kind probs
    --columns 11:21 --create --labels densenet.csv --labels-column 0 --arch densenet-bc

    Example (rows from a shuffled loader, np.savez("vit.npz", logits=L, ids=I)):
    zoolens import cifar.zoo vit.npz --name vit --kind logits --id-column ids

    Example (an unlabelled set, e.g. a shifted set for analyze --shift's estimates):
    zoolens import v6.zoo resnet.json --name resnet --kind decisions --create --no-labels
    --num-classes 10

    Example (1,000-class probabilities scored in 16 categories, model-vs-human's rule):
    zoolens import mvh.zoo resnet50.npy --name resnet50 --kind probs --class-map 16.json
    --model-classes 1000

    Example (top-1 CSV keyed by file name, labels keyed the same way):
    zoolens import in1k.zoo top1.csv --name vit --id-column file --create --labels val.csv
    --labels-column label --class-names synsets.txt

    After every import a model at chance level (accuracy, or agreement with the zoo's other
    models, by a one-sided binomial test at the 5 % level) gives a one-line warning naming
    the likely causes, and so does a model right on every example or with a tenth of the
    errors of every other model (the file may contain the labels); --strict makes it an
    error.
    """
    from zoolens.progress import info
    from zoolens.zoo.create import NewZoo, import_model

    card: dict[str, Any] = _read_card_file(card_file) if card_file else {}
    overrides = {
        "arch": arch,
        "arch_family": arch_family,
        "framework": framework,
        "pretrain_data": pretrain_data,
        "head": head,
        "seed": seed,
        "source": source,
        "category": category,
        "notes": notes,
    }
    card.update({k: v for k, v in overrides.items() if v is not None})
    if hparam:
        card["hparams"] = {**card.get("hparams", {}), **_parse_hparams(hparam)}
    card.setdefault("source", str(file))
    if cost is not None:
        from zoolens.zoo.cards import cost_from_items, parse_cost_items

        card["cost"] = cost_from_items(parse_cost_items(cost, "--cost"))
    new = (
        NewZoo(
            labels=labels,
            labels_key=labels_key,
            labels_column=_column(labels_column),
            labels_id_column=_column(labels_id_column),
            no_labels=no_labels,
            class_names=class_names,
            num_classes=num_classes,
            dataset_name=dataset_name,
            calibration_fraction=calibration_fraction,
            split_seed=split_seed,
        )
        if create
        else None
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        target, read_as = import_model(
            zoo,
            file,
            name,
            create=new,
            class_map=class_map,
            class_map_agg=class_map_agg,
            model_classes=model_classes,
            image_root=image_root,
            kind=kind,
            key=key,
            columns=columns,
            label_column=label_column,
            label_offset=label_offset,
            id_column=_column(id_column),
            header=header,
            topk_layout=topk_layout,
            card=card,
            replace=replace,
            dtype="float16" if float16 else "float32",
            embeddings=embeddings,
            embeddings_key=embeddings_key,
            strict=strict,
            abstain=abstain or [],
            id_prefix=id_prefix,
            id_pattern=id_pattern,
        )
    _print_warnings(caught)
    stored = target.kind(name)
    how = read_as if read_as == stored else f"{read_as}, stored as {stored}"
    if target.has_labels:
        info(f"added {name!r} ({how}) to {zoo}: accuracy_all {target.accuracy(name):.4f}")
    else:
        info(f"added {name!r} ({how}) to {zoo} (no labels: no accuracy)")


def _human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def model_rows(zoo: Any, base: str | None = None) -> list[dict[str, Any]]:
    """One dict per model: name, kind, category (vs base), accuracy_all (an abstention counts
    as wrong), abstentions, shape, dtype, size."""
    from zoolens.zoo.categories import pair_category

    base_card = zoo.card(base) if base is not None else None
    rows = []
    for name in zoo.models:
        entry = zoo.model_info(name)
        shape = list(entry["shape"])
        if entry.get("topk"):
            shape = [shape[0], f"top{entry['topk']}"]
        rows.append(
            {
                "model": name,
                "kind": entry["kind"],
                "category": pair_category(base_card, zoo.card(name)) if base_card else None,
                "accuracy_all": zoo.accuracy(name) if zoo.has_labels else None,
                "shape": shape,
                "dtype": entry["dtype"],
                "size": int(entry["size"]),
                "embeddings": entry.get("embedding_dim"),
                "abstentions": int(entry.get("abstentions") or 0),
                "framework": entry["card"].get("framework"),
                "arch": entry["card"].get("arch"),
                "file": entry["file"],
            }
        )
    return rows


@app.command("info")
@handle_errors
def info_cmd(
    zoo: opt.ZooArgument,
    base: Annotated[
        Optional[str],
        typer.Option("--base", help="Show each model's category relative to this model."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Show a zoo: its data set and, per model, kind, category, accuracy, shape, dtype, size.

    Example: zoolens info cifar.zoo --base densenet
    """
    from zoolens.zoo.store import Zoo

    z = Zoo.open(zoo)
    if base is not None and base not in z:
        raise ZoolensError(f"{zoo}: --base {base!r} is not a model in the zoo")
    rows = model_rows(z, base)
    if as_json:
        dataset = {
            "path": str(z.path),
            "dataset": z.dataset_name,
            "num_examples": z.num_examples,
            "num_classes": z.num_classes,
            "multilabel": z.is_multilabel,
            "labelled": z.has_labels,
            "calibration_examples": int(len(z.calibration_indices)),
            "example_ids": z.example_ids is not None,
            "attributes": (list(z.attributes.columns) if z.attributes is not None else None),
        }
        print(json.dumps({**dataset, "models": rows}, indent=2))
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    if not console.is_terminal:  # piped: do not squeeze the table into 80 columns
        console = Console(width=200)
    extras = []
    if z.example_ids is not None:
        extras.append("example ids")
    if z.attributes is not None:
        extras.append(f"attributes: {', '.join(map(str, z.attributes.columns))}")
    if z.class_groups:
        extras.append(f"{len(z.class_groups)} class groups")

    def shown(text: object) -> str:  # free text (names) printed as itself, never as markup
        return escape(terminal_text(str(text)))

    console.print(
        f"[bold]{shown(z.path)}[/bold]  {shown(z.dataset_name)}: "
        f"{z.num_examples} examples, "
        f"{z.num_classes} classes{' (multi-label)' if z.is_multilabel else ''}"
        f"{'' if z.has_labels else ', no labels'}, "
        f"calibration split {len(z.calibration_indices)}"
        + (f"; {shown('; '.join(extras))}" if extras else "")
    )
    table = Table(show_lines=False)
    for col, justify in (
        ("model", "left"),
        ("kind", "left"),
        ("category", "left"),
        ("accuracy_all", "right"),
        ("abstentions", "right"),
        ("shape", "right"),
        ("dtype", "left"),
        ("size", "right"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for row in rows:
        table.add_row(
            shown(row["model"]),
            row["kind"] + (" +emb" if row["embeddings"] else ""),
            "(base)" if row["model"] == base else (row["category"] or "-"),
            "-" if row["accuracy_all"] is None else f"{row['accuracy_all']:.4f}",
            str(row["abstentions"]),
            "×".join(map(str, row["shape"])),
            row["dtype"],
            _human_size(row["size"]),
        )
    console.print(table)


@app.command("remove")
@handle_errors
def remove_cmd(
    zoo: opt.ZooArgument,
    names: Annotated[list[str], typer.Argument(help="Model name(s) to remove.")],
) -> None:
    """Remove models (their manifest entries, then their files) from a zoo.

    Example: zoolens remove cifar.zoo lenet
    """
    from zoolens.progress import info
    from zoolens.zoo.store import Zoo

    z = Zoo.open(zoo)
    for name in names:
        z.remove(name)
        info(f"removed {name!r} from {zoo}")


@app.command("verify")
@handle_errors
def verify_cmd(zoo: opt.ZooArgument) -> None:
    """Check the sha256 and format of every file in a zoo; exit 1 naming any bad file.

    Example: zoolens verify cifar.zoo
    """
    from zoolens.progress import info, is_quiet
    from zoolens.zoo.store import Zoo

    z = Zoo.open(zoo)
    z.verify(progress=not is_quiet())
    orphans = z.orphan_files()
    if orphans:
        info(
            f"note: {len(orphans)} file(s) in {zoo}/models are not in the manifest (left by an "
            f"interrupted write; safe to delete): {', '.join(p.name for p in orphans[:5])}"
        )
    info(f"ok: {zoo} ({len(z.models)} models, {len(z.file_hashes())} files verified)")
