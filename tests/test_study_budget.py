"""Costs on cards, budgeted selection and the Pareto front on synthetic zoos, against brute
force (every pair, every point against every other, every candidate at each greedy step)."""

from __future__ import annotations

import json
from itertools import combinations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from zoolens.cli import app
from zoolens.errors import ZoolensError
from zoolens.measure.ensemble import greedy_forward_selection
from zoolens.study.budget import pareto_front
from zoolens.zoo.cards import cost_from_items, parse_cost_items

runner = CliRunner()
GMACS = {"m0": 1.0, "m1": 0.5, "m2": 2.0, "m3": 0.25, "m4": None}  # m4: no cost


def _zoo(path, n=400, c=5, seed=0):
    from zoolens.zoo.store import Zoo

    rng = np.random.default_rng(seed)
    labels = rng.integers(0, c, n)
    zoo = Zoo.create(path, labels, calibration_fraction=0.3, seed=seed)
    for k, (name, gmacs) in enumerate(GMACS.items()):
        z = rng.normal(size=(n, c)).astype(np.float32)
        z[np.arange(n), labels] += 0.6 + 0.3 * k
        card = {"arch": f"net{k}", "framework": "supervised"}
        if gmacs is not None:
            card["cost"] = {"macs": gmacs * 1e9, "params": int(gmacs * 1e6)}
        zoo.add(name, logits=z, card=card)
    return zoo


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    return _zoo(tmp_path_factory.mktemp("budget") / "zoo")


def _dominated(cost, acc, i):
    return any(
        (cost[j] <= cost[i] and acc[j] >= acc[i] and (cost[j] < cost[i] or acc[j] > acc[i]))
        or (cost[j] == cost[i] and acc[j] == acc[i] and j < i)
        for j in range(len(cost))
        if j != i
    )


def test_pareto_front_equals_brute_force_with_ties():
    rng = np.random.default_rng(3)
    for _ in range(50):
        n = int(rng.integers(1, 30))
        cost = rng.integers(0, 6, n).astype(float)  # many ties on purpose
        acc = rng.integers(0, 6, n) / 5
        expected = [not _dominated(cost, acc, i) for i in range(n)]
        assert pareto_front(cost, acc).tolist() == expected


@pytest.mark.parametrize(
    "text, message",
    [
        ("watts=3", "unknown unit 'watts'"),
        ("gflops", "UNIT=VALUE"),
        ("gflops=1,gflops=2", "given twice"),
        ("gflops=-1", "non-negative"),
        ("gflops=abc", "non-negative"),
        ("gflops=inf", "non-negative"),
    ],
)
def test_bad_cost_text(text, message):
    with pytest.raises(ZoolensError, match=message):
        parse_cost_items(text, "--budget")


def test_cost_units_convert_to_card_fields():
    assert cost_from_items(parse_cost_items("gflops=8,mparams=25.6,latency_ms=3", "--cost")) == {
        "source": "set by hand",
        "macs": 4e9,
        "params": 25_600_000,
        "latency_ms": 3.0,
    }
    with pytest.raises(ZoolensError, match="macs is given twice"):
        cost_from_items(parse_cost_items("gflops=8,gmacs=4", "--cost"))


def test_budgeted_greedy_never_exceeds_and_picks_the_best_fitting_candidate():
    rng = np.random.default_rng(1)
    m, n, c = 6, 300, 4
    labels = rng.integers(0, c, n)
    probs = rng.dirichlet(np.ones(c), size=(m, n)).astype(np.float32)
    probs[:, np.arange(n), labels] += rng.uniform(0.1, 0.6, (m, 1)).astype(np.float32)
    costs = np.array([1.0, 3.0, 2.0, 0.5, 4.0, 1.5])[:, None]
    budget = np.array([4.0])
    result = greedy_forward_selection(
        probs, labels, start=0, pool=range(m), max_steps=6, costs=costs, budget=budget
    )
    for step in range(1, len(result.members) + 1):
        assert costs[sorted(set(result.members[:step]))].sum() <= budget[0]
    # step by step: each pick is the most accurate candidate that fits (ties: chosen most
    # often, then lowest index), recomputed directly
    members = [0]
    total = probs[0].astype(np.float64)
    for pick in result.members[1:]:
        spent = costs[sorted(set(members))].sum()
        fits = [k for k in range(m) if k in members or spent + costs[k, 0] <= budget[0]]
        right = {k: int(((total + probs[k]).argmax(1) == labels).sum()) for k in fits}
        best = max(right.values())
        ties = [k for k in fits if right[k] == best]
        assert pick == min(ties, key=lambda k: (-members.count(k), k))
        members.append(pick)
        total += probs[pick]
    # a budget only the start fits: nothing can be added (unless repeating the start)
    tight = greedy_forward_selection(
        probs, labels, start=3, pool=[1, 2, 4], max_steps=3, costs=costs, budget=np.array([0.5])
    )
    assert tight.members == [3]
    # a budget nothing reaches changes nothing
    free = greedy_forward_selection(
        probs, labels, start=0, pool=range(m), max_steps=6, costs=costs, budget=np.array([1e9])
    )
    plain = greedy_forward_selection(probs, labels, start=0, pool=range(m), max_steps=6)
    assert free.members == plain.members


