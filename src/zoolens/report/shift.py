"""The report's "Under distribution shift" section, from shift_models/shift_pairs/shift_fits.csv.

Written by ``zoolens analyze --shift`` (``zoolens.study.shift``): the same models on a
reference evaluation set and on shifted ones. The section shows accuracy on the line (Miller
et al. 2021) and agreement on the line (Baek et al. 2022) on probit axes whose ticks are
labelled in accuracy, with the y = x line and the fitted line; the mean error inconsistency
with the base by category on each set (paper Fig. 1, per set); and where the base's best
sidekick, chosen on the reference set, ranks on each set; and every model's accuracy
estimated without the shifted set's labels (agreement on the line, ALine-D with its interval
and ALine-S), against the agreement line it rests on and, where the set has labels, beside
the measured accuracy. A set whose accuracy column is empty had no labels: it is left out of
the figures that need them, and the section says which sets had labels. Like every part of the report it
reads tables only (contracts in ``zoolens.contracts``: SHIFT_MODELS, SHIFT_PAIRS,
SHIFT_FITS). The tables are empty without --shift: the section is then left out silently; a
malformed one is named in a one-line note.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from zoolens.measure.agreement import pairs_with
from zoolens.report import figures as F
from zoolens.measure.shift import MIN_R2_POINTS
from zoolens.report import markup as M
from zoolens.report.tables import Results, finite

# Probit-axis ticks, labelled in accuracy (those inside the plotted range are used).
TICKS = (
    0.01,
    0.05,
    0.1,
    0.2,
    0.3,
    0.4,
    0.5,
    0.6,
    0.7,
    0.8,
    0.85,
    0.9,
    0.95,
    0.97,
    0.98,
    0.99,
    0.995,
    0.999,
)


@dataclass
class ShiftTables:
    models: pd.DataFrame
    pairs: pd.DataFrame
    fits: pd.DataFrame

    @property
    def reference(self) -> str:
        ref = self.models[self.models.role == "reference"]
        return str(ref.set.iloc[0]) if len(ref) else str(self.models.set.iloc[0])

    @property
    def shifted(self) -> list[str]:
        return list(dict.fromkeys(self.models[self.models.role != "reference"].set))

    @property
    def unlabelled(self) -> list[str]:
        """Shifted sets without labels: no measured accuracy in any row."""
        return [
            name
            for name in self.shifted
            if not np.isfinite(
                self.models[self.models.set == name]["accuracy"].to_numpy(np.float64)
            ).any()
        ]

    @property
    def labelled(self) -> list[str]:
        return [name for name in self.shifted if name not in self.unlabelled]

    @property
    def estimated(self) -> list[str]:
        """Shifted sets with label-free estimates (shift_models version 2)."""
        if "estimated_accuracy" not in self.models:
            return []
        return [
            name
            for name in self.shifted
            if np.isfinite(
                self.models[self.models.set == name]["estimated_accuracy"].to_numpy(np.float64)
            ).any()
        ]


def load_shift(results: Results) -> tuple[ShiftTables | None, list[str]]:
    """The three shift tables (``zoolens.contracts``, read by ``load_results``), or None:
    silently when the folder has no shift rows, with a note when one table is unusable."""
    frames = {name: results.get(name) for name in ("shift_models", "shift_pairs", "shift_fits")}
    if all(frame is None or len(frame) == 0 for frame in frames.values()):
        return None, []  # absent, or analyze without --shift (a bad table was noted on reading)
    missing = [f"{name}.csv" for name, frame in frames.items() if frame is None]
    models = frames["shift_models"]
    if missing or models is None or len(models) == 0:
        return None, [
            f"the section under distribution shift is left out: "
            f"{', '.join(missing) or 'shift_models.csv'} absent, empty or unusable"
        ]
    return ShiftTables(frames["shift_models"], frames["shift_pairs"], frames["shift_fits"]), []


# ---------------------------------------------------------------- figures


def _probit(p) -> np.ndarray:
    from scipy.special import ndtri

    return ndtri(np.asarray(p, dtype=np.float64))


def _probit_axes(ax, values: np.ndarray) -> None:
    """Ticks at TICKS inside the range of ``values`` (probit units), labelled in accuracy."""
    finite_values = values[np.isfinite(values)]
    lo, hi = (finite_values.min(), finite_values.max()) if finite_values.size else (-1, 1)
    pad = max(0.1, 0.08 * (hi - lo))
    lo, hi = lo - pad, hi + pad
    ticks = [t for t in TICKS if lo <= _probit(t) <= hi]
    positions = _probit(ticks)
    labels = [f"{100 * t:g}%" for t in ticks]
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xticks(positions, labels)
    ax.set_yticks(positions, labels)
    ax.set_aspect("equal", adjustable="box")
    ax.grid(alpha=0.3)


def _diagonal_and_fit(ax, shift: ShiftTables, name: str, measure: str, label: str) -> dict:
    """Draw y = x (dashed) and set ``name``'s probit line of ``measure`` from shift_fits
    (solid) across the axes; returns that fit's row ({} when there is none)."""
    lo, hi = ax.get_xlim()
    grid = np.linspace(lo, hi, 50)
    ax.plot(grid, grid, color="#888888", linestyle="--", linewidth=0.8, label="y = x")
    fit = shift.fits[(shift.fits.set == name) & (shift.fits.measure == measure)]
    line = fit.iloc[0].to_dict() if len(fit) else {}
    if finite(line.get("slope")) and finite(line.get("intercept")):
        ax.plot(
            grid, line["slope"] * grid + line["intercept"], color="black", linewidth=1, label=label
        )
    return line


