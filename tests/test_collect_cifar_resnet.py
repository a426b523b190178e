"""The He et al. (2016) CIFAR ResNets: architecture, the real akamaster checkpoints on the real
JPEG test images, and alignment with third-party CIFAR-10 outputs in canonical order."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from conftest import shared_path
from zoolens.cli import app
from zoolens.collect.cifar_resnet import (
    BasicBlock,
    CifarResNet,
    load_checkpoint,
    resnet20,
    resnet32,
    resnet44,
    resnet56,
    resnet110,
)
from zoolens.errors import ZoolensError

torch.set_num_threads(1)

# resnet20's top-1 on the first 100 images of each class (rows in canonical test order),
# measured in the full 10,000-image run (accuracy 0.8103; resnet56: 0.8320).
RESNET20_FIRST100_PREDICTIONS = "".join(
    (
        "3880661439095798578690494250966545934195465609397498238873567563621234368802933889172527890386466007",
        "4363115687406283043785128483604189129728656487667289606529342136048438969899373005223863306801728878",
        "3089638579545980798274935934365138804855118903692253994330898957082473236385044391619918791269346026",
        "6642613213860044775535254175461926693807360585468991024452809581949389479427978669095872251265942393",
        "9178840182793619074745804944063533973559149957202229639445425614444378578857605486835999401081180220",
        "4634947994566956095857870500469395666690176759162355859464320734239792671366897540840934896926147733",
        "8502164339698858632177127994492568768303540799444539569211419476309015656328368596409496344227838275",
        "7748240988388746384948818814654079149415770767662490912268217460127254996404566591767039684075779444",
        "7147448477357208948362087376541322541492707215202479990770784634015701514238434783209091844673113435",
        "6587188733481488299973800423572258174030138384723711146182412154854911493115525191159454451455454435",
    )
)


def test_parameter_counts_match_the_paper():
    # He et al. 2016, Table 6: 0.27M, 0.46M, 0.66M, 0.85M, 1.7M parameters
    counts = [
        sum(p.numel() for p in f().parameters()) / 1e6
        for f in (resnet20, resnet32, resnet44, resnet56, resnet110)
    ]
    assert [round(c, 2) for c in counts[:4]] == [0.27, 0.46, 0.66, 0.85]
    assert round(counts[4], 1) == 1.7
    assert [f().depth for f in (resnet20, resnet56)] == [20, 56]


def test_option_a_shortcut_subsamples_and_zero_pads():
    block = BasicBlock(16, 32, stride=2)
    x = torch.randn(2, 16, 8, 8)
    s = block.shortcut(x)
    assert s.shape == (2, 32, 4, 4)
    assert torch.all(s[:, :8] == 0) and torch.all(s[:, 24:] == 0)
    assert torch.equal(s[:, 8:24], x[:, :, ::2, ::2])
    assert sum(p.numel() for p in block.shortcut.parameters()) == 0


def test_forward_returns_logits_and_pooled_embedding():
    model = CifarResNet(1).eval()
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        logits, emb = model(x)
        h = torch.relu(model.bn1(model.conv1(x)))
        h = model.layer3(model.layer2(model.layer1(h))).mean(dim=(2, 3))
    assert logits.shape == (3, 10) and emb.shape == (3, 64)
    torch.testing.assert_close(emb, h)
    torch.testing.assert_close(logits, model.linear(h))


def test_checkpoints_load_with_every_tensor(tmp_path):
    path = shared_path("cifar10-resnets", "resnet20-12fca82f.th")
    raw = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    model = load_checkpoint(path)
    assert model.depth == 20
    state = model.state_dict()
    for key, value in raw.items():
        assert torch.equal(state[key.removeprefix("module.")], value)
    assert load_checkpoint(shared_path("cifar10-resnets", "resnet56-4bfd9763.th")).depth == 56
    bad = tmp_path / "bad.th"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ZoolensError, match="cannot load checkpoint"):
        load_checkpoint(bad)
    torch.save({"state_dict": {"fc.weight": torch.zeros(2)}}, tmp_path / "other.th")
    with pytest.raises(ZoolensError, match="do not match a CIFAR ResNet"):
        load_checkpoint(tmp_path / "other.th")


def _canonical_labels():
    return np.load(shared_path("cifar10-probs", "lenet-5-cifar-10.npz"))["ground_truth"].astype(
        np.int64
    )


def _within_class_rank(labels):
    rank = np.zeros(len(labels), dtype=np.int64)
    seen = np.zeros(labels.max() + 1, dtype=np.int64)
    for i, c in enumerate(labels):
        rank[i] = seen[c]
        seen[c] += 1
    return rank


def _model_list(tmp_path, depths):
    lines = []
    for name, file in depths:
        ckpt = shared_path("cifar10-resnets", file)
        lines += [
            "[[models]]",
            'spec = "python:zoolens.collect.cifar_resnet:pretrained"',
            f'name = "{name}"',
            f'kwargs = {{ checkpoint = "{ckpt}" }}',
        ]
    path = tmp_path / "models.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_resnet20_on_real_jpegs_aligned_with_third_party_outputs(tmp_path):
    """The first 100 JPEGs of each class, collected through the CLI in canonical order:
    the reference predictions of the full run, and errors shared with ResNet-110's."""
    import pandas as pd

    from zoolens import Zoo

    src = shared_path("cifar10-test-jpeg", "test")
    canon = _canonical_labels()
    keep = np.nonzero(_within_class_rank(canon) < 100)[0]  # canonical positions of the subset
    data = tmp_path / "data"
    classes = sorted(p.name for p in src.iterdir())
    for cls in classes:
        (data / cls).mkdir(parents=True)
        for f in sorted((src / cls).iterdir())[:100]:
            (data / cls / f.name).symlink_to(f)
    np.save(tmp_path / "order.npy", canon[keep])
    res = CliRunner().invoke(
        app,
        [
            "--quiet",
            "collect",
            str(_model_list(tmp_path, [("resnet20", "resnet20-12fca82f.th")])),
            "--data",
            str(data),
            "--zoo",
            str(tmp_path / "zoo"),
            "--create",
            "--threads",
            "1",
            "--workers",
            "0",
            "--batch-size",
            "100",
            "--order-by-labels",
            str(tmp_path / "order.npy"),
        ],
    )
    assert res.exit_code == 0, res.output
    zoo = Zoo.open(tmp_path / "zoo")
    np.testing.assert_array_equal(zoo.labels, canon[keep])
    pred = zoo.predictions("resnet20")
    reference = np.frombuffer(RESNET20_FIRST100_PREDICTIONS.encode(), np.uint8) - ord("0")
    assert np.mean(pred == reference) >= 0.998
    assert abs(np.mean(pred == zoo.labels) - 0.804) <= 0.003
    assert zoo.embeddings("resnet20").shape == (1000, 64)
    card = zoo.card("resnet20")
    assert (card.arch, card.framework, card.pretrain_data) == ("resnet20", "supervised", "cifar-10")
    # third-party ResNet-110 probabilities (canonical order) join the same zoo
    table = pd.read_csv(shared_path("cifar10-probs", "resnet-110.csv"), header=None).to_numpy()
    np.testing.assert_array_equal(table[keep, 0].astype(np.int64), zoo.labels)
    zoo.add("resnet-110", probs=table[keep, 11:21], card={"arch": "resnet110"})
    wrong110 = zoo.predictions("resnet-110") != zoo.labels
    wrong20 = pred != zoo.labels
    # aligned: resnet20 errs where ResNet-110 errs far more often than its base rate
    # (the data README measured 69 % on all 10,000 against 21 % under a within-class shuffle)
    assert wrong20[wrong110].mean() > 0.5 > 2 * wrong20.mean()


