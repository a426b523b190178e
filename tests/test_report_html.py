"""The HTML page (zoolens.report.html.build_report): self-contained, escaped, robust to bad input.

The browser test (test_report_browser.py) checks what a reader sees; these check the file
itself: no network reference anywhere, every user string escaped (also inside the SVG and in
attributes), nothing of a user string inside the script, the CSP hash matching the script,
one unique id per element, notes for what is missing, and the real CIFAR-10 outputs.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import shutil
import warnings
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from _report_fixtures import (
    BASE_NAME,
    CLASS_GROUPS,
    EVIL_NAME,
    Card,
    shared_report,
    shared_results_dir,
    write_results_from_scores,
)
from conftest import shared_path
from zoolens.errors import ZoolensError
from zoolens.report import build_report
from zoolens.report.figures import FIGURES

ALL_KEYS = [spec.key for spec in FIGURES]


@pytest.fixture(scope="module")
def results_dir():
    return shared_results_dir()


@pytest.fixture(scope="module")
def built():
    return shared_report()


class _Collector(HTMLParser):
    """Tags, attributes, text and script bodies as a browser's parser sees them."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags, self.attrs, self.text, self.scripts = [], [], [], []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.extend(attrs)
        self._in_script = tag == "script"

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        (self.scripts if self._in_script else self.text).append(data)


def parse(page: str) -> _Collector:
    collector = _Collector()
    collector.feed(page)
    return collector


def test_every_figure_and_table_is_in_the_page(built):
    report, page = built
    assert report.figures == ALL_KEYS and report.skipped == {}
    for key in ALL_KEYS:
        assert page.count(f'data-figure="{key}"') == 1
    for table in ("table-models", "table-sidekick", "table-greedy"):
        assert f'id="{table}"' in page
    assert page.count("<svg") == len(ALL_KEYS)
    assert len(report.png_files) == len(ALL_KEYS)
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in report.png_files)


def test_no_reference_to_any_other_host(built):
    _, page = built
    parsed = parse(page)
    for name, value in parsed.attrs:
        if name in ("src", "href", "xlink:href", "action", "poster", "data"):
            assert value is None or value.startswith(("#", "data:")), (name, value)
    # Only the SVG/XLink namespace names may mention http (they are never fetched).
    for url in re.findall(r"https?://[^\s\"'<>)]+", page):
        assert url in ("http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"), url
    assert "@import" not in page and "url(http" not in page
    assert set(parsed.tags) & {"link", "script", "img", "iframe", "object", "embed"} <= {
        "link",
        "script",
    }
    assert page.count("<script") == 1
    assert re.findall(r"<link [^>]*>", page) == ['<link rel="icon" href="data:,">']


def test_user_strings_are_escaped_everywhere(built):
    _, page = built
    assert EVIL_NAME not in page  # never raw, not in text, attribute, SVG or comment
    assert "<b>dog</b>" not in page and "animals & <pets>" not in page
    assert "synthetic <six> classes" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    parsed = parse(page)
    assert "img" not in parsed.tags and "b" in parsed.tags  # our own <b>, never theirs
    text = "".join(parsed.text)
    assert EVIL_NAME in text  # shown as text
    assert 'data-model="&lt;img src=x onerror=alert(1)&gt;"' in page  # attributes too
    assert "_CLIP R50 &amp; &quot;quotes&quot;" in page
    assert "<!--" not in page  # matplotlib's text comments are dropped
    assert not any(name.startswith("on") for name, _ in parsed.attrs)
    fig7 = _figure_texts(page, "fig7")  # names are SVG text (escaped), not paths
    assert any(t.startswith("<img src=x onerror=") for t in fig7)
    assert ' _CLIP R50 & "quotes"' in fig7
    assert "&lt;b&gt;dog&lt;/b&gt;</text>" in page  # a class name in fig4's tick labels


def test_script_holds_no_user_string_and_matches_the_csp_hash(built):
    _, page = built
    [script] = parse(page).scripts
    for needle in ("alert", "ResNet", "img", "dog"):
        assert needle not in script
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    import html as _html

    csp = _html.unescape(
        re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page).group(1)
    )
    assert f"'sha256-{digest}'" in csp and "default-src 'none'" in csp


def test_element_ids_are_unique(built):
    _, page = built
    ids = re.findall(r'\sid="([^"]+)"', page)
    assert len(ids) == len(set(ids))
    # every internal reference points at an id of the page
    refs = set(re.findall(r'(?:url\(#|href="#)([^")]+)', page))
    assert refs <= set(ids)


