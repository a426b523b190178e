"""Pair-table columns that cannot mislead: gains over a real model, and structural NaNs.

``pairs.csv``'s ``ensemble_gain`` is the paper's Fig. 2 quantity, the ensemble's accuracy over
the *mean* of its two members (``ens_acc - (p_a + p_b) / 2``): a pair whose ensemble is below
its better member still shows a positive gain there. Two gains against a model one could
actually deploy sit beside it (docs/design.md sec. 3 and the contracts module):

- ``gain_over_best = ens_acc - max(p_a, p_b)``: over the better member (evaluation split);
  its interval is the paired bootstrap of ``e - r_best`` on the shared example resamples.
- ``gain_over_base = ens_acc - p_base``: over the base, for pairs that contain the base
  (NaN for the others); interval: per resample, resampled ensemble accuracy minus resampled
  base accuracy (paired).

Structural zeros are not measurements (docs/design.md sec. 3: "rates whose condition never occurs are
NaN, never 0"): a pair in which one member stores only its top-1 class (top-k with k = 1)
can only ever predict one of the two members' top-1 classes, so "neither right" conversion is
0 by construction; :func:`structurally_undefined` sets it (and its bounds) to NaN and says why.
Decision-only members have no ensemble at all (those columns are NaN already).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from zoolens.contracts import GAIN_OVER_COLUMNS

NEITHER_TOP1_REASON = (
    "neither_conversion is NaN for pairs with a top-1-only member: their "
    "ensemble can only predict one of the two members' top-1 classes, so it "
    "is never right where both are wrong (0 by construction, not a "
    "measurement)"
)


def gain_columns(
    pairs: pd.DataFrame,
    intervals: dict[str, np.ndarray],
    base_index: int,
    a_idx: np.ndarray,
    b_idx: np.ndarray,
) -> dict[str, np.ndarray]:
    """``gain_over_best[_lo/_hi]`` and ``gain_over_base[_lo/_hi]`` for every pair (rows of
    ``pairs`` in measured-pair order); the bounds come from the pairs' bootstrap after the
    evaluation pass (``intervals``: ``study.pairblocks.INTERVAL_COLUMNS``)."""
    size = len(pairs)
    ens = pairs["ensemble_acc"].to_numpy(np.float64)
    acc_a = pairs["acc_a"].to_numpy(np.float64)
    acc_b = pairs["acc_b"].to_numpy(np.float64)
    out = {key: np.full(size, np.nan) for key in GAIN_OVER_COLUMNS}
    for key in GAIN_OVER_COLUMNS:
        if key in intervals:
            out[key] = np.array(intervals[key], dtype=np.float64)
    out["gain_over_best"] = ens - np.maximum(acc_a, acc_b)
    with_base = (np.asarray(a_idx) == base_index) | (np.asarray(b_idx) == base_index)
    base_acc = np.where(np.asarray(a_idx) == base_index, acc_a, acc_b)
    out["gain_over_base"] = np.where(with_base, ens - base_acc, np.nan)
    return out


def top1_only(kinds: Sequence[str], topk: Sequence[Any]) -> np.ndarray:
    """(M,) bool: the model stores only its top-1 class (top-k with k = 1)."""
    return np.array(
        [kind == "topk" and topk_k == 1 for kind, topk_k in zip(kinds, topk)], dtype=bool
    )


def structurally_undefined(
    pairs: pd.DataFrame, top1: np.ndarray, a_idx: np.ndarray, b_idx: np.ndarray
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """``pairs`` with neither_conversion (and bounds) NaN where a member is top-1 only, and
    the note for summary.json (``{}`` when nothing changed)."""
    undefined = np.asarray(top1)[a_idx] | np.asarray(top1)[b_idx]
    if not undefined.any():
        return pairs, {}
    pairs = pairs.copy()
    for column in ("neither_conversion", "neither_conversion_lo", "neither_conversion_hi"):
        if column in pairs.columns:
            pairs.loc[undefined, column] = np.nan
    return pairs, {
        "neither_conversion": {"pairs": int(undefined.sum()), "reason": NEITHER_TOP1_REASON}
    }
