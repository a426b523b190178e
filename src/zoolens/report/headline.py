"""The top of the report: the zoo summary (summary.json, flattened and labelled) and the
headline findings (the base, its best sidekick, by-category means with their intervals,
correlations, the greedy ensemble)."""

from __future__ import annotations
from __future__ import annotations

import json
from typing import Any


from zoolens.report import figures as F
from zoolens.report.markup import esc
from zoolens.report.markup import num as _num
from zoolens.report.markup import pct as _pct
from zoolens.report.sections import points, weights_text
from zoolens.report.tables import Results, finite

# ---------------------------------------------------------------- summary and headline

_SUMMARY_LABELS = {
    "zoo": "Zoo",
    "path": "Zoo path",
    "zoo_path": "Zoo path",
    "dataset": "Dataset",
    "base": "Base model",
    "num_models": "Models",
    "num_examples": "Examples",
    "num_classes": "Classes",
    "num_evaluation_examples": "Evaluation examples",
    "split_seed": "Split seed",
    "zoolens_version": "zoolens version",
    "format_version": "Format version",
    "table_version": "Table version",
    "command": "Command line",
    "created_utc": "Created",
    "splits": "Split sizes",
    "elapsed_s": "Analysis time (s)",
    "multilabel": "Multi-label",
    "file_hashes": "File hashes (sha256)",
}
_FIRST = (
    "dataset",
    "path",
    "zoo",
    "base",
    "num_models",
    "num_examples",
    "num_classes",
    "splits",
    "split_seed",
    "multilabel",
    "created_utc",
    "zoolens_version",
    "command",
)
_NOTE_LISTS = ("notes", "temperature_warnings")


def _humanize(key) -> str:
    return _SUMMARY_LABELS.get(key, str(key).replace("_", " ").strip().capitalize())


def _scalar(value) -> str:
    if isinstance(value, bool) or value is None:
        return esc("yes" if value is True else "no" if value is False else "—")
    if isinstance(value, float):
        return esc(_num(value))
    return esc(value)


def _generic(value, depth: int = 0) -> str:
    """Any JSON value as escaped HTML: scalars as text, short scalar lists comma-joined,
    dicts and longer structures as nested lists (never raw JSON)."""
    if isinstance(value, dict):
        if not value:
            return "—"
        if depth > 3:
            return f"<code>{esc(json.dumps(value, ensure_ascii=False, default=str))}</code>"
        return (
            "<ul>"
            + "".join(
                f"<li><b>{esc(_humanize(k))}:</b> {_generic(v, depth + 1)}</li>"
                for k, v in value.items()
            )
            + "</ul>"
        )
    if isinstance(value, (list, tuple)):
        if not value:
            return "—"
        if all(not isinstance(v, (dict, list, tuple)) for v in value):
            return ", ".join(_scalar(v) for v in value)
        return "<ol>" + "".join(f"<li>{_generic(v, depth + 1)}</li>" for v in value) + "</ol>"
    return _scalar(value)


def flat_summary(summary: dict) -> dict:
    """Top-level fields with the "zoo" block (analyze's provenance) opened up."""
    flat = {}
    for key, value in summary.items():
        if key == "zoo" and isinstance(value, dict):
            flat.update({k: v for k, v in value.items()})
        else:
            flat[key] = value
    return flat


def summary_section(results: Results) -> str:
    flat = flat_summary(results.summary)
    models = results.get("models")
    if "num_models" not in flat and models is not None:
        flat["num_models"] = len(models)
    if "base" not in flat and results.base is not None:
        flat["base"] = results.base
    if isinstance(flat.get("splits"), dict):
        flat["splits"] = ", ".join(f"{k} {v}" for k, v in flat["splits"].items())
    keys = [k for k in _FIRST if k in flat] + [k for k in flat if k not in _FIRST]
    items, details = [], []
    for key in keys:
        value = flat[key]
        if key in ("headline",) + _NOTE_LISTS:
            continue
        if isinstance(value, (dict, list, tuple)):
            if value:
                count = f" ({len(value)})"
                details.append(
                    f"<details><summary>{esc(_humanize(key))}{count}</summary>"
                    f"{_generic(value)}</details>"
                )
            continue
        cls = ' class="name"' if key in ("base", "dataset") else ""
        items.append(f"<dt>{esc(_humanize(key))}</dt><dd{cls}>{_scalar(value)}</dd>")
    analysis_notes = []
    for key in _NOTE_LISTS:
        value = flat.get(key)
        if isinstance(value, list):
            analysis_notes += [f"<li>{esc(v)}</li>" for v in value if isinstance(v, str) and v]
    notes = (
        f'<div id="analysis-notes"><b>Notes from the analysis:</b><ul>{"".join(analysis_notes)}'
        f"</ul></div>"
        if analysis_notes
        else ""
    )
    return (
        f'<section id="summary"><h2>The zoo</h2><dl class="summary">{"".join(items)}</dl>'
        f"{notes}{''.join(details)}</section>"
    )


