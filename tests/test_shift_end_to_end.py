"""Distribution shift end to end: the four pretrained CIFAR-10 ResNets of ../shared/data
collected (``zoolens collect``) on a subset of the CIFAR-10 test JPEGs and on a shifted copy
the test builds (each image re-encoded at JPEG quality 10: deterministic), analysed with
``zoolens analyze --shift``, reported, and the report's "Under distribution shift" section
opened in headless Chromium with no console error.

20 images per class (200 per set) keep it to ~20 s on two busy cores.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import shared_path
from test_report_browser import _open, browser  # noqa: F401  (the Chromium fixture)
from zoolens import Zoo
from zoolens.cli import app

runner = CliRunner()
PER_CLASS = 20
CHECKPOINTS = {
    "resnet20": "resnet20-12fca82f.th",
    "resnet32": "resnet32-d509ac18.th",
    "resnet44": "resnet44-014dd654.th",
    "resnet56": "resnet56-4bfd9763.th",
}


def _jpeg10_copy(src, dst) -> None:
    """Every image of ``src/<class>/`` re-encoded at JPEG quality 10 into ``dst/<class>/``."""
    from PIL import Image

    for cls in sorted(p.name for p in src.iterdir()):
        (dst / cls).mkdir(parents=True)
        for f in sorted((src / cls).iterdir()):
            with Image.open(f) as image:
                image.convert("RGB").save(dst / cls / f.name, format="JPEG", quality=10)


@pytest.fixture(scope="module")
def shifted_results(tmp_path_factory):
    jpegs = shared_path("cifar10-test-jpeg", "test")
    tmp = tmp_path_factory.mktemp("shift_e2e")
    clean = tmp / "clean"
    for cls in sorted(p.name for p in jpegs.iterdir()):
        (clean / cls).mkdir(parents=True)
        for f in sorted((jpegs / cls).iterdir())[:PER_CLASS]:
            (clean / cls / f.name).symlink_to(f)
    _jpeg10_copy(clean, tmp / "jpeg10")
    lines = []
    for name, file in CHECKPOINTS.items():
        checkpoint = shared_path("cifar10-resnets", file)
        lines += [
            "[[models]]",
            'spec = "python:zoolens.collect.cifar_resnet:pretrained"',
            f'name = "{name}"',
            f'kwargs = {{ checkpoint = "{checkpoint}" }}',
        ]
    models = tmp / "models.toml"
    models.write_text("\n".join(lines) + "\n")
    for data, zoo in ((clean, "clean.zoo"), (tmp / "jpeg10", "jpeg10.zoo")):
        res = runner.invoke(
            app,
            [
                "--quiet",
                "collect",
                str(models),
                "--data",
                str(data),
                "--zoo",
                str(tmp / zoo),
                "--create",
                "--threads",
                "1",
                "--workers",
                "0",
                "--batch-size",
                "100",
            ],
        )
        assert res.exit_code == 0, res.output
    out = tmp / "out"
    res = runner.invoke(
        app,
        [
            "--quiet",
            "analyze",
            str(tmp / "clean.zoo"),
            "--base",
            "resnet56",
            "--out",
            str(out),
            "--bootstrap",
            "100",
            "--reference-name",
            "cifar10-jpeg",
            "--shift",
            f"jpeg-q10={tmp / 'jpeg10.zoo'}",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "under shift jpeg-q10 (200 examples, 4 models)" in res.output
    res = runner.invoke(app, ["--quiet", "report", str(out), "--out", str(tmp / "report.html")])
    assert res.exit_code == 0, res.output
    return tmp


def test_collected_sets_analysed_under_shift(shifted_results):
    tmp = shifted_results
    clean, shifted = Zoo.open(tmp / "clean.zoo"), Zoo.open(tmp / "jpeg10.zoo")
    models = pd.read_csv(tmp / "out" / "shift_models.csv").set_index(["set", "model"])
    for name in CHECKPOINTS:
        # accuracies are the collected predictions': the reference on its evaluation split,
        # the shifted set on all its examples
        ev = clean.evaluation_indices
        assert models.loc[("cifar10-jpeg", name), "accuracy"] == pytest.approx(
            np.mean(clean.predictions(name)[ev] == clean.labels[ev])
        )
        assert models.loc[("jpeg-q10", name), "accuracy"] == pytest.approx(
            np.mean(shifted.predictions(name) == shifted.labels)
        )
        # JPEG quality 10 costs every ResNet accuracy
        assert (
            models.loc[("jpeg-q10", name), "accuracy"]
            < models.loc[("cifar10-jpeg", name), "accuracy"] - 0.05
        )
    fits = pd.read_csv(tmp / "out" / "shift_fits.csv")
    assert list(fits.measure) == ["accuracy", "agreement"] and list(fits.n_points) == [4, 6]
    pairs = pd.read_csv(tmp / "out" / "shift_pairs.csv")
    assert pairs.ensemble_acc.notna().all()  # logits: every pair has an ensemble
    summary = json.loads((tmp / "out" / "summary.json").read_text())["shift"]
    assert summary["best_sidekick"]["rank"]["cifar10-jpeg"] == 1
    assert 1 <= summary["best_sidekick"]["rank"]["jpeg-q10"] <= 3


def test_report_section_in_chromium_without_errors(browser, shifted_results):  # noqa: F811
    page, events = _open(browser, shifted_results / "report.html")
    assert events["console_errors"] == [] and events["page_errors"] == []
    assert events["failed"] == [] and events["dialogs"] == []
    section = page.locator("section#shift")
    assert section.locator("h2").inner_text().strip() == "Under distribution shift"
    section.scroll_into_view_if_needed()
    for key in ("shift-accuracy", "shift-agreement", "shift-categories"):
        svg = section.locator(f'figure[data-figure="{key}"] svg')
        assert svg.is_visible(), key
        box = svg.bounding_box()
        assert box["width"] > 250 and box["height"] > 150, (key, box)
    ticks = section.locator('figure[data-figure="shift-accuracy"] svg text').all_text_contents()
    assert sum(t.strip().endswith("%") for t in ticks) >= 4  # probit axes labelled in accuracy
    ranks = section.locator("#table-shift-sidekicks tbody tr")
    assert ranks.count() == 3  # the base's three partners
    assert section.locator("#table-shift-fits tbody tr").count() == 2
    page.close()
