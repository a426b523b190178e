"""The same models on several evaluation sets: how the paper's measures move under shift.

One zoo per evaluation set, sharing model names (the zoo format is unchanged): the first is
the reference (in-distribution) set, the others shifted siblings, e.g. CIFAR-10 → CIFAR-10.1
or ImageNet → ImageNetV2 / -Sketch / -R. Per model and set: accuracy with its bootstrap
interval; per pair and set: error inconsistency (with interval), prediction agreement, error
consistency κ, and the calibrated pair ensemble's accuracy and gain where both models have
scores. Across sets (``measure.shift``): the probit-scale linear fit of shifted accuracy on
reference accuracy over all models ("accuracy on the line", Miller et al. 2021) with each
model's effective robustness above it (Taori et al. 2020), the same fit of pair agreement
("agreement on the line", Baek et al. 2022), the rank on each set of the base's best
sidekick chosen on the reference set, and the mean error inconsistency with the base by
category on each set (paper Fig. 1, now per set).

What is measured where:
- the reference set on its evaluation split (the rows of ``analyze``'s tables; all examples
  when the zoo has no calibration split), shifted sets on all their examples: nothing is
  fitted on a shifted set.
- ensembles use temperatures fitted on the reference set's calibration split (as a deployed
  model's would be: the shifted data is unseen), T = 1 where there is none.
- a model missing from a set is left out of that set's rows, with a note; a model only in a
  shifted set is ignored, with a note. Pair categories come from the reference zoo's cards.

Bootstrap intervals resample examples within each set (``StreamingBootstrap``, the same
seed as ``analyze``: the reference set's accuracy intervals equal models.csv's; the k-th
shifted set uses seed + k, so two sets of equal size never share their draws).

Shifted sets without labels (``Zoo.has_labels`` false; the reference needs labels): every
column that compares with labels is empty for them (accuracy, effective robustness, error
inconsistency, κ, ensembles); prediction agreement is measured. For every shifted set,
labelled or not, each model's accuracy is estimated from agreement alone (Baek et al. 2022,
``measure.shift.aline_estimates``: ALine-D in ``estimated_accuracy``, ALine-S beside), with
an interval from ``aline_interval`` (the estimate recomputed on every resample of both sets,
the agreement line refit on each, plus the line's residual scatter), and the premise is
checked (:func:`_estimates`: the agreement line's R² >= ``AGREEMENT_R2_MIN``; with labels
also the accuracy line's R² and the two lines' largest gap <= ``LINE_GAP_MAX``), each
failure a note. Labelled sets also get the estimates' errors and the intervals' coverage in
summary.json (``shift.estimates``), so the method can be validated on a labelled shift.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from zoolens.contracts import ESTIMATE_COLUMNS
from zoolens.errors import ZoolensError
from zoolens.measure import topk
from zoolens.measure.agreement import correctness, pairwise_agreement
from zoolens.measure.ensemble import all_pair_ensemble_correct, ensemble_inputs
from zoolens.measure.shift import (
    ProbitFit,
    aline_estimates,
    aline_interval,
    effective_robustness,
    probit_fit,
)
from zoolens.progress import info
from zoolens.study import tables
from zoolens.study.bootstrap import Resamples
from zoolens.study.inputs import check_model, chunk_examples, fit_model, open_zoo

REFERENCE_NAME = "reference"


@dataclass
class EvaluationSet:
    """One evaluation set of the study: its zoo, the examples measured and its models."""

    name: str
    role: str  # "reference" or "shifted"
    zoo: Any
    rows: np.ndarray  # example indices measured
    models: list[str]  # present in this set, reference order
    missing: list[str] = field(default_factory=list)  # reference models absent here
    extra: list[str] = field(default_factory=list)  # models only in this set (ignored)


@dataclass
class ShiftResult:
    """The shift tables (columns exactly as the CSV files) and summary.json's "shift" block."""

    models: pd.DataFrame
    pairs: pd.DataFrame
    fits: pd.DataFrame
    summary: dict[str, Any]

    def tables(self) -> dict[str, pd.DataFrame]:
        return {"shift_models": self.models, "shift_pairs": self.pairs, "shift_fits": self.fits}


# --------------------------------------------------------------------------------------
# the sets