@F._figure_function
def on_the_line(shift: ShiftTables, measure: str, base: str | None = None) -> F.FigureResult:
    """Shifted against reference accuracy (per model) or agreement (per pair), probit axes."""
    sets = shift.labelled if measure == "accuracy" else shift.shifted
    if not sets:
        raise F.FigureSkipped(
            "no shifted set with labels" if shift.shifted else "no shifted set in shift_models.csv"
        )
    shown = sets[: F.MAX_PANELS]
    fig, axes = F._new_figure(4.2 * len(shown), 4.2, ncols=len(shown))
    data: dict = {}
    ref = shift.reference
    if measure == "accuracy":
        table = shift.models
        x_all = table[table.set == ref].set_index("model")["accuracy"]
    else:
        table = shift.pairs
        x_all = table[table.set == ref].set_index(["model_a", "model_b"])["agreement"]
    for ax, name in zip(axes[0], shown):
        mine = table[table.set == name]
        if measure == "accuracy":
            x = mine["model"].map(x_all).to_numpy(np.float64)
            y = mine["accuracy"].to_numpy(np.float64)
            labels = [str(m) for m in mine["model"]]
        else:
            keys = pd.MultiIndex.from_arrays([mine.model_a, mine.model_b])
            x = x_all.reindex(keys).to_numpy(np.float64)
            y = mine["agreement"].to_numpy(np.float64)
            labels = [f"{a} / {b}" for a, b in zip(mine.model_a, mine.model_b)]
        px, py = _probit(x), _probit(y)
        keep = np.isfinite(px) & np.isfinite(py)
        category = mine.category.to_numpy().astype(object)
        if measure == "accuracy" and base is not None:
            category[mine["model"].to_numpy() == base] = "base"  # not "Same" (itself)
        categories = F.ordered_categories(category)
        for cat in categories:
            sel = keep & (category == cat)
            ax.scatter(
                px[sel],
                py[sel],
                s=16 if measure == "accuracy" else 8,
                color=F.category_color(cat, categories),
                alpha=0.8,
                zorder=3,
                edgecolors="none",
                label=F.label(cat, 14),
            )
        _probit_axes(ax, np.concatenate([px[keep], py[keep]]))
        line = _diagonal_and_fit(ax, shift, name, measure, "probit fit")
        r2 = f", R² {line['r2']:.3f}" if finite(line.get("r2")) else ""
        points = line.get("n_points", math.nan)
        if not r2 and finite(points) and points < MIN_R2_POINTS:
            r2 = f", {int(points)} points only: no R²"
        slope = (
            f"slope {line['slope']:.2f}, intercept {line['intercept']:+.2f}{r2}"
            if finite(line.get("slope"))
            else "no fit"
        )
        ax.set_title(F.label(f"{name}: {slope}", 60))
        what = "accuracy" if measure == "accuracy" else "agreement"
        ax.set_xlabel(F.label(f"{what} on {ref} (probit scale)", 48))
        ax.set_ylabel(F.label(f"{what} on {name} (probit scale)", 48))
        ax.legend(loc="upper left", frameon=False)
        data[name] = {
            "labels": [lab for lab, k in zip(labels, keep) if k],
            "x": F._floats(x[keep]),
            "y": F._floats(y[keep]),
            "slope": line.get("slope", math.nan),
            "intercept": line.get("intercept", math.nan),
            "r2": line.get("r2", math.nan),
        }
    said = [f"the first {len(shown)} of {len(sets)} shifted sets"] if len(shown) < len(sets) else []
    return F.FigureResult(fig, data, shown=said)


