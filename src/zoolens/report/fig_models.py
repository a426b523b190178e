"""Figures about which model is right where: theta histograms (Fig. 3), per-class and
per-group specialization (Fig. 4, 12) and greedy ensemble selection (Fig. 5).
Definitions: docs/design.md sec. 3."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from zoolens.report.tables import Results, pairs_with_base
from zoolens.report.plotting import (
    FigureResult,
    FigureSkipped,
    MAX_GROUPS,
    MAX_PANELS,
    OTHER_COLORS,
    figure_function,
    floats,
    label,
    new_figure,
    ordered_categories,
)


def _representative_others(results: Results, candidates: list[str]) -> list[str]:
    """Up to MAX_PANELS models to show beside the base: one per category in paper order (the
    first listed), then the rest in file order."""
    category = {}
    models = results.get("models")
    if models is not None:
        category = dict(zip(models.model, models.category))
    by_cat: dict[str, list[str]] = {}
    for name in candidates:
        by_cat.setdefault(category.get(name, "?"), []).append(name)
    chosen = [by_cat[c][0] for c in ordered_categories(by_cat) if c != "?"]
    chosen += [n for n in candidates if n not in chosen]
    return chosen[:MAX_PANELS]


OUTCOME_STYLE = {
    "only_a": ("base right only", "#1f78b4", "-"),
    "only_b": ("other right only", "#e31a1c", "-"),
    "both_right": ("both right", "#33a02c", ":"),
    "both_wrong": ("both wrong", "#777777", ":"),
}


@figure_function
def fig3_theta(results: Results) -> FigureResult:
    """Paper Fig. 3: histograms of theta = atan2(c_a, c_b) in degrees (45 = equally confident,
    above 45 = the base more confident), one line per outcome, each normalised to sum 1 over
    its own examples (the raw counts are in ``data``)."""
    theta = results.get("theta")
    if theta is None or len(theta) == 0:
        raise FigureSkipped("theta.csv absent or empty")
    base = results.base
    rows = theta[theta.model_a == base] if base is not None else theta.iloc[0:0]
    if len(rows) == 0:
        raise FigureSkipped(f"theta.csv has no pair with model_a = the base {base!r}")
    others = _representative_others(results, list(dict.fromkeys(rows.model_b)))
    ncols = min(3, len(others))
    nrows = math.ceil(len(others) / ncols)
    fig, axes = new_figure(3.4 * ncols, 2.5 * nrows, ncols=ncols, nrows=nrows)
    category = {}
    if results.get("models") is not None:
        category = dict(zip(results.tables["models"].model, results.tables["models"].category))
    data: dict = {"base": base, "pairs": []}
    for k, ax in enumerate(axes.flat):
        if k >= len(others):
            ax.set_visible(False)
            continue
        other = others[k]
        sub = rows[rows.model_b == other]
        entry: dict[str, Any] = {
            "model_a": base,
            "model_b": other,
            "category": category.get(other),
            "counts": {},
            "fractions": {},
        }
        for outcome, (name, color, ls) in OUTCOME_STYLE.items():
            part = sub[sub.outcome == outcome].sort_values("bin_lo")
            if len(part) == 0:
                continue
            counts = part["count"].to_numpy(np.float64)
            total = counts.sum()
            frac = counts / total if total > 0 else np.zeros_like(counts)
            edges = np.append(part.bin_lo.to_numpy(np.float64), part.bin_hi.iloc[-1])
            ax.stairs(
                frac, edges, color=color, linestyle=ls, lw=1.4, label=f"{name} (n={int(total)})"
            )
            entry["bin_lo"] = floats(part.bin_lo)
            entry["bin_hi"] = floats(part.bin_hi)
            entry["counts"][outcome] = floats(counts)
            entry["fractions"][outcome] = floats(frac)
        ax.axvline(45, color="black", lw=0.6, alpha=0.5)
        ax.set_xlim(0, 90)
        ax.set_title(label(other, 40) + (f"  [{category[other]}]" if other in category else ""))
        ax.set_xlabel("theta (degrees)")
        ax.set_ylabel("fraction of the outcome's examples")
        ax.legend(fontsize=7, loc="upper left", framealpha=0.85, edgecolor="none")
        data["pairs"].append(entry)
    shown = []
    n_all = rows.model_b.nunique()
    if n_all > len(others):
        shown.append(f"{len(others)} of {n_all} pairs shown, one per category first")
    return FigureResult(fig, data, shown=shown)


def best_sidekick(results: Results) -> pd.Series | None:
    """The (base, other) pair with the highest ensemble accuracy (first on ties), or None."""
    pairs = results.get("pairs")
    if pairs is None or results.base is None:
        return None
    with_base = pairs_with_base(pairs, results.base)
    acc = with_base.ensemble_acc.to_numpy(np.float64)
    if len(with_base) == 0 or not np.isfinite(acc).any():
        return None
    return with_base.iloc[int(np.nanargmax(acc))]


def _specialization_pair(results: Results, spec: pd.DataFrame) -> str:
    """The other model drawn: the base's best sidekick if the table has it, else the model
    whose pair with the base has the highest mean EI over groups."""
    sidekick = best_sidekick(results)
    if sidekick is not None and sidekick.other in set(spec.model_b):
        return str(sidekick.other)
    return str(spec.groupby("model_b").error_inconsistency.mean().idxmax())


def _specialization_panels(results: Results, kinds: list[str], title: str) -> FigureResult:
    from matplotlib.ticker import FuncFormatter

    spec = results.get("specialization")
    if spec is None or len(spec) == 0:
        raise FigureSkipped("specialization.csv absent or empty")
    base = results.base
    spec = spec[spec.model_a == base]
    if len(spec) == 0:
        raise FigureSkipped(f"specialization.csv has no pair with model_a = the base {base!r}")
    if "group_type" not in spec.columns:
        spec = spec.assign(group_type="class")
    spec = spec[spec.group_type.isin(kinds)] if kinds != ["*"] else spec[spec.group_type != "class"]
    if len(spec) == 0:
        raise FigureSkipped(f"specialization.csv has no {title} rows")
    other = _specialization_pair(results, spec)
    spec = spec[spec.model_b == other]
    types = list(dict.fromkeys(spec.group_type))[:3]
    # decision-only models have no confidence: the theta panel would be empty
    with_theta = bool(
        np.isfinite(spec[["mean_theta_only_a", "mean_theta_only_b"]].to_numpy(np.float64)).any()
    )
    fig, axes = new_figure(
        10 if with_theta else 5.5,
        0.5 + max(2.4, 0.16 * min(MAX_GROUPS, spec.group.nunique())) * len(types),
        ncols=2 if with_theta else 1,
        nrows=len(types),
    )
    data: dict = {"model_a": base, "model_b": other, "group_types": {}}
    shown = []
    for row, gtype in enumerate(types):
        part = spec[spec.group_type == gtype].copy()
        part["diff"] = part.only_b_right - part.only_a_right
        part = part.sort_values("diff", kind="stable")
        if len(part) > MAX_GROUPS:
            shown.append(
                f"{gtype}: {MAX_GROUPS} of {len(part)} groups shown, the most "
                f"specialised either way"
            )
            half = MAX_GROUPS // 2
            part = pd.concat([part.iloc[:half], part.iloc[-half:]])
        y = np.arange(len(part))
        names = [label(g, 28) for g in part.group]
        ax = axes[row][0]
        ax.barh(y, -part.only_a_right, color="#1f78b4", label="only the base right")
        ax.barh(y, part.only_b_right, color="#e31a1c", label="only the other right")
        ax.axvline(0, color="black", lw=0.6)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{abs(v):g}"))
        ax.set_yticks(y, names)
        ax.set_xlabel("fraction of the group's examples (base ← | → other)")
        ax.set_title(f"Who is right where they disagree — {label(gtype, 30)}")
        # Below the axes: bars fill the panel, a legend inside would hide some.
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
        data["group_types"][gtype] = {
            "groups": [str(g) for g in part.group],
            "n": floats(part.n),
            "only_a_right": floats(part.only_a_right),
            "only_b_right": floats(part.only_b_right),
            "mean_theta_only_a": floats(part.mean_theta_only_a),
            "mean_theta_only_b": floats(part.mean_theta_only_b),
        }
        if not with_theta:
            continue
        ax2 = axes[row][1]
        ax2.scatter(part.mean_theta_only_a, y, color="#1f78b4", s=14, label="only the base right")
        ax2.scatter(part.mean_theta_only_b, y, color="#e31a1c", s=14, label="only the other right")
        ax2.axvline(45, color="black", lw=0.6, alpha=0.5)
        ax2.set_yticks(y, names)
        ax2.set_xlabel("mean theta (degrees; > 45: base more confident)")
        ax2.set_title("Confidence where exactly one is right")
    if not with_theta:
        shown.append("no confidence panel: a decision-only model has no confidence (theta)")
    fig.suptitle(f"{label(str(base), 40)} vs {label(other, 40)}", fontsize=9)
    return FigureResult(fig, data, shown=shown)


@figure_function
def fig4_class_specialization(results: Results) -> FigureResult:
    """Paper Fig. 4: per-class specialization of the base and its best sidekick: on each class,
    the fraction of examples where only one model is right (only_a_right, only_b_right), and
    the mean theta on those examples."""
    return _specialization_panels(results, ["class"], "per-class")


@figure_function
def fig12_group_specialization(results: Results) -> FigureResult:
    """Paper Fig. 12: the same as Fig. 4 over class groups (and attribute values, when the zoo
    has per-example attributes): every group_type other than "class"."""
    return _specialization_panels(results, ["*"], "class-group or attribute")


@figure_function
def fig5_greedy(results: Results) -> FigureResult:
    """Paper Fig. 5 (Sec. 4.5): greedy forward selection, ensemble accuracy after each step, on
    the evaluation split (solid) and the calibration split that chose the steps (dashed); the
    kept prefix (best calibration accuracy) ends at the marked step."""
    greedy = results.get("greedy")
    if greedy is None or len(greedy) == 0:
        raise FigureSkipped("greedy.csv absent or empty")
    fig, axes = new_figure(6.4, 3.4)
    ax = axes[0][0]
    data: dict = {"starts": {}}
    starts = list(dict.fromkeys(greedy.start))
    for k, start in enumerate(starts):
        path = greedy[greedy.start == start].sort_values("step")
        color = OTHER_COLORS[k % len(OTHER_COLORS)] if k else "#1f78b4"
        ax.plot(
            path.step,
            path.evaluation_acc,
            "-o",
            color=color,
            ms=3,
            label=f"{label(start, 30)} (evaluation)",
        )
        ax.plot(
            path.step,
            path.calibration_acc,
            "--",
            color=color,
            lw=1,
            alpha=0.7,
            label="calibration" if k == 0 else None,
        )
        kept = path[path.kept]
        last = int(kept.step.max()) if len(kept) else None
        if last is not None:
            at = path[path.step == last].evaluation_acc.iloc[0]
            ax.plot(
                [last],
                [at],
                marker="*",
                ms=12,
                color=color,
                markeredgecolor="black",
                label="kept prefix ends" if k == 0 else None,
            )
        data["starts"][start] = {
            "step": [int(s) for s in path.step],
            "added": [str(a) for a in path.added],
            "evaluation_acc": floats(path.evaluation_acc),
            "calibration_acc": floats(path.calibration_acc),
            "kept_last_step": last,
        }
    ax.set_xlabel("greedy step (models added, with replacement)")
    ax.set_ylabel("ensemble accuracy")
    ax.set_title("Greedy ensemble selection")
    ax.grid(alpha=0.3)
    ax.legend(frameon=False)
    return FigureResult(fig, data)
