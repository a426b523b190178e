"""The paper's findings as the demo zoo shows them, read back from the study's tables.

Each finding states the paper's claim, the numbers this zoo gives, and a verdict that follows
from fixed rules written here (nothing tuned), applied to whatever the tables say. A verdict
never rests on a point estimate: every finding carries the interval or test it was decided
by (``decided_by``, also printed).

Verdicts: "holds" when the interval (or test) excludes the claim's other side, "does not
hold" when it excludes the claim's side, "inconclusive" when it includes both (the numbers
are given), "not measured" when there is nothing to decide on. A claim made of several
parts (the steps of an order, the pairs of a probe) holds when every part holds, does not
hold when every part decidedly fails, is "partly" when some parts hold and others decidedly
fail (each part decided by its own interval), and is inconclusive otherwise.

Findings (Gontijo-Lopes et al. 2021):
1. Error inconsistency with the base grows with divergence of training methodology:
   Reinit < HParam < Arch < Framework < Dataset (Sec. 4.1, Fig. 1), compared at matched
   accuracy: the category means of a least-squares fit of EI on category plus the other
   model's accuracy, at the mean accuracy (``measure.stats.accuracy_adjusted_means``). The
   parts are the consecutive steps among the categories present (at least two): a step is
   decided by the 95 % t interval of the difference of its two adjusted means. Without
   enough pairs to fit the covariate, the raw means are used and a step is decided only when
   the two categories' bootstrap intervals do not overlap (the text says so).
2. Pairs with higher error inconsistency ensemble better: Spearman correlation of error
   inconsistency with ensemble gain over all pairs (Sec. 4.2, Fig. 2 left), decided by its
   bootstrap interval (examples resampled), or by its p-value (< 0.05, two-sided) where the
   study gives no interval; "not measured" with fewer than ``MIN_CORRELATION_PAIRS`` pairs.
3. Conversion rate (ensemble right | exactly one member right) by category (Fig. 2 right):
   more divergent categories convert more. Parts: consecutive steps of the category order,
   each decided when the two categories' bootstrap intervals do not overlap.
4. Lower-accuracy models lift the base in a greedy ensemble (Sec. 4.5, Fig. 5): the greedy
   search starts from the base and may add only models less accurate than the base on the
   evaluation split. Decided by the paired bootstrap interval of the gain over the base on
   that split; a search that adds no model does not lift the base (gain 0 by construction).
5. Combined features beat single ones (Sec. 4.6, Fig. 6): a linear probe on half of each of
   two models' embeddings (f = 0.5) versus the better of the two whole embeddings, per pair,
   decided by a normal-approximation 95 % interval of the difference whose variance adds
   the f = 0.5 draws' spread (sd² / draws) and both accuracies' binomial sampling variance
   on the probe's test examples (treated as independent, which widens the interval for
   probes that err together).
6. A greedy soup is at least as accurate as its best ingredient (Wortsman et al. 2022), on
   the test set: decided by the paired bootstrap interval of the accuracy difference on the
   same test images (with the mid-p McNemar test beside it), when the demo passes the
   per-image comparison; from soup.csv alone it is inconclusive.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from zoolens.zoo.cards import CATEGORIES

ORDER = [c for c in CATEGORIES if c != "Same"]  # paper order, pairs with the base

MIN_CORRELATION_PAIRS = 5
Z95 = 1.959963984540054  # the standard normal's 97.5 % quantile


def _num(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _finite(*values: Any) -> bool:
    return all(math.isfinite(_num(v)) for v in values)


def _ci(mean: float, lo: Any, hi: Any, pct: bool = True) -> str:
    scale = 100.0 if pct else 1.0
    unit = "%" if pct else ""
    text = f"{scale * mean:.2f}{unit}"
    if _finite(lo, hi):
        text += f" [{scale * _num(lo):.2f}, {scale * _num(hi):.2f}]"
    return text


def _points(value: float, lo: float, hi: float) -> str:
    """A difference of two rates in percentage points with its interval."""
    return f"{100 * value:+.2f} [{100 * lo:+.2f}, {100 * hi:+.2f}] points"


def decide(lo: float, hi: float, threshold: float = 0.0, *, strict: bool = True) -> str:
    """The verdict on the claim "value > threshold" (``strict``; ">=" otherwise) from the
    value's interval [lo, hi]: "holds" when the interval lies on the claim's side, "does not
    hold" when it lies on the other side, "inconclusive" when it reaches both, "not measured"
    without an interval."""
    if not _finite(lo, hi):
        return "not measured"
    lo, hi = float(lo), float(hi)
    if lo > threshold or (not strict and lo >= threshold):
        return "holds"
    if hi < threshold or (strict and hi <= threshold):
        return "does not hold"
    return "inconclusive"


def combine(parts: Sequence[str]) -> str:
    """One verdict from the verdicts of a claim's parts (module doc)."""
    if not parts or any(p == "not measured" for p in parts):
        return "not measured"
    if all(p == "holds" for p in parts):
        return "holds"
    if all(p == "does not hold" for p in parts):
        return "does not hold"
    if "holds" in parts and "does not hold" in parts:
        return "partly"
    return "inconclusive"


