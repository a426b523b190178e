"""The paper's findings as the demo zoo shows them, read back from the study's tables.

Each finding states the paper's claim, the numbers this zoo gives (with the bootstrap
interval where the study provides one), and a plain verdict: "holds", "does not hold" or
"not measured". Nothing is tuned: the verdicts follow from fixed rules written here, applied
to whatever the tables say.

Verdicts are "holds", "partly", "does not hold" or "not measured".

Findings (Gontijo-Lopes et al. 2021):
1. Error inconsistency with the base grows with divergence of training methodology:
   Reinit < HParam < Arch < Framework < Dataset (Sec. 4.1, Fig. 1), compared at matched
   accuracy (the paper's Fig. 1 plots EI against accuracy): the category means of a least-
   squares fit of EI on category plus the other model's accuracy, at the mean accuracy
   (``measure.stats.accuracy_adjusted_means``, 95 % t intervals); the raw means (with their
   bootstrap intervals) are reported beside them. Verdict over the consecutive steps of the
   order among the categories present (at least two): holds when every step increases,
   does not hold when none does, partly otherwise (ties count as failures). Without enough
   pairs to fit the covariate, the raw means are used and the text says so.
2. Pairs with higher error inconsistency ensemble better: Spearman correlation of error
   inconsistency with ensemble gain over all pairs (Sec. 4.2, Fig. 2 left). Verdict: holds
   when rho > 0 with p < 0.05, does not hold otherwise; not measured with fewer than
   ``MIN_CORRELATION_PAIRS`` pairs ("too few pairs", with the n).
3. Conversion rate (ensemble right | exactly one member right) by category (Fig. 2 right):
   reported with the Spearman correlation between the category order and the category mean;
   verdict: holds when more divergent categories convert at least as often (correlation > 0),
   with at least three categories.
4. Lower-accuracy models lift the base in a greedy ensemble (Sec. 4.5, Fig. 5): the greedy
   search starts from the base and may add only models less accurate than the base on the
   evaluation split (the split whose accuracies the finding reports; the search itself
   chooses on the calibration split). Verdict: holds when the kept ensemble adds a member and
   its gain over the base has a paired bootstrap interval above 0; partly when the gain is
   positive but the interval reaches 0; does not hold otherwise.
5. Combined features beat single ones (Sec. 4.6, Fig. 6): a linear probe on half of each of
   two models' embeddings (f = 0.5) versus the better of the two whole embeddings. Verdict:
   holds for every pair, partly when for some, does not hold when for none.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from zoolens.zoo.cards import CATEGORIES

ORDER = [c for c in CATEGORIES if c != "Same"]  # paper order, pairs with the base


def _num(value: Any) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return float("nan")
    return v


def _ci(mean: float, lo: Any, hi: Any, pct: bool = True) -> str:
    scale = 100.0 if pct else 1.0
    unit = "%" if pct else ""
    text = f"{scale * mean:.2f}{unit}"
    if math.isfinite(_num(lo)) and math.isfinite(_num(hi)):
        text += f" [{scale * _num(lo):.2f}, {scale * _num(hi):.2f}]"
    return text


MIN_CORRELATION_PAIRS = 5


def _verdict(ok: bool | None) -> str:
    return "not measured" if ok is None else ("holds" if ok else "does not hold")


def order_verdict(means: list[float]) -> str:
    """holds / partly / does not hold: how many consecutive steps of ``means`` increase."""
    steps = [b > a for a, b in zip(means, means[1:])]
    if not steps:
        return _verdict(None)
    return "holds" if all(steps) else ("partly" if any(steps) else "does not hold")


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
        means = [float(matched.mean[i]) for i in k]
        text = (
            "at matched accuracy (" + f"{100 * matched.at_accuracy:.2f}% for the other "
            "model; least squares on category + accuracy, 95% t intervals): "
            + "; ".join(
                f"{c} {_ci(matched.mean[i], matched.lo[i], matched.hi[i])} (n={int(matched.n[i])})"
                for c, i in zip(order, k)
            )
            + f". Raw means (95% bootstrap, examples resampled): {raw or 'no data'}"
        )
        return {
            "key": "ei_by_category",
            "claim": claim,
            "measured": text,
            "verdict": order_verdict(means),
        }
    means = [_num(by_cat[c]["mean"]) for c in cats]
    text = f"raw means (too few pairs to match accuracy): {raw}" if raw else "no data"
    return {
        "key": "ei_by_category",
        "claim": claim,
        "measured": text,
        "verdict": order_verdict(means) if len(cats) >= 2 else _verdict(None),
    }


def collect_findings(
    results_dir: Path,
    summary: dict[str, Any] | None,
    soup_table: pd.DataFrame | None,
    missing: list[str],
) -> list[dict[str, Any]]:
    """A list of {key, claim, measured, verdict} dicts (see the module doc)."""
    results_dir = Path(results_dir)
    if not summary and (results_dir / "summary.json").is_file():
        summary = json.loads((results_dir / "summary.json").read_text())
    head = (summary or {}).get("headline", {}) or {}
    base = (summary or {}).get("base")
    out: list[dict[str, Any]] = [_ei_by_category(results_dir, head, base)]

    corr = (head.get("spearman_ei_vs_gain") or {}).get("all_pairs") or {}
    rho, p = _num(corr.get("rho")), _num(corr.get("p_value"))
    n_pairs = _num(corr.get("n_pairs"))
    too_few = not math.isfinite(n_pairs) or n_pairs < MIN_CORRELATION_PAIRS
    ok = None if too_few or not math.isfinite(rho) else bool(rho > 0 and p < 0.05)
    if too_few:
        text = (
            f"too few pairs (n = {corr.get('n_pairs', 0)}; at least "
            f"{MIN_CORRELATION_PAIRS} needed for a correlation)"
        )
    elif not math.isfinite(rho):
        text = f"not defined (n = {int(n_pairs)}: a constant column)"
    else:
        text = (
            f"Spearman rho {_ci(rho, corr.get('lo'), corr.get('hi'), pct=False)} "
            f"(p = {p:.2g}, {int(n_pairs)} pairs; interval: examples resampled, rho "
            f"recomputed)"
        )
    out.append(
        {
            "key": "ei_vs_gain",
            "claim": "pairs with higher error inconsistency gain more from ensembling (Fig. 2 left)",
            "measured": text,
            "verdict": _verdict(ok),
        }
    )

    conv = head.get("conversion_rate_by_category") or {}
    cats = [c for c in ORDER if c in conv and conv[c].get("mean") is not None]
    ok = None
    text = "no data"
    if cats:
        means = [_num(conv[c]["mean"]) for c in cats]
        text = "; ".join(
            f"{c} {_ci(m, conv[c].get('lo'), conv[c].get('hi'))} (n={conv[c].get('n_pairs')})"
            for c, m in zip(cats, means)
        )
        if len(cats) >= 3:
            from scipy.stats import spearmanr

            r = spearmanr(np.arange(len(cats)), means)[0]
            ok = bool(np.isfinite(r) and r > 0)
            text += f"; rank correlation with the category order {r:.2f}"
    out.append(
        {
            "key": "conversion_by_category",
            "claim": "more divergent pairs convert more of the examples only one model "
            "gets right (Fig. 2 right)",
            "measured": text,
            "verdict": _verdict(ok),
        }
    )

    out.append(_greedy_finding(results_dir, head.get("greedy") or {}, base))

    out.append(_combined_features(results_dir))

    if soup_table is not None and len(soup_table):
        t = soup_table.set_index("method")
        best, greedy_soup = t.loc["best_ingredient"], t.loc["greedy_soup"]
        text = "; ".join(
            f"{m} held-out {100 * t.loc[m, 'heldout_acc']:.2f}% test "
            f"{100 * t.loc[m, 'test_acc']:.2f}%"
            for m in ("best_ingredient", "uniform_soup", "greedy_soup", "logit_ensemble")
        )
        ok = bool(greedy_soup["test_acc"] >= best["test_acc"])
        out.append(
            {
                "key": "soups",
                "claim": "a greedy soup is at least as accurate as its "
                "best ingredient (Wortsman et al. 2022; held-out by construction, test "
                "checked here)",
                "measured": text,
                "verdict": _verdict(ok),
            }
        )
    return out


def _greedy_finding(results_dir: Path, greedy: dict[str, Any], base: str | None) -> dict[str, Any]:
    """Finding 4: the greedy ensemble from the base over lower-accuracy models (module doc)."""
    claim = (
        "lower-accuracy but different models lift the base in a greedy ensemble (Sec. 4.5, Fig. 5)"
    )
    if not greedy or "members" not in greedy:
        reason = greedy.get("skipped") if isinstance(greedy, dict) else None
        return {
            "key": "greedy_low_accuracy",
            "claim": claim,
            "measured": f"no greedy ensemble ({reason})" if reason else "no data",
            "verdict": _verdict(None),
        }
    start = greedy.get("start")
    members = [str(m) for m in greedy.get("members") or []]
    accuracy: dict[str, float] = {}
    if (results_dir / "models.csv").is_file():
        models = pd.read_csv(
            results_dir / "models.csv", dtype={"model": str}, keep_default_na=False, na_values=[""]
        )
        accuracy = dict(zip(models.model, models.accuracy.astype(float)))
    if start != base:
        return {
            "key": "greedy_low_accuracy",
            "claim": claim,
            "measured": f"the greedy search started from {start}, not the base {base}",
            "verdict": _verdict(None),
        }
    counts: dict[str, int] = {}
    for m in members:
        counts[m] = counts.get(m, 0) + 1
    others = [m for m in counts if m != start]
    start_acc = _num(greedy.get("start_evaluation_acc"))
    stronger = [m for m in others if _num(accuracy.get(m)) >= start_acc]
    gain = _num(greedy.get("gain_over_start"))
    lo, hi = _num(greedy.get("gain_over_start_lo")), _num(greedy.get("gain_over_start_hi"))
    has_interval = math.isfinite(lo) and math.isfinite(hi)
    if stronger:
        verdict = _verdict(None)  # the claim is about lower-accuracy members only
    elif not others or not math.isfinite(gain) or gain <= 0:
        verdict = "does not hold"
    elif has_interval and lo > 0:
        verdict = "holds"
    else:
        verdict = "partly"
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
    return {"key": "greedy_low_accuracy", "claim": claim, "measured": text, "verdict": verdict}


def _combined_features(results_dir: Path) -> dict[str, Any]:
    claim = "half of each of two models' embeddings beats either whole embedding (Sec. 4.6, Fig. 6)"
    path = results_dir / "probe.csv"
    if not path.is_file():
        return {
            "key": "combined_features",
            "claim": claim,
            "measured": "probe.csv not written",
            "verdict": _verdict(None),
        }
    table = pd.read_csv(path)
    parts, oks = [], []
    for (a, b), rows in table.groupby(["model_a", "model_b"], sort=False):
        mean = rows.groupby("rate")["accuracy"].agg(["mean", "std", "count"])
        if not {0.0, 0.5, 1.0} <= set(mean.index):
            continue
        single = max(mean.loc[0.0, "mean"], mean.loc[1.0, "mean"])
        half = mean.loc[0.5, "mean"]
        oks.append(bool(half > single))
        draws = int(mean.loc[0.5, "count"])
        spread = (
            f"sd {100 * _num(mean.loc[0.5, 'std']):.2f} over {draws} draws"
            if draws > 1
            else "1 draw"
        )
        parts.append(
            f"{a} + {b}: f=0.5 {100 * half:.2f}% ({spread}) vs best single {100 * single:.2f}%"
        )
    if not oks:
        verdict = _verdict(None)
    else:
        verdict = "holds" if all(oks) else ("partly" if any(oks) else "does not hold")
    measured = "; ".join(parts) or "no pair with rates 0, 0.5 and 1"
    if verdict == "partly":
        measured += f" (holds for {sum(oks)} of {len(oks)} pairs)"
    return {"key": "combined_features", "claim": claim, "measured": measured, "verdict": verdict}


def format_findings(findings: list[dict[str, Any]]) -> str:
    lines = ["The paper's findings on this zoo (intervals: 95% bootstrap over test examples):"]
    for i, f in enumerate(findings, start=1):
        lines.append(f"{i}. [{f['verdict'].upper()}] {f['claim']}")
        lines.append(f"   {f['measured']}")
    return "\n".join(lines)
