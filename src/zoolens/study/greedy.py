"""Greedy forward ensemble selection over a zoo (paper Sec. 4.5, Fig. 5; DESIGN.md sec. 3).

Orchestration only; the selection rule is ``measure.ensemble.greedy_forward_selection``.
Reads: the start model and the pool once on the calibration split (the only split that
chooses), then the model added at each step once on the evaluation split, where the
evaluation accuracy of every prefix is reported (never used to choose). The greedy.csv table
has one row per step: step 0 is the start model alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from zoolens.errors import ZoolensError
from zoolens.measure.ensemble import ensemble_inputs, greedy_forward_selection
from zoolens.progress import info
from zoolens.study.tables import GREEDY_COLUMNS


@dataclass
class GreedyOutcome:
    table: pd.DataFrame
    members: list[str]  # the kept prefix (with repeats)
    calibration_acc: float
    evaluation_acc: float
    start_evaluation_acc: float
    excluded: list[str]  # pool models without probabilities


def memory_need(num_candidates: int, num_cal: int, num_eval: int, num_classes: int) -> int:
    """Bytes the selection holds: every candidate's calibration rows (float32), the float64
    running sums on both splits and one float64 scoring block."""
    return ((num_candidates * 4 + 16) * num_cal + 8 * num_eval) * num_classes + 64 * 2**20


class _CalibratedRows:
    """One model's ensemble inputs, read from the zoo on demand: ``model[rows]`` reads only
    ``rows`` (``Zoo.scores``) and calibrates them (``measure.ensemble.ensemble_inputs``)."""

    def __init__(self, zoo, name: str, temperature: float, combine: str):
        self.zoo, self.name, self.temperature, self.combine = zoo, name, temperature, combine

    def __getitem__(self, rows) -> np.ndarray:
        return ensemble_inputs(self.zoo.scores(self.name, rows=rows), self.temperature,
                               self.combine)


def run_selection(zoo, names: Sequence[str], has_scores: np.ndarray,
                  temperatures: np.ndarray, start: str, pool: Sequence[str], *,
                  cal: np.ndarray, ev: np.ndarray, labels: np.ndarray, combine: str,
                  max_steps: int, memory_budget: int) -> GreedyOutcome:
    """Choose on the calibration split, report on the evaluation split; see module doc.

    Decision-only models in the pool are left out (and returned in ``excluded``); a pool left
    empty, or a decision-only start, is a ZoolensError.
    """
    index = {name: i for i, name in enumerate(names)}
    if not has_scores[index[start]]:
        raise ZoolensError(f"greedy start {start!r} is decision-only: ensembles need "
                           "probabilities")
    excluded = [name for name in pool if not has_scores[index[name]]]
    candidates = [name for name in pool if has_scores[index[name]]]
    if not candidates:
        raise ZoolensError("the greedy pool is empty: no model in it has probabilities "
                           f"({', '.join(excluded)} are decision-only)")
    if excluded:
        info(f"greedy: leaving out decision-only models {', '.join(excluded)}")
    need = memory_need(len(candidates), len(cal), len(ev), int(zoo.num_classes))
    if need > memory_budget:
        raise ZoolensError(
            f"greedy: {len(candidates)} candidates on {len(cal)} calibration examples need "
            f"{need / 2**30:.1f} GiB, more than the memory budget of "
            f"{memory_budget / 2**30:.1f} GiB; raise --memory-gb or narrow --pool")
    info(f"greedy selection from {start}: {len(candidates)} candidates, {max_steps} steps")
    # Zoo order, so that the tie rule's "lowest index" means the zoo's index whatever order
    # the user listed the pool in (DESIGN.md sec. 3).
    used = sorted(set([start] + candidates), key=index.__getitem__)
    models = [_CalibratedRows(zoo, name, float(temperatures[index[name]]), combine)
              for name in used]
    result = greedy_forward_selection(models, labels, start=used.index(start),
                                      pool=[used.index(name) for name in candidates],
                                      max_steps=max_steps, calibration_index=cal,
                                      evaluation_index=ev)
    chosen = [used[k] for k in result.members]
    steps = len(chosen)
    kept = int(result.kept)
    evaluation = np.asarray(result.evaluation_accuracy, dtype=np.float64)
    table = pd.DataFrame({
        "start": start,
        "step": np.arange(steps),
        "added": chosen,
        "members": [";".join(chosen[: s + 1]) for s in range(steps)],
        "calibration_acc": np.asarray(result.calibration_accuracy, dtype=np.float64),
        "evaluation_acc": evaluation,
        "kept": np.arange(steps) < kept,
    })[GREEDY_COLUMNS]
    return GreedyOutcome(table=table, members=chosen[:kept],
                         calibration_acc=float(table["calibration_acc"].iloc[kept - 1]),
                         evaluation_acc=float(evaluation[kept - 1]),
                         start_evaluation_acc=float(evaluation[0]), excluded=excluded)
