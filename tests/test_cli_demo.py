"""`zoolens demo --quick` end to end (one shared run), the cache on a second run, bad input.

The quick profile trains ten small models on 5,000 Fashion-MNIST training images (about a
minute or two on two idle cores) and scores them on all 10,000 test images.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from zoolens.cli import app
from zoolens.demo.data import DEBIAN_DIR
from zoolens.demo.zoo_build import BASE, PROFILES

pytestmark = pytest.mark.skipif(
    not DEBIAN_DIR.is_dir(), reason="Fashion-MNIST (Debian dataset-fashion-mnist) absent"
)
QUICK = PROFILES["quick"].models


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "zoolens-demo"
    result = CliRunner().invoke(app, ["demo", "--quick", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out, result.output


@pytest.fixture(scope="module")
def rerun(demo):
    """A second run after one cache entry was made to look like an older zoolens's."""
    out, _ = demo
    [path] = (out / "cache").glob("naive-bayes-pixels-*.pt")
    entry = torch.load(path, weights_only=True)
    entry["meta"]["zoolens_version"] = "0.0.1"
    torch.save(entry, path)
    result = CliRunner().invoke(app, ["demo", "--quick", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out, result.output


def test_zoo_has_every_model_with_a_full_card(demo):
    from zoolens.zoo.store import Zoo

    out, _ = demo
    zoo = Zoo.open(out / "zoo")
    zoo.verify()
    assert zoo.models == list(QUICK)
    assert zoo.num_examples == 10000  # the full test set
    for name in zoo.models:
        card = zoo.card(name)
        for field in ("arch", "arch_family", "framework", "pretrain_data", "head", "notes"):
            assert getattr(card, field), (name, field)
        assert card.hparams and "5,000 of the 60,000" in card.notes
    for name in (
        "cnn-base",
        "mlp",
        "simclr-cnn+probe",
        "autoencoder+probe",
        "digits-cnn+probe",
        "random-cnn+probe",
    ):
        assert zoo.has_embeddings(name)
        assert zoo.embeddings(name).shape[0] == 10000
    assert not zoo.has_embeddings("knn-pixels")


def test_accuracies_are_sane_and_match_the_tables(demo):
    from zoolens.zoo.store import Zoo

    out, output = demo
    zoo = Zoo.open(out / "zoo")
    acc = {n: float(np.mean(zoo.predictions(n) == zoo.labels)) for n in zoo.models}
    assert acc[BASE] >= 0.80  # quick profile; the default profile's >= 0.88 is a slow test
    assert all(a > 0.45 for a in acc.values()), acc  # chance is 0.10
    assert acc["naive-bayes-pixels"] < acc[BASE] - 0.1  # deliberately weak
    models = pd.read_csv(out / "results" / "models.csv").set_index("model")
    for name, value in acc.items():
        assert models.loc[name, "accuracy_all"] == pytest.approx(value, abs=1e-9)
        assert f"{name:<22} test accuracy {value:.4f}" in output


def test_tables_report_and_findings_exist(demo):
    out, output = demo
    results = out / "results"
    for name in (
        "models.csv",
        "pairs.csv",
        "greedy.csv",
        "specialization.csv",
        "summary.json",
        "soup.csv",
        "findings.json",
        "timings.json",
    ):
        assert (results / name).is_file(), name
    pairs = pd.read_csv(results / "pairs.csv")
    assert len(pairs) == len(QUICK) * (len(QUICK) - 1) // 2
    with_base = pairs[(pairs.model_a == BASE) | (pairs.model_b == BASE)]
    assert set(with_base.category) == {"Reinit", "HParam", "Arch", "Framework", "Dataset"}
    spec = pd.read_csv(results / "specialization.csv")
    groups = set(spec[spec.group_type == "class_group"].group)
    assert groups == {"tops", "footwear", "other"}  # the demo's class groups (Fig. 12)
    report = (out / "report.html").read_text()
    assert "cnn-base" in report and "naive-bayes-pixels" in report
    findings = json.loads((results / "findings.json").read_text())["findings"]
    keys = [f["key"] for f in findings]
    assert keys[:4] == [
        "ei_by_category",
        "ei_vs_gain",
        "conversion_by_category",
        "greedy_low_accuracy",
    ]
    for f in findings:  # each rule is forced to every verdict in test_demo_findings.py
        assert f["verdict"] in ("holds", "partly", "does not hold", "inconclusive", "not measured")
        assert f"[{f['verdict'].upper()}]" in output
        # every verdict carries the interval or test it follows from, printed too (issue 27)
        assert f["decided_by"] and f"decided by: {f['decided_by']}" in output
    soups = next(f for f in findings if f["key"] == "soups")
    assert "95% paired bootstrap" in soups["decided_by"] and "McNemar p" in soups["decided_by"]
    # the greedy finding: from the base, over models less accurate than the base on the
    # evaluation split (models.csv's accuracy), the split whose accuracies it quotes
    summary = json.loads((results / "summary.json").read_text())
    greedy = summary["headline"]["greedy"]
    models = pd.read_csv(results / "models.csv").set_index("model")
    assert greedy["start"] == BASE
    assert all(
        models.loc[m, "accuracy"] < models.loc[BASE, "accuracy"]
        for m in summary["settings"]["pool_models"]
    )
    assert "matched accuracy" in findings[0]["measured"]
    # the report shows the findings and the soups (findings.json is written before it)
    assert json.loads((results / "findings.json").read_text())["table_version"] == 1
    assert 'id="table-findings"' in report and 'id="table-soup"' in report
    assert report.count('<tr data-key="') == len(findings)
    soup = pd.read_csv(results / "soup.csv")
    table = report.split('id="table-soup"', 1)[1].split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    assert table.count("<tr>") == len(soup)


def test_soups(demo):
    out, _ = demo
    table = pd.read_csv(out / "results" / "soup.csv")
    assert list(table.columns) == ["method", "members", "heldout_acc", "test_acc"]
    t = table.set_index("method")
    ingredients = table[table.method == "ingredient"]
    assert len(ingredients) == PROFILES["quick"].soup_ingredients
    assert t.loc["greedy_soup", "heldout_acc"] >= ingredients.heldout_acc.max()
    assert t.loc["best_ingredient", "heldout_acc"] == ingredients.heldout_acc.max()
    assert table.test_acc.between(0.5, 1.0).all()
    # the written uniform soup is the float64 mean of the written ingredients
    sds = [torch.load(out / "soup" / f"{m}.pt", weights_only=True) for m in ingredients.members]
    uniform = torch.load(out / "soup" / "uniform_soup.pt", weights_only=True)
    for key, value in uniform.items():
        if value.is_floating_point():
            ref = np.mean([sd[key].double().numpy() for sd in sds], axis=0).astype(np.float32)
            np.testing.assert_array_equal(value.numpy(), ref)
        else:
            assert torch.equal(value, sds[0][key])
    # zoolens soup reproduces the demo's held-out numbers from the saved files
    result = CliRunner().invoke(
        app,
        [
            "soup",
            *[str(out / "soup" / f"{m}.pt") for m in ingredients.members],
            "--model",
            "python:zoolens.demo.models:soup_cnn",
            "--data",
            str(out / "soup" / "heldout.npz"),
            "--greedy",
            "--out",
            str(out / "soup" / "again.pt"),
            "--table",
            str(out / "again"),
        ],
    )
    assert result.exit_code == 0, result.output
    again = pd.read_csv(out / "again" / "soup.csv").set_index("method")
    for method in ("uniform_soup", "greedy_soup", "best_ingredient", "logit_ensemble"):
        assert again.loc[method, "heldout_acc"] == pytest.approx(t.loc[method, "heldout_acc"])


def test_second_run_reads_the_cache_and_retrains_other_versions(rerun):
    out, output = rerun
    assert "was trained by zoolens 0.0.1" in output and "retraining naive-bayes-pixels" in output
    timings = json.loads((out / "results" / "timings.json").read_text())
    hits = set(timings["cache_hits"])
    assert "naive-bayes-pixels" not in hits
    assert set(QUICK) - {"naive-bayes-pixels"} <= hits
    entry = torch.load(next((out / "cache").glob("naive-bayes-pixels-*.pt")), weights_only=True)
    assert entry["meta"]["zoolens_version"] != "0.0.1"


def test_data_folder_without_the_dataset(tmp_path):
    (tmp_path / "data").mkdir()
    result = CliRunner().invoke(
        app, ["demo", "--quick", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "out")]
    )
    assert result.exit_code != 0
    assert "apt-get install dataset-fashion-mnist" in result.output
    assert "Traceback" not in result.output


def test_unwritable_output_folder(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = CliRunner().invoke(app, ["demo", "--quick", "--out", str(blocker / "demo")])
    assert result.exit_code != 0
    assert "cannot write there" in result.output and "Traceback" not in result.output


def test_help_has_an_example():
    result = CliRunner().invoke(app, ["demo", "--help"])
    assert result.exit_code == 0 and "Example" in result.output


def test_demo_report_in_chromium(demo, tmp_path):
    """The demo's report passes the checks every report must (tests/_report_checks.py): no
    empty or zero-only figure, κ present, every quoted interval equal to the tables."""
    from _report_checks import check_page
    from test_report_browser import CHROMIUM, ARGS

    from zoolens.report import build_report

    if not __import__("pathlib").Path(CHROMIUM).exists():
        pytest.skip(f"chromium not found at {CHROMIUM}")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
    out, _ = demo
    report = build_report(out / "results", tmp_path / "report.html", warn=None)
    assert {"fig1", "kappa", "fig2", "fig5", "fig7"} <= set(report.figures), report.skipped
    with sync_api.sync_playwright() as play:
        browser = play.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            check_page(browser, report, out / "results")
        finally:
            browser.close()