def _tally(parts: Sequence[str], what: str) -> str:
    counts = {v: sum(p == v for p in parts) for v in ("holds", "does not hold", "inconclusive")}
    said = [f"{n} {v}" for v, n in counts.items() if n]
    return f"{len(parts)} {what}: " + ", ".join(said)


def _step_overlap(lo_a: Any, hi_a: Any, lo_b: Any, hi_b: Any) -> str:
    """A step a -> b claimed to increase, decided by two separate intervals: holds when b's
    interval lies wholly above a's, does not hold when wholly below, else inconclusive
    (non-overlapping 95 % intervals: a conservative test of the difference)."""
    if not _finite(lo_a, hi_a, lo_b, hi_b):
        return "not measured"
    if _num(lo_b) > _num(hi_a):
        return "holds"
    if _num(hi_b) < _num(lo_a):
        return "does not hold"
    return "inconclusive"


def order_verdict(means: list[float]) -> str:
    """The order of point estimates alone, for display: "increasing", "decreasing" or
    "mixed". Never a verdict (a verdict needs intervals: :func:`decide`)."""
    steps = [b > a for a, b in zip(means, means[1:])]
    if not steps:
        return "mixed"
    return "increasing" if all(steps) else ("decreasing" if not any(steps) else "mixed")


def _matched_ei(results_dir: Path, base: str | None):
    """``accuracy_adjusted_means`` of EI with the base (pairs.csv), or None."""
    from zoolens.errors import ZoolensError
    from zoolens.measure.agreement import pairs_with
    from zoolens.measure.stats import accuracy_adjusted_means

    path = results_dir / "pairs.csv"
    if base is None or not path.is_file():
        return None
    pairs = pd.read_csv(
        path,
        dtype={"model_a": str, "model_b": str, "category": str},
        keep_default_na=False,
        na_values=[""],
    )
    rows, flipped, _ = pairs_with(pairs.model_a, pairs.model_b, base)
    if not len(rows):
        return None
    mine = pairs.iloc[rows]
    other_acc = np.where(flipped, mine.acc_a, mine.acc_b).astype(float)
    try:
        return accuracy_adjusted_means(
            mine.error_inconsistency.to_numpy(float), mine.category.to_numpy(), other_acc
        )
    except ZoolensError:
        return None


def _finding(
    key: str,
    claim: str,
    measured: str,
    verdict: str,
    decided_by: str,
    intervals: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "key": key,
        "claim": claim,
        "measured": measured,
        "verdict": verdict,
        "decided_by": decided_by,
    }
    if intervals:
        # the numbers behind decided_by, so every interval the text quotes is in the file
        out["intervals"] = intervals
    return out


def _interval(part: str, difference: float, lo: float, hi: float) -> dict[str, Any]:
    """One decided part's difference and 95 % interval (fractions, not points)."""
    return {"part": part, "difference": float(difference), "lo": float(lo), "hi": float(hi)}


