"""The paper's figures for one results folder, one function per figure, and their list
(``FIGURES``). The figures live in one module per family (``fig_pairs``, ``fig_models``,
``fig_features``, ``fig_costs``); what they share in ``plotting``.

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

from collections.abc import Callable
from dataclasses import dataclass

from zoolens.report.fig_costs import fig_reliability, fig_pareto, PARETO_KIND_STYLE
from zoolens.report.fig_features import fig6_feature_combination, fig7_transfer, fig11_interpolation
from zoolens.report.fig_models import (
    fig3_theta,
    best_sidekick,
    fig4_class_specialization,
    fig12_group_specialization,
    fig5_greedy,
    OUTCOME_STYLE,
)
from zoolens.report.fig_pairs import (
    fig1_error_inconsistency,
    fig_kappa_matrix,
    fig2_ensembles,
    fig10_neither_conversion,
    fig13_cka,
)
from zoolens.report.plotting import (
    CATEGORY_ORDER,
    CATEGORY_COLORS,
    OTHER_COLORS,
    MAX_PANELS,
    MISSING_GLYPH,
    MAX_GROUPS,
    RC,
    FigureSkipped,
    FigureResult,
    style,
    figure_function,
    new_figure,
    label,
    ordered_categories,
    category_color,
    floats,
    select_pairs,
    mean_std,
    PAIR_RESAMPLES,
    SUMMARY_INTERVALS,
    INTERVALS_EXAMPLES,
    INTERVALS_PAIRS,
    pair_bootstrap_interval,
    summary_interval,
    category_interval,
    BAR_MARK,
    BAR_KIND,
    bar_label,
    interval_note,
    strip_panel,
    LABEL_OFFSETS,
    place_labels,
    titled,
    interval_kinds,
    defined_rows,
    undefined_reason,
    pair_rows,
    pair_label,
)
from zoolens.report.tables import Results

# The figure functions and the shared helpers stay importable from here.
__all__ = [
    "FIGURES",
    "FigureSpec",
    "draw",
    "fig1_error_inconsistency",
    "fig_kappa_matrix",
    "fig2_ensembles",
    "fig10_neither_conversion",
    "fig13_cka",
    "fig3_theta",
    "best_sidekick",
    "fig4_class_specialization",
    "fig12_group_specialization",
    "fig5_greedy",
    "OUTCOME_STYLE",
    "fig6_feature_combination",
    "fig7_transfer",
    "fig11_interpolation",
    "fig_reliability",
    "fig_pareto",
    "PARETO_KIND_STYLE",
    "CATEGORY_ORDER",
    "CATEGORY_COLORS",
    "OTHER_COLORS",
    "MAX_PANELS",
    "MISSING_GLYPH",
    "MAX_GROUPS",
    "RC",
    "FigureSkipped",
    "FigureResult",
    "style",
    "figure_function",
    "new_figure",
    "label",
    "ordered_categories",
    "category_color",
    "floats",
    "select_pairs",
    "mean_std",
    "PAIR_RESAMPLES",
    "SUMMARY_INTERVALS",
    "INTERVALS_EXAMPLES",
    "INTERVALS_PAIRS",
    "pair_bootstrap_interval",
    "summary_interval",
    "category_interval",
    "BAR_MARK",
    "BAR_KIND",
    "bar_label",
    "interval_note",
    "strip_panel",
    "LABEL_OFFSETS",
    "place_labels",
    "titled",
    "interval_kinds",
    "defined_rows",
    "undefined_reason",
    "pair_rows",
    "pair_label",
]

# the names tests and older code use
_figure_function, _floats, _new_figure = figure_function, floats, new_figure


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