def _as_pairs(shifted: Mapping[str, Any] | Sequence[tuple[str, Any]]) -> list[tuple[str, Any]]:
    if isinstance(shifted, Mapping):
        return list(shifted.items())
    pairs = []
    for item in shifted:
        if not (isinstance(item, tuple) and len(item) == 2):
            raise ZoolensError(f"--shift {item!r}: give NAME=ZOO")
        pairs.append(item)
    return pairs


def parse_shift_options(values: Sequence[str] | None) -> list[tuple[str, str]]:
    """``["v6=cifar101.zoo", ...]`` -> ``[("v6", "cifar101.zoo"), ...]`` (the CLI's --shift)."""
    out = []
    for value in values or []:
        name, sep, path = str(value).partition("=")
        if not sep or not name.strip() or not path.strip():
            raise ZoolensError(f"--shift {value!r}: give NAME=ZOO, e.g. --shift v6=cifar101.zoo")
        out.append((name.strip(), path.strip()))
    return out


def open_sets(
    reference: Any,
    shifted: Mapping[str, Any] | Sequence[tuple[str, Any]],
    *,
    reference_name: str = REFERENCE_NAME,
) -> list[EvaluationSet]:
    """The reference set first, then each shifted set; checked before anything is measured.

    Errors (ZoolensError, one line naming the set and the zoo): a set name used twice or equal
    to ``reference_name``, a zoo that does not exist, a zoo whose classes (number and names)
    differ from the reference's, a zoo with no model in common with the reference.
    """
    ref = open_zoo(reference)
    ref.require_labels(f"the reference set of --shift ({reference_name})")
    names = list(ref.models)
    sets = [
        EvaluationSet(
            reference_name,
            "reference",
            ref,
            np.asarray(ref.evaluation_indices, dtype=np.int64),
            names,
        )
    ]
    seen = {reference_name: "the reference set"}
    for name, zoo in _as_pairs(shifted):
        name = str(name)
        if not name.strip():
            raise ZoolensError("--shift: a set name is empty; give NAME=ZOO")
        if name in seen:
            raise ZoolensError(
                f"--shift {name}: the name is used twice (already "
                f"{seen[name]}); give every set its own name"
            )
        if isinstance(zoo, (str, Path)):
            seen[name] = str(zoo)
            if not Path(zoo).exists():
                raise ZoolensError(f"--shift {name}={zoo}: no such zoo folder")
        other = open_zoo(zoo)
        seen[name] = str(other.path)
        if int(other.num_classes) != int(ref.num_classes) or list(other.class_names) != list(
            ref.class_names
        ):
            raise ZoolensError(
                f"--shift {name}: zoo {other.path} has {other.num_classes} classes "
                f"({_short(other.class_names)}), the reference zoo {ref.path} has "
                f"{ref.num_classes} ({_short(ref.class_names)}); the sets must share classes"
            )
        present = set(other.models)
        models = [m for m in names if m in present]
        if not models:
            raise ZoolensError(
                f"--shift {name}: zoo {other.path} has no model in common with "
                f"the reference zoo {ref.path} (models are matched by name)"
            )
        sets.append(
            EvaluationSet(
                name,
                "shifted",
                other,
                np.arange(int(other.num_examples), dtype=np.int64),
                models,
                missing=[m for m in names if m not in present],
                extra=[m for m in other.models if m not in set(names)],
            )
        )
    return sets


def _short(values: Sequence[Any], limit: int = 5) -> str:
    values = [str(v) for v in values]
    return ", ".join(values[:limit]) + (" …" if len(values) > limit else "")


def reference_temperatures(zoo: Any) -> dict[str, float]:
    """Each scored model's temperature on the zoo's calibration split (``study.inputs.fit_model``);
    1.0 for every model when the split is empty."""
    cal = np.asarray(zoo.calibration_indices, dtype=np.int64)
    labels_cal = np.asarray(zoo.labels)[cal]
    out = {}
    for name in zoo.models:
        if zoo.kind(name) == "decisions":
            continue
        if cal.size == 0:
            out[name] = 1.0
            continue
        out[name] = fit_model(zoo, name, cal, labels_cal).temperature
    return out


# --------------------------------------------------------------------------------------
# one set


