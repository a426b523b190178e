"""Figures over pairs of models: error inconsistency and kappa by category (Fig. 1, 8), the
kappa matrix of every pair, ensemble gains (Fig. 2), "neither right" conversion (Fig. 10) and
CKA against error consistency (Fig. 13). Definitions: docs/design.md sec. 3."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from zoolens.report.tables import Results
from zoolens.report.plotting import (
    FigureResult,
    FigureSkipped,
    bar_label,
    category_color,
    category_interval,
    defined_rows,
    figure_function,
    floats,
    interval_kinds,
    interval_note,
    label,
    mean_std,
    new_figure,
    ordered_categories,
    pair_rows,
    select_pairs,
    strip_panel,
    titled,
    undefined_reason,
)


@figure_function
def fig1_error_inconsistency(results: Results, which: str = "base") -> FigureResult:
    """Paper Fig. 1 and 8: error inconsistency, error consistency kappa, both-right and
    both-wrong by category.

    EI = mean(r_a XOR r_b); kappa = (c_obs - c_exp) / (1 - c_exp) (Geirhos et al. 2020);
    both_right = mean(r_a AND r_b); both_wrong = mean(NOT r_a AND NOT r_b) (docs/design.md sec. 3).
    Dots: pairs; bars: category mean with its 95 % bootstrap interval.
    """
    pairs = select_pairs(results, which)
    categories = ordered_categories(pairs.category)
    fig, axes = new_figure(12, 3.1, ncols=4)
    data: dict = {"categories": categories}
    for ax, (column, title, ylabel) in zip(
        axes[0],
        [
            ("error_inconsistency", "Error inconsistency", "fraction of examples"),
            ("error_consistency", "Error consistency κ", "kappa (1: same errors, 0: chance)"),
            ("both_right", "Both right", "fraction of examples"),
            ("both_wrong", "Both wrong", "fraction of examples"),
        ],
    ):
        data[column] = strip_panel(ax, pairs, column, categories, ylabel, results, which)
        titled(ax, title, data[column])
    return FigureResult(
        fig,
        data,
        shown=[
            interval_note(
                interval_kinds(
                    *(
                        data[c]
                        for c in (
                            "error_inconsistency",
                            "error_consistency",
                            "both_right",
                            "both_wrong",
                        )
                    )
                )
            )
        ],
    )


@figure_function
def fig_kappa_matrix(results: Results) -> FigureResult:
    """Error consistency kappa of every pair of models (Geirhos et al. 2020), as a heat map
    with the models in hierarchical-clustering order (average linkage on 1 - kappa, so models
    that make the same errors sit together); each cell carries the first letter of the pair's
    category (pairs.csv), the base's row and column are marked."""
    from matplotlib.colors import TwoSlopeNorm
    from matplotlib.patches import Rectangle
    from scipy.cluster.hierarchy import leaves_list, linkage
    from scipy.spatial.distance import squareform

    pairs = results.get("pairs")
    if pairs is None or len(pairs) == 0:
        raise FigureSkipped("pairs.csv absent or empty")
    if results.summary.get("pairs") == "base":
        raise FigureSkipped(
            "the analysis measured only the base's pairs (--pairs base); "
            "the matrix needs every pair (analyze --pairs all)"
        )
    names = list(dict.fromkeys(list(pairs.model_a) + list(pairs.model_b)))
    if len(names) < 3:
        raise FigureSkipped(f"only {len(names)} models: a matrix needs at least 3")
    if len(names) > 60:
        raise FigureSkipped(
            f"{len(names)} models: too many to draw one cell per pair "
            f"(at most 60); pairs.csv has every kappa"
        )
    pos = {n: i for i, n in enumerate(names)}
    m = len(names)
    kappa = np.full((m, m), np.nan)
    bounds = np.full((2, m, m), np.nan)  # the 95 % interval of each kappa, where pairs.csv has it
    cat = np.full((m, m), "", dtype=object)
    np.fill_diagonal(kappa, 1.0)
    lows = pairs.get("error_consistency_lo", pd.Series(np.nan, index=pairs.index))
    highs = pairs.get("error_consistency_hi", pd.Series(np.nan, index=pairs.index))
    for a, b, k, c, lo, hi in zip(
        pairs.model_a, pairs.model_b, pairs.error_consistency, pairs.category, lows, highs
    ):
        i, j = pos[a], pos[b]
        if i != j:
            kappa[i, j] = kappa[j, i] = k
            bounds[:, i, j] = bounds[:, j, i] = (lo, hi)
            cat[i, j] = cat[j, i] = str(c)
    missing = int((~np.isfinite(kappa[np.triu_indices(m, 1)])).sum())
    distance = np.clip(1.0 - np.nan_to_num(kappa, nan=0.0), 0.0, 2.0)
    np.fill_diagonal(distance, 0.0)
    order = leaves_list(linkage(squareform(distance, checks=False), "average"))
    kappa, cat = kappa[np.ix_(order, order)], cat[np.ix_(order, order)]
    bounds = bounds[:, order][:, :, order]
    ordered = [names[i] for i in order]
    size = min(11.0, 2.4 + 0.32 * m)
    fig, axes = new_figure(size + 1.2, size)
    ax = axes[0][0]
    finite_k = kappa[np.isfinite(kappa)]
    low = float(min(-0.05, finite_k.min())) if finite_k.size else -1.0
    image = ax.imshow(
        np.ma.masked_invalid(kappa),
        cmap="RdBu_r",
        norm=TwoSlopeNorm(vmin=low, vcenter=0.0, vmax=1.0),
    )
    fig.colorbar(image, ax=ax, shrink=0.8, label="error consistency κ")
    categories = ordered_categories([c for c in cat.ravel() if c])
    font = max(4.0, min(7.0, 90.0 / m))
    tips: dict[str, str] = {}
    for i in range(m):
        for j in range(m):
            if i != j and np.isfinite(kappa[i, j]):
                # an invisible cell that carries the pair's kappa and interval as hover text
                gid = f"kappa-cell-{i}-{j}"
                ax.add_patch(
                    Rectangle((j - 0.5, i - 0.5), 1, 1, facecolor="white", alpha=0.0, lw=0, gid=gid)
                )
                interval = (
                    f" [{bounds[0, i, j]:.3f}, {bounds[1, i, j]:.3f}] (95% bootstrap, examples "
                    "resampled)"
                    if np.isfinite(bounds[:, i, j]).all()
                    else " (no interval in pairs.csv)"
                )
                tips[gid] = f"{ordered[i]} × {ordered[j]}: κ = {kappa[i, j]:.3f}{interval}" + (
                    f"; {cat[i, j]}" if cat[i, j] else ""
                )
            if i != j and cat[i, j]:
                ax.text(
                    j,
                    i,
                    str(cat[i, j])[:1],
                    ha="center",
                    va="center",
                    fontsize=font,
                    color="black" if abs(kappa[i, j]) < 0.6 else "white",
                )
    ticks = [label(n, 24) for n in ordered]
    ax.set_xticks(range(m), ticks, rotation=90)
    ax.set_yticks(range(m), ticks)
    if results.base in ordered:
        b = ordered.index(results.base)
        for getter in (ax.get_xticklabels, ax.get_yticklabels):
            getter()[b].set_fontweight("bold")
        ax.add_patch(Rectangle((-0.5, b - 0.5), m, 1, fill=False, lw=1.2, edgecolor="black"))
    ax.set_title("Error consistency κ of every pair (letters: pair category)")
    legend = "; ".join(f"{c[:1]} = {c}" for c in categories)
    shown = [f"letters: {legend}"] if legend else []
    if results.base in ordered:
        shown.append("the base's row is outlined")
    if missing:
        shown.append(f"{missing} pair(s) without a kappa left blank")
    with_interval = np.isfinite(bounds).all(axis=0) & ~np.eye(m, dtype=bool)
    if with_interval.any():
        widest = np.nanmax(np.where(with_interval, bounds[1] - bounds[0], np.nan))
        shown.append(
            "each cell's hover text gives the pair's κ with its 95% bootstrap interval "
            f"(examples resampled; widest interval {widest:.3f})"
        )
    data = {
        "models": ordered,
        "kappa": [[float(v) for v in row] for row in kappa],
        "kappa_lo": [[float(v) for v in row] for row in bounds[0]],
        "kappa_hi": [[float(v) for v in row] for row in bounds[1]],
        "category": [[str(v) for v in row] for row in cat],
    }
    return FigureResult(fig, data, shown=shown, tips=tips)


