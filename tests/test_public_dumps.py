"""Public prediction dumps (issue 14): JSON model files, analysis without a calibration
split, cross-fitted greedy.

The acceptance data: ../shared/data/cifar10.1-predictions/cifar10-test, the top-1 decisions
of 30 published CIFAR-10 models (JSON lists), labels from ../shared/data/cifar10-probs; the
published numbers are in ../shared/data/README.md.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import shared_path
from zoolens.cli import app
from zoolens.zoo.store import Zoo

runner = CliRunner()

# ../shared/data/README.md, cifar10.1-predictions (CIFAR-10 test set, all 10,000 examples)
README_ACCURACY = {
    "resnet_basic_110": 0.9346,
    "shake_shake_26_2x64d_SSI_cutout16": 0.9711,
    "random_features_256k_aug": 0.8563,
    "vgg16_keras": 0.9359,
}
README_EI = {
    ("resnet_basic_110", "random_features_256k_aug"): 0.1323,
    ("resnet_basic_110", "resnet_basic_56"): 0.0542,
}


def zl(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def ok(*args):
    result = zl(*args)
    assert result.exit_code == 0, result.output
    return result


def fails(*args, match: str) -> str:
    result = zl(*args)
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("error")]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert match.lower() in lines[0].lower(), lines[0]
    return lines[0]


def kappa_from_definition(right_a: np.ndarray, right_b: np.ndarray) -> float:
    """Geirhos et al. (2020) error consistency, written out: observed agreement of the two
    correctness vectors against the agreement expected from the accuracies alone."""
    p_a, p_b = right_a.mean(), right_b.mean()
    observed = np.mean(right_a == right_b)
    expected = p_a * p_b + (1 - p_a) * (1 - p_b)
    return float((observed - expected) / (1 - expected))


# ---------------------------------------------------------------------------------------------
# the 30 CIFAR-10.1 models' decision JSON files


@pytest.fixture(scope="module")
def cifar101_zoo(tmp_path_factory):
    folder = shared_path("cifar10.1-predictions", "cifar10-test")
    labels = shared_path("cifar10-probs", "lenet-5-cifar-10.npz")
    zoo = tmp_path_factory.mktemp("c101") / "cifar101.zoo"
    files = sorted(folder.glob("*_predictions.json"))
    assert len(files) == 30
    for k, file in enumerate(files):
        name = file.name.removesuffix("_predictions.json")
        create = (
            [
                "--create",
                "--labels",
                labels,
                "--labels-key",
                "ground_truth",
                "--calibration-fraction",
                "0",
            ]
            if k == 0
            else []
        )
        ok("import", zoo, file, "--name", name, *create)
    return zoo, files


def test_cifar101_json_accuracies_match_the_readme(cifar101_zoo):
    zoo, _ = cifar101_zoo
    info = json.loads(ok("info", zoo, "--json").stdout)
    assert info["calibration_examples"] == 0 and len(info["models"]) == 30
    accuracy = {row["model"]: row["accuracy_all"] for row in info["models"]}
    assert {row["kind"] for row in info["models"]} == {"decisions"}
    for name, expected in README_ACCURACY.items():
        assert round(accuracy[name], 4) == expected, name
    table = ok("info", zoo).stdout
    assert "0.9346" in table and "calibration split 0" in table


def test_cifar101_analyze_on_all_examples(cifar101_zoo, tmp_path):
    zoo, files = cifar101_zoo
    out = tmp_path / "out"
    result = ok("analyze", zoo, "--base", "resnet_basic_110", "--out", out, "--bootstrap", "20")
    assert "no calibration split" in result.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["splits"] == {"calibration": 0, "evaluation": 10000, "all": 10000}
    assert summary["settings"]["calibration"] == "none"
    assert any("no calibration split" in note for note in summary["notes"])
    pairs = pd.read_csv(out / "pairs.csv")
    truth = np.load(shared_path("cifar10-probs", "lenet-5-cifar-10.npz"))["ground_truth"]
    right = {
        f.name.removesuffix("_predictions.json"): np.asarray(json.loads(f.read_text())) == truth
        for f in files
    }
    for (a, b), expected in README_EI.items():
        row = pairs[
            ((pairs.model_a == a) & (pairs.model_b == b))
            | ((pairs.model_a == b) & (pairs.model_b == a))
        ].iloc[0]
        assert round(row.error_inconsistency, 4) == expected
        assert row.error_inconsistency == pytest.approx(np.mean(right[a] != right[b]), abs=0)
        assert row.error_consistency == pytest.approx(
            kappa_from_definition(right[a], right[b]), abs=1e-12
        )
    models = pd.read_csv(out / "models.csv")
    assert (models.accuracy == models.accuracy_all).all()
    assert (models.accuracy_eval_n == 10000).all()
    # the report says so too
    ok("report", out, "--out", tmp_path / "r.html")
    assert (
        "no calibration split: every measure is taken on all 10000 examples"
        in (tmp_path / "r.html").read_text()
    )


# ---------------------------------------------------------------------------------------------
# JSON model files: the three shapes, and bad ones


@pytest.fixture
def small(tmp_path):
    rng = np.random.default_rng(3)
    n, c = 40, 4
    labels = rng.integers(0, c, n)
    ids = [f"img{i:03d}.png" for i in range(n)]
    zoo = Zoo.create(
        tmp_path / "z", labels, num_classes=c, example_ids=ids, calibration_fraction=0.0
    )
    return zoo, labels, ids, rng


def test_json_list_of_class_ids_and_of_score_rows(small, tmp_path):
    zoo, labels, _, rng = small
    decisions = labels.copy()
    decisions[:5] = (decisions[:5] + 1) % 4
    (tmp_path / "d.json").write_text(json.dumps(decisions.tolist()))
    ok("import", zoo.path, tmp_path / "d.json", "--name", "dec")
    logits = rng.normal(size=(40, 4))
    (tmp_path / "s.json").write_text(json.dumps(logits.tolist()))
    ok("import", zoo.path, tmp_path / "s.json", "--name", "scores", "--kind", "logits")
    z = Zoo.open(zoo.path)
    assert z.kind("dec") == "decisions" and z.accuracy("dec") == pytest.approx(35 / 40)
    np.testing.assert_array_equal(z.predictions("scores"), logits.argmax(axis=1))
    np.testing.assert_allclose(z.scores("scores"), logits.astype(np.float32))


def test_json_object_keyed_by_example_id_is_joined(small, tmp_path):
    zoo, labels, ids, rng = small
    order = rng.permutation(40)
    keyed = {ids[i]: int(labels[i]) for i in order}  # shuffled against the zoo
    (tmp_path / "k.json").write_text(json.dumps(keyed))
    ok("import", zoo.path, tmp_path / "k.json", "--name", "keyed")
    rows = rng.random((40, 4))
    rows /= rows.sum(axis=1, keepdims=True)
    (tmp_path / "p.json").write_text(json.dumps({ids[i]: rows[i].tolist() for i in order}))
    ok("import", zoo.path, tmp_path / "p.json", "--name", "probs", "--kind", "probs")
    z = Zoo.open(zoo.path)
    assert z.accuracy("keyed") == 1.0
    np.testing.assert_array_equal(z.predictions("probs"), rows.argmax(axis=1))


@pytest.mark.parametrize(
    "content, match",
    [
        ("[1, 2", "not valid JSON"),
        ('"hello"', "expected a JSON list"),
        ("[]", "holds no examples"),
        ("[[0.1, 0.9], [0.2]]", "ragged score rows"),
        ("[[0.5, 0.5], 1]", "mixes score rows"),
        ('[0, 1, {"a": 1}]', "entry 2"),
        ("[0.5, 1]", "integer class ids"),
    ],
)
def test_bad_json_model_files(small, tmp_path, content, match):
    zoo, *_ = small
    file = tmp_path / "bad.json"
    file.write_text(content)
    before = zoo.manifest
    fails("import", zoo.path, file, "--name", "bad", match=match)
    assert Zoo.open(zoo.path).manifest == before


def test_json_with_missing_ids_shows_both_sides(small, tmp_path):
    zoo, labels, ids, _ = small
    keyed = {f"{i}.JPEG": int(labels[k]) for k, i in enumerate(ids)}
    (tmp_path / "k.json").write_text(json.dumps(keyed))
    line = fails("import", zoo.path, tmp_path / "k.json", "--name", "m", match="missing")
    assert "img000.png" in line and "img000.png.JPEG" in line


# ---------------------------------------------------------------------------------------------
# analysis without a calibration split, and cross-fitted greedy


def _scored_zoo(path: Path, *, n=600, c=5, good=3, noise=15, fraction=0.0, seed=0):
    """A zoo where in-sample greedy overfits: a few informative models and many models of
    pure noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, c, n)
    zoo = Zoo.create(path, labels, num_classes=c, calibration_fraction=fraction, seed=1)
    onehot = np.eye(c)[labels]
    for k in range(good):
        zoo.add(f"good{k}", logits=1.2 * onehot + rng.normal(size=(n, c)), card={"arch": f"net{k}"})
    for k in range(noise):
        zoo.add(f"noise{k}", logits=rng.normal(size=(n, c)), card={"arch": "noise"})
    return zoo


