"""One self-contained HTML report from a results folder: ``build_report(results_dir, out_path)``.

The page holds everything inline (figures as vector SVG with text drawn as paths, CSS, a
few lines of JS for sortable tables) and asks nothing of any other host: its Content Security
Policy allows no network at all and only the one inline script, by its hash. Every user string
(model, class, group names, card fields, summary values) is escaped with ``html.escape``;
no user string ever enters the script (tables sort on ``data-sort`` attributes in the DOM).

Layout, like a paper supplement: title, zoo summary, the paper's findings checked on this zoo
(findings.json, written by ``zoolens demo``, when present), headline findings, notes on what is
left out, the figures in paper order with a one-sentence caption each, then the tables (the
paper's Table 1 for this zoo, the base's best sidekicks, the greedy ensemble, and when present
the model soups of soup.csv and the model cards of cards.json, notes included).
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import io
import json
import math
import os
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from zoolens import __version__
from zoolens.atomic import atomic_write_with
from zoolens.errors import ZoolensError
from zoolens.progress import terminal_text
from zoolens.measure.stats import accuracy_adjusted_means
from zoolens.report import figures as F
from zoolens.report.markup import cell as _cell
from zoolens.report.markup import esc, figure_svg
from zoolens.report.markup import num as _num
from zoolens.report.markup import pct as _pct
from zoolens.report.markup import sort_key as _sort_key
from zoolens.report.markup import table as _table
from zoolens.report.shift import shift_section
from zoolens.report.tables import Results, finite, load_results, pairs_with_base


@dataclass
class ReportResult:
    path: Path
    figures: list[str] = field(default_factory=list)  # keys drawn, in page order
    skipped: dict[str, str] = field(default_factory=dict)  # key -> reason
    notes: list[str] = field(default_factory=list)  # everything noted (also on stderr)
    png_files: list[Path] = field(default_factory=list)
    figure_data: dict[str, dict] = field(default_factory=dict)


# ---------------------------------------------------------------- formatting helpers


def _text(value) -> str:
    """A card field as escaped text; "—" when it is empty."""
    text = "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)
    return esc(text) if text.strip() else "—"


# ---------------------------------------------------------------- tables


def _table1(results: Results) -> tuple[str | None, str | None]:
    """Paper Table 1 for this zoo: one row per model, the base first."""
    models = results.get("models")
    if models is None or len(models) == 0:
        return None, "Table 1 left out: models.csv absent or empty"
    base = results.base
    first_pair: dict[str, dict] = {}  # other model -> its pair with the base (first if repeated)
    if results.get("pairs") is not None and base is not None:
        for row in pairs_with_base(results.tables["pairs"], base).to_dict("records"):
            first_pair.setdefault(row["other"], row)
    order = {c: i for i, c in enumerate(F.ordered_categories(models.category))}
    ranked = models.assign(
        _is_base=(models.model != base).astype(int),
        _cat=models.category.map(order),
        _pos=np.arange(len(models)),
    )
    ranked = ranked.sort_values(["_is_base", "_cat", "_pos"], kind="stable")
    rows = []
    for m in ranked.to_dict("records"):  # dicts: a column named like a method stays data
        is_base = m["model"] == base
        pair = first_pair.get(m["model"]) if not is_base else None
        ei = pair["error_inconsistency"] if pair is not None else math.nan
        kappa = pair["error_consistency"] if pair is not None else math.nan
        ens = pair["ensemble_acc"] if pair is not None else math.nan
        category = "base" if is_base else m["category"]
        kappa_ci = ""
        if pair is not None and finite(pair.get("error_consistency_lo")):
            kappa_ci = (
                f' <span class="ci">[{_num(pair["error_consistency_lo"], 3)}, '
                f"{_num(pair['error_consistency_hi'], 3)}]</span>"
            )
        acc_ci = ""
        if finite(m.get("accuracy_lo")) and finite(m.get("accuracy_hi")):
            acc_ci = (
                f' <span class="ci">[{_pct(m["accuracy_lo"])}, {_pct(m["accuracy_hi"])}]</span>'
            )
        cells = [
            _cell(
                esc(m["model"]) + (' <span class="badge">base</span>' if is_base else ""),
                sort=str(m["model"]),
                cls="name",
            ),
            _cell(_text(m["arch"])),
            _cell(_text(m["framework"])),
            _cell(_text(m.get("pretrain_data"))),
            _cell(_text(m["head"])),
            _cell(_num(m["temperature"], 3), _sort_key(m["temperature"]), "num"),
            _cell(_pct(m["accuracy"]) + acc_ci, _sort_key(m["accuracy"]), "num"),
            _cell(_num(ei), _sort_key(ei), "num"),
            _cell(_num(kappa, 3) + kappa_ci, _sort_key(kappa), "num"),
            _cell(esc(category), str(-1 if is_base else order.get(m["category"], 99))),
            _cell(_pct(ens), _sort_key(ens), "num"),
        ]
        rows.append(f'<tr data-model="{esc(m["model"])}">{"".join(cells)}</tr>')
    headers = [
        ("Model", "model name as in the zoo"),
        ("Architecture", "arch"),
        ("Method", "training framework (supervised, SimCLR, CLIP, ...)"),
        ("Pretraining data", "pretrain_data"),
        ("Head", "classification head"),
        ("Temperature", "fitted temperature T (calibration split)"),
        ("Accuracy", "top-1 accuracy on the evaluation split [95% interval]"),
        (
            "Error inconsistency",
            "fraction of examples where exactly one of the model and the base is right",
        ),
        (
            "κ",
            "error consistency with the base (Geirhos et al. 2020): agreement of the "
            "two models' errors beyond chance; 1 = the same errors, 0 = independent "
            "[95% bootstrap interval, examples resampled]",
        ),
        ("Category", "training-method category relative to the base"),
        (
            "Ensemble acc. with base",
            "accuracy of the average of the calibrated probabilities of the model and the base",
        ),
    ]
    caption = (
        f"<b>Table 1.</b> The models of this zoo against the base "
        f'<span class="name">{esc(base)}</span> (paper Table 1), in category order.'
    )
    return _table("table-models", caption, headers, rows), None


def _sidekick_table(results: Results, top: int = 5) -> tuple[str | None, str | None]:
    pairs = results.get("pairs")
    if pairs is None or results.base is None:
        return None, "Best sidekick left out: pairs.csv absent or no base model"
    with_base = pairs_with_base(pairs, results.base)
    if len(with_base) == 0:
        return None, "Best sidekick left out: no pair with the base in pairs.csv"
    with_base = with_base[np.isfinite(with_base.ensemble_acc.to_numpy(np.float64))]
    if len(with_base) == 0:
        return None, (
            "Best sidekick left out: no pair with the base has an ensemble "
            "(decision-only models have no probabilities to average)"
        )
    ranked = with_base.sort_values("ensemble_acc", ascending=False, kind="stable").head(top)
    rows = []
    for rank, p in enumerate(ranked.to_dict("records"), start=1):
        cells = [
            _cell(str(rank), str(rank), "num"),
            _cell(esc(p["other"]), str(p["other"]), "name"),
            _cell(esc(p["category"])),
            _cell(_pct(p["acc_other"]), _sort_key(p["acc_other"]), "num"),
            _cell(_num(p["error_inconsistency"]), _sort_key(p["error_inconsistency"]), "num"),
            _cell(_pct(p["ensemble_acc"]), _sort_key(p["ensemble_acc"]), "num"),
            _points_cell(p, "gain_over_best"),
            _points_cell(p, "gain_over_base"),
            _points_cell(p, "ensemble_gain"),
            _cell(_num(p["conversion_rate"]), _sort_key(p["conversion_rate"]), "num"),
        ]
        cls = ' class="best"' if rank == 1 else ""
        rows.append(f'<tr{cls} data-model="{esc(p["other"])}">{"".join(cells)}</tr>')
    best = ranked.iloc[0].to_dict()
    headers = [
        ("Rank", "by ensemble accuracy with the base"),
        ("Model", "the other model"),
        ("Category", "relative to the base"),
        ("Accuracy", "the other model alone"),
        ("Error inconsistency", "with the base"),
        ("Ensemble acc.", "base + this model"),
        (
            "Gain",
            "ensemble accuracy minus the better member's accuracy, in points "
            "[95% paired bootstrap interval]: negative = the pair is worse than its "
            "better model alone",
        ),
        ("Gain over base", "ensemble accuracy minus the base's accuracy, in points"),
        (
            "Gain over members' mean",
            "ensemble accuracy minus the mean of the two "
            "accuracies (the paper's Fig. 2 gain), in points",
        ),
        ("Conversion", "P(ensemble right | exactly one right)"),
    ]
    caption = (
        f'<b>Best sidekick.</b> <span class="name">{esc(best["other"])}</span> gives the base '
        f"the highest ensemble accuracy ({_pct(best['ensemble_acc'])}, base alone "
        f"{_pct(best['acc_base'])}); the top {len(ranked)} are listed."
    )
    return _table("table-sidekick", caption, headers, rows), None


def _points(value) -> str:
    return f"{100 * float(value):+.2f}" if finite(value) else "—"


def _points_cell(p: dict, column: str) -> str:
    """A gain in percentage points with its bootstrap interval when the table has one."""
    value = p.get(column)
    text = _points(value)
    lo, hi = p.get(f"{column}_lo"), p.get(f"{column}_hi")
    if finite(value) and finite(lo) and finite(hi):
        text += f' <span class="ci">[{_points(lo)}, {_points(hi)}]</span>'
    return _cell(text, _sort_key(value), "num")


def greedy_weights(members) -> list[tuple[str, int]]:
    """Distinct greedy members with how often each was added (its weight is count / total:
    selection is with replacement, so a repeat raises a member's weight, never adds a model);
    in order of first addition."""
    counts: dict[str, int] = {}
    for m in members:
        counts[str(m)] = counts.get(str(m), 0) + 1
    return list(counts.items())


def _weights_text(members) -> str:
    weights = greedy_weights(members)
    total = sum(c for _, c in weights)
    listed = ", ".join(f'<span class="name">{esc(n)}</span> {c}/{total}' for n, c in weights)
    return (
        f"{len(weights)} distinct model{'s' if len(weights) != 1 else ''} in {total} "
        f"step{'s' if total != 1 else ''}; weights: {listed}"
    )


def matched_accuracy_rows(results: Results) -> list[dict]:
    """Error inconsistency and κ with the base by category, raw and at matched accuracy
    (``measure.stats.accuracy_adjusted_means``: least squares on category indicators plus
    the other model's accuracy, evaluated at the mean accuracy of the pairs, 95% t
    intervals). Empty when there are no pairs with the base."""
    pairs = results.get("pairs")
    if pairs is None or results.base is None:
        return []
    with_base = pairs_with_base(pairs, results.base)
    if len(with_base) == 0:
        return []
    categories = F.ordered_categories(with_base.category)
    rows: dict[str, dict] = {c: {"category": c} for c in categories}
    for column in ("error_inconsistency", "error_consistency"):
        values = with_base[column].to_numpy(np.float64)
        accuracy = with_base.acc_other.to_numpy(np.float64)
        for c in categories:
            mine = (with_base.category == c).to_numpy() & np.isfinite(values)
            rows[c][f"{column}_raw"] = float(values[mine].mean()) if mine.any() else math.nan
            rows[c]["n"] = int(mine.sum())
        try:
            adjusted = accuracy_adjusted_means(values, with_base.category, accuracy)
        except ZoolensError:
            continue
        for k, c in enumerate(adjusted.categories):
            rows[c].update(
                {
                    column: float(adjusted.mean[k]),
                    f"{column}_lo": float(adjusted.lo[k]),
                    f"{column}_hi": float(adjusted.hi[k]),
                    "at_accuracy": adjusted.at_accuracy,
                    "dof": adjusted.dof,
                }
            )
    return [rows[c] for c in categories]


def _matched_table(results: Results) -> tuple[str | None, str | None]:
    rows = matched_accuracy_rows(results)
    if not rows:
        return None, None  # no pairs with the base: Table 1 already says so
    html_rows = []
    for r in rows:
        cells = [_cell(esc(r["category"]), r["category"]), _cell(str(r["n"]), str(r["n"]), "num")]
        for column, digits in (("error_inconsistency", 4), ("error_consistency", 3)):
            value, lo, hi = r.get(column), r.get(f"{column}_lo"), r.get(f"{column}_hi")
            ci = (
                f' <span class="ci">[{_num(lo, digits)}, {_num(hi, digits)}]</span>'
                if finite(lo) and finite(hi)
                else ""
            )
            cells += [
                _cell(
                    _num(r.get(f"{column}_raw"), digits), _sort_key(r.get(f"{column}_raw")), "num"
                ),
                _cell(_num(value, digits) + ci, _sort_key(value), "num"),
            ]
        html_rows.append(f"<tr>{''.join(cells)}</tr>")
    at = next((r["at_accuracy"] for r in rows if finite(r.get("at_accuracy"))), math.nan)
    dof = next((r["dof"] for r in rows if "dof" in r), 0)
    headers = [
        ("Category", "relative to the base"),
        ("Pairs", "pairs with the base"),
        ("EI", "mean error inconsistency with the base"),
        (
            "EI at matched accuracy",
            "least squares of EI on category + the other "
            "model's accuracy, at the mean accuracy [95% t "
            "interval]",
        ),
        ("κ", "mean error consistency with the base"),
        ("κ at matched accuracy", "the same model for κ [95% t interval]"),
    ]
    caption = (
        "<b>Categories at matched accuracy.</b> A weak model disagrees more with the "
        "base whatever its training (the paper's Fig. 1 plots error inconsistency "
        "against accuracy), so raw category means mix both; here each category is "
        "compared at the same accuracy of the other model "
        f"({_pct(at)}), by a regression with accuracy as a covariate"
        + (
            f" ({dof} residual degrees of freedom)."
            if dof > 0
            else "; too few pairs for intervals."
        )
    )
    return _table("table-matched", caption, headers, html_rows), None


THUMBNAIL_PX = 64
THUMBNAIL_MAX_BYTES = 32 << 20  # an image file larger than this is not embedded
THUMBNAIL_MAX_PIXELS = 50_000_000  # nor one of more pixels (a decompression bomb)


def thumbnail_uri(path: str, root: str | None = None) -> str | None:
    """A small PNG thumbnail of an image file as a data: URI (embedded, so the report stays
    one file that loads nothing), or None when the file cannot be read as an image. The
    image is decoded and re-encoded by Pillow: no byte of the file reaches the page as is.

    drilldown.csv is a file like any other, so its ``image`` column is not trusted: only a
    regular file (never a FIFO or device: it is checked before it is opened) under the
    zoo's image ``root`` (summary.json's, symlinks resolved), at most THUMBNAIL_MAX_BYTES
    and THUMBNAIL_MAX_PIXELS, is embedded; without a root nothing is."""
    import stat

    if not path or not root:
        return None
    try:
        base = Path(root).resolve(strict=True)
        file = Path(path).resolve(strict=True)
        if base.parent == base or base not in file.parents:  # a root of "/" is no limit
            return None
        info = os.stat(file)
        if not stat.S_ISREG(info.st_mode) or info.st_size > THUMBNAIL_MAX_BYTES:
            return None
        from PIL import Image

        with open(file, "rb", opener=_nonblocking) as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                return None  # swapped for a FIFO after the check
            opened = Image.open(handle)
            if opened.size[0] * opened.size[1] > THUMBNAIL_MAX_PIXELS:
                return None
            image = opened.convert("RGB")
            image.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
            scale = max(1, THUMBNAIL_PX // max(image.size))
            if scale > 1:  # tiny images (CIFAR's 32 px): enlarge without blurring
                image = image.resize(
                    (image.size[0] * scale, image.size[1] * scale), Image.Resampling.NEAREST
                )
            buffer = io.BytesIO()
            image.save(buffer, format="PNG")
    except Exception:  # a missing or unreadable image: the row is shown without it
        return None
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _nonblocking(path: str, flags: int) -> int:
    """``open`` that never waits on a FIFO's writer."""
    return os.open(path, flags | getattr(os, "O_NONBLOCK", 0))


