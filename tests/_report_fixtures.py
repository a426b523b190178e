"""Results folders for the report tests: every table of ``zoolens.contracts``, with consistent values.

The analyze and probe engineers write these tables for real zoos; the report must not wait for
them, nor depend on their code (``report`` imports neither ``study`` nor ``zoo``). So this module
computes the analyze tables itself, from per-example scores, with plain float64 numpy loops that
follow docs/design.md sec. 3 literally (slow, obvious, independent of ``zoolens.measure``):

- ``write_results_from_scores`` takes real or simulated scores (logits or log-probabilities)
  and writes models.csv, pairs.csv, specialization.csv, greedy.csv, theta.csv, reliability.csv,
  interpolation.csv and summary.json;
- ``write_probe_tables`` adds plausible probe.csv, diversity.csv, transfer.csv, stacking.csv and
  cka.csv (their numbers need embeddings, which the report never sees: they are drawn at random,
  only their shapes and the error consistency in cka.csv are tied to the zoo);
- ``write_synthetic_results`` simulates a zoo of eleven models whose similarity to the base
  falls with the category (Reinit > HParam > Arch > Framework > Dataset), as in the paper,
  including a model named ``<img src=x onerror=alert(1)>`` and names with ``$`` and a leading ``_``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from zoolens import contracts

EVIL_NAME = "<img src=x onerror=alert(1)>"
BASE_NAME = "ResNet-50 (base)"
CATEGORY_ORDER = ["Reinit", "HParam", "Arch", "Framework", "Dataset"]


@dataclass
class Card:
    name: str
    arch: str
    arch_family: str
    framework: str
    pretrain_data: str
    head: str = "linear"
    seed: int = 0
    hparams: dict = field(default_factory=dict)


def pair_category(base: Card, other: Card) -> str:
    """docs/design.md sec. 3, first match wins (no alias table needed for these fixtures)."""
    if base.pretrain_data != other.pretrain_data:
        return "Dataset"
    if base.framework != other.framework:
        return "Framework"
    if base.arch_family != other.arch_family:
        return "Arch"
    if base.arch != other.arch or base.hparams != other.hparams or base.head != other.head:
        return "HParam"
    if base.seed != other.seed:
        return "Reinit"
    return "Same"


def softmax(scores: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = np.asarray(scores, np.float64) / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def nll(scores: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    p = softmax(scores, temperature)
    return float(-np.mean(np.log(np.maximum(p[np.arange(len(labels)), labels], 1e-300))))


def fit_temperature_grid(scores: np.ndarray, labels: np.ndarray) -> float:
    """Grid search on log T (fixture only: precise enough for plausible tables)."""
    grid = np.exp(np.linspace(np.log(0.05), np.log(20.0), 241))
    losses = [nll(scores, labels, t) for t in grid]
    return float(grid[int(np.argmin(losses))])


def reliability_bins(probs: np.ndarray, labels: np.ndarray, n_bins: int = 15):
    conf = probs.max(axis=1)
    right = probs.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    rows = []
    for b in range(n_bins):
        lo, hi = edges[b], edges[b + 1]
        mask = (conf > lo) & (conf <= hi) if b > 0 else (conf >= lo) & (conf <= hi)
        n = int(mask.sum())
        rows.append(
            (
                b,
                lo,
                hi,
                n,
                float(conf[mask].mean()) if n else np.nan,
                float(right[mask].mean()) if n else np.nan,
            )
        )
    ece = sum(n / len(labels) * abs(c - a) for _, _, _, n, c, a in rows if n)
    return rows, float(ece)


def _write(out: Path, name: str, rows) -> pd.DataFrame:
    """Write table ``name`` with its columns in the order of ``zoolens.contracts`` (a fixture
    may leave out columns the report does not need, never add one nobody agreed on)."""
    frame = pd.DataFrame(rows)
    order = contracts.columns(name)
    stray = [c for c in frame.columns if c not in order]
    assert not stray, f"fixture {name}: columns {stray} are not in zoolens.contracts"
    frame = frame[[c for c in order if c in frame.columns]]
    frame.to_csv(out / f"{name}.csv", index=False)
    return frame


def write_results_from_scores(
    out_dir,
    scores: dict,
    labels,
    cards: dict,
    base: str,
    *,
    calibration_index,
    class_names,
    class_groups=None,
    greedy_steps: int = 8,
    extra_summary: dict | None = None,
) -> Path:
    """Write the analyze tables for a zoo given as ``{name: (N, C) scores}`` (docs/design.md sec. 3, 5)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    labels = np.asarray(labels, np.int64)
    n_all = len(labels)
    cal = np.asarray(sorted(calibration_index), np.int64)
    ev = np.setdiff1d(np.arange(n_all), cal)
    names = list(scores)
    y = labels[ev]
    temps, q_eval, q_cal, right = {}, {}, {}, {}
    model_rows = []
    for name in names:
        s = np.asarray(scores[name], np.float64)
        t = fit_temperature_grid(s[cal], labels[cal])
        temps[name] = t
        q_eval[name] = softmax(s[ev], t)
        q_cal[name] = softmax(s[cal], t)
        right[name] = q_eval[name].argmax(axis=1) == y
        acc = float(right[name].mean())
        half = 1.96 * np.sqrt(acc * (1 - acc) / len(ev))
        _, ece_b = reliability_bins(softmax(s[ev]), y)
        _, ece_a = reliability_bins(q_eval[name], y)
        c = cards[name]
        model_rows.append(
            dict(
                model=name,
                arch=c.arch,
                framework=c.framework,
                pretrain_data=c.pretrain_data,
                head=c.head,
                category=pair_category(cards[base], c),
                accuracy=acc,
                accuracy_lo=acc - half,
                accuracy_hi=acc + half,
                accuracy_all=float((s.argmax(axis=1) == labels).mean()),
                temperature=t,
                nll_before=nll(s[ev], y, 1.0),
                nll_after=nll(s[ev], y, t),
                ece_before=ece_b,
                ece_after=ece_a,
                kind="logits",
                accuracy_eval_n=len(ev),
            )
        )
    _write(out, "models", model_rows)

    pair_rows = []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            ra, rb = right[a], right[b]
            ens = (q_eval[a] + q_eval[b]).argmax(axis=1) == y
            pa, pb = ra.mean(), rb.mean()
            ei = float(np.mean(ra ^ rb))
            c_exp = pa * pb + (1 - pa) * (1 - pb)
            kappa = 1.0 if c_exp == 1 else ((1 - ei) - c_exp) / (1 - c_exp)
            one = ra ^ rb
            none = ~ra & ~rb
            pair_rows.append(
                dict(
                    model_a=a,
                    model_b=b,
                    category=pair_category(cards[a], cards[b]),
                    acc_a=pa,
                    acc_b=pb,
                    error_inconsistency=ei,
                    both_right=float(np.mean(ra & rb)),
                    both_wrong=float(np.mean(none)),
                    error_consistency=kappa,
                    dominance_ab=float(np.mean(~ra & rb)),
                    dominance_ba=float(np.mean(ra & ~rb)),
                    ensemble_acc=float(ens.mean()),
                    ensemble_gain=float(ens.mean() - (pa + pb) / 2),
                    conversion_rate=float(ens[one].mean()) if one.any() else np.nan,
                    neither_conversion=float(ens[none].mean()) if none.any() else np.nan,
                    error_inconsistency_lo=max(ei - 0.01, 0.0),
                    error_inconsistency_hi=ei + 0.01,
                    error_consistency_lo=kappa - 0.05,
                    error_consistency_hi=min(kappa + 0.05, 1.0),
                )
            )
    pairs = _write(out, "pairs", pair_rows)

    # Specialization, theta histograms: every pair (base, other).
    groups = {"class": {cn: [k] for k, cn in enumerate(class_names)}}
    if class_groups:
        groups["class_group"] = class_groups
    spec_rows, theta_rows = [], []
    edges = np.linspace(0.0, 90.0, 19)
    for other in names:
        if other == base:
            continue
        ca, cb = q_eval[base].max(axis=1), q_eval[other].max(axis=1)
        theta = np.degrees(np.arctan2(ca, cb))
        ra, rb = right[base], right[other]
        outcomes = {
            "both_right": ra & rb,
            "only_a": ra & ~rb,
            "only_b": ~ra & rb,
            "both_wrong": ~ra & ~rb,
        }
        for outcome, mask in outcomes.items():
            counts, _ = np.histogram(theta[mask], bins=edges)
            for k in range(18):
                theta_rows.append(
                    dict(
                        model_a=base,
                        model_b=other,
                        outcome=outcome,
                        bin_lo=edges[k],
                        bin_hi=edges[k + 1],
                        count=int(counts[k]),
                    )
                )
        for group_type, members in groups.items():
            for gname, cls in members.items():
                m = np.isin(y, cls)
                oa, ob = m & ra & ~rb, m & ~ra & rb
                n = int(m.sum())
                spec_rows.append(
                    dict(
                        model_a=base,
                        model_b=other,
                        group=gname,
                        group_type=group_type,
                        n=n,
                        acc_a=float(ra[m].mean()) if n else np.nan,
                        acc_b=float(rb[m].mean()) if n else np.nan,
                        error_inconsistency=float((ra ^ rb)[m].mean()) if n else np.nan,
                        only_a_right=float(oa.sum() / n) if n else np.nan,
                        only_b_right=float(ob.sum() / n) if n else np.nan,
                        mean_theta_only_a=float(theta[oa].mean()) if oa.any() else np.nan,
                        mean_theta_only_b=float(theta[ob].mean()) if ob.any() else np.nan,
                    )
                )
    _write(out, "specialization", spec_rows)
    _write(out, "theta", theta_rows)

    # Greedy forward selection from the base (docs/design.md sec. 3), slow and obvious.
    ycal = labels[cal]
    members = [base]
    sum_cal, sum_ev = q_cal[base].copy(), q_eval[base].copy()
    steps = [
        (
            0,
            base,
            list(members),
            float((sum_cal.argmax(1) == ycal).mean()),
            float((sum_ev.argmax(1) == y).mean()),
        )
    ]
    for step in range(1, greedy_steps + 1):
        best = None
        for j, cand in enumerate(names):
            acc = float(((sum_cal + q_cal[cand]).argmax(1) == ycal).mean())
            key = (acc, members.count(cand), -j)
            if best is None or key > best[0]:
                best = (key, cand)
        cand = best[1]
        members.append(cand)
        sum_cal += q_cal[cand]
        sum_ev += q_eval[cand]
        steps.append(
            (
                step,
                cand,
                list(members),
                float((sum_cal.argmax(1) == ycal).mean()),
                float((sum_ev.argmax(1) == y).mean()),
            )
        )
    best_step = max(range(len(steps)), key=lambda i: (steps[i][3], -i))
    _write(
        out,
        "greedy",
        [
            dict(
                start=base,
                step=s,
                added=add,
                members=";".join(mem),
                calibration_acc=c,
                evaluation_acc=e,
                kept=s <= best_step,
            )
            for s, add, mem, c, e in steps
        ],
    )

    # pareto.csv (study.budget): a made-up cost per model (gflops), summed over distinct
    # members; the front by the definition, point against point (no shortcut).
    gflops = {name: 0.5 * (k + 1) for k, name in enumerate(names)}
    acc_of = {row["model"]: row["accuracy"] for row in model_rows}
    candidates = [("single", [m], acc_of[m]) for m in names]
    candidates += [
        ("pair", [a, b], acc) for a, b, acc in zip(pairs.model_a, pairs.model_b, pairs.ensemble_acc)
    ]
    candidates += [("greedy", mem, e) for _, _, mem, _, e in steps if len(mem) > 1]
    points = [(kind, mem, sum(gflops[m] for m in set(mem)), acc) for kind, mem, acc in candidates]
    pareto_rows = []
    for i, (kind, mem, cost, acc) in enumerate(points):
        dominated = any(
            (c2 <= cost and a2 >= acc and (c2 < cost or a2 > acc))
            or (c2 == cost and a2 == acc and j < i)
            for j, (_, _, c2, a2) in enumerate(points)
            if j != i
        )
        pareto_rows.append(
            dict(
                kind=kind,
                members=";".join(mem),
                size=len(set(mem)),
                cost_unit="gflops",
                cost=cost,
                accuracy=acc,
                with_base=base in mem,
                fits_budget=True,
                on_front=not dominated,
            )
        )
    _write(out, "pareto", pareto_rows)

    # Reliability diagrams before / after temperature scaling.
    rel_rows = []
    for name in names:
        s = np.asarray(scores[name], np.float64)[ev]
        for stage, probs in (("before", softmax(s)), ("after", q_eval[name])):
            rows, _ = reliability_bins(probs, y)
            for b, lo, hi, n, conf, acc in rows:
                rel_rows.append(
                    dict(
                        model=name,
                        stage=stage,
                        bin=b,
                        bin_lo=lo,
                        bin_hi=hi,
                        count=n,
                        mean_confidence=conf,
                        accuracy=acc,
                    )
                )
    _write(out, "reliability", rel_rows)

    # Interpolation: base with its best sidekick.
    with_base = pairs[(pairs.model_a == base) | (pairs.model_b == base)]
    top = with_base.loc[with_base.ensemble_acc.idxmax()]
    sidekick = top.model_b if top.model_a == base else top.model_a
    better_a = np.array(
        [
            right[base][y == k].mean() >= right[sidekick][y == k].mean()
            for k in range(len(class_names))
        ]
    )
    interp_rows = []
    for w in np.linspace(0, 1, 11):
        ens = (w * q_eval[base] + (1 - w) * q_eval[sidekick]).argmax(1) == y
        interp_rows.append(
            dict(
                model_a=base,
                model_b=sidekick,
                mode="weight",
                weight=w,
                ensemble_acc=float(ens.mean()),
            )
        )
        wc = np.where(better_a, w, 1 - w)[None, :]
        ens = (wc * q_eval[base] + (1 - wc) * q_eval[sidekick]).argmax(1) == y
        interp_rows.append(
            dict(
                model_a=base,
                model_b=sidekick,
                mode="class_aware",
                weight=w,
                ensemble_acc=float(ens.mean()),
            )
        )
    _write(out, "interpolation", interp_rows)

    # Drill-down (study.drilldown): examples only one of base / sidekick gets right, top 3.
    only = np.flatnonzero(right[base] ^ right[sidekick])[:20]
    drill_rows = []
    for k in only:
        for model in (base, sidekick):
            for rank, cls in enumerate(np.argsort(-q_eval[model][k], kind="stable")[:3]):
                drill_rows.append(
                    dict(
                        model_a=base,
                        model_b=sidekick,
                        example=int(ev[k]),
                        example_id=f"img-{int(ev[k]):05d}",
                        label=int(y[k]),
                        label_name=class_names[int(y[k])],
                        right=base if right[base][k] else sidekick,
                        model=model,
                        rank=rank + 1,
                        **{"class": int(cls)},
                        class_name=class_names[int(cls)],
                        probability=float(q_eval[model][k, cls]),
                        image="",
                    )
                )
    _write(out, "drilldown", drill_rows)

    # summary.json in the shape study/analyze.py writes (provenance + headline).
    ranked = []
    for _, row in with_base.sort_values("ensemble_acc", ascending=False, kind="stable").iterrows():
        other = row.model_b if row.model_a == base else row.model_a
        ranked.append(
            {
                "model": other,
                "category": row.category,
                "ensemble_acc": float(row.ensemble_acc),
                "over_base": float(row.ensemble_acc - right[base].mean()),
                "error_inconsistency": float(row.error_inconsistency),
                "mcnemar_p": 0.01,
            }
        )
    by_cat = {
        cat: {
            "mean": float(part.error_inconsistency.mean()),
            "lo": float(part.error_inconsistency.min()),
            "hi": float(part.error_inconsistency.max()),
            "n_pairs": int(len(part)),
        }
        for cat, part in with_base.groupby("category", sort=False)
    }
    base_row = model_rows[names.index(base)]
    summary = {
        "format_version": 1,
        "table_version": 1,
        "zoolens_version": "0.1.0",
        "created_utc": "2026-11-22T01:00:00+00:00",
        "command": f"zoolens analyze /data/zoos/fixture --base '{base}' --out results",
        "zoo": {
            "path": "/data/zoos/fixture",
            "dataset": "synthetic <six> classes",
            "num_examples": n_all,
            "num_classes": len(class_names),
            "num_models": len(names),
            "file_hashes": {"labels.npy": "0" * 64},
        },
        "split_seed": 0,
        "seeds": {"bootstrap": 0},
        "base": base,
        "splits": {"calibration": len(cal), "evaluation": len(ev), "all": n_all},
        "temperature_warnings": [f"{names[-1]}: temperature at a bound (fixture)"],
        "notes": [],
        "headline": {
            "base": {
                "model": base,
                "accuracy": base_row["accuracy"],
                "accuracy_lo": base_row["accuracy_lo"],
                "accuracy_hi": base_row["accuracy_hi"],
                "accuracy_all": base_row["accuracy_all"],
            },
            "best_sidekick": ranked[0],
            "ranked_sidekicks": ranked[:5],
            "mean_error_inconsistency_by_category": by_cat,
            "spearman_ei_vs_gain": {
                "pairs_with_base": {"rho": 0.8, "p_value": 0.005, "n_pairs": len(with_base)}
            },
            "greedy": {
                "start": base,
                "members": members[: best_step + 1],
                "evaluation_acc": steps[best_step][4],
                "gain_over_start": steps[best_step][4] - steps[0][4],
            },
            "all_models_ensemble_acc": 0.9,
            "all_models_ensemble_members": len(names),
        },
    }
    summary.update(extra_summary or {})
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return out


