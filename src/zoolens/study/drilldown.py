"""Drill-down: the examples only one of the base and its best sidekick gets right.

For the base a and its best sidekick b (highest ensemble accuracy with the base), the
evaluation examples where exactly one of them is right (r_a XOR r_b, the examples error
inconsistency counts, paper Sec. 4) are the ones an ensemble can win or lose. Up to
``limit`` of them (half where only a is right, half where only b is; a fixed-seed random
choice within each side, in example order) are listed with each model's top-3 classes and
calibrated probabilities (softmax(z / T), T the model's fitted temperature), so a reader can
look at what each model saw. When the zoo knows its image files (``Zoo.image_root``, set by
``zoolens collect`` or ``zoolens import --image-root``) and the example ids are paths under
it, ``image`` is the file's absolute path; the report embeds a thumbnail.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from pathlib import Path

import numpy as np
import pandas as pd

from zoolens.contracts import columns
from zoolens.measure.agreement import correctness
from zoolens.measure.ensemble import ensemble_inputs

DRILLDOWN_LIMIT = 50
TOP = 3


def _choose(rows: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    if rows.size <= count:
        return rows
    return np.sort(rng.choice(rows, size=count, replace=False))


def image_path(root: str | None, example_id: str | None) -> str:
    """The image file of an example: ``root / example_id`` when that is a file inside root
    (an id like ``../x`` never reaches outside it), else ""."""
    if not root or not example_id:
        return ""
    base = Path(root).resolve()
    path = (base / str(example_id)).resolve()
    if base not in path.parents or not path.is_file():
        return ""
    return str(path)


def drilldown_table(
    zoo: Any,
    names: Sequence[str],
    temperatures: np.ndarray,
    ev: np.ndarray,
    base: str,
    sidekick: str | None,
    *,
    limit: int = DRILLDOWN_LIMIT,
    seed: int = 0,
) -> pd.DataFrame:
    """The drilldown table (``zoolens.contracts.DRILLDOWN``); empty without a sidekick, for
    multi-label truth, or when the two models never disagree on rightness."""
    out_columns = list(columns("drilldown"))
    if sidekick is None or zoo.is_multilabel:
        return pd.DataFrame({c: [] for c in out_columns})
    labels = np.asarray(zoo.labels)[ev]
    pred = {m: np.asarray(zoo.predictions(m))[ev] for m in (base, sidekick)}
    right_a = correctness(pred[base], labels)
    right_b = correctness(pred[sidekick], labels)
    rng = np.random.default_rng(seed)
    only_a = _choose(np.flatnonzero(right_a & ~right_b), limit // 2, rng)
    only_b = _choose(np.flatnonzero(right_b & ~right_a), limit - limit // 2, rng)
    chosen = np.concatenate([only_a, only_b])
    if chosen.size == 0:
        return pd.DataFrame({c: [] for c in out_columns})
    rows = ev[chosen]  # zoo rows
    order = np.argsort(rows, kind="stable")  # read the zoo in row order
    class_names = list(zoo.class_names)
    ids = zoo.example_ids
    root = getattr(zoo, "image_root", None)
    records = []
    temperature = dict(zip(names, np.asarray(temperatures, dtype=np.float64)))
    for model in (base, sidekick):
        probs = np.empty((rows.size, len(class_names)), dtype=np.float64)
        probs[order] = ensemble_inputs(
            zoo.scores(model, rows=rows[order]), float(temperature[model]), "probs"
        )
        ranks = min(TOP, len(class_names))  # a two-class zoo has a top 2
        top = np.argsort(-probs, axis=1, kind="stable")[:, :ranks]
        for k, (row, local) in enumerate(zip(rows, chosen)):
            example_id = str(ids[row]) if ids is not None else ""
            for rank in range(ranks):
                cls = int(top[k, rank])
                records.append(
                    {
                        "model_a": base,
                        "model_b": sidekick,
                        "example": int(row),
                        "example_id": example_id,
                        "label": int(labels[local]),
                        "label_name": class_names[int(labels[local])],
                        "right": base if right_a[local] else sidekick,
                        "model": model,
                        "rank": rank + 1,
                        "class": cls,
                        "class_name": class_names[cls],
                        "probability": float(probs[k, cls]),
                        "image": image_path(root, example_id),
                    }
                )
    frame = pd.DataFrame.from_records(records, columns=out_columns)
    return frame.sort_values(
        ["right", "example", "model", "rank"], key=None, kind="stable"
    ).reset_index(drop=True)
