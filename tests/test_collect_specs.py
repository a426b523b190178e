"""Model specs and model list files (TOML, YAML, single spec) and their errors."""

from __future__ import annotations

import sys

import pytest

from zoolens.collect.specs import ModelEntry, load_model, read_model_list, split_spec
from zoolens.errors import ZoolensError


def test_split_spec_and_unknown_prefix():
    assert split_spec("timm:resnet50.a1_in1k") == ("timm", "resnet50.a1_in1k")
    assert split_spec("open_clip:ViT-B-32/laion2b_s34b_b79k")[1] == "ViT-B-32/laion2b_s34b_b79k"
    assert split_spec("python:pkg.mod:fn") == ("python", "pkg.mod:fn")
    with pytest.raises(ZoolensError, match="unknown prefix 'keras'"):
        split_spec("keras:resnet50")
    with pytest.raises(ZoolensError, match="expected PREFIX:NAME"):
        split_spec("resnet50")
    with pytest.raises(ZoolensError, match="python:package.module:function"):
        split_spec("python:just_a_module")


def test_toml_list(tmp_path):
    path = tmp_path / "zoo.toml"
    path.write_text("""
[defaults]
pretrained = false
[[models]]
spec = "timm:resnet18"
[[models]]
spec = "open_clip:ViT-B-32/laion2b_s34b_b79k"
name = "CLIP B/32"
pretrained = true
seed = 3
templates = ["a photo of a {}."]
[models.card]
pretrain_data = "LAION-2B"
""")
    a, b = read_model_list(path)
    # the user's own list: its .pt2 programs may be unpickled (an ensemble file's may not)
    assert a == ModelEntry(
        spec="timm:resnet18", name="resnet18", pretrained=False, allow_pickle=True
    )
    assert b.name == "CLIP B/32" and b.pretrained is True and b.seed == 3
    assert b.templates == ("a photo of a {}.",) and b.card == {"pretrain_data": "LAION-2B"}


def test_yaml_list_and_single_spec(tmp_path):
    path = tmp_path / "zoo.yaml"
    path.write_text(
        "models:\n  - timm:resnet18\n  - spec: torchvision:resnet18/IMAGENET1K_V1\n    name: tv\n"
    )
    entries = read_model_list(path)
    assert [e.name for e in entries] == ["resnet18", "tv"]
    bare = tmp_path / "bare.yml"
    bare.write_text("- spec: torchscript:/x/model.pt\n")
    assert read_model_list(bare)[0].name == "model"
    assert read_model_list("timm:vit_tiny_patch16_224")[0].name == "vit_tiny_patch16_224"


@pytest.mark.parametrize(
    "text, message",
    [
        ("[[models]]\nname = 'x'\n", "without 'spec'"),
        ("[[models]]\nspec = 'foo:bar'\n", "unknown prefix 'foo'"),
        ("[[models]]\nspec = 'timm:a'\nflavour = 1\n", "unknown key"),
        ("[[models]]\nspec = 'timm:a'\n[[models]]\nspec = 'timm:a'\n", "appears twice"),
        ("models = []\n", "no models"),
        ("[[models]\n", "cannot parse"),
        ("[[models]]\nspec = 'open_clip:RN50'\ntemplates = ['no placeholder']\n", "templates"),
    ],
)
def test_bad_lists(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ZoolensError, match=message):
        read_model_list(path)


def test_missing_list_file():
    with pytest.raises(ZoolensError, match="model list file not found"):
        read_model_list("nope.toml")


def test_python_spec_builds_cifar_resnet_with_card():
    entry = ModelEntry(
        spec="python:zoolens.collect.cifar_resnet:pretrained",
        name="r",
        kwargs={"depth": 20, "seed": 1},
        card={"notes": "hi"},
    )
    loaded = load_model(entry, pretrained=False)
    assert loaded.card["arch"] == "resnet20" and loaded.card["notes"] == "hi"
    with pytest.raises(ZoolensError, match="bad kwargs"):
        load_model(
            ModelEntry(
                spec="python:zoolens.collect.cifar_resnet:pretrained",
                name="r",
                kwargs={"colour": 1},
            )
        )
    with pytest.raises(ZoolensError, match="has no function"):
        load_model(ModelEntry(spec="python:zoolens.collect.cifar_resnet:nothing", name="r"))
    with pytest.raises(ZoolensError, match="cannot import"):
        load_model(ModelEntry(spec="python:no_such_module_zz:f", name="r"))


def test_torchscript_spec(tmp_path):
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 5)).eval()
    path = tmp_path / "net.pt"
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated in torch 2.14
        torch.jit.script(net).save(str(path))
    loaded = load_model(
        ModelEntry(
            spec=f"torchscript:{path}", name="ts", preprocess={"mean": [0.5] * 3, "std": [0.5] * 3}
        )
    )
    x = torch.rand(2, 3, 4, 4)
    logits, emb = loaded.forward(x)
    torch.testing.assert_close(logits, net(x))
    assert emb is None  # TorchScript: no hooks, logits only
    assert loaded.card["source"] == str(path)
    from PIL import Image

    img = Image.new("RGB", (4, 4), (255, 0, 0))
    assert loaded.transform(img)[0, 0, 0].item() == 1.0 and loaded.transform(img)[1, 0, 0] == -1
    with pytest.raises(ZoolensError, match="TorchScript file .* not found"):
        load_model(ModelEntry(spec="torchscript:/no/such.pt", name="x"))
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(ZoolensError, match="cannot load TorchScript"):
        load_model(ModelEntry(spec=f"torchscript:{tmp_path / 'junk.pt'}", name="x"))


@pytest.mark.parametrize("prefix, library", [("timm", "timm"), ("open_clip", "open_clip")])
def test_missing_model_library_is_one_line_naming_model_and_extra(monkeypatch, prefix, library):
    """A timm: or open_clip: spec without its library: one ZoolensError naming the model and
    the extra to install (sys.modules[name] = None makes the import fail as where it is absent)."""
    monkeypatch.setitem(sys.modules, library, None)
    with pytest.raises(ZoolensError) as info:
        load_model(ModelEntry(spec=f"{prefix}:resnet18", name="r"))
    assert str(info.value) == (
        f"model {prefix}:resnet18: {library} is not installed (pip install 'zoolens[models]')"
    )
