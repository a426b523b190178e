"""What every figure of the report shares: the style (``RC``: SVG text, no math parsing,
deterministic ids), ``FigureResult`` / ``FigureSkipped``, the pairs a figure draws, labels
and their placement, and the category intervals (examples or pairs resampled).

The figures themselves live in ``fig_pairs``, ``fig_models``, ``fig_features`` and
``fig_costs``, one module per family; ``report.figures`` lists them (``FIGURES``).
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
MISSING_GLYPH = r"Glyph \d+ .*missing from font"  # matplotlib's UserWarning (see figure_function)
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


def figure_function(func: Callable[..., FigureResult]) -> Callable[..., FigureResult]:
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


def new_figure(width: float, height: float, ncols: int = 1, nrows: int = 1):
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


def floats(values) -> list[float]:
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


def mean_std(values: np.ndarray) -> tuple[float, float, int]:
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


def strip_panel(
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
        mean, std, n = mean_std(values)
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
            "values": floats(values[keep]),
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
    ax.set_title(f"{title}\n{bar_label(interval_kinds(panel))}", fontsize=8)


def interval_kinds(*panels: dict) -> set:
    return {
        entry.get("interval")
        for panel in panels
        for entry in panel.values()
        if isinstance(entry, dict)
    }


def defined_rows(pairs: pd.DataFrame, column: str) -> np.ndarray:
    return (
        np.isfinite(pairs[column].to_numpy(np.float64))
        if column in pairs.columns
        else np.zeros(len(pairs), dtype=bool)
    )


def undefined_reason(results: Results, column: str) -> str | None:
    """summary.json's reason why ``column`` is NaN by construction for some pairs, if any."""
    entry = (results.summary.get("undefined") or {}).get(column)
    return str(entry.get("reason")) if isinstance(entry, dict) and entry.get("reason") else None


def pair_rows(table: pd.DataFrame, base: str | None) -> pd.DataFrame:
    """Rows whose pair involves the base when there are any, else all rows."""
    if base is None:
        return table
    mine = table[(table.model_a == base) | (table.model_b == base)]
    return mine if len(mine) else table


def pair_label(a: str, b: str, base: str | None) -> str:
    return label(b if a == base else a if b == base else f"{a} + {b}", 34)
