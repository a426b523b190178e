"""Stage 5 of ``analyze``: the findings summary.json leads with (paper Fig. 1, 2, 5).

Reads the tables, the frozen bootstrap sums of the evaluation pass and the greedy outcome;
writes nothing into them, so calling it twice gives the same answer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from zoolens.measure.stats import spearman_rows
from zoolens.study.bootstrap import Resamples
from zoolens.study.greedy import CrossFitOutcome, GreedySkipped, Selection
from zoolens.study.inputs import ZooInputs
from zoolens.study.stream import EvalPass
from zoolens.study.threads import default_threads, model_workers


def ranked_sidekicks(pairs: pd.DataFrame, base: str) -> list[dict[str, Any]]:
    """Pairs with the base ranked by ensemble accuracy (ties: zoo order), best first.

    The rule is on exact quantities, so no CPU's float rounding can change the best sidekick:
    ``ensemble_acc`` is (right answers) / n, one correctly rounded division of an integer
    count, so equal counts are equal floats; among them the pairs table's order (zoo order of
    the sidekick) decides, through a stable sort.
    """
    mine = pairs[(pairs["model_a"] == base) | (pairs["model_b"] == base)]
    mine = mine[mine["ensemble_acc"].notna()]
    rows = []
    for _, row in mine.iterrows():
        base_is_a = row["model_a"] == base
        acc_base = row["acc_a"] if base_is_a else row["acc_b"]
        rows.append(
            {
                "model": row["model_b"] if base_is_a else row["model_a"],
                "category": row["category"],
                "accuracy": row["acc_b"] if base_is_a else row["acc_a"],
                "ensemble_acc": row["ensemble_acc"],
                "ensemble_acc_lo": row["ensemble_acc_lo"],
                "ensemble_acc_hi": row["ensemble_acc_hi"],
                "over_base": row["ensemble_acc"] - acc_base,
                "ensemble_gain": row["ensemble_gain"],
                "gain_over_best": row["gain_over_best"],
                "error_inconsistency": row["error_inconsistency"],
                "mcnemar_p": row["mcnemar_p"],
                "paired_bootstrap_p": row["paired_bootstrap_p"],
                # adjusted over every pair of pairs.csv with a p-value (Holm)
                "mcnemar_p_holm": row.get("mcnemar_p_holm", float("nan")),
            }
        )
    # Stable sort keeps zoo order among equal ensemble accuracies (equal counts).
    return sorted(rows, key=lambda r: -r["ensemble_acc"])


def headline(
    inputs: ZooInputs,
    base: str,
    start: str,
    models: pd.DataFrame,
    pairs: pd.DataFrame,
    sidekicks: list[dict[str, Any]],
    evaluation: EvalPass,
    resamples: Resamples,
    selection: Selection,
    run_blocks: BlockRunner | None = None,
) -> dict[str, Any]:
    """The findings summary.json leads with (paper Fig. 1, 2, 5).

    Every mean comes with a 95 % percentile interval on the shared example resamples: the
    category means of error inconsistency and of conversion rate (``lo``/``hi``), the
    Spearman correlation of error inconsistency with ensemble gain (per resample both
    recomputed from resampled sums, then ranked) and the greedy gain over the start (paired,
    ``gain_over_start_lo``/``_hi``). ``run_blocks``: Spearman's per-resample blocks as
    tasks (:func:`resampled_headline_values`).
    """
    from scipy.stats import spearmanr

    n = len(inputs.ev)
    base_row = models[models["model"] == base].iloc[0]
    category_masks = inputs.category_masks
    categories = list(category_masks)
    assert evaluation.sums is not None, "the pass's sums are made when it ends"
    cat_lo, cat_hi = resamples.interval(evaluation.sums.category_ei)
    ei = pairs["error_inconsistency"].to_numpy()
    conversion = pairs["conversion_rate"].to_numpy()
    gain_finite = np.isfinite(pairs["ensemble_gain"].to_numpy())
    with_base = (pairs["model_a"] == base).to_numpy() | (pairs["model_b"] == base).to_numpy()
    defined = {c: category_masks[c] & np.isfinite(conversion) for c in categories}
    correlated = {"all_pairs": gain_finite, "pairs_with_base": with_base & gain_finite}

    def rankable(name: str) -> bool:
        """Spearman's rho is defined: three pairs or more, neither column constant."""
        frame = pairs[correlated[name]]
        return (
            len(frame) >= 3
            and frame["error_inconsistency"].nunique() >= 2
            and frame["ensemble_gain"].nunique() >= 2
        )

    per_resample = resampled_headline_values(
        evaluation,
        (inputs.pair_a, inputs.pair_b),
        defined,
        {name: mask for name, mask in correlated.items() if rankable(name)},
        max(resamples.n_bootstrap, 0) if resamples.counts is not None else 0,
        n,
        run_blocks,
    )
    by_category = {}
    conversion_by_category = {}
    for k, category in enumerate(categories):
        mask = category_masks[category]
        by_category[category] = {
            "mean": float(ei[mask].mean()),
            "lo": cat_lo[k],
            "hi": cat_hi[k],
            "n_pairs": int(mask.sum()),
        }
        values = conversion[defined[category]]
        conv_lo, conv_hi = resamples.quantiles(per_resample.conversion_means[category])
        conversion_by_category[category] = {
            "mean": float(values.mean()) if values.size else None,
            "lo": conv_lo if values.size else None,
            "hi": conv_hi if values.size else None,
            "n_pairs": int(values.size),
        }

    def correlation(name: str) -> dict[str, Any]:
        frame = pairs[correlated[name]]
        if not rankable(name):
            return {
                "rho": None,
                "lo": None,
                "hi": None,
                "p_value": None,
                "n_pairs": int(len(frame)),
            }
        rho, p_value = spearmanr(frame["error_inconsistency"], frame["ensemble_gain"])
        rhos = per_resample.spearman.get(name)
        lo, hi = (None, None) if rhos is None else resamples.quantiles(rhos)
        return {
            "rho": float(rho),
            "lo": lo,
            "hi": hi,
            "p_value": float(p_value),
            "n_pairs": int(len(frame)),
        }

    scored = len(inputs.scored)
    return {
        "base": {
            "model": base,
            "accuracy": base_row["accuracy"],
            "accuracy_lo": base_row["accuracy_lo"],
            "accuracy_hi": base_row["accuracy_hi"],
            "accuracy_all": base_row["accuracy_all"],
        },
        "best_sidekick": sidekicks[0] if sidekicks else None,
        "ranked_sidekicks": sidekicks[:5],
        "mean_error_inconsistency_by_category": by_category,
        "conversion_rate_by_category": conversion_by_category,
        "spearman_ei_vs_gain": {
            "all_pairs": correlation("all_pairs"),
            "pairs_with_base": correlation("pairs_with_base"),
        },
        "all_models_ensemble_acc": evaluation.all_models_right / n if scored else None,
        "all_models_ensemble_members": scored,
        "majority_vote_acc": evaluation.majority_right / n,
        "majority_vote_members": len(inputs.names),
        "majority_vote_note": majority_vote_note(
            inputs.predictions[:, inputs.ev],
            models["accuracy"].to_numpy(np.float64),
            evaluation.majority_right / n,
        ),
        "greedy": {"start": start, **greedy_summary(selection, resamples)},
    }


