"""Figures over representations: feature combination (Fig. 6), stacking and transfer
(Fig. 7) and interpolation between two models (Fig. 11). Definitions: docs/design.md sec. 3."""

from __future__ import annotations

import math

import numpy as np

from zoolens.report.tables import Results
from zoolens.report.plotting import (
    FigureResult,
    FigureSkipped,
    MAX_PANELS,
    OTHER_COLORS,
    figure_function,
    floats,
    label,
    new_figure,
    pair_label,
    pair_rows,
    place_labels,
)


def _two_panels(results: Results, left: str, right: str, what: str) -> tuple[bool, bool, list[str]]:
    """Which of a two-panel figure's tables (left, right) hold rows, and a note for each one
    that does not; FigureSkipped when neither does."""
    have = [t is not None and len(t) > 0 for t in (results.get(left), results.get(right))]
    if not any(have):
        raise FigureSkipped(f"{left}.csv and {right}.csv absent or empty")
    notes = [
        f"{what}: {name}.csv absent, {side} panel left out"
        for name, side, present in ((left, "left", have[0]), (right, "right", have[1]))
        if not present
    ]
    return have[0], have[1], notes


@figure_function
def fig6_feature_combination(results: Results) -> FigureResult:
    """Paper Fig. 6 (Sec. 4.6): left, linear-probe accuracy on concatenated embeddings keeping a
    fraction f of model A's dimensions (f = 1: A alone, f = 0: B alone), mean over random draws
    with the min-max range; right, accuracy of the k most diverse (least correlated) dimensions
    against k random ones, with the target accuracy and the smallest k reaching it."""
    probe, diversity = results.get("probe"), results.get("diversity")
    have_probe, have_div, notes = _two_panels(results, "probe", "diversity", "feature combination")
    shown: list[str] = []
    fig, axes = new_figure(5 * (have_probe + have_div), 3.3, ncols=have_probe + have_div)
    panels = iter(axes[0])
    data: dict = {}
    base = results.base
    if have_probe:
        ax = next(panels)
        rows = pair_rows(probe, base)
        data["probe"] = {}
        for k, ((a, b), part) in enumerate(rows.groupby(["model_a", "model_b"], sort=False)):
            if k >= MAX_PANELS:
                shown.append(
                    f"{MAX_PANELS} of "
                    f"{rows.groupby(['model_a', 'model_b']).ngroups} probe pairs shown"
                )
                break
            stats = part.groupby("rate").accuracy.agg(["mean", "min", "max", "count"])
            color = OTHER_COLORS[k % len(OTHER_COLORS)] if k else "#1f78b4"
            ax.plot(
                stats.index, stats["mean"], "-o", ms=3, color=color, label=pair_label(a, b, base)
            )
            ax.fill_between(stats.index, stats["min"], stats["max"], color=color, alpha=0.15)
            data["probe"][f"{a}\t{b}"] = {
                "model_a": a,
                "model_b": b,
                "rate": floats(stats.index),
                "mean": floats(stats["mean"]),
                "min": floats(stats["min"]),
                "max": floats(stats["max"]),
                "draws": [int(c) for c in stats["count"]],
            }
        ax.set_xlabel(f"fraction f of {label(base or 'model A', 24)}'s dimensions kept")
        ax.set_ylabel("linear probe accuracy")
        ax.set_title("Combining features of two models\nband: min to max over draws", fontsize=8)
        ax.grid(alpha=0.3)
        ax.legend(frameon=False, title="other model")
    if have_div:
        ax = next(panels)
        rows = pair_rows(diversity, base)
        data["diversity"] = {}
        for k, ((a, b), part) in enumerate(rows.groupby(["model_a", "model_b"], sort=False)):
            if k >= 3:
                shown.append("3 pairs shown in the dimensions-to-accuracy panel")
                break
            color = OTHER_COLORS[k % len(OTHER_COLORS)] if k else "#1f78b4"
            entry: dict = {
                "model_a": a,
                "model_b": b,
                "target_accuracy": float(part.target_accuracy.iloc[0]),
            }
            for selection, ls in (("diverse", "-"), ("random", "--")):
                sel = part[part.selection == selection].sort_values("k")
                if len(sel) == 0:
                    continue
                ax.plot(
                    sel.k,
                    sel.accuracy,
                    ls,
                    marker="o",
                    ms=3,
                    color=color,
                    label=f"{pair_label(a, b, base)}: {selection}",
                )
                reach = sel[sel.accuracy >= sel.target_accuracy]
                entry[selection] = {
                    "k": [int(v) for v in sel.k],
                    "accuracy": floats(sel.accuracy),
                    "k_to_target": int(reach.k.iloc[0]) if len(reach) else None,
                }
                if len(reach):
                    ax.plot(
                        [reach.k.iloc[0]],
                        [reach.accuracy.iloc[0]],
                        marker="*",
                        ms=10,
                        color=color,
                        markeredgecolor="black",
                    )
            ax.axhline(
                entry["target_accuracy"],
                color=color,
                lw=0.8,
                ls=":",
                label=f"{pair_label(a, b, base)}: target",
            )
            data["diversity"][f"{a}\t{b}"] = entry
        ax.set_xlabel("dimensions kept (k)")
        ax.set_ylabel("linear probe accuracy")
        ax.set_title("Dimensions to reach the target accuracy")
        ax.grid(alpha=0.3)
        ax.legend(frameon=False)
    return FigureResult(fig, data, notes, shown)


