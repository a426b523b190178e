"""The report's optional extras: soup.csv, findings.json (zoolens demo), cards.json (analyze).

Each table is parsed back out of the HTML with html.parser (as a browser reads it, entities
decoded) and compared cell by cell with the file it came from; hostile strings in a card's
notes/hparams and in a finding's claim must come back as text, never as markup; a malformed
file gives one note naming it and the rest of the report renders. The results folder holds
only models.csv and summary.json of the synthetic fixture (figures are left out), so each
build is fast.
"""

from __future__ import annotations

import json
import shutil
from html.parser import HTMLParser

import pandas as pd
import pytest

from _report_fixtures import EVIL_NAME, shared_results_dir
from zoolens.report import build_report

HOSTILE = '</td></tr></table><script>alert("x")</script><b onmouseover=1>&amp;'


class _Tables(HTMLParser):
    """{table id: [[cell text, ...] per body row]}, plus the class of every <td>, plus
    every tag name seen (a hostile string must add none)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tables: dict[str, list[list[str]]] = {}
        self.td_classes: dict[str, list[list[str]]] = {}
        self.tags: list[str] = []
        self._table = None
        self._in_body = False
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        a = dict(attrs)
        if tag == "table":
            self._table = a.get("id")
            self.tables[self._table] = []
            self.td_classes[self._table] = []
        elif tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body:
            self.tables[self._table].append([])
            self.td_classes[self._table].append([])
        elif tag == "td" and self._in_body:
            self._cell = []
            self.td_classes[self._table][-1].append(a.get("class") or "")

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self.tables[self._table][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tbody":
            self._in_body = False

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def _parse(page: str) -> _Tables:
    p = _Tables()
    p.feed(page)
    return p


@pytest.fixture
def folder(tmp_path):
    src = shared_results_dir()
    dst = tmp_path / "results"
    dst.mkdir()
    for name in ("models.csv", "summary.json"):
        shutil.copy(src / name, dst / name)
    return dst


SOUP = pd.DataFrame(
    {
        "method": ["ft-lr0.1", "ft-lr0.01", "uniform soup", "greedy soup"],
        "members": ["ft-lr0.1", "ft-lr0.01", "ft-lr0.1;ft-lr0.01", "ft-lr0.01"],
        "heldout_acc": [0.8312, 0.8457, 0.8123, 0.8457],
        "test_acc": [0.8201, 0.8399, float("nan"), 0.8350],
    }
)

FINDINGS = [
    {
        "key": "ei_by_category",
        "claim": "EI grows Reinit < HParam (Fig. 1)",
        "measured": "Reinit 5.00% [4.1, 5.9]; HParam 7.00%",
        "verdict": "holds",
        "decided_by": "Reinit -> HParam +2.00 [+1.00, +3.00] points",
    },
    {
        "key": "ei_vs_gain",
        "claim": HOSTILE,
        "measured": "rho 0.100 (p = 0.4)",
        "verdict": "does not hold",
        "decided_by": HOSTILE,
    },
    {
        "key": "greedy_low_accuracy",
        "claim": "weak models lift the base (Fig. 5)",
        "measured": "+0.2 points",
        "verdict": "inconclusive",
        "decided_by": "[-0.64, +0.29] points",
    },
    {
        "key": "combined_features",
        "claim": "combined features win (Fig. 6)",
        "measured": "no data",
        "verdict": "not measured",
    },
]

CARDS = {
    "cnn-base": {
        "arch": "SmallCNN",
        "arch_family": "cnn",
        "framework": "supervised",
        "pretrain_data": "fashion-mnist",
        "hparams": {"lr": 0.01, "epochs": 5, "aug": "flip"},
        "seed": 0,
        "head": "linear",
        "source": "demo",
        "category": "",
        "notes": "trained on a seeded 20,000-image subsample",
    },
    EVIL_NAME: {
        "arch": "ViT<tiny>",
        "arch_family": "vit",
        "framework": "simclr",
        "pretrain_data": "fashion-mnist",
        "hparams": {HOSTILE: HOSTILE},
        "seed": 3,
        "head": "probe",
        "source": "demo",
        "category": "",
        "notes": HOSTILE,
    },
}


def _write_extras(folder):
    SOUP.to_csv(folder / "soup.csv", index=False)
    (folder / "findings.json").write_text(
        json.dumps({"table_version": 1, "profile": "quick", "findings": FINDINGS, "missing": []})
    )
    (folder / "cards.json").write_text(json.dumps({"table_version": 1, "cards": CARDS}))


def _build(folder):
    out = folder.parent / "report.html"
    report = build_report(folder, out, warn=None)
    return report, out.read_text(encoding="utf-8")


def _pct(x):
    return "—" if pd.isna(x) else f"{100 * x:.2f}%"


def test_extras_render_with_the_values_of_the_files(folder):
    _write_extras(folder)
    report, page = _build(folder)
    tables = _parse(page)
    soup = tables.tables["table-soup"]
    assert soup == [
        [m, ", ".join(members.split(";")), _pct(h), _pct(t)]
        for m, members, h, t in SOUP.itertuples(index=False)
    ]
    assert 'class="sortable"' in page.split('id="table-soup"')[1][:40]
    assert "Model soups (Wortsman et al. 2022)" in page

    findings = tables.tables["table-findings"]
    marks = {"holds": "✓", "does not hold": "✗", "inconclusive": "?", "not measured": "–"}
    assert findings == [
        [
            f["claim"],
            f["measured"],
            f.get("decided_by", "not recorded"),  # older findings.json: no decided_by
            f"{marks[f['verdict']]} {f['verdict']}",
        ]
        for f in FINDINGS
    ]
    assert [c[3].split()[1] for c in tables.td_classes["table-findings"]] == [
        "v-holds",
        "v-fails",
        "v-partly",
        "v-unmeasured",
    ]
    # near the top: before the headline findings, the notes and the figures
    assert page.index('id="findings"') < page.index('id="figures"')

    cards = tables.tables["table-cards"]
    assert [row[0] for row in cards] == list(CARDS)
    base = cards[0]
    assert base == [
        "cnn-base",
        "SmallCNN",
        "supervised",
        "fashion-mnist",
        "linear",
        "0",
        "lr=0.0100, epochs=5, aug=flip",
        "trained on a seeded 20,000-image subsample",
    ]
    evil = cards[1]
    assert evil[1] == "ViT<tiny>" and evil[5] == "3"
    assert evil[6] == f"{HOSTILE}={HOSTILE}"
    assert evil[7] == HOSTILE
    assert not any("soup" in n or "findings" in n or "cards" in n for n in report.notes)


def test_hostile_strings_stay_text(folder):
    _write_extras(folder)
    _, page = _build(folder)
    assert HOSTILE not in page and EVIL_NAME not in page
    assert "<script>alert" not in page and "<b onmouseover" not in page
    tags = _parse(page).tags
    assert tags.count("script") == 1  # only the report's own sorting script
    assert page.count("onmouseover") == page.count("onmouseover=1&gt;")


def test_absent_extras_say_nothing(folder):
    report, page = _build(folder)
    for table in ("table-soup", "table-findings", "table-cards"):
        assert f'id="{table}"' not in page
    assert 'id="findings"' not in page
    assert not any(w in n for n in report.notes for w in ("soup", "findings", "cards.json"))
    assert 'id="table-models"' in page


@pytest.mark.parametrize(
    "name, text, wanted",
    [
        ("findings.json", "{not json", "findings.json: not readable as JSON"),
        (
            "findings.json",
            '{"table_version": 1, "findings": [{"claim": "x"}]}',
            "findings.json: not a list of",
        ),
        ("findings.json", '{"table_version": 7, "findings": []}', "findings.json: table_version 7"),
        ("cards.json", '{"table_version": 1, "cards": [1, 2]}', "cards.json: not"),
        ("cards.json", "", "cards.json: not readable as JSON"),
        (
            "soup.csv",
            "method,heldout_acc\nx,0.5\n",
            "soup.csv: missing column(s) members, test_acc",
        ),
        (
            "soup.csv",
            "method,members,heldout_acc,test_acc\nx,x,high,0.5\n",
            "soup.csv: column heldout_acc has a non-numeric value 'high'",
        ),
    ],
)
def test_malformed_extra_is_one_note_and_the_rest_renders(folder, name, text, wanted):
    _write_extras(folder)
    (folder / name).write_text(text)
    report, page = _build(folder)
    hits = [n for n in report.notes if n.startswith(wanted)]
    assert len(hits) == 1, report.notes
    assert "\n" not in hits[0]
    table = {
        "findings.json": "table-findings",
        "cards.json": "table-cards",
        "soup.csv": "table-soup",
    }[name]
    assert f'id="{table}"' not in page
    others = {"table-findings", "table-cards", "table-soup"} - {table}
    assert all(f'id="{t}"' in page for t in others) and 'id="table-models"' in page
