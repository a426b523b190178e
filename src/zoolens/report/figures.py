"""The paper's figures for one results folder, one function per figure.

Each function takes the checked tables (:class:`zoolens.report.tables.Results`) and returns a
:class:`FigureResult`: the matplotlib Figure and ``data``, the numbers it plotted (plain lists
and floats), so that tests check figures on their data, never on pixels. A figure whose data
are absent raises :class:`FigureSkipped` with a one-line reason; it is never drawn empty.

Pairs: by default (``which="base"``) the pairs that involve the base model, as in the paper;
``which="all"`` uses every pair of pairs.csv (category as written there). Figures are built
on ``matplotlib.figure.Figure`` (no pyplot, no global state) with math text parsing off, so a
model name such as ``vit $0.1`` is drawn as written.

Definitions are those of docs/design.md sec. 3 (Gontijo-Lopes, Dauphin & Cubuk 2021): error
inconsistency EI = mean(r_a XOR r_b) (Sec. 4, Fig. 1), both-right / both-wrong (Fig. 8), gain =
ens_acc - (p_a + p_b)/2 and conversion = P(ensemble right | exactly one right) (Fig. 2),
theta = atan2(c_a, c_b) (Fig. 3), per-class specialization (Fig. 4, 12), greedy selection
(Sec. 4.5, Fig. 5), feature combination (Sec. 4.6, Fig. 6), stacking and transfer (Fig. 7),
"neither right" conversion (Fig. 10), interpolation (Fig. 11), CKA (Fig. 13).
"""

from __future__ import annotations

import contextlib
import functools
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from zoolens.report.tables import Results, pairs_with_base

CATEGORY_ORDER = ("Same", "Reinit", "HParam", "Arch", "Framework", "Dataset")
CATEGORY_COLORS = {
    "Same": "#999999",
    "Reinit": "#1b9e77",
    "HParam": "#d95f02",
    "Arch": "#7570b3",
    "Framework": "#e7298a",
    "Dataset": "#66a61e",
}
OTHER_COLORS = ("#e6ab02", "#a6761d", "#666666", "#1f78b4", "#b15928")
MAX_PANELS = 6
MISSING_GLYPH = r"Glyph \d+ .*missing from font"  # matplotlib's UserWarning (see _figure_function)
MAX_GROUPS = 30

# Text is written as SVG <text> (svg.fonttype "none"): the reader's browser draws it with its
# own fonts, so names can be selected, searched and read aloud, and a script DejaVu lacks (CJK)
# falls back to a system font instead of boxes. Matplotlib lays text out with DejaVu Sans (its
# bundled font) and writes font-family: 'DejaVu Sans', sans-serif. DejaVu is wider than the
# usual fallback (Arial's metrics: Arial, Liberation Sans), so a browser without it draws
# labels a little narrower than the space kept for them (tests/test_report_browser.py checks
# both). No web font, nothing fetched. Text is never parsed as math ($ in names);
# svg.hashsalt keeps the SVG ids deterministic.
RC: dict[Any, Any] = {  # matplotlib's stubs key rc_context by a Literal of rc names
    "svg.fonttype": "none",
    "font.family": ["sans-serif"],
    "font.sans-serif": ["DejaVu Sans"],
    "text.parse_math": False,
    "text.usetex": False,
    "svg.hashsalt": "zoolens",
    "font.size": 8,
    "axes.titlesize": 9,
    "axes.labelsize": 8,
    "legend.fontsize": 7,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "figure.dpi": 100,
}


class FigureSkipped(Exception):
    """The data a figure needs are absent; the message is the one-line reason."""


@dataclass
class FigureResult:
    figure: Any  # matplotlib.figure.Figure
    data: dict
    notes: list[str] = field(default_factory=list)  # absent data: a panel left out (warned)
    shown: list[str] = field(default_factory=list)  # a subset drawn (said in the caption)
    # hover texts: an artist's gid -> the text the HTML report shows over it (an SVG <title>)
    tips: dict[str, str] = field(default_factory=dict)


def style() -> contextlib.AbstractContextManager:
    """The rc settings every figure is created and saved under."""
    import matplotlib

    return matplotlib.rc_context(RC)


