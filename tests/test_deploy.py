"""From finding to shipping (issue 18) on real models and real images: the four CIFAR-10
ResNets of ../shared/data collected on a subset of the JPEG test images (costs on their
cards), analysed with and without a cost budget, the greedy ensemble and the best sidekick
exported, and `zoolens predict` run on the JPEGs: its predictions equal, image by image, the
ensembles the analysis scored (recomputed here from the zoo in float64 numpy), and its
accuracy equals the reported one. Then the bad inputs: one line, exit 1, nothing written.
"""

from __future__ import annotations

import json
import shutil
from itertools import combinations

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from conftest import shared_path
from zoolens.cli import app

torch.set_num_threads(1)

PER_CLASS = 20  # 200 images: 40 calibration, 160 evaluation (the zoo's default 20 % split)
DEPTHS = {
    "resnet20": "resnet20-12fca82f.th",
    "resnet32": "resnet32-d509ac18.th",
    "resnet44": "resnet44-014dd654.th",
    "resnet56": "resnet56-4bfd9763.th",
}
BASE = "resnet56"
BUDGET_GMACS = 0.2  # below resnet56 + resnet44 (0.2227 GMACs), above resnet56 + resnet32


def cifar_resnet_macs(n: int) -> int:
    """Multiply-accumulates of ResNet-(6n+2) on a 32x32 image (He et al. 2016, Sec. 4.2):
    3x3 convolutions (H_out * W_out * C_out * C_in * 9) and the 64 -> 10 classifier; the
    option-A shortcuts, batch norm, ReLU and pooling have no multiplies-accumulates."""
    conv = lambda hw, c_out, c_in: hw * hw * c_out * c_in * 9  # noqa: E731
    total = conv(32, 16, 3)
    total += 2 * n * conv(32, 16, 16)
    total += conv(16, 32, 16) + (2 * n - 1) * conv(16, 32, 32)
    total += conv(8, 64, 32) + (2 * n - 1) * conv(8, 64, 64)
    return total + 64 * 10


def _run(*args):
    return CliRunner().invoke(app, ["--quiet", *map(str, args)])


def _error_line(res) -> str:
    """The single error line of a failed command (asserts there is exactly one)."""
    assert res.exit_code != 0, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.output
    assert "Traceback" not in res.output
    return lines[0]


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    """Collect, analyse (plain and under a budget), export greedy and sidekick: once."""
    src = shared_path("cifar10-test-jpeg", "test")
    canon = np.load(shared_path("cifar10-probs", "lenet-5-cifar-10.npz"))["ground_truth"]
    canon = canon.astype(np.int64)
    root = tmp_path_factory.mktemp("ship")
    data = root / "data"
    for cls in sorted(p.name for p in src.iterdir()):
        (data / cls).mkdir(parents=True)
        for f in sorted((src / cls).iterdir())[:PER_CLASS]:
            (data / cls / f.name).symlink_to(f)
    # canonical test order of the subset: the k-th image of class c is its k-th example
    rank = np.zeros(len(canon), dtype=np.int64)
    for c in range(10):
        rank[canon == c] = np.arange((canon == c).sum())
    np.save(root / "order.npy", canon[rank < PER_CLASS])
    lines = []
    for name, file in DEPTHS.items():
        lines += [
            "[[models]]",
            'spec = "python:zoolens.collect.cifar_resnet:pretrained"',
            f'name = "{name}"',
            f'kwargs = {{ checkpoint = "{shared_path("cifar10-resnets", file)}" }}',
        ]
    (root / "models.toml").write_text("\n".join(lines) + "\n")
    res = _run(
        "collect",
        root / "models.toml",
        "--data",
        data,
        "--zoo",
        root / "zoo",
        "--create",
        "--threads",
        "1",
        "--workers",
        "0",
        "--batch-size",
        "50",
        "--order-by-labels",
        root / "order.npy",
    )
    assert res.exit_code == 0, res.output
    for out, extra in (("results", []), ("budget", ["--budget", f"gmacs={BUDGET_GMACS}"])):
        res = _run(
            "analyze",
            root / "zoo",
            "--base",
            BASE,
            "--out",
            root / out,
            "--bootstrap",
            "200",
            *extra,
        )
        assert res.exit_code == 0, res.output
    for which in ("greedy", "sidekick"):
        res = _run("export", root / "results", "--ensemble", which, "--out", root / f"{which}.json")
        assert res.exit_code == 0, res.output
    return root


def _zoo(root):
    from zoolens import Zoo

    return Zoo.open(root / "zoo")


