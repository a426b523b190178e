"""Specialization of every model against the base, over groups of examples (paper Sec. 4.4).

Groups are never hard-coded: each class, each of the zoo's class groups (``Zoo.class_groups``,
e.g. the paper's "nature" ids 0-300 vs "anthropogenic" 500-900) and each value of each
per-example attribute column (``Zoo.attributes``: a source domain, a corruption, annotated
pose …). For each pair (base a, other b) and group: n, both accuracies, error inconsistency,
the fractions of the group where only a / only b is right, and the mean confidence angle
theta = atan2(c_a, c_b) (degrees, 45 = equally confident, above 45 = a more confident) over
the examples where only a / only b is right (Fig. 4, 12). The theta histogram (Fig. 3) splits
every evaluation example by outcome into 18 bins of 5 degrees.

The statistics are ``measure.specialization``'s (``specialization_by_group``,
``theta_histogram``); this module builds the groups and lays out the tables.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from zoolens.measure.specialization import (
    OUTCOMES,
    THETA_BIN_EDGES,
    confidence_angle,
    specialization_by_group,
    theta_histogram,
)
from zoolens.study.tables import TABLE_COLUMNS

# An attribute column with more distinct values than this is a continuous measurement, not
# a grouping; it is skipped (and named in summary.json) rather than producing a huge table.
MAX_ATTRIBUTE_VALUES = 1000
# (other model, example) entries per block of theta_table's histogram.
_THETA_BLOCK_ENTRIES = 2**22


@dataclass
class Groups:
    """(G, N_eval) bool masks with their ``group_type`` and ``group`` labels."""

    masks: np.ndarray
    group_type: list[str]
    group: list[str]
    skipped_attributes: list[str]


def example_groups(
    labels_ev: np.ndarray,
    class_names: list[str],
    class_groups: dict[str, list[int]],
    attributes_ev: pd.DataFrame | None,
) -> Groups:
    """Masks of every class, class group and attribute value over the evaluation examples.

    With multi-label truth an example belongs to every class it holds as a valid label (and to
    a class group when any of its valid labels is in the group).
    """
    labels_ev = np.asarray(labels_ev)
    num_classes = len(class_names)
    if labels_ev.ndim == 2:
        member = labels_ev != 0  # (N, C)
    else:
        member = labels_ev[:, None] == np.arange(num_classes)[None, :]
    masks = [member.T]
    types = ["class"] * num_classes
    names = [str(name) for name in class_names]
    for group_name, ids in class_groups.items():
        masks.append(member[:, list(ids)].any(axis=1)[None, :])
        types.append("class_group")
        names.append(str(group_name))
    skipped = []
    if attributes_ev is not None:
        for column in attributes_ev.columns:
            values = attributes_ev[column]
            present = values.dropna()
            distinct = pd.unique(present)
            if len(distinct) > MAX_ATTRIBUTE_VALUES:
                skipped.append(str(column))
                continue
            text = values.astype("string")
            for value in sorted(distinct, key=lambda v: str(v)):
                masks.append((text == str(value)).fillna(False).to_numpy(bool)[None, :])
                types.append(f"attribute:{column}")
                names.append(str(value))
    return Groups(np.concatenate(masks, axis=0), types, names, skipped)


def specialization_table(
    base: int, names: list[str], correct: np.ndarray, confidence: np.ndarray, groups: Groups
) -> pd.DataFrame:
    """specialization.csv rows for every pair (base, other), other in zoo order.

    ``correct`` (M, N_eval) bool; ``confidence`` (M, N_eval) calibrated top-1 confidence
    (NaN rows for decision-only models: their theta columns are NaN). Groups may overlap
    (multi-label classes, class groups sharing a class, several attribute columns), so every
    (group, example) membership becomes one entry and ``specialization_by_group`` summarises
    all groups in one bincount per other model.
    """
    group_ids, examples = np.nonzero(groups.masks)
    num_groups = groups.masks.shape[0]
    ra = correct[base][examples]
    others = [other for other in range(len(names)) if other != base]
    columns: dict[str, list[np.ndarray]] = {}
    for other in others:
        theta = confidence_angle(confidence[base], confidence[other])[examples]
        stats = specialization_by_group(
            group_ids, ra, correct[other][examples], theta, num_groups=num_groups
        )
        for key, values in stats.items():
            columns.setdefault(key, []).append(np.asarray(values))
    # One frame from whole columns (a frame per model cost ~20 ms each: minutes at 10,000
    # models); the same rows and dtypes as concatenating per-model frames.
    return pd.DataFrame(
        {
            "model_a": names[base],
            "model_b": np.repeat(np.array([names[o] for o in others], dtype=object), num_groups),
            "group_type": np.tile(np.array(groups.group_type, dtype=object), len(others)),
            "group": np.tile(np.array(groups.group, dtype=object), len(others)),
            **{key: np.concatenate(parts) for key, parts in columns.items()},
        }
    )[TABLE_COLUMNS["specialization"]]


def theta_table(
    base: int, names: list[str], correct: np.ndarray, confidence: np.ndarray
) -> pd.DataFrame:
    """theta.csv: counts of theta in 18 bins of 5 degrees, by outcome, for each scored other.

    Outcome of an example for pair (a = base, b): both_right, only_a, only_b, both_wrong
    (``measure.specialization.theta_histogram``; 90 degrees falls in the last bin). Models
    without probabilities (decision-only) have no confidence and no rows.
    """
    others = np.array(
        [m for m in range(len(names)) if m != base and np.isfinite(confidence[m]).all()],
        dtype=np.int64,
    )
    if others.size == 0 or not np.isfinite(confidence[base]).all():
        return pd.DataFrame({column: [] for column in TABLE_COLUMNS["theta"]})
    # In blocks of others: the histogram's (O, N) int64 temporaries would take gigabytes
    # at thousands of models (analyze --pairs base); each other's counts are its own.
    step = max(1, _THETA_BLOCK_ENTRIES // max(1, confidence.shape[1]))
    parts = []
    for lo in range(0, len(others), step):
        block = others[lo : lo + step]
        theta = confidence_angle(confidence[base][None, :], confidence[block])  # (O_b, N)
        parts.append(
            theta_histogram(theta, np.broadcast_to(correct[base], theta.shape), correct[block])
        )  # (O_b, 4, bins)
    counts = np.concatenate(parts)
    num_bins = len(THETA_BIN_EDGES) - 1
    cells = len(OUTCOMES) * num_bins
    return pd.DataFrame(
        {
            "model_a": names[base],
            "model_b": np.repeat([names[o] for o in others], cells),
            "outcome": np.tile(np.repeat(OUTCOMES, num_bins), len(others)),
            "bin_lo": np.tile(THETA_BIN_EDGES[:-1], len(others) * len(OUTCOMES)),
            "bin_hi": np.tile(THETA_BIN_EDGES[1:], len(others) * len(OUTCOMES)),
            "count": counts.reshape(-1).astype(np.int64),
        }
    )[TABLE_COLUMNS["theta"]]
