"""Greedy forward ensemble selection over a zoo (paper Sec. 4.5, Fig. 5; docs/design.md sec. 3).

Orchestration only; the selection rule is ``measure.ensemble.greedy_forward_selection``.
Reads: the start model and the pool once on the calibration split (the only split that
chooses), then the model added at each step once on the evaluation split, where the
evaluation accuracy of every prefix is reported (never used to choose). The greedy.csv table
has one row per step: step 0 is the start model alone.

Memory: the selection scores every candidate at every step on the calibration rows. When
every candidate's calibrated calibration rows (float32, n_cal x C: 40 MB per model at
10,000 x 1,000) fit ``memory_budget`` they are held in memory. A larger pool is held
*lazily* (``_LazyCandidate``): each candidate's rows are read and calibrated once, and only
what the pruned selection needs is kept — per row the softmax maximum and sum (so any entry
can be recomputed bit for bit, ``measure.fused.calibrated_entries``), the top-1 class, value
and second value, and a cache of the last entries read (one kept for the running sum's top
class, 12 more in turn); the entries a step needs beyond those are read back from the zoo.
Results are identical either way (tested), in about 170 bytes per row and candidate (the
selection's own top-1/second copy included) instead of 4 x C, with nothing written to disk;
this is not counted against ``memory_budget`` (1,000 candidates x 10,000 rows: ~1.6 GiB).
With a calibration split (not in the cross-fitted selection), what ``memory_budget``
leaves beside the running sums and that state keeps each candidate's stored scores on the
rows the candidates disagree on most (``KeptRows``, ``disagreement_order``): the entries
the pruning asks for fall mostly there, and they are then recomputed from memory instead of
read back through a map of the file (full size, 82 x 10,000 x 1,000: 2,360 rows a
candidate, ~82 % of the entries; about half the selection's page faults).
The evaluation rows of the model added at each step are calibrated and added in row blocks,
never held whole.
"""

from __future__ import annotations

import dataclasses
import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from zoolens.errors import ZoolensError
from zoolens.measure.ensemble import greedy_forward_selection
from zoolens.measure.fused import block_rows, calibrated_entries, calibrated_inputs
from zoolens.measure.topk import top1_and_second
from zoolens.progress import info, progress_bar, track
from zoolens.study.tables import TABLE_COLUMNS
from zoolens.study.threads import default_threads, model_workers


@dataclass
class GreedyOutcome:
    table: pd.DataFrame
    members: list[str]  # the kept prefix (with repeats)
    calibration_acc: float
    evaluation_acc: float
    start_evaluation_acc: float
    excluded: list[str]  # pool models without probabilities
    # the pool exceeded the memory budget: candidates held lazily (_LazyCandidate)
    recomputed: bool = False
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

    def __init__(
        self, zoo: Any, name: str, temperature: float, combine: str, parallel_map: Any = None
    ):
        self.zoo, self.name, self.temperature, self.combine = zoo, name, temperature, combine
        self.parallel_map = parallel_map or map  # runs row blocks side by side

    def stored(self, rows: Any) -> np.ndarray:
        return self.zoo.stored_scores(self.name, rows=rows)

    def stored_entries(self, rows: np.ndarray, classes: np.ndarray) -> np.ndarray:
        return self.zoo.stored_entries(self.name, rows, classes)

    def __getitem__(self, rows: Any) -> np.ndarray:
        return calibrated_inputs(self.stored(rows), self.temperature, self.combine)

    def add_rows(self, total: np.ndarray, rows: np.ndarray) -> None:
        """``total += self[rows]``, calibrated in row blocks (multiples of
        ``calibrated_inputs``' own block, so the values are those of ``self[rows]``), the
        blocks side by side on ``parallel_map`` (each adds into its own rows)."""
        step = _ADD_BLOCK_ROWS * block_rows(total.shape[1])

        def add(lo: int) -> None:
            total[lo : lo + step] += self[rows[lo : lo + step]]

        for _ in self.parallel_map(add, range(0, len(rows), step)):
            pass


_ADD_BLOCK_ROWS = 8  # calibrated_inputs blocks per block of added rows
_GROUPED_MIN_ENTRIES = 1 << 22  # calibration entries per candidate for grouped scoring
_CACHE_SLOTS = 12  # entries a lazy candidate remembers per row
# A lazy candidate's state per calibration row (maximum, sum, top-1 and second, the entry
# caches, the scorer's copy of top-1 and second): about this many bytes.
_LAZY_ROW_BYTES = 170