def _ensemble_predictions(zoo, weights: dict, temperatures: dict, rows) -> np.ndarray:
    """argmax of Σ w_m softmax(z_m / T_m), in float64 numpy (the oracle, not zoolens code)."""
    total = 0.0
    for name, weight in weights.items():
        z = zoo.scores(name, rows=rows).astype(np.float64) / temperatures[name]
        p = np.exp(z - z.max(axis=1, keepdims=True))
        total = total + weight * p / p.sum(axis=1, keepdims=True)
    return np.asarray(total).argmax(axis=1)


def test_collect_fills_costs_and_resnet56_macs_match_the_formula(shipped):
    zoo = _zoo(shipped)
    from zoolens.collect.cifar_resnet import resnet20, resnet56

    cost56 = zoo.card("resnet56").cost
    assert cost56.macs == cifar_resnet_macs(9) == 125_485_696
    assert zoo.card("resnet20").cost.macs == cifar_resnet_macs(3)
    assert cost56.params == sum(p.numel() for p in resnet56().parameters())
    assert zoo.card("resnet20").cost.params == sum(p.numel() for p in resnet20().parameters())
    for name in DEPTHS:
        cost = zoo.card(name).cost
        assert cost.latency_ms > 0 and cost.batch_size == 50 and cost.device == "cpu"
        assert cost.input_shape == [3, 32, 32]
        assert zoo.card(name).collect["spec"] == "python:zoolens.collect.cifar_resnet:pretrained"
    # deeper costs more: MACs are counted, not timed (a latency comparison would be a
    # wall-clock assertion, which flips on a loaded machine)
    assert zoo.card("resnet56").cost.macs > zoo.card("resnet20").cost.macs


def _predict(root, ensemble, name):
    out = root / f"{name}.csv"
    res = _run(
        "predict",
        ensemble,
        root / "data",
        "--out",
        out,
        "--top-k",
        "3",
        "--batch-size",
        "50",
        "--threads",
        "1",
    )
    assert res.exit_code == 0, res.output
    return pd.read_csv(out)


def test_predict_reproduces_the_greedy_ensemble_analyze_scored(shipped):
    zoo = _zoo(shipped)
    summary = json.loads((shipped / "results" / "summary.json").read_text())
    spec = json.loads((shipped / "greedy.json").read_text())
    greedy = summary["headline"]["greedy"]
    weights = {m: greedy["members"].count(m) for m in dict.fromkeys(greedy["members"])}
    assert {m["name"]: m["weight"] for m in spec["members"]} == weights
    models = pd.read_csv(shipped / "results" / "models.csv").set_index("model")
    temperatures = models["temperature"].to_dict()
    for member in spec["members"]:
        assert member["temperature"] == temperatures[member["name"]]
        assert len(member["checkpoints"]) == 1 and len(member["checkpoints"][0]["sha256"]) == 64
    assert spec["version"] == 1 and spec["combine"] == "probs"
    assert spec["class_names"] == list(zoo.class_names)
    assert spec["accuracy"]["value"] == greedy["evaluation_acc"]
    assert spec["accuracy"]["lo"] <= spec["accuracy"]["value"] <= spec["accuracy"]["hi"]

    table = _predict(shipped, shipped / "greedy.json", "greedy-pred")
    assert len(table) == zoo.num_examples
    by_id = table.set_index("image")
    ev = np.asarray(zoo.evaluation_indices)
    ids = np.asarray(zoo.example_ids)[ev]
    expected = _ensemble_predictions(zoo, weights, temperatures, ev)
    got = by_id.loc[ids, "top1_index"].to_numpy()
    np.testing.assert_array_equal(got, expected)
    accuracy = float(np.mean(got == np.asarray(zoo.labels)[ev]))
    assert accuracy == greedy["evaluation_acc"] == spec["accuracy"]["value"]
    # the label column is the folder's class; the probabilities are sorted and sum below 1
    assert (
        by_id.loc[ids, "label"].to_numpy()
        == np.asarray(zoo.class_names)[np.asarray(zoo.labels)[ev]]
    ).all()
    probs = table[["top1_prob", "top2_prob", "top3_prob"]].to_numpy()
    assert (np.diff(probs, axis=1) <= 0).all() and (probs.sum(axis=1) <= 1 + 1e-9).all()