def _top3(rows: pd.DataFrame) -> str:
    return "<br>".join(
        f"{esc(r['class_name'])} {_num(r['probability'], 3)}"
        for r in rows.sort_values("rank").to_dict("records")
    )


def _drilldown_table(results: Results) -> tuple[str | None, str | None]:
    """drilldown.csv: the examples only one of the base and its best sidekick gets right."""
    table = results.get("drilldown")
    if table is None or len(table) == 0:
        return None, None  # optional: analyze writes it when there is a sidekick
    a, b = str(table.model_a.iloc[0]), str(table.model_b.iloc[0])
    rows, images = [], 0
    root = (results.summary.get("zoo") or {}).get("image_root")
    root = root if isinstance(root, str) else None
    for example, part in table.groupby("example", sort=False):
        first = part.iloc[0].to_dict()
        uri = (
            thumbnail_uri(str(first.get("image") or ""), root) if "image" in part.columns else None
        )
        images += uri is not None
        picture = (
            f'<img src="{uri}" alt="{esc(first.get("example_id") or example)}" '
            f'width="{THUMBNAIL_PX}" height="{THUMBNAIL_PX}">'
            if uri
            else "—"
        )
        cells = [
            _cell(picture),
            _cell(esc(first.get("example_id") or int(example)), str(int(example)), "name"),
            _cell(esc(first["label_name"])),
            _cell(esc(first["right"]), str(first["right"]), "name"),
            _cell(_top3(part[part.model == a])),
            _cell(_top3(part[part.model == b])),
        ]
        rows.append(f"<tr>{''.join(cells)}</tr>")
    headers = [
        ("Image", "the example's image, when the zoo knows its files"),
        ("Example", "example id (or row number)"),
        ("True class", "label"),
        ("Right", "the one model that is right"),
        (f"{a}: top 3", "classes and calibrated probabilities"),
        (f"{b}: top 3", "classes and calibrated probabilities"),
    ]
    caption = (
        f'<b>Drill-down.</b> Examples only one of the base <span class="name">'
        f'{esc(a)}</span> and its best sidekick <span class="name">{esc(b)}</span> '
        f"gets right ({len(rows)} shown, at most 50: half where each is the right one), "
        f"with each model's top-3 classes and calibrated probabilities"
        + (
            ""
            if images
            else "; no images (the zoo does not know its image files: "
            "collect records them, import takes --image-root)"
        )
        + "."
    )
    return _table("table-drilldown", caption, headers, rows), None