def _figure_function(func: Callable[..., FigureResult]) -> Callable[..., FigureResult]:
    @functools.wraps(func)
    def wrapper(*args, **kwargs) -> FigureResult:
        # Figures are plain matplotlib.figure.Figure objects (no pyplot, so no GUI backend
        # and no global figure list); savefig picks the SVG / Agg canvas by format.
        with style(), warnings.catch_warnings():
            # A name in a script DejaVu lacks (CJK, emoji) is measured with DejaVu's missing-
            # glyph box; the SVG keeps the real text (the browser draws it with a system font)
            # and only the PNG export shows boxes, so matplotlib's per-glyph warnings
            # ("Glyph 27169 ... missing from font(s) DejaVu Sans.") would only be noise.
            warnings.filterwarnings("ignore", message=MISSING_GLYPH)
            return func(*args, **kwargs)

    return wrapper


def _new_figure(width: float, height: float, ncols: int = 1, nrows: int = 1):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def label(name: str, limit: int = 32) -> str:
    """A user string as matplotlib text: shortened, and never hidden (matplotlib drops legend
    labels that start with an underscore)."""
    text = " ".join(str(name).split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return " " + text if text.startswith("_") else text


def ordered_categories(values) -> list[str]:
    """Paper order (Reinit, HParam, Arch, Framework, Dataset; "Same" first if present), then any
    other category alphabetically."""
    present = {str(v) for v in values}
    known = [c for c in CATEGORY_ORDER if c in present]
    return known + sorted(present - set(CATEGORY_ORDER))


def category_color(category: str, categories: list[str]) -> str:
    if category in CATEGORY_COLORS:
        return CATEGORY_COLORS[category]
    extra = [c for c in categories if c not in CATEGORY_COLORS]
    return (
        OTHER_COLORS[extra.index(category) % len(OTHER_COLORS)] if category in extra else "#666666"
    )


def _floats(values) -> list[float]:
    return [float(v) for v in values]


def select_pairs(results: Results, which: str = "base") -> pd.DataFrame:
    """The pairs a figure draws, with an ``other`` column: (base, other) pairs by default."""
    pairs = results.get("pairs")
    if pairs is None or len(pairs) == 0:
        raise FigureSkipped("pairs.csv absent or empty")
    if which == "all":
        return pairs.assign(other=pairs.model_b, acc_base=pairs.acc_a, acc_other=pairs.acc_b)
    if results.base is None:
        raise FigureSkipped("no base model known (summary.json has no base)")
    selected = pairs_with_base(pairs, results.base)
    if len(selected) == 0:
        raise FigureSkipped(f"pairs.csv has no pair with the base model {results.base!r}")
    return selected


def _mean_std(values: np.ndarray) -> tuple[float, float, int]:
    """Mean and sample standard deviation (ddof=1; 0 for one value) of the finite values."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return math.nan, math.nan, 0
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0, int(v.size)


PAIR_RESAMPLES = 1000
# summary.json headline blocks whose category intervals resample *examples* (the analysis'
# shared bootstrap): the figures use exactly these where they exist, so a bar and the interval
# quoted in the text are the same numbers.
SUMMARY_INTERVALS = {
    "error_inconsistency": "mean_error_inconsistency_by_category",
    "conversion_rate": "conversion_rate_by_category",
}
INTERVALS_EXAMPLES = "examples resampled, from summary.json"
INTERVALS_PAIRS = f"the category's pairs resampled, {PAIR_RESAMPLES:,} draws"


def pair_bootstrap_interval(values, seed: int = 0) -> tuple[float, float]:
    """95 % percentile interval of the mean of ``values`` (finite ones) when the pairs are
    resampled with replacement (``PAIR_RESAMPLES`` draws, fixed seed); NaN for fewer than two
    values (one pair says nothing about the spread)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size < 2:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, v.size, size=(PAIR_RESAMPLES, v.size))].mean(axis=1)
    lo, hi = np.quantile(means, [0.025, 0.975])
    return float(lo), float(hi)


def summary_interval(results: Results, column: str, category: str) -> tuple[float, float] | None:
    """The example-bootstrap interval of a category's mean that summary.json quotes, if any."""
    block = (results.summary.get("headline") or {}).get(SUMMARY_INTERVALS.get(column, ""), {})
    entry = block.get(category) if isinstance(block, dict) else None
    if not isinstance(entry, dict):
        return None
    try:
        raw: tuple[Any, Any] = (entry.get("lo"), entry.get("hi"))
        lo, hi = float(raw[0]), float(raw[1])
    except (TypeError, ValueError):
        return None
    return (lo, hi) if math.isfinite(lo) and math.isfinite(hi) else None