@figure_function
def fig7_transfer(results: Results) -> FigureResult:
    """Paper Fig. 7: left, stacked generalization: a downstream probe on both models'
    embeddings (value_stacked) against each alone; right, downstream against upstream
    accuracy, one dot per model."""
    stacking, transfer = results.get("stacking"), results.get("transfer")
    have_s, have_t, notes = _two_panels(results, "stacking", "transfer", "downstream")
    fig, axes = new_figure(5 * (have_s + have_t), 3.4, ncols=have_s + have_t)
    panels = iter(axes[0])
    data: dict = {}
    shown_notes: list[str] = []
    if have_s:
        ax = next(panels)
        rows = pair_rows(stacking, results.base).head(8)
        x = np.arange(len(rows))
        w = 0.27
        ax.bar(x - w, rows.value_a, w, color="#1f78b4", label="model A alone")
        ax.bar(x, rows.value_b, w, color="#e31a1c", label="model B alone")
        ax.bar(x + w, rows.value_stacked, w, color="#33a02c", label="stacked (A + B)")
        ax.set_xticks(
            x,
            [pair_label(a, b, results.base) for a, b in zip(rows.model_a, rows.model_b)],
            rotation=25,
            ha="right",
        )
        metrics = sorted(set(rows.downstream_metric))
        ax.set_ylabel("downstream " + " / ".join(metrics))
        lo = float(np.nanmin(rows[["value_a", "value_b", "value_stacked"]].to_numpy(np.float64)))
        bottom = max(0.0, lo - 0.1)
        ax.set_ylim(bottom, None)
        if bottom > 0:
            # bars that do not start at zero exaggerate differences: say so where they are
            ax.set_title(
                f"Stacked generalization\ny-axis starts at {bottom:.2f}, not 0", fontsize=8
            )
            ax.axhline(bottom, color="black", lw=1.2)
            shown_notes.append(f"the stacking panel's y-axis starts at {bottom:.2f}, not at 0")
        else:
            ax.set_title("Stacked generalization")
        ax.legend(frameon=False, fontsize=6)
        data["stacking"] = {
            "model_a": [str(v) for v in rows.model_a],
            "model_b": [str(v) for v in rows.model_b],
            "value_a": floats(rows.value_a),
            "value_b": floats(rows.value_b),
            "value_stacked": floats(rows.value_stacked),
        }
    if have_t:
        ax = next(panels)
        data["transfer"] = {}
        assert transfer is not None  # have_t
        for k, (metric, part) in enumerate(transfer.groupby("downstream_metric", sort=False)):
            color = OTHER_COLORS[k % len(OTHER_COLORS)] if k else "#1f78b4"
            ax.scatter(
                part.upstream_accuracy,
                part.downstream_value,
                s=16,
                color=color,
                label=f"downstream {label(metric, 20)}",
            )
            if len(part) <= 15:
                unlabelled = place_labels(
                    ax,
                    part.upstream_accuracy.to_numpy(np.float64),
                    part.downstream_value.to_numpy(np.float64),
                    [label(m, 22) for m in part.model],
                )
                if unlabelled:
                    shown_notes.append(
                        f"{len(unlabelled)} crowded point(s) of the transfer panel left "
                        "unlabelled (transfer.csv lists every model)"
                    )
            data["transfer"][metric] = {
                "models": [str(m) for m in part.model],
                "upstream_accuracy": floats(part.upstream_accuracy),
                "downstream_value": floats(part.downstream_value),
            }
        ax.set_xlabel("upstream accuracy")
        ax.set_ylabel("downstream value")
        ax.set_title("Downstream vs upstream")
        ax.grid(alpha=0.3)
        ax.legend(frameon=False)
    return FigureResult(fig, data, notes, shown=shown_notes)


@figure_function
def fig11_interpolation(results: Results) -> FigureResult:
    """Paper Fig. 11: ensemble accuracy of w·q_a + (1 - w)·q_b against the weight w ("weight"),
    and its class-aware variant ("class_aware"); w = 1 is model A alone."""
    table = results.get("interpolation")
    if table is None or len(table) == 0:
        raise FigureSkipped("interpolation.csv absent or empty")
    groups = list(table.groupby(["model_a", "model_b"], sort=False))[:MAX_PANELS]
    fig, axes = new_figure(
        3.6 * min(3, len(groups)),
        2.9 * math.ceil(len(groups) / 3),
        ncols=min(3, len(groups)),
        nrows=math.ceil(len(groups) / 3),
    )
    data: dict = {"pairs": []}
    for k, ax in enumerate(axes.flat):
        if k >= len(groups):
            ax.set_visible(False)
            continue
        (a, b), part = groups[k]
        entry: dict = {"model_a": a, "model_b": b, "modes": {}}
        for mode, ls in zip(dict.fromkeys(part["mode"]), ("-", "--", ":", "-.")):
            sel = part[part["mode"] == mode].sort_values("weight")
            ax.plot(sel.weight, sel.ensemble_acc, ls, marker="o", ms=3, label=label(mode, 20))
            entry["modes"][mode] = {
                "weight": floats(sel.weight),
                "ensemble_acc": floats(sel.ensemble_acc),
            }
        ax.set_xlabel(f"weight w on {label(a, 24)}")
        ax.set_ylabel("ensemble accuracy")
        ax.set_title(f"with {label(b, 36)}")
        ax.grid(alpha=0.3)
        ax.legend(frameon=False)
        data["pairs"].append(entry)
    return FigureResult(fig, data)
