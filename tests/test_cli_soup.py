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
        sd = {
            k: (
                v + scale * torch.randn(v.shape, generator=gen)
                if v.is_floating_point()
                else v + 10 * (i + 1)
            )
            for k, v in init.items()
        }
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
    result = CliRunner().invoke(
        app,
        [
            "soup",
            *map(str, paths),
            "--model",
            MODEL,
            "--data",
            str(root / "held.npz"),
            "--out",
            str(out),
        ],
    )
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
    result = CliRunner().invoke(
        app,
        [
            "soup",
            *map(str, paths),
            "--model",
            MODEL,
            "--data",
            str(root / "held.npz"),
            "--greedy",
            "--out",
            str(out),
            "--table",
            str(root / "tables"),
            "--test",
            str(root / "held.npz"),
        ],
    )
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
    result = CliRunner().invoke(
        app,
        [
            "soup",
            str(paths[1]),
            str(tmp_path / "bad.pt"),
            "--model",
            MODEL,
            "--data",
            str(root / "held.npz"),
        ],
    )
    assert result.exit_code != 0
    assert "head.weight" in result.output and "(3, 128)" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "zoolens.demo.models:soup_cnn"], "unknown prefix"),
        (["--model", "timm:resnet18"], "python:package.module:function"),
        (["--model", "python:zoolens.demo.models:nope"], "no function nope"),
        (["--model", "python:no_such_pkg_xyz:f"], "cannot import"),
    ],
)
def test_bad_model_spec(family, args, message):
    root, paths = family
    result = CliRunner().invoke(
        app, ["soup", str(paths[0]), *args, "--data", str(root / "held.npz")]
    )
    assert result.exit_code != 0 and message in result.output


def test_bad_data_and_checkpoint(family, tmp_path):
    root, paths = family
    np.savez(tmp_path / "noy.npz", x=np.zeros((2, 1, 28, 28), np.float32))
    result = CliRunner().invoke(
        app, ["soup", str(paths[0]), "--model", MODEL, "--data", str(tmp_path / "noy.npz")]
    )
    assert result.exit_code != 0 and "'x' and 'y'" in result.output
    (tmp_path / "junk.pt").write_bytes(b"junk")
    result = CliRunner().invoke(
        app, ["soup", str(tmp_path / "junk.pt"), "--model", MODEL, "--data", str(root / "held.npz")]
    )
    assert result.exit_code != 0 and "cannot read checkpoint" in result.output
    result = CliRunner().invoke(
        app,
        ["soup", str(tmp_path / "absent.pt"), "--model", MODEL, "--data", str(root / "held.npz")],
    )
    assert result.exit_code != 0 and "not found" in result.output


def test_help_has_an_example():
    result = CliRunner().invoke(app, ["soup", "--help"])
    assert result.exit_code == 0 and "Example" in result.output


# --------------------------------------------------------------------------------------
# image-folder --data / --test (root/<class name>/<image>, classes in sorted folder order)

RGB_NET_MODULE = "zoolens_test_soup_rgb_net"
RGB_NET_SOURCE = '''
from torch import nn
from torchvision import transforms


def colour_net():
    """Mean colour -> class: 1x1 conv, BatchNorm, ReLU, global average pool, linear head."""
    return nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))


def colour_net_cropped():
    """The same network with its own transform: a 6x6 centre crop, then ToTensor."""
    return (colour_net(), transforms.Compose([transforms.CenterCrop(6), transforms.ToTensor()]),
            {"arch": "colour_net"})
'''
# Sorted folder order gives blue=0, green=1, red=2; image channels are (R, G, B).
CLASS_CHANNEL = {"blue": 2, "green": 1, "red": 0}


@pytest.fixture
def rgb_net(tmp_path_factory, monkeypatch):
    folder = tmp_path_factory.getbasetemp() / "soup_rgb_net_module"
    folder.mkdir(exist_ok=True)
    (folder / f"{RGB_NET_MODULE}.py").write_text(RGB_NET_SOURCE)
    monkeypatch.syspath_prepend(str(folder))
    import importlib

    return importlib.import_module(RGB_NET_MODULE)