def category_interval(
    results: Results | None, column: str, category: str, values, which: str
) -> tuple[float, float, str | None]:
    """(lo, hi, how) of a category mean: summary.json's example bootstrap for pairs with the
    base where it has one, else the pairs bootstrap; how is None when there is no interval."""
    if results is not None and which == "base":
        found = summary_interval(results, column, category)
        if found is not None:
            return found[0], found[1], INTERVALS_EXAMPLES
    lo, hi = pair_bootstrap_interval(values)
    return lo, hi, (INTERVALS_PAIRS if math.isfinite(lo) else None)


BAR_MARK = {INTERVALS_EXAMPLES: "e", INTERVALS_PAIRS: "p"}
BAR_KIND = {INTERVALS_EXAMPLES: "examples resampled", INTERVALS_PAIRS: "pairs resampled"}


def bar_label(hows: set) -> str:
    """The line a panel carries under its title naming its error bars' kind; with both
    kinds, each bar is marked e (examples resampled) or p (pairs resampled)."""
    hows = {h for h in hows if h}
    if not hows:
        return "no error bars (one pair per category)"
    if len(hows) == 1:
        return f"bars: 95% bootstrap, {BAR_KIND.get(next(iter(hows)), next(iter(hows)))}"
    return "bars: 95% bootstrap; e: examples, p: pairs resampled"


def interval_note(hows: set) -> str:
    """The caption's sentence on what the error bars are."""
    hows = {h for h in hows if h}
    if not hows:
        return "no error bars: every category has a single pair"
    return (
        "error bars: 95 % bootstrap intervals of the category means ("
        + "; ".join(sorted(hows))
        + "); a category with one pair has no bar"
    )


def _strip_panel(
    ax,
    pairs: pd.DataFrame,
    column: str,
    categories: list[str],
    ylabel: str,
    results: Results | None = None,
    which: str = "base",
) -> dict:
    """Each pair as a dot over its category, the category mean as a bar with its 95 %
    bootstrap interval (:func:`category_interval`) as whiskers."""
    out: dict = {}
    marks: list[tuple[int, float, str]] = []  # (category position, bar top, kind)
    for i, cat in enumerate(categories):
        rows = pairs[pairs.category == cat]
        values = rows[column].to_numpy(dtype=np.float64)
        keep = np.isfinite(values)
        mean, std, n = _mean_std(values)
        color = category_color(cat, categories)
        offsets = (
            np.linspace(-0.18, 0.18, int(keep.sum()))
            if keep.sum() > 1
            else np.zeros(int(keep.sum()))
        )
        ax.scatter(
            i + offsets, values[keep], s=14, color=color, alpha=0.8, zorder=3, edgecolors="none"
        )
        lo = hi = math.nan
        how = None
        if n:
            lo, hi, how = category_interval(results, column, cat, values, which)
            if how is not None:
                ax.errorbar(
                    [i],
                    [mean],
                    yerr=[[max(mean - lo, 0)], [max(hi - mean, 0)]],
                    fmt="_",
                    markersize=22,
                    color="black",
                    elinewidth=1,
                    capsize=4,
                    zorder=4,
                )
                marks.append((i, hi, how))
            else:
                ax.plot([i], [mean], "_", markersize=22, color="black", zorder=4)
        out[cat] = {
            "models": [str(m) for m in rows.other[keep]],
            "values": _floats(values[keep]),
            "mean": mean,
            "std": std,
            "n": n,
            "lo": lo,
            "hi": hi,
            "interval": how,
            "n_missing": int((~keep).sum()),
        }
    if len({how for _, _, how in marks}) > 1:  # both kinds in one panel: mark each bar
        for i, top, how in marks:
            ax.annotate(
                BAR_MARK.get(how, "?"),
                (i + 0.12, top),
                fontsize=6,
                fontweight="bold",
                xytext=(0, 1),
                textcoords="offset points",
            )
    ax.set_xticks(range(len(categories)), [label(c, 14) for c in categories])
    ax.set_xlim(-0.6, len(categories) - 0.4)
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)
    return out


LABEL_OFFSETS = ((3, 2), (3, -8), (-3, 2), (-3, -8), (3, 9), (-3, 9), (3, -15), (-3, -15))
"""Where a point's label may go (points right/up of the point; negative x: right-aligned)."""


