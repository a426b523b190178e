"""Checks every report must pass, on any zoo (issue 15): no empty figure, no figure whose
numbers are all zero, κ present, and every interval quoted in the page equal to the tables."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

INTERVAL = re.compile(
    r"\[([+\-]?\d+(?:\.\d+)?(?:e[+\-]?\d+)?%?), "
    r"([+\-]?\d+(?:\.\d+)?(?:e[+\-]?\d+)?%?)\]"
)


def _numbers(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _numbers(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _numbers(v)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield float(value)


def assert_no_empty_or_zero_figure(report) -> None:
    """Every drawn figure plotted some finite, non-zero number (its ``figure_data``)."""
    for key in report.figures:
        values = [v for v in _numbers(report.figure_data[key]) if math.isfinite(v)]
        assert values, f"figure {key} has no finite number"
        assert any(v != 0 for v in values), f"figure {key} plots only zeros"


def _formats(v: float) -> set[str]:
    out = {
        f"{100 * v:.2f}%",
        f"{100 * v:.2f}",
        f"{100 * v:+.2f}",
        f"{v:.2f}",
        f"{v:.3f}",
        f"{v:.4f}",
    }
    if v != 0 and abs(v) < 1e-3:
        out.add(f"{v:.3g}")
    return out


def _pairs_of_bounds(obj, found: list) -> None:
    """Every (lo, hi) in a JSON value: keys lo/hi or X_lo/X_hi side by side."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key.endswith("lo") and isinstance(value, (int, float)):
                hi = obj.get(key[:-2] + "hi")
                if isinstance(hi, (int, float)):
                    found.append((float(value), float(hi)))
            _pairs_of_bounds(value, found)
    elif isinstance(obj, list):
        for value in obj:
            _pairs_of_bounds(value, found)


def table_intervals(results_dir: Path) -> set[tuple[str, str]]:
    """Every interval the tables hold, in every format the report or the demo prints."""
    bounds: list[tuple[float, float]] = []
    for name in ("summary.json", "findings.json"):
        if (results_dir / name).is_file():
            _pairs_of_bounds(json.loads((results_dir / name).read_text()), bounds)
    for name in ("models.csv", "pairs.csv"):
        if not (results_dir / name).is_file():
            continue
        table = pd.read_csv(results_dir / name, keep_default_na=False, na_values=[""])
        for column in table.columns:
            if column.endswith("_lo") and column[:-3] + "_hi" in table.columns:
                bounds += list(
                    zip(table[column].astype(float), table[column[:-3] + "_hi"].astype(float))
                )
    bounds += matched_intervals(results_dir)
    out = set()
    for lo, hi in bounds:
        if math.isfinite(lo) and math.isfinite(hi):
            out |= {(a, b) for a in _formats(lo) for b in _formats(hi)}
    return out


def matched_intervals(results_dir: Path) -> list[tuple[float, float]]:
    """The accuracy-matched category intervals, recomputed from pairs.csv here."""
    from zoolens.errors import ZoolensError
    from zoolens.measure.stats import accuracy_adjusted_means

    summary = json.loads((results_dir / "summary.json").read_text())
    pairs = pd.read_csv(
        results_dir / "pairs.csv",
        keep_default_na=False,
        na_values=[""],
        dtype={"model_a": str, "model_b": str, "category": str},
    )
    base = summary["base"]
    mine = pairs[(pairs.model_a == base) ^ (pairs.model_b == base)]
    other = np.where(mine.model_a == base, mine.acc_b, mine.acc_a).astype(float)
    out = []
    for column in ("error_inconsistency", "error_consistency"):
        try:
            fit = accuracy_adjusted_means(mine[column].to_numpy(float), mine.category, other)
        except ZoolensError:
            continue
        out += list(zip(fit.lo, fit.hi))
    return out


def assert_quoted_intervals_match(text: str, results_dir: Path) -> int:
    """Every "[lo, hi]" in ``text`` is an interval of the tables; returns how many."""
    known = table_intervals(results_dir)
    quoted = INTERVAL.findall(text)
    unknown = [q for q in quoted if q not in known]
    assert not unknown, f"intervals not in the tables: {unknown[:5]}"
    return len(quoted)


def check_page(browser, report, results_dir: Path) -> str:
    """Open the report in Chromium and run every check; returns the page's text."""
    assert_no_empty_or_zero_figure(report)
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(Path(report.path).resolve().as_uri())
    page.wait_for_load_state("load")
    assert errors == []
    for key in report.figures:
        svg = page.locator(f'figure[data-figure="{key}"] svg')
        box = svg.bounding_box()
        assert box and box["width"] > 100 and box["height"] > 80, (key, box)
        # something is drawn: lines, markers or patches besides the axes
        assert svg.locator("path, use").count() > 4, key
    for key, reason in report.skipped.items():
        assert reason.strip(), key
    headers = page.eval_on_selector_all("#table-models thead th", "hs => hs.map(h => h.innerText)")
    assert any(h.strip().startswith("κ") for h in headers), headers  # κ in Table 1
    text = page.inner_text("body")
    assert "κ" in text
    # the model cards are the users' own words ("pixels in [0, 1]"), not quoted results
    quoted = page.evaluate(
        "() => { const b = document.body.cloneNode(true); "
        "b.querySelectorAll('#table-cards').forEach(e => e.remove()); "
        "return b.textContent; }"
    )
    assert_quoted_intervals_match(quoted, results_dir)
    # Table 1 fits the page: no horizontal overflow at 1,400 px
    overflow = page.evaluate(
        "() => { const w = document.querySelector('#table-models')"
        ".closest('.table-wrap'); return w.scrollWidth - w.clientWidth; }"
    )
    assert overflow <= 1, overflow
    page.close()
    return text
