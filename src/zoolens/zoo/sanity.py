"""The sanity check after an import: a model at chance level usually means a wrong zoo.

A file imported in the wrong row order (no ``--id-column``), with 1-based labels, or from
the wrong columns still gives a well-formed model, whose every measure is then meaningless.
Two tests catch it, each against a three-standard-error binomial bound on N examples:

* accuracy at or below chance: ``acc <= 1/C + 3·sqrt((1/C)(1 − 1/C)/N)`` (single-label zoos);
* agreement with the zoo's other models at chance: for each other model b (up to
  ``MAX_OTHERS`` of the most recently added ones, so a check never reads a whole large zoo),
  the top-1 agreement ``P(pred_a = pred_b)`` against what independent guesses with the same
  class frequencies give, ``q = Σ_c f_a(c)·f_b(c)``, bound ``q + 3·sqrt(q(1 − q)/N)``. The
  check fires when even the best-agreeing model is within its bound.

An abstention (class id -1, see ``store.ABSTAIN``) agrees with nothing and is never right.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

MAX_OTHERS = 8
CAUSES = (
    "likely causes: rows out of order (join them by id with --id-column), 1-based "
    "labels (--label-offset 1), or the wrong columns (--columns)"
)


def chance_bound(p: float, n: int) -> float:
    """p plus three binomial standard errors of a rate p on n examples."""
    return p + 3.0 * math.sqrt(max(p * (1.0 - p), 0.0) / max(n, 1))


def accuracy_problem(pred: np.ndarray, labels: np.ndarray, num_classes: int) -> str | None:
    """A message when the top-1 accuracy is at or below chance; None otherwise (and for
    multi-label zoos, whose chance level depends on the label counts)."""
    if labels.ndim != 1 or num_classes < 2:
        return None
    acc = float(np.mean(pred == labels))
    chance = 1.0 / num_classes
    bound = chance_bound(chance, len(labels))
    if acc > bound:
        return None
    return (
        f"accuracy {acc:.4f} is at chance level (1/{num_classes} = {chance:.4f}, three "
        f"standard errors {bound:.4f})"
    )


def agreement_problem(
    pred: np.ndarray, others: dict[str, np.ndarray], num_classes: int
) -> str | None:
    """A message when the top-1 agreement with every model in ``others`` is at chance."""
    if not others:
        return None
    n = len(pred)
    freq = _class_frequencies(pred, num_classes)
    # (margin over the chance bound, agreement, chance agreement, name) of each other model
    rows = []
    for name, other in others.items():
        agree = float(np.mean((pred == other) & (pred >= 0)))
        expected = float(freq @ _class_frequencies(other, num_classes))
        rows.append((agree - chance_bound(expected, n), agree, expected, name))
    margin, agree, expected, name = max(rows, key=lambda row: row[0])
    if margin > 0:
        return None
    return (
        f"its top-1 agreement with the zoo's other models is at chance level (highest: "
        f"{agree:.4f} with {name!r}, chance {expected:.4f})"
    )


def _class_frequencies(pred: np.ndarray, num_classes: int) -> np.ndarray:
    valid = pred[(pred >= 0) & (pred < num_classes)]
    return np.bincount(valid, minlength=num_classes)[:num_classes] / max(len(pred), 1)


def check_new_model(zoo: Any, name: str, pred: np.ndarray) -> list[str]:
    """The sanity problems of a model about to be stored under ``name`` with top-1
    predictions ``pred`` (N,) in zoo order: a list of one-line messages (empty when fine)."""
    pred = np.asarray(pred, dtype=np.int64)
    problems = []
    # an unlabelled zoo has no accuracy to check: agreement with the other models only
    acc = (
        accuracy_problem(pred, np.asarray(zoo.labels), int(zoo.num_classes))
        if zoo.has_labels
        else None
    )
    if acc is not None:
        problems.append(acc)
    others = [m for m in zoo.models if m != name][-MAX_OTHERS:]
    agree = agreement_problem(pred, {m: zoo.predictions(m) for m in others}, int(zoo.num_classes))
    if agree is not None:
        problems.append(agree)
    return problems