@dataclass
class _SetMeasures:
    accuracy: np.ndarray  # (m,)
    accuracy_lo: np.ndarray
    accuracy_hi: np.ndarray
    agreement: dict[str, np.ndarray]  # pairwise_agreement on this set
    ei_lo: np.ndarray  # (P,) local triu order
    ei_hi: np.ndarray
    prediction_agreement: np.ndarray  # (P,)
    ensemble_acc: np.ndarray  # (P,) NaN where a member has no scores
    category_ei: dict[str, dict[str, Any]]
    # resampled means (B, m) of accuracy (None without labels) and (B, P) of prediction
    # agreement: the label-free estimates refit their line on each resample
    accuracy_resampled: np.ndarray | None = None
    agreement_resampled: np.ndarray | None = None
    labelled: bool = True


def _measure_set(
    s: EvaluationSet,
    base: str,
    base_category: Mapping[str, str],
    temperatures: Mapping[str, float],
    *,
    combine: str,
    n_bootstrap: int,
    seed: int,
    memory_budget: int,
    exact_topk: bool,
) -> _SetMeasures:
    """Every measure of one set, its examples read in chunks (scores once per model)."""
    from zoolens.study.stream import pair_positions

    zoo, rows, names = s.zoo, s.rows, s.models
    m, n = len(names), len(rows)
    labelled = bool(zoo.has_labels)
    labels = np.asarray(zoo.labels)[rows] if labelled else np.zeros(n, dtype=np.int64)
    predictions = np.stack(
        [np.asarray(zoo.predictions(name), dtype=np.int64)[rows] for name in names]
    )
    correct = correctness(predictions, labels)
    if labelled:
        agreement = pairwise_agreement(correct)
    else:  # nothing that compares with labels is measured on an unlabelled set
        agreement = {
            "accuracy": np.full(m, np.nan),
            "error_inconsistency": np.full((m, m), np.nan),
            "error_consistency": np.full((m, m), np.nan),
        }
    a_idx, b_idx = np.triu_indices(m, 1)
    num_pairs = len(a_idx)
    scored = np.array(
        [k for k, name in enumerate(names) if zoo.kind(name) != "decisions"], dtype=np.int64
    )
    scored_pairs = pair_positions(m, scored)
    # Pairs (base, other) by the other's category vs the base: their per-example mean XOR is
    # the category's mean error inconsistency per example (bootstrapped as one statistic).
    base_k = names.index(base) if base in names else -1
    other = np.where(a_idx == base_k, b_idx, np.where(b_idx == base_k, a_idx, -1))
    model_category = np.array([base_category[name] for name in names] + [""], dtype=object)
    other_category = model_category[other]  # other = -1 picks the trailing "" (not a base pair)
    categories = list(dict.fromkeys(other_category[other >= 0]))
    category_matrix = (
        np.stack([other_category == c for c in categories]).astype(np.float32)
        if categories and labelled
        else None
    )

    resamples = Resamples(n, n_bootstrap, seed)
    sums: dict[str, np.ndarray] = {}

    def add(name: str, values: np.ndarray, cols: slice) -> None:
        block = resamples.chunk_sums(values, cols)
        sums[name] = sums[name] + block if name in sums else block

    agree = np.zeros(num_pairs, dtype=np.int64)
    ens_right = np.zeros(len(scored_pairs), dtype=np.int64)
    num_classes = int(zoo.num_classes)
    chunk = chunk_examples(len(scored), num_classes, num_pairs, n_bootstrap, memory_budget)
    for start in range(0, n, chunk):
        cols = slice(start, min(start + chunk, n))
        r = correct[:, cols]
        xor = r[a_idx] ^ r[b_idx]
        left = predictions[a_idx, cols]
        same = (left == predictions[b_idx, cols]) & (left >= 0)  # an abstention agrees never
        add("prediction_agreement", same, cols)
        agree += same.sum(axis=1, dtype=np.int64)
        if labelled:
            add("accuracy", r, cols)
            add("error_inconsistency", xor, cols)
        if category_matrix is not None:
            add(
                "category_ei",
                (category_matrix @ xor.astype(np.float32))
                / category_matrix.sum(axis=1, keepdims=True),
                cols,
            )
        if len(scored) >= 2 and labelled:
            block = np.stack(
                [
                    ensemble_inputs(
                        zoo.scores(names[k], rows=rows[cols]),
                        float(temperatures.get(names[k], 1.0)),
                        combine,
                    )
                    for k in scored
                ]
            )
            ens = (
                correctness(topk.all_pair_ensemble_predictions_topk(block), labels[cols])
                if exact_topk
                else all_pair_ensemble_correct(block, labels[cols])
            )
            ens_right += ens.sum(axis=1)
            del block, ens

    def interval(name: str, size: int) -> tuple[np.ndarray, np.ndarray]:
        if name not in sums:  # not measured (an unlabelled set): no interval
            return np.full(size, np.nan), np.full(size, np.nan)
        return resamples.interval(sums[name])

    accuracy_lo, accuracy_hi = interval("accuracy", m)
    ei_lo, ei_hi = interval("error_inconsistency", num_pairs)
    ensemble_acc = np.full(num_pairs, np.nan)
    if labelled:
        ensemble_acc[scored_pairs] = ens_right / n
    category_ei = {}
    if category_matrix is not None:
        lo, hi = interval("category_ei", len(categories))
        ei = agreement["error_inconsistency"][a_idx, b_idx]
        for k, c in enumerate(categories):
            mask = category_matrix[k] > 0
            category_ei[c] = {
                "mean": float(ei[mask].mean()),
                "lo": lo[k],
                "hi": hi[k],
                "n_pairs": int(mask.sum()),
            }
    return _SetMeasures(
        agreement["accuracy"],
        accuracy_lo,
        accuracy_hi,
        agreement,
        ei_lo,
        ei_hi,
        agree / n,
        ensemble_acc,
        category_ei,
        resamples.means(sums["accuracy"]) if "accuracy" in sums else None,
        resamples.means(sums["prediction_agreement"]) if "prediction_agreement" in sums else None,
        labelled,
    )