def test_analyze_budget_best_sidekick_greedy_and_pareto(zoo, tmp_path):
    out = tmp_path / "res"
    res = runner.invoke(
        app,
        [
            "--quiet",
            "analyze",
            str(zoo.path),
            "--base",
            "m0",
            "--out",
            str(out),
            "--bootstrap",
            "0",
            "--budget",
            "gflops=3.1",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "budget gflops=3.1" in res.output and "left out of budgeted selection: m4" in res.output
    summary = json.loads((out / "summary.json").read_text())
    budget = summary["budget"]
    assert budget["left_out_without_cost"] == ["m4"] and budget["base_fits"]
    gflops = {k: 2 * v for k, v in GMACS.items() if v is not None}
    pairs = pd.read_csv(out / "pairs.csv")
    fitting = {
        (a if b == "m0" else b): acc
        for a, b, acc in zip(pairs.model_a, pairs.model_b, pairs.ensemble_acc)
        if "m0" in (a, b) and "m4" not in (a, b) and gflops[a] + gflops[b] <= 3.1
    }
    assert set(fitting) == {"m1", "m3"}  # m2 (4 + 2 gflops) is over, m4 has no cost
    best = summary["headline"]["best_sidekick"]
    assert fitting[best["model"]] == max(fitting.values())
    greedy = pd.read_csv(out / "greedy.csv")
    for members in greedy.members:
        names = set(members.split(";"))
        assert "m4" not in names and sum(gflops[m] for m in names) <= 3.1
    pareto = pd.read_csv(out / "pareto.csv")
    assert (pareto.cost_unit == "gflops").all() and not pareto.members.str.contains("m4").any()
    singles = pareto[pareto.kind == "single"].set_index("members")
    assert singles.cost.to_dict() == pytest.approx(gflops)
    assert len(pareto[pareto.kind == "pair"]) == len(list(combinations(gflops, 2)))
    assert (pareto.fits_budget == (pareto.cost <= 3.1)).all()
    expected = [
        not _dominated(pareto.cost.tolist(), pareto.accuracy.tolist(), i)
        for i in range(len(pareto))
    ]
    assert pareto.on_front.tolist() == expected
    assert summary["pareto"]["models_without_cost"] == ["m4"]
    assert summary["pareto"]["front"] == pareto.members[pareto.on_front].tolist()
    from zoolens.report import build_report

    report = build_report(out, tmp_path / "r.html", warn=None)
    assert report.figure_data["pareto"]["left_out"] == ["m4"]
    assert "left out, no cost in gflops on their cards: m4" in (tmp_path / "r.html").read_text()
    # without a budget: pareto.csv still written (default unit), no budget block
    res = runner.invoke(
        app,
        [
            "--quiet",
            "analyze",
            str(zoo.path),
            "--base",
            "m0",
            "--out",
            str(tmp_path / "plain"),
            "--bootstrap",
            "0",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "budget" not in json.loads((tmp_path / "plain" / "summary.json").read_text())
    assert (pd.read_csv(tmp_path / "plain" / "pareto.csv").cost_unit == "gflops").all()


def test_budget_the_base_does_not_fit_skips_greedy_with_a_reason(zoo, tmp_path):
    res = runner.invoke(
        app,
        [
            "--quiet",
            "analyze",
            str(zoo.path),
            "--base",
            "m2",
            "--out",
            str(tmp_path / "r"),
            "--bootstrap",
            "0",
            "--budget",
            "gmacs=1",
        ],
    )
    assert res.exit_code == 0, res.output
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert "does not fit the budget" in summary["headline"]["greedy"]["skipped"]
    assert summary["headline"]["best_sidekick"] is None
    # the budget, not missing probabilities, excluded every pair, and the recap says so,
    # and says that greedy was skipped once (issue 27)
    assert summary["budget"]["sidekicks_before_budget"] == 4
    assert summary["budget"]["sidekicks_within_budget"] == 0
    assert (
        "best sidekick for m2: none within the budget gmacs=1 (4 pair(s) with the base have "
        "an ensemble; the budget excludes every one, the base alone does not fit it)"
    ) in res.output
    assert "no pair with the base has probabilities" not in res.output
    assert res.output.count("greedy selection skipped") == 1


@pytest.mark.parametrize(
    "budget, message",
    [
        ("watts=3", "unknown unit 'watts'"),
        ("latency_ms=20", "no model card has a cost in latency_ms"),
    ],
)
def test_bad_budget_one_line_nothing_written(zoo, tmp_path, budget, message):
    out = tmp_path / "res"
    res = runner.invoke(
        app, ["analyze", str(zoo.path), "--base", "m0", "--out", str(out), "--budget", budget]
    )
    assert res.exit_code == 1
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert not out.exists()


def test_import_cost_sets_the_card_and_bad_cost_leaves_the_zoo_unchanged(zoo, tmp_path):
    import shutil

    from zoolens.zoo.store import Zoo

    shutil.copytree(zoo.path, tmp_path / "z")
    np.save(tmp_path / "l.npy", np.random.default_rng(0).normal(size=(400, 5)).astype(np.float32))
    res = runner.invoke(
        app,
        [
            "--quiet",
            "import",
            str(tmp_path / "z"),
            str(tmp_path / "l.npy"),
            "--name",
            "hand",
            "--kind",
            "logits",
            "--cost",
            "gflops=1.5,mparams=3,latency_ms=2",
        ],
    )
    assert res.exit_code == 0, res.output
    cost = Zoo.open(tmp_path / "z").card("hand").cost
    assert (cost.macs, cost.params, cost.latency_ms, cost.source) == (
        0.75e9,
        3_000_000,
        2.0,
        "set by hand",
    )
    before = (tmp_path / "z" / "zoo.json").read_bytes()
    res = runner.invoke(
        app,
        [
            "import",
            str(tmp_path / "z"),
            str(tmp_path / "l.npy"),
            "--name",
            "hand2",
            "--kind",
            "logits",
            "--cost",
            "joules=1",
        ],
    )
    assert res.exit_code == 1 and "unknown unit 'joules'" in res.output
    assert (tmp_path / "z" / "zoo.json").read_bytes() == before


def test_measure_cost_counts_macs_and_takes_latency_from_the_run_or_times_it():
    """MACs of a two-layer MLP by hand (8·16 + 16·3 per example), parameters by hand; the
    latency from the collection run's full batches after the first (median), else timed."""
    import torch

    from zoolens.collect.cost import measure_cost
    from zoolens.collect.specs import LoadedModel, module_forward

    net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    loaded = LoadedModel("mlp", module_forward(net), net)
    data = [torch.randn(8) for _ in range(10)]
    timings = [(4, 9.0), (4, 0.2), (4, 0.4), (2, 5.0), (4, 0.3)]
    cost = measure_cost(loaded, data, torch.device("cpu"), 4, timings=timings)
    assert cost["macs"] == 8 * 16 + 16 * 3
    assert cost["params"] == 8 * 16 + 16 + 16 * 3 + 3
    assert cost["latency_ms"] == pytest.approx(1000 * 0.3 / 4)
    assert cost["batch_size"] == 4 and cost["input_shape"] == [8]
    timed = measure_cost(loaded, data, torch.device("cpu"), 4, timings=[(4, 1.0)])
    # timed here (no timings given): positive and finite, never bounded (wall clock)
    assert timed["macs"] == cost["macs"] and 0 < timed["latency_ms"] < float("inf")
    assert "timed batches" in timed["source"] and "batches of the run" in cost["source"]