def place_labels(ax, x: np.ndarray, y: np.ndarray, texts: list[str], fontsize: float = 5.5):
    """Label scatter points without overlaps: each label takes the first of
    ``LABEL_OFFSETS`` whose box (estimated from the font size) overlaps neither a label
    placed before nor another point; a label with no free place is left out. Returns the
    texts left out (the caller says so)."""
    ax.autoscale_view()
    points = ax.transData.transform(np.column_stack([x, y]))
    scale = ax.figure.dpi / 72.0
    height = 1.2 * fontsize * scale
    taken: list[tuple[float, float, float, float]] = []
    left_out: list[str] = []
    dot = 2.5 * scale  # a point's own radius, in pixels

    def clear(box: tuple[float, float, float, float], own: int) -> bool:
        x0, y0, x1, y1 = box
        if any(x0 < b[2] and b[0] < x1 and y0 < b[3] and b[1] < y1 for b in taken):
            return False
        others = np.delete(points, own, axis=0)
        inside = (
            (others[:, 0] > x0 - dot)
            & (others[:, 0] < x1 + dot)
            & (others[:, 1] > y0 - dot)
            & (others[:, 1] < y1 + dot)
        )
        return not inside.any()

    for k, ((px, py), text) in enumerate(zip(points, texts)):
        if not (np.isfinite(px) and np.isfinite(py)):
            continue
        width = 0.6 * fontsize * scale * len(text)
        for dx, dy in LABEL_OFFSETS:
            ox, oy = dx * scale, dy * scale
            x0 = px + ox if dx >= 0 else px + ox - width
            box = (x0, py + oy, x0 + width, py + oy + height)
            if clear(box, k):
                taken.append(box)
                ax.annotate(
                    text,
                    (x[k], y[k]),
                    fontsize=fontsize,
                    xytext=(dx, dy),
                    textcoords="offset points",
                    ha="left" if dx >= 0 else "right",
                )
                break
        else:
            left_out.append(text)
    return left_out


def titled(ax, title: str, panel: dict) -> None:
    """The panel's title with, under it, the kind of its error bars (:func:`bar_label`)."""
    ax.set_title(f"{title}\n{bar_label(_hows(panel))}", fontsize=8)


def _hows(*panels: dict) -> set:
    return {
        entry.get("interval")
        for panel in panels
        for entry in panel.values()
        if isinstance(entry, dict)
    }


def _defined(pairs: pd.DataFrame, column: str) -> np.ndarray:
    return (
        np.isfinite(pairs[column].to_numpy(np.float64))
        if column in pairs.columns
        else np.zeros(len(pairs), dtype=bool)
    )


def undefined_reason(results: Results, column: str) -> str | None:
    """summary.json's reason why ``column`` is NaN by construction for some pairs, if any."""
    entry = (results.summary.get("undefined") or {}).get(column)
    return str(entry.get("reason")) if isinstance(entry, dict) and entry.get("reason") else None