def _ei_by_category(results_dir: Path, head: dict[str, Any], base: str | None) -> dict[str, Any]:
    by_cat = head.get("mean_error_inconsistency_by_category") or {}
    cats = [c for c in ORDER if c in by_cat and by_cat[c].get("mean") is not None]
    raw = "; ".join(
        f"{c} {_ci(_num(by_cat[c]['mean']), by_cat[c].get('lo'), by_cat[c].get('hi'))} "
        f"(n={by_cat[c].get('n_pairs')})"
        for c in cats
    )
    claim = (
        "error inconsistency with the base grows Reinit < HParam < Arch < Framework "
        "< Dataset (Fig. 1), compared at matched accuracy"
    )
    matched = _matched_ei(results_dir, base)
    order = [c for c in ORDER if matched is not None and c in matched.categories]
    if matched is not None and len(order) >= 2 and np.isfinite(matched.mean).all():
        k = [matched.categories.index(c) for c in order]
        parts, steps, intervals = [], [], []
        for (ca, i), (cb, j) in zip(zip(order, k), zip(order[1:], k[1:])):
            diff, lo, hi = matched.difference_interval(i, j)
            parts.append(decide(lo, hi))
            shown = _points(diff, lo, hi) if _finite(lo, hi) else f"{100 * diff:+.2f} points"
            if _finite(lo, hi):
                intervals.append(_interval(f"{ca} -> {cb}", diff, lo, hi))
            steps.append(f"{ca} -> {cb} {shown} ({parts[-1]})")
        text = (
            "at matched accuracy (" + f"{100 * matched.at_accuracy:.2f}% for the other "
            "model; least squares on category + accuracy, 95% t intervals): "
            + "; ".join(
                f"{c} {_ci(matched.mean[i], matched.lo[i], matched.hi[i])} (n={int(matched.n[i])})"
                for c, i in zip(order, k)
            )
            + f". Raw means (95% bootstrap, examples resampled): {raw or 'no data'}"
        )
        verdict = combine([p if p != "not measured" else "inconclusive" for p in parts])
        decided_by = (
            "each step's difference of adjusted means with its 95% t interval: "
            + "; ".join(steps)
            + f" ({_tally(parts, 'steps')})"
        )
        return _finding("ei_by_category", claim, text, verdict, decided_by, intervals)
    text = f"raw means (too few pairs to match accuracy): {raw}" if raw else "no data"
    if len(cats) < 2:
        return _finding("ei_by_category", claim, text, "not measured", "fewer than two categories")
    parts, steps, verdict = _interval_steps(cats, by_cat)
    decided_by = (
        "each step by the two categories' 95% bootstrap intervals (decided only where they "
        "do not overlap): " + "; ".join(steps) + f" ({_tally(parts, 'steps')})"
    )
    return _finding("ei_by_category", claim, text, verdict, decided_by)


def _ei_vs_gain(head: dict[str, Any]) -> dict[str, Any]:
    claim = "pairs with higher error inconsistency gain more from ensembling (Fig. 2 left)"
    corr = (head.get("spearman_ei_vs_gain") or {}).get("all_pairs") or {}
    rho, p = _num(corr.get("rho")), _num(corr.get("p_value"))
    n_pairs = _num(corr.get("n_pairs"))
    if not math.isfinite(n_pairs) or n_pairs < MIN_CORRELATION_PAIRS:
        text = (
            f"too few pairs (n = {corr.get('n_pairs', 0)}; at least "
            f"{MIN_CORRELATION_PAIRS} needed for a correlation)"
        )
        return _finding("ei_vs_gain", claim, text, "not measured", "no correlation taken")
    if not math.isfinite(rho):
        text = f"not defined (n = {int(n_pairs)}: a constant column)"
        return _finding("ei_vs_gain", claim, text, "not measured", "no correlation defined")
    lo, hi = corr.get("lo"), corr.get("hi")
    text = (
        f"Spearman rho {_ci(rho, lo, hi, pct=False)} (p = {p:.2g}, {int(n_pairs)} pairs; "
        "interval: examples resampled, rho recomputed)"
    )
    if _finite(lo, hi):
        verdict = decide(_num(lo), _num(hi))
        decided_by = f"95% bootstrap interval of rho [{_num(lo):.2f}, {_num(hi):.2f}] against 0"
    elif math.isfinite(p):
        significant = p < 0.05
        verdict = "inconclusive" if not significant else ("holds" if rho > 0 else "does not hold")
        decided_by = f"two-sided test of rho = 0: p = {p:.2g} (decided below 0.05)"
    else:
        verdict, decided_by = "not measured", "neither an interval nor a p-value"
    return _finding("ei_vs_gain", claim, text, verdict, decided_by)


