"""The sanity check after an import: a model at chance level usually means a wrong zoo.

A file imported in the wrong row order (no ``--id-column``), with 1-based labels, or from
the wrong columns still gives a well-formed model, whose every measure is then meaningless.
Two tests catch it, each an exact one-sided binomial test on the N examples (so a weak but
real model on a small evaluation set is not taken for a misaligned one: the test knows how
much a rate on 160 examples can move by chance, where a fixed margin does not):

* accuracy at chance: k right of N, ``p = P(X >= k)``, X ~ Binomial(N, 1/C) (single-label
  zoos); the check fires when ``p >= ALPHA``, i.e. the accuracy is not significantly above
  1/C;
* agreement with the zoo's other models at chance: for each other model b (up to
  ``MAX_OTHERS`` of the most recently added ones, so a check never reads a whole large zoo),
  the number of examples with ``pred_a = pred_b`` against what independent guesses with the
  same class frequencies give, ``q = Σ_c f_a(c)·f_b(c)``, ``p_b = P(X >= agree_b)``,
  X ~ Binomial(N, q). The check fires when no model agrees significantly above chance:
  ``min_b p_b >= ALPHA / (number of models compared)`` (Bonferroni: the best of eight
  comparisons is not held to one comparison's level).

A third check looks the other way (``perfection_problem``): a model right on every example
(at least ``MIN_PERFECT_EXAMPLES``), or with at most a tenth of the errors of every other
model compared (which make at least ``MIN_OTHER_ERRORS``), is more likely a file holding the
labels (a label column imported as decisions, outputs of a model trained on this evaluation
set) than a model that good.

An abstention (class id -1, see ``store.ABSTAIN``) agrees with nothing and is never right.
"""

from __future__ import annotations

from typing import Any

import numpy as np

MAX_OTHERS = 8
CAUSES = (
    "likely causes: rows out of order (join them by id with --id-column), 1-based "
    "labels (--label-offset 1), or the wrong columns (--columns)"
)
# A zoo without example ids cannot join by id: --id-column would be refused, so the hint
# names the option that gives the zoo ids.
CAUSES_WITHOUT_IDS = (
    "likely causes: rows out of order (this zoo has no example ids: create it keyed by "
    "id with --labels-id-column, or --id-column on the first import, then join each file "
    "by --id-column), 1-based labels (--label-offset 1), or the wrong columns (--columns)"
)


ALPHA = 0.05
"""Level of the one-sided binomial tests: a model is "at chance" unless chance is rejected."""


def above_chance_p(successes: int, n: int, chance: float) -> float:
    """One-sided exact binomial p-value that a rate of ``successes`` / ``n`` is above
    ``chance``: ``P(X >= successes)``, X ~ Binomial(n, chance)."""
    from scipy.stats import binom

    if n <= 0:
        return 1.0
    return float(binom.sf(successes - 1, n, min(max(chance, 0.0), 1.0)))


def accuracy_problem(pred: np.ndarray, labels: np.ndarray, num_classes: int) -> str | None:
    """A message when the top-1 accuracy is not significantly above chance (1/C); None
    otherwise (and for multi-label zoos, whose chance level depends on the label counts)."""
    if labels.ndim != 1 or num_classes < 2:
        return None
    n = len(labels)
    right = int(np.sum(pred == labels))
    chance = 1.0 / num_classes
    p = above_chance_p(right, n, chance)
    if p < ALPHA:
        return None
    return (
        f"accuracy {right / n:.4f} is at chance level (1/{num_classes} = {chance:.4f}; "
        f"{right} of {n} right, one-sided binomial test p = {p:.2g})"
    )


def agreement_problem(
    pred: np.ndarray, others: dict[str, np.ndarray], num_classes: int
) -> str | None:
    """A message when the top-1 agreement with every model in ``others`` is at chance."""
    if not others:
        return None
    n = len(pred)
    freq = _class_frequencies(pred, num_classes)
    # (p-value, agreement, chance agreement, name) of each other model
    rows = []
    for name, other in others.items():
        same = int(np.sum((pred == other) & (pred >= 0)))
        expected = float(freq @ _class_frequencies(other, num_classes))
        rows.append((above_chance_p(same, n, expected), same / max(n, 1), expected, name))
    p, agree, expected, name = min(rows, key=lambda row: row[0])
    if p < ALPHA / len(rows):
        return None
    return (
        f"its top-1 agreement with the zoo's other models is at chance level (highest: "
        f"{agree:.4f} with {name!r}, chance {expected:.4f}; one-sided binomial test p = "
        f"{p:.2g}, level {ALPHA:g}/{len(rows)})"
    )


MIN_PERFECT_EXAMPLES = 100  # a real 95 % model is right on all of 100 examples 0.6 % of the time
MIN_OTHER_ERRORS = 20
PERFECTION_CAUSES = (
    "the file may contain the labels (a label column imported as outputs, or outputs of a "
    "model fitted on this evaluation set); check the file and --columns"
)


def perfection_problem(
    pred: np.ndarray, labels: np.ndarray, others: dict[str, np.ndarray]
) -> str | None:
    """A message when the model is right on every example, or far more often than every
    model in ``others`` (module doc); None otherwise and for multi-label zoos."""
    if labels.ndim != 1:
        return None
    n = len(labels)
    errors = int(np.sum(pred != labels))
    if errors == 0 and n >= MIN_PERFECT_EXAMPLES:
        return f"right on every one of the {n} examples: {PERFECTION_CAUSES}"
    if not others:
        return None
    fewest, best = min((int(np.sum(o != labels)), m) for m, o in others.items())
    if fewest >= MIN_OTHER_ERRORS and 10 * errors <= fewest:
        return (
            f"{errors} errors in {n} examples where the best of the zoo's other models "
            f"({best!r}) makes {fewest}: {PERFECTION_CAUSES}"
        )
    return None


def _class_frequencies(pred: np.ndarray, num_classes: int) -> np.ndarray:
    valid = pred[(pred >= 0) & (pred < num_classes)]
    return np.bincount(valid, minlength=num_classes)[:num_classes] / max(len(pred), 1)


def check_new_model(zoo: Any, name: str, pred: np.ndarray) -> list[str]:
    """The sanity problems of a model about to be stored under ``name`` with top-1
    predictions ``pred`` (N,) in zoo order: a list of one-line messages, each ending with
    its likely causes (empty when fine)."""
    pred = np.asarray(pred, dtype=np.int64)
    problems = []
    # an unlabelled zoo has no accuracy to check: agreement with the other models only
    labels = np.asarray(zoo.labels) if zoo.has_labels else None
    acc = accuracy_problem(pred, labels, int(zoo.num_classes)) if labels is not None else None
    if acc is not None:
        problems.append(acc)
    names = [m for m in zoo.models if m != name][-MAX_OTHERS:]
    others = {m: zoo.predictions(m) for m in names}
    agree = agreement_problem(pred, others, int(zoo.num_classes))
    if agree is not None:
        problems.append(agree)
    if problems:
        causes = CAUSES if zoo.example_ids is not None else CAUSES_WITHOUT_IDS
        return [f"{'; '.join(problems)}; {causes}"]
    perfect = perfection_problem(pred, labels, others) if labels is not None else None
    return [perfect] if perfect is not None else []