@F._figure_function
def estimated_accuracy(shift: ShiftTables) -> F.FigureResult:
    """Each model's accuracy estimated without labels (ALine-D, with its interval) against its
    reference accuracy, on probit axes, with the agreement line it rests on and, where the set
    has labels, the measured accuracy (hollow)."""
    sets = shift.estimated
    if not sets:
        raise F.FigureSkipped("no label-free estimates in shift_models.csv")
    shown = sets[: F.MAX_PANELS]
    fig, axes = F._new_figure(4.2 * len(shown), 4.2, ncols=len(shown))
    data: dict = {}
    unlabelled = set(shift.unlabelled)
    for ax, name in zip(axes[0], shown):
        mine = shift.models[shift.models.set == name]
        x = _probit(mine["reference_accuracy"])
        y = _probit(mine["estimated_accuracy"])
        lo = _probit(mine["estimated_accuracy_lo"])
        hi = _probit(mine["estimated_accuracy_hi"])
        measured = _probit(mine["accuracy"])
        keep = np.isfinite(x) & np.isfinite(y)
        bars = keep & np.isfinite(lo) & np.isfinite(hi)
        ax.errorbar(
            x[bars],
            y[bars],
            yerr=[y[bars] - lo[bars], hi[bars] - y[bars]],
            fmt="none",
            ecolor="#1f5f99",
            alpha=0.5,
            linewidth=1,
            zorder=2,
        )
        ax.scatter(x[keep], y[keep], s=16, color="#1f5f99", zorder=3, label="estimated (ALine-D)")
        has = keep & np.isfinite(measured)
        if has.any():
            ax.scatter(
                x[has],
                measured[has],
                s=22,
                facecolors="none",
                edgecolors="#d95f02",
                zorder=4,
                label="measured",
            )
        _probit_axes(ax, np.concatenate([x[keep], y[keep], measured[has]]))
        line = _diagonal_and_fit(ax, shift, name, "agreement", "agreement line")
        r2 = f"agreement R² {line['r2']:.3f}" if finite(line.get("r2")) else "no agreement line"
        ax.set_title(
            F.label(f"{name} ({'no labels' if name in unlabelled else 'labelled'}): {r2}", 60)
        )
        ax.set_xlabel(F.label(f"accuracy on {shift.reference} (probit scale)", 48))
        ax.set_ylabel(F.label(f"accuracy on {name} (probit scale)", 48))
        ax.legend(loc="upper left", frameon=False)
        data[name] = {
            "labels": [str(m) for m, k in zip(mine["model"], keep) if k],
            "x": F._floats(np.asarray(mine["reference_accuracy"], np.float64)[keep]),
            "estimated": F._floats(np.asarray(mine["estimated_accuracy"], np.float64)[keep]),
            "lo": F._floats(np.asarray(mine["estimated_accuracy_lo"], np.float64)[keep]),
            "hi": F._floats(np.asarray(mine["estimated_accuracy_hi"], np.float64)[keep]),
            "measured": F._floats(np.asarray(mine["accuracy"], np.float64)[keep]),
            "labelled": name not in unlabelled,
        }
    said = [f"the first {len(shown)} of {len(sets)} shifted sets"] if len(shown) < len(sets) else []
    return F.FigureResult(fig, data, shown=said)