def _interval_steps(cats: list[str], by_cat: dict[str, Any]) -> tuple[list[str], list[str], str]:
    """Each step of the category order decided by the two categories' intervals
    (``_step_overlap``): (the steps' verdicts, their descriptions, the combined verdict)."""
    parts, steps = [], []
    for ca, cb in zip(cats, cats[1:]):
        a, b = by_cat[ca], by_cat[cb]
        parts.append(_step_overlap(a.get("lo"), a.get("hi"), b.get("lo"), b.get("hi")))
        steps.append(f"{ca} -> {cb} ({parts[-1]})")
    return parts, steps, combine([p if p != "not measured" else "inconclusive" for p in parts])


def _conversion_by_category(head: dict[str, Any]) -> dict[str, Any]:
    claim = (
        "more divergent pairs convert more of the examples only one model gets right (Fig. 2 right)"
    )
    conv = head.get("conversion_rate_by_category") or {}
    cats = [c for c in ORDER if c in conv and conv[c].get("mean") is not None]
    if not cats:
        return _finding("conversion_by_category", claim, "no data", "not measured", "no data")
    means = [_num(conv[c]["mean"]) for c in cats]
    text = "; ".join(
        f"{c} {_ci(m, conv[c].get('lo'), conv[c].get('hi'))} (n={conv[c].get('n_pairs')})"
        for c, m in zip(cats, means)
    )
    if len(cats) < 2:
        return _finding(
            "conversion_by_category", claim, text, "not measured", "fewer than two categories"
        )
    text += f"; point estimates {order_verdict(means)} along the category order"
    parts, steps, verdict = _interval_steps(cats, conv)
    decided_by = (
        "each step of the category order by the two categories' 95% bootstrap intervals "
        "(decided only where they do not overlap): "
        + "; ".join(steps)
        + f" ({_tally(parts, 'steps')})"
    )
    return _finding("conversion_by_category", claim, text, verdict, decided_by)


def _soups(soup_table: pd.DataFrame, comparison: dict[str, Any] | None) -> dict[str, Any]:
    claim = (
        "a greedy soup is at least as accurate as its best ingredient (Wortsman et al. "
        "2022; held-out by construction, test checked here)"
    )
    t = soup_table.set_index("method")
    text = "; ".join(
        f"{m} held-out {100 * t.loc[m, 'heldout_acc']:.2f}% test {100 * t.loc[m, 'test_acc']:.2f}%"
        for m in ("best_ingredient", "uniform_soup", "greedy_soup", "logit_ensemble")
        if m in t.index
    )
    if not comparison or not _finite(comparison.get("lo"), comparison.get("hi")):
        return _finding(
            "soups",
            claim,
            text,
            "inconclusive",
            "no paired comparison on the test images (soup.csv holds accuracies only)",
        )
    diff, lo, hi = (_num(comparison[k]) for k in ("difference", "lo", "hi"))
    verdict = decide(lo, hi, strict=False)
    decided_by = (
        f"greedy soup minus best ingredient on the same {comparison.get('n')} test images: "
        f"{_points(diff, lo, hi)} (95% paired bootstrap); {comparison.get('only_soup')} "
        f"images only the soup gets right, {comparison.get('only_best')} only the "
        f"ingredient, McNemar p = {_num(comparison.get('mcnemar_p')):.2g} "
        f"({comparison.get('mcnemar_method')})"
    )
    if comparison.get("identical"):
        decided_by += "; the greedy soup is the best ingredient itself"
    return _finding(
        "soups", claim, text, verdict, decided_by, [_interval("greedy soup - best", diff, lo, hi)]
    )


