"""The report's tables, one builder per table (``TABLE_BUILDERS`` in ``report.html`` lists
them in page order): the paper's Table 1 for this zoo, accuracy-matched pairs, the base's best
sidekicks, the drill-down with image thumbnails, the greedy ensemble, model soups, model
cards, and the paper's findings checked on this zoo. Each returns (HTML block or None, note
or None) and escapes every user string (``markup.esc``)."""

from __future__ import annotations
from __future__ import annotations

import base64
import io
import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd

from zoolens.errors import ZoolensError
from zoolens.measure.stats import accuracy_adjusted_means
from zoolens.report import figures as F
from zoolens.report.markup import cell as _cell
from zoolens.report.markup import esc
from zoolens.report.markup import num as _num
from zoolens.report.markup import pct as _pct
from zoolens.report.markup import sort_key as _sort_key
from zoolens.report.markup import table as _table
from zoolens.report.tables import Results, finite, pairs_with_base

# ---------------------------------------------------------------- formatting helpers


def cell_text(value) -> str:
    """A card field as escaped text; "—" when it is empty."""
    text = "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)
    return esc(text) if text.strip() else "—"


# ---------------------------------------------------------------- tables


def table1_section(results: Results) -> tuple[str | None, str | None]:
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
            _cell(cell_text(m["arch"])),
            _cell(cell_text(m["framework"])),
            _cell(cell_text(m.get("pretrain_data"))),
            _cell(cell_text(m["head"])),
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


def sidekick_table(results: Results, top: int = 5) -> tuple[str | None, str | None]:
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


def points(value) -> str:
    return f"{100 * float(value):+.2f}" if finite(value) else "—"


def _points_cell(p: dict, column: str) -> str:
    """A gain in percentage points with its bootstrap interval when the table has one."""
    value = p.get(column)
    text = points(value)
    lo, hi = p.get(f"{column}_lo"), p.get(f"{column}_hi")
    if finite(value) and finite(lo) and finite(hi):
        text += f' <span class="ci">[{points(lo)}, {points(hi)}]</span>'
    return _cell(text, _sort_key(value), "num")


def greedy_weights(members) -> list[tuple[str, int]]:
    """Distinct greedy members with how often each was added (its weight is count / total:
    selection is with replacement, so a repeat raises a member's weight, never adds a model);
    in order of first addition."""
    counts: dict[str, int] = {}
    for m in members:
        counts[str(m)] = counts.get(str(m), 0) + 1
    return list(counts.items())


def weights_text(members) -> str:
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


def matched_table(results: Results) -> tuple[str | None, str | None]:
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


def drilldown_table(results: Results) -> tuple[str | None, str | None]:
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


def greedy_table(results: Results) -> tuple[str | None, str | None]:
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
                f"{weights_text(kept.added)}; evaluation accuracy "
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


def soup_table(results: Results) -> tuple[str | None, str | None]:
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
    return cell_text(_compact(hparams))


def cards_table(results: Results) -> tuple[str | None, str | None]:
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
            _cell(cell_text(card.get("arch"))),
            _cell(cell_text(card.get("framework"))),
            _cell(cell_text(card.get("pretrain_data"))),
            _cell(cell_text(card.get("head"))),
            _cell(cell_text(_compact(seed)), seed_sort, "num"),
            _cell(_hparams_text(card.get("hparams")), _compact(card.get("hparams"))),
            _cell(cell_text(_compact(card.get("notes")))),
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


def findings_section(results: Results) -> str:
    """findings.json (zoolens demo): the paper's claims, what this zoo measured, the verdict."""
    findings = results.findings
    if not findings:
        return ""
    rows = []
    for f in findings:
        verdict = f["verdict"].strip()
        cls, mark = _VERDICT_CLASS.get(verdict.lower(), ("v-other", "?"))
        rows.append(
            f'<tr data-key="{esc(f["key"])}"><td class="claim">{cell_text(f["claim"])}</td>'
            f'<td class="measured">{cell_text(f["measured"])}</td>'
            f'<td class="decided">{cell_text(f.get("decided_by") or "not recorded")}</td>'
            f'<td class="verdict {cls}" data-sort="{esc(verdict)}">'
            f'<span class="mark" aria-hidden="true">{mark}</span> {cell_text(verdict)}</td></tr>'
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