def _image_folder(root, rng, sizes=((6, 6),), per_class=6):
    """root/<colour>/<i>.png|.jpg: noisy images whose dominant channel is the class colour
    (some ambiguous), PNG and JPEG, one grayscale (L) and one RGBA file."""
    from PIL import Image

    for name, channel in CLASS_CHANNEL.items():
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            h, w = sizes[i % len(sizes)]
            pixels = rng.uniform(0, 150, size=(h, w, 3))
            pixels[..., channel] += rng.uniform(20, 110)
            image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
            if i == 4:
                image = image.convert("L")
            elif i == 5:
                image = image.convert("RGBA")
            image.save(root / name / f"{i}.{'jpg' if i % 2 and i != 5 else 'png'}")
    return root


def _oracle_images(root, crop=None):
    """(N, 3, H, W) float32 in [0, 1] and labels, read with PIL and numpy alone: classes in
    sorted folder order, files in sorted name order, RGB, optional centre crop (even
    margins here, so there is no rounding to match)."""
    from PIL import Image

    xs, ys = [], []
    for label, name in enumerate(sorted(p.name for p in root.iterdir())):
        for path in sorted((root / name).iterdir()):
            with Image.open(path) as image:
                pixels = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
            if crop is not None:
                top, left = (pixels.shape[0] - crop) // 2, (pixels.shape[1] - crop) // 2
                pixels = pixels[top : top + crop, left : left + crop]
            xs.append(pixels.transpose(2, 0, 1))
            ys.append(label)
    return torch.from_numpy(np.stack(xs)), np.asarray(ys)


def _colour_ingredients(rgb_net, root, scales=(0.1, 0.2, 0.3, 0.5)):
    """Four 'fine-tuned' colour nets: an init that reads the dominant channel, perturbed by
    growing noise (BatchNorm counters differ), saved as .pt and .safetensors."""
    from safetensors.torch import save_file

    torch.manual_seed(0)
    init = rgb_net.colour_net().state_dict()
    init["0.weight"] = torch.zeros(4, 3, 1, 1)
    init["0.weight"][[0, 1, 2], [0, 1, 2]] = 1.0
    init["0.bias"] = torch.zeros(4)
    head = torch.zeros(3, 4)
    for label, channel in enumerate(CLASS_CHANNEL.values()):
        head[label, channel] = 20.0
    init["5.weight"], init["5.bias"] = head, torch.zeros(3)
    gen = torch.Generator().manual_seed(3)
    paths = []
    for i, scale in enumerate(scales):
        sd = {
            k: (
                v + scale * torch.randn(v.shape, generator=gen)
                if v.is_floating_point()
                else v + i + 1
            )
            for k, v in init.items()
        }
        path = root / f"colour{i}.{'safetensors' if i == 3 else 'pt'}"
        if i == 3:
            save_file(sd, str(path))
        else:
            torch.save(sd, path)
        paths.append(path)
    return paths


def _oracle_logits(rgb_net, state_dict, x):
    model = rgb_net.colour_net()
    model.load_state_dict(state_dict)
    model.eval()
    with torch.no_grad():
        return model(x).numpy()


def _oracle_accuracy(logits, y):
    return float((np.argmax(logits, axis=1) == y).mean())


def _float64_mean(state_dicts):
    """The uniform soup by hand: float tensors averaged in float64, integer buffers from the
    first state dict."""
    return {
        k: (
            torch.from_numpy(np.mean([sd[k].double().numpy() for sd in state_dicts], axis=0)).to(
                v.dtype
            )
            if v.is_floating_point()
            else v.clone()
        )
        for k, v in state_dicts[0].items()
    }


