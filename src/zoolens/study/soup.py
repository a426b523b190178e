"""Model soups over real checkpoints: load, score ingredients on held-out data, average.

Wortsman et al. (2022) fine-tune one pre-trained network several times with different
hyper-parameters and average the weights. This module does the parts around the pure maths
of ``zoolens.measure.soup``: reading checkpoints (``torch.load(weights_only=True)`` or
safetensors), building the network from user code (``python:module:function``), scoring each
ingredient, the uniform soup, the greedy soup (Recipe 1) and the logit ensemble of the
ingredients on held-out data (and, when given, on a test set that is never used to choose),
and writing the soup's state dict atomically.

Held-out data (``--data``) is either
- an ``.npz`` file with ``x`` (the model's input, e.g. (N, 1, 28, 28) float32, used as is;
  uint8 images are scaled to [0, 1]) and ``y`` ((N,) integer class ids); or
- an image folder ``root/<class name>/<image>`` (zoolens.collect.images.ImageFolder; classes
  in sorted folder order), transformed by the transform the model function returns as
  ``(model, transform, card)``, or by the collector's default preprocessing (ToTensor only,
  so the images must then all have one size); every image must give one tensor shape.

The table (``soup.csv``) has one row per method: ``method`` in {ingredient, best_ingredient,
uniform_soup, greedy_soup, logit_ensemble}, ``members`` (";"-joined ingredient names),
``heldout_acc`` and ``test_acc`` (NaN without a test set).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from zoolens import contracts
from zoolens.collect.images import ImageFolder, UndecodableImage
from zoolens.collect.specs import ModelEntry, load_model, split_spec
from zoolens.errors import ZoolensError
from zoolens.measure.agreement import correctness, top1
from zoolens.measure.soup import GreedySoup, check_compatible, greedy_soup, uniform_soup
from zoolens.atomic import atomic_path

SOUP_COLUMNS = list(contracts.SOUP_COLUMNS)
EVAL_BATCH = 512


def load_state_dict(path: str | Path) -> dict[str, Any]:
    """A checkpoint's state dict: safetensors (``.safetensors``) or a torch file read with
    ``weights_only=True``; a dict holding ``state_dict`` (or ``model``) is unwrapped and a
    DataParallel ``module.`` prefix on every key is dropped."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise ZoolensError(f"{path}: checkpoint not found")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            obj: Any = load_file(str(path))
        else:
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable checkpoint is the user's file
        raise ZoolensError(
            f"{path}: cannot read checkpoint ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''})"
        ) from None
    for wrapper in ("state_dict", "model"):
        if isinstance(obj, Mapping) and isinstance(obj.get(wrapper), Mapping):
            obj = obj[wrapper]
    if (
        not isinstance(obj, Mapping)
        or not obj
        or not all(isinstance(v, torch.Tensor) for v in obj.values())
    ):
        raise ZoolensError(f"{path}: not a state dict (expected a mapping of names to tensors)")
    sd = dict(obj)
    if all(k.startswith("module.") for k in sd):
        sd = {k[len("module.") :]: v for k, v in sd.items()}
    return sd


def save_state_dict(state_dict: Mapping[str, Any], path: str | Path) -> Path:
    """Write atomically: safetensors for ``.safetensors``, else ``torch.save``."""
    import torch

    path = Path(path)
    if not path.parent.is_dir():
        raise ZoolensError(f"{path.parent}: output folder does not exist")
    with atomic_path(path) as tmp:
        if path.suffix == ".safetensors":
            from safetensors.torch import save_file

            save_file({k: v.contiguous() for k, v in state_dict.items()}, str(tmp))
        else:
            torch.save(dict(state_dict), tmp)
    return path


def load_network(spec: str) -> tuple[Any, Any]:
    """``python:package.module:function`` -> (torch module, transform for image folders).

    Built by the collector's loader (``zoolens.collect.specs.load_model``), so the function
    may return a module or ``(module, transform, card)`` exactly as for ``zoolens collect``;
    without its own transform an image folder gets the collector's default preprocessing."""
    prefix, _ = split_spec(spec)
    if prefix != "python":
        raise ZoolensError(
            f"--model {spec!r}: expected python:package.module:function (the "
            f"soup needs the network's code to load state dicts into)"
        )
    loaded = load_model(ModelEntry(spec=spec, name="soup"), pretrained=False)
    if loaded.module is None or not hasattr(loaded.module, "load_state_dict"):
        raise ZoolensError(f"--model {spec}: the function must return a torch.nn.Module")
    return loaded.module, loaded.transform