def _greedy_table(results: Results) -> tuple[str | None, str | None]:
    greedy = results.get("greedy")
    if greedy is None or len(greedy) == 0:
        return None, "Greedy ensemble table left out: greedy.csv absent or empty"
    rows = []
    summaries = []
    for start in dict.fromkeys(greedy.start):
        path = greedy[greedy.start == start].sort_values("step")
        kept = path[path.kept]
        for s in kept.to_dict("records"):
            step = str(int(s["step"]))
            cells = [
                _cell(esc(start), str(start), "name"),
                _cell(step, step, "num"),
                _cell(esc(s["added"]), str(s["added"]), "name"),
                _cell(_pct(s["calibration_acc"]), _sort_key(s["calibration_acc"]), "num"),
                _cell(_pct(s["evaluation_acc"]), _sort_key(s["evaluation_acc"]), "num"),
            ]
            rows.append(f"<tr>{''.join(cells)}</tr>")
        if len(kept):
            last = kept.iloc[-1]
            summaries.append(
                f'From <span class="name">{esc(start)}</span>: '
                f"{_weights_text(kept.added)}; evaluation accuracy "
                f"{_pct(last['evaluation_acc'])}"
            )
    headers = [
        ("Start", "model the selection starts from"),
        ("Step", "0 = the start model alone"),
        ("Added", "model added at this step (with replacement)"),
        ("Calibration acc.", "accuracy on the calibration split (chooses the steps)"),
        ("Evaluation acc.", "accuracy on the evaluation split (never used to choose)"),
    ]
    caption = (
        "<b>Greedy ensemble</b> (kept prefix: the steps up to the best calibration "
        "accuracy; models are added with replacement, so a model added k times of n "
        "steps has weight k/n). " + "; ".join(summaries) + "."
    )
    return _table("table-greedy", caption, headers, rows), None