def _base_pairs(pairs: pd.DataFrame, base: str) -> pd.DataFrame:
    rows, _, other = pairs_with(pairs.model_a, pairs.model_b, base)
    return pairs.iloc[rows].assign(other=other)


@F._figure_function
def ei_by_category(shift: ShiftTables, base: str | None) -> F.FigureResult:
    """Mean error inconsistency with the base per category (groups) on each set (bars)."""
    if base is None:
        raise F.FigureSkipped("no base model known")
    pairs = _base_pairs(shift.pairs, base)
    if len(pairs) == 0:
        raise F.FigureSkipped(f"shift_pairs.csv has no pair with the base {base!r}")
    sets = [shift.reference] + shift.labelled  # an unlabelled set has no error inconsistency
    categories = F.ordered_categories(pairs.category)
    fig, axes = F._new_figure(max(4.0, 1.1 * len(categories) * max(1, len(sets)) / 2 + 2), 3.0)
    ax = axes[0][0]
    width = 0.8 / len(sets)
    data: dict = {"categories": categories, "sets": {}}
    colors = ("#1f5f99", "#d95f02", "#1b9e77", "#7570b3", "#e7298a", "#66a61e")
    for k, name in enumerate(sets):
        mine = pairs[pairs.set == name]
        means, counts = [], []
        for cat in categories:
            values = mine[mine.category == cat].error_inconsistency.to_numpy(np.float64)
            values = values[np.isfinite(values)]
            means.append(float(values.mean()) if values.size else math.nan)
            counts.append(int(values.size))
        positions = np.arange(len(categories)) - 0.4 + width * (k + 0.5)
        ax.bar(
            positions,
            np.nan_to_num(means),
            width=width,
            color=colors[k % len(colors)],
            label=F.label(name, 24),
        )
        data["sets"][name] = {"mean": means, "n_pairs": counts}
    ax.set_xticks(range(len(categories)), [F.label(c, 14) for c in categories])
    ax.set_ylabel("mean error inconsistency with the base")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(frameon=False)
    return F.FigureResult(fig, data)


# ---------------------------------------------------------------- the section


def _sidekick_rows(shift: ShiftTables, base: str) -> tuple[list[str], list[list], str | None]:
    """Partners of the base ranked on the reference set, with their rank on every set."""
    pairs = _base_pairs(shift.pairs, base)
    pairs = pairs[np.isfinite(pairs.ensemble_acc.to_numpy(np.float64))]
    if len(pairs) == 0:
        return [], [], None
    sets = [shift.reference] + shift.labelled  # no ensemble accuracy without labels
    ref = pairs[pairs.set == shift.reference].sort_values("base_rank", kind="stable")
    rows = []
    for other in ref.other:
        row = [other]
        for name in sets:
            hit = pairs[(pairs.set == name) & (pairs.other == other)]
            row.append(
                (hit.base_rank.iloc[0], hit.ensemble_acc.iloc[0])
                if len(hit)
                else (math.nan, math.nan)
            )
        rows.append(row)
    best = str(ref.other.iloc[0]) if len(ref) else None
    return sets, rows, best


