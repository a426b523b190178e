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
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


from zoolens import __version__
from zoolens.atomic import atomic_write_with
from zoolens.errors import ZoolensError
from zoolens.progress import terminal_text
from zoolens.report import figures as F
from zoolens.report.markup import esc, figure_svg
from zoolens.report.shift import shift_section
from zoolens.report.headline import (
    MIN_CORRELATION_PAIRS,
    correlation_text,
    flat_summary,
    headline_section,
    summary_section,
)
from zoolens.report.sections import (
    THUMBNAIL_MAX_BYTES,
    THUMBNAIL_MAX_PIXELS,
    THUMBNAIL_PX,
    cards_table,
    drilldown_table,
    findings_section,
    greedy_table,
    greedy_weights,
    matched_accuracy_rows,
    matched_table,
    sidekick_table,
    soup_table,
    table1_section,
    thumbnail_uri,
)
from zoolens.report.tables import Results, load_results

# the helpers below stay importable from here (tests, other modules)
__all__ = [
    "MIN_CORRELATION_PAIRS",
    "ReportResult",
    "TABLE_BUILDERS",
    "THUMBNAIL_MAX_BYTES",
    "THUMBNAIL_MAX_PIXELS",
    "THUMBNAIL_PX",
    "build_report",
    "correlation_text",
    "figure_svg",
    "greedy_weights",
    "matched_accuracy_rows",
    "png_name",
    "render_html",
    "thumbnail_uri",
]


@dataclass
class ReportResult:
    path: Path
    figures: list[str] = field(default_factory=list)  # keys drawn, in page order
    skipped: dict[str, str] = field(default_factory=dict)  # key -> reason
    notes: list[str] = field(default_factory=list)  # everything noted (also on stderr)
    png_files: list[Path] = field(default_factory=list)
    figure_data: dict[str, dict] = field(default_factory=dict)


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
    table1_section,
    matched_table,
    sidekick_table,
    drilldown_table,
    greedy_table,
    soup_table,
    cards_table,
]


def _csp() -> str:
    digest = base64.b64encode(hashlib.sha256(_JS.encode("utf-8")).digest()).decode("ascii")
    return (
        f"default-src 'none'; script-src 'sha256-{digest}'; style-src 'unsafe-inline'; "
        f"img-src data:; base-uri 'none'; form-action 'none'"
    )


def _title(results: Results) -> str:
    summary = flat_summary(results.summary)
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
{summary_section(results)}
{findings_section(results)}
{headline_section(results)}
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