def test_soup_on_image_folders_matches_a_plain_forward_pass(rgb_net, tmp_path):
    rng = np.random.default_rng(7)
    held_dir = _image_folder(tmp_path / "held", rng)
    test_dir = _image_folder(tmp_path / "test", rng)
    paths = _colour_ingredients(rgb_net, tmp_path)
    model = f"python:{RGB_NET_MODULE}:colour_net"
    out = tmp_path / "greedy.pt"
    result = CliRunner().invoke(
        app,
        [
            "--quiet",
            "soup",
            *map(str, paths),
            "--model",
            model,
            "--data",
            str(held_dir),
            "--test",
            str(test_dir),
            "--greedy",
            "--out",
            str(out),
            "--table",
            str(tmp_path / "tables"),
        ],
    )
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "tables" / "soup.csv")
    rows = table.set_index("method")

    x_h, y_h = _oracle_images(held_dir)
    x_t, y_t = _oracle_images(test_dir)
    assert list(y_h) == [0] * 6 + [1] * 6 + [2] * 6
    sds = [load_state_dict(p) for p in paths]
    names = [p.name for p in paths]
    held_logits = [_oracle_logits(rgb_net, sd, x_h) for sd in sds]
    test_logits = [_oracle_logits(rgb_net, sd, x_t) for sd in sds]
    ingredients = table[table.method == "ingredient"]
    assert list(ingredients.members) == names
    expected_held = [_oracle_accuracy(z, y_h) for z in held_logits]
    expected_test = [_oracle_accuracy(z, y_t) for z in test_logits]
    assert list(ingredients.heldout_acc) == pytest.approx(expected_held, abs=1e-12)
    assert list(ingredients.test_acc) == pytest.approx(expected_test, abs=1e-12)
    # The fixture is informative: the init reads colours, the noisiest ingredient does not.
    # The fixture is informative: ingredients differ, the best is not the first, and the
    # greedy soup keeps some but not all of them (so it differs from the uniform soup).
    assert max(expected_held) >= 0.8 and len(set(expected_held)) == 4
    assert int(np.argmax(expected_held)) != 0
    assert 1 < len(rows.loc["greedy_soup", "members"].split(";")) < len(paths)

    uniform = _float64_mean(sds)
    assert rows.loc["uniform_soup", "heldout_acc"] == pytest.approx(
        _oracle_accuracy(_oracle_logits(rgb_net, uniform, x_h), y_h), abs=1e-12
    )
    assert rows.loc["uniform_soup", "test_acc"] == pytest.approx(
        _oracle_accuracy(_oracle_logits(rgb_net, uniform, x_t), y_t), abs=1e-12
    )
    assert rows.loc["logit_ensemble", "heldout_acc"] == pytest.approx(
        _oracle_accuracy(np.mean(held_logits, axis=0), y_h), abs=1e-12
    )
    assert rows.loc["logit_ensemble", "test_acc"] == pytest.approx(
        _oracle_accuracy(np.mean(test_logits, axis=0), y_t), abs=1e-12
    )
    best = int(np.argmax(expected_held))
    assert rows.loc["best_ingredient", "members"] == names[best]

    # The written greedy soup is the float64 mean of the members the table names, and its
    # accuracies are the ones reported.
    members = rows.loc["greedy_soup", "members"].split(";")
    assert members[0] == names[best]
    written = torch.load(out, weights_only=True)
    expected_soup = _float64_mean([sds[names.index(m)] for m in members])
    for key, value in expected_soup.items():
        assert torch.equal(written[key], value), key
    assert rows.loc["greedy_soup", "heldout_acc"] == pytest.approx(
        _oracle_accuracy(_oracle_logits(rgb_net, written, x_h), y_h), abs=1e-12
    )
    assert rows.loc["greedy_soup", "test_acc"] == pytest.approx(
        _oracle_accuracy(_oracle_logits(rgb_net, written, x_t), y_t), abs=1e-12
    )
    assert rows.loc["greedy_soup", "heldout_acc"] >= max(expected_held)