def shift_section(results: Results) -> tuple[str, list[str], dict]:
    """(section HTML or "", notes, figure data) for the results folder."""

    shift, load_notes = load_shift(results)
    if shift is None:
        return "", load_notes, {}
    notes: list[str] = []
    base = results.base
    blocks, data = [], {}
    specs = [
        (
            "shift-accuracy",
            "Accuracy on the line",
            "Each dot is a model: its accuracy on a shifted set against the reference set, on "
            "probit axes labelled in accuracy; the dashed line is y = x, the solid line the "
            "probit-scale fit over all models (Miller et al. 2021). Dots above the fit are "
            "effectively robust (Taori et al. 2020).",
            lambda: on_the_line(shift, "accuracy", base),
        ),
        (
            "shift-agreement",
            "Agreement on the line",
            "Each dot is a pair: how often the two models predict the same class on a shifted "
            "set against the reference set, on probit axes; dashed y = x, solid the fit "
            "(Baek et al. 2022). A fit like the accuracy line's lets agreement, which needs "
            "no labels, predict shifted accuracy.",
            lambda: on_the_line(shift, "agreement"),
        ),
        (
            "shift-categories",
            "Error inconsistency with the base by category, per set",
            "Paper Fig. 1 on each evaluation set: whether more distant training methods "
            "still disagree more with the base after the shift.",
            lambda: ei_by_category(shift, base),
        ),
        (
            "shift-estimates",
            "Accuracy estimated without labels",
            "Each dot is a model: its accuracy on a shifted set estimated from how often the "
            "models agree there (no labels used; ALine-D, Baek et al. 2022), with its 95% "
            "interval (example resamples of both sets with the agreement line refit on each, "
            "plus the line's scatter), against its accuracy on the reference set; the solid "
            "line is the agreement line the estimates rest on. Hollow dots: the measured "
            "accuracy, where the set has labels.",
            lambda: estimated_accuracy(shift),
        ),
    ]
    for key, title, caption, draw in specs:
        try:
            drawn = draw()
        except F.FigureSkipped as exc:
            notes.append(f"{title} left out: {exc}")
            continue
        prefix = f"zl-{key}"
        svg = M.figure_svg(drawn.figure, prefix)
        shown = (
            f' <span class="shown">({M.esc("; ".join(drawn.shown))}.)</span>' if drawn.shown else ""
        )
        blocks.append(
            f'<figure id="{prefix}" class="zl-figure" data-figure="{M.esc(key)}">'
            f'{svg}<figcaption id="{prefix}-caption"><b>{M.esc(title)}</b>. '
            f"{M.esc(caption)}{shown}</figcaption></figure>"
        )
        data[key] = drawn.data
        drawn.figure.clear()
    blocks.append(_fits_table(shift))
    if shift.estimated:
        blocks.append(_estimates_table(shift))
    if base is not None:
        sets, rows, best = _sidekick_rows(shift, base)
        if rows:
            blocks.append(_sidekick_table(sets, rows, best, base))
        else:
            notes.append(
                "sidekick ranks under shift left out: no pair with the base has "
                "ensemble accuracies (decision-only models)"
            )
    body = "".join(blocks)
    return (
        f'<section id="shift"><h2>Under distribution shift</h2>'
        f"<p>The same models on {len(shift.shifted) + 1} evaluation sets; the reference "
        f'set is <span class="name">{M.esc(shift.reference)}</span>. {_labels_sentence(shift)}'
        f"</p>{body}</section>",
        notes,
        data,
    )


def _fits_table(shift: ShiftTables) -> str:

    rows = []
    for f in shift.fits.to_dict("records"):
        cells = [
            M.cell(M.esc(f["set"]), str(f["set"]), "name"),
            M.cell(M.esc(f["measure"])),
            M.cell(M.num(f["slope"], 3), M.sort_key(f["slope"]), "num"),
            M.cell(M.num(f["intercept"], 3), M.sort_key(f["intercept"]), "num"),
            M.cell(M.num(f["r2"], 3), M.sort_key(f["r2"]), "num"),
            M.cell(
                str(int(f["n_points"])) if finite(f["n_points"]) else "—",
                M.sort_key(f["n_points"]),
                "num",
            ),
        ]
        rows.append(f"<tr>{''.join(cells)}</tr>")
    headers = [
        ("Set", "the shifted evaluation set"),
        ("Measure", "accuracy (per model) or prediction agreement (per pair)"),
        ("Slope", "of probit(shifted) on probit(reference)"),
        ("Intercept", "of the probit-scale line"),
        ("R²", "squared correlation of the probit values"),
        ("Points", "models or pairs in the fit"),
    ]
    caption = (
        "<b>Lines under shift.</b> probit(measure on the shifted set) ≈ slope · "
        "probit(measure on the reference set) + intercept."
    )
    return M.table("table-shift-fits", caption, headers, rows)


