"""The evaluation pass of ``analyze``: every model's scores read once, in example chunks.

Per chunk of evaluation examples, each scored model's scores are read (``Zoo.scores``), its
NLL and top-1 confidence before and after temperature scaling are taken, and its calibrated
probabilities (or calibrated logits) fill one (models, chunk, classes) float32 block. From
that block: every pair ensemble's predictions (``measure.topk``: exact top-k pruning, or the
full-row reference), the all-model ensemble, the interpolation curves; from the predictions:
majority vote. Per-model counts accumulate across chunks and each scored pair's ensemble
correctness is kept as one bit an example, so memory is bounded by the chunk and those
bits, never by a float per example. After the chunks, ``study.pairblocks`` takes the pairs'
counts, intervals and resampled sums a block of pairs at a time. With base-only pairs the
block is made a group of models at a time (``_grouped_block``), so memory is bounded by the
group too, never by the number of models, and chunks stay long at thousands of models.

Paper: Gontijo-Lopes et al. (2021) Sec. 4.2-4.3 (ensembles, gain, conversion; Fig. 2, 10),
Fig. 11 (interpolation).
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from zoolens.measure import topk
from zoolens.measure.agreement import correctness
from zoolens.measure.calibration import negative_log_likelihood, top1_confidence
from zoolens.measure.fused import fused_rows
from zoolens.measure.ensemble import (
    EnsembleCounts,
    all_pair_ensemble_correct,
    class_weights,
    ensemble_inputs,
    majority_vote,
    weighted_pair_predictions,
)
from zoolens.progress import progress_bar
from zoolens.study.bootstrap import Resamples
from zoolens.study.pairblocks import (
    PairLayout,
    ResampledSums,
    pack_columns,
    pair_statistics,
)
from zoolens.study.distributed import run_chunks_ray, worker_zoo
from zoolens.study.inputs import Calibration, ZooInputs
from zoolens.study.threads import model_workers


@dataclass
class InterpolationSpec:
    """One curve (paper Fig. 11): pair (a, b) (zoo indices, both scored); mode "weight" uses
    the scalar weight w of model a, mode "class_aware" the per-class weights
    ``measure.ensemble.class_weights(w, mask)``."""

    a: int
    b: int
    mode: str
    weights: Sequence[float]
    mask: np.ndarray | None = None
    correct: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.correct = np.zeros(len(self.weights), dtype=np.int64)


@dataclass
class EvalPass:
    """Everything the evaluation pass accumulates (pair arrays in the order of the measured
    pairs, ``ZooInputs.pair_a`` / ``pair_b``: np.triu_indices(M, 1) or the base's pairs)."""

    num_models: int
    num_examples: int
    nll_before: np.ndarray
    nll_after: np.ndarray
    confidence_before: np.ndarray  # (M, N_eval) float32, NaN rows for decision-only models
    confidence_after: np.ndarray
    pair_scored: np.ndarray  # (P,) bool: both members have probabilities
    # (N_eval, ceil(P_scored / 8)) uint8: each scored pair's ensemble right, one bit per pair
    # and example, packed along the pairs (study.pairblocks); None without scored pairs
    ensemble_bits: np.ndarray | None
    # Filled after the chunks from ensemble_bits and R (study.pairblocks.pair_statistics):
    counts: EnsembleCounts | None = None  # per scored pair (pair_positions order)
    ensemble_only: np.ndarray | None = None  # (P,) McNemar: ensemble right, best wrong
    best_only: np.ndarray | None = None  # (P,) McNemar: best member right, ensemble wrong
    sums: ResampledSums | None = None  # the kept resampled sums, frozen
    # pairs.csv's interval columns (study.pairblocks.INTERVAL_COLUMNS), (P,) each
    pair_intervals: dict[str, np.ndarray] = field(default_factory=dict)
    all_models_right: int = 0
    majority_right: int = 0
    interpolation: list[InterpolationSpec] = field(default_factory=list)
    prune: topk.PruneStats = field(default_factory=topk.PruneStats)
    # (steps, N_eval) bool: each greedy prefix right (EvalPlan.greedy_steps), or None
    greedy_correct: np.ndarray | None = None
    chunk_seconds: list[float] = field(default_factory=list)  # eval_chunk wall, chunk order
    pair_block_seconds: list[float] = field(default_factory=list)  # pair blocks', in order


def pair_positions(num_models: int, rows: np.ndarray) -> np.ndarray:
    """Positions, in ``np.triu_indices(num_models, 1)`` order, of the pairs among ``rows``.

    ``rows`` is a sorted subset of model indices; its pairs (i < j) come out in the same
    order as ``np.triu_indices(len(rows), 1)`` (the order of the top-k kernel's output).
    """
    i, j = np.triu_indices(len(rows), 1)
    a, b = rows[i], rows[j]
    return (a * num_models - a * (a + 1) // 2 + (b - a - 1)).astype(np.int64)


@dataclass(frozen=True)
class EvalPlan:
    """How the evaluation pass runs: ``combine`` ("probs" or "logits"), examples per chunk,
    the shared bootstrap resamples, the interpolation curves known before the pass and the
    pair kernel (exact top-k pruning or full rows)."""

    combine: str
    chunk_size: int
    resamples: Resamples
    interpolation: Sequence[InterpolationSpec] = ()
    exact_topk: bool = True
    threads: int | None = None  # model threads (None: the CPU cores; see model_workers)
    ray: bool = False  # chunks as Ray tasks (study.distributed)
    ray_address: str | None = None
    # A greedy selection made before the pass: the zoo index of the model added at each
    # step (start first, repeats included); the pass reports each prefix on its rows.
    greedy_steps: tuple[int, ...] = ()
    # Base-only pairs: the chunk's calibrated rows are made this many models at a time
    # (``_grouped_block``) instead of all at once; None: all at once (every pair needs it).
    model_group: int | None = None
    # Pairs per block of the pairs' bootstrap after the chunks (study.pairblocks).
    pair_block: int = 4096


@dataclass
class ChunkContext:
    """What one chunk of the evaluation pass needs: picklable (a Ray task gets it once
    through the object store); ``zoo`` is dropped on pickling and reopened from
    ``zoo_path`` in the worker."""

    zoo: Any
    zoo_path: str
    names: list[str]
    scored: np.ndarray
    temperatures: np.ndarray
    ev: np.ndarray
    labels: np.ndarray
    correct: np.ndarray  # (M, N_eval) bool
    predictions_ev: np.ndarray  # (M, N_eval)
    a_idx: np.ndarray  # the measured pairs (ZooInputs.pair_a / pair_b)
    b_idx: np.ndarray
    scored_pairs: np.ndarray  # positions among them of the pairs with two scored members
    # those pairs as rows of the calibrated block, for the pair kernel; None: every pair
    # of scored models (the kernel's own np.triu_indices order, the same pairs)
    kernel_pairs: tuple[np.ndarray, np.ndarray] | None
    best: np.ndarray
    num_classes: int
    combine: str
    exact_topk: bool
    interpolation: list[InterpolationSpec]
    greedy_steps: tuple[int, ...]  # EvalPlan.greedy_steps
    model_group: int | None = None  # EvalPlan.model_group (base-only pairs)
    anchor: int = -1  # base-only pairs: the model in every pair (zoo index)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["zoo"] = None
        for buffer in ("_block", "_kept", "_predictions"):  # per-process scratch
            state.pop(buffer, None)
        return state

    def block(
        self, num_models: int, rows: int, num_classes: int, which: str = "_block"
    ) -> np.ndarray:
        """A C-contiguous (num_models, rows, num_classes) float32 array for one chunk's
        calibrated block, reusing the previous chunk's memory: a fresh ~0.5 GB block per
        chunk spent most of the pass in page faults (the kernel zeroing and mapping new
        pages), more so on virtual machines whose host backs guest memory lazily.
        ``which``: the buffer's name (a grouped chunk keeps a second one, ``_kept``)."""
        return self.buffer(which, (num_models, rows, num_classes), np.float32)

    def buffer(self, which: str, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        """A C-contiguous array of ``shape`` and ``dtype`` reusing the previous chunk's
        memory under the name ``which`` (as :meth:`block`)."""
        size = math.prod(shape)
        buffer = self.__dict__.get(which)
        if buffer is None or buffer.dtype != np.dtype(dtype) or buffer.size < size:
            buffer = self.__dict__[which] = np.empty(size, dtype=dtype)
        return buffer[:size].reshape(shape)

    def open_zoo(self) -> Any:
        if self.zoo is None:
            self.zoo = worker_zoo(self.zoo_path)
        return self.zoo


@dataclass
class ChunkResult:
    """One chunk's contribution; :func:`merge_chunk` adds it to the pass in chunk order."""

    start: int
    stop: int
    confidence_before: np.ndarray  # (M, n) float32, NaN rows for decision-only models
    confidence_after: np.ndarray
    nll_sum: np.ndarray  # (2, M)
    nll_rows: np.ndarray  # (M,)
    majority_right: int
    all_models_right: int = 0
    # (n, ceil(P_scored / 8)) uint8: the scored pairs' ensembles right (pack_columns)
    ensemble_bits: np.ndarray | None = None
    interpolation: list[np.ndarray] = field(default_factory=list)
    prune: topk.PruneStats = field(default_factory=topk.PruneStats)
    greedy_correct: np.ndarray | None = None  # (steps, n) bool
    seconds: float = 0.0  # wall time of eval_chunk (the per-block time a cluster scales)


def chunk_context(inputs: ZooInputs, calibration: Calibration, plan: EvalPlan) -> ChunkContext:
    correct = inputs.correct
    num_models = correct.shape[0]
    scored = np.flatnonzero(inputs.has_scores)
    a_idx, b_idx = inputs.pair_a, inputs.pair_b
    scored_pairs = np.flatnonzero(inputs.has_scores[a_idx] & inputs.has_scores[b_idx])
    kernel_pairs = None
    if inputs.pairs != "all":
        # Only the listed pairs are decided (no (M, M, n) temporary); rows of the block.
        row = np.full(num_models, -1, dtype=np.int64)
        row[scored] = np.arange(len(scored))
        kernel_pairs = (row[a_idx[scored_pairs]], row[b_idx[scored_pairs]])
    accuracy = correct.mean(axis=1)
    return ChunkContext(
        zoo=inputs.zoo,
        zoo_path=str(inputs.zoo.path),
        names=list(inputs.names),
        scored=scored,
        temperatures=calibration.temperatures,
        ev=inputs.ev,
        labels=inputs.labels,
        correct=correct,
        predictions_ev=inputs.predictions[:, inputs.ev],
        a_idx=a_idx,
        b_idx=b_idx,
        scored_pairs=scored_pairs,
        kernel_pairs=kernel_pairs,
        # The best member of each pair, the one the paired tests compare the ensemble with
        # (the higher evaluation accuracy; a on ties).
        best=np.where(accuracy[a_idx] >= accuracy[b_idx], a_idx, b_idx),
        num_classes=inputs.num_classes,
        combine=plan.combine,
        exact_topk=plan.exact_topk,
        interpolation=list(plan.interpolation),
        greedy_steps=tuple(plan.greedy_steps),
        # groups only where they split the scored models (study.inputs.block_models' rule)
        model_group=(
            plan.model_group
            if kernel_pairs is not None
            and plan.model_group is not None
            and len(scored) > plan.model_group
            else None
        ),
        anchor=inputs.base_index if kernel_pairs is not None else -1,
    )


def run_eval_pass(inputs: ZooInputs, calibration: Calibration, plan: EvalPlan) -> EvalPass:
    """Stage 3: read every scored model's evaluation rows once, chunk by chunk; see the
    module doc. Each chunk is computed by :func:`eval_chunk` (here, or as a Ray task with
    ``plan.ray``) and added by :func:`merge_chunk` in chunk order, so both give the same
    bits. Then the pairs' counts, bootstrap sums and intervals, block of pairs by block
    (``study.pairblocks``); the kept sums come back frozen (``EvalPass.sums``)."""
    ctx = chunk_context(inputs, calibration, plan)
    num_models, n_eval = inputs.correct.shape
    num_pairs = len(ctx.a_idx)
    pair_scored = np.zeros(num_pairs, dtype=bool)
    pair_scored[ctx.scored_pairs] = True
    with_ensembles = len(ctx.scored) >= 2 and len(ctx.scored_pairs) > 0 and n_eval > 0
    out = EvalPass(
        num_models=num_models,
        num_examples=n_eval,
        nll_before=np.full(num_models, np.nan),
        nll_after=np.full(num_models, np.nan),
        confidence_before=np.full((num_models, n_eval), np.nan, dtype=np.float32),
        confidence_after=np.full((num_models, n_eval), np.nan, dtype=np.float32),
        pair_scored=pair_scored,
        ensemble_bits=(
            np.zeros((n_eval, -(-len(ctx.scored_pairs) // 8)), dtype=np.uint8)
            if with_ensembles
            else None
        ),
        interpolation=list(plan.interpolation),
    )
    nll = np.zeros((2, num_models))
    nll_rows = np.zeros(num_models)
    bounds = [
        (start, min(start + plan.chunk_size, n_eval)) for start in range(0, n_eval, plan.chunk_size)
    ]
    with progress_bar(n_eval, "evaluation pass", "examples") as advance:
        if plan.ray:
            results = run_chunks_ray(chunk_task, ctx, bounds, plan.ray_address)
        else:
            results = _local_chunks(ctx, bounds, plan.threads)
        for result in results:
            merge_chunk(out, nll, nll_rows, result)
            advance(result.stop - result.start)

    with np.errstate(invalid="ignore", divide="ignore"):
        out.nll_before = np.where(nll_rows > 0, nll[0] / nll_rows, np.nan)
        out.nll_after = np.where(nll_rows > 0, nll[1] / nll_rows, np.nan)
    category_masks = inputs.category_masks
    with model_workers(plan.threads) as workers:
        pairs = pair_statistics(
            inputs.correct,
            PairLayout(
                a=ctx.a_idx,
                b=ctx.b_idx,
                scored=ctx.scored_pairs,
                best=ctx.best,
                base=inputs.base_index,
            ),
            out.ensemble_bits,
            plan.resamples,
            (
                np.stack([category_masks[c] for c in category_masks]).astype(np.float32)
                if category_masks
                else None
            ),
            bounds,
            plan.pair_block,
            workers.map,
            run_blocks=(
                functools.partial(
                    run_chunks_ray,
                    address=plan.ray_address,
                    what="pairs' bootstrap",
                    unit="pairs",
                )
                if plan.ray
                else None
            ),
        )
    out.counts, out.sums, out.pair_intervals = pairs.counts, pairs.sums, pairs.intervals
    out.ensemble_only, out.best_only = pairs.ensemble_only, pairs.best_only
    out.pair_block_seconds = pairs.block_seconds
    return out


def _local_chunks(
    ctx: ChunkContext, bounds: Sequence[tuple[int, int]], threads: int | None
) -> Iterator[ChunkResult]:
    with model_workers(threads) as workers:
        for start, stop in bounds:
            yield eval_chunk(ctx, start, stop, workers)


def chunk_task(ctx: ChunkContext, start: int, stop: int) -> ChunkResult:
    """One chunk of the evaluation pass as a Ray task's body (one model thread;
    ``study.distributed.run_chunks_ray``)."""
    with model_workers(1) as workers:
        return eval_chunk(ctx, start, stop, workers)


def merge_chunk(out: EvalPass, nll: np.ndarray, nll_rows: np.ndarray, result: ChunkResult) -> None:
    """Add one chunk's contribution (call in chunk order: float sums then add up in the
    order the chunks come, the same bits locally and on Ray)."""
    columns = slice(result.start, result.stop)
    out.confidence_before[:, columns] = result.confidence_before
    out.confidence_after[:, columns] = result.confidence_after
    nll += result.nll_sum
    nll_rows += result.nll_rows
    out.majority_right += result.majority_right
    out.all_models_right += result.all_models_right
    if result.ensemble_bits is not None and out.ensemble_bits is not None:
        out.ensemble_bits[columns] = result.ensemble_bits
    for spec, correct in zip(out.interpolation, result.interpolation):
        spec.correct += correct
    if result.greedy_correct is not None:
        if out.greedy_correct is None:
            out.greedy_correct = np.zeros((len(result.greedy_correct), out.num_examples), bool)
        out.greedy_correct[:, columns] = result.greedy_correct
    out.prune.entries += result.prune.entries
    out.prune.tier1_open += result.prune.tier1_open
    out.prune.fallbacks += result.prune.fallbacks
    out.prune.per_chunk.extend(result.prune.per_chunk)
    out.chunk_seconds.append(result.seconds)


def eval_chunk(ctx: ChunkContext, start: int, stop: int, workers: Any) -> ChunkResult:
    """Everything the evaluation pass takes from examples ``start:stop`` of the evaluation
    split: per-model fused rows (``measure.fused``), majority vote, the calibrated block's
    pair ensembles, all-model ensemble and interpolation curves, and this chunk's bootstrap
    sums. ``workers``: a ``study.threads.model_workers`` pool (models run in parallel)."""
    began = time.perf_counter()
    result = _eval_chunk(ctx, start, stop, workers)
    result.seconds = time.perf_counter() - began
    return result


def _eval_chunk(ctx: ChunkContext, start: int, stop: int, workers: Any) -> ChunkResult:
    zoo = ctx.open_zoo()
    names, temperatures, combine = ctx.names, ctx.temperatures, ctx.combine
    scored = ctx.scored
    num_models = len(names)
    num_classes = ctx.num_classes
    columns = slice(start, stop)
    rows = ctx.ev[start:stop]
    y = ctx.labels[rows]
    result = ChunkResult(
        start=start,
        stop=stop,
        confidence_before=np.full((num_models, stop - start), np.nan, dtype=np.float32),
        confidence_after=np.full((num_models, stop - start), np.nan, dtype=np.float32),
        nll_sum=np.zeros((2, num_models)),
        nll_rows=np.zeros(num_models),
        majority_right=int(
            correctness(majority_vote(ctx.predictions_ev[:, columns], num_classes), y).sum()
        ),
    )
    if not len(scored):
        return result
    valid = (np.asarray(y) != 0).any(axis=1) if np.ndim(y) == 2 else None
    n_valid = int(valid.sum()) if valid is not None else stop - start

    def model_rows(target: np.ndarray, m: int) -> None:
        """Model m's calibrated rows into ``target`` (n, C), its confidences and NLL."""
        t = float(temperatures[m])
        if valid is None:  # single label: the fused pass (measure.fused)
            fused = fused_rows(
                zoo.stored_scores(names[m], rows=rows), y, t, combine, out=target, predict=False
            )
            result.confidence_before[m] = fused.confidence_before
            result.confidence_after[m] = fused.confidence_after
            if n_valid:
                result.nll_sum[0, m] = fused.nll_before.sum()
                result.nll_sum[1, m] = fused.nll_after.sum()
                result.nll_rows[m] = n_valid
            return
        scores = zoo.scores(names[m], rows=rows)
        result.confidence_before[m] = top1_confidence(scores, 1.0)[0]
        if n_valid:
            result.nll_sum[0, m] = negative_log_likelihood(scores, y, 1.0) * n_valid
            result.nll_sum[1, m] = negative_log_likelihood(scores, y, t) * n_valid
            result.nll_rows[m] = n_valid
        target[...] = ensemble_inputs(scores, t, combine)
        result.confidence_after[m] = (
            target.max(axis=1) if combine == "probs" else top1_confidence(scores, t)[0]
        )

    if ctx.model_group is not None:
        _grouped_block(ctx, result, rows, y, model_rows, workers)
        return result
    block = ctx.block(len(scored), stop - start, num_classes)
    # Models in parallel, one thread each (every model writes its own rows).
    list(workers.map(model_rows, block, scored))
    result.all_models_right = int(correctness(all_model_predictions(block, workers.map), y).sum())
    _prefixes_and_curves(ctx, result, block, {int(m): k for k, m in enumerate(scored)}, y, workers)
    if len(scored) < 2 or not len(ctx.scored_pairs):
        return result
    ens = _pair_ensembles_correct(ctx, result, block, ctx.kernel_pairs, y, workers)
    result.ensemble_bits = pack_columns(ens)
    return result


def _prefixes_and_curves(
    ctx: ChunkContext,
    result: ChunkResult,
    block: np.ndarray,
    slot: dict[int, int],
    y: np.ndarray,
    workers: Any,
) -> None:
    """The greedy prefixes' correctness and the interpolation curves' counts on one chunk,
    from ``block``'s rows (``slot``: zoo index -> row of the block)."""
    if ctx.greedy_steps:
        result.greedy_correct = greedy_prefix_correct(
            block, [slot[m] for m in ctx.greedy_steps], y, workers.map
        )
    result.interpolation = [
        np.zeros(len(spec.weights), dtype=np.int64) for spec in ctx.interpolation
    ]
    accumulate_interpolation(ctx.interpolation, block, slot, y, result.interpolation)


def _pair_ensembles_correct(
    ctx: ChunkContext,
    result: ChunkResult,
    block: np.ndarray,
    pairs: tuple[np.ndarray, np.ndarray] | None,
    y: np.ndarray,
    workers: Any,
) -> np.ndarray:
    """(P, n) bool: is each pair ensemble right (``pairs``: rows of ``block``; None: every
    pair), by the exact top-k kernel or the full-row reference."""
    if not ctx.exact_topk:
        return all_pair_ensemble_correct(block, y, pairs=pairs)
    m = block.shape[0]
    num_pairs = m * (m - 1) // 2 if pairs is None else len(pairs[0])
    pred = topk.all_pair_ensemble_predictions_topk(
        block,
        stats=result.prune,
        parallel_map=workers.map,
        pairs=pairs,
        out=ctx.buffer("_predictions", (num_pairs, block.shape[1]), np.int64),
    )
    return correctness(pred, y)


def _grouped_block(
    ctx: ChunkContext,
    result: ChunkResult,
    rows: np.ndarray,
    y: np.ndarray,
    model_rows: Any,
    workers: Any,
) -> None:
    """The chunk's block work for base-only pairs, ``ctx.model_group`` models at a time.

    Every pair holds the base (``ctx.anchor``), so no step needs all models' rows at once:
    the base's calibrated rows and those the greedy prefixes and interpolation curves use
    are kept (a few models), the others are made group by group into one reused buffer,
    whose slot 0 holds the base. The results are those of the whole block, bit for bit:
    the all-model ensemble is the float32 sum in model order divided by the model count
    (``np.mean`` over the first axis adds the models one after another in that order; the
    division is its own), each pair's ensemble depends on its two rows only, and the greedy
    prefixes and curves read copies of the same rows. Memory: (group + kept) models' rows,
    whatever the number of models, so chunks can stay long at thousands of models.
    """
    scored, num_classes = ctx.scored, ctx.num_classes
    n = len(rows)
    assert ctx.model_group is not None, "a grouped chunk needs its group size"
    group = ctx.model_group
    kept_models = sorted(
        {int(ctx.anchor)} & {int(m) for m in scored}
        | set(ctx.greedy_steps)
        | {int(m) for spec in ctx.interpolation for m in (spec.a, spec.b)}
    )
    kept_slot = {m: k for k, m in enumerate(kept_models)}
    kept = ctx.block(len(kept_models), n, num_classes, "_kept")
    buffer = ctx.block(1 + min(group, len(scored)), n, num_classes)
    has_anchor = ctx.anchor in kept_slot
    # The scored pairs by group: the group of the member that is not the base.
    sp = ctx.scored_pairs
    pair_a, pair_b = ctx.a_idx[sp], ctx.b_idx[sp]
    other = np.where(pair_a == ctx.anchor, pair_b, pair_a)
    position = np.full(len(ctx.names), -1, dtype=np.int64)
    position[scored] = np.arange(len(scored))
    pair_group = position[other] // group
    ens = np.zeros((len(sp), n), dtype=bool)
    if has_anchor:  # the base's rows first: the groups before its own need them
        model_rows(kept[kept_slot[ctx.anchor]], ctx.anchor)
        buffer[0] = kept[kept_slot[ctx.anchor]]
    total = np.zeros((n, num_classes), dtype=np.float32)  # the all-model sum, model order
    for g, lo in enumerate(range(0, len(scored), group)):
        members = scored[lo : lo + group]
        block = buffer[1 : 1 + len(members)]
        # every member's rows but the base's, made once already (slot 0)
        made = [k for k, m in enumerate(members) if not (has_anchor and m == ctx.anchor)]
        list(workers.map(model_rows, [block[k] for k in made], members[made]))
        for k, m in enumerate(members):
            if has_anchor and m == ctx.anchor:
                total += buffer[0]
                continue
            total += block[k]
            if int(m) in kept_slot:
                kept[kept_slot[int(m)]] = block[k]
        mine = np.flatnonzero(pair_group == g)
        if not len(mine):
            continue
        assert has_anchor, "base-only pairs need the base's rows"
        slot = np.zeros(len(ctx.names), dtype=np.int64)  # the base: slot 0
        slot[members] = 1 + np.arange(len(members))
        slot[ctx.anchor] = 0
        pairs = (slot[pair_a[mine]], slot[pair_b[mine]])
        ens[mine] = _pair_ensembles_correct(
            ctx, result, buffer[: 1 + len(members)], pairs, y, workers
        )
    mean = np.true_divide(total, np.intp(len(scored)), out=total, casting="unsafe")
    result.all_models_right = int(correctness(mean.argmax(axis=1), y).sum())
    _prefixes_and_curves(ctx, result, kept, kept_slot, y, workers)
    if len(scored) < 2 or not len(sp):
        return
    result.ensemble_bits = pack_columns(ens)


def _in_row_blocks(num_rows: int, work: Any, parallel_map: Any) -> None:
    """``work(rows)`` for 8 row slices covering ``range(num_rows)``, side by side on
    ``parallel_map`` (each slice's results are written to its own rows)."""
    step = max(1, -(-num_rows // 8))
    for _ in parallel_map(work, [slice(lo, lo + step) for lo in range(0, num_rows, step)]):
        pass


def all_model_predictions(block: np.ndarray, parallel_map: Any = map) -> np.ndarray:
    """argmax of ``block.mean(axis=0)`` (the all-model ensemble on one chunk), in row blocks
    side by side on ``parallel_map``: each entry's mean adds the models in model order
    whichever rows a block holds, so the bits are those of the whole-array mean."""
    out = np.empty(block.shape[1], dtype=np.int64)

    def predict(rows: slice) -> None:
        out[rows] = block[:, rows].mean(axis=0).argmax(axis=1)

    _in_row_blocks(block.shape[1], predict, parallel_map)
    return out


def greedy_prefix_correct(
    block: np.ndarray, steps: Sequence[int], y: np.ndarray, parallel_map: Any = map
) -> np.ndarray:
    """(steps, n) bool: is each greedy prefix right on each example of one chunk.

    ``steps``: the rows of ``block`` added at each step (the start first, repeats
    included). The prefix's ensemble is the argmax (lowest index on ties) of the float64
    running sum of those calibrated rows, added in step order: the arithmetic of
    ``measure.ensemble.greedy_forward_selection`` on its evaluation rows, on the same
    values (``measure.fused``: the pass's calibrated rows are ``calibrated_inputs``' bit
    for bit), so the same answers. Row blocks run side by side on ``parallel_map``."""
    out = np.empty((len(steps), block.shape[1]), dtype=bool)

    def prefixes(rows: slice) -> None:
        total = np.zeros(block[0, rows].shape)  # float64: the selection's running sum
        for index, k in enumerate(steps):
            total += block[k, rows]
            out[index, rows] = correctness(total.argmax(axis=1), y[rows])

    _in_row_blocks(block.shape[1], prefixes, parallel_map)
    return out


def accumulate_interpolation(
    specs: Sequence[InterpolationSpec],
    block: np.ndarray,
    position: dict[int, int],
    y: np.ndarray,
    into: Sequence[np.ndarray] | None = None,
) -> None:
    """Add each curve's right answers on one chunk: argmax of ``w_c·x_a + (1 − w_c)·x_b``
    (``measure.ensemble.combine_scores``, the pair ensemble's own arithmetic, so w = 0.5
    reproduces the plain pair ensemble). ``into``: per spec, the counts to add to (default
    each spec's ``correct``)."""
    for s_index, spec in enumerate(specs):
        target = spec.correct if into is None else into[s_index]
        qa, qb = block[position[spec.a]], block[position[spec.b]]
        weights = [w if spec.mask is None else class_weights(w, spec.mask) for w in spec.weights]
        for w_index, prediction in enumerate(weighted_pair_predictions(qa, qb, weights)):
            target[w_index] += int(correctness(prediction, y).sum())