def load_heldout(path: str | Path, transform: Any = None) -> tuple[Any, np.ndarray]:
    """(x as a float tensor, y int64) from an .npz (x, y) or an image folder (module doc)."""
    import torch

    path = Path(path)
    if path.is_file() and path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as npz:
                if "x" not in npz or "y" not in npz:
                    raise ZoolensError(
                        f"{path}: held-out .npz needs arrays 'x' and 'y', has {sorted(npz.files)}"
                    )
                x, y = npz["x"], npz["y"]
        except ZoolensError:
            raise
        except (OSError, ValueError) as exc:
            raise ZoolensError(f"{path}: cannot read .npz ({exc})") from None
        if x.dtype == np.uint8:
            x = x.astype(np.float32) / 255.0
        if len(x) != len(y) or len(y) == 0:
            raise ZoolensError(f"{path}: x has {len(x)} rows and y {len(y)}; need equal, > 0")
        return torch.as_tensor(np.asarray(x, dtype=np.float32)), np.asarray(y, dtype=np.int64)
    if path.is_dir():
        if transform is None:
            raise ZoolensError(f"{path}: an image folder needs the model's transform")
        folder = ImageFolder(path, transform=transform)
        return _stack_images(folder), folder.labels
    raise ZoolensError(
        f"{path}: held-out data must be an .npz with x and y or an image folder "
        f"root/<class name>/<image>"
    )


def _stack_images(folder: Any) -> Any:
    """Every image of ``folder`` through its transform, as one (N, ...) float tensor.

    An undecodable file, or a transform that does not give every image the same tensor shape
    (images of different sizes under the default ToTensor preprocessing), is a ZoolensError
    naming the file, not a traceback from ``torch.stack``."""
    import torch

    inputs: list[Any] = []
    for i in range(len(folder)):
        try:
            item = folder[i]
        except UndecodableImage as exc:
            raise ZoolensError(str(exc)) from None
        if not isinstance(item, torch.Tensor):
            raise ZoolensError(
                f"{folder.files[i]}: the model's transform gives a "
                f"{type(item).__name__}, not a tensor"
            )
        if inputs and item.shape != inputs[0].shape:
            raise ZoolensError(
                f"{folder.files[i]}: transformed to shape {tuple(item.shape)} but "
                f"{folder.files[0]} to {tuple(inputs[0].shape)}; images of different sizes "
                "need a transform that resizes or crops them to one size (return "
                "(model, transform, card) from the --model function)"
            )
        inputs.append(item)
    return torch.stack(inputs).float()


def logits_of(model: Any, state_dict: Mapping[str, Any], x: Any) -> np.ndarray:
    """(N, C) float32 logits of ``model`` with ``state_dict`` loaded (eval mode, batched)."""
    import torch

    try:
        model.load_state_dict(dict(state_dict))
    except RuntimeError as exc:
        raise ZoolensError(
            f"the checkpoint does not fit the --model network ({str(exc).splitlines()[0]})"
        ) from None
    model.eval()
    with torch.no_grad():
        out = [model(x[i : i + EVAL_BATCH]) for i in range(0, len(x), EVAL_BATCH)]
    return torch.cat(out).float().numpy()