def test_predict_and_load_ensemble_reproduce_the_best_sidekick(shipped):
    zoo = _zoo(shipped)
    summary = json.loads((shipped / "results" / "summary.json").read_text())
    best = summary["headline"]["best_sidekick"]
    pairs = pd.read_csv(shipped / "results" / "pairs.csv")
    row = pairs[
        ((pairs.model_a == BASE) & (pairs.model_b == best["model"]))
        | ((pairs.model_b == BASE) & (pairs.model_a == best["model"]))
    ].iloc[0]
    spec = json.loads((shipped / "sidekick.json").read_text())
    assert [m["name"] for m in spec["members"]] == [BASE, best["model"]]
    table = _predict(shipped, shipped / "sidekick.json", "sidekick-pred").set_index("image")
    ev = np.asarray(zoo.evaluation_indices)
    got = table.loc[np.asarray(zoo.example_ids)[ev], "top1_index"].to_numpy()
    models = pd.read_csv(shipped / "results" / "models.csv").set_index("model")
    expected = _ensemble_predictions(
        zoo, {BASE: 1, best["model"]: 1}, models["temperature"].to_dict(), ev
    )
    np.testing.assert_array_equal(got, expected)
    assert float(np.mean(got == np.asarray(zoo.labels)[ev])) == row.ensemble_acc
    assert spec["accuracy"]["value"] == row.ensemble_acc

    # Python: load_ensemble is an nn.Module giving the same classes and probabilities
    from PIL import Image

    import zoolens
    from zoolens.collect.cifar_resnet import cifar_transform

    model = zoolens.load_ensemble(shipped / "sidekick.json")
    assert isinstance(model, torch.nn.Module) and model.class_names == list(zoo.class_names)
    ids = list(table.index[:8])
    images = [Image.open(shipped / "data" / i).convert("RGB") for i in ids]
    x = torch.stack([cifar_transform()(im) for im in images])
    np.testing.assert_array_equal(model.predict(x).numpy(), table.loc[ids, "top1_index"])
    np.testing.assert_array_equal(model.predict(images).numpy(), table.loc[ids, "top1_index"])
    probs = model(x).numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-9)
    np.testing.assert_allclose(probs.max(axis=1), table.loc[ids, "top1_prob"], atol=1e-5)


