"""The report's HTML building blocks: escaping, figures as inline SVG, number formats, table
cells and tables. ``report.html`` (the page) and ``report.shift`` (its shift section) both
build on them; this module imports neither.
"""

from __future__ import annotations

import html
import io
import re
import warnings

from zoolens.progress import terminal_text
from zoolens.report import figures as F
from zoolens.report.tables import finite


def esc(value) -> str:
    """Escape any value for HTML text and attribute values (quotes included); characters
    that act instead of showing (bidi overrides that reorder a line, zero-width spaces,
    control characters) are shown as their escapes (``\\u202e``), as on the terminal."""
    return html.escape(terminal_text(str(value)), quote=True)


# ---------------------------------------------------------------- figures as inline SVG

_ID = re.compile(r'\bid="([^"]+)"')


def figure_svg(fig, prefix: str, tips: dict[str, str] | None = None) -> str:
    """The figure as an inline <svg> element: no XML prolog, no comments, ids made unique.

    Text is real SVG ``<text>`` (``svg.fonttype`` "none", see ``figures.RC``); matplotlib
    escapes &, < and > in it (quotes need no escape in element text), so a model name is text
    and never markup. Comments and metadata are dropped, and matplotlib's clip paths and
    markers get ids that repeat across figures: every id and reference is prefixed, so many
    figures share one page.
    """
    buffer = io.StringIO()
    with F.style(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=F.MISSING_GLYPH)
        fig.savefig(
            buffer,
            format="svg",
            metadata={"Date": None, "Creator": None, "Format": None, "Type": None},
        )
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg") :]
    svg = re.sub(r"<!--.*?-->", "", svg, flags=re.S)
    svg = re.sub(r"<metadata>.*?</metadata>", "", svg, flags=re.S)
    ids = set(_ID.findall(svg))
    if ids:
        pattern = re.compile(
            r'(\bid="|url\(#|href="#)('
            + "|".join(re.escape(i) for i in sorted(ids, key=len, reverse=True))
            + r')(?=[")])'
        )
        svg = pattern.sub(lambda m: f"{m.group(1)}{prefix}-{m.group(2)}", svg)
    svg = svg.replace("<svg ", f'<svg role="img" aria-labelledby="{prefix}-caption" ', 1)
    for gid, tip in (tips or {}).items():
        # an SVG <title> as the group's first child is the browser's hover text
        opening = f'<g id="{prefix}-{gid}">'
        svg = svg.replace(opening, f"{opening}<title>{esc(tip)}</title>", 1)
    return svg


# ---------------------------------------------------------------- formatting helpers


def num(value, digits: int = 4) -> str:
    if not finite(value):
        return "—"
    v = float(value)
    if v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-3):
        return f"{v:.3g}"
    return f"{v:.{digits}f}"


def pct(value) -> str:
    return f"{100 * float(value):.2f}%" if finite(value) else "—"


def sort_key(value) -> str:
    return repr(float(value)) if finite(value) else ""


def cell(text: str, sort=None, cls: str = "") -> str:
    attrs = f' data-sort="{esc(sort)}"' if sort is not None else ""
    attrs += f' class="{cls}"' if cls else ""
    return f"<td{attrs}>{text}</td>"


def table(
    table_id: str,
    caption: str,
    headers: list[tuple[str, str]],
    rows: list[str],
    sortable: bool = True,
) -> str:
    head = "".join(f'<th scope="col" title="{esc(tip)}">{esc(name)}</th>' for name, tip in headers)
    cls = ' class="sortable"' if sortable else ""
    hint = " Click a column header to sort." if sortable else ""
    return (
        f'<div class="table-wrap"><table id="{esc(table_id)}"{cls}>'
        f"<caption>{caption}{esc(hint)}</caption>"
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )
