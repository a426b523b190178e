"""Greedy forward ensemble selection (paper Sec. 4.5, Fig. 5; Caruana et al. 2004).

ours: ``measure.ensemble.greedy_forward_selection`` (float64 running sum; each step scores
all candidates at once, in row chunks, with exact pruning of the argmax). baseline: a plain numpy Caruana loop, as auto-sklearn's
``EnsembleSelection`` does it: keep the running sum, and at each step, for each candidate in
turn, add its probabilities, take the argmax, count right answers; same tie rules
(most right; then chosen most often; then lowest index). Both choose on calibrated
probabilities of the synthetic ImageNet-like models on calibration rows; the picks must be
identical. Target (issue 8): >= 10x, identical picks.
"""

from __future__ import annotations

import numpy as np

from benchmarks._common import ensure_zoo, row, say, timed
from benchmarks.bench_ensemble import SIZES as ZOO_SIZES
from benchmarks.bench_ensemble import spec_for, temperatures, zoo_name

SIZES = {
    "full": dict(zoo="full", rows=5_000, steps=25),
    "quick": dict(zoo="quick", rows=1_000, steps=25),
    "tiny": dict(zoo="tiny", rows=300, steps=5),
}


def caruana_loop(
    probs: list[np.ndarray], labels: np.ndarray, start: int, pool: list[int], steps: int
) -> list[int]:
    """Plain numpy greedy selection with replacement: running float64 sum, one candidate at
    a time (the reference picks)."""
    total = probs[start].astype(np.float64)
    members = [start]
    chosen = np.zeros(len(probs), dtype=np.int64)
    chosen[start] = 1
    for _ in range(steps):
        best_key, best = None, None
        for c in pool:
            right = int((np.argmax(total + probs[c], axis=1) == labels).sum())
            key = (right, chosen[c], -c)
            if best_key is None or key > best_key:
                best_key, best = key, c
        total += probs[best]
        members.append(best)
        chosen[best] += 1
    return members


def run(size: str = "quick", runs: int = 3) -> list[dict]:
    from zoolens import Zoo
    from zoolens.measure.ensemble import ensemble_inputs, greedy_forward_selection

    cfg = SIZES[size]
    zcfg = ZOO_SIZES[cfg["zoo"]]
    zoo = Zoo.open(ensure_zoo(zoo_name(zcfg), spec_for(zcfg)))
    temps = temperatures(zoo)
    rows_ = zoo.calibration_indices[: cfg["rows"]]
    y = zoo.labels[rows_]
    say(f"greedy: calibrated probabilities of {len(zoo.models)} models on {len(rows_)} rows")
    probs = [ensemble_inputs(zoo.scores(m, rows=rows_), t) for m, t in zip(zoo.models, temps)]
    acc = [(p.argmax(1) == y).mean() for p in probs]
    start = int(np.argmax(acc))
    pool = list(range(len(probs)))
    steps = cfg["steps"]

    ours = timed(
        lambda: greedy_forward_selection(probs, y, start=start, pool=pool, max_steps=steps), runs
    )
    base = timed(lambda: caruana_loop(probs, y, start, pool, steps), runs)
    same = list(ours.result.members) == list(base.result)
    speedup = base.median_s / ours.median_s
    m, c = len(probs), probs[0].shape[1]
    case = f"{steps} steps over {m} models, {len(rows_):,} rows x {c:,} classes"
    return [
        row(
            "greedy selection",
            case,
            ours="measure.ensemble.greedy_forward_selection",
            ours_s=ours.median_s,
            baseline="numpy Caruana loop (running sum, candidate by candidate)",
            baseline_s=base.median_s,
            peak_mib=ours.peak_mib,
            baseline_peak_mib=base.peak_mib,
            target=">= 10x, identical picks",
            met=speedup >= 10 and same,
            check=f"identical picks: {'yes' if same else 'NO'} "
            f"({len(set(ours.result.members))} distinct of {steps + 1})",
        )
    ]
