"""Choosing under an inference budget, and the accuracy-cost Pareto front.

A model's cost comes from its card (``ModelCard.cost``: parameters, multiply-accumulates,
latency per example; filled in by ``zoolens collect`` or set by hand). The cost of an
ensemble is the sum of its *distinct* members' costs: a member repeated by greedy selection
runs once and only weighs more. A budget is one or more limits in the units of
``zoo.cards.COST_UNITS`` (``gflops=8``, ``latency_ms=20``, ``mparams=50``); an ensemble fits
when its cost in every unit is at most the limit.

``analyze --budget`` restricts (a) the best sidekick to pairs (base, X) that fit and (b) the
greedy selection to steps that keep the ensemble within the budget
(``measure.ensemble.greedy_forward_selection(costs=, budget=)``). Models whose card lacks a
cost in a budget unit are left out of both, and named in ``summary.json``.

The Pareto table (``pareto.csv``, columns ``tables.TABLE_COLUMNS["pareto"]``) lists every single
model, every pair (ensemble accuracy from pairs.csv) and every greedy prefix (greedy.csv)
whose members all have a cost, with the evaluation-split accuracy and the cost in one unit
(the budget's first unit; without a budget the first of gflops, params, latency_ms that any
card has). ``on_front``: no other row is at most as costly and at least as accurate with one
of the two strict (the first of identical points is kept).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from zoolens.errors import ZoolensError
from zoolens.study.tables import TABLE_COLUMNS
from zoolens.zoo.cards import COST_UNITS, cost_in, parse_cost_items

DEFAULT_UNITS = ("gflops", "params", "latency_ms")
# a sum of float costs equal to the limit fits
_SLACK = 1e-9


def _fits(cost: np.ndarray, limits: np.ndarray) -> np.ndarray:
    return np.all(cost <= limits + _SLACK * np.maximum(np.abs(limits), 1.0), axis=-1)


@dataclass
class Budget:
    """Each model's cost in the budget's units, and the limits.

    ``costs``: (M, U) float64, NaN where a card has no cost in that unit; ``priced``: (M,)
    bool, a cost in every unit; ``left_out``: the names of the others.
    """

    names: list[str]
    units: list[str]
    limits: np.ndarray
    costs: np.ndarray
    text: str = ""
    priced: np.ndarray = field(init=False)
    sidekicks_before_budget: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.priced = np.isfinite(self.costs).all(axis=1)

    @property
    def left_out(self) -> list[str]:
        return [name for name, ok in zip(self.names, self.priced) if not ok]

    def cost_of(self, members: Sequence[str]) -> np.ndarray:
        """(U,) summed cost of the distinct ``members`` (NaN when one has no cost)."""
        index = sorted({self.names.index(m) for m in members})
        return self.costs[index].sum(axis=0)

    def fits(self, members: Sequence[str]) -> bool:
        cost = self.cost_of(members)
        return bool(np.isfinite(cost).all() and _fits(cost, self.limits))

    def sidekicks(self, ranked: list[dict[str, Any]], base: str) -> list[dict[str, Any]]:
        """The ranked sidekicks (``analyze._ranked_sidekicks``) whose pair with the base fits;
        remembers how many there were before the budget (``summary``'s
        ``sidekicks_before_budget``: a budget that excludes every pair says so)."""
        self.sidekicks_before_budget = len(ranked)
        return [row for row in ranked if self.fits([base, row["model"]])]

    def describe(self) -> str:
        return ", ".join(f"{unit}<={limit:g}" for unit, limit in zip(self.units, self.limits))

    def summary(self, base: str, sidekicks: list[dict[str, Any]]) -> dict[str, Any]:
        base_cost = self.cost_of([base])
        return {
            "budget": self.text,
            "limits": dict(zip(self.units, self.limits.tolist())),
            "base_cost": dict(zip(self.units, base_cost.tolist())),
            "base_fits": self.fits([base]),
            "left_out_without_cost": self.left_out,
            "best_sidekick": sidekicks[0] if sidekicks else None,
            # pairs with the base that have an ensemble, before the budget excluded any
            "sidekicks_before_budget": self.sidekicks_before_budget,
            "sidekicks_within_budget": len(sidekicks),
            "sidekick_cost": (
                dict(zip(self.units, self.cost_of([base, sidekicks[0]["model"]]).tolist()))
                if sidekicks
                else None
            ),
            "note": (
                f"models without a cost in {', '.join(self.units)} are left out of budgeted "
                f"selection: {', '.join(self.left_out)}"
                if self.left_out
                else None
            ),
        }


def model_costs(cards: Sequence[Any], unit: str) -> np.ndarray:
    """(M,) each card's cost in ``unit`` (NaN when absent)."""
    return np.array(
        [np.nan if (c := cost_in(card, unit)) is None else c for card in cards], dtype=np.float64
    )


