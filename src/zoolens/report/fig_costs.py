"""Figures of calibration and cost: reliability before and after temperature scaling, and
accuracy against inference cost (the Pareto front)."""

from __future__ import annotations

import math

import numpy as np

from zoolens.report.tables import Results
from zoolens.report.plotting import (
    FigureResult,
    FigureSkipped,
    MAX_PANELS,
    figure_function,
    floats,
    label,
    new_figure,
)


@figure_function
def fig_reliability(results: Results) -> FigureResult:
    """Reliability diagrams before and after temperature scaling (docs/design.md sec. 3: T minimises the
    calibration-split NLL): accuracy against mean confidence per bin (empty bins left out);
    ECE = sum_b (n_b / n) |acc_b - conf_b|, recomputed from the table."""
    table = results.get("reliability")
    if table is None or len(table) == 0:
        raise FigureSkipped("reliability.csv absent or empty")
    names = list(dict.fromkeys(table.model))
    if results.base in names:
        names.remove(results.base)
        names.insert(0, results.base)
    shown = names[:MAX_PANELS]
    ncols = min(3, len(shown))
    nrows = math.ceil(len(shown) / ncols)
    fig, axes = new_figure(3.2 * ncols, 2.9 * nrows, ncols=ncols, nrows=nrows)
    data: dict = {"models": {}}
    for k, ax in enumerate(axes.flat):
        if k >= len(shown):
            ax.set_visible(False)
            continue
        name = shown[k]
        entry = {}
        ax.plot([0, 1], [0, 1], color="black", lw=0.6, alpha=0.5)
        for stage, color in (("before", "#e31a1c"), ("after", "#1f78b4")):
            part = table[(table.model == name) & (table.stage == stage)].sort_values("bin")
            part = part[part["count"] > 0]
            if len(part) == 0:
                continue
            weight = part["count"].to_numpy(np.float64)
            confidence = part.mean_confidence.to_numpy(np.float64)
            accuracy = part.accuracy.to_numpy(np.float64)
            ece = float(np.sum(weight * np.abs(accuracy - confidence)) / weight.sum())
            # Marker area follows the bin's share of examples: a bin of 1 example is a dot.
            ax.plot(
                confidence,
                accuracy,
                "-",
                lw=1,
                color=color,
                alpha=0.6,
                label=f"{stage} (ECE {ece:.3f})",
            )
            ax.scatter(
                confidence, accuracy, s=4 + 60 * weight / weight.sum(), color=color, zorder=3
            )
            entry[stage] = {
                "mean_confidence": floats(part.mean_confidence),
                "accuracy": floats(part.accuracy),
                "count": [int(c) for c in part["count"]],
                "ece": ece,
            }
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_title(label(name, 40))
        ax.set_xlabel("confidence")
        ax.set_ylabel("accuracy")
        ax.legend(frameon=False, loc="upper left")
        data["models"][name] = entry
    said = (
        [f"{len(shown)} of {len(names)} models shown, the base first"]
        if len(names) > len(shown)
        else []
    )
    return FigureResult(fig, data, shown=said)


PARETO_KIND_STYLE = {
    "single": ("single models", "o", "#1f78b4"),
    "pair": ("pairs", "s", "#7570b3"),
    "greedy": ("greedy prefixes", "^", "#d95f02"),
}


@figure_function
def fig_pareto(results: Results) -> FigureResult:
    """Ensemble accuracy (evaluation split) against inference cost per example, from
    pareto.csv (``zoolens analyze``; ``study.budget``): every single model, pair and greedy
    prefix whose members have a cost (the sum over distinct members), the Pareto front as a
    step line, the base alone marked with a star and, under ``--budget``, the limit as a
    vertical line. ``data["points"]`` holds exactly the plotted rows of the table."""
    pareto = results.get("pareto")
    if pareto is None or len(pareto) == 0:
        raise FigureSkipped(
            "pareto.csv absent or empty (no model card has a cost; "
            "`zoolens collect` fills costs in, `zoolens import --cost` sets them)"
        )
    unit = str(pareto.cost_unit.iloc[0])
    fig, axes = new_figure(6.4, 3.6)
    ax = axes[0][0]
    data: dict = {"unit": unit, "points": {"kind": [], "members": [], "cost": [], "accuracy": []}}
    for kind, (name, marker, color) in PARETO_KIND_STYLE.items():
        rows = pareto[pareto.kind == kind]
        if len(rows) == 0:
            continue
        ax.scatter(
            rows.cost,
            rows.accuracy,
            marker=marker,
            s=18,
            color=color,
            alpha=0.75,
            label=name,
            gid=f"pareto-{kind}",
        )
        data["points"]["kind"] += [kind] * len(rows)
        data["points"]["members"] += [str(m) for m in rows.members]
        data["points"]["cost"] += floats(rows.cost)
        data["points"]["accuracy"] += floats(rows.accuracy)
    front = pareto[pareto.on_front.astype(bool)].sort_values("cost")
    ax.step(front.cost, front.accuracy, where="post", color="black", lw=1, label="Pareto front")
    data["front"] = {
        "members": [str(m) for m in front.members],
        "cost": floats(front.cost),
        "accuracy": floats(front.accuracy),
    }
    base = results.base
    at_base = pareto[(pareto.kind == "single") & (pareto.members == str(base))]
    if len(at_base):
        ax.plot(
            at_base.cost,
            at_base.accuracy,
            marker="*",
            ms=14,
            color="#e7298a",
            markeredgecolor="black",
            ls="none",
            label=f"base: {label(str(base), 24)}",
        )
        data["base"] = {
            "model": str(base),
            "cost": float(at_base.cost.iloc[0]),
            "accuracy": float(at_base.accuracy.iloc[0]),
        }
    limit = (results.summary.get("budget") or {}).get("limits", {}).get(unit)
    if limit is not None:
        ax.axvline(float(limit), color="#999999", ls="--", lw=1, label=f"budget {unit}<={limit:g}")
        data["budget"] = float(limit)
    left_out = [
        str(m) for m in (results.summary.get("pareto") or {}).get("models_without_cost") or []
    ]
    shown = []
    if left_out:
        data["left_out"] = left_out
        shown.append(
            f"left out, no cost in {unit} on their cards: "
            f"{', '.join(label(m, 24) for m in left_out[:10])}"
            + (f" and {len(left_out) - 10} more" if len(left_out) > 10 else "")
        )
    ax.set_xlabel(f"cost per example ({unit}; ensembles: sum over distinct members)")
    ax.set_ylabel("accuracy (evaluation split)")
    ax.set_title("Accuracy against inference cost")
    ax.grid(alpha=0.3)
    ax.legend(frameon=False, fontsize=7)
    return FigureResult(fig, data, shown=shown)