def test_headline_summary_and_sidekick_follow_the_tables(built, results_dir):
    _, page = built
    summary = json.loads((results_dir / "summary.json").read_text())
    best = summary["headline"]["best_sidekick"]
    text = " ".join("".join(parse(page).text).split())
    assert f"Best sidekick: {best['model']} ({best['category']})" in text
    assert f"ensemble accuracy {100 * best['ensemble_acc']:.2f}%" in text
    pairs = pd.read_csv(results_dir / "pairs.csv", keep_default_na=False, na_values=[""])
    mine = pairs[pairs.model_a == BASE_NAME].sort_values("ensemble_acc", ascending=False)
    sidekick_rows = re.findall(
        r'<tr(?: class="best")? data-model="([^"]+)"',
        page.split('id="table-sidekick"')[1].split("</table>")[0],
    )
    import html as _html

    assert [_html.unescape(r) for r in sidekick_rows] == mine.model_b.head(5).tolist()
    assert "Mean error inconsistency with the base by category: Reinit" in text
    assert "CLIP ViT-B/32 (WIT): temperature at a bound (fixture)" in text  # analysis notes


def test_table1_rows_and_values(built, results_dir):
    _, page = built
    table = page.split('id="table-models"')[1].split("</table>")[0]
    models = pd.read_csv(results_dir / "models.csv", keep_default_na=False, na_values=[""])
    import html as _html

    rows = [_html.unescape(r) for r in re.findall(r'<tr data-model="([^"]+)"', table)]
    assert rows[0] == BASE_NAME and sorted(rows) == sorted(models.model)
    # category order after the base: Reinit ... Dataset
    category = dict(zip(models.model, models.category))
    order = ["Reinit", "HParam", "Arch", "Framework", "Dataset"]
    assert [order.index(category[r]) for r in rows[1:]] == sorted(
        order.index(category[r]) for r in rows[1:]
    )
    acc = dict(zip(models.model, models.accuracy))
    body = table.split("<tbody>")[1]
    cells = [re.findall(r"<td[^>]*>", row) for row in body.split("</tr>")[:-1]]
    assert all(len(c) == 11 for c in cells)
    accuracy = [float(re.search(r'data-sort="([^"]*)"', c[6]).group(1)) for c in cells]
    assert accuracy == pytest.approx([acc[r] for r in rows])
    # κ with the base (column 8) equals pairs.csv's error_consistency, the base's own is blank
    pairs = pd.read_csv(results_dir / "pairs.csv", keep_default_na=False, na_values=[""])
    kappa = {}
    for a, b, k in zip(pairs.model_a, pairs.model_b, pairs.error_consistency):
        if BASE_NAME in (a, b) and a != b:
            kappa.setdefault(b if a == BASE_NAME else a, k)
    shown = [re.search(r'data-sort="([^"]*)"', c[8]).group(1) for c in cells]
    assert shown[0] == ""
    assert [float(v) for v in shown[1:]] == pytest.approx([kappa[r] for r in rows[1:]])


def test_kappa_intervals_in_table1_and_the_matrix_hover(built, results_dir):
    """Issue 27: every κ the report shows carries pairs.csv's interval — in Table 1's cell
    and as the hover text (an SVG <title>) of its κ-matrix cell."""
    import html as _html

    _, page = built
    pairs = pd.read_csv(results_dir / "pairs.csv", keep_default_na=False, na_values=[""])
    table = page.split('id="table-models"')[1].split("</table>")[0]
    matrix = page.split('data-figure="kappa"')[1].split("</figure>")[0]
    tips = [_html.unescape(t) for t in re.findall(r"<title>([^<]*)</title>", matrix)]
    m = len(set(pairs.model_a) | set(pairs.model_b))
    assert len(tips) == m * (m - 1)  # every off-diagonal cell, both triangles
    for row in pairs.itertuples():
        lo, hi = f"{row.error_consistency_lo:.3f}", f"{row.error_consistency_hi:.3f}"
        tip = f"κ = {row.error_consistency:.3f} [{lo}, {hi}] (95% bootstrap"
        assert sum(t.startswith(f"{row.model_a} × {row.model_b}: {tip}") for t in tips) == 1
        if BASE_NAME in (row.model_a, row.model_b):
            assert f'<span class="ci">[{lo}, {hi}]</span>' in table
    assert "hover text gives the pair&#x27;s κ with its 95% bootstrap interval" in matrix