def _base_ranks(names: list[str], base: str, ensemble_acc: np.ndarray) -> np.ndarray:
    """(P,) for pairs with the base: 1 + the number of the base's partners on this set whose
    pair ensemble is strictly more accurate (ties share the better rank); NaN elsewhere."""
    m = len(names)
    a, b = np.triu_indices(m, 1)
    ranks = np.full(len(a), np.nan)
    if base not in names:
        return ranks
    k = names.index(base)
    mine = ((a == k) | (b == k)) & np.isfinite(ensemble_acc)
    values = ensemble_acc[mine]
    ranks[mine] = 1 + (values[None, :] > values[:, None]).sum(axis=1)
    return ranks


# --------------------------------------------------------------------------------------
# the study


def analyze_shift(
    reference: Any,
    shifted: Mapping[str, Any] | Sequence[tuple[str, Any]],
    base: str,
    out_dir: str | Path | None = None,
    *,
    reference_name: str = REFERENCE_NAME,
    temperatures: Mapping[str, float] | None = None,
    combine: str = "probs",
    n_bootstrap: int = 1000,
    seed: int = 0,
    memory_budget: int = 2**30,
    exact_topk: bool = True,
    parquet: bool = True,
    sets: list[EvaluationSet] | None = None,
    reference_rows: np.ndarray | None = None,
) -> ShiftResult:
    """The shift study of the models of ``reference`` on each set of ``shifted``.

    Args:
        reference: the reference zoo (a Zoo or its path): the in-distribution set.
        shifted: set name -> zoo (or path), or a sequence of (name, zoo) pairs.
        base: the model whose pairs give the categories and the best sidekick.
        out_dir: where shift_models/shift_pairs/shift_fits (.csv, .parquet) go (None: nowhere;
            ``analyze(..., shift=...)`` writes them with its own tables and summary.json).
        temperatures: model -> temperature for the ensembles (default: fitted on the
            reference set's calibration split, 1.0 when it has none).
        reference_rows: the reference examples measured (default its evaluation split;
            ``analyze`` passes its own, all examples with ``calibration=False``).
        combine, n_bootstrap, seed, memory_budget, exact_topk: as in ``analyze``.

    Returns a :class:`ShiftResult`. Example::

        from zoolens.study.shift import analyze_shift
        result = analyze_shift("cifar10.zoo", {"v6": "cifar10.1.zoo"}, base="resnet_basic_110")
        result.fits        # slope, intercept, r2 of accuracy and agreement on the line
    """
    if combine not in ("probs", "logits"):
        raise ZoolensError(f"combine must be 'probs' or 'logits', got {combine!r}")
    if sets is None:
        sets = open_sets(reference, shifted, reference_name=reference_name)
    ref = sets[0].zoo
    if reference_rows is not None:
        sets[0].rows = np.asarray(reference_rows, dtype=np.int64)
    check_model(ref, base, "--base")
    if temperatures is None:
        temperatures = reference_temperatures(ref)
    temperatures = {k: float(v) for k, v in temperatures.items() if np.isfinite(v)}
    from zoolens.zoo.categories import pair_categories, pair_category

    cards = {name: ref.card(name) for name in ref.models}
    base_category = {name: pair_category(cards[base], card) for name, card in cards.items()}
    notes = []
    model_frames, pair_frames = [], []
    measured: dict[str, _SetMeasures] = {}
    for s in sets:
        info(f"shift study: set {s.name} ({len(s.models)} models, {len(s.rows)} examples)")
        if s.missing:
            notes.append(
                f"set {s.name}: {len(s.missing)} model(s) of the reference are not in "
                f"{s.zoo.path} and are left out of its rows: {_short(s.missing, 10)}"
            )
        if s.extra:
            notes.append(
                f"set {s.name}: model(s) not in the reference zoo are ignored: "
                f"{_short(s.extra, 10)}"
            )
        if s.role == "shifted" and base not in s.models:
            notes.append(
                f"set {s.name}: the base {base!r} is not in it: no sidekick rank and no "
                "error inconsistency by category there"
            )
        unscored = [k for k in s.models if s.zoo.kind(k) != "decisions" and k not in temperatures]
        if unscored:
            notes.append(
                f"set {s.name}: no reference temperature for {_short(unscored)} "
                "(decision-only in the reference zoo): T = 1 in its ensembles"
            )
        res = _measure_set(
            s,
            base,
            base_category,
            temperatures,
            combine=combine,
            n_bootstrap=n_bootstrap,
            # each set its own resamples (the reference's are analyze's): sets of equal size
            # must not share draws, the estimates treat them as independent samples
            seed=seed + len(measured),
            memory_budget=memory_budget,
            exact_topk=exact_topk,
        )
        measured[s.name] = res
        model_frames.append(
            pd.DataFrame(
                {
                    "set": s.name,
                    "role": s.role,
                    "model": s.models,
                    "category": [base_category[k] for k in s.models],
                    "n": len(s.rows),
                    "accuracy": res.accuracy,
                    "accuracy_lo": res.accuracy_lo,
                    "accuracy_hi": res.accuracy_hi,
                }
            )
        )
        a, b = np.triu_indices(len(s.models), 1)
        ag = res.agreement
        acc = ag["accuracy"]
        pair_frames.append(
            pd.DataFrame(
                {
                    "set": s.name,
                    "role": s.role,
                    "model_a": [s.models[i] for i in a],
                    "model_b": [s.models[j] for j in b],
                    "category": pair_categories([cards[m] for m in s.models], a, b),
                    "n": len(s.rows),
                    "acc_a": acc[a],
                    "acc_b": acc[b],
                    "error_inconsistency": ag["error_inconsistency"][a, b],
                    "error_inconsistency_lo": res.ei_lo,
                    "error_inconsistency_hi": res.ei_hi,
                    "agreement": res.prediction_agreement,
                    "error_consistency": ag["error_consistency"][a, b],
                    "ensemble_acc": res.ensemble_acc,
                    "ensemble_gain": res.ensemble_acc - (acc[a] + acc[b]) / 2,
                    "base_rank": _base_ranks(s.models, base, res.ensemble_acc),
                }
            )
        )
    models = pd.concat(model_frames, ignore_index=True)
    pairs = pd.concat(pair_frames, ignore_index=True)
    models, fits = _fits(sets, models, pairs, notes)
    models, estimates = _estimates(sets, models, fits, measured, notes)
    models = models[tables.TABLE_COLUMNS["shift_models"]]
    pairs = pairs[tables.TABLE_COLUMNS["shift_pairs"]]
    summary = _summary(sets, base, pairs, fits, measured, temperatures, notes, reference_name)
    summary["estimates"] = estimates
    summary["unlabelled_sets"] = [s.name for s in sets if not measured[s.name].labelled]
    result = ShiftResult(models=models, pairs=pairs, fits=fits, summary=summary)
    if out_dir is not None:
        out = tables.output_folder(out_dir)
        for name, frame in result.tables().items():
            tables.write_table(out, name, frame, parquet=parquet)
    return result


