"""Class maps (``import --class-map``) and per-row id patterns (``--id-pattern``), issue 26.

The oracle for probabilities is model-vs-human's rule written out here as a loop: a
category's probability is the mean of its ImageNet classes' probabilities, the decision the
category with the largest one (Geirhos et al. 2021, ``probabilities_to_decision``).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.special import softmax
from typer.testing import CliRunner

from zoolens import Zoo
from zoolens.cli import app
from zoolens.errors import ZoolensError
from zoolens.zoo.classes import ClassIndex
from zoolens.zoo.classmap import read_class_map

runner = CliRunner()
CATEGORIES = [f"cat{k:02d}" for k in range(16)]


def _groups(rng, num_model=1000, num_groups=16):
    """16 disjoint groups of 1..40 of the 1,000 classes; most classes are in none."""
    order = rng.permutation(num_model)
    sizes = rng.integers(1, 41, num_groups)
    edges = np.concatenate([[0], np.cumsum(sizes)])
    return [sorted(order[edges[k] : edges[k + 1]].tolist()) for k in range(num_groups)]


def _mvh_decisions(probs, groups, agg=np.mean):
    out = np.empty((len(probs), len(groups)))
    for n in range(len(probs)):
        for c, members in enumerate(groups):
            out[n, c] = agg([probs[n, m] for m in members])
    return out.argmax(axis=1), out


def _zoo(tmp_path, n):
    return Zoo.create(
        tmp_path / "mvh.zoo", np.arange(n) % 16, class_names=CATEGORIES, calibration_fraction=0
    )


def _import(zoo, file, *args):
    res = runner.invoke(app, ["import", str(zoo.path), str(file), "--name", file.stem, *args])
    zoo.reload()  # see what the command added
    return res


def test_1000_class_probabilities_score_as_the_mean_of_each_group(tmp_path):
    rng = np.random.default_rng(0)
    n = 400
    probs = rng.dirichlet(np.full(1000, 0.05), size=n).astype(np.float32)
    groups = _groups(rng)
    (tmp_path / "map.json").write_text(
        json.dumps({name: members for name, members in zip(CATEGORIES, groups)})
    )
    np.save(tmp_path / "probs.npy", probs)
    zoo = _zoo(tmp_path, n)
    res = _import(
        zoo,
        tmp_path / "probs.npy",
        "--kind",
        "probs",
        "--class-map",
        str(tmp_path / "map.json"),
        "--model-classes",
        "1000",
    )
    assert res.exit_code == 0, res.output
    expected, means = _mvh_decisions(probs.astype(np.float64), groups)
    np.testing.assert_array_equal(zoo.predictions("probs"), expected)  # decisions exact
    # the stored distribution is the groups' means, normalised (float32 storage: 1e-6)
    np.testing.assert_allclose(
        softmax(zoo.scores("probs").astype(np.float64), axis=1),
        means / means.sum(axis=1, keepdims=True),
        rtol=2e-6,
        atol=1e-9,
    )
    # logits go through their softmax first; sum and max aggregate as named
    logits = rng.normal(0, 3, (n, 1000)).astype(np.float32)
    np.save(tmp_path / "logits.npy", logits)
    for agg, reduce in (("mean", np.mean), ("sum", np.sum), ("max", np.max)):
        (tmp_path / "logits.npy").rename(tmp_path / f"logits_{agg}.npy")
        res = _import(
            zoo,
            tmp_path / f"logits_{agg}.npy",
            "--kind",
            "logits",
            "--class-map",
            str(tmp_path / "map.json"),
            "--model-classes",
            "1000",
            "--class-map-agg",
            agg,
        )
        assert res.exit_code == 0, res.output
        expected, _ = _mvh_decisions(softmax(logits.astype(np.float64), axis=1), groups, reduce)
        np.testing.assert_array_equal(zoo.predictions(f"logits_{agg}"), expected)
        (tmp_path / f"logits_{agg}.npy").rename(tmp_path / "logits.npy")


def test_decisions_and_topk_by_group_with_names_and_wnids(tmp_path):
    rng = np.random.default_rng(1)
    n = 300
    wnids = [f"n{k:08d}" for k in range(1000)]
    (tmp_path / "synsets.txt").write_text(
        "\n".join(f"{w} class{k}" for k, w in enumerate(wnids)) + "\n"
    )
    groups = _groups(rng)
    # names, wnids and ids mixed in one map
    mixed = {
        name: [
            wnids[m] if k % 3 == 0 else f"class{m}" if k % 3 == 1 else m for k, m in enumerate(g)
        ]
        for name, g in zip(CATEGORIES, groups)
    }
    (tmp_path / "map.json").write_text(json.dumps(mixed))
    zoo = _zoo(tmp_path, n)
    decisions = rng.integers(0, 1000, n)
    np.save(tmp_path / "top1.npy", decisions)
    res = _import(
        zoo,
        tmp_path / "top1.npy",
        "--kind",
        "decisions",
        "--class-map",
        str(tmp_path / "map.json"),
        "--model-classes",
        str(tmp_path / "synsets.txt"),
    )
    assert res.exit_code == 0, res.output
    lookup = {m: c for c, g in enumerate(groups) for m in g}
    expected = np.array([lookup.get(int(d), -1) for d in decisions])
    np.testing.assert_array_equal(zoo.predictions("top1"), expected)
    outside = int((expected == -1).sum())
    assert outside > 0 and f"{outside} of {n} decisions fall outside every group" in res.output
    # top-k: the group of the first listed class that is in a group
    k = 5
    idx = np.stack([rng.choice(1000, k, replace=False) for _ in range(n)])
    val = np.sort(rng.dirichlet(np.ones(k + 1), n)[:, :k], axis=1)[:, ::-1]
    np.savez(tmp_path / "top5.npz", indices=idx, values=val)
    res = _import(
        zoo,
        tmp_path / "top5.npz",
        "--kind",
        "topk",
        "--key",
        "indices,values",
        "--class-map",
        str(tmp_path / "map.json"),
        "--model-classes",
        str(tmp_path / "synsets.txt"),
    )
    assert res.exit_code == 0, res.output
    first = [next((lookup[m] for m in row if m in lookup), -1) for row in idx.tolist()]
    np.testing.assert_array_equal(zoo.predictions("top5"), first)


def test_a_subset_is_groups_of_one_class(tmp_path):
    """ImageNet-R style: 200 of 1,000 classes, each zoo class one model class."""
    rng = np.random.default_rng(2)
    chosen = np.sort(rng.choice(1000, 200, replace=False))
    zoo = Zoo.create(
        tmp_path / "r.zoo", np.arange(50) % 200, num_classes=200, calibration_fraction=0
    )
    (tmp_path / "map.json").write_text(json.dumps({str(k): [int(m)] for k, m in enumerate(chosen)}))
    logits = rng.normal(size=(50, 1000)).astype(np.float32)
    np.save(tmp_path / "m.npy", logits)
    res = _import(
        zoo,
        tmp_path / "m.npy",
        "--class-map",
        str(tmp_path / "map.json"),
        "--model-classes",
        "1000",
    )
    assert res.exit_code == 0, res.output
    np.testing.assert_array_equal(zoo.predictions("m"), logits[:, chosen].argmax(axis=1))


@pytest.mark.parametrize(
    "mapping, message",
    [
        ('{"a": [0], "a": [1], "b": [2]}', "zoo class 'a' is named twice"),
        ('{"a": [0, 1], "b": [1]}', "model class 1 is named twice"),
        ('{"a": [0], "b": [10]}', "model class 10 is not one of the model's 10 classes"),
        ('{"a": [0], "b": ["zebra"]}', "give the model's class names"),
        ('{"a": [0]}', "no group for zoo class(es) 'b'"),
        ('{"a": [0], "c": [1]}', "unknown class name 'c'"),
        ('{"a": [], "b": [1]}', "non-empty list"),
        ("[1, 2]", "expected a JSON object"),
    ],
)
def test_bad_class_maps_are_refused_in_one_line(tmp_path, mapping, message):
    (tmp_path / "map.json").write_text(mapping)
    with pytest.raises(ZoolensError, match="--class-map") as err:
        read_class_map(tmp_path / "map.json", ClassIndex(["a", "b"]), 10)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_cli_refuses_a_bad_map_and_leaves_the_zoo_unchanged(tmp_path):
    zoo = Zoo.create(tmp_path / "z.zoo", np.array([0, 1, 0]), class_names=["a", "b"])
    (tmp_path / "map.json").write_text('{"a": [0], "b": [0]}')
    np.save(tmp_path / "p.npy", np.full((3, 4), 0.25, dtype=np.float32))
    res = _import(zoo, tmp_path / "p.npy", "--class-map", str(tmp_path / "map.json"))
    assert res.exit_code != 0 and "--model-classes" in res.output
    res = _import(
        zoo, tmp_path / "p.npy", "--class-map", str(tmp_path / "map.json"), "--model-classes", "4"
    )
    assert res.exit_code != 0
    assert res.output.startswith("error:") and "named twice" in res.output
    assert Zoo.open(zoo.path).models == []


# ------------------------------------------------------------------ --id-pattern


def test_id_pattern_joins_ids_with_a_per_row_prefix_in_labels_and_model_files(tmp_path):
    """Trial numbers before the image names: different in the labels file and in the model
    file, and in a different order; --id-pattern keeps the image name on both sides."""
    rng = np.random.default_rng(3)
    images = [f"img{k:03d}.png" for k in range(30)]
    labels = rng.integers(0, 3, 30)
    order = rng.permutation(30)
    (tmp_path / "labels.csv").write_text(
        "trial,label\n" + "".join(f"s01_t{k}_{images[k]},{labels[k]}\n" for k in range(30))
    )
    decisions = np.where(rng.random(30) < 0.8, labels, (labels + 1) % 3)
    (tmp_path / "m.csv").write_text(
        "trial,decision\n"
        + "".join(f"s02_t{100 + j}_{images[k]},{decisions[k]}\n" for j, k in enumerate(order))
    )
    zoo = tmp_path / "z.zoo"
    pattern = r"^s\d+_t\d+_(.+)$"

    def trial_import(file, name, pattern, *more):
        return runner.invoke(
            app,
            ["import", str(zoo), str(file), "--name", name, "--kind", "decisions"]
            + ["--columns", "1:2", "--id-column", "trial", "--id-pattern", pattern, *more],
        )

    res = trial_import(
        tmp_path / "m.csv",
        "m",
        pattern,
        *["--create", "--labels", str(tmp_path / "labels.csv"), "--labels-column", "label"],
        *["--labels-id-column", "trial", "--num-classes", "3"],
    )
    assert res.exit_code == 0, res.output
    z = Zoo.open(zoo)
    ids = list(z.example_ids)
    assert sorted(ids) == images
    position = {name: i for i, name in enumerate(ids)}
    rows = [position[images[k]] for k in range(30)]
    np.testing.assert_array_equal(z.labels[rows], labels)
    np.testing.assert_array_equal(z.predictions("m")[rows], decisions)
    # a later file with yet other trial numbers joins by the same pattern
    (tmp_path / "m2.csv").write_text(
        "trial,decision\n" + "".join(f"s03_t{k}_{images[k]},{labels[k]}\n" for k in range(30))
    )
    res = trial_import(tmp_path / "m2.csv", "perfect", pattern)
    assert res.exit_code == 0, res.output
    assert Zoo.open(zoo).accuracy("perfect") == 1.0
    # an id the pattern does not match, and a pattern without a group: one line each
    for bad, message in (
        (r"^x(\d+)$", "does not match the --id-pattern"),
        (r"^s\d+", "needs a group"),
    ):
        res = trial_import(tmp_path / "m2.csv", "again", bad)
        assert res.exit_code != 0 and message in res.output
        assert len(res.output.strip().splitlines()) == 1
