"""The contract of every result table: its columns, their types, its version (docs/design.md sec. 5).

This is the one place a table's columns are spelled. ``zoolens.study`` writes its tables
in exactly the order given here (and refuses a table whose columns differ),
``zoolens.report`` reads and checks them against it, and the report's test fixtures build
their tables by it. The module uses the standard library only, so every layer may import
it (the report still imports neither ``study`` nor ``zoo``).

Versions: every table is written with a sibling ``<table>.json`` holding
``{"table_version": N, "table": name}`` (probe tables add how they were made). A reader
takes a table's version from that sibling; folders written before analyze tables had
siblings carry the version in ``summary.json``'s ``table_version`` instead. Change a
table's columns or their meaning -> raise :data:`TABLE_VERSION` and teach the report to read
both.

To add a table: add a :class:`TableContract` to :data:`RESULT_TABLES` (name, the columns in
written order, the columns the report can do without, which are text or boolean, the producer);
the writer in ``study/`` selects ``contract(name).columns``, and the report loader picks it up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

TABLE_VERSION = 3
"""Version of every result table written by this zoolens (one number for all tables).
2: shift_models gained the label-free accuracy estimates (estimated_accuracy ...).
3: pairs gained error_consistency_lo/_hi and the adjusted p-values (mcnemar_p_holm,
mcnemar_q_bh, paired_bootstrap_p_holm, paired_bootstrap_q_bh), and mcnemar_p is the mid-p
test below 25 discordant examples."""

SUPPORTED_TABLE_VERSIONS = frozenset({1, 2, 3})
"""Table versions the report can read (2: shift_models with the label-free estimates; 3: pairs
with the κ interval and adjusted p-values; older tables lack those optional columns)."""

RESULTS_FORMAT_VERSION = 1
"""``format_version`` of ``summary.json`` (its layout, apart from the tables)."""

Producer = Literal["analyze", "probe"]


@dataclass(frozen=True)
class TableContract:
    """One result table: ``<name>.csv`` (and for analyze tables ``<name>.parquet``).

    ``columns``: exactly the columns written, in order. ``optional``: the columns the report
    can do without (they may be absent in a folder written by someone else); without any
    of the others (``needed``) it leaves the table out. ``text``: kept as text (names: a model called ``NA`` stays a name); every
    other column is numeric, except ``boolean`` ones. ``bounds_suffixes``: ``X_lo`` / ``X_hi``
    are accepted for any column ``X`` (bootstrap intervals). ``producer``: the command that
    writes it; ``always``: filled on every run of it (else only with some options: a folder
    without it, or with it empty, needs no note).
    """

    name: str
    columns: tuple[str, ...]
    optional: tuple[str, ...] = ()
    text: tuple[str, ...] = ()
    boolean: tuple[str, ...] = ()
    bounds_suffixes: bool = False
    producer: Producer = "analyze"
    always: bool = True
    version: int = TABLE_VERSION

    def __post_init__(self) -> None:
        # A contract that contradicts itself is a bug here, caught at import time.
        for what in ("optional", "text", "boolean"):
            stray = [c for c in getattr(self, what) if c not in self.columns]
            if stray:
                raise AssertionError(f"contract {self.name}: {what} {stray} not in columns")
        if len(set(self.columns)) != len(self.columns):
            raise AssertionError(f"contract {self.name}: repeated column")

    @property
    def filename(self) -> str:
        return f"{self.name}.csv"

    @property
    def needed(self) -> tuple[str, ...]:
        """The columns without which the report leaves the table out."""
        return tuple(c for c in self.columns if c not in self.optional)


_PAIR = ("model_a", "model_b")

MODELS = TableContract(
    "models",
    columns=(
        "model",
        "arch",
        "framework",
        "pretrain_data",
        "head",
        "category",
        "accuracy",
        "accuracy_lo",
        "accuracy_hi",
        "accuracy_all",
        "temperature",
        "nll_before",
        "nll_after",
        "ece_before",
        "ece_after",
        "kind",
        "accuracy_eval_n",
        # abstentions: decisions that are no answer (counted wrong everywhere)
        "abstentions",
    ),
    optional=(
        "pretrain_data",
        "accuracy_lo",
        "accuracy_hi",
        "accuracy_all",
        "nll_before",
        "nll_after",
        "ece_before",
        "ece_after",
        "kind",
        "accuracy_eval_n",
        "abstentions",
    ),
    text=("model", "arch", "framework", "pretrain_data", "head", "category", "kind"),
)

# a pair's ensemble accuracy over the better member's and over the base's, with intervals
# (``study.gains``)
GAIN_OVER_COLUMNS = (
    "gain_over_best",
    "gain_over_best_lo",
    "gain_over_best_hi",
    "gain_over_base",
    "gain_over_base_lo",
    "gain_over_base_hi",
)

_PAIRS_COLUMNS = _PAIR + (
    "category",
    "acc_a",
    "acc_b",
    "error_inconsistency",
    "error_inconsistency_lo",
    "error_inconsistency_hi",
    "both_right",
    "both_wrong",
    "error_consistency",
    "error_consistency_lo",
    "error_consistency_hi",
    "dominance_ab",
    "dominance_ba",
    "ensemble_acc",
    "ensemble_acc_lo",
    "ensemble_acc_hi",
    "ensemble_gain",
    "ensemble_gain_lo",
    "ensemble_gain_hi",
    *GAIN_OVER_COLUMNS,
    "conversion_rate",
    "conversion_rate_lo",
    "conversion_rate_hi",
    "neither_conversion",
    "neither_conversion_lo",
    "neither_conversion_hi",
    "mcnemar_p",
    "paired_bootstrap_p",
    # the two p-values adjusted over the table's pairs (those with a p-value): Holm's
    # family-wise and Benjamini-Hochberg's false-discovery-rate q-values
    "mcnemar_p_holm",
    "mcnemar_q_bh",
    "paired_bootstrap_p_holm",
    "paired_bootstrap_q_bh",
)

PAIRS = TableContract(
    "pairs",
    columns=_PAIRS_COLUMNS,
    optional=tuple(
        c
        for c in _PAIRS_COLUMNS
        if c.endswith(("_lo", "_hi", "_p", "_holm", "_bh"))
        or c.startswith("dominance_")
        or c in GAIN_OVER_COLUMNS
    ),
    text=_PAIR + ("category",),
    bounds_suffixes=True,
)

SPECIALIZATION = TableContract(
    "specialization",
    columns=_PAIR
    + (
        "group_type",
        "group",
        "n",
        "acc_a",
        "acc_b",
        "error_inconsistency",
        "only_a_right",
        "only_b_right",
        "mean_theta_only_a",
        "mean_theta_only_b",
    ),
    optional=("group_type",),
    text=_PAIR + ("group", "group_type"),
)

GREEDY = TableContract(
    "greedy",
    columns=("start", "step", "added", "members", "calibration_acc", "evaluation_acc", "kept"),
    text=("start", "added", "members"),
    boolean=("kept",),
)

GREEDY_FOLDS = TableContract(
    # Cross-fitted greedy (analysis without a calibration split): each fold's step table;
    # selection_acc on the other folds (chooses), held_out_acc on this fold (reported only).
    "greedy_folds",
    columns=(
        "fold",
        "n_held_out",
        "start",
        "step",
        "added",
        "members",
        "selection_acc",
        "held_out_acc",
        "kept",
    ),
    text=("start", "added", "members"),
    boolean=("kept",),
    always=False,
)

THETA = TableContract(
    "theta", columns=_PAIR + ("outcome", "bin_lo", "bin_hi", "count"), text=_PAIR + ("outcome",)
)

RELIABILITY = TableContract(
    "reliability",
    columns=("model", "stage", "bin", "bin_lo", "bin_hi", "count", "mean_confidence", "accuracy"),
    text=("model", "stage"),
)

INTERPOLATION = TableContract(
    "interpolation", columns=_PAIR + ("mode", "weight", "ensemble_acc"), text=_PAIR + ("mode",)
)

# The shift study (``analyze --shift``, ``zoolens.study.shift``): the same models on a
# reference evaluation set and shifted ones. Written by every analyze, empty without --shift.
# set: the evaluation set's name; role: "reference" or "shifted"; n: examples measured.
# a model's accuracy on a set estimated without its labels: ALine-D with its interval, ALine-S
# beside (``study.shift``)
ESTIMATE_COLUMNS = (
    "estimated_accuracy",
    "estimated_accuracy_lo",
    "estimated_accuracy_hi",
    "estimated_accuracy_aline_s",
    "estimated_accuracy_aline_s_lo",
    "estimated_accuracy_aline_s_hi",
)
SHIFT_MODELS = TableContract(
    "shift_models",
    columns=(
        "set",
        "role",
        "model",
        "category",
        "n",
        "accuracy",
        "accuracy_lo",
        "accuracy_hi",
        "reference_accuracy",
        "line_accuracy",
        "effective_robustness",
        # version 2: the accuracy estimated without the set's labels (agreement on the line,
        # Baek et al. 2022): ALine-D with its interval, ALine-S beside; empty on the
        # reference set. On an unlabelled set accuracy (and everything from it) is empty.
        *ESTIMATE_COLUMNS,
    ),
    optional=(
        "accuracy_lo",
        "accuracy_hi",
        "line_accuracy",
        "effective_robustness",
        *ESTIMATE_COLUMNS,
    ),
    text=("set", "role", "model", "category"),
    always=False,
)

SHIFT_PAIRS = TableContract(
    # agreement: fraction of examples where the two top-1 predictions are equal (Baek et al.
    # 2022); base_rank: rank of the pair's ensemble accuracy among the base's pairs on this
    # set (1 = best, ties share), empty for pairs without the base.
    "shift_pairs",
    columns=("set", "role")
    + _PAIR
    + (
        "category",
        "n",
        "acc_a",
        "acc_b",
        "error_inconsistency",
        "error_inconsistency_lo",
        "error_inconsistency_hi",
        "agreement",
        "error_consistency",
        "ensemble_acc",
        "ensemble_gain",
        "base_rank",
    ),
    optional=(
        "acc_a",
        "acc_b",
        "error_inconsistency_lo",
        "error_inconsistency_hi",
        "error_consistency",
        "ensemble_gain",
    ),
    text=("set", "role") + _PAIR + ("category",),
    always=False,
)

SHIFT_FITS = TableContract(
    # probit(measure on set) ≈ slope · probit(measure on the reference) + intercept, over
    # models (measure "accuracy") or pairs ("agreement"); r2: squared correlation of the
    # probit values (NaN below 4 points: no R² claimed for a line through 2 or 3);
    # n_points: models or pairs with both probits finite.
    "shift_fits",
    columns=("set", "measure", "n_points", "slope", "intercept", "r2"),
    text=("set", "measure"),
    always=False,
)


def _probe_table(
    name: str,
    columns: tuple[str, ...],
    *,
    text: tuple[str, ...] = _PAIR,
    optional: tuple[str, ...] = (),
) -> TableContract:
    """A table that ``zoolens probe`` writes (most are per pair: model names kept as text)."""
    return TableContract(name, columns=columns, optional=optional, text=text, producer="probe")


PROBE = _probe_table(
    # Fig. 6: the probe's test accuracy on A and B combined, rate = the fraction of A kept
    "probe",
    _PAIR + ("rate", "draw", "n_dims_a", "n_dims_b", "accuracy"),
    optional=("n_dims_a", "n_dims_b"),
)

DIVERSITY = _probe_table(
    # the probe on the k most diverse of the joint dimensions of A and B ("diverse") against
    # k random ones ("random"), beside the accuracy to reach
    "diversity",
    _PAIR + ("selection", "k", "accuracy", "target_accuracy"),
    text=_PAIR + ("selection",),
)

TRANSFER = _probe_table(
    # Fig. 7: a downstream task's metric of each model's probe against its upstream accuracy
    "transfer",
    ("model", "upstream_accuracy", "downstream_metric", "downstream_value"),
    text=("model", "downstream_metric"),
)

STACKING = _probe_table(
    # Fig. 7: the downstream metric of a probe on both models' embeddings stacked
    "stacking",
    _PAIR + ("downstream_metric", "value_a", "value_b", "value_stacked"),
    text=_PAIR + ("downstream_metric",),
)

CKA = _probe_table(
    # representation similarity of each pair (Kornblith et al. 2019) beside its error consistency
    "cka",
    _PAIR + ("cka_linear", "cka_rbf", "cka_debiased", "error_consistency"),
    optional=("cka_rbf", "cka_debiased"),
)

PARETO = TableContract(
    # Accuracy against inference cost (study.budget): every single model, pair and greedy
    # prefix whose members all have a cost on their card; cost = the sum over distinct
    # members, in cost_unit; filled only when some card has a cost.
    "pareto",
    columns=(
        "kind",
        "members",
        "size",
        "cost_unit",
        "cost",
        "accuracy",
        "with_base",
        "fits_budget",
        "on_front",
    ),
    optional=("fits_budget",),
    text=("kind", "members", "cost_unit"),
    boolean=("with_base", "fits_budget", "on_front"),
    always=False,
)

DRILLDOWN = TableContract(
    # Examples only one of the base and its best sidekick gets right (study.drilldown), at
    # most 50, one row per example, model (the base or the sidekick) and rank 1-3 of its
    # calibrated probabilities; image: the example's image file when the zoo knows it.
    "drilldown",
    columns=(
        "model_a",
        "model_b",
        "example",
        "example_id",
        "label",
        "label_name",
        "right",
        "model",
        "rank",
        "class",
        "class_name",
        "probability",
        "image",
    ),
    optional=("example_id", "image"),
    text=(
        "model_a",
        "model_b",
        "example_id",
        "label_name",
        "right",
        "model",
        "class_name",
        "image",
    ),
    always=True,
)

RESULT_TABLES: dict[str, TableContract] = {
    c.name: c
    for c in (
        MODELS,
        PAIRS,
        SPECIALIZATION,
        GREEDY,
        GREEDY_FOLDS,
        THETA,
        RELIABILITY,
        INTERPOLATION,
        SHIFT_MODELS,
        SHIFT_PAIRS,
        SHIFT_FITS,
        PARETO,
        DRILLDOWN,
        PROBE,
        DIVERSITY,
        TRANSFER,
        STACKING,
        CKA,
    )
}
"""Every table of a results folder, by name, analyze's first."""