@figure_function
def fig2_ensembles(results: Results, which: str = "base") -> FigureResult:
    """Paper Fig. 2: ensemble gain and ensemble accuracy against error inconsistency (category
    means ± 1 s.d. in both directions), and the conversion rate by category.

    gain = ens_acc - (p_a + p_b)/2; conversion_rate = P(ensemble right | exactly one right),
    NaN when EI = 0 (left out of the means and counted in ``n_missing``).
    """
    pairs = select_pairs(results, which)
    if not defined_rows(pairs, "ensemble_acc").any():
        raise FigureSkipped(
            "no pair has an ensemble (decision-only models have no probabilities to average)"
        )
    categories = ordered_categories(pairs.category)
    fig, axes = new_figure(10, 3.2, ncols=3)
    data: dict = {"categories": categories}
    hows: set = set()
    for ax, column, title in (
        (axes[0][0], "ensemble_gain", "Ensemble gain"),
        (axes[0][1], "ensemble_acc", "Ensemble accuracy"),
    ):
        points: dict = {}
        means: dict = {}
        xkinds: set = set()
        ykinds: set = set()
        for cat in categories:
            rows = pairs[pairs.category == cat]
            x = rows.error_inconsistency.to_numpy(np.float64)
            y = rows[column].to_numpy(np.float64)
            keep = np.isfinite(x) & np.isfinite(y)
            color = category_color(cat, categories)
            ax.scatter(x[keep], y[keep], s=12, color=color, alpha=0.55, edgecolors="none")
            mx, sx, n = mean_std(x[keep])
            my, sy, _ = mean_std(y[keep])
            xlo, xhi, xhow = category_interval(results, "error_inconsistency", cat, x[keep], which)
            ylo, yhi, yhow = category_interval(results, column, cat, y[keep], which)
            hows.update({xhow, yhow})
            xkinds.add(xhow)
            ykinds.add(yhow)
            if n:
                xerr = [[max(mx - xlo, 0)], [max(xhi - mx, 0)]] if xhow else None
                yerr = [[max(my - ylo, 0)], [max(yhi - my, 0)]] if yhow else None
                ax.errorbar(
                    [mx],
                    [my],
                    xerr=xerr,
                    yerr=yerr,
                    fmt="o",
                    markersize=7,
                    color=color,
                    markeredgecolor="black",
                    elinewidth=1.2,
                    capsize=3,
                    label=label(cat, 14),
                    zorder=4,
                )
            points[cat] = {
                "models": [str(m) for m in rows.other[keep]],
                "error_inconsistency": floats(x[keep]),
                column: floats(y[keep]),
            }
            means[cat] = {
                "error_inconsistency_mean": mx,
                "error_inconsistency_std": sx,
                "error_inconsistency_lo": xlo,
                "error_inconsistency_hi": xhi,
                f"{column}_mean": my,
                f"{column}_std": sy,
                f"{column}_lo": ylo,
                f"{column}_hi": yhi,
                "n": n,
            }
        if column == "ensemble_gain":
            ax.axhline(0, color="black", lw=0.6, alpha=0.5)
        ax.set_xlabel("error inconsistency with the other model")
        ax.set_ylabel(title.lower())
        panel_hows = {m for m in (xkinds | ykinds) if m}
        ax.set_title(f"{title} vs error inconsistency\n{bar_label(panel_hows)}", fontsize=8)
        ax.grid(alpha=0.3)
        data[column] = {"points": points, "category_means": means}
    axes[0][0].legend(loc="best", frameon=False)
    data["conversion_rate"] = strip_panel(
        axes[0][2],
        pairs,
        "conversion_rate",
        categories,
        "P(ensemble right | exactly one right)",
        results,
        which,
    )
    titled(axes[0][2], "Conversion rate", data["conversion_rate"])
    hows |= interval_kinds(data["conversion_rate"])
    return FigureResult(
        fig,
        data,
        shown=[
            "gain here is over the mean of the two members (the paper's Fig. 2); the tables' "
            "Gain is over the better member",
            interval_note(hows),
        ],
    )


