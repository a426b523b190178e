"""timm, torchvision and open_clip adapters on random-init models over a generated folder.

Each adapter's outputs are checked against the library's own forward on the same
preprocessed images (an independent path), plus the card fields it fills in.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from zoolens.collect.images import ImageFolder
from zoolens.collect.runner import RunOptions, run_model
from zoolens.collect.specs import ModelEntry, load_model

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("imgs")
    rng = np.random.default_rng(0)
    for cls in ("cat", "hot_dog"):
        (root / cls).mkdir()
        for k in range(2):
            Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(
                root / cls / f"{k}.png"
            )
    return ImageFolder(root)


def _batch(loaded, folder):
    return torch.stack([loaded.transform(folder.load(i)) for i in range(len(folder))])


def _run(loaded, folder):
    return run_model(
        loaded,
        folder.with_transform(loaded.transform),
        name=loaded.name,
        options=RunOptions(batch_size=3),
    )


@pytest.mark.parametrize("name, dim", [("resnet18", 512), ("vit_tiny_patch16_224", 192)])
def test_timm_random_init(folder, name, dim):
    loaded = load_model(
        ModelEntry(spec=f"timm:{name}", name=name, kwargs={"num_classes": 2}), pretrained=False
    )
    out = _run(loaded, folder)
    assert out.logits.shape == (4, 2) and out.embeddings.shape == (4, dim)
    x = _batch(loaded, folder)
    assert x.shape[-2:] == (224, 224)  # timm's data config, not the 32x32 originals
    model = loaded.module
    with torch.inference_mode():
        np.testing.assert_allclose(out.logits, model(x).numpy(), rtol=1e-4, atol=1e-5)
        pooled = model.forward_head(model.forward_features(x), pre_logits=True)
    np.testing.assert_allclose(out.embeddings, pooled.numpy(), rtol=1e-4, atol=1e-5)
    card = loaded.card
    assert card["arch"] == name and card["arch_family"] in ("resnet", "vit")
    assert card["framework"] == "untrained" and card["pretrain_data"] == "none"
    assert card["head"] == "linear" and card["source"] == f"timm:{name}"
    assert card["seed"] == 0


def test_timm_card_from_pretrained_tag():
    from zoolens.collect._cards import data_from_tag, framework_from_tag

    assert data_from_tag("augreg_in21k_ft_in1k") == "ImageNet-21k"
    assert data_from_tag("a1_in1k") == "ImageNet-1k"
    assert data_from_tag("laion2b_s34b_b79k") == "LAION-2B"
    assert framework_from_tag("clip_laion2b_ft_in1k") == "contrastive"
    assert framework_from_tag("a1_in1k") == "supervised"


def test_torchvision_random_init_embeddings_from_the_fc_input(folder):
    loaded = load_model(
        ModelEntry(spec="torchvision:resnet18", name="tv", kwargs={"num_classes": 2}),
        pretrained=False,
    )
    out = _run(loaded, folder)
    m = loaded.module
    x = _batch(loaded, folder)
    with torch.inference_mode():
        h = m.maxpool(m.relu(m.bn1(m.conv1(x))))
        h = m.avgpool(m.layer4(m.layer3(m.layer2(m.layer1(h))))).flatten(1)
        np.testing.assert_allclose(out.embeddings, h.numpy(), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(out.logits, m.fc(h).numpy(), rtol=1e-4, atol=1e-5)
    assert loaded.card["arch"] == "resnet18" and loaded.card["pretrain_data"] == "none"


def test_open_clip_zero_shot_head_from_class_names(folder):
    import open_clip

    templates = ("a photo of a {}.", "a drawing of a {}.")
    loaded = load_model(
        ModelEntry(spec="open_clip:ViT-B-32", name="clip", templates=templates),
        pretrained=False,
        class_names=folder.classes,
    )
    out = _run(loaded, folder)
    assert out.logits.shape == (4, 2) and out.embeddings.shape == (4, 512)
    card = loaded.card
    assert card["head"] == "zero-shot" and card["arch"] == "ViT-B-32"
    assert card["arch_family"] == "vit" and card["hparams"]["prompt_templates"] == 2
    # oracle: CLIP prompt ensembling written out with open_clip's own calls
    model, tok = loaded.module, open_clip.get_tokenizer("ViT-B-32")
    with torch.inference_mode():
        cols = []
        for name in ("cat", "hot dog"):  # underscores read as spaces
            e = model.encode_text(tok([t.format(name) for t in templates]))
            e = e / e.norm(dim=-1, keepdim=True)
            cols.append(e.mean(0) / e.mean(0).norm())
        img = model.encode_image(_batch(loaded, folder))
        expect = (
            model.logit_scale.exp() * (img / img.norm(dim=-1, keepdim=True)) @ torch.stack(cols, 1)
        )
    np.testing.assert_allclose(out.embeddings, img.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out.logits, expect.numpy(), rtol=1e-4, atol=1e-4)


def test_no_network_error_is_plain(tmp_path, folder, monkeypatch):
    """Pretrained weights that cannot be fetched (hub offline, empty cache): one clear line."""
    import huggingface_hub.constants as hf
    from typer.testing import CliRunner

    from zoolens.cli import app

    monkeypatch.setattr(hf, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hf, "HF_HUB_CACHE", str(tmp_path / "hf"))
    res = CliRunner().invoke(
        app,
        [
            "collect",
            "timm:resnet18.a1_in1k",
            "--data",
            str(folder.root),
            "--zoo",
            str(tmp_path / "zoo"),
            "--create",
            "--workers",
            "0",
        ],
    )
    assert res.exit_code == 1
    assert "model timm:resnet18.a1_in1k: cannot download the pretrained weights" in res.output
    assert "--no-pretrained" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "zoo").exists()


def test_open_clip_linear_probe_head(folder):
    """The probe head fits the training folder (separable: 4 points in 512-d) and records it."""
    from zoolens.errors import ZoolensError

    entry = ModelEntry(
        spec="open_clip:ViT-B-32",
        name="clip-lp",
        head="linear-probe",
        probe_data=str(folder.root),
        probe_l2=1e-6,
    )
    loaded = load_model(entry, pretrained=False, class_names=folder.classes)
    out = _run(loaded, folder)
    assert out.logits.shape == (4, 2)
    assert np.array_equal(out.logits.argmax(1), folder.labels)  # training accuracy 1.0
    card = loaded.card
    assert card["head"] == "linear-probe" and card["hparams"]["probe_l2"] == 1e-6
    assert card["hparams"]["probe_train_examples"] == 4
    # the plumbing (normalisation, class columns, bias) against a probe fitted here on
    # embeddings computed by open_clip directly
    from zoolens.measure.probe import fit_linear_probe

    with torch.inference_mode():
        emb = loaded.module.encode_image(_batch(loaded, folder)).float()
    f = (emb / emb.norm(dim=-1, keepdim=True)).numpy()
    probe = fit_linear_probe(f, folder.labels, l2_grid=1e-6)
    np.testing.assert_allclose(out.logits, probe.decision_function(f), rtol=1e-3, atol=1e-3)
    with pytest.raises(ZoolensError, match="needs probe_data"):
        load_model(
            ModelEntry(spec="open_clip:ViT-B-32", name="x", head="linear-probe"),
            pretrained=False,
            class_names=folder.classes,
        )
    with pytest.raises(ZoolensError, match="unknown head 'knn'"):
        load_model(
            ModelEntry(spec="open_clip:ViT-B-32", name="x", head="knn"),
            pretrained=False,
            class_names=folder.classes,
        )