def test_no_calibration_fixes_temperatures_and_measures_all_examples(tmp_path):
    from zoolens.study.analyze import analyze

    zoo = _scored_zoo(tmp_path / "z", good=2, noise=2, fraction=0.3)
    result = analyze(
        zoo, "good0", n_bootstrap=0, calibration=False, interpolation_pairs=[("good0", "good1")]
    )
    assert (result.models.temperature == 1.0).all()
    assert (result.models.accuracy == result.models.accuracy_all).all()
    assert (result.models.accuracy_eval_n == zoo.num_examples).all()
    assert set(result.interpolation["mode"]) == {"weight"}
    assert result.summary["splits"]["calibration"] == 0
    assert result.summary["settings"]["calibration"] == "none"
    assert result.summary["temperature_fits"] == {}
    assert len(result.greedy) == 0 and set(result.greedy_folds.fold) == set(range(5))
    # with the split, the same zoo is calibrated as before
    calibrated = analyze(zoo, "good0", n_bootstrap=0)
    assert calibrated.summary["settings"]["calibration"] == "split"
    assert (calibrated.models.temperature != 1.0).all()
    assert len(calibrated.greedy) > 0 and len(calibrated.greedy_folds) == 0


def _naive_greedy(
    x: np.ndarray,
    labels: np.ndarray,
    start: int,
    pool: list[int],
    steps: int,
    choose: np.ndarray,
    score: np.ndarray,
):
    """Caruana's greedy forward selection written out as plain loops: add, with replacement,
    the pool model whose addition is right most often on ``choose``; ties to the model chosen
    most often so far, then the lowest index; keep the best prefix (earliest on ties)."""
    total = x[start][choose].astype(np.float64)
    members, times = [start], {start: 1}
    accs = [np.mean(total.argmax(axis=1) == labels[choose])]
    for _ in range(steps):
        best = None
        for k in pool:
            acc = np.sum((total + x[k][choose]).argmax(axis=1) == labels[choose])
            key = (acc, times.get(k, 0), -k)
            if best is None or key > best[0]:
                best = (key, k)
        k = best[1]
        total = total + x[k][choose]
        members.append(k)
        times[k] = times.get(k, 0) + 1
        accs.append(np.mean(total.argmax(axis=1) == labels[choose]))
    kept = int(np.argmax(accs)) + 1
    held = sum(x[m][score].astype(np.float64) for m in members[:kept])
    return (
        members[:kept],
        float(accs[kept - 1]),
        float(np.mean(held.argmax(axis=1) == labels[score])),
    )