@figure_function
def fig10_neither_conversion(results: Results, which: str = "base") -> FigureResult:
    """Paper Fig. 10: P(ensemble right | both models wrong) by category (NaN where both are
    never wrong together: left out and counted)."""
    pairs = select_pairs(results, which)
    defined = defined_rows(pairs, "neither_conversion")
    reason = undefined_reason(results, "neither_conversion")
    if not defined.any():
        if not defined_rows(pairs, "ensemble_acc").any():
            reason = (
                "no pair has an ensemble (decision-only models have no probabilities to average)"
            )
        raise FigureSkipped(
            reason or "pairs.csv: neither_conversion is undefined (NaN) for every pair"
        )
    if not np.any(pairs.neither_conversion.to_numpy(np.float64)[defined] != 0):
        raise FigureSkipped(
            "neither_conversion is 0 for every pair: the ensembles never "
            "rescue an example both members get wrong (nothing to draw)"
        )
    categories = ordered_categories(pairs.category)
    fig, axes = new_figure(4.6, 3.1)
    data: dict[str, Any] = {
        "categories": categories,
        "neither_conversion": strip_panel(
            axes[0][0],
            pairs,
            "neither_conversion",
            categories,
            "P(ensemble right | both wrong)",
            results,
            which,
        ),
    }
    titled(
        axes[0][0], "Conversion of examples neither model gets right", data["neither_conversion"]
    )
    shown = [interval_note(interval_kinds(data["neither_conversion"]))]
    if reason and (~defined).any():
        shown.append(f"{int((~defined).sum())} pair(s) left out: {reason}")
    return FigureResult(fig, data, shown=shown)