def _soup_table(results: Results) -> tuple[str | None, str | None]:
    """soup.csv: the fine-tuned ingredients and their weight averages (Wortsman et al. 2022)."""
    soup = results.soup
    if soup is None or len(soup) == 0:
        return None, None  # optional: absent says nothing (malformed was noted on reading)
    rows = []
    for s in soup.to_dict("records"):
        members = str(s["members"])
        shown = ", ".join(esc(m) for m in members.split(";") if m) or "—"
        cells = [
            _cell(esc(s["method"]), str(s["method"]), "name"),
            _cell(shown, members),
            _cell(_pct(s["heldout_acc"]), _sort_key(s["heldout_acc"]), "num"),
            _cell(_pct(s["test_acc"]), _sort_key(s["test_acc"]), "num"),
        ]
        rows.append(f"<tr>{''.join(cells)}</tr>")
    headers = [
        ("Method", "an ingredient alone, or a soup (weight average)"),
        ("Members", "the fine-tuned models whose weights are averaged"),
        ("Held-out acc.", "accuracy on the held-out split (chooses the greedy soup)"),
        ("Test acc.", "accuracy on the test split"),
    ]
    caption = (
        "<b>Model soups (Wortsman et al. 2022).</b> Fine-tuned models and averages of "
        "their weights (uniform: all of them; greedy: added while held-out accuracy "
        "does not fall), scored on the held-out and test splits."
    )
    return _table("table-soup", caption, headers, rows), None