def test_crossfit_greedy_against_a_loop_over_folds(tmp_path):
    from zoolens.measure.ensemble import ensemble_inputs
    from zoolens.study.analyze import run_greedy

    zoo = _scored_zoo(tmp_path / "z")
    steps = 6
    table, summary = run_greedy(zoo, "good0", tmp_path / "out", max_steps=steps, seed=4)
    greedy = summary["greedy"]
    assert greedy["cross_fitted"] and greedy["folds"] == 5
    names = zoo.models
    x = np.stack([ensemble_inputs(zoo.scores(m), 1.0, "probs") for m in names])
    labels = zoo.labels
    order = np.random.default_rng(4).permutation(zoo.num_examples)
    parts = np.array_split(order, 5)
    held_right = 0
    counts: dict[str, int] = {}
    for f, part in enumerate(parts):
        held = np.sort(part)
        train = np.setdiff1d(np.arange(zoo.num_examples), held)
        members, sel_acc, held_acc = _naive_greedy(
            x, labels, 0, list(range(len(names))), steps, train, held
        )
        fold = table[table.fold == f]
        kept = fold[fold.kept].iloc[-1]
        assert kept.members == ";".join(names[m] for m in members)
        assert kept.selection_acc == pytest.approx(sel_acc, abs=1e-12)
        assert kept.held_out_acc == pytest.approx(held_acc, abs=1e-12)
        assert greedy["fold_evaluation_acc"][f] == pytest.approx(held_acc, abs=1e-12)
        held_right += round(held_acc * len(held))
        for m in dict.fromkeys(members):
            counts[names[m]] = counts.get(names[m], 0) + 1
    assert greedy["evaluation_acc"] == pytest.approx(held_right / zoo.num_examples, abs=1e-12)
    assert greedy["member_folds"] == dict(
        sorted(counts.items(), key=lambda kv: (-kv[1], names.index(kv[0])))
    )
    # in-sample: chosen and scored on all examples; the cross-fitted number is never above
    members, in_sample, _ = _naive_greedy(
        x,
        labels,
        0,
        list(range(len(names))),
        steps,
        np.arange(zoo.num_examples),
        np.arange(zoo.num_examples),
    )
    assert greedy["evaluation_acc"] <= in_sample
    assert greedy["calibration_acc"] <= in_sample + 0.02  # choosing on 4/5 of the same data
    # stable members: the informative models are kept in every fold
    assert {m for m, c in greedy["member_folds"].items() if c == 5} >= {"good0", "good1", "good2"}
    assert set(greedy["members"]) == {"good0", "good1", "good2"}
    written = pd.read_csv(tmp_path / "out" / "greedy_folds.csv")
    assert len(written) == 5 * (steps + 1) and list(written.columns)[:2] == ["fold", "n_held_out"]