def parse_budget(text: str, names: Sequence[str], cards: Sequence[Any]) -> Budget:
    """The Budget of ``--budget TEXT`` for these models; ZoolensError for an unknown unit, a
    unit no card has, or no model with every cost."""
    limits = parse_cost_items(text, "--budget")
    units = list(limits)
    costs = np.stack([model_costs(cards, unit) for unit in units], axis=1)
    for k, unit in enumerate(units):
        if not np.isfinite(costs[:, k]).any():
            field_name = COST_UNITS[unit][0]
            raise ZoolensError(
                f"--budget {text!r}: no model card has a cost in {unit} "
                f"(card field cost.{field_name}); `zoolens collect` fills costs "
                f"in, `zoolens import --cost` sets them by hand"
            )
    return Budget(list(names), units, np.array([limits[u] for u in units]), costs, text)


def pareto_unit(budget: Budget | None, cards: Sequence[Any]) -> str | None:
    """The unit of the Pareto table: the budget's first unit, else the first default unit
    that some card has, else None (no model has a cost)."""
    if budget is not None:
        return budget.units[0]
    for unit in DEFAULT_UNITS:
        if np.isfinite(model_costs(cards, unit)).any():
            return unit
    return None


def pareto_front(cost: np.ndarray, accuracy: np.ndarray) -> np.ndarray:
    """(n,) bool: points not dominated (lower-or-equal cost and higher-or-equal accuracy, one
    strict); of identical points only the first. Sort by cost, then accuracy descending; a
    point is on the front when it beats the best accuracy of every cheaper-or-equal point
    before it."""
    n = len(cost)
    if n == 0:
        return np.zeros(0, dtype=bool)
    order = np.lexsort((np.arange(n), -accuracy, cost))
    acc_sorted = accuracy[order]
    best_before = np.concatenate([[-np.inf], np.maximum.accumulate(acc_sorted)[:-1]])
    front = np.zeros(n, dtype=bool)
    front[order] = acc_sorted > best_before
    return front


def pareto_table(
    names: Sequence[str],
    cards: Sequence[Any],
    base: str,
    models: pd.DataFrame,
    pairs: pd.DataFrame,
    greedy: pd.DataFrame,
    budget: Budget | None,
) -> pd.DataFrame:
    """pareto.csv (see the module docstring); an empty table when no model has a cost."""
    unit = pareto_unit(budget, cards)
    if unit is None:
        return pd.DataFrame({c: [] for c in TABLE_COLUMNS["pareto"]})
    cost = dict(zip(names, model_costs(cards, unit)))
    rows: list[tuple[str, list[str], float]] = []
    rows += [("single", [m], a) for m, a in zip(models["model"], models["accuracy"])]
    scored = pairs[pairs["ensemble_acc"].notna()]
    rows += [
        ("pair", [a, b], acc)
        for a, b, acc in zip(scored["model_a"], scored["model_b"], scored["ensemble_acc"])
    ]
    rows += [
        ("greedy", str(members).split(";"), acc)
        for members, acc in zip(greedy["members"], greedy["evaluation_acc"])
        if str(members).count(";")
    ]
    out = []
    for kind, members, accuracy in rows:
        distinct = list(dict.fromkeys(members))
        total = float(sum(cost[m] for m in distinct))
        if not np.isfinite(total) or not np.isfinite(accuracy):
            continue
        out.append(
            {
                "kind": kind,
                "members": ";".join(members),
                "size": len(distinct),
                "cost_unit": unit,
                "cost": total,
                "accuracy": float(accuracy),
                "with_base": base in distinct,
                "fits_budget": True if budget is None else budget.fits(distinct),
            }
        )
    frame = pd.DataFrame(out, columns=[c for c in TABLE_COLUMNS["pareto"] if c != "on_front"])
    frame["on_front"] = pareto_front(
        frame["cost"].to_numpy(float), frame["accuracy"].to_numpy(float)
    )
    return frame[TABLE_COLUMNS["pareto"]]


def pareto_summary(
    pareto: pd.DataFrame, names: Sequence[str], cards: Sequence[Any]
) -> dict[str, Any]:
    """summary.json's "pareto" block: the unit, and the models left out for want of a cost
    in it (the report's figure says so)."""
    unit = str(pareto["cost_unit"].iloc[0])
    costs = model_costs(cards, unit)
    return {
        "cost_unit": unit,
        "models_without_cost": [n for n, c in zip(names, costs) if not np.isfinite(c)],
        "front": [str(m) for m in pareto.loc[pareto["on_front"], "members"]],
    }