def write_probe_tables(out_dir, names: list, base: str, *, seed: int = 0) -> Path:
    """probe.csv, diversity.csv, transfer.csv, stacking.csv, cka.csv with plausible numbers."""
    out = Path(out_dir)
    rng = np.random.default_rng(seed)
    pairs = pd.read_csv(
        out / "pairs.csv",
        dtype={"model_a": str, "model_b": str},
        keep_default_na=False,
        na_values=[""],
    )
    others = [n for n in names if n != base][:3]
    probe_rows, div_rows, stack_rows = [], [], []
    for other in others:
        acc_a, acc_b = 0.80 + 0.05 * rng.random(), 0.78 + 0.05 * rng.random()
        for rate in (0.0, 0.25, 0.5, 0.75, 1.0):
            for draw in range(3):
                bump = 0.03 * np.sin(np.pi * rate)
                probe_rows.append(
                    dict(
                        model_a=base,
                        model_b=other,
                        rate=rate,
                        draw=draw,
                        n_dims_a=int(np.floor(rate * 64)),
                        n_dims_b=int(64 - np.floor(rate * 64)),
                        accuracy=rate * acc_a
                        + (1 - rate) * acc_b
                        + bump
                        + 0.004 * rng.standard_normal(),
                    )
                )
        target = max(acc_a, acc_b)
        for selection in ("diverse", "random"):
            for j in range(1, 9):
                k = 16 * j
                lift = 0.02 if selection == "diverse" else 0.0
                div_rows.append(
                    dict(
                        model_a=base,
                        model_b=other,
                        selection=selection,
                        k=k,
                        accuracy=target - 0.12 / j + lift,
                        target_accuracy=target,
                    )
                )
        va, vb = 0.60 + 0.1 * rng.random(), 0.60 + 0.1 * rng.random()
        stack_rows.append(
            dict(
                model_a=base,
                model_b=other,
                downstream_metric="accuracy",
                value_a=va,
                value_b=vb,
                value_stacked=max(va, vb) + 0.03,
            )
        )
    _write(out, "probe", probe_rows)
    _write(out, "diversity", div_rows)
    _write(out, "stacking", stack_rows)
    models = pd.read_csv(
        out / "models.csv", dtype={"model": str}, keep_default_na=False, na_values=[""]
    )
    transfer = models[["model", "accuracy"]].rename(columns={"accuracy": "upstream_accuracy"})
    transfer = transfer.assign(
        downstream_metric="accuracy",
        downstream_value=0.5
        + 0.4 * transfer.upstream_accuracy
        + 0.02 * rng.standard_normal(len(transfer)),
    )
    _write(out, "transfer", transfer)
    cka = pairs[["model_a", "model_b", "error_consistency"]].copy()
    cka.insert(
        2,
        "cka_linear",
        np.clip(0.3 + 0.6 * cka.error_consistency + 0.05 * rng.standard_normal(len(cka)), 0, 1),
    )
    cka.insert(3, "cka_rbf", np.clip(cka.cka_linear + 0.03, 0, 1))
    cka.insert(4, "cka_debiased", np.clip(cka.cka_linear - 0.1, 0, 1))
    cka.loc[cka.index[:2], "error_consistency"] = np.nan  # "unknown" rows, as allowed
    _write(out, "cka", cka)
    return out