def test_cli_no_calibration_and_folds(tmp_path):
    zoo = _scored_zoo(tmp_path / "z", good=2, noise=3, fraction=0.3)
    result = ok(
        "ensemble",
        zoo.path,
        "--start",
        "good0",
        "--no-calibration",
        "--folds",
        "3",
        "--max-steps",
        "3",
    )
    assert "cross-fitted in 3 folds" in result.stdout and "chosen most often" in result.stdout
    out = tmp_path / "a"
    result = ok(
        "analyze",
        zoo.path,
        "--base",
        "good0",
        "--out",
        out,
        "--no-calibration",
        "--bootstrap",
        "10",
        "--max-steps",
        "3",
    )
    assert "no calibration split" in result.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["splits"]["evaluation"] == zoo.num_examples
    assert summary["headline"]["greedy"]["cross_fitted"]
    assert pd.read_csv(out / "models.csv").temperature.eq(1.0).all()
    bad = zl("analyze", zoo.path, "--base", "good0", "--out", out, "--folds", "1")
    assert bad.exit_code != 0 and "--folds" in bad.output


# ---------------------------------------------------------------------------------------------
# ids at --create: a shuffled labels file is joined, never taken by position


FOUR = ("resnet_basic_110", "random_features_256k_aug", "resnet_basic_56", "vgg16_keras")


@pytest.fixture(scope="module")
def cifar_files(tmp_path_factory):
    """The four models' decision lists, the same keyed by example id, and the labels as a
    CSV (id,label) shuffled against them."""
    folder = shared_path("cifar10.1-predictions", "cifar10-test")
    truth = np.load(shared_path("cifar10-probs", "lenet-5-cifar-10.npz"))["ground_truth"]
    tmp = tmp_path_factory.mktemp("files")
    ids = [f"test_{i:05d}.png" for i in range(len(truth))]
    for name in FOUR:
        decisions = json.loads((folder / f"{name}_predictions.json").read_text())
        (tmp / f"{name}.json").write_text(json.dumps(decisions))
        (tmp / f"{name}.keyed.json").write_text(json.dumps(dict(zip(ids, decisions))))
    order = np.random.default_rng(7).permutation(len(truth))
    (tmp / "labels.csv").write_text(
        "id,label\n" + "".join(f"{ids[i]},{int(truth[i])}\n" for i in order)
    )
    np.save(tmp / "labels.npy", truth.astype(np.int64))
    return tmp


def _build(zoo: Path, files: Path, suffix: str, *create: str) -> None:
    for k, name in enumerate(FOUR):
        extra = (*create, "--calibration-fraction", "0") if k == 0 else ()
        ok("import", zoo, files / f"{name}{suffix}", "--name", name, *extra)


def test_shuffled_labels_joined_by_id_give_byte_identical_tables(cifar_files, tmp_path):
    _build(
        tmp_path / "plain.zoo",
        cifar_files,
        ".json",
        "--create",
        "--labels",
        cifar_files / "labels.npy",
    )
    _build(
        tmp_path / "ids.zoo",
        cifar_files,
        ".keyed.json",
        "--create",
        "--labels",
        cifar_files / "labels.csv",
        "--labels-column",
        "label",
        "--labels-id-column",
        "id",
    )
    keyed = Zoo.open(tmp_path / "ids.zoo")
    assert keyed.example_ids[0] == "test_00000.png"  # the zoo takes the model file's order
    np.testing.assert_array_equal(keyed.labels, Zoo.open(tmp_path / "plain.zoo").labels)
    for which in ("plain", "ids"):
        ok(
            "analyze",
            tmp_path / f"{which}.zoo",
            "--base",
            FOUR[0],
            "--out",
            tmp_path / f"{which}.out",
            "--bootstrap",
            "50",
        )
    written = sorted(p.name for p in (tmp_path / "plain.out").glob("*.csv"))
    assert "pairs.csv" in written and "models.csv" in written
    for name in written:
        assert (tmp_path / "plain.out" / name).read_bytes() == (
            tmp_path / "ids.out" / name
        ).read_bytes(), name


def test_one_id_column_applies_to_both_files(cifar_files, tmp_path):
    # the model file is a CSV keyed by the same column name as the labels file
    decisions = json.loads((cifar_files / "vgg16_keras.keyed.json").read_text())
    rows = list(decisions.items())[::-1]  # reversed against the canonical order
    (tmp_path / "vgg.csv").write_text("id,pred\n" + "".join(f"{i},{d}\n" for i, d in rows))
    zoo = tmp_path / "z"
    result = ok(
        "import",
        zoo,
        tmp_path / "vgg.csv",
        "--name",
        "vgg",
        "--kind",
        "decisions",
        "--id-column",
        "id",
        "--create",
        "--labels",
        cifar_files / "labels.csv",
        "--labels-column",
        "label",
    )
    assert "warning" not in result.stderr
    assert round(Zoo.open(zoo).accuracy("vgg"), 4) == 0.9359


