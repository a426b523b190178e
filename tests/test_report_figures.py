"""Figures are checked on their data: each figure function returns the numbers it plotted, and
these tests recompute them from the CSV files with pandas (groupby, filters), independently of
the report's own table reading, and compare."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from _report_fixtures import (
    BASE_NAME,
    CATEGORY_ORDER,
    EVIL_NAME,
    shared_results_dir,
    write_synthetic_results,
)
from zoolens.report import figures as F
from zoolens.report.tables import load_results

NAMES = {"model", "model_a", "model_b", "start", "added", "group"}


@pytest.fixture(scope="module")
def results_dir():
    return shared_results_dir()


@pytest.fixture(scope="module")
def results(results_dir):
    return load_results(results_dir)


def read(results_dir, name: str) -> pd.DataFrame:
    """The CSV as pandas reads it by default, names forced to text (the oracle side)."""
    header = pd.read_csv(results_dir / f"{name}.csv", nrows=0).columns
    return pd.read_csv(
        results_dir / f"{name}.csv",
        dtype={c: str for c in header if c in NAMES},
        keep_default_na=False,
        na_values={c: ["", "nan"] for c in header if c not in NAMES},
    )


def base_pairs(results_dir) -> pd.DataFrame:
    pairs = read(results_dir, "pairs")
    mine = pairs[(pairs.model_a == BASE_NAME) | (pairs.model_b == BASE_NAME)].copy()
    mine["other"] = np.where(mine.model_a == BASE_NAME, mine.model_b, mine.model_a)
    return mine


def close_figure(result):
    result.figure.clear()


@pytest.mark.parametrize("column", ["error_inconsistency", "both_right", "both_wrong"])
def test_fig1_category_means_match_groupby(results, results_dir, column):
    out = F.fig1_error_inconsistency(results)
    pairs = base_pairs(results_dir)
    expected = pairs.groupby("category")[column].agg(["mean", "std", "count"])
    assert out.data["categories"] == CATEGORY_ORDER  # paper order, "Same" absent
    for cat in CATEGORY_ORDER:
        got = out.data[column][cat]
        assert got["mean"] == pytest.approx(expected.loc[cat, "mean"], abs=1e-12)
        assert got["std"] == pytest.approx(expected.loc[cat, "std"], abs=1e-12)
        assert got["n"] == expected.loc[cat, "count"]
        sub = pairs[pairs.category == cat]
        assert sorted(got["values"]) == pytest.approx(sorted(sub[column]))
        assert sorted(got["models"]) == sorted(sub.other)
    assert sum(out.data[column][c]["n"] for c in CATEGORY_ORDER) == 10  # base vs 10 others
    close_figure(out)


def test_fig1_all_pairs_uses_every_pair(results, results_dir):
    out = F.fig1_error_inconsistency(results, "all")
    pairs = read(results_dir, "pairs")
    total = sum(v["n"] for v in out.data["error_inconsistency"].values())
    assert total == len(pairs) == 55
    expected = pairs.groupby("category").error_inconsistency.mean()
    for cat, value in expected.items():
        assert out.data["error_inconsistency"][cat]["mean"] == pytest.approx(value)
    close_figure(out)


def test_fig2_gain_and_conversion_by_category(results, results_dir):
    out = F.fig2_ensembles(results)
    pairs = base_pairs(results_dir)
    grouped = pairs.groupby("category")
    for cat in CATEGORY_ORDER:
        means = out.data["ensemble_gain"]["category_means"][cat]
        assert means["error_inconsistency_mean"] == pytest.approx(
            grouped.error_inconsistency.mean()[cat]
        )
        assert means["ensemble_gain_mean"] == pytest.approx(grouped.ensemble_gain.mean()[cat])
        assert means["ensemble_gain_std"] == pytest.approx(grouped.ensemble_gain.std()[cat])
        acc = out.data["ensemble_acc"]["category_means"][cat]
        assert acc["ensemble_acc_mean"] == pytest.approx(grouped.ensemble_acc.mean()[cat])
        assert out.data["conversion_rate"][cat]["mean"] == pytest.approx(
            grouped.conversion_rate.mean()[cat]
        )
        points = out.data["ensemble_gain"]["points"][cat]
        sub = pairs[pairs.category == cat].set_index("other")
        for model, x, y in zip(
            points["models"], points["error_inconsistency"], points["ensemble_gain"]
        ):
            assert x == pytest.approx(sub.loc[model, "error_inconsistency"])
            assert y == pytest.approx(sub.loc[model, "ensemble_gain"])
    close_figure(out)


def test_fig2_nan_conversion_is_left_out_of_the_mean(results_dir, tmp_path):
    folder = tmp_path / "r"
    shutil.copytree(results_dir, folder)
    pairs = read(folder, "pairs")
    mask = (pairs.model_a == BASE_NAME) & (pairs.category == "Reinit")
    first = pairs.index[mask][0]
    pairs.loc[first, "conversion_rate"] = np.nan  # EI = 0 for that pair: rate undefined
    pairs.to_csv(folder / "pairs.csv", index=False)
    out = F.fig2_ensembles(load_results(folder))
    reinit = out.data["conversion_rate"]["Reinit"]
    assert reinit["n"] == 1 and reinit["n_missing"] == 1
    assert reinit["mean"] == pytest.approx(pairs.loc[mask, "conversion_rate"].dropna().iloc[0])
    close_figure(out)


def test_fig10_neither_conversion(results, results_dir):
    out = F.fig10_neither_conversion(results)
    expected = base_pairs(results_dir).groupby("category").neither_conversion.mean()
    for cat, value in expected.items():
        assert out.data["neither_conversion"][cat]["mean"] == pytest.approx(value)
    close_figure(out)


def test_fig3_theta_counts_and_fractions(results, results_dir):
    out = F.fig3_theta(results)
    theta = read(results_dir, "theta")
    models = read(results_dir, "models").set_index("model")
    pairs = out.data["pairs"]
    assert len(pairs) == F.MAX_PANELS
    # one per category first, in paper order
    assert [models.loc[p["model_b"], "category"] for p in pairs[:5]] == CATEGORY_ORDER
    for p in pairs:
        assert p["model_a"] == BASE_NAME
        for outcome, counts in p["counts"].items():
            rows = theta[(theta.model_b == p["model_b"]) & (theta.outcome == outcome)]
            assert counts == rows.sort_values("bin_lo")["count"].astype(float).tolist()
            frac = np.array(p["fractions"][outcome])
            assert frac.sum() == pytest.approx(1.0) or sum(counts) == 0
        assert len(p["bin_lo"]) == 18 and p["bin_hi"][-1] == 90
    assert out.shown and "6 of 10" in out.shown[0]
    close_figure(out)


def test_fig3_counts_add_up_to_the_pair_rates(results, results_dir):
    """Independent consistency: the theta.csv outcome counts / N equal pairs.csv rates."""
    out = F.fig3_theta(results)
    pairs = base_pairs(results_dir).set_index("other")
    n_eval = read(results_dir, "models").accuracy_eval_n.iloc[0]
    for p in out.data["pairs"]:
        row = pairs.loc[p["model_b"]]
        assert sum(p["counts"]["both_right"]) / n_eval == pytest.approx(row.both_right)
        ei = (sum(p["counts"]["only_a"]) + sum(p["counts"]["only_b"])) / n_eval
        assert ei == pytest.approx(row.error_inconsistency)
    close_figure(out)


def test_fig4_and_fig12_specialization(results, results_dir):
    spec = read(results_dir, "specialization")
    sidekick = base_pairs(results_dir).sort_values("ensemble_acc").other.iloc[-1]
    out4 = F.fig4_class_specialization(results)
    assert out4.data["model_b"] == sidekick  # the best sidekick is drawn
    got = out4.data["group_types"]["class"]
    rows = spec[(spec.model_b == sidekick) & (spec.group_type == "class")].set_index("group")
    assert sorted(got["groups"]) == sorted(rows.index)
    for g, a, b, ta in zip(
        got["groups"], got["only_a_right"], got["only_b_right"], got["mean_theta_only_a"]
    ):
        assert a == pytest.approx(rows.loc[g, "only_a_right"])
        assert b == pytest.approx(rows.loc[g, "only_b_right"])
        assert ta == pytest.approx(rows.loc[g, "mean_theta_only_a"])
    diffs = np.array(got["only_b_right"]) - np.array(got["only_a_right"])
    assert np.all(np.diff(diffs) >= 0)  # sorted by who is right more often
    out12 = F.fig12_group_specialization(results)
    assert list(out12.data["group_types"]) == ["class_group"]
    groups = spec[(spec.model_b == sidekick) & (spec.group_type == "class_group")]
    assert sorted(out12.data["group_types"]["class_group"]["groups"]) == sorted(groups.group)
    close_figure(out4)
    close_figure(out12)


def test_fig5_greedy_paths_and_kept_prefix(results, results_dir):
    out = F.fig5_greedy(results)
    greedy = read(results_dir, "greedy")
    got = out.data["starts"][BASE_NAME]
    assert got["evaluation_acc"] == pytest.approx(greedy.evaluation_acc.tolist())
    assert got["calibration_acc"] == pytest.approx(greedy.calibration_acc.tolist())
    assert got["added"] == greedy.added.tolist()
    assert got["kept_last_step"] == greedy[greedy.kept.astype(str) == "True"].step.max()
    close_figure(out)


def test_fig6_probe_means_and_dimensions_to_target(results, results_dir):
    out = F.fig6_feature_combination(results)
    probe = read(results_dir, "probe")
    expected = probe.groupby(["model_a", "model_b", "rate"]).accuracy.agg(["mean", "min", "max"])
    assert len(out.data["probe"]) == probe.groupby(["model_a", "model_b"]).ngroups
    for entry in out.data["probe"].values():
        sub = expected.loc[(entry["model_a"], entry["model_b"])]
        assert entry["rate"] == sub.index.tolist()
        assert entry["mean"] == pytest.approx(sub["mean"].tolist())
        assert entry["min"] == pytest.approx(sub["min"].tolist())
        assert entry["draws"] == [3] * 5
    diversity = read(results_dir, "diversity")
    for entry in out.data["diversity"].values():
        for selection in ("diverse", "random"):
            sub = diversity[
                (diversity.model_b == entry["model_b"]) & (diversity.selection == selection)
            ].sort_values("k")
            reached = sub[sub.accuracy >= sub.target_accuracy]
            expected_k = int(reached.k.min()) if len(reached) else None
            assert entry[selection]["k_to_target"] == expected_k
    close_figure(out)


def test_fig7_stacking_and_transfer(results, results_dir):
    out = F.fig7_transfer(results)
    stacking = read(results_dir, "stacking")
    assert out.data["stacking"]["value_stacked"] == pytest.approx(stacking.value_stacked.tolist())
    transfer = read(results_dir, "transfer")
    got = out.data["transfer"]["accuracy"]
    assert got["models"] == transfer.model.tolist()
    assert got["downstream_value"] == pytest.approx(transfer.downstream_value.tolist())
    assert EVIL_NAME in got["models"]
    close_figure(out)


def test_fig11_interpolation_curves(results, results_dir):
    out = F.fig11_interpolation(results)
    table = read(results_dir, "interpolation")
    [pair] = out.data["pairs"]
    for mode in ("weight", "class_aware"):
        sub = table[table["mode"] == mode].sort_values("weight")
        assert pair["modes"][mode]["ensemble_acc"] == pytest.approx(sub.ensemble_acc.tolist())
    # w = 1 is the base alone, w = 0 the other alone (an independent check on the table).
    acc = read(results_dir, "models").set_index("model").accuracy
    curve = pair["modes"]["weight"]
    assert curve["ensemble_acc"][-1] == pytest.approx(acc[pair["model_a"]])
    assert curve["ensemble_acc"][0] == pytest.approx(acc[pair["model_b"]])
    close_figure(out)


def test_fig13_fills_missing_kappa_from_pairs(results, results_dir):
    out = F.fig13_cka(results)
    cka = read(results_dir, "cka")
    pairs = read(results_dir, "pairs").set_index(["model_a", "model_b"])
    base_rows = cka[(cka.model_a == BASE_NAME) | (cka.model_b == BASE_NAME)]
    assert len(out.data["error_consistency"]) == len(base_rows)  # NaN rows filled, none lost
    assert base_rows.error_consistency.isna().sum() == 2
    for a, b, kappa in zip(
        out.data["models_a"], out.data["models_b"], out.data["error_consistency"]
    ):
        assert kappa == pytest.approx(pairs.loc[(a, b), "error_consistency"])
    assert out.data["cka_linear"] == pytest.approx(base_rows.cka_linear.tolist())
    close_figure(out)


def test_reliability_ece_recomputed_from_bins_matches_models_csv(results, results_dir):
    out = F.fig_reliability(results)
    models = read(results_dir, "models").set_index("model")
    assert list(out.data["models"])[0] == BASE_NAME
    for name, entry in out.data["models"].items():
        assert entry["before"]["ece"] == pytest.approx(models.loc[name, "ece_before"], abs=1e-9)
        assert entry["after"]["ece"] == pytest.approx(models.loc[name, "ece_after"], abs=1e-9)
    close_figure(out)


@pytest.mark.parametrize(
    "table,function",
    [
        ("pairs", F.fig1_error_inconsistency),
        ("pairs", F.fig2_ensembles),
        ("theta", F.fig3_theta),
        ("specialization", F.fig4_class_specialization),
        ("greedy", F.fig5_greedy),
        ("interpolation", F.fig11_interpolation),
        ("cka", F.fig13_cka),
        ("reliability", F.fig_reliability),
    ],
)
def test_absent_data_skips_the_figure_never_draws_it_empty(results, table, function):
    from copy import copy

    partial = copy(results)
    partial.tables = {k: v for k, v in results.tables.items() if k != table}
    with pytest.raises(F.FigureSkipped, match=f"{table}.csv"):
        function(partial)


def test_one_panel_figure_when_half_its_data_are_absent(results):
    from copy import copy

    partial = copy(results)
    partial.tables = {k: v for k, v in results.tables.items() if k != "diversity"}
    out = F.fig6_feature_combination(partial)
    assert "diversity" not in out.data and "probe" in out.data
    assert any("diversity.csv absent" in n for n in out.notes)
    assert len(out.figure.axes) == 1
    close_figure(out)


@pytest.mark.parametrize(
    "function, left, right, what",
    [
        (F.fig6_feature_combination, "probe", "diversity", "feature combination"),
        (F.fig7_transfer, "stacking", "transfer", "downstream"),
    ],
)
def test_two_panel_figures_name_the_missing_panel_or_skip(results, function, left, right, what):
    """Either table of a two-panel figure absent: one panel and a note naming the other; both
    absent: the figure is skipped naming both."""
    from copy import copy

    expected = {
        left: f"{what}: {left}.csv absent, left panel left out",
        right: f"{what}: {right}.csv absent, right panel left out",
    }
    for gone in (left, right):
        partial = copy(results)
        partial.tables = {k: v for k, v in results.tables.items() if k != gone}
        out = function(partial)
        assert out.notes == [expected[gone]]
        assert len(out.figure.axes) == 1
        close_figure(out)
    partial = copy(results)
    partial.tables = {k: v for k, v in results.tables.items() if k not in (left, right)}
    with pytest.raises(F.FigureSkipped, match=f"^{left}.csv and {right}.csv absent or empty$"):
        function(partial)


def test_pairs_without_the_base_skip_pair_figures(results):
    from copy import copy

    partial = copy(results)
    partial.base = "no such model"
    with pytest.raises(F.FigureSkipped, match="no pair with the base"):
        F.fig1_error_inconsistency(partial)


def test_ordered_categories_paper_order_then_others():
    assert F.ordered_categories(["Dataset", "Zeta", "Reinit", "Arch", "Alpha"]) == [
        "Reinit",
        "Arch",
        "Dataset",
        "Alpha",
        "Zeta",
    ]


def test_base_on_either_side_of_pairs_gives_the_same_figures(results, tmp_path):
    """pairs.csv lists a < b in zoo order: with the base fourth, it is model_b of three pairs."""
    moved = load_results(write_synthetic_results(tmp_path / "moved", probe=False, base_position=3))
    pairs = moved.tables["pairs"]
    assert (pairs.model_b == BASE_NAME).sum() == 3
    first, second = F.fig2_ensembles(results), F.fig2_ensembles(moved)
    for cat in CATEGORY_ORDER:
        a = first.data["ensemble_gain"]["points"][cat]
        b = second.data["ensemble_gain"]["points"][cat]
        assert sorted(a["models"]) == sorted(b["models"])
        assert sorted(a["ensemble_gain"]) == pytest.approx(sorted(b["ensemble_gain"]))
    close_figure(first)
    close_figure(second)


def _titles(out) -> list[str]:
    return [ax.get_title() for ax in out.figure.axes if ax.get_title()]


def _marks(ax) -> list[str]:
    return [t.get_text() for t in ax.texts]


def test_every_error_bar_says_its_kind(results, results_dir, tmp_path):
    """Issue 27: each panel names the kind of its bars under its title; a panel that mixes
    example-resampled and pair-resampled bars marks every bar e or p."""
    out = F.fig1_error_inconsistency(results)
    titles = _titles(out)
    assert len(titles) == 4 and all("\nbars: 95% bootstrap" in t for t in titles), titles
    columns = ["error_inconsistency", "error_consistency", "both_right", "both_wrong"]
    for ax, column in zip(out.figure.axes, columns):
        kinds = {e["interval"] for e in out.data[column].values() if isinstance(e, dict)}
        kinds.discard(None)
        if kinds == {F.INTERVALS_EXAMPLES}:
            assert ax.get_title().endswith("examples resampled")
        elif kinds == {F.INTERVALS_PAIRS}:
            assert ax.get_title().endswith("pairs resampled")
        else:
            assert ax.get_title().endswith("e: examples, p: pairs resampled")
            marks = _marks(ax)
            assert sorted(marks) == sorted(
                F.BAR_MARK[e["interval"]]
                for e in out.data[column].values()
                if isinstance(e, dict) and e["interval"]
            )
    close_figure(out)
    # summary.json quotes example intervals for two categories only: the EI panel mixes
    import json

    mixed = tmp_path / "mixed"
    shutil.copytree(results_dir, mixed)
    summary = json.loads((mixed / "summary.json").read_text())
    block = summary["headline"]["mean_error_inconsistency_by_category"]
    for cat in list(block)[2:]:
        block.pop(cat)
    (mixed / "summary.json").write_text(json.dumps(summary))
    out = F.fig1_error_inconsistency(load_results(mixed))
    ei_axis = out.figure.axes[0]
    assert ei_axis.get_title().endswith("e: examples, p: pairs resampled")
    assert _marks(ei_axis).count("e") == 2 and "p" in _marks(ei_axis)
    close_figure(out)


def test_stacking_axis_that_does_not_start_at_zero_says_so(results):
    out = F.fig7_transfer(results)
    stacking_axis = out.figure.axes[0]
    bottom = stacking_axis.get_ylim()[0]
    assert bottom > 0  # the fixture's stacked values lie between 0.6 and 0.75
    assert f"y-axis starts at {bottom:.2f}, not 0" in stacking_axis.get_title()
    assert f"the stacking panel's y-axis starts at {bottom:.2f}, not at 0" in out.shown
    close_figure(out)


def test_labels_of_a_crowded_scatter_never_overlap():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0.5, 0.01, 12), [0.1, 0.9, 0.3]])
    y = np.concatenate([rng.normal(0.5, 0.01, 12), [0.1, 0.9, 0.8]])
    texts = [f"model-number-{k}" for k in range(15)]
    fig = Figure(figsize=(4, 3))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.scatter(x, y)
    left_out = F.place_labels(ax, x, y, texts)
    renderer = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in ax.texts]
    assert len(boxes) + len(left_out) == 15 and left_out  # the cluster cannot all be labelled
    assert {t.get_text() for t in ax.texts} >= {"model-number-12", "model-number-13"}
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            assert not boxes[i].overlaps(boxes[j]), (ax.texts[i].get_text(), ax.texts[j].get_text())