def test_budget_picks_the_best_fitting_pair_and_greedy_fits(shipped, tmp_path):
    zoo = _zoo(shipped)
    summary = json.loads((shipped / "budget" / "summary.json").read_text())
    budget = summary["budget"]
    assert budget["limits"] == {"gmacs": BUDGET_GMACS} and budget["left_out_without_cost"] == []
    macs = {name: cifar_resnet_macs((int(name[6:]) - 2) // 6) for name in DEPTHS}
    assert macs["resnet56"] + macs["resnet44"] > BUDGET_GMACS * 1e9
    # exhaustive search over the pairs with the base, accuracies recomputed from the zoo
    models = pd.read_csv(shipped / "budget" / "models.csv").set_index("model")
    temperatures = models["temperature"].to_dict()
    ev = np.asarray(zoo.evaluation_indices)
    labels = np.asarray(zoo.labels)[ev]
    fitting = {}
    for a, b in combinations(DEPTHS, 2):
        if BASE in (a, b) and macs[a] + macs[b] <= BUDGET_GMACS * 1e9:
            pred = _ensemble_predictions(zoo, {a: 1, b: 1}, temperatures, ev)
            fitting[b if a == BASE else a] = float(np.mean(pred == labels))
    assert "resnet44" not in fitting and len(fitting) == 2
    best = max(fitting.values())
    chosen = summary["headline"]["best_sidekick"]
    assert budget["best_sidekick"]["model"] == chosen["model"]
    assert fitting[chosen["model"]] == best == chosen["ensemble_acc"]
    greedy = summary["headline"]["greedy"]
    assert sum(macs[m] for m in set(greedy["members"])) <= BUDGET_GMACS * 1e9
    table = pd.read_csv(shipped / "budget" / "greedy.csv")
    for members in table.members:
        assert sum(macs[m] for m in set(members.split(";"))) <= BUDGET_GMACS * 1e9

    # pareto.csv: every single, pair and greedy prefix, cost in gmacs, front by definition
    pareto = pd.read_csv(shipped / "budget" / "pareto.csv")
    assert set(pareto.kind) >= {"single", "pair"} and (pareto.cost_unit == "gmacs").all()
    for row in pareto.itertuples():
        assert row.cost == pytest.approx(sum(macs[m] for m in set(row.members.split(";"))) / 1e9)
        assert row.fits_budget == (row.cost <= BUDGET_GMACS)
        dominated = any(
            (
                o.cost <= row.cost
                and o.accuracy >= row.accuracy
                and (o.cost < row.cost or o.accuracy > row.accuracy)
            )
            or (o.cost == row.cost and o.accuracy == row.accuracy and o.Index < row.Index)
            for o in pareto.itertuples()
        )
        assert row.on_front == (not dominated)

    # the report's figure plots exactly the table's points, with the base marked
    from zoolens.report.figures import fig_pareto
    from zoolens.report.tables import load_results

    drawn = fig_pareto(load_results(shipped / "budget"))
    points = drawn.data["points"]
    plotted = sorted(zip(points["members"], points["cost"], points["accuracy"]))
    assert plotted == sorted(zip(pareto.members, pareto.cost, pareto.accuracy))
    offsets = np.concatenate([c.get_offsets() for c in drawn.figure.axes[0].collections])
    np.testing.assert_allclose(
        sorted(map(tuple, offsets)), sorted(zip(pareto.cost, pareto.accuracy))
    )
    base_row = pareto[(pareto.kind == "single") & (pareto.members == BASE)].iloc[0]
    assert drawn.data["base"] == {
        "model": BASE,
        "cost": base_row.cost,
        "accuracy": base_row.accuracy,
    }
    assert drawn.data["budget"] == BUDGET_GMACS
    from zoolens.report import build_report

    report = build_report(shipped / "budget", tmp_path / "report.html", warn=None)
    assert report.figure_data["pareto"] == drawn.data


def test_bad_budget_one_line_nothing_written(shipped, tmp_path):
    res = _run(
        "analyze", shipped / "zoo", "--base", BASE, "--out", tmp_path / "a", "--budget", "watts=3"
    )
    assert "unknown unit 'watts'" in _error_line(res)
    assert not (tmp_path / "a").exists()
    # a unit no card has: a copy of the zoo with one model's cost removed everywhere
    from zoolens import Zoo

    shutil.copytree(shipped / "zoo", tmp_path / "zoo")
    zoo = Zoo.open(tmp_path / "zoo")
    for name in zoo.models:
        card = zoo.card(name).model_dump()
        card["cost"] = {**card["cost"], "latency_ms": None}
        zoo.set_card(name, card)
    res = _run(
        "analyze",
        tmp_path / "zoo",
        "--base",
        BASE,
        "--out",
        tmp_path / "b",
        "--budget",
        "latency_ms=20",
    )
    assert "no model card has a cost in latency_ms" in _error_line(res)
    assert not (tmp_path / "b").exists()


def _edited(shipped, tmp_path, change):
    spec = json.loads((shipped / "greedy.json").read_text())
    change(spec)
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(spec))
    return path


@pytest.mark.parametrize(
    "change, message, extra",
    [
        (
            lambda s: s["members"][0]["collect"].update(
                spec="python:zoolens.collect.cifar_resnet:nope"
            ),
            "imports and calls Python code the file names; refused",
            [],
        ),
        (
            lambda s: s["members"][0]["collect"].update(
                spec="python:zoolens.collect.cifar_resnet:nope"
            ),
            "has no function nope",
            ["--trust-code"],
        ),
        (
            lambda s: s.update(class_names=s["class_names"][:9]),
            "gives 10 classes, the ensemble file lists 9",
            [],
        ),
        (
            lambda s: s["members"][0]["checkpoints"][0].update(sha256="0" * 64),
            "no longer matches its recorded sha256",
            [],
        ),
        (lambda s: s.update(version=2), "ensemble file version 2", []),
        (lambda s: s["members"][0].update(temperature=-1), "invalid ensemble file", []),
    ],
)
def test_hand_edited_ensemble_file_one_line_nothing_written(
    shipped, tmp_path, change, message, extra
):
    path = _edited(shipped, tmp_path, change)
    out = tmp_path / "pred.csv"
    res = _run("predict", path, shipped / "data", "--out", out, "--threads", "1", *extra)
    assert message in _error_line(res)
    assert not out.exists()


def test_images_of_another_size_one_line_nothing_written(shipped, tmp_path):
    from PIL import Image

    data = tmp_path / "big"
    for cls in ("cat", "dog"):
        (data / cls).mkdir(parents=True)
        for f in sorted((shipped / "data" / cls).iterdir())[:3]:
            Image.open(f).convert("RGB").resize((64, 64)).save(data / cls / f.name)
    out = tmp_path / "pred.csv"
    res = _run(
        "predict",
        shipped / "greedy.json",
        data,
        "--out",
        out,
        "--zoo",
        tmp_path / "newzoo",
        "--create",
    )
    line = _error_line(res)
    assert "preprocessed to [3, 64, 64]" in line and "takes [3, 32, 32]" in line
    assert not out.exists() and not (tmp_path / "newzoo").exists()


def test_export_unknown_member_one_line_nothing_written(shipped, tmp_path):
    out = tmp_path / "e.json"
    res = _run("export", shipped / "results", "--ensemble", "resnet20,resnet99", "--out", out)
    assert "unknown model 'resnet99'" in _error_line(res)
    assert not out.exists()


def test_predict_adds_member_outputs_to_a_new_zoo(shipped, tmp_path):
    """--zoo: the members' outputs on the images become a zoo, equal to the collected one."""
    from zoolens import Zoo

    out = tmp_path / "pred.csv"
    res = _run(
        "predict",
        shipped / "sidekick.json",
        shipped / "data",
        "--out",
        out,
        "--zoo",
        tmp_path / "new",
        "--create",
        "--batch-size",
        "50",
        "--threads",
        "1",
    )
    assert res.exit_code == 0, res.output
    new, old = Zoo.open(tmp_path / "new"), _zoo(shipped)
    spec = json.loads((shipped / "sidekick.json").read_text())
    names = [m["name"] for m in spec["members"]]
    assert new.models == names
    rows = old.example_ids.argsort()
    new_rows = new.example_ids.argsort()
    for name in names:
        np.testing.assert_array_equal(new.scores(name)[new_rows], old.scores(name)[rows])
        assert new.card(name).cost == old.card(name).cost


def _random_ensemble(tmp_path):
    """Two random-init CIFAR ResNets (2 classes) as an ensemble file, and 2 x 6 images."""
    from PIL import Image

    from zoolens.deploy.schema import EnsembleFile, Member

    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        (tmp_path / "data" / cls).mkdir(parents=True)
        for k in range(6):
            Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(
                tmp_path / "data" / cls / f"{k:02d}.png"
            )
    spec = "python:zoolens.collect.cifar_resnet:pretrained"
    members = [
        Member(
            name=f"r{d}",
            collect={"spec": spec, "seed": s, "kwargs": {"depth": d, "num_classes": 2, "seed": s}},
            temperature=t,
            weight=w,
            input_shape=[3, 32, 32],
        )
        for d, s, t, w in ((8, 0, 1.3, 2), (14, 1, 0.8, 1))
    ]
    ensemble = EnsembleFile(kind="models", combine="probs", class_names=["a", "b"], members=members)
    path = tmp_path / "e.json"
    path.write_text(ensemble.model_dump_json())
    return path


def test_predict_combines_members_as_defined_and_ray_gives_the_same(tmp_path, monkeypatch):
    """Σ w·softmax(z/T) from each member's own forward pass (numpy oracle), locally and as
    Ray tasks (same batches: same classes, probabilities within float32 noise)."""
    from zoolens.collect.cifar_resnet import cifar_transform, pretrained
    from zoolens.collect.images import ImageFolder
    from zoolens.collect.runner import RunOptions
    from zoolens.deploy.predict import predict_images

    path = _random_ensemble(tmp_path)
    opts = RunOptions(batch_size=4, shard_size=8, threads=1, device="cpu")
    local = predict_images(path, tmp_path / "data", options=opts)
    folder = ImageFolder(tmp_path / "data", transform=cifar_transform())
    x = torch.stack([folder[i] for i in range(len(folder))])
    total = 0.0
    for depth, seed, t, w in ((8, 0, 1.3, 2), (14, 1, 0.8, 1)):
        net, _, _ = pretrained(depth=depth, num_classes=2, seed=seed)
        with torch.no_grad():
            z = net(x)[0].double().numpy() / t
        p = np.exp(z - z.max(1, keepdims=True))
        total = total + w * p / p.sum(1, keepdims=True)
    np.testing.assert_allclose(local.probs, total / 3, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(local.predictions, total.argmax(1))
    assert local.accuracy == float(np.mean(total.argmax(1) == folder.labels))

    ray = pytest.importorskip("ray")
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        remote = predict_images(path, tmp_path / "data", options=opts, use_ray=True)
    finally:
        ray.shutdown()
    np.testing.assert_array_equal(remote.predictions, local.predictions)
    np.testing.assert_allclose(remote.probs, local.probs, rtol=1e-5, atol=1e-6)
    assert remote.ids.tolist() == local.ids.tolist()