def test_positional_import_against_shuffled_ids_warns_and_strict_refuses(cifar_files, tmp_path):
    zoo = tmp_path / "z"
    args = (
        "import",
        zoo,
        cifar_files / "vgg16_keras.json",
        "--name",
        "vgg",
        "--create",
        "--labels",
        cifar_files / "labels.csv",
        "--labels-column",
        "label",
        "--labels-id-column",
        "id",
    )
    fails(*args, "--strict", match="at chance level")
    assert not zoo.exists()  # --strict with --create: no zoo left behind
    result = ok(*args)
    warning = [line for line in result.stderr.splitlines() if line.startswith("warning")]
    assert len(warning) == 1 and "--id-column" in warning[0] and "--label-offset 1" in warning[0]
    assert Zoo.open(zoo).accuracy("vgg") < 0.15  # kept, as the warning says
    # a second positional model: refused under --strict, the zoo byte for byte as it was
    before = (zoo / "zoo.json").read_bytes()
    line = fails(
        "import",
        zoo,
        cifar_files / "resnet_basic_110.json",
        "--name",
        "r110",
        "--strict",
        match="accuracy 0.10",
    )
    assert "nothing imported" in line
    assert (zoo / "zoo.json").read_bytes() == before
    assert sorted(p.name for p in (zoo / "models").iterdir()) == [
        Path(Zoo.open(zoo).model_info("vgg")["file"]).name
    ]
    # joined by id, the same model is right -- and disagrees at chance with the misaligned
    # first model, which the warning says
    result = ok("import", zoo, cifar_files / "resnet_basic_110.keyed.json", "--name", "r110")
    assert round(Zoo.open(zoo).accuracy("r110"), 4) == 0.9346
    assert (
        "agreement with the zoo's other models is at chance level (highest: " in result.stderr
        and "'vgg'" in result.stderr
    )


def test_id_first_column_without_id_column_is_named(cifar_files, tmp_path):
    zoo = tmp_path / "z"
    ok(
        "import",
        zoo,
        cifar_files / "vgg16_keras.keyed.json",
        "--name",
        "vgg",
        "--create",
        "--labels",
        cifar_files / "labels.csv",
        "--labels-column",
        "label",
        "--labels-id-column",
        "id",
    )
    # ids that do not match the zoo's (another suffix): the message points to --id-column
    (tmp_path / "top1.csv").write_text(
        "file,pred\n" + "".join(f"test_{i:05d}.JPEG,{i % 10}\n" for i in range(10000))
    )
    fails(
        "import",
        zoo,
        tmp_path / "top1.csv",
        "--name",
        "m",
        "--kind",
        "decisions",
        match="--id-column 0 (or 'file')",
    )
    # a column holding exactly the zoo's ids: joined by it even without --id-column
    decisions = json.loads((cifar_files / "resnet_basic_110.keyed.json").read_text())
    rows = list(decisions.items())[::-1]
    (tmp_path / "keyed.csv").write_text("file,pred\n" + "".join(f"{i},{d}\n" for i, d in rows))
    result = ok("import", zoo, tmp_path / "keyed.csv", "--name", "r110", "--columns", "1:2")
    assert "column 'file' holds the zoo's example ids" in result.stderr
    assert round(Zoo.open(zoo).accuracy("r110"), 4) == 0.9346


def test_one_based_labels_warn(tmp_path):
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 4, 400)
    np.save(tmp_path / "y.npy", truth + 1)  # 1-based, the offset forgotten: 5 classes
    decisions = np.where(rng.random(400) < 0.8, truth, (truth + 1) % 4)
    (tmp_path / "m.json").write_text(json.dumps(decisions.tolist()))
    result = ok(
        "import",
        tmp_path / "z",
        tmp_path / "m.json",
        "--name",
        "m",
        "--create",
        "--labels",
        tmp_path / "y.npy",
    )
    assert "at chance level" in result.stderr and "--label-offset 1" in result.stderr
    fixed = ok(
        "import",
        tmp_path / "z2",
        tmp_path / "m.json",
        "--name",
        "m",
        "--create",
        "--labels",
        tmp_path / "y.npy",
        "--label-offset",
        "1",
    )
    assert "warning" not in fixed.stderr


# ---------------------------------------------------------------------------------------------
# class names and abstentions: a psychophysics decision table