SYNTHETIC_MODELS = [
    # name, arch, family, framework, pretrain data, seed, hparams, correlation with the base
    (BASE_NAME, "resnet50", "resnet", "supervised", "ImageNet", 0, {}, 1.0),
    ("ResNet-50 seed 1", "resnet50", "resnet", "supervised", "ImageNet", 1, {}, 0.85),
    ("ResNet-50 seed 2", "resnet50", "resnet", "supervised", "ImageNet", 2, {}, 0.82),
    ("ResNet-50 lr=0.4", "resnet50", "resnet", "supervised", "ImageNet", 0, {"lr": 0.4}, 0.7),
    ("vit_b16 $0.1", "resnet101", "resnet", "supervised", "ImageNet", 0, {}, 0.66),
    ("EfficientNet-B0", "effnet_b0", "efficientnet", "supervised", "ImageNet", 0, {}, 0.55),
    (EVIL_NAME, "vit_b16", "vit", "supervised", "ImageNet", 0, {}, 0.5),
    ("SimCLR ResNet-50", "resnet50", "resnet", "simclr", "ImageNet", 0, {}, 0.38),
    ('_CLIP R50 & "quotes"', "resnet50", "resnet", "clip", "ImageNet", 0, {}, 0.32),
    ("BiT-JFT", "resnet50", "resnet", "supervised", "JFT-300M", 0, {}, 0.22),
    ("CLIP ViT-B/32 (WIT)", "vit_b32", "vit", "clip", "WIT-400M", 0, {}, 0.15),
]
CLASS_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "<b>dog</b>"]
CLASS_GROUPS = {"vehicles": [0, 1], "animals & <pets>": [2, 3, 4, 5]}