@_figure_function
def fig1_error_inconsistency(results: Results, which: str = "base") -> FigureResult:
    """Paper Fig. 1 and 8: error inconsistency, error consistency kappa, both-right and
    both-wrong by category.

    EI = mean(r_a XOR r_b); kappa = (c_obs - c_exp) / (1 - c_exp) (Geirhos et al. 2020);
    both_right = mean(r_a AND r_b); both_wrong = mean(NOT r_a AND NOT r_b) (docs/design.md sec. 3).
    Dots: pairs; bars: category mean with its 95 % bootstrap interval.
    """
    pairs = select_pairs(results, which)
    categories = ordered_categories(pairs.category)
    fig, axes = _new_figure(12, 3.1, ncols=4)
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
        data[column] = _strip_panel(ax, pairs, column, categories, ylabel, results, which)
        titled(ax, title, data[column])
    return FigureResult(
        fig,
        data,
        shown=[
            interval_note(
                _hows(
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


@_figure_function
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
    fig, axes = _new_figure(size + 1.2, size)
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


@_figure_function
def fig2_ensembles(results: Results, which: str = "base") -> FigureResult:
    """Paper Fig. 2: ensemble gain and ensemble accuracy against error inconsistency (category
    means ± 1 s.d. in both directions), and the conversion rate by category.

    gain = ens_acc - (p_a + p_b)/2; conversion_rate = P(ensemble right | exactly one right),
    NaN when EI = 0 (left out of the means and counted in ``n_missing``).
    """
    pairs = select_pairs(results, which)
    if not _defined(pairs, "ensemble_acc").any():
        raise FigureSkipped(
            "no pair has an ensemble (decision-only models have no probabilities to average)"
        )
    categories = ordered_categories(pairs.category)
    fig, axes = _new_figure(10, 3.2, ncols=3)
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
            mx, sx, n = _mean_std(x[keep])
            my, sy, _ = _mean_std(y[keep])
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
                "error_inconsistency": _floats(x[keep]),
                column: _floats(y[keep]),
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
    data["conversion_rate"] = _strip_panel(
        axes[0][2],
        pairs,
        "conversion_rate",
        categories,
        "P(ensemble right | exactly one right)",
        results,
        which,
    )
    titled(axes[0][2], "Conversion rate", data["conversion_rate"])
    hows |= _hows(data["conversion_rate"])
    return FigureResult(
        fig,
        data,
        shown=[
            "gain here is over the mean of the two members (the paper's Fig. 2); the tables' "
            "Gain is over the better member",
            interval_note(hows),
        ],
    )


@_figure_function
def fig10_neither_conversion(results: Results, which: str = "base") -> FigureResult:
    """Paper Fig. 10: P(ensemble right | both models wrong) by category (NaN where both are
    never wrong together: left out and counted)."""
    pairs = select_pairs(results, which)
    defined = _defined(pairs, "neither_conversion")
    reason = undefined_reason(results, "neither_conversion")
    if not defined.any():
        if not _defined(pairs, "ensemble_acc").any():
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
    fig, axes = _new_figure(4.6, 3.1)
    data: dict[str, Any] = {
        "categories": categories,
        "neither_conversion": _strip_panel(
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
    shown = [interval_note(_hows(data["neither_conversion"]))]
    if reason and (~defined).any():
        shown.append(f"{int((~defined).sum())} pair(s) left out: {reason}")
    return FigureResult(fig, data, shown=shown)


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


@_figure_function
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
    fig, axes = _new_figure(3.4 * ncols, 2.5 * nrows, ncols=ncols, nrows=nrows)
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
            entry["bin_lo"] = _floats(part.bin_lo)
            entry["bin_hi"] = _floats(part.bin_hi)
            entry["counts"][outcome] = _floats(counts)
            entry["fractions"][outcome] = _floats(frac)
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
    fig, axes = _new_figure(
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
            "n": _floats(part.n),
            "only_a_right": _floats(part.only_a_right),
            "only_b_right": _floats(part.only_b_right),
            "mean_theta_only_a": _floats(part.mean_theta_only_a),
            "mean_theta_only_b": _floats(part.mean_theta_only_b),
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


@_figure_function
def fig4_class_specialization(results: Results) -> FigureResult:
    """Paper Fig. 4: per-class specialization of the base and its best sidekick: on each class,
    the fraction of examples where only one model is right (only_a_right, only_b_right), and
    the mean theta on those examples."""
    return _specialization_panels(results, ["class"], "per-class")


@_figure_function
def fig12_group_specialization(results: Results) -> FigureResult:
    """Paper Fig. 12: the same as Fig. 4 over class groups (and attribute values, when the zoo
    has per-example attributes): every group_type other than "class"."""
    return _specialization_panels(results, ["*"], "class-group or attribute")


@_figure_function
def fig5_greedy(results: Results) -> FigureResult:
    """Paper Fig. 5 (Sec. 4.5): greedy forward selection, ensemble accuracy after each step, on
    the evaluation split (solid) and the calibration split that chose the steps (dashed); the
    kept prefix (best calibration accuracy) ends at the marked step."""
    greedy = results.get("greedy")
    if greedy is None or len(greedy) == 0:
        raise FigureSkipped("greedy.csv absent or empty")
    fig, axes = _new_figure(6.4, 3.4)
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
            "evaluation_acc": _floats(path.evaluation_acc),
            "calibration_acc": _floats(path.calibration_acc),
            "kept_last_step": last,
        }
    ax.set_xlabel("greedy step (models added, with replacement)")
    ax.set_ylabel("ensemble accuracy")
    ax.set_title("Greedy ensemble selection")
    ax.grid(alpha=0.3)
    ax.legend(frameon=False)
    return FigureResult(fig, data)


def _pair_rows(table: pd.DataFrame, base: str | None) -> pd.DataFrame:
    """Rows whose pair involves the base when there are any, else all rows."""
    if base is None:
        return table
    mine = table[(table.model_a == base) | (table.model_b == base)]
    return mine if len(mine) else table


def _pair_label(a: str, b: str, base: str | None) -> str:
    return label(b if a == base else a if b == base else f"{a} + {b}", 34)


@_figure_function
def fig6_feature_combination(results: Results) -> FigureResult:
    """Paper Fig. 6 (Sec. 4.6): left, linear-probe accuracy on concatenated embeddings keeping a
    fraction f of model A's dimensions (f = 1: A alone, f = 0: B alone), mean over random draws
    with the min-max range; right, accuracy of the k most diverse (least correlated) dimensions
    against k random ones, with the target accuracy and the smallest k reaching it."""
    probe, diversity = results.get("probe"), results.get("diversity")
    have_probe = probe is not None and len(probe) > 0
    have_div = diversity is not None and len(diversity) > 0
    if not have_probe and not have_div:
        raise FigureSkipped("probe.csv and diversity.csv absent or empty")
    notes = []
    if not have_probe:
        notes.append("feature combination: probe.csv absent, left panel left out")
    if not have_div:
        notes.append("feature combination: diversity.csv absent, right panel left out")
    shown: list[str] = []
    fig, axes = _new_figure(5 * (have_probe + have_div), 3.3, ncols=have_probe + have_div)
    panels = iter(axes[0])
    data: dict = {}
    base = results.base
    if have_probe:
        ax = next(panels)
        rows = _pair_rows(probe, base)
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
                stats.index, stats["mean"], "-o", ms=3, color=color, label=_pair_label(a, b, base)
            )
            ax.fill_between(stats.index, stats["min"], stats["max"], color=color, alpha=0.15)
            data["probe"][f"{a}\t{b}"] = {
                "model_a": a,
                "model_b": b,
                "rate": _floats(stats.index),
                "mean": _floats(stats["mean"]),
                "min": _floats(stats["min"]),
                "max": _floats(stats["max"]),
                "draws": [int(c) for c in stats["count"]],
            }
        ax.set_xlabel(f"fraction f of {label(base or 'model A', 24)}'s dimensions kept")
        ax.set_ylabel("linear probe accuracy")
        ax.set_title("Combining features of two models\nband: min to max over draws", fontsize=8)
        ax.grid(alpha=0.3)
        ax.legend(frameon=False, title="other model")
    if have_div:
        ax = next(panels)
        rows = _pair_rows(diversity, base)
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
                    label=f"{_pair_label(a, b, base)}: {selection}",
                )
                reach = sel[sel.accuracy >= sel.target_accuracy]
                entry[selection] = {
                    "k": [int(v) for v in sel.k],
                    "accuracy": _floats(sel.accuracy),
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
                label=f"{_pair_label(a, b, base)}: target",
            )
            data["diversity"][f"{a}\t{b}"] = entry
        ax.set_xlabel("dimensions kept (k)")
        ax.set_ylabel("linear probe accuracy")
        ax.set_title("Dimensions to reach the target accuracy")
        ax.grid(alpha=0.3)
        ax.legend(frameon=False)
    return FigureResult(fig, data, notes, shown)


@_figure_function
def fig7_transfer(results: Results) -> FigureResult:
    """Paper Fig. 7: left, stacked generalization: a downstream probe on both models'
    embeddings (value_stacked) against each alone; right, downstream against upstream
    accuracy, one dot per model."""
    stacking, transfer = results.get("stacking"), results.get("transfer")
    have_s = stacking is not None and len(stacking) > 0
    have_t = transfer is not None and len(transfer) > 0
    if not have_s and not have_t:
        raise FigureSkipped("stacking.csv and transfer.csv absent or empty")
    notes = []
    if not have_s:
        notes.append("downstream: stacking.csv absent, left panel left out")
    if not have_t:
        notes.append("downstream: transfer.csv absent, right panel left out")
    fig, axes = _new_figure(5 * (have_s + have_t), 3.4, ncols=have_s + have_t)
    panels = iter(axes[0])
    data: dict = {}
    shown_notes: list[str] = []
    if have_s:
        ax = next(panels)
        rows = _pair_rows(stacking, results.base).head(8)
        x = np.arange(len(rows))
        w = 0.27
        ax.bar(x - w, rows.value_a, w, color="#1f78b4", label="model A alone")
        ax.bar(x, rows.value_b, w, color="#e31a1c", label="model B alone")
        ax.bar(x + w, rows.value_stacked, w, color="#33a02c", label="stacked (A + B)")
        ax.set_xticks(
            x,
            [_pair_label(a, b, results.base) for a, b in zip(rows.model_a, rows.model_b)],
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
            "value_a": _floats(rows.value_a),
            "value_b": _floats(rows.value_b),
            "value_stacked": _floats(rows.value_stacked),
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
                "upstream_accuracy": _floats(part.upstream_accuracy),
                "downstream_value": _floats(part.downstream_value),
            }
        ax.set_xlabel("upstream accuracy")
        ax.set_ylabel("downstream value")
        ax.set_title("Downstream vs upstream")
        ax.grid(alpha=0.3)
        ax.legend(frameon=False)
    return FigureResult(fig, data, notes, shown=shown_notes)


@_figure_function
def fig11_interpolation(results: Results) -> FigureResult:
    """Paper Fig. 11: ensemble accuracy of w·q_a + (1 - w)·q_b against the weight w ("weight"),
    and its class-aware variant ("class_aware"); w = 1 is model A alone."""
    table = results.get("interpolation")
    if table is None or len(table) == 0:
        raise FigureSkipped("interpolation.csv absent or empty")
    groups = list(table.groupby(["model_a", "model_b"], sort=False))[:MAX_PANELS]
    fig, axes = _new_figure(
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
                "weight": _floats(sel.weight),
                "ensemble_acc": _floats(sel.ensemble_acc),
            }
        ax.set_xlabel(f"weight w on {label(a, 24)}")
        ax.set_ylabel("ensemble accuracy")
        ax.set_title(f"with {label(b, 36)}")
        ax.grid(alpha=0.3)
        ax.legend(frameon=False)
        data["pairs"].append(entry)
    return FigureResult(fig, data)


@_figure_function
def fig13_cka(results: Results, which: str = "base") -> FigureResult:
    """Paper Fig. 13: representation similarity (CKA: linear, RBF, debiased; Kornblith et al.
    2019) against error consistency kappa. Missing kappa is taken from pairs.csv when that pair
    is there; pairs still without one are left out and counted."""
    cka = results.get("cka")
    if cka is None or len(cka) == 0:
        raise FigureSkipped("cka.csv absent or empty")
    rows = _pair_rows(cka, results.base) if which == "base" else cka
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
    fig, axes = _new_figure(3.4 * len(kinds), 3.0, ncols=len(kinds))
    data: dict = {
        "models_a": [str(v) for v in rows.model_a],
        "models_b": [str(v) for v in rows.model_b],
        "error_consistency": _floats(rows.error_consistency),
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
        data[kind] = _floats(rows[kind])
    axes[0][0].legend(frameon=False)
    axes[0][0].set_title("Representation similarity vs error consistency", loc="left")
    return FigureResult(fig, data, shown=shown)


@_figure_function
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
    fig, axes = _new_figure(3.2 * ncols, 2.9 * nrows, ncols=ncols, nrows=nrows)
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
            gap = np.abs(
                part.accuracy.to_numpy(np.float64) - part.mean_confidence.to_numpy(np.float64)
            )
            ece = float(np.sum(weight * gap) / weight.sum())
            # Marker area follows the bin's share of examples: a bin of 1 example is a dot.
            ax.plot(
                part.mean_confidence,
                part.accuracy,
                "-",
                lw=1,
                color=color,
                alpha=0.6,
                label=f"{stage} (ECE {ece:.3f})",
            )
            ax.scatter(
                part.mean_confidence,
                part.accuracy,
                s=4 + 60 * weight / weight.sum(),
                color=color,
                zorder=3,
            )
            entry[stage] = {
                "mean_confidence": _floats(part.mean_confidence),
                "accuracy": _floats(part.accuracy),
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


@_figure_function
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
    fig, axes = _new_figure(6.4, 3.6)
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
        data["points"]["cost"] += _floats(rows.cost)
        data["points"]["accuracy"] += _floats(rows.accuracy)
    front = pareto[pareto.on_front.astype(bool)].sort_values("cost")
    ax.step(front.cost, front.accuracy, where="post", color="black", lw=1, label="Pareto front")
    data["front"] = {
        "members": [str(m) for m in front.members],
        "cost": _floats(front.cost),
        "accuracy": _floats(front.accuracy),
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


@dataclass(frozen=True)
class FigureSpec:
    key: str
    paper: str  # e.g. "Fig. 1, 8"
    title: str
    caption: str  # one sentence: what to look for
    function: Callable[..., FigureResult]
    takes_pairs: bool = False


FIGURES: tuple[FigureSpec, ...] = (
    FigureSpec(
        "fig1",
        "Fig. 1, 8",
        "Error inconsistency and κ by training-method category",
        "The more a training method differs from the base (left to right), the more often "
        "exactly one of the two models is right and the lower their error consistency κ; "
        "both-right falls accordingly.",
        fig1_error_inconsistency,
        True,
    ),
    FigureSpec(
        "kappa",
        "Geirhos et al. 2020",
        "Error consistency of every pair",
        "Error consistency κ (agreement of two models' errors beyond what their "
        "accuracies imply) for every pair, models ordered so that those making the same "
        "errors sit together.",
        fig_kappa_matrix,
    ),
    FigureSpec(
        "fig2",
        "Fig. 2",
        "Ensembles of dissimilar models gain more",
        "Ensemble gain and accuracy rise with error inconsistency, and pairs from more "
        "distant categories convert more of their disagreements into correct predictions.",
        fig2_ensembles,
        True,
    ),
    FigureSpec(
        "fig3",
        "Fig. 3",
        "Who is confident where: theta histograms",
        "Where only one model is right it tends to be the more confident one (theta away "
        "from 45 degrees), which is why averaging their probabilities helps.",
        fig3_theta,
    ),
    FigureSpec(
        "fig4",
        "Fig. 4",
        "Per-class specialization",
        "Classes at the two ends are where one model is right and the other wrong most "
        "often: each model specializes in different classes.",
        fig4_class_specialization,
    ),
    FigureSpec(
        "fig5",
        "Fig. 5",
        "Greedy ensemble selection",
        "Each step adds the model that most raises calibration-split accuracy; the star "
        "ends the kept prefix, and the evaluation curve shows how well that choice holds.",
        fig5_greedy,
    ),
    FigureSpec(
        "fig6",
        "Fig. 6",
        "Overlapping features: combining embeddings",
        "A bump between f = 0 and f = 1 means the two embeddings hold complementary "
        "features; diverse dimensions reach the target with fewer dimensions than random ones.",
        fig6_feature_combination,
    ),
    FigureSpec(
        "fig7",
        "Fig. 7",
        "Downstream: stacking and transfer",
        "Stacking two models' embeddings beats either alone when their features differ; "
        "upstream accuracy need not predict downstream performance.",
        fig7_transfer,
    ),
    FigureSpec(
        "fig10",
        "Fig. 10",
        "Conversion of examples neither model gets right",
        "How often the ensemble is right where both models are wrong: more often for "
        "dissimilar pairs.",
        fig10_neither_conversion,
        True,
    ),
    FigureSpec(
        "fig11",
        "Fig. 11",
        "Interpolating between two models",
        "Ensemble accuracy against the weight given to the base: a peak inside (0, 1) "
        "means the pair is better together than either alone.",
        fig11_interpolation,
    ),
    FigureSpec(
        "fig12",
        "Fig. 12",
        "Specialization over class groups",
        "As Fig. 4, over groups of classes (and per-example attributes): which model "
        "covers which part of the data.",
        fig12_group_specialization,
    ),
    FigureSpec(
        "fig13",
        "Fig. 13",
        "Representation similarity vs error consistency",
        "Pairs with more similar representations (higher CKA) tend to make the same "
        "errors (higher error consistency).",
        fig13_cka,
        True,
    ),
    FigureSpec(
        "reliability",
        "calibration",
        "Reliability before and after temperature scaling",
        "Points on the diagonal are calibrated; temperature scaling should bring the "
        "'after' curve closer to it, which every ensemble here relies on.",
        fig_reliability,
    ),
    FigureSpec(
        "pareto",
        "cost",
        "Accuracy against inference cost",
        "Each point is a model, a pair or a greedy prefix at its summed cost per "
        "example; the step line is the Pareto front (nothing cheaper is as accurate), "
        "the star the base alone: pick the best ensemble your budget affords.",
        fig_pareto,
    ),
)


def draw(spec: FigureSpec, results: Results, which: str = "base") -> FigureResult:
    """Draw one figure (FigureSkipped when its data are absent)."""
    return spec.function(results, which) if spec.takes_pairs else spec.function(results)