CATEGORIES = ["airplane", "bear", "bicycle", "bird", "boat", "bottle", "car", "cat"]


@pytest.fixture
def sketch(tmp_path):
    """200 trials of a 8-way sketch task: labels as category names keyed by image id (the
    rows shuffled), three observers' decision tables whose ids carry a subject prefix, with
    'na' non-answers, in their own row orders."""
    rng = np.random.default_rng(11)
    n = 200
    images = [f"sketch_{i:04d}.png" for i in range(n)]
    truth = rng.integers(0, len(CATEGORIES), n)
    order = rng.permutation(n)
    (tmp_path / "truth.csv").write_text(
        "image,category\n" + "".join(f"{images[i]},{CATEGORIES[truth[i]]}\n" for i in order)
    )
    responses = {}
    for s, skill in enumerate((0.85, 0.7, 0.6), start=1):
        answer = np.where(rng.random(n) < skill, truth, rng.integers(0, len(CATEGORIES), n))
        text = np.asarray([CATEGORIES[a] for a in answer], dtype=object)
        text[rng.random(n) < 0.08] = "na"
        responses[s] = text
        rows = rng.permutation(n)
        (tmp_path / f"subject{s}.csv").write_text(
            "subj,imagename,object_response\n"
            + "".join(f"s{s:02d},s{s:02d}_{images[i]},{text[i]}\n" for i in rows)
        )
    return tmp_path, images, truth, responses


def _import_observers(folder: Path, zoo: Path) -> None:
    for s in (1, 2, 3):
        create = (
            [
                "--create",
                "--labels",
                folder / "truth.csv",
                "--labels-column",
                "category",
                "--labels-id-column",
                "image",
                "--calibration-fraction",
                "0",
            ]
            if s == 1
            else []
        )
        ok(
            "import",
            zoo,
            folder / f"subject{s}.csv",
            "--name",
            f"s{s:02d}",
            "--columns",
            "2:3",
            "--id-column",
            "imagename",
            "--id-prefix",
            f"s{s:02d}_",
            "--framework",
            "human",
            *create,
        )


def test_decision_table_with_names_and_na(sketch, tmp_path):
    folder, images, truth, responses = sketch
    zoo = tmp_path / "sketch.zoo"
    _import_observers(folder, zoo)
    z = Zoo.open(zoo)
    assert z.class_names == sorted(CATEGORIES)  # built from the label names, sorted
    info = json.loads(ok("info", zoo, "--json").stdout)
    position = {name: i for i, name in enumerate(z.example_ids.tolist())}
    perm = np.asarray([position[i] for i in images])  # zoo row of each image
    right = {}
    for s, text in responses.items():
        name = f"s{s:02d}"
        given = np.asarray([CATEGORIES[t] for t in truth], dtype=object)
        right[name] = np.asarray(text == given, dtype=bool)  # 'na' is never the category
        row = next(r for r in info["models"] if r["model"] == name)
        assert row["abstentions"] == int(np.sum(text == "na")) > 0
        assert row["accuracy_all"] == pytest.approx(right[name].mean(), abs=1e-12)
        stored = z.predictions(name)[perm]
        assert ((stored == -1) == (text == "na")).all()
    table = ok("info", zoo).stdout
    assert "abstentions" in table
    cells = [[c.strip() for c in line.split("│")] for line in table.splitlines()]
    s01 = next(row for row in cells if "s01" in row)
    assert str(int(np.sum(responses[1] == "na"))) in s01
    out = tmp_path / "out"
    ok("analyze", zoo, "--base", "s01", "--out", out, "--bootstrap", "0")
    pairs = pd.read_csv(out / "pairs.csv")
    for row in pairs.itertuples():
        a, b = right[row.model_a], right[row.model_b]
        assert row.error_consistency == pytest.approx(kappa_from_definition(a, b), abs=1e-12)
        assert row.error_inconsistency == pytest.approx(np.mean(a != b), abs=1e-12)
    models = pd.read_csv(out / "models.csv").set_index("model")
    for name, r in right.items():
        assert models.loc[name, "abstentions"] == int(
            np.sum(~np.isin(responses[int(name[1:])], CATEGORIES))
        )
        assert models.loc[name, "accuracy"] == pytest.approx(r.mean(), abs=1e-12)


def test_unknown_class_name_names_the_closest(sketch, tmp_path):
    folder, *_ = sketch
    zoo = tmp_path / "z"
    _import_observers(folder, zoo)
    (tmp_path / "typo.csv").write_text(
        "imagename,response\n"
        + "".join(f"sketch_{i:04d}.png,{'airplain' if i == 5 else 'cat'}\n" for i in range(200))
    )
    before = (zoo / "zoo.json").read_bytes()
    fails(
        "import",
        zoo,
        tmp_path / "typo.csv",
        "--name",
        "typo",
        "--id-column",
        "imagename",
        match="unknown class name 'airplain' (closest: 'airplane')",
    )
    assert (zoo / "zoo.json").read_bytes() == before


