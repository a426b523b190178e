"""Greedy forward ensemble selection over a zoo (paper Sec. 4.5, Fig. 5; DESIGN.md sec. 3).

Orchestration only; the selection rule is ``measure.ensemble.greedy_forward_selection``.
Reads: the start model and the pool once on the calibration split (the only split that
chooses), then the model added at each step once on the evaluation split, where the
evaluation accuracy of every prefix is reported (never used to choose). The greedy.csv table
has one row per step: step 0 is the start model alone.

Memory: the selection scores every candidate at every step on the calibration rows, so it
keeps each candidate's calibrated calibration rows (float32, n_cal x C: 40 MB per model at
10,000 x 1,000). When the pool's rows do not fit ``memory_budget`` they are *staged*: written
once, exactly as computed in memory (``ensemble_inputs`` on the same rows), to one float32
file per candidate in a scratch folder (``tempfile``; ``TMPDIR`` chooses where), and the
selection reads them through read-only memory maps whose resident pages are dropped after
each use (``study.pages.release_pages``, the selection's ``after_use`` hook). Results are identical either way; the folder is
removed afterwards, also on error. Only running out of disk space is an error.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from zoolens.errors import ZoolensError
from zoolens.measure.ensemble import greedy_forward_selection
from zoolens.measure.fused import calibrated_inputs
from zoolens.progress import info, progress_bar, track
from zoolens.study.pages import release_pages
from zoolens.study.tables import GREEDY_COLUMNS, GREEDY_FOLDS_COLUMNS
from zoolens.zoo.scratch import GREEDY_PREFIX, owned_name, sweep_dead


@dataclass
class GreedyOutcome:
    table: pd.DataFrame
    members: list[str]  # the kept prefix (with repeats)
    calibration_acc: float
    evaluation_acc: float
    start_evaluation_acc: float
    excluded: list[str]  # pool models without probabilities
    staged: bool = False  # the candidates' calibration rows were staged on disk
    # (N_eval,) bool per-example correctness on the evaluation split of the kept ensemble
    # and of the start alone (the paired bootstrap of the greedy gain needs both).
    evaluation_correct: np.ndarray | None = None
    start_evaluation_correct: np.ndarray | None = None


def memory_need(num_candidates: int, num_cal: int, num_eval: int, num_classes: int) -> int:
    """Bytes the selection holds in memory: every candidate's calibration rows (float32), the
    float64 running sums on both splits and one float64 scoring block."""
    return ((num_candidates * 4 + 16) * num_cal + 8 * num_eval) * num_classes + 64 * 2**20


class _CalibratedRows:
    """One model's ensemble inputs, read from the zoo on demand: ``model[rows]`` reads only
    ``rows`` (``Zoo.stored_scores``) and calibrates them (``measure.fused.calibrated_inputs``,
    the evaluation pass's arithmetic)."""

    def __init__(self, zoo: Any, name: str, temperature: float, combine: str):
        self.zoo, self.name, self.temperature, self.combine = zoo, name, temperature, combine

    def __getitem__(self, rows: Any) -> np.ndarray:
        return calibrated_inputs(
            self.zoo.stored_scores(self.name, rows=rows), self.temperature, self.combine
        )


class _StagedRows:
    """A candidate whose calibration rows were staged on disk: ``model[cal]`` is the
    read-only memory map of those rows (no copy), any other rows are read from the zoo."""

    def __init__(self, source: _CalibratedRows, cal: np.ndarray, staged: np.ndarray):
        self.source, self.cal, self.staged = source, cal, staged

    def __getitem__(self, rows: Any) -> np.ndarray:
        if rows is self.cal or (
            isinstance(rows, np.ndarray)
            and rows.shape == self.cal.shape
            and np.array_equal(rows, self.cal)
        ):
            return self.staged
        return self.source[rows]


@contextmanager
def staged_pool(
    models: Sequence[_CalibratedRows],
    cal: np.ndarray,
    num_classes: int,
    scratch_dir: str | os.PathLike | None = None,
) -> Iterator[list[np.ndarray]]:
    """Write each model's calibrated calibration rows to a float32 file in a fresh scratch
    folder and yield ``_StagedRows`` over read-only memory maps of them; the folder is removed
    on exit (also on error). ZoolensError when the disk lacks the space."""
    need = len(models) * len(cal) * num_classes * 4
    parent = Path(scratch_dir) if scratch_dir is not None else Path(tempfile.gettempdir())
    try:
        free = shutil.disk_usage(parent).free
    except OSError as exc:
        raise ZoolensError(
            f"greedy: cannot use the scratch folder {parent} ({exc.strerror})"
        ) from None
    if need + 2**28 > free:
        raise ZoolensError(
            f"greedy: staging {len(models)} candidates' calibration rows needs "
            f"{need / 2**30:.1f} GiB of disk under {parent}, only {free / 2**30:.1f} GiB free; "
            "set TMPDIR to a larger disk, raise --memory-gb or narrow --pool"
        )
    sweep_dead(parent, GREEDY_PREFIX)  # what killed runs left behind
    folder = Path(tempfile.mkdtemp(prefix=owned_name(GREEDY_PREFIX, ""), dir=parent))
    try:
        staged = []
        for k, model in enumerate(
            track(models, description="greedy: staging candidates", unit="models")
        ):
            path = folder / f"candidate-{k:05d}.f32"
            rows = np.ascontiguousarray(model[cal], dtype=np.float32)
            try:
                with open(path, "wb") as handle:
                    rows.tofile(handle)
            except OSError as exc:
                raise ZoolensError(
                    f"greedy: cannot write the scratch file {path} ({exc.strerror})"
                ) from None
            del rows
            mapped = np.memmap(path, dtype=np.float32, mode="r", shape=(len(cal), num_classes))
            staged.append(_StagedRows(model, cal, mapped))
        yield staged
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run_selection(
    zoo: Any,
    names: Sequence[str],
    has_scores: np.ndarray,
    temperatures: np.ndarray,
    start: str,
    pool: Sequence[str],
    *,
    cal: np.ndarray,
    ev: np.ndarray,
    labels: np.ndarray,
    combine: str,
    max_steps: int,
    memory_budget: int,
    scratch_dir: str | os.PathLike | None = None,
    budget: Any = None,
) -> GreedyOutcome:
    """Choose on the calibration split, report on the evaluation split; see module doc.

    Decision-only models in the pool are left out (and returned in ``excluded``); a pool left
    empty, or a decision-only start, is a ZoolensError. A pool whose calibration rows exceed
    ``memory_budget`` bytes is staged on disk under ``scratch_dir`` (default: the system
    temporary folder) with identical results. ``budget`` (a ``study.budget.Budget``): only
    ensembles whose summed cost fits; pool models without a cost are left out (the start
    must have one and fit).
    """
    index = {name: i for i, name in enumerate(names)}
    if not has_scores[index[start]]:
        raise ZoolensError(f"greedy start {start!r} is decision-only: ensembles need probabilities")
    excluded = [name for name in pool if not has_scores[index[name]]]
    candidates = [name for name in pool if has_scores[index[name]]]
    if not candidates:
        raise ZoolensError(
            "the greedy pool is empty: no model in it has probabilities "
            f"({', '.join(excluded)} are decision-only)"
        )
    if excluded:
        info(f"greedy: leaving out decision-only models {', '.join(excluded)}")
    if budget is not None:
        if not budget.fits([start]):
            raise ZoolensError(
                f"greedy start {start!r} does not fit the budget "
                f"{budget.describe()} (or has no cost on its card)"
            )
        unpriced = [name for name in candidates if not budget.priced[index[name]]]
        candidates = [name for name in candidates if budget.priced[index[name]]]
        if unpriced:
            info(f"greedy: leaving out models without a cost: {', '.join(unpriced)}")
        if not candidates:
            raise ZoolensError("the greedy pool is empty under --budget: no model in it has a cost")
    num_classes = int(zoo.num_classes)
    stage = memory_need(len(candidates), len(cal), len(ev), num_classes) > memory_budget
    info(
        f"greedy selection from {start}: {len(candidates)} candidates, {max_steps} steps"
        + (" (calibration rows staged on disk: they exceed the memory budget)" if stage else "")
    )
    # Zoo order, so that the tie rule's "lowest index" means the zoo's index whatever order
    # the user listed the pool in (DESIGN.md sec. 3).
    used = sorted(set([start] + candidates), key=index.__getitem__)
    models = [
        _CalibratedRows(zoo, name, float(temperatures[index[name]]), combine) for name in used
    ]
    pool = [used.index(name) for name in candidates]
    select = dict(
        labels=labels,
        start=used.index(start),
        pool=pool,
        max_steps=max_steps,
        calibration_index=cal,
        evaluation_index=ev,
    )
    if budget is not None:
        select.update(costs=budget.costs[[index[name] for name in used]], budget=budget.limits)
    with progress_bar(max_steps, "greedy selection", "steps") as advance:
        select["on_step"] = advance
        if stage:
            with staged_pool([models[k] for k in pool], cal, num_classes, scratch_dir) as staged:
                for k, staged_model in zip(pool, staged):
                    models[k] = staged_model
                result = greedy_forward_selection(models, **select, after_use=release_pages)
                del models, staged  # close the maps before the folder goes
        else:
            result = greedy_forward_selection(models, **select)
    chosen = [used[k] for k in result.members]
    steps = len(chosen)
    kept = int(result.kept)
    evaluation = np.asarray(result.evaluation_accuracy, dtype=np.float64)
    table = pd.DataFrame(
        {
            "start": start,
            "step": np.arange(steps),
            "added": chosen,
            "members": [";".join(chosen[: s + 1]) for s in range(steps)],
            "calibration_acc": np.asarray(result.calibration_accuracy, dtype=np.float64),
            "evaluation_acc": evaluation,
            "kept": np.arange(steps) < kept,
        }
    )[GREEDY_COLUMNS]
    return GreedyOutcome(
        table=table,
        members=chosen[:kept],
        calibration_acc=float(table["calibration_acc"].iloc[kept - 1]),
        evaluation_acc=float(evaluation[kept - 1]),
        start_evaluation_acc=float(evaluation[0]),
        excluded=excluded,
        staged=stage,
        evaluation_correct=result.evaluation_correct[kept - 1],
        start_evaluation_correct=result.evaluation_correct[0],
    )


# ---------------------------------------------------------------------------------------------
# cross-fitted selection (no calibration split)


@dataclass
class CrossFitOutcome:
    """Greedy selection by k-fold cross-fitting: for each fold, members chosen on the other
    k - 1 folds and scored on the held-out fold, so no reported accuracy is chosen and
    scored on the same examples.

    ``evaluation_acc`` is the held-out accuracy pooled over the folds (every example is
    held out exactly once: the fold accuracies' mean weighted by fold size);
    ``fold_evaluation_acc`` the per-fold values (their spread is the fold standard
    deviation); ``member_folds`` how many folds kept each model (most often first).
    """

    table: pd.DataFrame  # greedy_folds.csv: every fold's step table
    folds: int
    members: list[str]  # distinct models kept in more than half of the folds
    member_folds: dict[str, int]
    calibration_acc: float  # mean over folds of the kept ensemble's selection accuracy
    evaluation_acc: float
    fold_evaluation_acc: list[float]
    start_evaluation_acc: float
    excluded: list[str]
    staged: bool = False
    evaluation_correct: np.ndarray | None = None  # (N_eval,) in evaluation order
    start_evaluation_correct: np.ndarray | None = None

    @property
    def fold_spread(self) -> float:
        """Standard deviation of the held-out accuracy over the folds (ddof 1)."""
        acc = np.asarray(self.fold_evaluation_acc)
        return float(acc.std(ddof=1)) if len(acc) > 1 else float("nan")


def cross_fit_folds(num_examples: int, folds: int, seed: int) -> list[np.ndarray]:
    """k held-out folds (sorted positions 0..n-1) of a seeded random permutation, sizes
    differing by at most one (``np.array_split``)."""
    if folds < 2:
        raise ZoolensError(f"cross-fitted greedy needs at least 2 folds, got {folds}")
    if num_examples < folds:
        raise ZoolensError(
            f"cross-fitted greedy: {num_examples} examples cannot make {folds} folds"
        )
    order = np.random.default_rng(seed).permutation(num_examples)
    return [np.sort(part) for part in np.array_split(order, folds)]


def run_crossfit(
    zoo: Any,
    names: Sequence[str],
    has_scores: np.ndarray,
    temperatures: np.ndarray,
    start: str,
    pool: Sequence[str],
    *,
    ev: np.ndarray,
    labels: np.ndarray,
    combine: str,
    max_steps: int,
    memory_budget: int,
    folds: int = 5,
    seed: int = 0,
    scratch_dir: str | os.PathLike | None = None,
) -> CrossFitOutcome:
    """Cross-fitted greedy selection over the examples ``ev`` (see CrossFitOutcome): fold f
    of :func:`cross_fit_folds` is held out, :func:`run_selection` chooses on the rest."""
    parts = cross_fit_folds(len(ev), folds, seed)
    frames, fold_acc, selection_acc = [], [], []
    kept_by_fold: list[list[str]] = []
    correct = np.zeros(len(ev), dtype=bool)
    start_correct = np.zeros(len(ev), dtype=bool)
    excluded: list[str] = []
    staged = False
    for f, held in enumerate(parts):
        train = np.setdiff1d(np.arange(len(ev)), held, assume_unique=True)
        outcome = run_selection(
            zoo,
            names,
            has_scores,
            temperatures,
            start,
            pool,
            cal=ev[train],
            ev=ev[held],
            labels=labels,
            combine=combine,
            max_steps=max_steps,
            memory_budget=memory_budget,
            scratch_dir=scratch_dir,
        )
        frame = outcome.table.rename(
            columns={"calibration_acc": "selection_acc", "evaluation_acc": "held_out_acc"}
        )
        frame.insert(0, "n_held_out", len(held))
        frame.insert(0, "fold", f)
        frames.append(frame)
        fold_acc.append(outcome.evaluation_acc)
        selection_acc.append(outcome.calibration_acc)
        kept_by_fold.append(outcome.members)
        correct[held] = outcome.evaluation_correct
        start_correct[held] = outcome.start_evaluation_correct
        excluded, staged = outcome.excluded, staged or outcome.staged
    counts: dict[str, int] = {}
    for members in kept_by_fold:
        for name in dict.fromkeys(members):
            counts[name] = counts.get(name, 0) + 1
    order = {name: i for i, name in enumerate(names)}
    member_folds = dict(sorted(counts.items(), key=lambda kv: (-kv[1], order[kv[0]])))
    return CrossFitOutcome(
        table=pd.concat(frames, ignore_index=True)[GREEDY_FOLDS_COLUMNS],
        folds=folds,
        members=[m for m, c in member_folds.items() if c > folds / 2],
        member_folds=member_folds,
        calibration_acc=float(np.mean(selection_acc)),
        evaluation_acc=float(correct.mean()),
        fold_evaluation_acc=[float(a) for a in fold_acc],
        start_evaluation_acc=float(start_correct.mean()),
        excluded=excluded,
        staged=staged,
        evaluation_correct=correct,
        start_evaluation_correct=start_correct,
    )