def majority_vote_note(
    predictions: np.ndarray, member_accuracy: np.ndarray, vote_accuracy: float
) -> str | None:
    """Why a majority vote scores above every member, when it does and members abstain
    (None otherwise). An abstention casts no vote (``measure.ensemble.majority_vote``) and
    counts as wrong in its model's own accuracy, so where some members abstain the vote is
    the others' answer: the vote fills each member's abstentions with the others' answers.
    With two members that is the whole story (where both answer and disagree, the tie goes
    to the lower class id). ``predictions``: (M, N) evaluation-split top-1, -1 = abstained."""
    abstained = np.asarray(predictions) < 0
    best = float(np.max(member_accuracy)) if len(member_accuracy) else float("nan")
    if not abstained.any() or not vote_accuracy > best:
        return None
    members = abstained.shape[0]
    answered = (~abstained).sum(axis=0)
    partial = int(((answered >= 1) & (answered < members)).sum())
    text = (
        f"the majority vote ({100 * vote_accuracy:.2f}%) scores above every member (best "
        f"{100 * best:.2f}%) because an abstention casts no vote but counts as wrong in its "
        f"model's own accuracy: on the {partial} evaluation examples where some members "
        "abstained and others answered, the vote is the answering members' answer"
    )
    if members == 2:
        text += (
            ", so each member's abstentions are filled with the other's answer (where both "
            "answer and disagree, the tie goes to the lower class id)"
        )
    return text