@dataclass(frozen=True)
class KeptRows:
    """Which calibration rows lazy candidates keep their stored scores for (module doc):
    ``order``, the calibration rows (positions) from the most worth keeping, ``rank`` each
    row's place in it, and ``bytes`` each candidate may spend on them."""

    order: np.ndarray
    rank: np.ndarray
    bytes: int

    @classmethod
    def from_order(cls, order: np.ndarray, per_candidate_bytes: int) -> KeptRows:
        """``order``: a permutation of the calibration rows' positions (anything else would
        make a row serve another row's scores, so it is refused)."""
        order = np.asarray(order, dtype=np.int64).reshape(-1)
        n = len(order)
        if n and (order.min() < 0 or order.max() >= n or np.bincount(order, minlength=n).max() > 1):
            raise ZoolensError("greedy: the kept rows' order is not a permutation of the rows")
        rank = np.empty(n, dtype=np.int64)
        rank[order] = np.arange(n)
        return cls(order=order, rank=rank, bytes=max(0, int(per_candidate_bytes)))

    def count(self, row_bytes: int) -> int:
        """How many of the first rows of the order a candidate keeps."""
        return min(len(self.rank), self.bytes // max(1, row_bytes))


_ORDER_BLOCK = 1 << 22  # predictions sorted at once by disagreement_order (bounded memory)


def disagreement_order(
    predictions: np.ndarray,
    columns: np.ndarray | None = None,
    models: np.ndarray | None = None,
) -> np.ndarray:
    """Examples (columns of the (M, N) class ids ``predictions``, or the listed ``columns``)
    ordered by how much the models (rows, or the listed ``models``) disagree on them, most
    first: by the count of the most frequent prediction, smallest first, ties in the
    columns' order. Positions into ``columns`` are returned. The pruned selection's reads
    fall on such rows (the running sum and a candidate agree on the rest; at 82 candidates
    x 10,000 rows, the 3,000 rows with the most disagreement held 88 % of the entries
    read). Computed a block of columns at a time (bounded memory at thousands of models).
    """
    cols = np.arange(predictions.shape[1]) if columns is None else np.asarray(columns)
    which = np.arange(predictions.shape[0]) if models is None else np.asarray(models)
    num_models = len(which)
    most_frequent = np.zeros(len(cols), dtype=np.int64)
    if num_models:
        position = np.arange(num_models)[:, None]
        step = max(1, _ORDER_BLOCK // num_models)
        for lo in range(0, len(cols), step):
            ordered = np.sort(predictions[np.ix_(which, cols[lo : lo + step])], axis=0)
            new_run = np.ones(ordered.shape, dtype=bool)
            new_run[1:] = ordered[1:] != ordered[:-1]
            run_start = np.maximum.accumulate(np.where(new_run, position, 0), axis=0)
            most_frequent[lo : lo + step] = (position - run_start + 1).max(axis=0)
    return np.argsort(most_frequent, kind="stable")


class _LazyCandidate:
    """A candidate's calibrated calibration rows without holding them (module doc).

    Behaves like the (n_cal, C) float32 array ``source[cal]`` for what
    ``measure.ensemble.greedy_forward_selection`` asks of a candidate: ``take`` (flat
    entries), row indexing, ``np.asarray`` (the whole array, for the running sum) and
    ``top1_and_second`` (the pruning's per-row precompute). Every value is recomputed
    from the stored scores with the row's softmax maximum and sum, bit for bit the value
    the whole array holds.
    """

    def __init__(
        self,
        source: _CalibratedRows,
        cal: np.ndarray,
        num_classes: int,
        hint: np.ndarray | None = None,
        scratch: np.ndarray | None = None,
        kept: KeptRows | None = None,
    ):
        """``scratch``: an optional float32 array of at least n_cal x C entries that
        receives the calibrated rows meanwhile (:func:`lazy_pool` reuses one per thread:
        a fresh block per candidate made the kernel zero ~40 MB of pages each time).
        ``kept``: the rows whose stored scores the candidate keeps, so that entries on
        them are recomputed from memory instead of read back from the zoo."""
        self.source, self.cal = source, cal
        n = len(cal)
        self.shape = (n, num_classes)
        self.dtype = np.dtype(np.float32)
        self.row_max, self.row_total = np.empty(n), np.empty(n)
        out = None
        if scratch is not None and scratch.size >= n * num_classes:
            out = scratch.reshape(-1)[: n * num_classes].reshape(n, num_classes)
        stored = source.stored(cal)
        # The kept rows' stored scores (the first `count` rows of kept.rank's order): an
        # entry on row r is kept_stored[rank[r]] when rank[r] < count.
        self.kept_rank: np.ndarray | None = None
        self.kept_count = 0
        self.kept_stored: np.ndarray | None = None
        count = 0 if kept is None else kept.count(stored.dtype.itemsize * num_classes)
        if count:
            assert kept is not None  # count > 0 only with kept rows
            self.kept_rank, self.kept_count = kept.rank, count
            self.kept_stored = stored[kept.order[:count]]
        rows = calibrated_inputs(
            stored,
            source.temperature,
            source.combine,
            out=out,
            row_stats=(self.row_max, self.row_total),
        )
        del stored  # (the kept rows are a copy)
        self.top2 = top1_and_second(rows)
        # The last _CACHE_SLOTS entries read on each row (replaced in turn): the pruning asks
        # each step for the entry at the running sum's top class (every row) and at its few
        # largest classes (rows left open), which change little from step to step.
        self.cached_class = np.full((n, _CACHE_SLOTS), -1, dtype=np.int32)
        self.cached_value = np.zeros((n, _CACHE_SLOTS), dtype=np.float32)
        self.next_slot = np.zeros(n, dtype=np.int64)
        # and, looked up first, the entry of the last one-entry-per-row request
        self.primary_class = np.full(n, -1, dtype=np.int64)
        self.primary_value = np.zeros(n, dtype=np.float32)
        if hint is not None:  # the classes the first step will ask for (the start's top-1)
            self.primary_class[:] = hint
            self.primary_value[:] = rows[np.arange(n), hint]

    def top1_and_second(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.top2

    def _kept_slots(self, rows: np.ndarray) -> np.ndarray | None:
        """Each row's place in ``kept_stored`` (-1: not kept), or None when none is kept."""
        if self.kept_rank is None:
            return None
        slot = self.kept_rank[rows]
        slot[slot >= self.kept_count] = -1
        return slot if (slot >= 0).any() else None

    def _stored(self, rows: np.ndarray, classes: np.ndarray | None = None) -> np.ndarray:
        """Stored scores of the rows ``rows`` (positions in the calibration rows; whole rows
        when ``classes`` is None, else the entries (rows[j], classes[j])): kept rows from
        memory, the others read from the zoo."""

        def read(part: Any) -> np.ndarray:
            if classes is None:
                return self.source.stored(self.cal[rows[part]])
            return self.source.stored_entries(self.cal[rows[part]], classes[part])

        slot = self._kept_slots(rows)
        if slot is None:
            return read(slice(None))
        assert self.kept_stored is not None  # slots exist only with kept rows
        inside = slot >= 0
        kept = (
            self.kept_stored[slot[inside]]
            if classes is None
            else self.kept_stored[slot[inside], classes[inside]]
        )
        out = np.empty((len(rows), *kept.shape[1:]), dtype=kept.dtype)
        out[inside] = kept
        outside = np.flatnonzero(~inside)
        if len(outside):
            out[outside] = read(outside)
        return out

    def _entries(self, rows: np.ndarray, classes: np.ndarray) -> np.ndarray:
        """Values at (rows[j], classes[j]) (positions in the calibration rows), recomputed."""
        return calibrated_entries(
            self._stored(rows, classes),
            self.row_max[rows],
            self.row_total[rows],
            self.source.temperature,
            self.source.combine,
        )

    def take(self, flat_index: Any) -> np.ndarray:
        flat = np.asarray(flat_index, dtype=np.int64)
        rows, classes = np.divmod(flat.reshape(-1), self.shape[1])
        out = np.empty(len(rows), dtype=np.float32)
        hit = self.primary_class[rows] == classes
        out[hit] = self.primary_value[rows[hit]]
        rest = np.flatnonzero(~hit)
        if len(rest):
            rest_rows, rest_classes = rows[rest], classes[rest]
            match = self.cached_class[rest_rows] == rest_classes[:, None]
            found = match.any(axis=1)
            out[rest[found]] = self.cached_value[rest_rows[found], match[found].argmax(axis=1)]
            miss = rest[~found]
            if len(miss):
                miss_rows, miss_classes = rows[miss], classes[miss]
                # one read per distinct (row, class): a request may repeat an entry
                _, first, inverse = np.unique(
                    miss_rows * self.shape[1] + miss_classes,
                    return_index=True,
                    return_inverse=True,
                )
                values = self._entries(miss_rows[first], miss_classes[first])
                out[miss] = values[inverse]
                self._remember(miss_rows[first], miss_classes[first], values)
        if len(rows) and np.all(rows[1:] > rows[:-1]):
            # one entry per row: the running sum's top class, asked again next step
            self.primary_class[rows] = classes
            self.primary_value[rows] = out
        return out.reshape(flat.shape)

    def _remember(self, rows: np.ndarray, classes: np.ndarray, values: np.ndarray) -> None:
        """Store entries (rows sorted, (row, class) distinct) in each row's next slots; a
        row given more entries than slots keeps its last ones."""
        starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
        counts = np.diff(np.r_[starts, len(rows)])
        rank = np.arange(len(rows)) - np.repeat(starts, counts)
        keep = rank >= np.repeat(counts, counts) - _CACHE_SLOTS
        rows, classes, values, rank = rows[keep], classes[keep], values[keep], rank[keep]
        slot = (self.next_slot[rows] + rank) % _CACHE_SLOTS
        self.cached_class[rows, slot] = classes
        self.cached_value[rows, slot] = values
        unique_rows, per_row = np.unique(rows, return_counts=True)
        self.next_slot[unique_rows] += per_row  # (at most _CACHE_SLOTS: those kept)

    def __getitem__(self, rows: Any) -> np.ndarray:
        index = np.arange(self.shape[0])[rows]
        if np.ndim(index) == 0:  # one row, as an array gives it: (C,)
            return self[np.array([index])][0]
        return calibrated_entries(
            self._stored(index),
            self.row_max[index, None],
            self.row_total[index, None],
            self.source.temperature,
            self.source.combine,
        )

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        if dtype is not None and np.dtype(dtype) == np.float64:
            # the running sum's start: the rows added to zeros, in parallel blocks
            whole = np.zeros(self.shape)
            self.source.add_rows(whole, self.cal)
            return whole
        whole = self.source[self.cal]
        return whole if dtype is None else whole.astype(dtype, copy=False)

    def add_to(self, total: np.ndarray) -> None:
        """``total += self`` (the running sum on the calibration rows), in parallel blocks."""
        self.source.add_rows(total, self.cal)


class _LazyRows:
    """A pool model as the selection sees it: its calibration rows as a
    :class:`_LazyCandidate`, any other rows (the evaluation split) read from the zoo."""

    def __init__(self, source: _CalibratedRows, candidate: _LazyCandidate):
        self.source, self.candidate = source, candidate

    def __getitem__(self, rows: Any) -> Any:
        cal = self.candidate.cal
        if rows is cal or (
            isinstance(rows, np.ndarray) and rows.shape == cal.shape and np.array_equal(rows, cal)
        ):
            return self.candidate
        return self.source[rows]

    def add_rows(self, total: np.ndarray, rows: np.ndarray) -> None:
        self.source.add_rows(total, rows)


def lazy_pool(
    models: Sequence[_CalibratedRows],
    cal: np.ndarray,
    num_classes: int,
    parallel_map: Any = None,
    hint: np.ndarray | None = None,
    kept: KeptRows | None = None,
) -> list[_LazyRows]:
    """Each model's :class:`_LazyCandidate` (read and calibrated once, models side by side
    on ``parallel_map``, a ``study.threads.model_workers`` pool's map), wrapped for the
    selection. ``hint``: (n_cal,) classes whose entries each candidate keeps from the start
    (the start model's top-1: what the first step asks for). ``kept``: the rows whose
    stored scores each candidate keeps (none when None)."""

    scratch: dict[int, np.ndarray] = {}  # per thread: the calibrated rows while reading

    def build(model: _CalibratedRows) -> _LazyRows:
        rows = scratch.get(threading.get_ident())
        if rows is None:
            rows = scratch[threading.get_ident()] = np.empty(len(cal) * num_classes, np.float32)
        return _LazyRows(model, _LazyCandidate(model, cal, num_classes, hint, rows, kept))

    return list(
        track(
            (parallel_map or map)(build, models),
            total=len(models),
            description="greedy: reading candidates",
            unit="models",
        )
    )


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
    budget: Any = None,
    evaluate: bool = True,
    row_order: Callable[[np.ndarray], np.ndarray] | None = None,
) -> GreedyOutcome:
    """Choose on the calibration split, report on the evaluation split; see module doc.

    ``evaluate=False``: the evaluation rows are not read here; the outcome's evaluation
    accuracies are NaN until :func:`with_evaluation` adds each step's correctness on them
    (``analyze`` takes it from its evaluation pass, ``study.stream``, which has every
    model's calibrated evaluation rows in hand).

    Decision-only models in the pool are left out (and returned in ``excluded``); a pool left
    empty, or a decision-only start, is a ZoolensError. A pool whose calibration rows exceed
    ``memory_budget`` bytes is held lazily (module doc) with identical results. ``budget``
    (a ``study.budget.Budget``): only ensembles whose summed cost fits; pool models without
    a cost are left out (the start must have one and fit). ``row_order(candidates)``: the
    calibration rows (positions in ``cal``) from the most to the least worth keeping for
    the candidates (their indices in ``names``), asked for when the pool is held lazily and
    the budget has room for a row (:func:`disagreement_order`); the candidates keep their
    stored scores on the first rows, as many as the memory budget leaves room for (speed
    only: the same results).
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
        + (
            " (candidates' calibration rows recomputed on demand: they exceed the memory budget)"
            if stage
            else ""
        )
    )
    # Zoo order, so that the tie rule's "lowest index" means the zoo's index whatever order
    # the user listed the pool in (docs/design.md sec. 3).
    used = sorted(set([start] + candidates), key=index.__getitem__)
    models: list[Any] = [
        _CalibratedRows(zoo, name, float(temperatures[index[name]]), combine) for name in used
    ]
    pool_index = [used.index(name) for name in candidates]
    select: dict[str, Any] = dict(
        labels=labels,
        start=used.index(start),
        pool=pool_index,
        max_steps=max_steps,
        calibration_index=cal,
        evaluation_index=ev,
    )
    if budget is not None:
        select.update(costs=budget.costs[[index[name] for name in used]], budget=budget.limits)
    if not evaluate:
        select["evaluation_index"] = None
    with (
        model_workers() as workers,
        progress_bar(max_steps, "greedy selection", "steps") as advance,
    ):
        for model in models:
            model.parallel_map = workers.map
        select["on_step"] = advance
        # Candidates scored in groups side by side, one per thread (the same counts), where
        # a candidate's rows are large enough for the threads to outweigh the per-candidate
        # Python work they contend for (the GIL): measured 8.7 -> 7.7 s at 82 candidates x
        # 10,000 rows x 1,000 classes, 26.8 -> 32.1 s at 1,000 x 2,000 x 1,000.
        if len(cal) * num_classes >= _GROUPED_MIN_ENTRIES:
            select.update(groups=default_threads(), parallel_map=workers.map)
        if stage:
            hint = np.asarray(models[used.index(start)][cal]).argmax(axis=1)
            kept_rows = None
            if row_order is not None:
                # What the budget leaves beside the running sums, the scoring block and
                # the candidates' per-row state.
                room = (
                    memory_budget
                    - memory_need(0, len(cal), len(ev), num_classes)
                    - _LAZY_ROW_BYTES * len(cal) * len(pool_index)
                )
                per_candidate = room // len(pool_index)
                # (the order is worked out only when a row fits: stored scores take at
                # least 2 bytes an entry, float16)
                if per_candidate >= 2 * num_classes:
                    order = row_order(np.array([index[used[k]] for k in pool_index]))
                    kept_rows = KeptRows.from_order(order, per_candidate)
            lazy = lazy_pool(
                [models[k] for k in pool_index], cal, num_classes, workers.map, hint, kept_rows
            )
            for k, lazy_model in zip(pool_index, lazy):
                models[k] = lazy_model
        result = greedy_forward_selection(models, **select)
    chosen = [used[k] for k in result.members]
    steps = len(chosen)
    kept = int(result.kept)
    table = pd.DataFrame(
        {
            "start": start,
            "step": np.arange(steps),
            "added": chosen,
            "members": [";".join(chosen[: s + 1]) for s in range(steps)],
            "calibration_acc": np.asarray(result.calibration_accuracy, dtype=np.float64),
            "evaluation_acc": np.nan,
            "kept": np.arange(steps) < kept,
        }
    )[TABLE_COLUMNS["greedy"]]
    outcome = GreedyOutcome(
        table=table,
        members=chosen[:kept],
        calibration_acc=float(table["calibration_acc"].iloc[kept - 1]),
        evaluation_acc=math.nan,
        start_evaluation_acc=math.nan,
        excluded=excluded,
        recomputed=stage,
    )
    if result.evaluation_correct is None:  # evaluate=False
        return outcome
    return with_evaluation(outcome, result.evaluation_correct)


def step_members(outcome: GreedyOutcome) -> list[str]:
    """The model added at each step (step 0: the start), repeats included: the order in which
    the evaluation rows' running sum adds them (:func:`with_evaluation`)."""
    return [str(name) for name in outcome.table["added"]]


def with_evaluation(outcome: GreedyOutcome, correct: np.ndarray) -> GreedyOutcome:
    """``outcome`` with its evaluation columns: ``correct`` (steps, N_eval) bool, whether the
    ensemble of each prefix (argmax of the float64 running sum of the members' calibrated
    evaluation rows, lowest index on ties) gets each evaluation example right."""
    correct = np.asarray(correct, dtype=bool)
    if correct.shape[0] != len(outcome.table):
        raise ValueError(f"{correct.shape[0]} steps of correctness for {len(outcome.table)}")
    kept = int(outcome.table["kept"].sum())
    evaluation = correct.mean(axis=1, dtype=np.float64)
    table = outcome.table.copy()
    table["evaluation_acc"] = evaluation
    return dataclasses.replace(
        outcome,
        table=table,
        evaluation_acc=float(evaluation[kept - 1]),
        start_evaluation_acc=float(evaluation[0]),
        evaluation_correct=correct[kept - 1],
        start_evaluation_correct=correct[0],
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
    recomputed: bool = False
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


@dataclass(frozen=True)
class GreedySkipped:
    """Greedy selection did not run (``analyze``'s defaults: a decision-only base, a start
    outside the budget); ``reason`` goes to summary.json."""

    reason: str


# What the greedy stage returns: a selection on the calibration split, a cross-fitted one,
# or the reason none ran.
Selection = GreedyOutcome | CrossFitOutcome | GreedySkipped


def run_crossfit(
    select: Callable[..., GreedyOutcome],
    names: Sequence[str],
    ev: np.ndarray,
    *,
    folds: int = 5,
    seed: int = 0,
) -> CrossFitOutcome:
    """Cross-fitted greedy selection over the examples ``ev`` (see CrossFitOutcome): fold f
    of :func:`cross_fit_folds` is held out, ``select(cal=rows, ev=held_out_rows)`` chooses
    on the rest (:func:`run_selection` with everything else fixed: zoo, start, pool,
    labels, combine, steps, memory budget). ``names``: the zoo's models, in zoo order."""
    parts = cross_fit_folds(len(ev), folds, seed)
    frames, fold_acc, selection_acc = [], [], []
    kept_by_fold: list[list[str]] = []
    correct = np.zeros(len(ev), dtype=bool)
    start_correct = np.zeros(len(ev), dtype=bool)
    excluded: list[str] = []
    recomputed = False
    for f, held in enumerate(parts):
        train = np.setdiff1d(np.arange(len(ev)), held, assume_unique=True)
        outcome = select(cal=ev[train], ev=ev[held])
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
        excluded, recomputed = outcome.excluded, recomputed or outcome.recomputed
    counts: dict[str, int] = {}
    for members in kept_by_fold:
        for name in dict.fromkeys(members):
            counts[name] = counts.get(name, 0) + 1
    order = {name: i for i, name in enumerate(names)}
    member_folds = dict(sorted(counts.items(), key=lambda kv: (-kv[1], order[kv[0]])))
    return CrossFitOutcome(
        table=pd.concat(frames, ignore_index=True)[TABLE_COLUMNS["greedy_folds"]],
        folds=folds,
        members=[m for m, c in member_folds.items() if c > folds / 2],
        member_folds=member_folds,
        calibration_acc=float(np.mean(selection_acc)),
        evaluation_acc=float(correct.mean()),
        fold_evaluation_acc=[float(a) for a in fold_acc],
        start_evaluation_acc=float(start_correct.mean()),
        excluded=excluded,
        recomputed=recomputed,
        evaluation_correct=correct,
        start_evaluation_correct=start_correct,
    )