def _interval(d: dict, key: str) -> str:
    lo, hi = d.get(f"{key}_lo", d.get("lo")), d.get(f"{key}_hi", d.get("hi"))
    return f" [{_pct(lo)}, {_pct(hi)}]" if finite(lo) and finite(hi) else ""


def _headline_base(v: dict) -> str:
    text = f'<span class="name">{esc(v["model"])}</span>: accuracy {_pct(v["accuracy"])}'
    text += _interval(v, "accuracy") + " on the evaluation split"
    if finite(v.get("accuracy_all")):
        text += f", {_pct(v['accuracy_all'])} on all examples"
    return text


def _headline_sidekick(v: dict) -> str:
    text = (
        f'<span class="name">{esc(v["model"])}</span>'
        + (f" ({esc(v['category'])})" if v.get("category") else "")
        + f": ensemble accuracy {_pct(v['ensemble_acc'])}"
        + _interval(v, "ensemble_acc")
    )
    if finite(v.get("over_base")):
        text += f", {100 * float(v['over_base']):+.2f} points over the base alone"
    if finite(v.get("gain_over_best")):
        text += f", {100 * float(v['gain_over_best']):+.2f} points over the better member"
    if finite(v.get("error_inconsistency")):
        text += f"; error inconsistency {_num(v['error_inconsistency'])}"
    if finite(v.get("mcnemar_p")):
        # which p-value this is: the raw test of this one pair, and (newer tables) the same
        # adjusted for every pair of pairs.csv being tested (all pairs, or the base's with
        # analyze --pairs base)
        text += f"; McNemar p = {float(v['mcnemar_p']):.2g} (this pair alone"
        if finite(v.get("mcnemar_p_holm")):
            text += (
                "; Holm-adjusted over the tested pairs of pairs.csv "
                f"{float(v['mcnemar_p_holm']):.2g}"
            )
        text += ")"
    return text


def _by_category(v: dict, what: str) -> str:
    parts = []
    for cat in F.ordered_categories(v):
        d = v[cat]
        if not isinstance(d, dict) or not finite(d.get("mean")):
            continue
        ci = (
            f" [{_num(d['lo'], 3)}, {_num(d['hi'], 3)}]"
            if finite(d.get("lo")) and finite(d.get("hi"))
            else ""
        )
        n = (
            f" ({int(d['n_pairs'])} pair{'s' if int(d['n_pairs']) != 1 else ''})"
            if finite(d.get("n_pairs"))
            else ""
        )
        parts.append(f"{esc(cat)} {_num(d['mean'], 3)}{ci}{n}")
    if not parts:
        return f"{what}: not defined for any category (no pair with the base has this rate)"
    return f"{what}: " + ", ".join(parts)


MIN_CORRELATION_PAIRS = 5


def correlation_text(d: dict, name: str) -> str:
    """One correlation as text: "too few pairs" below MIN_CORRELATION_PAIRS points (a rank
    correlation over three pairs is 1.00 or -1.00 by luck half the time)."""
    n: Any = d.get("n_pairs")
    n_text = f"n = {esc(n)}" if n is not None else "n unknown"
    if not finite(n) or int(n) < MIN_CORRELATION_PAIRS:
        return f"too few pairs over {name} ({n_text}; at least {MIN_CORRELATION_PAIRS} needed)"
    if not finite(d.get("rho")):
        return f"not defined over {name} ({n_text}: a constant column)"
    text = f"ρ = {float(d['rho']):.2f}"
    if finite(d.get("lo")) and finite(d.get("hi")):
        text += f" [{float(d['lo']):.2f}, {float(d['hi']):.2f}]"
    if finite(d.get("p_value")):
        text += f", p = {float(d['p_value']):.2g}"
    return text + f" over {name} ({n_text})"