def collect_findings(
    results_dir: Path,
    summary: dict[str, Any] | None,
    soup_table: pd.DataFrame | None,
    missing: list[str],
    soup_comparison: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """A list of {key, claim, measured, verdict, decided_by} dicts (see the module doc).
    ``soup_comparison``: :func:`compare_soup` of the greedy soup against its best
    ingredient on the test images."""
    results_dir = Path(results_dir)
    if not summary and (results_dir / "summary.json").is_file():
        summary = json.loads((results_dir / "summary.json").read_text())
    head = (summary or {}).get("headline", {}) or {}
    base = (summary or {}).get("base")
    out: list[dict[str, Any]] = [
        _ei_by_category(results_dir, head, base),
        _ei_vs_gain(head),
        _conversion_by_category(head),
        _greedy_finding(results_dir, head.get("greedy") or {}, base),
        _combined_features(results_dir),
    ]
    if soup_table is not None and len(soup_table):
        out.append(_soups(soup_table, soup_comparison))
    return out


def compare_soup(
    soup_right: np.ndarray, best_right: np.ndarray, *, identical: bool = False, seed: int = 0
) -> dict[str, Any]:
    """The greedy soup against its best ingredient on the same test images: the accuracy
    difference with its paired bootstrap interval (1,000 resamples) and McNemar's test."""
    from zoolens.measure.stats import mcnemar_test, paired_bootstrap_test

    soup = np.asarray(soup_right, dtype=bool)
    best = np.asarray(best_right, dtype=bool)
    boot = paired_bootstrap_test(soup, best, seed=seed)
    test = mcnemar_test(soup, best)
    return {
        "n": int(soup.size),
        "difference": boot.difference,
        "lo": boot.lo,
        "hi": boot.hi,
        "only_soup": test.only_a,
        "only_best": test.only_b,
        "mcnemar_p": test.p_value,
        "mcnemar_method": test.method,
        "identical": bool(identical),
    }


def _greedy_finding(results_dir: Path, greedy: dict[str, Any], base: str | None) -> dict[str, Any]:
    """Finding 4: the greedy ensemble from the base over lower-accuracy models (module doc)."""
    key = "greedy_low_accuracy"
    claim = (
        "lower-accuracy but different models lift the base in a greedy ensemble (Sec. 4.5, Fig. 5)"
    )
    if not greedy or "members" not in greedy:
        reason = greedy.get("skipped") if isinstance(greedy, dict) else None
        measured = f"no greedy ensemble ({reason})" if reason else "no data"
        return _finding(key, claim, measured, "not measured", "no greedy ensemble")
    start = greedy.get("start")
    members = [str(m) for m in greedy.get("members") or []]
    accuracy: dict[str, float] = {}
    if (results_dir / "models.csv").is_file():
        models = pd.read_csv(
            results_dir / "models.csv", dtype={"model": str}, keep_default_na=False, na_values=[""]
        )
        accuracy = dict(zip(models.model, models.accuracy.astype(float)))
    if start != base:
        measured = f"the greedy search started from {start}, not the base {base}"
        return _finding(key, claim, measured, "not measured", "not a search from the base")
    counts: dict[str, int] = {}
    for m in members:
        counts[m] = counts.get(m, 0) + 1
    others = [m for m in counts if m != start]
    start_acc = _num(greedy.get("start_evaluation_acc"))
    stronger = [m for m in others if _num(accuracy.get(m)) >= start_acc]
    gain = _num(greedy.get("gain_over_start"))
    lo, hi = _num(greedy.get("gain_over_start_lo")), _num(greedy.get("gain_over_start_hi"))
    has_interval = _finite(lo, hi)
    if stronger:
        # the claim is about lower-accuracy members only
        verdict, decided_by = "not measured", "the ensemble holds a model at least as accurate"
    elif not others:
        verdict = "does not hold"
        decided_by = "the search added no model: the ensemble is the base (gain 0 by construction)"
    elif has_interval:
        verdict = decide(lo, hi)
        decided_by = (
            f"paired bootstrap 95% interval of the gain over the base: {_points(gain, lo, hi)}"
        )
    else:
        verdict, decided_by = "inconclusive", "the study reports no interval for this gain"
    interval = (
        f"paired bootstrap interval [{100 * lo:+.2f}, {100 * hi:+.2f}]"
        if has_interval
        else "the study reports no interval for this gain"
    )
    total = len(members)
    weights = ", ".join(
        f"{m} {c}/{total} ({100 * _num(accuracy.get(m)):.2f}%)"
        for m, c in counts.items()
        if m != start
    )
    text = (
        f"base {start} {100 * start_acc:.2f}% -> "
        f"{100 * _num(greedy.get('evaluation_acc')):.2f}% ({100 * gain:+.2f} points over "
        f"the base; {interval}) with {len(others)} other distinct model(s), weights: "
        f"{weights or 'none'} (base weight {counts.get(str(start), 0)}/{total}). Pool: models "
        f"less accurate than the base on the evaluation split, the split of every accuracy "
        f"quoted here; members chosen on the calibration split"
    )
    if stronger:
        text += f". Not lower-accuracy on this split: {', '.join(stronger)}"
    intervals = [_interval("gain over the base", gain, lo, hi)] if has_interval else None
    return _finding(key, claim, text, verdict, decided_by, intervals)


def _probe_test_examples(results_dir: Path) -> int | None:
    """How many examples the probes were scored on (probe.json's ``n_test``), or None."""
    try:
        meta = json.loads((results_dir / "probe.json").read_text())
        n = int(meta["n_test"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return n if n > 0 else None


def half_embedding_interval(
    half: Sequence[float], single: float, n_test: int | None
) -> tuple[float, float, float]:
    """``mean(half) − single`` with a normal-approximation 95 % interval (module doc,
    finding 5): variance ``sd(half)² / draws`` (0 for one draw) plus the binomial sampling
    variance of both accuracies on ``n_test`` examples. NaN bounds without ``n_test``."""
    values = np.asarray(half, dtype=np.float64)
    diff = float(values.mean() - single)
    if n_test is None:
        return diff, float("nan"), float("nan")
    draws = values.var(ddof=1) / values.size if values.size > 1 else 0.0
    p_half = float(values.mean())
    sampling = (p_half * (1 - p_half) + single * (1 - single)) / n_test
    half_width = Z95 * math.sqrt(draws + sampling)
    return diff, diff - half_width, diff + half_width


def _combined_features(results_dir: Path) -> dict[str, Any]:
    key = "combined_features"
    claim = "half of each of two models' embeddings beats either whole embedding (Sec. 4.6, Fig. 6)"
    path = results_dir / "probe.csv"
    if not path.is_file():
        return _finding(key, claim, "probe.csv not written", "not measured", "no probe")
    table = pd.read_csv(path)
    n_test = _probe_test_examples(results_dir)
    parts, texts, steps, intervals = [], [], [], []
    for (a, b), rows in table.groupby(["model_a", "model_b"], sort=False):
        by_rate = rows.groupby("rate")["accuracy"]
        means = by_rate.mean()
        if not {0.0, 0.5, 1.0} <= set(means.index):
            continue
        single = float(max(means.loc[0.0], means.loc[1.0]))
        half = by_rate.get_group(0.5).to_numpy(float)
        diff, lo, hi = half_embedding_interval(half, single, n_test)
        parts.append(decide(lo, hi) if _finite(lo, hi) else "inconclusive")
        if _finite(lo, hi):
            intervals.append(_interval(f"{a} + {b}", diff, lo, hi))
        spread = (
            f"sd {100 * half.std(ddof=1):.2f} over {half.size} draws" if half.size > 1 else "1 draw"
        )
        texts.append(
            f"{a} + {b}: f=0.5 {100 * half.mean():.2f}% ({spread}) vs best single "
            f"{100 * single:.2f}%"
        )
        steps.append(
            f"{a} + {b} {_points(diff, lo, hi)} ({parts[-1]})"
            if _finite(lo, hi)
            else f"{a} + {b} {100 * diff:+.2f} points, no interval (probe.json has no n_test)"
        )
    if not parts:
        measured = "no pair with rates 0, 0.5 and 1"
        return _finding(key, claim, measured, "not measured", "no pair to compare")
    decided_by = (
        f"per pair, f=0.5 minus the better single embedding with a 95% interval (draws' "
        f"spread plus binomial sampling on {n_test} probe-test examples): "
        + "; ".join(steps)
        + f" ({_tally(parts, 'pairs')})"
    )
    return _finding(key, claim, "; ".join(texts), combine(parts), decided_by, intervals)


def format_findings(findings: list[dict[str, Any]]) -> str:
    lines = [
        "The paper's findings on this zoo (a verdict holds or fails only where its interval "
        "or test decides it, else it is inconclusive):"
    ]
    for i, f in enumerate(findings, start=1):
        lines.append(f"{i}. [{f['verdict'].upper()}] {f['claim']}")
        lines.append(f"   {f['measured']}")
        if f.get("decided_by"):
            lines.append(f"   decided by: {f['decided_by']}")
    return "\n".join(lines)