def test_abstain_value_and_json_null(sketch, tmp_path):
    folder = sketch[0]
    zoo = tmp_path / "z"
    _import_observers(folder, zoo)
    z = Zoo.open(zoo)
    ids = z.example_ids.tolist()
    labels = z.labels
    # a JSON object with names, null and a custom no-answer value
    entries = {
        i: (None if k % 10 == 0 else "?" if k % 10 == 1 else z.class_names[labels[k]])
        for k, i in enumerate(ids)
    }
    (tmp_path / "m.json").write_text(json.dumps(entries))
    ok("import", zoo, tmp_path / "m.json", "--name", "m", "--abstain", "?")
    z = Zoo.open(zoo)
    pred = z.predictions("m")
    assert (pred[::10] == -1).all() and (pred[1::10] == -1).all()
    assert z.model_info("m")["abstentions"] == 40
    assert z.accuracy("m") == pytest.approx(0.8)
    # without --abstain, '?' is an unknown class name
    fails("import", zoo, tmp_path / "m.json", "--name", "m2", match="unknown class name '?'")


def test_labels_as_names_no_longer_refused(tmp_path):
    # was: "'boat' is not a number" even with --class-names
    (tmp_path / "y.csv").write_text("label\n" + "boat\nairplane\nboat\ncar\n" * 25)
    (tmp_path / "d.csv").write_text("pred\n" + "boat\nairplane\nboat\nboat\n" * 25)
    ok(
        "import",
        tmp_path / "z",
        tmp_path / "d.csv",
        "--name",
        "m",
        "--create",
        "--labels",
        tmp_path / "y.csv",
        "--labels-column",
        "label",
        "--class-names",
        "car,boat,airplane",
    )
    z = Zoo.open(tmp_path / "z")
    assert z.class_names == ["car", "boat", "airplane"]
    assert z.labels[:4].tolist() == [1, 2, 1, 0] and z.accuracy("m") == 0.75


@pytest.mark.parametrize("form", ["comma", "space", "keras", "json_list", "lines"])
def test_class_name_files(tmp_path, form):
    wnids = ["n01440764", "n01443537", "n01484850"]
    names = ["tench", "goldfish", "great white shark"]
    file = tmp_path / ("classes.json" if form in ("keras", "json_list") else "classes.txt")
    if form == "comma":
        file.write_text("".join(f"{w},{n}\n" for w, n in zip(wnids, names)))
    elif form == "space":  # LOC_synset_mapping.txt
        file.write_text("".join(f"{w} {n}\n" for w, n in zip(wnids, names)))
    elif form == "keras":  # imagenet_class_index.json
        file.write_text(json.dumps({str(i): [w, n] for i, (w, n) in enumerate(zip(wnids, names))}))
    elif form == "json_list":
        file.write_text(json.dumps(names))
    else:
        file.write_text("\n".join(names) + "\n")
    with_wnids = form in ("comma", "space", "keras")
    truth = [0, 1, 2, 2, 1, 0] * 10
    (tmp_path / "y.csv").write_text(
        "file,label\n"
        + "".join(f"f{i}.JPEG,{(wnids if with_wnids else names)[t]}\n" for i, t in enumerate(truth))
    )
    (tmp_path / "d.csv").write_text(
        "file,pred\n" + "".join(f"f{i}.JPEG,{names[t]}\n" for i, t in enumerate(truth))
    )
    ok(
        "import",
        tmp_path / "z",
        tmp_path / "d.csv",
        "--name",
        "m",
        "--id-column",
        "file",
        "--create",
        "--labels",
        tmp_path / "y.csv",
        "--labels-column",
        "label",
        "--class-names",
        file,
    )
    z = Zoo.open(tmp_path / "z")
    assert z.class_names == names  # the readable names, never "n01440764,tench"
    assert z.class_aliases == ({w: i for i, w in enumerate(wnids)} if with_wnids else {})
    assert z.labels.tolist() == truth and z.accuracy("m") == 1.0


def test_abstentions_in_measures():
    from zoolens.measure.agreement import correctness, pairwise_agreement
    from zoolens.measure.ensemble import majority_vote

    labels = np.array([0, 1, 2, 1])
    pred = np.array([[0, -1, 2, -1], [0, 1, -1, -1], [1, -1, -1, -1]])
    right = correctness(pred, labels)
    assert right.tolist() == [
        [True, False, True, False],
        [True, True, False, False],
        [False, False, False, False],
    ]
    multi = np.eye(3, dtype=np.uint8)[labels]
    assert correctness(pred, multi).tolist() == right.tolist()
    assert majority_vote(pred, 3).tolist() == [0, 1, 2, -1]  # abstentions cast no vote
    agree = pairwise_agreement(right)
    assert agree["error_consistency"][0, 1] == pytest.approx(
        kappa_from_definition(right[0], right[1])
    )