@pytest.mark.slow
def test_full_test_set_accuracies(tmp_path):
    """All 10,000 JPEGs: resnet20 0.810 and resnet56 0.832 (± 0.003); about 4 min on 2 busy
    cores (45 s and 200 s at one thread)."""
    from zoolens import Zoo

    np.save(tmp_path / "order.npy", _canonical_labels())
    res = CliRunner().invoke(
        app,
        [
            "--quiet",
            "collect",
            str(
                _model_list(
                    tmp_path,
                    [("resnet20", "resnet20-12fca82f.th"), ("resnet56", "resnet56-4bfd9763.th")],
                )
            ),
            "--data",
            str(shared_path("cifar10-test-jpeg", "test")),
            "--zoo",
            str(tmp_path / "zoo"),
            "--create",
            "--batch-size",
            "100",
            "--workers",
            "1",
            "--order-by-labels",
            str(tmp_path / "order.npy"),
        ],
    )
    assert res.exit_code == 0, res.output
    zoo = Zoo.open(tmp_path / "zoo")
    assert abs(zoo.accuracy("resnet20") - 0.810) <= 0.003
    assert abs(zoo.accuracy("resnet56") - 0.832) <= 0.003
    keep = np.nonzero(_within_class_rank(zoo.labels) < 100)[0]
    reference = np.frombuffer(RESNET20_FIRST100_PREDICTIONS.encode(), np.uint8) - ord("0")
    assert np.mean(zoo.predictions("resnet20")[keep] == reference) >= 0.998