def _headline_spearman(v: dict) -> str:
    parts = []
    for key, name in (("pairs_with_base", "pairs with the base"), ("all_pairs", "all pairs")):
        d = v.get(key)
        if isinstance(d, dict):
            parts.append(correlation_text(d, name))
    if not parts:
        raise ValueError("no correlation")
    return (
        "Spearman correlation of error inconsistency and ensemble gain over the members' "
        "mean (interval: 95% bootstrap, examples resampled): " + "; ".join(parts)
    )


def _headline_greedy(v: dict) -> str:
    if v.get("skipped") and not v.get("members"):
        return f"not run: {esc(v['skipped'])}"
    members = v.get("members") or []
    text = (
        f'greedy ensemble from <span class="name">{esc(v["start"])}</span>: '
        f"{weights_text(members)}; evaluation accuracy {_pct(v['evaluation_acc'])}"
    )
    if finite(v.get("gain_over_start")):
        text += f" ({100 * float(v['gain_over_start']):+.2f} points over the start alone"
        if finite(v.get("gain_over_start_lo")) and finite(v.get("gain_over_start_hi")):
            text += (
                f", 95% paired bootstrap interval [{points(v['gain_over_start_lo'])}, "
                f"{points(v['gain_over_start_hi'])}]"
            )
        text += ")"
    return text


_HEADLINE = {
    "base": ("Base", _headline_base),
    "best_sidekick": ("Best sidekick", _headline_sidekick),
    "mean_error_inconsistency_by_category": (
        None,
        lambda v: _by_category(v, "Mean error inconsistency with the base by category"),
    ),
    "conversion_rate_by_category": (None, lambda v: _by_category(v, "Conversion rate by category")),
    "spearman_ei_vs_gain": (None, _headline_spearman),
    "greedy": ("Greedy", _headline_greedy),
}
_HEADLINE_SKIP = {"ranked_sidekicks"}  # shown as the best-sidekick table


def headline_section(results: Results) -> str:
    """summary.json "headline": the analyze findings as sentences; unknown keys generically."""
    headline = results.summary.get("headline")
    if not headline:
        return ""
    items = []
    if isinstance(headline, dict):
        h = dict(headline)
        rendered: dict[str, str] = {}  # trusted HTML built here from escaped parts only
        if h.get("all_models_ensemble_members") == 0:
            h.pop("all_models_ensemble_members")
            h.pop("all_models_ensemble_acc", None)
            rendered["all_models_ensemble_none"] = (
                "Ensemble of all models: none (no model has probabilities to average)"
            )
            h = {"all_models_ensemble_none": True, **h}
        for key in ("all_models_ensemble_acc", "majority_vote_acc"):
            if finite(h.get(key)):
                members = h.pop(key.replace("_acc", "_members"), None)
                what = "Ensemble of all models" if key.startswith("all") else "Majority vote"
                rendered[key] = f"{what}: accuracy {_pct(h[key])}" + (
                    f" ({esc(members)} models)" if members is not None else ""
                )
                note = h.pop("majority_vote_note", None) if key == "majority_vote_acc" else None
                if note:
                    rendered[key] += f"; {esc(note)}"
        for key, value in h.items():
            if key in _HEADLINE_SKIP or value is None:
                continue
            if key in rendered:
                items.append(f"<li>{rendered[key]}</li>")
                continue
            if key in _HEADLINE and isinstance(value, dict):
                title, render = _HEADLINE[key]
                try:
                    body = render(value)
                    items.append(f"<li>{f'<b>{esc(title)}:</b> ' if title else ''}{body}</li>")
                    continue
                except (KeyError, TypeError, ValueError):
                    pass  # an unexpected shape: shown generically below
            items.append(f"<li><b>{esc(_humanize(key))}:</b> {_generic(value)}</li>")
    elif isinstance(headline, list):
        items = [f"<li>{_generic(v)}</li>" for v in headline]
    else:
        items = [f"<li>{_generic(headline)}</li>"]
    return f'<section id="headline"><h2>Headline findings</h2><ul>{"".join(items)}</ul></section>'