@dataclass(frozen=True)
class RankedSums:
    """What Spearman's rho per resample reads (a Ray task's context with ``--ray``): the
    kept sums of error inconsistency (B, P), of each model right (B, M) and of each scored
    pair's ensemble right (B, P_scored); ``scored`` (P,) marks the pairs with
    probabilities, ``pairs`` the members a, b of every measured pair; ``correlated``: per
    name, the pairs rho is taken over."""

    error_inconsistency: np.ndarray
    accuracy: np.ndarray
    ensemble_acc: np.ndarray
    scored: np.ndarray
    has_counts: bool
    pairs: tuple[np.ndarray, np.ndarray]
    correlated: dict[str, np.ndarray]
    num_examples: int


def ranked_pair_rows(ctx: RankedSums, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
    """Resamples ``start:stop`` of the two statistics Spearman's rho ranks, from the sums
    kept after the evaluation pass on the shared resamples (``study.pairblocks``):

    - error_inconsistency_b = N × Σ_n W[b, n]·(r_a ⊕ r_b)[n] / N, (stop − start, P), the
      kept sums themselves (unsigned integers);
    - ensemble_gain_b = 2N × Σ_n W[b, n]·(e − (r_a + r_b)/2)[n] / N, (stop − start, P)
      int32, or int64 past 2³⁰ examples (0 for pairs without probabilities).

    Both are the resampled means scaled to whole numbers (each sum is one): a strictly
    increasing map of the means, so their ranks — all Spearman's rho reads — are the means'
    ranks, and whole numbers rank by counting (``measure.stats.average_ranks``)."""
    xor = ctx.error_inconsistency[start:stop]
    # |gain| <= 2N: the narrowest exact type (half the memory traffic of int64 at 2 x 10^9)
    kind = np.int32 if ctx.num_examples < 2**30 else np.int64
    if not (ctx.has_counts and ctx.scored.any()):
        return xor, np.zeros((stop - start, len(ctx.scored)), dtype=kind)
    a, b = ctx.pairs[0][ctx.scored], ctx.pairs[1][ctx.scored]
    right = ctx.accuracy[start:stop].astype(kind)  # whole numbers, exact
    gain: np.ndarray = np.asarray(ctx.ensemble_acc[start:stop], dtype=kind) * 2
    np.subtract(gain, right[:, a], out=gain)
    np.subtract(gain, right[:, b], out=gain)
    if ctx.scored.all():
        return xor, gain
    full = np.zeros((stop - start, len(ctx.scored)), dtype=kind)
    full[:, ctx.scored] = gain
    return xor, full


def spearman_block(
    ctx: RankedSums, start: int, stop: int, parallel_map: Any = map
) -> dict[str, np.ndarray]:
    """Per name of ``ctx.correlated``, Spearman's rho of error inconsistency with ensemble
    gain on each of resamples ``start:stop`` over that name's pairs (a pure function of
    ``ctx``: with ``--ray`` the body of a task per block of resamples)."""
    ei, gain = ranked_pair_rows(ctx, start, stop)
    return {
        name: (
            spearman_rows(ei, gain, parallel_map)
            if mask.all()
            else spearman_rows(ei[:, mask], gain[:, mask], parallel_map)
        )
        for name, mask in ctx.correlated.items()
    }


def conversion_rows(
    evaluation: EvalPass, start: int, stop: int, conversion_pairs: np.ndarray
) -> np.ndarray:
    """conversion_b = Σ_n W[b, n]·(e ∧ (r_a ⊕ r_b))[n] / Σ_n W[b, n]·(r_a ⊕ r_b)[n] for
    resamples ``start:stop`` of the pairs ``conversion_pairs`` only (sorted indices; the
    headline averages it over the categories of the base's pairs, at most M − 1 of the P),
    (stop − start, len(conversion_pairs)) float64, NaN where the resampled denominator is 0
    and for pairs without probabilities."""
    sums = evaluation.sums
    assert sums is not None, "the pass's sums are made when it ends"
    out = np.full((stop - start, len(conversion_pairs)), np.nan)
    scored = evaluation.pair_scored
    if evaluation.counts is None or not int(scored.sum()):
        return out
    wanted = conversion_pairs[scored[conversion_pairs]]  # pairs with probabilities
    if len(wanted):
        position = np.cumsum(scored) - 1  # a scored pair's column in the scored sums
        den = np.asarray(sums.error_inconsistency[start:stop][:, wanted], dtype=np.float64)
        num = np.asarray(sums.converted[start:stop][:, position[wanted]], dtype=np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[:, np.searchsorted(conversion_pairs, wanted)] = np.where(den > 0, num / den, np.nan)
    return out


@dataclass
class ResampledHeadline:
    """Per resample: each category's mean conversion rate (:func:`category_resample_means`)
    and, for each named set of pairs, Spearman's rho of error inconsistency with ensemble
    gain (None without resamples)."""

    conversion_means: dict[str, np.ndarray]
    spearman: dict[str, np.ndarray | None]


# Values per (resamples x pairs) statistic in one block of resampled_headline_values
# (a block per model thread in flight locally).
_RESAMPLE_BLOCK_VALUES = 1 << 23

#: ``run_blocks(task, ctx, bounds)``: ``task(ctx, start, stop)`` for each ``(start, stop)``
#: of ``bounds``, yielded in that order (``study.distributed.run_chunks_ray``).
BlockRunner = Callable[
    [Callable[[RankedSums, int, int], dict[str, np.ndarray]], RankedSums, list[tuple[int, int]]],
    Iterable[dict[str, np.ndarray]],
]


def resampled_headline_values(
    evaluation: EvalPass,
    pairs: tuple[np.ndarray, np.ndarray],
    defined: dict[str, np.ndarray],
    correlated: dict[str, np.ndarray],
    size: int,
    num_examples: int,
    run_blocks: BlockRunner | None = None,
) -> ResampledHeadline:
    """The headline's per-resample values for the first ``size`` resamples, a block of
    resamples at a time (every value is a function of its own resample's row, so blocks
    give the bits of the whole array). ``defined``: per category, the pairs whose
    full-sample conversion rate is defined; ``pairs``: the measured pairs' members;
    ``correlated``: per name, the pairs Spearman's rho is taken over. Spearman's blocks
    (:func:`spearman_block`) run on the model threads, or as ``run_blocks``' tasks
    (``analyze --ray``: the same bits); the conversion rates read only the base's pairs and
    stay here."""
    sums = evaluation.sums
    assert sums is not None, "the pass's sums are made when it ends"
    means: dict[str, list[np.ndarray]] = {c: [] for c in defined}
    # conversion only where a category reads it (the base's pairs), in pair order
    num_pairs = len(evaluation.pair_scored)
    union = np.zeros(num_pairs, dtype=bool)
    for mask in defined.values():
        union |= mask
    conversion_pairs = np.flatnonzero(union)
    within = {c: mask[conversion_pairs] for c, mask in defined.items()}
    rhos: dict[str, list[np.ndarray]] = {name: [] for name in correlated}
    # blocks within the memory bound, and at least one per model thread (a mid-size zoo's
    # resamples would otherwise fit one block, ranked on one thread)
    step = max(
        1,
        min(_RESAMPLE_BLOCK_VALUES // max(num_pairs, 1), -(-size // default_threads())),
    )
    bounds = [(start, min(size, start + step)) for start in range(0, size, step)]
    ctx = RankedSums(
        error_inconsistency=sums.error_inconsistency,
        accuracy=sums.accuracy,
        ensemble_acc=sums.ensemble_acc,
        scored=evaluation.pair_scored,
        has_counts=evaluation.counts is not None,
        pairs=pairs,
        correlated=correlated,
        num_examples=num_examples,
    )
    with model_workers() as workers:
        if not correlated or not bounds:
            blocks: Iterator[dict[str, np.ndarray]] = iter(())
        elif run_blocks is not None:
            blocks = iter(run_blocks(spearman_block, ctx, bounds))
        else:  # blocks of resamples side by side on the model threads, in order
            blocks = iter(workers.map(lambda bound: spearman_block(ctx, *bound), bounds))
        for start, stop in bounds:
            conversion = conversion_rows(evaluation, start, stop, conversion_pairs)
            for category, mask in within.items():
                means[category].append(category_resample_means(conversion, mask))
            if correlated:
                block = next(blocks)
                for name in correlated:
                    rhos[name].append(block[name])
    empty = np.zeros(0)
    return ResampledHeadline(
        conversion_means={c: np.concatenate(v) if v else empty for c, v in means.items()},
        spearman={name: np.concatenate(v) if v else None for name, v in rhos.items()},
    )


def category_resample_means(conversion: np.ndarray, defined: np.ndarray) -> np.ndarray:
    """Per resample (rows of ``conversion``, (b, P)), the mean over the pairs whose
    full-sample rate is defined (``defined``, (P,) bool) of their resampled rates, leaving
    out a pair whose resampled denominator is 0 (NaN where no pair is left; the interval
    leaves such resamples out)."""
    if not defined.any():
        return np.full(conversion.shape[0], np.nan)
    rates = conversion[:, defined]
    present = np.isfinite(rates)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(present, rates, 0.0).sum(axis=1) / present.sum(axis=1)


def greedy_summary(selection: Selection, resamples: Resamples | None = None) -> dict[str, Any]:
    """The greedy block of summary.json; with ``resamples``, the paired bootstrap interval of
    the gain over the start: per resample b, ``Σ_n W[b, n]·(e_n − s_n) / N`` with e, s the
    kept ensemble's and the start's per-example evaluation correctness (computed here, stored
    nowhere). ``selection``: a ``study.greedy`` outcome, or the reason it was skipped."""
    if isinstance(selection, GreedySkipped):
        return {"skipped": selection.reason}
    gain = {}
    if resamples is not None:
        lo = hi = None
        if (
            resamples.counts is not None
            and selection.evaluation_correct is not None
            and selection.start_evaluation_correct is not None
        ):
            diff = selection.evaluation_correct.astype(
                np.float32
            ) - selection.start_evaluation_correct.astype(np.float32)
            bounds = resamples.interval(
                resamples.chunk_sums(diff, slice(0, resamples.num_examples))
            )
            lo, hi = (float(v[0]) for v in bounds)
        gain = {"gain_over_start_lo": lo, "gain_over_start_hi": hi}
    if isinstance(selection, CrossFitOutcome):
        return {
            "cross_fitted": True,
            "folds": selection.folds,
            "members": selection.members,
            "member_folds": selection.member_folds,
            "calibration_acc": selection.calibration_acc,
            "evaluation_acc": selection.evaluation_acc,
            "fold_evaluation_acc": selection.fold_evaluation_acc,
            "fold_spread": selection.fold_spread,
            "start_evaluation_acc": selection.start_evaluation_acc,
            "gain_over_start": selection.evaluation_acc - selection.start_evaluation_acc,
            **gain,
            "excluded_decision_only": selection.excluded,
            "candidates_recomputed": selection.recomputed,
        }
    return {
        "members": selection.members,
        "steps_kept": len(selection.members),
        "calibration_acc": selection.calibration_acc,
        "evaluation_acc": selection.evaluation_acc,
        "start_evaluation_acc": selection.start_evaluation_acc,
        "gain_over_start": selection.evaluation_acc - selection.start_evaluation_acc,
        **gain,
        "excluded_decision_only": selection.excluded,
        "candidates_recomputed": selection.recomputed,
    }
