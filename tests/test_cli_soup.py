"""`zoolens soup` end to end on small SmallCNN checkpoints, plus study.soup's loaders."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from zoolens.cli import app
from zoolens.demo.models import soup_cnn
from zoolens.study.soup import load_state_dict, run_soups

MODEL = "python:zoolens.demo.models:soup_cnn"


@pytest.fixture(scope="module")
def family(tmp_path_factory):
    """Five 'fine-tuned' SmallCNNs: one init plus independent perturbations (BatchNorm
    counters differ, to check they are copied from the first), and a held-out .npz labelled
    by the init network so ingredient accuracies differ."""
    root = tmp_path_factory.mktemp("soup")
    torch.manual_seed(0)
    init = soup_cnn().state_dict()
    gen = torch.Generator().manual_seed(1)
    paths = []
    for i, scale in enumerate((0.02, 0.05, 0.1, 0.2, 0.4)):
        sd = {k: (v + scale * torch.randn(v.shape, generator=gen) if v.is_floating_point()
                  else v + 10 * (i + 1)) for k, v in init.items()}
        path = root / f"ft{i}.pt"
        torch.save(sd if i % 2 else {"state_dict": sd}, path)  # both layouts
        paths.append(path)
    x = torch.randn(300, 1, 28, 28, generator=gen)
    model = soup_cnn()
    model.load_state_dict(init)
    model.eval()
    with torch.no_grad():
        y = model(x).argmax(1).numpy()
    np.savez(root / "held.npz", x=x.numpy(), y=y)
    return root, paths


def test_uniform_soup_file_is_the_float64_mean(family):
    root, paths = family
    out = root / "uniform.pt"
    result = CliRunner().invoke(app, ["soup", *map(str, paths), "--model", MODEL,
                                      "--data", str(root / "held.npz"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    soup = torch.load(out, weights_only=True)
    sds = [load_state_dict(p) for p in paths]
    for key, value in soup.items():
        if value.is_floating_point():
            ref = np.mean([sd[key].double().numpy() for sd in sds], axis=0)
            np.testing.assert_array_equal(value.numpy(), ref.astype(np.float32))
        else:
            assert torch.equal(value, sds[0][key])  # counters from the first ingredient
    assert "uniform_soup" in result.output and "greedy_soup" in result.output


def test_greedy_soup_is_never_worse_than_its_best_ingredient(family):
    root, paths = family
    out = root / "greedy.safetensors"
    result = CliRunner().invoke(app, ["soup", *map(str, paths), "--model", MODEL, "--data",
                                      str(root / "held.npz"), "--greedy", "--out", str(out),
                                      "--table", str(root / "tables"),
                                      "--test", str(root / "held.npz")])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(root / "tables" / "soup.csv")
    assert list(table.columns) == ["method", "members", "heldout_acc", "test_acc"]
    t = table.set_index("method")
    ingredients = table[table["method"] == "ingredient"]
    assert t.loc["best_ingredient", "heldout_acc"] == ingredients["heldout_acc"].max()
    assert t.loc["greedy_soup", "heldout_acc"] >= t.loc["best_ingredient", "heldout_acc"]
    # independent check: score the written greedy soup ourselves
    from safetensors.torch import load_file

    model = soup_cnn()
    model.load_state_dict(load_file(str(out)))
    model.eval()
    held = np.load(root / "held.npz")
    with torch.no_grad():
        acc = float((model(torch.from_numpy(held["x"])).argmax(1).numpy() == held["y"]).mean())
    assert acc == pytest.approx(t.loc["greedy_soup", "heldout_acc"])


def test_run_soups_ensemble_matches_a_direct_logit_average(family):
    root, paths = family
    sds = [load_state_dict(p) for p in paths]
    held = np.load(root / "held.npz")
    x, y = torch.from_numpy(held["x"]), held["y"]
    result = run_soups(soup_cnn(), sds, [p.name for p in paths], (x, y))
    logits = []
    for sd in sds:
        m = soup_cnn()
        m.load_state_dict(sd)
        m.eval()
        with torch.no_grad():
            logits.append(m(x).numpy())
    expected = float((np.mean(logits, axis=0).argmax(1) == y).mean())
    row = result.table.set_index("method").loc["logit_ensemble"]
    assert row["heldout_acc"] == pytest.approx(expected)
    assert np.isnan(row["test_acc"])


def test_mismatched_checkpoints_are_refused(family, tmp_path):
    root, paths = family
    sd = load_state_dict(paths[0])
    sd["head.weight"] = torch.zeros(3, 128)
    torch.save(sd, tmp_path / "bad.pt")
    result = CliRunner().invoke(app, ["soup", str(paths[1]), str(tmp_path / "bad.pt"),
                                      "--model", MODEL, "--data", str(root / "held.npz")])
    assert result.exit_code != 0
    assert "head.weight" in result.output and "(3, 128)" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("args, message", [
    (["--model", "zoolens.demo.models:soup_cnn"], "unknown prefix"),
    (["--model", "timm:resnet18"], "python:package.module:function"),
    (["--model", "python:zoolens.demo.models:nope"], "no function nope"),
    (["--model", "python:no_such_pkg_xyz:f"], "cannot import"),
])
def test_bad_model_spec(family, args, message):
    root, paths = family
    result = CliRunner().invoke(app, ["soup", str(paths[0]), *args, "--data",
                                      str(root / "held.npz")])
    assert result.exit_code != 0 and message in result.output


def test_bad_data_and_checkpoint(family, tmp_path):
    root, paths = family
    np.savez(tmp_path / "noy.npz", x=np.zeros((2, 1, 28, 28), np.float32))
    result = CliRunner().invoke(app, ["soup", str(paths[0]), "--model", MODEL,
                                      "--data", str(tmp_path / "noy.npz")])
    assert result.exit_code != 0 and "'x' and 'y'" in result.output
    (tmp_path / "junk.pt").write_bytes(b"junk")
    result = CliRunner().invoke(app, ["soup", str(tmp_path / "junk.pt"), "--model", MODEL,
                                      "--data", str(root / "held.npz")])
    assert result.exit_code != 0 and "cannot read checkpoint" in result.output
    result = CliRunner().invoke(app, ["soup", str(tmp_path / "absent.pt"), "--model", MODEL,
                                      "--data", str(root / "held.npz")])
    assert result.exit_code != 0 and "not found" in result.output


def test_help_has_an_example():
    result = CliRunner().invoke(app, ["soup", "--help"])
    assert result.exit_code == 0 and "Example" in result.output