def _fits(
    sets: list[EvaluationSet], models: pd.DataFrame, pairs: pd.DataFrame, notes: list[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per shifted set: the probit fits of accuracy (models) and agreement (pairs) on the
    reference's, and each model's reference accuracy, line accuracy and effective robustness."""
    ref_name = sets[0].name
    ref_acc = models[models["set"] == ref_name].set_index("model")["accuracy"]
    ref_pairs = pairs[pairs["set"] == ref_name].set_index(["model_a", "model_b"])["agreement"]
    models = models.assign(
        reference_accuracy=models["model"].map(ref_acc).astype(float),
        line_accuracy=np.nan,
        effective_robustness=np.nan,
    )
    rows = []
    for s in sets[1:]:
        mine = models["set"] == s.name
        x = models.loc[mine, "reference_accuracy"].to_numpy(np.float64)
        y = models.loc[mine, "accuracy"].to_numpy(np.float64)
        fit = probit_fit(x, y)
        rows.append(
            {
                "set": s.name,
                "measure": "accuracy",
                "n_points": fit.n_points,
                "slope": fit.slope,
                "intercept": fit.intercept,
                "r2": fit.r2,
            }
        )
        with np.errstate(invalid="ignore"):
            models.loc[mine, "line_accuracy"] = fit.predict(x)
        models.loc[mine, "effective_robustness"] = effective_robustness(x, y, fit)
        mine_pairs = pairs[pairs["set"] == s.name]
        keys = pd.MultiIndex.from_arrays([mine_pairs["model_a"], mine_pairs["model_b"]])
        xa = ref_pairs.reindex(keys).to_numpy(np.float64)
        afit = probit_fit(xa, mine_pairs["agreement"].to_numpy(np.float64))
        rows.append(
            {
                "set": s.name,
                "measure": "agreement",
                "n_points": afit.n_points,
                "slope": afit.slope,
                "intercept": afit.intercept,
                "r2": afit.r2,
            }
        )
        for measure, f, total in (("accuracy", fit, len(x)), ("agreement", afit, len(xa))):
            if measure == "accuracy" and not s.zoo.has_labels:
                notes.append(
                    f"set {s.name} has no labels: no accuracy, accuracy line or effective "
                    "robustness; its accuracies are estimated from agreement (ALine)"
                )
            elif not np.isfinite(f.slope):
                notes.append(
                    f"set {s.name}: no {measure} line (needs at least 2 "
                    f"{'models' if measure == 'accuracy' else 'pairs'} with measures "
                    "strictly between 0 and 1 and different reference values)"
                )
            elif f.n_points < total:
                notes.append(
                    f"set {s.name}: {total - f.n_points} of {total} "
                    f"{'models' if measure == 'accuracy' else 'pairs'} left out of the "
                    f"{measure} fit (a measure of exactly 0 or 1 has no probit)"
                )
    fits = (
        pd.DataFrame(rows, columns=tables.TABLE_COLUMNS["shift_fits"])
        if rows
        else tables.empty_table("shift_fits")
    )
    return models, fits


def _summary(sets, base, pairs, fits, measured, temperatures, notes, reference_name):
    """summary.json's "shift" block: the sets, fits, sidekick ranks, EI by category, notes."""
    ref = pairs[pairs["set"] == reference_name]
    with_base = ref[(ref["model_a"] == base) | (ref["model_b"] == base)]
    with_base = with_base[with_base["base_rank"] == 1]
    sidekick = None
    if len(with_base):
        # the first best partner in zoo order, as analyze's best sidekick
        order = {name: k for k, name in enumerate(sets[0].models)}
        partners = [
            r.model_b if r.model_a == base else r.model_a for r in with_base.itertuples(index=False)
        ]
        model = min(partners, key=order.__getitem__)
        ranks, counts = {}, {}
        for s in sets:
            mine = pairs[
                (pairs["set"] == s.name) & ((pairs["model_a"] == base) | (pairs["model_b"] == base))
            ]
            hit = mine[(mine["model_a"] == model) | (mine["model_b"] == model)]
            counts[s.name] = int(mine["base_rank"].notna().sum())
            ranks[s.name] = (
                int(hit["base_rank"].iloc[0])
                if len(hit) and np.isfinite(hit["base_rank"].iloc[0])
                else None
            )
        sidekick = {"model": model, "rank": ranks, "partners": counts}
    fit_block = {}
    for row in fits.to_dict("records"):
        fit_block.setdefault(row["set"], {})[row["measure"]] = {
            k: row[k] for k in ("n_points", "slope", "intercept", "r2")
        }
    return {
        "reference": reference_name,
        "base": base,
        "sets": [
            {
                "name": s.name,
                "role": s.role,
                "zoo": str(s.zoo.path),
                "examples": int(len(s.rows)),
                "models": len(s.models),
                "labelled": bool(measured[s.name].labelled),
                "missing_models": s.missing,
                "ignored_models": s.extra,
            }
            for s in sets
        ],
        "measured_on": "the reference zoo's evaluation split; all examples of each shifted zoo",
        "temperatures": "fitted on the reference zoo's calibration split (1.0 without one)",
        "fits": fit_block,
        "best_sidekick": sidekick,
        "mean_error_inconsistency_by_category": {
            name: m.category_ei for name, m in measured.items()
        },
        "notes": notes,
    }


# --------------------------------------------------------------------------------------
# label-free accuracy (agreement on the line)

AGREEMENT_R2_MIN = 0.95
"""The agreement line must explain at least this share of the probit variance (R²) for the
estimates' premise to hold; below it every estimate of the set carries a warning."""

LINE_GAP_MAX = 0.02
"""Where the set has labels: the agreement line and the accuracy line may differ by at most
this much (accuracy units) at the models' reference accuracies, else a warning."""


def _pair_position(m: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Position of pair (i, j), i < j, in ``np.triu_indices(m, 1)`` order."""
    i, j = np.asarray(i, dtype=np.int64), np.asarray(j, dtype=np.int64)
    return i * (2 * m - i - 1) // 2 + (j - i - 1)


def _num(value: Any) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


def _estimates(
    sets: list[EvaluationSet],
    models: pd.DataFrame,
    fits: pd.DataFrame,
    measured: Mapping[str, _SetMeasures],
    notes: list[str],
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Per shifted set, labelled or not: each model's accuracy estimated without the set's
    labels (``measure.shift.aline_estimates``: ALine-D, ALine-S beside), with intervals
    (``aline_interval``: the estimate recomputed on every resample of both sets, the
    agreement line refit each time, plus the line's residual scatter), and the premise
    checks: the agreement line's R² (``AGREEMENT_R2_MIN``) and, where labels allow, the
    accuracy line's R² and its gap to the agreement line (``LINE_GAP_MAX``). Labelled sets
    also get each estimate's error and the intervals' coverage of the measured accuracy."""
    ref_set = sets[0]
    ref = measured[ref_set.name]
    ref_index = {name: k for k, name in enumerate(ref_set.models)}
    models = models.assign(**{c: np.nan for c in ESTIMATE_COLUMNS})
    block: dict[str, Any] = {}
    for s in sets[1:]:
        res = measured[s.name]
        g = np.array([ref_index[name] for name in s.models], dtype=np.int64)
        a, b = np.triu_indices(len(g), 1)
        pos = _pair_position(len(ref_set.models), g[a], g[b])
        est = aline_estimates(
            ref.accuracy[g], ref.prediction_agreement[pos], res.prediction_agreement, a, b
        )
        nan = np.full(len(g), np.nan)
        bounds = {"d": (nan, nan), "s": (nan, nan)}
        if (
            ref.accuracy_resampled is not None
            and ref.agreement_resampled is not None
            and res.agreement_resampled is not None
            and len(ref.accuracy_resampled)
            and len(res.agreement_resampled)
        ):
            count = min(len(ref.accuracy_resampled), len(res.agreement_resampled))
            probit_d, probit_s = np.empty((count, len(g))), np.empty((count, len(g)))
            cache: dict[bytes, np.ndarray] = {}
            for k in range(count):
                e = aline_estimates(
                    ref.accuracy_resampled[k, g],
                    ref.agreement_resampled[k, pos],
                    res.agreement_resampled[k],
                    a,
                    b,
                    _normal_cache=cache,
                )
                probit_d[k], probit_s[k] = e.probit_d, e.probit_s
            bounds = {
                "d": aline_interval(est.probit_d, probit_d, est.residual_sd),
                "s": aline_interval(est.probit_s, probit_s, est.residual_sd),
            }
        mine = (models["set"] == s.name).to_numpy()
        for column, values in zip(
            ESTIMATE_COLUMNS,
            (est.aline_d, *bounds["d"], est.aline_s, *bounds["s"]),
        ):
            models.loc[mine, column] = values
        warnings = []
        r2 = est.fit.r2
        if not (np.isfinite(r2) and r2 >= AGREEMENT_R2_MIN):
            shown = f"{r2:.3f}" if np.isfinite(r2) else "undefined"
            warnings.append(
                f"set {s.name}: agreement is not on the line (R² {shown}, the rule is R² >= "
                f"{AGREEMENT_R2_MIN}): the label-free accuracy estimates rest on a line that "
                "does not hold; do not trust them"
            )
        entry: dict[str, Any] = {
            "labelled": bool(res.labelled),
            "method": "ALine-D (estimated_accuracy), ALine-S beside; Baek et al. 2022",
            "agreement_line": {
                "slope": _num(est.fit.slope),
                "intercept": _num(est.fit.intercept),
                "r2": _num(r2),
                "n_points": int(est.fit.n_points),
                "residual_sd": _num(est.residual_sd),
            },
            "rules": {"agreement_r2_min": AGREEMENT_R2_MIN, "line_gap_max": LINE_GAP_MAX},
        }
        if res.labelled:
            y = res.accuracy
            acc_fit = fits[(fits["set"] == s.name) & (fits["measure"] == "accuracy")].iloc[0]
            x = ProbitFit(
                float(acc_fit["slope"]),
                float(acc_fit["intercept"]),
                float(acc_fit["r2"]),
                int(acc_fit["n_points"]),
            )
            with np.errstate(invalid="ignore"):
                gap = np.abs(est.fit.predict(ref.accuracy[g]) - x.predict(ref.accuracy[g]))
            max_gap = float(np.nanmax(gap)) if np.isfinite(gap).any() else float("nan")
            if not (np.isfinite(x.r2) and x.r2 >= AGREEMENT_R2_MIN):
                warnings.append(
                    f"set {s.name}: accuracy is not on the line (R² "
                    f"{x.r2:.3f} < {AGREEMENT_R2_MIN}): agreement on the line, the estimates' "
                    "premise, is not expected to hold either"
                )
            if np.isfinite(max_gap) and max_gap > LINE_GAP_MAX:
                warnings.append(
                    f"set {s.name}: the agreement line and the accuracy line differ by up to "
                    f"{100 * max_gap:.1f} points at the models' reference accuracies (rule: at "
                    f"most {100 * LINE_GAP_MAX:.0f}): agreement does not follow accuracy here, "
                    "so label-free estimates would miss"
                )
            entry["line_gap"] = _num(max_gap)

            def err(values: np.ndarray) -> np.ndarray:
                return np.abs(np.asarray(values, dtype=np.float64) - y)

            entry["mean_abs_error"] = {
                "aline_d": _num(np.nanmean(err(est.aline_d))),
                "aline_s": _num(np.nanmean(err(est.aline_s))),
                "reference_accuracy": _num(np.nanmean(err(ref.accuracy[g]))),
            }
            entry["max_abs_error"] = {
                "aline_d": _num(np.nanmax(err(est.aline_d))),
                "aline_s": _num(np.nanmax(err(est.aline_s))),
            }
            # share of the models whose measured accuracy lies in the estimate's interval
            entry["coverage"] = {
                f"aline_{key}": _num(np.mean((lo <= y) & (y <= hi)))
                if np.isfinite(lo).any()
                else None
                for key, (lo, hi) in bounds.items()
            }
        entry["premise_holds"] = not warnings
        entry["warnings"] = warnings
        notes.extend(warnings)
        block[s.name] = entry
    return models, block
