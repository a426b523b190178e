"""Who is confident where, and who wins where: the confidence angle and per-group summaries.

Paper: Gontijo-Lopes, Dauphin & Cubuk (2021), Sec. 4.3-4.4: Fig. 3 (histograms of the
confidence angle split by which model is right), Fig. 4 and 12 (per-class specialization;
ImageNet classes 0-300 "nature" vs 500-900 "anthropogenic"). Groups of examples are given
as one integer id per example (a class, a class group, an attribute value), so every
summary is a ``bincount`` over all groups at once.
"""

from __future__ import annotations

import numpy as np

from zoolens.errors import ZoolensError

__all__ = [
    "OUTCOMES",
    "THETA_BIN_EDGES",
    "confidence",
    "confidence_angle",
    "outcome_codes",
    "theta_histogram",
    "specialization_by_group",
]

#: Outcome names, in the order of :func:`outcome_codes` (0..3).
OUTCOMES = ("both_right", "only_a", "only_b", "both_wrong")
#: 18 bins of 5 degrees from 0 to 90 (Fig. 3); 90 falls in the last bin.
THETA_BIN_EDGES = np.linspace(0.0, 90.0, 19)


def confidence(probs: np.ndarray) -> np.ndarray:
    """Top-1 confidence ``c = max_k q[k]`` of calibrated probabilities, over the last axis."""
    return np.asarray(probs).max(axis=-1)


def confidence_angle(conf_a: np.ndarray, conf_b: np.ndarray) -> np.ndarray:
    """Confidence angle ``theta = degrees(atan2(c_a, c_b))`` (Fig. 3), float64, broadcasting.

    45 = equally confident; above 45 = model a more confident; 90 = only a has confidence
    (c_b = 0). Confidences are calibrated top-1 probabilities (:func:`confidence`).

    Parameters
    ----------
    conf_a, conf_b : arrays of confidences (broadcast together)

    Returns
    -------
    float64 array of angles in degrees, in [0, 90] for non-negative confidences.

    Examples
    --------
    >>> confidence_angle(np.array([0.5, 0.9, 0.8]), np.array([0.5, 0.3, 0.0])).round(2).tolist()
    [45.0, 71.57, 90.0]
    """
    return np.degrees(np.arctan2(np.asarray(conf_a, np.float64), np.asarray(conf_b, np.float64)))


def outcome_codes(correct_a: np.ndarray, correct_b: np.ndarray) -> np.ndarray:
    """Per example: 0 both right, 1 only a right, 2 only b right, 3 both wrong (``OUTCOMES``)."""
    ra = np.asarray(correct_a, dtype=bool)
    rb = np.asarray(correct_b, dtype=bool)
    # 2·(not a) + (not b): (a, b) = (1, 1) -> 0, (1, 0) -> 1, (0, 1) -> 2, (0, 0) -> 3.
    return 2 * (~ra).astype(np.int64) + (~rb).astype(np.int64)


def theta_histogram(
    theta: np.ndarray, correct_a: np.ndarray, correct_b: np.ndarray, n_bins: int = 18
) -> np.ndarray:
    """Counts of theta per outcome and angle bin: (4, n_bins) int64 (Fig. 3).

    Rows follow ``OUTCOMES`` (both_right, only_a, only_b, both_wrong); bins are equal-width
    over [0, 90] degrees (18 bins of 5 degrees by default), left-closed, 90 in the last bin.
    NaN thetas (e.g. a decision-only model) are not counted. Broadcasts over a leading pair
    axis: (P, N) inputs give (P, 4, n_bins).
    """
    th = np.asarray(theta, np.float64)
    codes = np.broadcast_to(outcome_codes(correct_a, correct_b), th.shape)
    edges = np.linspace(0.0, 90.0, n_bins + 1)
    bins = np.clip(np.searchsorted(edges, th, side="right") - 1, 0, n_bins - 1)
    ok = ~np.isnan(th)
    lead = th.shape[:-1]
    num_lead = int(np.prod(lead)) if lead else 1
    pair = np.broadcast_to(np.arange(num_lead).reshape(lead + (1,)) if lead else 0, th.shape)
    flat = (np.asarray(pair) * 4 + codes) * n_bins + bins
    counts = np.bincount(flat[ok].ravel(), minlength=num_lead * 4 * n_bins)
    return counts.reshape(lead + (4, n_bins)).astype(np.int64)


def specialization_by_group(
    groups: np.ndarray,
    correct_a: np.ndarray,
    correct_b: np.ndarray,
    theta: np.ndarray | None = None,
    num_groups: int | None = None,
) -> dict[str, np.ndarray]:
    """Per-group summary of a pair (Fig. 4, 12; specialization.csv), all groups at once.

    ``groups`` (N,) int group id per example (a class, a class group, an attribute value);
    ids < 0 leave the example out. ``correct_a``, ``correct_b`` (N,) bool; ``theta`` (N,)
    confidence angles (optional; NaN entries are skipped in the means). Returns (G,) arrays,
    G = ``num_groups`` or max id + 1:

    - ``n``: examples in the group;
    - ``acc_a``, ``acc_b``: mean correctness in the group;
    - ``error_inconsistency``: mean(r_a XOR r_b) in the group;
    - ``only_a_right``, ``only_b_right``: fractions of the group's examples where only a / only
      b is right (they sum to error_inconsistency);
    - ``mean_theta_only_a``, ``mean_theta_only_b``: mean theta over the group's examples where
      only a / only b is right (per-class specialization, docs/design.md sec. 3).
    Every rate is NaN where its denominator is 0 (empty group, no such example).
    """
    g = np.asarray(groups)
    ra = np.asarray(correct_a, dtype=bool)
    rb = np.asarray(correct_b, dtype=bool)
    if not (g.shape == ra.shape == rb.shape) or g.ndim != 1:
        raise ZoolensError(
            f"groups {g.shape}, correct_a {ra.shape} and correct_b {rb.shape} differ"
        )
    if not np.issubdtype(g.dtype, np.integer):
        raise ZoolensError(f"group ids must be integers, got dtype {g.dtype}")
    keep = g >= 0
    size = (
        int(num_groups) if num_groups is not None else (int(g[keep].max()) + 1 if keep.any() else 0)
    )
    if keep.any() and g[keep].max() >= size:
        raise ZoolensError(f"a group id is >= num_groups ({size})")
    gk, ra, rb = g[keep], ra[keep], rb[keep]

    def count(weights=None):
        return np.bincount(gk, weights=weights, minlength=size).astype(np.float64)

    only_a = ra & ~rb
    only_b = rb & ~ra
    n = count()
    n_only_a, n_only_b = count(only_a), count(only_b)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = {
            "n": n.astype(np.int64),
            "acc_a": count(ra) / n,
            "acc_b": count(rb) / n,
            "error_inconsistency": (n_only_a + n_only_b) / n,
            "only_a_right": n_only_a / n,
            "only_b_right": n_only_b / n,
        }
        if theta is not None:
            th = np.asarray(theta, np.float64)[keep]
            finite = ~np.isnan(th)
            th0 = np.where(finite, th, 0.0)
            for key, mask in (("mean_theta_only_a", only_a), ("mean_theta_only_b", only_b)):
                m = mask & finite
                out[key] = count(th0 * m) / count(m)
        else:
            out["mean_theta_only_a"] = np.full(size, np.nan)
            out["mean_theta_only_b"] = np.full(size, np.nan)
    return out
