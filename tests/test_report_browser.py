"""The report in a real headless Chromium: offline, no errors, figures and tables visible,
sortable tables, and a model named like an HTML tag shown as text without running anything.
Figure text is real SVG <text>, drawn by the browser: no label runs outside its figure (with
DejaVu Sans and with a narrower fallback font), and a CJK model name is text in the figure's
DOM, found by the browser's find-in-page.

Uses the installed Python playwright with Debian's /usr/bin/chromium (never downloads a
browser); skips with the reason when either is absent. The screenshot is kept in
``tmp_path`` (its path is printed; look at it to check the page reads well).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from _report_fixtures import BASE_NAME, EVIL_NAME, shared_report
from test_report_html import CJK_NAME, cjk_results

CHROMIUM = os.environ.get("ZOOLENS_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
EXPECTED_FIGURES = [
    "fig1",
    "kappa",
    "fig2",
    "fig3",
    "fig4",
    "fig5",
    "fig6",
    "fig7",
    "fig10",
    "fig11",
    "fig12",
    "fig13",
    "reliability",
]
EXPECTED_TABLES = ["table-models", "table-sidekick", "table-greedy"]


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"chromium not found at {CHROMIUM} (install Debian's chromium package)")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright (Python) not installed"
    )
    with sync_api.sync_playwright() as play:
        browser = play.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def report_file():
    return shared_report()[0].path


def _open(browser, path: Path):
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    events = {"failed": [], "console_errors": [], "dialogs": [], "page_errors": [], "requests": []}
    page.on("requestfailed", lambda r: events["failed"].append(r.url))
    page.on("request", lambda r: events["requests"].append(r.url))
    page.on(
        "console", lambda m: events["console_errors"].append(m.text) if m.type == "error" else None
    )
    page.on("pageerror", lambda e: events["page_errors"].append(str(e)))

    def on_dialog(dialog):
        events["dialogs"].append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.goto(path.resolve().as_uri())
    page.wait_for_load_state("load")
    return page, events


def test_report_opens_offline_without_errors_and_shows_everything(browser, report_file, tmp_path):
    page, events = _open(browser, report_file)
    assert events["failed"] == []
    assert events["console_errors"] == []
    assert events["page_errors"] == []
    assert events["dialogs"] == []
    # The only request is the file itself: nothing from any host.
    assert all(url.startswith("file://") for url in events["requests"]), events["requests"]
    for key in EXPECTED_FIGURES:
        figure = page.locator(f'figure[data-figure="{key}"]')
        assert figure.count() == 1, key
        assert figure.locator("svg").is_visible(), key
        box = figure.locator("svg").bounding_box()
        assert box["width"] > 300 and box["height"] > 100, (key, box)
        assert figure.locator("figcaption").inner_text().strip()
    for table_id in EXPECTED_TABLES:
        table = page.locator(f"#{table_id}")
        assert table.is_visible(), table_id
        assert table.locator("tbody tr").count() >= 1, table_id
    assert page.locator("#headline").is_visible()
    assert page.locator("#summary").is_visible()
    shot = tmp_path / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 50_000
    keep = os.environ.get("ZOOLENS_SCREENSHOT")
    if keep:  # to look at it: ZOOLENS_SCREENSHOT=/tmp/report.png pytest ...
        shutil.copy(shot, keep)
    print(f"screenshot: {shot}")
    page.close()


def _column(page, table_id: str, index: int) -> list[str]:
    return page.eval_on_selector_all(
        f"#{table_id} tbody tr",
        f"rows => rows.map(r => r.cells[{index}].getAttribute('data-sort'))",
    )


def test_clicking_a_header_sorts_the_column(browser, report_file):
    page, events = _open(browser, report_file)
    headers = page.locator("#table-models thead th")
    names = [h.strip() for h in headers.all_inner_texts()]
    col = names.index("Accuracy")
    before = _column(page, "table-models", col)
    headers.nth(col).click()
    asc = [float(v) for v in _column(page, "table-models", col)]
    assert asc == sorted(asc) and len(asc) == len(before)
    assert headers.nth(col).get_attribute("aria-sort") == "ascending"
    headers.nth(col).click()
    desc = [float(v) for v in _column(page, "table-models", col)]
    assert desc == sorted(desc, reverse=True)
    # Text column, and empty cells (the base has no EI with itself) always last.
    ei = names.index("Error inconsistency")
    headers.nth(ei).click()
    values = _column(page, "table-models", ei)
    assert values[-1] == "" and [float(v) for v in values[:-1]] == sorted(
        float(v) for v in values[:-1]
    )
    model_col = names.index("Model")
    headers.nth(model_col).click()
    texts = _column(page, "table-models", model_col)
    assert texts == sorted(texts, key=str.lower)
    assert events["console_errors"] == [] and events["page_errors"] == []
    page.close()


def test_model_named_like_a_tag_is_text_and_runs_nothing(browser, report_file):
    page, events = _open(browser, report_file)
    row = page.locator("#table-models tbody tr", has_text=EVIL_NAME)
    assert row.count() == 1
    assert row.locator("td").first.inner_text().strip() == EVIL_NAME
    assert row.is_visible()
    assert page.locator("img").count() == 0  # the name never became an element
    assert page.locator("b", has_text="dog").count() == 0  # nor did a class name
    page.wait_for_timeout(200)
    assert events["dialogs"] == [] and events["page_errors"] == []
    assert BASE_NAME in page.locator("#table-models").inner_text()
    page.close()


def test_model_names_in_figures_are_svg_text(browser, report_file):
    page, events = _open(browser, report_file)
    texts = page.eval_on_selector_all(
        'figure[data-figure="fig7"] svg text', "els => els.map(e => e.textContent)"
    )
    assert any(t.startswith("<img src=x onerror=") for t in texts), texts  # shortened label
    assert ' _CLIP R50 & "quotes"' in texts and BASE_NAME in texts
    assert page.locator("svg img, svg script, svg foreignObject").count() == 0
    page.wait_for_timeout(200)
    assert events["dialogs"] == [] and events["page_errors"] == []
    page.close()


# For each figure, the <text> elements whose box (as Chromium lays it out, rotation included)
# runs more than `tol` CSS pixels past the figure's <svg> box: those letters are cut off.
# (Matplotlib's constrained layout keeps ~2 px between the outermost labels and the edge.)
_OVERFLOW_JS = """([selector, tol]) => {
  const out = [];
  for (const svg of document.querySelectorAll(selector)) {
    const r = svg.getBoundingClientRect();
    for (const t of svg.querySelectorAll('text')) {
      const b = t.getBoundingClientRect();
      if (!t.textContent.trim()) continue;
      const over = Math.max(r.left - b.left, b.right - r.right, r.top - b.top,
                            b.bottom - r.bottom);
      if (over > tol) out.push([svg.closest('figure') ? svg.closest('figure').dataset.figure
                                : '', t.textContent, over]);
    }
  }
  return out;
}"""


def _overflow(page, selector="figure svg", tol=0.5):
    return page.evaluate(_OVERFLOW_JS, [selector, tol])


def _text_width(page) -> float:
    return page.evaluate("""() => [...document.querySelectorAll('figure svg text')]
        .reduce((sum, t) => sum + t.getBoundingClientRect().width, 0)""")


def test_no_figure_label_is_cut_off(browser, report_file):
    """Matplotlib lays text out with DejaVu Sans metrics; the browser draws it: every label
    stays inside its figure, with DejaVu Sans and with Liberation Sans (Arial's metrics, the
    usual fallback where DejaVu is absent), which is narrower."""
    page, _ = _open(browser, report_file)
    assert page.locator("figure svg text").count() > 300
    assert _overflow(page) == []
    dejavu = _text_width(page)
    page.evaluate("""() => document.querySelectorAll('figure svg text').forEach(
        t => t.style.setProperty('font-family', "'Liberation Sans'", 'important'))""")
    liberation = _text_width(page)
    assert liberation < 0.97 * dejavu  # the font did change, and it is narrower
    assert _overflow(page) == []
    page.close()


def test_the_overflow_check_catches_a_cut_off_label(browser):
    """The check above can fail: a label placed past the right edge is reported."""
    from matplotlib.figure import Figure

    from zoolens.report import figures as F
    from zoolens.report.html import figure_svg

    with F.style():
        fig = Figure(figsize=(4, 2))
        fig.text(0.8, 0.5, "a label that runs off the figure")
        fig.text(0.1, 0.5, "fits")
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.set_content(f"<figure>{figure_svg(fig, 't')}</figure>")
    over = _overflow(page)
    assert [text for _, text, _ in over] == ["a label that runs off the figure"]
    assert over[0][2] > 20
    page.close()


def test_cjk_model_name_is_text_in_the_figure_dom(browser, tmp_path):
    from zoolens.report import build_report

    report = build_report(cjk_results(tmp_path), tmp_path / "report.html", warn=None)
    page, events = _open(browser, report.path)
    for key in ("fig7", "reliability"):
        texts = page.eval_on_selector_all(
            f'figure[data-figure="{key}"] svg text', "els => els.map(e => e.textContent)"
        )
        assert CJK_NAME in texts, (key, texts)
    assert f"{CJK_NAME}  [Arch]" in page.eval_on_selector_all(
        'figure[data-figure="fig3"] svg text', "els => els.map(e => e.textContent)"
    )
    # Find-in-page reaches the figure text (the first hits are in earlier figures or tables).
    found_in_svg = page.evaluate(
        """(name) => {
        for (let i = 0; i < 50 && window.find(name, true); i++) {
          const node = window.getSelection().anchorNode;
          const el = node && (node.nodeType === 1 ? node : node.parentElement);
          if (el && el.closest('svg')) return el.textContent;
        }
        return null; }""",
        CJK_NAME,
    )
    assert found_in_svg is not None and CJK_NAME in found_in_svg
    # Chromium here has no CJK font and draws these as its fallback boxes: still inside.
    assert _overflow(page) == []
    # Screen readers: the figure's text is in Chromium's accessibility tree (glyph paths
    # gave it nothing); "[Arch]" marks fig3's panel title, which no table has.
    cdp = page.context.new_cdp_session(page)
    exposed = [
        node.get("name", {}).get("value", "")
        for node in cdp.send("Accessibility.getFullAXTree")["nodes"]
        if not node.get("ignored")
    ]
    assert any(CJK_NAME in name and "[Arch]" in name for name in exposed)
    assert "weight w on ResNet-50 (base)" in exposed  # fig11's axis label
    assert events["console_errors"] == [] and events["page_errors"] == []
    page.close()