def accuracy(logits: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy (argmax, lowest index on ties: ``measure.agreement.top1``)."""
    return float(_right(logits, y).mean())


def _right(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(n,) bool: each example's top-1 is its label."""
    return np.asarray(correctness(top1(logits), y), dtype=bool)


@dataclass
class SoupResult:
    table: pd.DataFrame
    uniform: dict[str, Any]
    greedy: GreedySoup
    names: list[str]
    # per test example, right or not: "best_ingredient" and "greedy_soup" (empty without a
    # test set), so the two can be compared on the same images (a paired test)
    test_right: dict[str, np.ndarray] = field(default_factory=dict)


def run_soups(
    model: Any,
    state_dicts: Sequence[Mapping[str, Any]],
    names: Sequence[str],
    heldout: tuple[Any, np.ndarray],
    test: tuple[Any, np.ndarray] | None = None,
    *,
    progress: Callable[[int], None] | None = None,
) -> SoupResult:
    """Score every ingredient, the uniform soup, the greedy soup and the ingredients' logit
    ensemble (mean of logits, argmax) on held-out data (and the test set when given).

    Choices (best ingredient, greedy membership) use held-out accuracy only.
    """
    check_compatible(state_dicts, names)
    x_h, y_h = heldout
    test_right: dict[str, np.ndarray] = {}
    tick: Callable[..., None] = progress or (lambda n=1: None)

    def held(sd: Mapping[str, Any]) -> float:
        tick(1)
        return accuracy(logits_of(model, sd, x_h), y_h)

    held_logits = []
    for sd in state_dicts:
        held_logits.append(logits_of(model, sd, x_h))
        tick(1)
    ing_held = [accuracy(z, y_h) for z in held_logits]
    greedy = greedy_soup(state_dicts, held, ingredient_scores=ing_held, names=names)
    uniform = uniform_soup(state_dicts, names=names)
    uniform_held = held(uniform)
    ens_held = accuracy(np.mean(held_logits, axis=0), y_h)

    # test-set logits, each network evaluated once (soups equal to an ingredient or to the
    # uniform soup reuse those logits)
    nan = float("nan")
    test_acc = {"uniform": nan, "greedy": nan, "ensemble": nan}
    ing_test = [nan] * len(state_dicts)
    if test is not None:
        x_t, y_t = test
        test_logits = []
        for sd in state_dicts:
            test_logits.append(logits_of(model, sd, x_t))
            tick(1)
        ing_test = [accuracy(z, y_t) for z in test_logits]
        uniform_logits = logits_of(model, uniform, x_t)
        test_acc["uniform"] = accuracy(uniform_logits, y_t)
        if len(greedy.members) == 1:
            greedy_logits = test_logits[greedy.members[0]]
        elif len(greedy.members) == len(state_dicts):
            greedy_logits = uniform_logits
        else:
            greedy_logits = logits_of(model, greedy.state_dict, x_t)
        test_acc["greedy"] = accuracy(greedy_logits, y_t)
        test_acc["ensemble"] = accuracy(np.mean(test_logits, axis=0), y_t)
        test_right = {
            "best_ingredient": _right(test_logits[greedy.order[0]], y_t),
            "greedy_soup": _right(greedy_logits, y_t),
        }

    best = greedy.order[0]
    rows = [
        {
            "method": "ingredient",
            "members": names[i],
            "heldout_acc": ing_held[i],
            "test_acc": ing_test[i],
        }
        for i in range(len(state_dicts))
    ]
    rows.append(
        {
            "method": "best_ingredient",
            "members": names[best],
            "heldout_acc": ing_held[best],
            "test_acc": ing_test[best],
        }
    )
    rows.append(
        {
            "method": "uniform_soup",
            "members": ";".join(names),
            "heldout_acc": uniform_held,
            "test_acc": test_acc["uniform"],
        }
    )
    rows.append(
        {
            "method": "greedy_soup",
            "members": ";".join(names[i] for i in greedy.members),
            "heldout_acc": greedy.score,
            "test_acc": test_acc["greedy"],
        }
    )
    rows.append(
        {
            "method": "logit_ensemble",
            "members": ";".join(names),
            "heldout_acc": ens_held,
            "test_acc": test_acc["ensemble"],
        }
    )
    return SoupResult(
        pd.DataFrame(rows, columns=SOUP_COLUMNS), uniform, greedy, list(names), test_right
    )


def write_soup_table(table: pd.DataFrame, out_dir: str | Path) -> Path:
    """soup.csv in ``out_dir`` (atomic)."""
    from zoolens.study.tables import csv_safe_frame

    path = Path(out_dir) / "soup.csv"
    with atomic_path(path) as tmp:
        csv_safe_frame(table).to_csv(tmp, index=False)
    return path


def format_soup_table(table: pd.DataFrame) -> str:
    lines = [f"{'method':<16} {'held-out':>9} {'test':>7}  members"]
    for row in table.itertuples(index=False):
        test = "" if not np.isfinite(row.test_acc) else f"{row.test_acc:.4f}"
        members = row.members if len(row.members) < 60 else row.members[:57] + "..."
        lines.append(f"{row.method:<16} {row.heldout_acc:>9.4f} {test:>7}  {members}")
    return "\n".join(lines)