@figure_function
def fig13_cka(results: Results, which: str = "base") -> FigureResult:
    """Paper Fig. 13: representation similarity (CKA: linear, RBF, debiased; Kornblith et al.
    2019) against error consistency kappa. Missing kappa is taken from pairs.csv when that pair
    is there; pairs still without one are left out and counted."""
    cka = results.get("cka")
    if cka is None or len(cka) == 0:
        raise FigureSkipped("cka.csv absent or empty")
    rows = pair_rows(cka, results.base) if which == "base" else cka
    rows = rows.copy()
    pairs = results.get("pairs")
    category = pd.Series(["?"] * len(rows), index=rows.index)
    if pairs is not None:
        key = {(a, b): i for i, (a, b) in enumerate(zip(pairs.model_a, pairs.model_b))}
        key.update({(b, a): i for (a, b), i in list(key.items())})
        idx = [key.get((a, b)) for a, b in zip(rows.model_a, rows.model_b)]
        kappa = np.array(
            [pairs.error_consistency.iloc[i] if i is not None else np.nan for i in idx],
            dtype=np.float64,
        )
        missing = ~np.isfinite(rows.error_consistency.to_numpy(np.float64))
        rows.loc[missing, "error_consistency"] = kappa[missing]
        category = pd.Series(
            [pairs.category.iloc[i] if i is not None else "?" for i in idx], index=rows.index
        )
    keep = np.isfinite(rows.error_consistency.to_numpy(np.float64))
    shown = []
    if (~keep).sum():
        shown.append(f"{int((~keep).sum())} pair(s) without an error consistency left out")
    rows, category = rows[keep], category[keep]
    kinds = [
        c
        for c in ("cka_linear", "cka_rbf", "cka_debiased")
        if c in rows.columns and np.isfinite(rows[c].to_numpy(np.float64)).any()
    ]
    if len(rows) == 0 or not kinds:
        raise FigureSkipped("cka.csv: no pair with both a CKA value and an error consistency")
    categories = ordered_categories(category)
    fig, axes = new_figure(3.4 * len(kinds), 3.0, ncols=len(kinds))
    data: dict = {
        "models_a": [str(v) for v in rows.model_a],
        "models_b": [str(v) for v in rows.model_b],
        "error_consistency": floats(rows.error_consistency),
        "category": [str(c) for c in category],
    }
    for ax, kind in zip(axes[0], kinds):
        for cat in categories:
            m = (category == cat).to_numpy()
            ax.scatter(
                rows[kind][m],
                rows.error_consistency[m],
                s=16,
                color=category_color(cat, categories),
                label=label(cat, 14),
            )
        ax.set_xlabel(kind.replace("cka_", "CKA (") + ")")
        ax.set_ylabel("error consistency (kappa)")
        ax.grid(alpha=0.3)
        data[kind] = floats(rows[kind])
    axes[0][0].legend(frameon=False)
    axes[0][0].set_title("Representation similarity vs error consistency", loc="left")
    return FigureResult(fig, data, shown=shown)
