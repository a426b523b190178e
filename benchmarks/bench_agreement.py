"""All-pairs agreement (paper Sec. 4, Fig. 1, 8): zoolens vs a per-pair loop with scikit-learn.

ours: ``measure.agreement.pairwise_agreement(R)``: EI, both right/wrong, kappa and dominance
for all pairs from one matrix product R Rᵀ. baseline: what model-vs-human style code does, a
Python loop over pairs calling ``sklearn.metrics.confusion_matrix`` (for EI, both right/wrong,
dominance both ways) and ``cohen_kappa_score``; timed on a subset of pairs and scaled by the
pair count. Every computed pair of the baseline is checked against ours.
Targets (issues 3 and 8): 100 models x 50,000 examples in under 1 s, >= 50x the loop.
"""

from __future__ import annotations

import numpy as np

from benchmarks._common import row, timed

SIZES = {"full": (100, 50_000, 300), "quick": (100, 10_000, 100), "tiny": (12, 2_000, 20)}


def correctness_matrix(num_models: int, num_examples: int, seed: int = 0) -> np.ndarray:
    """(M, N) bool: model m right where a_m + noise beats a shared example difficulty."""
    rng = np.random.default_rng(seed)
    difficulty = rng.standard_normal(num_examples)
    skill = rng.uniform(0.5, 1.0, num_models)[:, None]
    noise = rng.standard_normal((num_models, num_examples)) * rng.uniform(0.3, 1.5, (num_models, 1))
    return (skill + noise > difficulty[None, :]).astype(bool)


def sklearn_pair(ra: np.ndarray, rb: np.ndarray) -> tuple[float, ...]:
    from sklearn.metrics import cohen_kappa_score, confusion_matrix

    cm = confusion_matrix(ra, rb, labels=[False, True])
    n = cm.sum()
    ei = (cm[0, 1] + cm[1, 0]) / n
    return (ei, cm[1, 1] / n, cm[0, 0] / n, cohen_kappa_score(ra, rb), cm[0, 1] / n, cm[1, 0] / n)


def run(size: str = "quick", runs: int = 3) -> list[dict]:
    from zoolens.measure.agreement import pairwise_agreement

    num_models, num_examples, sample_pairs = SIZES[size]
    r = correctness_matrix(num_models, num_examples)
    a_idx, b_idx = np.triu_indices(num_models, 1)
    pick = np.random.default_rng(1).choice(len(a_idx), min(sample_pairs, len(a_idx)), replace=False)

    ours = timed(lambda: pairwise_agreement(r), runs)

    def baseline():
        return [sklearn_pair(r[a_idx[p]], r[b_idx[p]]) for p in pick]

    base = timed(baseline, runs)
    scaled = base.median_s * len(a_idx) / len(pick)

    got = ours.result
    worst = 0.0
    for p, vals in zip(pick, base.result):
        a, b = a_idx[p], b_idx[p]
        mine = (
            got["error_inconsistency"][a, b],
            got["both_right"][a, b],
            got["both_wrong"][a, b],
            got["error_consistency"][a, b],
            got["dominance"][a, b],
            got["dominance"][b, a],
        )
        worst = max(worst, float(np.max(np.abs(np.subtract(mine, vals)))))
    speedup = scaled / ours.median_s
    met = speedup >= 50 and (size != "full" or ours.median_s < 1.0)
    return [
        row(
            "agreement",
            f"{num_models} models x {num_examples:,} examples",
            ours="measure.agreement.pairwise_agreement",
            ours_s=ours.median_s,
            baseline=f"per-pair loop, sklearn confusion_matrix + cohen_kappa_score "
            f"({len(pick)} pairs timed, x{len(a_idx) / len(pick):.1f})",
            baseline_s=scaled,
            peak_mib=ours.peak_mib,
            baseline_peak_mib=base.peak_mib,
            target=">= 50x; < 1 s",
            met=met,
            check=f"6 measures on {len(pick)} pairs: max abs diff {worst:.1e}",
        )
    ]