def _compact(value) -> str:
    """A JSON value as short plain text (escaped by the caller)."""
    if isinstance(value, float):
        return _num(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, default=str, separators=(",", ":"))
    return "" if value is None else str(value)


def _hparams_text(hparams) -> str:
    """hparams as escaped compact ``k=v, k=v`` text (in the card's order)."""
    if isinstance(hparams, dict):
        # None is a value a reader must see ("max_depth=None"), not an empty "max_depth="
        return (
            ", ".join(
                f"{esc(k)}={esc('None' if v is None else _compact(v))}" for k, v in hparams.items()
            )
            or "—"
        )
    return _text(_compact(hparams))


def _cards_table(results: Results) -> tuple[str | None, str | None]:
    """cards.json: each model's card (zoolens analyze), notes included."""
    cards = results.cards
    if not cards:
        return None, None
    rows = []
    for name, card in cards.items():
        seed = card.get("seed")
        seed_sort = _sort_key(seed) if not isinstance(seed, bool) else ""
        cells = [
            _cell(esc(name), name, "name"),
            _cell(_text(card.get("arch"))),
            _cell(_text(card.get("framework"))),
            _cell(_text(card.get("pretrain_data"))),
            _cell(_text(card.get("head"))),
            _cell(_text(_compact(seed)), seed_sort, "num"),
            _cell(_hparams_text(card.get("hparams")), _compact(card.get("hparams"))),
            _cell(_text(_compact(card.get("notes")))),
        ]
        rows.append(f'<tr data-model="{esc(name)}">{"".join(cells)}</tr>')
    headers = [
        ("Model", "model name as in the zoo"),
        ("Architecture", "arch"),
        ("Method", "training framework"),
        ("Pretraining data", "pretrain_data"),
        ("Head", "classification head"),
        ("Seed", "random seed"),
        ("Hyperparameters", "hparams as key=value"),
        ("Notes", "the card's notes"),
    ]
    caption = (
        "<b>Model cards.</b> What each model of the zoo is, as its card says "
        "(the categories of Table 1 follow from these fields)."
    )
    return _table("table-cards", caption, headers, rows), None


