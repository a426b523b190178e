"""Drill-down (issue 15): the examples only one of the base and its best sidekick gets right,
with each model's top-3 and calibrated probabilities, and the image as an embedded thumbnail
when the zoo knows its image files. Real data: CIFAR-10 DenseNet and LeNet probabilities on
the canonical test order, joined to the JPEG test images (../shared/data)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import shared_path

N = 1500


def _ids_in_canonical_order(labels: np.ndarray, classes: list[str]) -> list[str]:
    """The k-th file (sorted) of class c is the k-th example of class c (data README)."""
    root = shared_path("cifar10-test-jpeg") / "test"
    files = {c: sorted(p.name for p in (root / c).iterdir()) for c in classes}
    seen = {c: 0 for c in classes}
    ids = []
    for y in labels:
        c = classes[int(y)]
        ids.append(f"{c}/{files[c][seen[c]]}")
        seen[c] += 1
    return ids


@pytest.fixture(scope="module")
def zoo_with_images(tmp_path_factory):
    from zoolens.zoo.store import Zoo

    probs_dir = shared_path("cifar10-probs")
    dense = np.loadtxt(probs_dir / "densenet-bc-L190-k40.csv", delimiter=",")
    labels = dense[:, 0].astype(np.int64)
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
    ids = _ids_in_canonical_order(labels, classes)
    path = tmp_path_factory.mktemp("dd") / "zoo"
    zoo = Zoo.create(path, labels[:N], class_names=classes, example_ids=ids[:N])
    zoo.add("densenet", probs=dense[:N, 11:21], card={"arch": "densenet"})
    zoo.add(
        "lenet",
        probs=np.load(probs_dir / "lenet-5-cifar-10.npz")["predictions"][:N],
        card={"arch": "lenet"},
    )
    zoo.add(
        "vgg",
        probs=np.load(probs_dir / "vgg16-keras-cifar-10.npz")["probs"][:N],
        card={"arch": "vgg16"},
    )
    return zoo


def test_drilldown_table_and_thumbnails(zoo_with_images, tmp_path):
    from zoolens.measure.ensemble import ensemble_inputs
    from zoolens.report import build_report
    from zoolens.study.analyze import analyze

    zoo = zoo_with_images
    zoo.set_image_root(shared_path("cifar10-test-jpeg") / "test")
    result = analyze(zoo, "densenet", tmp_path / "results", n_bootstrap=50, max_steps=3)
    table = pd.read_csv(tmp_path / "results" / "drilldown.csv", keep_default_na=False)
    sidekick = result.summary["headline"]["best_sidekick"]["model"]
    assert set(table.model_a) == {"densenet"} and set(table.model_b) == {sidekick}
    examples = table.example.unique()
    assert 0 < len(examples) <= 50 and len(table) == len(examples) * 2 * 3
    temps = dict(zip(result.models.model, result.models.temperature))
    for example, part in table.groupby("example"):
        right = {
            m: int(np.asarray(zoo.predictions(m))[example]) == int(zoo.labels[example])
            for m in ("densenet", sidekick)
        }
        assert sum(right.values()) == 1  # exactly one of them is right
        assert part.right.iloc[0] == next(m for m, ok in right.items() if ok)
        assert example in set(zoo.evaluation_indices)
        for model in ("densenet", sidekick):
            mine = part[part.model == model].sort_values("rank")
            q = ensemble_inputs(zoo.scores(model, rows=[example]), temps[model], "probs")[0]
            order = np.argsort(-q, kind="stable")[:3]
            assert list(mine["class"]) == list(order)
            assert mine.probability.to_numpy() == pytest.approx(q[order], abs=1e-6)
        image = Path(part.image.iloc[0])
        assert image.is_file() and image.parts[-2] == part.label_name.iloc[0]
    page = build_report(tmp_path / "results", tmp_path / "r.html", warn=None).path.read_text()
    section = page.split('id="table-drilldown"')[1].split("</table>")[0]
    assert section.count('<img src="data:image/png;base64,') == len(examples)
    sources = re.findall(r'src="([^"]*)"', section)
    assert sources and all(src.startswith("data:image/png;base64,") for src in sources)


def test_import_image_root_and_refusal(zoo_with_images, tmp_path):
    from zoolens.cli import app
    from zoolens.zoo.store import Zoo

    zoo = zoo_with_images
    np.save(
        tmp_path / "p.npy",
        np.load(shared_path("cifar10-probs") / "wideresnet-16-4-cifar-10.npz")["predictions"][:N],
    )
    bad = CliRunner().invoke(
        app,
        [
            "import",
            str(zoo.path),
            str(tmp_path / "p.npy"),
            "--name",
            "wrn",
            "--kind",
            "probs",
            "--image-root",
            str(tmp_path / "nowhere"),
        ],
    )
    assert bad.exit_code != 0 and "not a folder" in bad.output and "Traceback" not in bad.output
    assert "wrn" not in Zoo.open(zoo.path).models  # the zoo is left as it was
    ok = CliRunner().invoke(
        app,
        [
            "import",
            str(zoo.path),
            str(tmp_path / "p.npy"),
            "--name",
            "wrn",
            "--kind",
            "probs",
            "--image-root",
            str(shared_path("cifar10-test-jpeg") / "test"),
        ],
    )
    assert ok.exit_code == 0, ok.output
    assert Zoo.open(zoo.path).image_root == str(
        (shared_path("cifar10-test-jpeg") / "test").resolve()
    )


def test_image_path_never_leaves_the_root(tmp_path):
    from zoolens.study.drilldown import image_path

    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "a.png").write_bytes(b"x")
    (tmp_path / "secret.png").write_bytes(b"x")
    assert image_path(str(tmp_path / "root"), "a.png").endswith("a.png")
    assert image_path(str(tmp_path / "root"), "../secret.png") == ""
    assert image_path(None, "a.png") == "" and image_path(str(tmp_path / "root"), "b.png") == ""
    assert re.match(r".*root/a\.png$", image_path(str(tmp_path / "root"), "./a.png"))