ANALYZE_TABLES = tuple(n for n, c in RESULT_TABLES.items() if c.producer == "analyze")
PROBE_TABLES = tuple(n for n, c in RESULT_TABLES.items() if c.producer == "probe")

# Extras of a results folder (optional; the report draws them when present).
SOUP_COLUMNS = ("method", "members", "heldout_acc", "test_acc")
"""``soup.csv`` (``zoolens soup``, ``zoolens demo``)."""

FINDING_FIELDS = ("claim", "measured", "verdict")
"""The fields of each finding in ``findings.json`` (``zoolens demo``)."""

FINDING_OPTIONAL_FIELDS = ("decided_by",)
"""Fields a finding may carry (older findings.json lack them): ``decided_by``, the interval
or test its verdict follows from."""

FINDING_DATA_FIELDS = ("intervals",)
"""Structured data a finding may carry beside its text: ``intervals``, a list of
``{part, difference, lo, hi}`` (fractions) for every interval ``decided_by`` quotes."""


# Spreadsheet formulas: a CSV cell starting with one of these runs as a formula when the
# file is opened in Excel, LibreOffice or Google Sheets (CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(cell: object) -> object:
    """A text cell as written to a CSV: a leading ``'`` when it would start a formula
    (``=cmd|…``, ``@SUM(…)``, ``-1+…``) or already starts with ``'`` (so the escape
    reverses exactly, :func:`csv_restore`). Numbers, and text that reads as a number
    (``-0.5``), are left as they are."""
    if not isinstance(cell, str) or not cell.startswith(FORMULA_START + ("'",)):
        return cell
    try:
        float(cell)
    except ValueError:
        return "'" + cell
    return cell


def csv_restore(cell: object) -> object:
    """The text :func:`csv_safe` escaped (one leading ``'`` removed)."""
    return cell[1:] if isinstance(cell, str) and cell.startswith("'") else cell


def contract(name: str) -> TableContract:
    """The contract of table ``name`` (KeyError for a table nobody agreed on: a bug)."""
    return RESULT_TABLES[name]


def columns(name: str) -> list[str]:
    """Table ``name``'s columns in written order, as a list (what pandas selects with)."""
    return list(RESULT_TABLES[name].columns)


def version_record(name: str) -> dict[str, object]:
    """The sibling ``<name>.json`` every writer puts beside table ``name``."""
    return {"table_version": RESULT_TABLES[name].version, "table": name}