# ---------------------------------------------------------------------------------------------
# the Python API, and the README section


def test_python_api_for_public_dumps(tmp_path):
    from zoolens.zoo.classes import ABSTAIN, ClassIndex, read_class_names
    from zoolens.zoo.importers import import_file, labels_for_create

    ids = [f"im{i:03d}" for i in range(60)]
    truth = np.random.default_rng(1).integers(0, 3, 60)
    order = np.random.default_rng(2).permutation(60)
    (tmp_path / "labels.csv").write_text(
        "id,label\n" + "".join(f"{ids[i]},{['cat', 'dog', 'emu'][truth[i]]}\n" for i in order)
    )
    answers = {ids[i]: (None if i % 6 == 0 else ["cat", "dog", "emu"][truth[i]]) for i in range(60)}
    (tmp_path / "m.json").write_text(json.dumps(answers))
    names, aliases = read_class_names("cat,dog,emu")
    y, zoo_ids = labels_for_create(
        tmp_path / "labels.csv",
        tmp_path / "m.json",
        column="label",
        labels_id_column="id",
        classes=ClassIndex(names, aliases),
    )
    assert zoo_ids.tolist() == ids and y.tolist() == truth.tolist()  # joined, model order
    zoo = Zoo.create(
        tmp_path / "z", y, class_names=names, example_ids=zoo_ids, calibration_fraction=0.0
    )
    assert import_file(zoo, tmp_path / "m.json", "m") == "decisions"
    pred = zoo.predictions("m")
    assert (pred[::6] == ABSTAIN).all() and zoo.model_info("m")["abstentions"] == 10
    assert zoo.accuracy("m") == pytest.approx(50 / 60)


def test_readme_public_dump_commands_use_real_options():
    from typer.main import get_command

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme[readme.index("## Import a public prediction dump") :]
    section = section[: section.index("\n## ", 5)]
    commands = [  # each block up to its closing fence (the prose after it is not a command)
        " ".join(block.split("```")[0].replace("\\\n", " ").split("\n"))
        for block in section.split("```bash\n")[1:]
    ]
    seen = set()
    for block in commands:
        for command in block.split("zoolens ")[1:]:
            verb = command.split()[0]
            options = {t.split("=")[0] for t in command.split() if t.startswith("--")}
            known = {
                o
                for param in get_command(app).commands[verb].params
                for o in (*param.opts, *param.secondary_opts)
            }
            assert options <= known, (verb, options - known)
            seen.add(verb)
    assert seen == {"import", "info", "analyze"}


def test_label_column_of_names_in_the_model_file(tmp_path):
    rng = np.random.default_rng(5)
    names = np.asarray(["boat", "airplane", "car"])
    truth = rng.integers(0, 3, 90)
    pred = np.where(rng.random(90) < 0.9, truth, (truth + 1) % 3)
    (tmp_path / "a.csv").write_text(
        "file,label,pred\n"
        + "".join(f"f{i}.png,{names[t]},{names[p]}\n" for i, (t, p) in enumerate(zip(truth, pred)))
    )
    ok(
        "import",
        tmp_path / "z",
        tmp_path / "a.csv",
        "--name",
        "a",
        "--create",
        "--label-column",
        "label",
        "--id-column",
        "file",
        "--columns",
        "2:3",
    )
    z = Zoo.open(tmp_path / "z")
    assert z.class_names == ["airplane", "boat", "car"]
    assert [z.class_names[c] for c in z.labels] == names[truth].tolist()
    assert z.accuracy("a") == pytest.approx(np.mean(pred == truth))
    # a second file's label column (names) is checked against the zoo's labels
    order = rng.permutation(90)
    (tmp_path / "b.csv").write_text(
        "file,label,pred\n"
        + "".join(f"f{i}.png,{names[truth[i]]},{names[truth[i]]}\n" for i in order)
    )
    ok(
        "import",
        tmp_path / "z",
        tmp_path / "b.csv",
        "--name",
        "b",
        "--label-column",
        "label",
        "--id-column",
        "file",
        "--columns",
        "2:3",
    )
    assert Zoo.open(tmp_path / "z").accuracy("b") == 1.0
    (tmp_path / "c.csv").write_text(
        "file,label,pred\n"
        + "".join(f"f{i}.png,{names[truth[j]]},car\n" for i, j in zip(range(90), order))
    )
    fails(
        "import",
        tmp_path / "z",
        tmp_path / "c.csv",
        "--name",
        "c",
        "--label-column",
        "label",
        "--id-column",
        "file",
        "--columns",
        "2:3",
        match="disagree with the zoo's",
    )