_VERDICT_CLASS = {
    "holds": ("v-holds", "✓"),
    "does not hold": ("v-fails", "✗"),
    "partly": ("v-partly", "≈"),
    "inconclusive": ("v-partly", "?"),
    "not measured": ("v-unmeasured", "–"),
}


def _findings_section(results: Results) -> str:
    """findings.json (zoolens demo): the paper's claims, what this zoo measured, the verdict."""
    findings = results.findings
    if not findings:
        return ""
    rows = []
    for f in findings:
        verdict = f["verdict"].strip()
        cls, mark = _VERDICT_CLASS.get(verdict.lower(), ("v-other", "?"))
        rows.append(
            f'<tr data-key="{esc(f["key"])}"><td class="claim">{_text(f["claim"])}</td>'
            f'<td class="measured">{_text(f["measured"])}</td>'
            f'<td class="decided">{_text(f.get("decided_by") or "not recorded")}</td>'
            f'<td class="verdict {cls}" data-sort="{esc(verdict)}">'
            f'<span class="mark" aria-hidden="true">{mark}</span> {_text(verdict)}</td></tr>'
        )
    headers = [
        ("Claim (Gontijo-Lopes et al. 2021)", "the paper's finding"),
        ("Measured", "what this zoo gives"),
        ("Decided by", "the interval or test the verdict follows from"),
        (
            "Verdict",
            "holds / does not hold only where the interval or test excludes the other side; "
            "partly when parts are decided both ways; else inconclusive (or not measured), "
            "by the fixed rule of zoolens.demo.findings",
        ),
    ]
    caption = (
        "The paper's findings checked on this zoo, each by a fixed rule applied to the "
        "tables of this folder: a claim holds or fails only where its interval or test "
        "decides it, else it is inconclusive."
    )
    return (
        '<section id="findings"><h2>Findings for this zoo</h2>'
        + _table("table-findings", caption, headers, rows, sortable=False)
        + "</section>"
    )


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


def _flat_summary(summary: dict) -> dict:
    """Top-level fields with the "zoo" block (analyze's provenance) opened up."""
    flat = {}
    for key, value in summary.items():
        if key == "zoo" and isinstance(value, dict):
            flat.update({k: v for k, v in value.items()})
        else:
            flat[key] = value
    return flat