def _sidekick_table(sets: list[str], rows: list[list], best: str | None, base: str) -> str:

    body = []
    for row in rows:
        cells = [M.cell(M.esc(row[0]), str(row[0]), "name")]
        for rank, acc in row[1:]:
            text = f'{int(rank)} <span class="ci">{M.pct(acc)}</span>' if finite(rank) else "—"
            cells.append(M.cell(text, M.sort_key(rank), "num"))
        cls = ' class="best"' if row[0] == best else ""
        body.append(f'<tr{cls} data-model="{M.esc(row[0])}">{"".join(cells)}</tr>')
    headers = [("Model", "the base's partner")] + [
        (
            f"Rank on {name}",
            "rank by pair-ensemble accuracy with the base on this set "
            "(1 = best; ties share a rank), and that accuracy",
        )
        for name in sets
    ]
    caption = (
        f"<b>Sidekicks under shift.</b> The partners of the base "
        f'<span class="name">{M.esc(base)}</span> ranked by ensemble accuracy on the '
        f"reference set; the best one there"
        + (f' (<span class="name">{M.esc(best)}</span>)' if best else "")
        + " and its rank on every shifted set."
    )
    return M.table("table-shift-sidekicks", caption, headers, body)


def _labels_sentence(shift: ShiftTables) -> str:
    """Which shifted sets had labels (the reference always has)."""

    def names(sets: list[str]) -> str:
        return ", ".join(f'<span class="name">{M.esc(n)}</span>' for n in sets)

    parts = []
    if shift.labelled:
        parts.append(f"With labels: {names(shift.labelled)}.")
    if shift.unlabelled:
        parts.append(
            f"Without labels: {names(shift.unlabelled)} (their accuracies are estimated "
            "from agreement only)."
        )
    return " ".join(parts)


def _estimates_table(shift: ShiftTables) -> str:
    rows = []
    for r in shift.models[shift.models.set.isin(shift.estimated)].to_dict("records"):
        est = f"{M.pct(r['estimated_accuracy'])}"
        if finite(r.get("estimated_accuracy_lo")) and finite(r.get("estimated_accuracy_hi")):
            est += (
                f' <span class="ci">[{M.pct(r["estimated_accuracy_lo"])}, '
                f"{M.pct(r['estimated_accuracy_hi'])}]</span>"
            )
        aline_s = f"{M.pct(r.get('estimated_accuracy_aline_s'))}"
        measured = M.pct(r["accuracy"]) if finite(r["accuracy"]) else "no labels"
        cells = [
            M.cell(M.esc(r["set"]), str(r["set"]), "name"),
            M.cell(M.esc(r["model"]), str(r["model"]), "name"),
            M.cell(M.pct(r["reference_accuracy"]), M.sort_key(r["reference_accuracy"]), "num"),
            M.cell(est, M.sort_key(r["estimated_accuracy"]), "num"),
            M.cell(aline_s, M.sort_key(r.get("estimated_accuracy_aline_s")), "num"),
            M.cell(measured, M.sort_key(r["accuracy"]), "num"),
        ]
        rows.append(f"<tr>{''.join(cells)}</tr>")
    headers = [
        ("Set", "the shifted evaluation set"),
        ("Model", "the model"),
        ("Reference accuracy", "measured on the reference set"),
        ("Estimated (ALine-D)", "accuracy estimated without the set's labels, 95% interval"),
        ("ALine-S", "the estimate read off the agreement line alone"),
        ("Measured", "the set's own accuracy, where it has labels"),
    ]
    caption = (
        "<b>Accuracy without labels.</b> Agreement on the line (Baek et al. 2022): where "
        "accuracy is on the line, pair agreement follows the same probit-scale line, and "
        "agreement needs no labels. Where a set has labels the estimate stands beside the "
        "measured accuracy, so the method can be checked on it."
    )
    return M.table("table-shift-estimates", caption, headers, rows)