def test_soup_image_folder_uses_the_model_functions_transform(rgb_net, tmp_path):
    """Images of three sizes go through the function's own transform (a centre crop)."""
    rng = np.random.default_rng(11)
    held_dir = _image_folder(tmp_path / "held", rng, sizes=((6, 6), (8, 8), (10, 8)))
    paths = _colour_ingredients(rgb_net, tmp_path)
    result = CliRunner().invoke(
        app,
        [
            "--quiet",
            "soup",
            *map(str, paths[:3]),
            "--model",
            f"python:{RGB_NET_MODULE}:colour_net_cropped",
            "--data",
            str(held_dir),
            "--out",
            str(tmp_path / "u.pt"),
            "--table",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    x, y = _oracle_images(held_dir, crop=6)
    sds = [load_state_dict(p) for p in paths[:3]]
    table = pd.read_csv(tmp_path / "soup.csv").set_index("method")
    uniform = torch.load(tmp_path / "u.pt", weights_only=True)
    assert table.loc["uniform_soup", "heldout_acc"] == pytest.approx(
        _oracle_accuracy(_oracle_logits(rgb_net, _float64_mean(sds), x), y), abs=1e-12
    )
    assert table.loc["uniform_soup", "heldout_acc"] == pytest.approx(
        _oracle_accuracy(_oracle_logits(rgb_net, uniform, x), y), abs=1e-12
    )
    assert np.isnan(table.loc["uniform_soup", "test_acc"])


def test_soup_image_folder_bad_images_are_one_line(rgb_net, tmp_path):
    """Regression: a corrupt image, or images of different sizes under the default
    preprocessing (ToTensor only), used to end in a traceback (UndecodableImage,
    torch.stack's RuntimeError); now one error line naming the file, and nothing written."""
    rng = np.random.default_rng(5)
    paths = _colour_ingredients(rgb_net, tmp_path)
    model = f"python:{RGB_NET_MODULE}:colour_net"
    mixed = _image_folder(tmp_path / "mixed", rng, sizes=((6, 6), (8, 8)))
    corrupt = _image_folder(tmp_path / "corrupt", rng)
    (corrupt / "green" / "2.png").write_bytes(b"not an image")
    for data, message in (
        (mixed, "blue/1.jpg: transformed to shape (3, 8, 8) but"),
        (corrupt, "green/2.png: cannot decode image"),
    ):
        out = tmp_path / "soup.pt"
        for option in ("--data", "--test"):
            args = (
                ["--data", str(data)]
                if option == "--data"
                else ["--data", str(tmp_path / "held_ok"), "--test", str(data)]
            )
            if option == "--test" and not (tmp_path / "held_ok").exists():
                _image_folder(tmp_path / "held_ok", rng)
            result = CliRunner().invoke(
                app, ["soup", *map(str, paths[:2]), "--model", model, *args, "--out", str(out)]
            )
            assert result.exit_code == 1, result.output
            assert message in result.output
            assert "Traceback" not in result.output
            lines = [line for line in result.output.splitlines() if line.strip()]
            assert len(lines) == 1 and lines[0].startswith("error:")
            assert not out.exists()


def test_soup_export_is_used_like_an_ensemble(family, tmp_path):
    """--export: the soup as an ensemble file; zoolens.load_ensemble gives the soup's own
    predictions (its weights, loaded into a fresh network) and its probabilities; the file
    records the held-out accuracy the command printed, and a changed soup file is refused."""
    import json

    import zoolens
    from zoolens.errors import ZoolensError

    root, paths = family
    out, spec = tmp_path / "soup.pt", tmp_path / "soup.json"
    result = CliRunner().invoke(
        app,
        [
            "soup",
            *map(str, paths),
            "--model",
            MODEL,
            "--data",
            str(root / "held.npz"),
            "--greedy",
            "--out",
            str(out),
            "--export",
            str(spec),
            "--table",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(spec.read_text())
    assert data["kind"] == "soup" and data["version"] == 1
    assert data["class_names"] == [str(c) for c in range(10)]
    assert data["members"][0]["state_dict"]["path"] == str(out.resolve())
    table = pd.read_csv(tmp_path / "soup.csv")
    greedy_acc = table[table.method == "greedy_soup"].heldout_acc.iloc[0]
    assert data["accuracy"]["value"] == greedy_acc and data["accuracy"]["split"] == "heldout"
    held = np.load(root / "held.npz")
    x = torch.as_tensor(held["x"])
    ensemble = zoolens.load_ensemble(spec)
    direct = soup_cnn()
    direct.load_state_dict(load_state_dict(out))
    direct.eval()
    with torch.no_grad():
        logits = direct(x)
    np.testing.assert_array_equal(ensemble.predict(x).numpy(), logits.argmax(1).numpy())
    np.testing.assert_allclose(
        ensemble(x).numpy(), torch.softmax(logits.double(), 1).numpy(), atol=1e-6
    )
    assert np.mean(ensemble.predict(x).numpy() == held["y"]) == greedy_acc
    torch.save(soup_cnn().state_dict(), out)  # the soup file changes after export
    with pytest.raises(ZoolensError, match="no longer matches its recorded sha256"):
        zoolens.load_ensemble(spec)