def _summary_section(results: Results) -> str:
    flat = _flat_summary(results.summary)
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
        f"{_weights_text(members)}; evaluation accuracy {_pct(v['evaluation_acc'])}"
    )
    if finite(v.get("gain_over_start")):
        text += f" ({100 * float(v['gain_over_start']):+.2f} points over the start alone"
        if finite(v.get("gain_over_start_lo")) and finite(v.get("gain_over_start_hi")):
            text += (
                f", 95% paired bootstrap interval [{_points(v['gain_over_start_lo'])}, "
                f"{_points(v['gain_over_start_hi'])}]"
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


def _headline_section(results: Results) -> str:
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


# ---------------------------------------------------------------- page

_CSS = """
:root{--ink:#1d2327;--mute:#5f6b73;--line:#d9dee2;--accent:#1f5f99;--bg:#fff;--soft:#f5f7f9}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);
 font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1320px;margin:0 auto;padding:28px 24px 60px}
h1{font-size:1.7em;margin:0 0 4px} h2{font-size:1.25em;margin:36px 0 10px;
 border-bottom:1px solid var(--line);padding-bottom:4px}
.sub{color:var(--mute);margin:0 0 18px}
dl.summary{display:grid;grid-template-columns:max-content 1fr;gap:2px 18px;margin:0}
dl.summary dt{color:var(--mute)} dl.summary dd{margin:0;overflow-wrap:anywhere}
details{margin:8px 0} summary{cursor:pointer;color:var(--accent)}
#notes ul{margin:4px 0;padding-left:20px;color:#6b4e00} #notes{background:#fff8e5;
 border:1px solid #f0dca8;border-radius:6px;padding:6px 14px;margin-top:18px}
#notes h2{border:0;margin:6px 0 0;font-size:1em}
figure{margin:26px 0;padding:0} figure svg{display:block;max-width:100%;height:auto}
figcaption{color:var(--ink);margin-top:6px;font-size:.95em}
figcaption .paper,figcaption .shown{color:var(--mute)}
.table-wrap{overflow-x:auto;margin:18px 0}
table{border-collapse:collapse;width:100%;font-size:.9em}
caption{text-align:left;padding:0 0 6px;color:var(--ink)}
th,td{padding:5px 8px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
thead th{background:var(--soft);vertical-align:bottom}
table.sortable thead th{cursor:pointer;user-select:none}
table.sortable thead th::after{content:" \\2195";color:#aab3ba;font-size:.85em}
table.sortable thead th[aria-sort=ascending]::after{content:" \\25B2";color:var(--accent)}
table.sortable thead th[aria-sort=descending]::after{content:" \\25BC";color:var(--accent)}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.name{overflow-wrap:anywhere;font-weight:500} td.name{min-width:9em} .ci{color:var(--mute);font-size:.8em;display:block;white-space:normal}
#table-models th,#table-models td{padding:5px 5px}
.badge{background:var(--accent);color:#fff;border-radius:3px;padding:0 5px;font-size:.75em}
tr.best td{background:#eef6ee}
td.verdict{white-space:nowrap;font-weight:600} td.v-holds{color:#1b6b2a;background:#eef6ee}
td.v-fails{color:#9b1c1c;background:#fdeeee} td.v-partly{color:#7a5300;background:#fff6e0} td.v-unmeasured{color:var(--mute);background:var(--soft)}
table.plain td{font-size:.85em} code{font-size:.85em;overflow-wrap:anywhere}
footer{margin-top:40px;color:var(--mute);font-size:.85em}
"""

# No user string ever goes in here: rows are sorted by their cells' data-sort attributes.
_JS = """
(function () {
  function key(cell) {
    var v = cell.getAttribute('data-sort');
    if (v === null) { v = cell.textContent; }
    v = v.trim();
    if (v === '') { return null; }
    var n = Number(v);
    return isFinite(n) ? n : v.toLowerCase();
  }
  function compare(a, b) {
    if (a === null && b === null) { return 0; }
    if (a === null) { return 1; }
    if (b === null) { return -1; }
    if (typeof a === typeof b) { return a < b ? -1 : (a > b ? 1 : 0); }
    return typeof a === 'number' ? -1 : 1;
  }
  function sortBy(table, column, header) {
    var dir = header.getAttribute('aria-sort') === 'ascending' ? 'descending' : 'ascending';
    var sign = dir === 'ascending' ? 1 : -1;
    table.querySelectorAll('thead th').forEach(function (th) { th.removeAttribute('aria-sort'); });
    header.setAttribute('aria-sort', dir);
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (r1, r2) {
      var a = key(r1.cells[column]), b = key(r2.cells[column]);
      if (a === null || b === null) { return compare(a, b); }
      return sign * compare(a, b);
    });
    rows.forEach(function (row) { body.appendChild(row); });
  }
  document.querySelectorAll('table.sortable').forEach(function (table) {
    table.querySelectorAll('thead th').forEach(function (th, column) {
      th.tabIndex = 0;
      th.addEventListener('click', function () { sortBy(table, column, th); });
      th.addEventListener('keydown', function (e) {
        if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); sortBy(table, column, th); }
      });
    });
  });
})();
"""


# The report's tables in page order: each builder takes the checked Results and returns
# (HTML block or None, note or None). A new section (e.g. from a new table) appends or
# inserts its builder here; the HTML it returns must escape every user string (esc).
TABLE_BUILDERS: list[Callable[[Results], tuple[str | None, str | None]]] = [
    _table1,
    _matched_table,
    _sidekick_table,
    _drilldown_table,
    _greedy_table,
    _soup_table,
    _cards_table,
]


def _csp() -> str:
    digest = base64.b64encode(hashlib.sha256(_JS.encode("utf-8")).digest()).decode("ascii")
    return (
        f"default-src 'none'; script-src 'sha256-{digest}'; style-src 'unsafe-inline'; "
        f"img-src data:; base-uri 'none'; form-action 'none'"
    )


def _title(results: Results) -> str:
    summary = _flat_summary(results.summary)
    for key in ("dataset", "dataset_name"):
        if isinstance(summary.get(key), str) and summary[key]:
            return summary[key]
    zoo = summary.get("path") or summary.get("zoo") or summary.get("zoo_path")
    if isinstance(zoo, str) and zoo.strip("/"):
        return Path(zoo).name
    return results.path.resolve().name


def render_html(
    results: Results,
    figure_blocks: list[str],
    tables: list[str],
    notes: list[str],
    sections: str = "",
) -> str:
    title = _title(results)
    notes_html = ""
    if notes:
        notes_html = (
            '<section id="notes"><h2>Notes: what is left out or odd</h2><ul>'
            + "".join(f"<li>{esc(n)}</li>" for n in notes)
            + "</ul></section>"
        )
    when = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{esc(_csp())}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="zoolens {esc(__version__)}">
<link rel="icon" href="data:,">
<title>zoolens report: {esc(title)}</title>
<style>{_CSS}</style>
</head>
<body>
<main>
<header>
<h1>How differently do these models behave? <span class="name">{esc(title)}</span></h1>
<p class="sub">A zoolens report (after Gontijo-Lopes, Dauphin &amp; Cubuk 2021, “No One
Representation to Rule Them All”), built from <code>{esc(results.path)}</code>.</p>
</header>
{_summary_section(results)}
{_findings_section(results)}
{_headline_section(results)}
{notes_html}
<section id="figures"><h2>Figures</h2>
{"".join(figure_blocks) or "<p>No figure could be drawn from these tables.</p>"}
</section>
<section id="tables"><h2>Tables</h2>
{"".join(tables) or "<p>No table could be built from these tables.</p>"}
</section>
{sections}
<footer>Generated by zoolens {esc(__version__)} on {esc(when)}. This file is self-contained:
it loads nothing from the network.</footer>
</main>
<script>{_JS}</script>
</body>
</html>
"""


def _atomic_write_text(path: Path, text: str) -> None:
    """Write the page crash-safely (``zoolens.atomic``), creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_with(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def png_name(spec: F.FigureSpec) -> str:
    """fig1_error_inconsistency -> fig01_error_inconsistency (sorts in paper order)."""
    head, _, rest = spec.function.__name__.partition("_")
    digits = head[3:]
    return f"fig{int(digits):02d}_{rest}" if digits.isdigit() else rest


def _warn_stderr(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


def build_report(
    results_dir,
    out_path,
    *,
    png_dir=None,
    which: str = "base",
    warn: Callable[[str], None] | None = _warn_stderr,
    progress: Callable[[str], None] | None = None,
) -> ReportResult:
    """Write one self-contained HTML report of the result tables in ``results_dir``.

    Every figure whose data are present is drawn (inline SVG; also PNG in ``png_dir`` if
    given); every missing or bad table becomes a one-line note, in the report and passed to
    ``warn`` (stderr by default). ``which``: "base" (pairs with the base model, as in the
    paper) or "all". Raises ZoolensError when the folder holds no result table at all.
    """
    if which not in ("base", "all"):
        raise ZoolensError(f"--pairs {which!r}: choose 'base' or 'all'")
    out = Path(out_path)
    if out.exists() and out.is_dir():
        raise ZoolensError(f"{out}: is a directory; give a file name such as {out / 'report.html'}")
    results = load_results(results_dir)
    report = ReportResult(path=out)
    notes = list(results.notes)
    if results.summary.get("pairs") == "base":
        notes.append(
            "the analysis measured only the base's pairs (analyze --pairs base): figures over "
            "all pairs show those, the error-consistency matrix is left out"
        )
    png_path = Path(png_dir) if png_dir is not None else None
    if png_path is not None:
        png_path.mkdir(parents=True, exist_ok=True)
    blocks = []
    for spec in F.FIGURES:
        if progress:
            progress(f"drawing {spec.title.lower()}")
        try:
            drawn = F.draw(spec, results, which)
        except F.FigureSkipped as exc:
            reason = f"{spec.title} ({spec.paper}) left out: {exc}"
            report.skipped[spec.key] = str(exc)
            notes.append(reason)
            continue
        notes.extend(drawn.notes)
        prefix = f"zl-{spec.key}"
        svg = figure_svg(drawn.figure, prefix, drawn.tips)
        if png_path is not None:
            file = png_path / f"{png_name(spec)}.png"
            with F.style(), warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=F.MISSING_GLYPH)
                drawn.figure.savefig(file, format="png", dpi=150)
            report.png_files.append(file)
        paper = f"paper {spec.paper}" if spec.paper.startswith("Fig") else spec.paper
        blocks.append(
            f'<figure id="{prefix}" class="zl-figure" data-figure="{esc(spec.key)}">{svg}'
            f'<figcaption id="{prefix}-caption"><b>{esc(spec.title)}</b> '
            f'<span class="paper">({esc(paper)})</span>. {esc(spec.caption)}'
            + (
                f' <span class="shown">({esc("; ".join(drawn.shown))}.)</span>'
                if drawn.shown
                else ""
            )
            + "</figcaption></figure>"
        )
        report.figures.append(spec.key)
        report.figure_data[spec.key] = drawn.data
        drawn.figure.clear()
    tables = []
    for builder in TABLE_BUILDERS:
        block, note = builder(results)
        if block:
            tables.append(block)
        if note:
            notes.append(note)
    # Optional sections from their own tables (absent: nothing said), each self-contained.
    shift_html, shift_notes, shift_data = shift_section(results)
    notes.extend(shift_notes)
    report.figure_data.update(shift_data)
    report.figures.extend(shift_data)
    if not blocks and not tables:
        problems = "; ".join(notes[:3]) or "no usable table"
        raise ZoolensError(f"{results.path}: nothing to report ({problems})")
    report.notes = notes
    if warn:
        for note in notes:
            warn(note)
    # names reach the page through tables and through the figures' SVG text: characters
    # that would reorder or hide text (bidi overrides, zero-width) are shown as escapes
    page = terminal_text(render_html(results, blocks, tables, notes, shift_html))
    _atomic_write_text(out, page)
    return report