def simulate_scores(n: int = 800, seed: int = 0):
    """Logits whose shared noise with the base falls with the category, per-class skills."""
    rng = np.random.default_rng(seed)
    c = len(CLASS_NAMES)
    labels = rng.integers(0, c, n)
    shared = rng.standard_normal((n, c))
    scores = {}
    for name, *_, rho in SYNTHETIC_MODELS:
        own = rng.standard_normal((n, c))
        skill = 2.2 + 0.9 * rng.standard_normal(c)  # per-class strengths -> specialization
        z = rho * shared + np.sqrt(max(1 - rho**2, 0)) * own
        z = 1.3 * z + np.eye(c)[labels] * skill[labels][:, None]
        scores[name] = z * (0.6 + rng.random())  # miscalibrated on purpose
    return scores, labels


def write_synthetic_results(
    out_dir, *, probe: bool = True, seed: int = 0, n: int = 800, base_position: int = 0
) -> Path:
    """The full synthetic results folder (all tables of ``zoolens.contracts``). ``base_position``: the
    base's place in zoo order (pairs.csv has a < b in zoo order, so a base not first sits in
    model_b of some pairs)."""
    scores, labels = simulate_scores(n, seed)
    order = [name for name in scores if name != BASE_NAME]
    order.insert(base_position, BASE_NAME)
    scores = {name: scores[name] for name in order}
    cards = {
        name: Card(name, arch, fam, fw, data, seed=s, hparams=hp)
        for name, arch, fam, fw, data, s, hp, _ in SYNTHETIC_MODELS
    }
    rng = np.random.default_rng(seed + 1)
    cal = np.sort(rng.choice(n, size=n // 4, replace=False))
    out = write_results_from_scores(
        out_dir,
        scores,
        labels,
        cards,
        BASE_NAME,
        calibration_index=cal,
        class_names=CLASS_NAMES,
        class_groups=CLASS_GROUPS,
    )
    if probe:
        write_probe_tables(out, list(scores), BASE_NAME, seed=seed)
    return out


if __name__ == "__main__":  # python tests/_report_fixtures.py DIR  -> a folder to look at
    import sys

    print(write_synthetic_results(sys.argv[1] if len(sys.argv) > 1 else "report-fixture"))


_CACHE: dict = {}


def shared_results_dir() -> Path:
    """One synthetic results folder per test process (read-only: copy it to change it)."""
    if "results" not in _CACHE:
        import atexit
        import shutil
        import tempfile

        root = Path(tempfile.mkdtemp(prefix="zoolens-report-tests-"))
        atexit.register(shutil.rmtree, root, ignore_errors=True)
        _CACHE["root"] = root
        _CACHE["results"] = write_synthetic_results(root / "results")
    return _CACHE["results"]


def shared_report():
    """(ReportResult, html text) of ``shared_results_dir()``, built once per test process,
    with PNG export; shared by the HTML and browser tests so the build runs once."""
    if "report" not in _CACHE:
        from zoolens.report import build_report

        results = shared_results_dir()
        out = _CACHE["root"] / "report.html"
        report = build_report(results, out, png_dir=_CACHE["root"] / "png", warn=None)
        _CACHE["report"] = (report, out.read_text(encoding="utf-8"))
    return _CACHE["report"]
