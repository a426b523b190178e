"""``zoolens export``: turn an analysis result into an ensemble file (``deploy.schema``).

Which ensemble: ``greedy`` (the kept prefix of ``summary.json``'s greedy block, repeats as
weights), ``sidekick`` (the base with its best sidekick, the budgeted one when the analysis
ran with ``--budget``), or a comma list of model names (a name repeated adds weight).
Temperatures and the combine rule are the analysis's (``models.csv``, ``summary.json``);
the members' collect specs come from their cards (``cards.json``; only models that
``zoolens collect`` produced can be rebuilt); every file an entry names (a ``checkpoint``
kwarg, a TorchScript file) is recorded with its sha256.

Accuracy: the ensemble is re-scored on the zoo's evaluation split from the stored outputs
(the analysis's zoo, from the provenance block, or ``zoo=``): ``argmax Σ w_m x_m`` with
``x_m`` the calibrated inputs (``measure.ensemble.ensemble_inputs``), summed in float64 as
greedy selection sums; its percentile bootstrap interval uses the analysis's resample count
and seed. For greedy exports the accuracy must equal the one ``summary.json`` reports (else
the zoo changed since the analysis: an error).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
from collections import Counter
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

from zoolens import __version__
from zoolens.deploy.schema import (
    require_regular_file,
    FILE_KEYS,
    Accuracy,
    Checkpoint,
    Combine,
    EnsembleFile,
    EnsembleKind,
    Member,
    path_kwargs,
    set_dotted,
    sha256_file,
)
from zoolens.errors import ZoolensError
from zoolens.measure.ensemble import ensemble_inputs


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ZoolensError(f"{path}: not found; {what}") from None
    except RecursionError:
        raise ZoolensError(f"{path}: unreadable (JSON nested too deeply)") from None
    except (OSError, ValueError) as exc:  # JSONDecodeError, UnicodeDecodeError, huge ints
        raise ZoolensError(f"{path}: unreadable ({' '.join(str(exc).split())[:200]})") from None
    if not isinstance(data, dict):
        raise ZoolensError(f"{path}: expected a JSON object")
    return data


def chosen_members(summary: dict[str, Any], which: str, path: Path) -> tuple[str, list[str]]:
    """(kind, member names with repeats) for ``--ensemble which``."""
    head = summary.get("headline") or {}
    if which == "greedy":
        greedy = head.get("greedy") or {}
        if "skipped" in greedy or not greedy.get("members"):
            raise ZoolensError(
                f"{path}: no greedy ensemble in summary.json "
                f"({greedy.get('skipped', 'greedy selection did not run')})"
            )
        return "greedy", [str(m) for m in greedy["members"]]
    if which == "sidekick":
        best = head.get("best_sidekick")
        base = summary.get("base")
        if not best or not base:
            raise ZoolensError(
                f"{path}: summary.json names no best sidekick for the base "
                f"(no pair with the base has probabilities on both sides"
                f"{' or fits the budget' if 'budget' in summary else ''})"
            )
        return "sidekick", [str(base), str(best["model"])]
    names = [part.strip() for part in which.split(",")]
    if not all(names):
        raise ZoolensError(f"--ensemble {which!r}: give greedy, sidekick or model names A,B,…")
    return "models", names


def _checkpoints(collect: dict[str, Any], name: str) -> tuple[dict[str, Any], list[Checkpoint]]:
    """The collect block with the paths of the files the member loads made absolute, and
    each such file with its sha256: the TorchScript file of a ``torchscript:`` spec and the
    kwargs that name a path (``deploy.schema.path_kwargs``). A path kwarg must be a
    checkpoint kwarg (``deploy.schema.FILE_KEYS``) naming a regular file: nothing else a
    kwarg names (a system file, a folder) is read, hashed or shipped."""
    collect = json.loads(json.dumps(collect))
    found = []
    kwargs = collect.get("kwargs") or {}
    for key, value in path_kwargs(kwargs):
        if key.rsplit(".", 1)[-1] not in FILE_KEYS:
            raise ZoolensError(
                f"model {name!r}: kwarg {key} = {value[:200]!r} looks like a path, but an "
                f"ensemble ships only the files under checkpoint kwargs "
                f"({', '.join(sorted(FILE_KEYS))}); rename the builder's argument"
            )
        path = _regular_file(Path(value), f"model {name!r}: kwarg {key}")
        set_dotted(kwargs, key, str(path))
        found.append(Checkpoint(key=key, path=str(path), sha256=sha256_file(path)))
    spec = str(collect.get("spec", ""))
    if spec.startswith("torchscript:"):
        path = _regular_file(Path(spec.split(":", 1)[1]), f"model {name!r}: TorchScript file")
        collect["spec"] = f"torchscript:{path}"
        found.append(Checkpoint(key="spec", path=str(path), sha256=sha256_file(path)))
    collect["kwargs"] = kwargs
    return collect, found


def _regular_file(path: Path, who: str) -> Path:
    """``path`` resolved, when it is a regular file (a FIFO or device is never opened)."""
    require_regular_file(path, f"{who}:")
    return path.resolve()


def bootstrap_interval(
    correct: np.ndarray, n_bootstrap: int, seed: int, level: float = 0.95
) -> tuple[float | None, float | None]:
    """Percentile bootstrap interval of the mean of ``correct`` (resampling examples)."""
    n = len(correct)
    if n_bootstrap <= 0 or n == 0:
        return None, None
    rng = np.random.default_rng(seed)
    means = np.empty(n_bootstrap)
    step = max(1, 2**22 // n)
    values = correct.astype(np.float64)
    for lo in range(0, n_bootstrap, step):
        hi = min(n_bootstrap, lo + step)
        means[lo:hi] = values[rng.integers(0, n, size=(hi - lo, n))].mean(axis=1)
    alpha = (1 - level) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    return float(low), float(high)


def ensemble_scores(
    zoo: Any,
    weights: dict[str, int],
    temperatures: dict[str, float],
    combine: str,
    rows: np.ndarray,
) -> np.ndarray:
    """(n, C) float64 ``Σ_m w_m x_m`` over ``rows`` of the zoo (the ensemble's decision sum)."""
    total = None
    for name, weight in weights.items():
        # float32 inputs widened before weighting: w·x equals x summed w times in float64,
        # as greedy selection sums a repeated member
        x = ensemble_inputs(zoo.scores(name, rows=rows), temperatures[name], combine).astype(
            np.float64
        )
        total = weight * x if total is None else total + weight * x
    assert total is not None  # an ensemble has at least one member
    return total


def _read_models(path: Path) -> pd.DataFrame:
    """models.csv's model and temperature columns; one line for anything else (missing,
    not a CSV, columns missing, a temperature that is not a number)."""
    try:
        if os.stat(path).st_size > 256 << 20:
            raise ZoolensError(f"{path}: larger than 256 MiB; not a models table")
        models = pd.read_csv(
            path, usecols=["model", "temperature"], dtype={"model": object}, engine="c"
        )
    except FileNotFoundError:
        raise ZoolensError(f"{path}: not found") from None
    except ZoolensError:
        raise
    except (ValueError, OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ZoolensError(
            f"{path}: not a models table ({' '.join(str(exc).split())[:200]})"
        ) from None
    temperature = pd.to_numeric(models["temperature"], errors="coerce")
    garbage = (temperature.isna() & models["temperature"].notna()).to_numpy()
    if garbage.any():  # an empty cell is a decision-only model; text is not
        raise ZoolensError(f"{path}: row {int(garbage.argmax()) + 2}: temperature is not a number")
    from zoolens.contracts import csv_restore

    names = models["model"].astype(str).map(csv_restore)  # analyze escaped formulas
    return pd.DataFrame({"model": names, "temperature": temperature})


def export_ensemble(
    results_dir: str | Path,
    which: str,
    out_path: str | Path | None = None,
    *,
    zoo: Any = None,
    bundle: str | Path | None = None,
) -> EnsembleFile:
    """Write the ensemble file for ``which`` (greedy | sidekick | A,B,…) of a results folder;
    returns it. Nothing is written when anything is wrong (ZoolensError, one line).

    ``bundle``: a new folder holding ``ensemble.json`` and every file a member loads
    (``files/``), the file naming them by relative paths: copy or move the folder anywhere
    and run it there (paths resolve against the ensemble file's folder)."""
    from zoolens.study.analyze import open_zoo

    results = Path(results_dir)
    if bundle is not None and out_path is not None:
        raise ZoolensError("give --out FILE or --bundle DIR, not both")
    if bundle is not None:
        bundle = Path(bundle)
        if bundle.exists() and (not bundle.is_dir() or any(bundle.iterdir())):
            raise ZoolensError(f"--bundle {bundle}: exists and is not an empty folder")
        if not bundle.parent.is_dir():
            raise ZoolensError(f"--bundle {bundle}: folder {bundle.parent} does not exist")
    out = Path(out_path) if out_path is not None else Path("ensemble.json")
    if bundle is None and out.is_dir():
        raise ZoolensError(
            f"--out {out}: is a folder; give a file name such as {out / 'ensemble.json'}"
        )
    summary = _read_json(results / "summary.json", f"run `zoolens analyze … --out {results}` first")
    kind, listed = chosen_members(summary, which, results)
    models = _read_models(results / "models.csv")
    cards = _read_json(results / "cards.json", "the analysis writes it").get("cards") or {}
    zoo_path = zoo if zoo is not None else (summary.get("zoo") or {}).get("path")
    if zoo_path is None:
        raise ZoolensError(f"{results}: summary.json names no zoo; give --zoo")
    zoo = open_zoo(zoo_path)
    temperature = dict(zip(models["model"].astype(str), models["temperature"]))
    weights = dict(Counter(listed))
    for name in weights:
        if name not in temperature or name not in zoo.models:
            raise ZoolensError(
                f"--ensemble: unknown model {name!r} (not in {results}/models.csv"
                f" and the zoo); models: {', '.join(map(str, models['model']))}"
            )
        if not np.isfinite(temperature[name]):
            raise ZoolensError(
                f"model {name!r}: decision-only (no temperature); ensembles need probabilities"
            )
    combine = str((summary.get("settings") or {}).get("combine", "probs"))
    ev = np.asarray(zoo.evaluation_indices, dtype=np.int64)
    labels = np.asarray(zoo.labels)[ev]
    pred = ensemble_scores(zoo, weights, temperature, combine, ev).argmax(axis=1)
    from zoolens.measure.agreement import correctness

    correct = correctness(pred, labels)
    value = float(correct.mean())
    reported = (summary.get("headline") or {}).get("greedy", {}).get("evaluation_acc")
    if kind == "greedy" and reported is not None and abs(value - reported) > 1e-12:
        raise ZoolensError(
            f"zoo {zoo.path}: the greedy ensemble scores {value:.6f} now, the "
            f"analysis reported {reported:.6f}; the zoo changed since the "
            f"analysis (run it again)"
        )
    n_boot = int((summary.get("settings") or {}).get("n_bootstrap", 1000) or 0)
    seed = int((summary.get("seeds") or {}).get("bootstrap", 0) or 0)
    lo, hi = bootstrap_interval(correct, n_boot, seed)
    members = []
    for name, weight in weights.items():
        card = cards.get(name) or zoo.card(name).model_dump(mode="json")
        if not card.get("collect"):
            raise ZoolensError(
                f"model {name!r}: its card has no collect block (its outputs were "
                "imported, so there is no network to rebuild); an exportable member needs "
                "the card's collect block that `zoolens collect` writes: a spec "
                "(timm:NAME, torchvision:NAME/WEIGHTS, open_clip:ARCH/TAG, "
                "torchscript:FILE.pt or python:module:function) with its kwargs, checkpoint "
                "files and preprocessing; run that model through `zoolens collect` or "
                "choose collected members with --ensemble A,B"
            )
        collect, files = _checkpoints(card["collect"], name)
        cost = card.get("cost") or None
        members.append(
            Member(
                name=name,
                collect=collect,
                checkpoints=files,
                temperature=float(temperature[name]),
                weight=int(weight),
                input_shape=(cost or {}).get("input_shape"),
                preprocessing=collect.get("preprocessing"),
                cost=cost,
            )
        )
    ensemble = EnsembleFile(
        kind=cast(EnsembleKind, kind),  # pydantic checks the value
        combine=cast(Combine, combine),
        class_names=list(zoo.class_names),
        members=members,
        accuracy=Accuracy(
            value=value,
            lo=lo,
            hi=hi,
            n=len(ev),
            interval=f"percentile bootstrap, 95%, {n_boot} resamples of "
            f"evaluation examples, seed {seed}",
        ),
        provenance={
            "zoolens_version": __version__,
            "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "results": str(results.resolve()),
            "analysis_command": summary.get("command"),
            "analysis_zoolens_version": summary.get("zoolens_version"),
            "zoo": {"path": str(Path(zoo.path).resolve()), "file_hashes": dict(zoo.file_hashes())},
            "budget": (summary.get("budget") or {}).get("budget"),
        },
    )
    if bundle is not None:
        return write_bundle(ensemble, bundle)
    write_ensemble_file(ensemble, out)
    return ensemble


def write_bundle(ensemble: EnsembleFile, folder: Path) -> EnsembleFile:
    """``folder/ensemble.json`` and ``folder/files/<checkpoint>`` (each file a member loads,
    copied once), with relative paths; staged beside the folder and renamed into place, so
    a failure leaves nothing."""
    import tempfile

    from zoolens.zoo.scratch import owned_name, sweep_dead

    folder = Path(folder)
    parent = folder.parent.resolve()
    prefix = ".zoolens-bundle-"
    sweep_dead(parent, prefix)
    stage = Path(tempfile.mkdtemp(prefix=owned_name(prefix, ""), dir=parent))
    try:
        names: dict[str, str] = {}  # sha256 -> relative path in the bundle
        members = []
        for member in ensemble.members:
            collect = json.loads(json.dumps(member.collect))
            kwargs = collect.get("kwargs") or {}
            checkpoints = []
            for ckpt in member.checkpoints:
                rel = names.get(ckpt.sha256)
                if rel is None:
                    base = Path(ckpt.path).name
                    rel = f"files/{base}"
                    if rel in names.values():
                        rel = f"files/{ckpt.sha256[:12]}-{base}"
                    (stage / "files").mkdir(exist_ok=True)
                    shutil.copyfile(ckpt.path, stage / rel)
                    if sha256_file(stage / rel) != ckpt.sha256:
                        raise ZoolensError(f"{ckpt.path}: changed while it was being copied")
                    names[ckpt.sha256] = rel
                if ckpt.key == "spec":
                    collect["spec"] = f"torchscript:{rel}"
                else:
                    set_dotted(kwargs, ckpt.key, rel)
                checkpoints.append(ckpt.model_copy(update={"path": rel}))
            members.append(
                member.model_copy(update={"collect": collect, "checkpoints": checkpoints})
            )
        ensemble = ensemble.model_copy(update={"members": members})
        write_ensemble_file(ensemble, stage / "ensemble.json")
        if folder.is_dir():
            folder.rmdir()  # empty (checked): replaced by the staged folder
        os.replace(stage, folder)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return ensemble


def write_ensemble_file(ensemble: EnsembleFile, out: Path) -> None:
    from zoolens.atomic import atomic_write_with

    text = ensemble.model_dump_json(indent=2) + "\n"
    if not out.parent.is_dir():
        raise ZoolensError(f"--out {out}: folder {out.parent} does not exist")
    atomic_write_with(out, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def export_soup(
    model_spec: str,
    soup_path: str | Path,
    out_path: str | Path,
    *,
    class_names: list[str],
    input_shape: list[int] | None,
    accuracy: float | None,
    n: int | None,
    what: str,
) -> EnsembleFile:
    """The ensemble file of a soup: one member built by ``model_spec`` with the soup's state
    dict loaded into it (temperature 1, combine "probs")."""
    soup_path = Path(soup_path).resolve()
    member = Member(
        name="soup",
        collect={"spec": model_spec, "name": "soup", "kwargs": {}},
        state_dict=Checkpoint(key="state_dict", path=str(soup_path), sha256=sha256_file(soup_path)),
        temperature=1.0,
        weight=1,
        input_shape=input_shape,
    )
    ensemble = EnsembleFile(
        kind="soup",
        combine="probs",
        class_names=class_names,
        members=[member],
        accuracy=(
            Accuracy(
                value=float(accuracy),
                n=int(cast(int, n)),
                split=what,
                interval="none (no resampling)",
            )
            if accuracy is not None
            else None
        ),
        provenance={
            "zoolens_version": __version__,
            "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        },
    )
    write_ensemble_file(ensemble, Path(out_path))
    return ensemble
