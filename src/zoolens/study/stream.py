"""The evaluation pass of ``analyze``: every model's scores read once, in example chunks.

Per chunk of evaluation examples, each scored model's scores are read (``Zoo.scores``), its
NLL and top-1 confidence before and after temperature scaling are taken, and its calibrated
probabilities (or calibrated logits) fill one (models, chunk, classes) float32 block. From
that block: every pair ensemble's predictions (``measure.topk``: exact top-k pruning, or the
full-row reference), the all-model ensemble, the interpolation curves; from the predictions:
majority vote. Counts and bootstrap sums accumulate across chunks, so memory is bounded by
the chunk, never by the number of examples.

Paper: Gontijo-Lopes et al. (2021) Sec. 4.2-4.3 (ensembles, gain, conversion; Fig. 2, 10),
Fig. 11 (interpolation).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from zoolens.measure import topk
from zoolens.measure.agreement import correctness
from zoolens.measure.calibration import negative_log_likelihood, top1_confidence
from zoolens.measure.fused import fused_rows
from zoolens.measure.ensemble import (EnsembleCounts, all_pair_ensemble_correct,
                                      class_weights, combine_scores, ensemble_counts,
                                      ensemble_inputs, majority_vote)
from zoolens.progress import progress_bar
from zoolens.study.bootstrap import PassSums, Resamples
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
    """Everything the evaluation pass accumulates (pair arrays in np.triu_indices(M, 1) order)."""

    num_models: int
    num_examples: int
    nll_before: np.ndarray
    nll_after: np.ndarray
    confidence_before: np.ndarray  # (M, N_eval) float32, NaN rows for decision-only models
    confidence_after: np.ndarray
    pair_scored: np.ndarray  # (P,) bool: both members have probabilities
    counts: EnsembleCounts | None  # per scored pair (pair_positions order), summed over chunks
    ensemble_only: np.ndarray  # McNemar discordant: ensemble right, best member wrong
    best_only: np.ndarray  # McNemar discordant: best member right, ensemble wrong
    sums: PassSums  # bootstrap sums, frozen when the pass ends
    all_models_right: int = 0
    majority_right: int = 0
    interpolation: list[InterpolationSpec] = field(default_factory=list)
    prune: topk.PruneStats = field(default_factory=topk.PruneStats)


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


def run_eval_pass(inputs: ZooInputs, calibration: Calibration, plan: EvalPlan) -> EvalPass:
    """Stage 3: read every scored model's evaluation rows once, chunk by chunk; see the
    module doc. The bootstrap sums come back frozen (``EvalPass.sums``)."""
    zoo, names = inputs.zoo, inputs.names
    temperatures = calibration.temperatures
    ev, labels, correct = inputs.ev, inputs.labels, inputs.correct
    predictions_ev = inputs.predictions[:, ev]
    boot = plan.resamples
    combine = plan.combine
    num_models, n_eval = correct.shape
    scored = np.flatnonzero(inputs.has_scores)
    a_idx, b_idx = np.triu_indices(num_models, 1)
    num_pairs = len(a_idx)
    scored_pairs = pair_positions(num_models, scored)
    pair_scored = np.zeros(num_pairs, dtype=bool)
    pair_scored[scored_pairs] = True
    accuracy = correct.mean(axis=1)
    # The best member of each pair, the one the paired tests compare the ensemble with
    # (the higher evaluation accuracy; a on ties).
    best = np.where(accuracy[a_idx] >= accuracy[b_idx], a_idx, b_idx)
    category_masks = inputs.category_masks
    sums = PassSums.zeros(boot, num_models=num_models, num_pairs=num_pairs,
                          num_scored_pairs=len(scored_pairs) if len(scored) >= 2 else 0,
                          num_categories=len(category_masks))

    out = EvalPass(
        num_models=num_models, num_examples=n_eval,
        nll_before=np.full(num_models, np.nan), nll_after=np.full(num_models, np.nan),
        confidence_before=np.full((num_models, n_eval), np.nan, dtype=np.float32),
        confidence_after=np.full((num_models, n_eval), np.nan, dtype=np.float32),
        pair_scored=pair_scored, counts=None,
        ensemble_only=np.zeros(num_pairs, np.int64), best_only=np.zeros(num_pairs, np.int64),
        sums=sums, interpolation=list(plan.interpolation))
    nll_sum = np.zeros((2, num_models))
    nll_rows = np.zeros(num_models)
    category_names = list(category_masks)
    category_matrix = (np.stack([category_masks[c] for c in category_names]).astype(np.float32)
                       if category_names else None)
    num_classes = int(zoo.num_classes)
    position = {int(m): k for k, m in enumerate(scored)}
    chunk_size = plan.chunk_size

    with progress_bar(n_eval, "evaluation pass", "examples") as advance, \
            model_workers(plan.threads) as workers:
        for start in range(0, n_eval, chunk_size):
            stop = min(start + chunk_size, n_eval)
            columns = slice(start, stop)
            rows = ev[start:stop]
            y = labels[rows]
            r = correct[:, columns]
            xor = r[a_idx] ^ r[b_idx]
            if boot.size:
                sums.add("accuracy", boot.chunk_sums(r, columns))
                sums.add("error_inconsistency", boot.chunk_sums(xor, columns))
                if category_matrix is not None:
                    # Mean over a category's pairs of XOR = that category's mean EI per
                    # example.
                    counts = category_matrix.sum(axis=1, keepdims=True)
                    sums.add("category_ei", boot.chunk_sums(
                        (category_matrix @ xor.astype(np.float32)) / counts, columns))
            vote = majority_vote(predictions_ev[:, columns], num_classes)
            out.majority_right += int(correctness(vote, y).sum())

            if len(scored):
                block = np.empty((len(scored), stop - start, num_classes), dtype=np.float32)
                valid = (np.asarray(y) != 0).any(axis=1) if np.ndim(y) == 2 else None
                n_valid = int(valid.sum()) if valid is not None else stop - start

                def model_rows(k: int, m: int, rows: Any = rows, y: Any = y,
                               columns: Any = columns, block: np.ndarray = block,
                               n_valid: int = n_valid) -> None:
                    t = float(temperatures[m])
                    if valid is None:  # single label: the fused pass (measure.fused)
                        fused = fused_rows(zoo.stored_scores(names[m], rows=rows), y, t,
                                           combine, out=block[k])
                        out.confidence_before[m, columns] = fused.confidence_before
                        out.confidence_after[m, columns] = fused.confidence_after
                        if n_valid:
                            nll_sum[0, m] += fused.nll_before.sum()
                            nll_sum[1, m] += fused.nll_after.sum()
                            nll_rows[m] += n_valid
                        return
                    scores = zoo.scores(names[m], rows=rows)
                    out.confidence_before[m, columns] = top1_confidence(scores, 1.0)[0]
                    if n_valid:
                        nll_sum[0, m] += negative_log_likelihood(scores, y, 1.0) * n_valid
                        nll_sum[1, m] += negative_log_likelihood(scores, y, t) * n_valid
                        nll_rows[m] += n_valid
                    block[k] = ensemble_inputs(scores, t, combine)
                    out.confidence_after[m, columns] = (
                        block[k].max(axis=1) if combine == "probs"
                        else top1_confidence(scores, t)[0])

                # Models in parallel, one thread each (every model writes its own rows).
                list(workers.map(model_rows, range(len(scored)), scored))
                _ensembles(out, block, y, r, scored, scored_pairs, a_idx, b_idx, best,
                           columns, boot, plan.exact_topk, position)
            advance(stop - start)

    with np.errstate(invalid="ignore", divide="ignore"):
        out.nll_before = np.where(nll_rows > 0, nll_sum[0] / nll_rows, np.nan)
        out.nll_after = np.where(nll_rows > 0, nll_sum[1] / nll_rows, np.nan)
    if boot.size and out.counts is not None:
        derive_pair_sums(sums, a_idx[scored_pairs], b_idx[scored_pairs], best[scored_pairs])
    sums.freeze()
    return out


def derive_pair_sums(sums: PassSums, a: np.ndarray, b: np.ndarray, best: np.ndarray) -> None:
    """The resampled sums of e − (r_a + r_b)/2 and e − r_best from those of e (ensemble_acc)
    and r (accuracy): sums are linear in the values. Exact: every sum is a whole number (or
    a half) far below 2**53, as each chunk's float32 product is below 2**24; equal bit for
    bit to accumulating those values chunk by chunk (the reference tables show it)."""
    sums.add("ensemble_gain",
             sums.ensemble_acc - 0.5 * (sums.accuracy[:, a] + sums.accuracy[:, b]))
    sums.add("ensemble_minus_best", sums.ensemble_acc - sums.accuracy[:, best])


def _ensembles(out: EvalPass, block: np.ndarray, y: np.ndarray, r: np.ndarray,
               scored: np.ndarray, scored_pairs: np.ndarray, a_idx: np.ndarray,
               b_idx: np.ndarray, best: np.ndarray, columns: slice,
               boot: Resamples, exact_topk: bool, position: dict[int, int]) -> None:
    """Pair ensembles, the all-model ensemble and interpolation on one calibrated block."""
    out.all_models_right += int(correctness(block.mean(axis=0).argmax(axis=1), y).sum())
    accumulate_interpolation(out.interpolation, block, position, y)
    if len(scored) < 2:
        return
    if exact_topk:
        pred = topk.all_pair_ensemble_predictions_topk(block, stats=out.prune)
        ens = correctness(pred, y)  # (P_scored, n)
        del pred
    else:
        ens = all_pair_ensemble_correct(block, y)
    ra, rb = r[a_idx[scored_pairs]], r[b_idx[scored_pairs]]
    rbest = r[best[scored_pairs]]
    counts = ensemble_counts(ra, rb, ens)
    out.counts = counts if out.counts is None else out.counts + counts
    out.ensemble_only[scored_pairs] += (ens & ~rbest).sum(axis=1)
    out.best_only[scored_pairs] += (~ens & rbest).sum(axis=1)
    if not boot.size:
        return
    ens_f = ens.astype(np.float32)
    sums = out.sums
    sums.add("ensemble_acc", boot.chunk_sums(ens_f, columns))
    # Numerators of the conversion rates; their denominators (exactly one right, both wrong)
    # follow from the accuracy and error-inconsistency sums on the same resamples.
    sums.add("converted", boot.chunk_sums(ens & (ra ^ rb), columns))
    sums.add("neither_converted", boot.chunk_sums(ens & ~ra & ~rb, columns))
    # ensemble_gain and ensemble_minus_best follow from these sums at the end of the pass
    # (derive_pair_sums), with no product of their own.


def accumulate_interpolation(specs: Sequence[InterpolationSpec], block: np.ndarray,
                             position: dict[int, int], y: np.ndarray) -> None:
    """Add each curve's right answers on one chunk: argmax of ``w_c·x_a + (1 − w_c)·x_b``
    (``measure.ensemble.combine_scores``, the pair ensemble's own arithmetic, so w = 0.5
    reproduces the plain pair ensemble)."""
    for spec in specs:
        qa, qb = block[position[spec.a]], block[position[spec.b]]
        for w_index, w in enumerate(spec.weights):
            weight = w if spec.mask is None else class_weights(w, spec.mask)
            prediction = combine_scores(qa, qb, weight).argmax(axis=-1)
            spec.correct[w_index] += int(correctness(prediction, y).sum())