def test_missing_and_bad_tables_are_noted_in_page_and_stderr(results_dir, tmp_path, capsys):
    folder = tmp_path / "r"
    shutil.copytree(results_dir, folder)
    (folder / "theta.csv").unlink()
    pairs = pd.read_csv(folder / "pairs.csv")
    pairs.drop(columns=["conversion_rate"]).to_csv(folder / "pairs.csv", index=False)
    (folder / "cka.json").write_text(json.dumps({"table_version": 99}))
    out = tmp_path / "report.html"
    report = build_report(folder, out)
    err = capsys.readouterr().err
    page = out.read_text()
    for message in (
        "theta.csv",
        "pairs.csv: missing column(s) conversion_rate",
        "cka.json: table_version 99",
    ):
        assert message in err and message in page
    assert all(line.startswith("warning: ") for line in err.strip().splitlines())
    assert {"fig1", "fig2", "fig3", "fig10", "fig13"} <= set(report.skipped)
    assert {"fig4", "fig5", "fig6", "reliability"} <= set(report.figures)
    assert 'id="table-models"' in page and 'id="table-sidekick"' not in page


def test_a_folder_of_only_bad_tables_is_an_error(tmp_path):
    (tmp_path / "pairs.csv").write_text("foo,bar\n1,2\n")
    with pytest.raises(ZoolensError, match="nothing to report"):
        build_report(tmp_path, tmp_path / "report.html", warn=None)
    assert not (tmp_path / "report.html").exists()


def test_output_path_that_is_a_folder_is_an_error(results_dir, tmp_path):
    with pytest.raises(ZoolensError, match="is a directory"):
        build_report(results_dir, tmp_path, warn=None)


def _load_real(name):
    path = shared_path("cifar10-probs", name)
    with np.load(path) as npz:
        probs = npz["predictions"] if "predictions" in npz else npz["probs"]
        labels = npz["ground_truth"] if "ground_truth" in npz else npz["labels"]
    return probs.astype(np.float64), labels.astype(np.int64)


def test_real_cifar10_models(tmp_path):
    """Three real CIFAR-10 models' probabilities -> tables -> report; Fig. 1's error
    inconsistency equals the one computed here straight from the published probabilities."""
    lenet, y = _load_real("lenet-5-cifar-10.npz")
    wrn, y2 = _load_real("wideresnet-16-4-cifar-10.npz")
    vgg, y3 = _load_real("vgg16-keras-cifar-10.npz")
    assert np.array_equal(y, y2) and np.array_equal(y, y3)
    scores = {"WRN-16-4": np.log(wrn), "LeNet-5": np.log(lenet), "VGG-16 (Keras)": np.log(vgg)}
    cards = {
        "WRN-16-4": Card("WRN-16-4", "wrn16-4", "wideresnet", "pytorch", "CIFAR-10"),
        "LeNet-5": Card("LeNet-5", "lenet5", "lenet", "pytorch", "CIFAR-10"),
        "VGG-16 (Keras)": Card("VGG-16 (Keras)", "vgg16", "vgg", "keras", "CIFAR-10"),
    }
    classes = [
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ]
    cal = np.random.default_rng(0).choice(len(y), 2000, replace=False)
    folder = write_results_from_scores(
        tmp_path / "results",
        scores,
        y,
        cards,
        "WRN-16-4",
        calibration_index=cal,
        class_names=classes,
        class_groups={"vehicles": [0, 1, 8, 9], "animals": [2, 3, 4, 5, 6, 7]},
        greedy_steps=3,
    )
    report = build_report(folder, tmp_path / "report.html", warn=None)
    assert {"fig1", "fig2", "fig3", "fig4", "fig5", "fig12", "reliability"} <= set(report.figures)
    ev = np.setdiff1d(np.arange(len(y)), cal)
    right = {
        name: (np.argmax(p, 1) == y)[ev]
        for name, p in (("LeNet-5", lenet), ("VGG-16 (Keras)", vgg), ("WRN-16-4", wrn))
    }
    fig1 = report.figure_data["fig1"]["error_inconsistency"]
    assert fig1["Framework"]["models"] == ["VGG-16 (Keras)"]
    assert fig1["Framework"]["values"][0] == pytest.approx(
        np.mean(right["WRN-16-4"] ^ right["VGG-16 (Keras)"])
    )
    assert fig1["Arch"]["values"][0] == pytest.approx(np.mean(right["WRN-16-4"] ^ right["LeNet-5"]))
    # Published accuracies (shared/data README) appear in Table 1's accuracy_all column.
    models = pd.read_csv(folder / "models.csv").set_index("model")
    assert models.loc["LeNet-5", "accuracy_all"] == pytest.approx(0.5308, abs=1e-4)
    assert models.loc["WRN-16-4", "accuracy_all"] == pytest.approx(0.9109, abs=1e-4)
    assert CLASS_GROUPS  # the fixture's groups are independent of these


