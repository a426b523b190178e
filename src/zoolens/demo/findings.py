"""The paper's findings as the demo zoo shows them, read back from the study's tables.

Each finding states the paper's claim, the numbers this zoo gives (with the bootstrap
interval where the study provides one), and a plain verdict: "holds", "does not hold" or
"not measured". Nothing is tuned: the verdicts follow from fixed rules written here, applied
to whatever the tables say.

Findings (Gontijo-Lopes et al. 2021):
1. Error inconsistency with the base grows with divergence of training methodology:
   Reinit < HParam < Arch < Framework < Dataset (Sec. 4.1, Fig. 1). Verdict: holds when the
   category means (pairs with the base) increase along that order (ties count as failures).
2. Pairs with higher error inconsistency ensemble better: Spearman correlation of error
   inconsistency with ensemble gain over all pairs (Sec. 4.2, Fig. 2 left). Verdict: holds when
   rho > 0 with p < 0.05.
3. Conversion rate (ensemble right | exactly one member right) by category (Fig. 2 right):
   reported with the Spearman correlation between the category order and the category mean;
   verdict: holds when more divergent categories convert at least as often (correlation > 0).
4. A greedy ensemble that starts from the most accurate model and may add only lower-accuracy
   models beats that model (Sec. 4.5, Fig. 5). Verdict: holds when the kept greedy ensemble
   adds at least one member and its evaluation accuracy exceeds the start's.
5. Combined features beat single ones (Sec. 4.6, Fig. 6): a linear probe on half of each of
   two models' embeddings (f = 0.5) versus the better of the two whole embeddings. Verdict per
   pair: holds when the combined accuracy is higher.
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


def _verdict(ok: bool | None) -> str:
    return "not measured" if ok is None else ("holds" if ok else "does not hold")


def collect_findings(results_dir: Path, summary: dict[str, Any] | None,
                     soup_table: pd.DataFrame | None, missing: list[str]) -> list[dict[str, Any]]:
    """A list of {key, claim, measured, verdict} dicts (see the module doc)."""
    results_dir = Path(results_dir)
    if not summary and (results_dir / "summary.json").is_file():
        summary = json.loads((results_dir / "summary.json").read_text())
    head = (summary or {}).get("headline", {}) or {}
    out: list[dict[str, Any]] = []

    by_cat = head.get("mean_error_inconsistency_by_category") or {}
    cats = [c for c in ORDER if c in by_cat and by_cat[c].get("mean") is not None]
    ok = None
    if len(cats) >= 2:
        means = [_num(by_cat[c]["mean"]) for c in cats]
        ok = bool(all(b > a for a, b in zip(means, means[1:])))
    out.append({
        "key": "ei_by_category",
        "claim": "error inconsistency with the base grows Reinit < HParam < Arch < Framework "
                 "< Dataset (Fig. 1)",
        "measured": "; ".join(f"{c} {_ci(_num(by_cat[c]['mean']), by_cat[c].get('lo'), by_cat[c].get('hi'))} "
                              f"(n={by_cat[c].get('n_pairs')})" for c in cats) or "no data",
        "verdict": _verdict(ok)})

    corr = (head.get("spearman_ei_vs_gain") or {}).get("all_pairs") or {}
    rho, p = _num(corr.get("rho")), _num(corr.get("p_value"))
    ok = None if not math.isfinite(rho) else bool(rho > 0 and p < 0.05)
    out.append({
        "key": "ei_vs_gain",
        "claim": "pairs with higher error inconsistency gain more from ensembling (Fig. 2 left)",
        "measured": (f"Spearman rho {_ci(rho, corr.get('lo'), corr.get('hi'), pct=False)} "
                     f"(p = {p:.2g}, {corr.get('n_pairs')} pairs; interval: examples "
                     f"resampled, rho recomputed)" if math.isfinite(rho)
                     else "no data"),
        "verdict": _verdict(ok)})

    conv = head.get("conversion_rate_by_category") or {}
    cats = [c for c in ORDER if c in conv and conv[c].get("mean") is not None]
    ok = None
    text = "no data"
    if cats:
        means = [_num(conv[c]["mean"]) for c in cats]
        text = "; ".join(f"{c} {_ci(m, conv[c].get('lo'), conv[c].get('hi'))} "
                         f"(n={conv[c].get('n_pairs')})" for c, m in zip(cats, means))
        if len(cats) >= 3:
            from scipy.stats import spearmanr

            r = spearmanr(np.arange(len(cats)), means)[0]
            ok = bool(np.isfinite(r) and r > 0)
            text += f"; rank correlation with the category order {r:.2f}"
    out.append({"key": "conversion_by_category",
                "claim": "more divergent pairs convert more of the examples only one model "
                         "gets right (Fig. 2 right)",
                "measured": text, "verdict": _verdict(ok)})

    greedy = head.get("greedy") or {}
    ok = None
    text = "no data"
    if greedy:
        members = greedy.get("members") or []
        start = greedy.get("start")
        others = [m for m in members if m != start]
        gain = _num(greedy.get("gain_over_start"))
        ok = bool(others) and math.isfinite(gain) and gain > 0
        lo, hi = _num(greedy.get("gain_over_start_lo")), _num(greedy.get("gain_over_start_hi"))
        interval = (f"paired bootstrap interval [{100 * lo:+.2f}, {100 * hi:+.2f}]"
                    if math.isfinite(lo) and math.isfinite(hi)
                    else "the study reports no interval for this gain")
        text = (f"start {start} {100 * _num(greedy.get('start_evaluation_acc')):.2f}% -> "
                f"{100 * _num(greedy.get('evaluation_acc')):.2f}% ({100 * gain:+.2f} points; "
                f"{interval}) with "
                f"{', '.join(sorted(set(others))) or 'no other member'} "
                f"(the pool: models less accurate than the start on the calibration split, "
                f"where members are chosen; accuracies on the evaluation split)")
    out.append({"key": "greedy_low_accuracy",
                "claim": "lower-accuracy but different models lift the best model in a greedy "
                         "ensemble (Sec. 4.5, Fig. 5)",
                "measured": text, "verdict": _verdict(ok)})

    out.append(_combined_features(results_dir))

    if soup_table is not None and len(soup_table):
        t = soup_table.set_index("method")
        best, greedy_soup = t.loc["best_ingredient"], t.loc["greedy_soup"]
        text = "; ".join(f"{m} held-out {100 * t.loc[m, 'heldout_acc']:.2f}% test "
                         f"{100 * t.loc[m, 'test_acc']:.2f}%"
                         for m in ("best_ingredient", "uniform_soup", "greedy_soup",
                                   "logit_ensemble"))
        ok = bool(greedy_soup["test_acc"] >= best["test_acc"])
        out.append({"key": "soups", "claim": "a greedy soup is at least as accurate as its "
                    "best ingredient (Wortsman et al. 2022; held-out by construction, test "
                    "checked here)", "measured": text, "verdict": _verdict(ok)})
    return out


def _combined_features(results_dir: Path) -> dict[str, Any]:
    claim = ("half of each of two models' embeddings beats either whole embedding "
             "(Sec. 4.6, Fig. 6)")
    path = results_dir / "probe.csv"
    if not path.is_file():
        return {"key": "combined_features", "claim": claim,
                "measured": "probe.csv not written", "verdict": _verdict(None)}
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
        spread = (f"sd {100 * _num(mean.loc[0.5, 'std']):.2f} over {draws} draws"
                  if draws > 1 else "1 draw")
        parts.append(f"{a} + {b}: f=0.5 {100 * half:.2f}% ({spread}) vs best single "
                     f"{100 * single:.2f}%")
    ok = None if not oks else all(oks)
    if oks and not all(oks) and any(oks):
        verdict = f"holds for {sum(oks)} of {len(oks)} pairs"
    else:
        verdict = _verdict(ok)
    return {"key": "combined_features", "claim": claim,
            "measured": "; ".join(parts) or "no pair with rates 0, 0.5 and 1",
            "verdict": verdict}


def format_findings(findings: list[dict[str, Any]]) -> str:
    lines = ["The paper's findings on this zoo (intervals: 95% bootstrap over test examples):"]
    for i, f in enumerate(findings, start=1):
        lines.append(f"{i}. [{f['verdict'].upper()}] {f['claim']}")
        lines.append(f"   {f['measured']}")
    return "\n".join(lines)
