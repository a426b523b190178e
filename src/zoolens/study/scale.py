"""Base-only analysis (``zoolens analyze --pairs base``): what it measures and what it leaves out.

A user who looks for a sidekick to one model needs the base's M − 1 pairs, not all
M(M − 1)/2: with ``pairs="base"`` the evaluation pass decides only those pairs' ensembles
(``measure.topk`` with a pair list), the agreement measures are counted pair by pair
(``measure.agreement.listed_pair_agreement``) and the bootstrap sums hold M − 1 columns, so
time and memory grow linearly in M. Everything else the analysis writes is defined from the
base alone (models, specialization, theta, reliability, interpolation, drilldown, greedy
selection, the category means of the headline), so it is the same as in the all-pairs run,
and so is every column of the base's pairs but the four below.

The columns adjusted for multiple testing (``mcnemar_p_holm``, ``mcnemar_q_bh``,
``paired_bootstrap_p_holm``, ``paired_bootstrap_q_bh``) adjust over the table's pairs, so in a
base-only table over the base's M − 1 pairs — the family a sidekick search tests — and they
differ from the all-pairs run's (which adjust over every pair); the note says so.

Left out, with one note in summary.json, are the results whose definition needs every
pair: the Spearman correlation of error inconsistency with ensemble gain over all pairs
(``headline.spearman_ei_vs_gain.all_pairs`` is null; the correlation over the pairs with
the base is kept) and the report's error-consistency matrix (drawn from pairs.csv, which
then holds one row of it). The shift study's tables cover every pair, so ``--shift`` needs
``--pairs all``.
"""

from __future__ import annotations

from typing import Any

from zoolens.errors import ZoolensError

BASE_ONLY_NOTE = (
    "pairs: base (--pairs base): only the base's pairs were measured (time and memory "
    "linear in the number of models); the multiple-testing columns (*_holm, *_q_bh) adjust "
    "over those pairs, the family this table tests; left out because they need every pair: "
    "the Spearman correlation over all pairs (headline spearman_ei_vs_gain.all_pairs) and the "
    "report's error-consistency matrix"
)


def check_base_only(pairs: str, option: str) -> None:
    """ZoolensError when ``option`` needs every pair and the analysis measures the base's."""
    if pairs == "base":
        raise ZoolensError(f"{option} measures every pair of models: it needs --pairs all")


def pairs_summary(summary: dict[str, Any], pairs: str) -> None:
    """Record in ``summary`` which pairs were measured (``"pairs": "base" | "all"``); with
    base pairs, null the headline's all-pairs correlation and add the note saying why."""
    summary["pairs"] = pairs
    if pairs != "base":
        return
    spearman = summary.get("headline", {}).get("spearman_ei_vs_gain")
    if isinstance(spearman, dict):
        spearman["all_pairs"] = None
    summary.setdefault("notes", []).append(BASE_ONLY_NOTE)