SVG = "{http://www.w3.org/2000/svg}"
CJK_NAME = "模型-甲"
RENAMED = "EfficientNet-B0"  # shown in fig3's titles, fig7's labels and a reliability panel
NASTY = "x--><script>alert(1)</script><!-- & \"dq\" 'sq' &amp;"


def _nasty_figure():
    from matplotlib.figure import Figure

    from zoolens.report import figures as F

    with F.style():
        fig = Figure()
        ax = fig.subplots()
        ax.set_title(NASTY)
        ax.plot([0, 1], [0, 1], label="--> <b>hi</b>")
        ax.plot([0, 1], [1, 0], label=CJK_NAME)
        ax.legend()
    return fig


def test_figure_svg_text_is_escaped_svg_text_never_markup():
    """svg.fonttype "none": user strings are <text> content, escaped by matplotlib (&, <, >),
    read back verbatim by an XML parser and by an HTML parser (as the page is parsed)."""
    import xml.etree.ElementTree as ET

    from zoolens.report.html import figure_svg

    svg = figure_svg(_nasty_figure(), "t")
    assert svg.startswith("<svg ") and svg.rstrip().endswith("</svg>")
    for needle in ("<script", "<b>", "<!--", "-->"):
        assert needle not in svg
    root = ET.fromstring(svg)  # well-formed XML
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert NASTY in texts and "--> <b>hi</b>" in texts and CJK_NAME in texts
    assert {el.tag.removeprefix(SVG) for el in root.iter()} <= {
        "svg",
        "defs",
        "style",
        "g",
        "path",
        "use",
        "clipPath",
        "rect",
        "text",
    }
    parsed = parse(svg)
    assert not {"script", "b"} & set(parsed.tags)
    assert NASTY in parsed.text and CJK_NAME in parsed.text
    ids = re.findall(r'\sid="([^"]+)"', svg)
    assert ids and all(i.startswith("t-") for i in ids)


def test_figure_svg_fonts_are_the_browsers_and_output_is_deterministic():
    """Every text names DejaVu Sans, then the generic sans-serif; no glyph outlines, no
    @font-face, nothing to fetch; the same figure gives the same bytes (svg.hashsalt)."""
    from zoolens.report.html import figure_svg

    first, second = figure_svg(_nasty_figure(), "t"), figure_svg(_nasty_figure(), "t")
    assert first == second
    families = set(re.findall(r"font-family: ([^;\"]+)", first))
    assert families == {"'DejaVu Sans', sans-serif"}
    assert first.count("<text ") >= 10  # tick labels, title, legend
    assert "DejaVuSans-" not in first  # no glyph paths (svg.fonttype "path" writes these)
    assert "@font-face" not in first and "url(" not in first.replace("url(#t-", "")


def cjk_results(tmp_path) -> Path:
    """The shared synthetic results with one model renamed to a CJK name."""
    folder = tmp_path / "cjk"
    shutil.copytree(shared_results_dir(), folder)
    for file in [*folder.glob("*.csv"), *folder.glob("*.json")]:
        text = file.read_text(encoding="utf-8")
        file.write_text(text.replace(RENAMED, CJK_NAME), encoding="utf-8")
    return folder


def _figure_texts(page: str, key: str) -> list[str]:
    import html as _html

    svg = re.search(rf'data-figure="{key}"><svg .*?</svg>', page, re.S).group(0)
    return [_html.unescape(t) for t in re.findall(r"<text [^>]*>([^<]*)</text>", svg)]


def test_cjk_model_name_is_text_in_the_figures_without_glyph_warnings(tmp_path, capsys):
    from matplotlib.figure import Figure

    # Precondition that makes the check meaningful: DejaVu Sans lacks these glyphs and
    # matplotlib warns about each one when left alone.
    fig = Figure()
    fig.text(0.5, 0.5, CJK_NAME)
    with pytest.warns(UserWarning, match="missing from font"):
        fig.savefig(io.BytesIO(), format="svg")
    folder = cjk_results(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = build_report(folder, tmp_path / "report.html", png_dir=tmp_path / "png", warn=None)
    assert [str(w.message) for w in caught if "missing from font" in str(w.message)] == []
    assert "Glyph" not in capsys.readouterr().err
    page = report.path.read_text(encoding="utf-8")
    assert RENAMED not in page
    assert f"{CJK_NAME}  [Arch]" in _figure_texts(page, "fig3")
    assert CJK_NAME in _figure_texts(page, "fig7")
    assert CJK_NAME in _figure_texts(page, "reliability")
    assert f'class="name">{CJK_NAME}' in page  # and in the tables, as before
