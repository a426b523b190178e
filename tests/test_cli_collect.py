"""`zoolens collect` end to end: bad inputs (one line, exit 1), skipped images, resume after
SIGKILL (the zoo equals an uninterrupted run's)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from zoolens.cli import app

torch.set_num_threads(1)

TINY = """
[[models]]
spec = "python:zoolens.collect.cifar_resnet:pretrained"
name = "tiny"
kwargs = {{ depth = {depth}, num_classes = 2 }}
"""


def _images(root: Path, per_class: int = 3, classes=("a", "b")) -> Path:
    rng = np.random.default_rng(0)
    for cls in classes:
        (root / cls).mkdir(parents=True, exist_ok=True)
        for k in range(per_class):
            Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(
                root / cls / f"{k:03d}.png"
            )
    return root


def _list(tmp_path: Path, depth: int = 8) -> Path:
    path = tmp_path / "models.toml"
    path.write_text(TINY.format(depth=depth))
    return path


def _invoke(*args):
    res = CliRunner().invoke(
        app, ["--quiet", "collect", *map(str, args), "--workers", "0", "--threads", "1"]
    )
    return res, res.output  # click >= 8.2: output holds stdout and stderr


def test_help_has_an_example():
    res = CliRunner().invoke(app, ["collect", "--help"])
    assert res.exit_code == 0 and "Example:" in res.output and "--ray" in res.output


def test_collect_creates_then_adds_and_skips(tmp_path):
    from zoolens import Zoo

    data = _images(tmp_path / "data")
    res, out = _invoke(_list(tmp_path), "--data", data, "--zoo", tmp_path / "zoo", "--create")
    assert res.exit_code == 0, out
    zoo = Zoo.open(tmp_path / "zoo")
    assert zoo.models == ["tiny"] and zoo.class_names == ["a", "b"]
    assert zoo.example_ids.tolist() == [f"{c}/{k:03d}.png" for c in "ab" for k in range(3)]
    assert zoo.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert zoo.embeddings("tiny").shape == (6, 64) and zoo.card("tiny").arch == "resnet8"
    assert not (tmp_path / "zoo.collect").exists()  # shards cleaned up
    # a second run skips the model already there; a bare spec adds another
    res, out = _invoke(_list(tmp_path), "--data", data, "--zoo", tmp_path / "zoo")
    assert res.exit_code == 0, out
    (tmp_path / "more.yaml").write_text(
        "models:\n  - spec: python:zoolens.collect.cifar_resnet:pretrained\n    name: second\n"
        "    kwargs: {depth: 14, num_classes: 2}\n    card: {notes: from yaml}\n"
    )
    res, out = _invoke(tmp_path / "more.yaml", "--data", data, "--zoo", tmp_path / "zoo")
    assert res.exit_code == 0, out
    zoo = Zoo.open(tmp_path / "zoo")
    assert zoo.models == ["tiny", "second"] and zoo.card("second").notes == "from yaml"
    assert zoo.card("second").arch == "resnet14"


def test_undecodable_image_is_skipped_and_listed_or_fatal_with_strict(tmp_path):
    from zoolens import Zoo

    data = _images(tmp_path / "data")
    (data / "b" / "001.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    res, out = _invoke(
        _list(tmp_path), "--data", data, "--zoo", tmp_path / "zoo", "--create", "--strict"
    )
    assert res.exit_code == 1
    assert "b/001.png: cannot decode image" in out and "--strict" in out
    assert "Traceback" not in out
    res = CliRunner().invoke(
        app,
        [
            "collect",
            str(_list(tmp_path)),
            "--data",
            str(data),
            "--zoo",
            str(tmp_path / "zoo"),
            "--create",
            "--workers",
            "0",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "warning: tiny: skipped 1 undecodable image(s): b/001.png" in res.output
    zoo = Zoo.open(tmp_path / "zoo")
    assert zoo.num_examples == 5 and "b/001.png" not in zoo.example_ids.tolist()
    assert "b/001.png" in zoo.card("tiny").notes


@pytest.mark.parametrize(
    "case, message",
    [
        ("unknown_spec", "unknown prefix 'keras'"),
        ("empty_folder", "class folder has no images"),
        ("missing_from_class_list", "class folder 'b' is not in the class list"),
        ("no_zoo", "no zoo there; pass --create"),
        ("wrong_classes", "gives 10 classes, the data set has 2"),
        ("bad_order", "must list each of the 6 example ids"),
    ],
)
def test_bad_inputs(tmp_path, case, message):
    data = _images(tmp_path / "data")
    args = [_list(tmp_path), "--data", data, "--zoo", tmp_path / "zoo", "--create"]
    if case == "unknown_spec":
        args[0] = "keras:resnet50"
    elif case == "empty_folder":
        (data / "c").mkdir()
    elif case == "missing_from_class_list":
        (tmp_path / "classes.txt").write_text("a\n")
        args += ["--classes", tmp_path / "classes.txt"]
    elif case == "no_zoo":
        args.remove("--create")
    elif case == "wrong_classes":
        args[0] = "python:zoolens.collect.cifar_resnet:resnet20"  # a 10-class head
    elif case == "bad_order":
        (tmp_path / "order.txt").write_text("a/000.png\nb/000.png\n")
        args += ["--order-by-ids", tmp_path / "order.txt"]
    res, out = _invoke(*args)
    assert res.exit_code == 1, out
    assert message in out and "Traceback" not in out
    assert len([ln for ln in out.splitlines() if ln.startswith("error:")]) == 1


def test_ray_missing_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    data = _images(tmp_path / "data")
    res, out = _invoke(
        _list(tmp_path), "--data", data, "--zoo", tmp_path / "zoo", "--create", "--ray"
    )
    assert res.exit_code == 1 and "pip install 'zoolens[ray]'" in out


def test_order_by_ids(tmp_path):
    from zoolens import Zoo

    data = _images(tmp_path / "data")
    order = ["b/002.png", "a/000.png", "b/000.png", "a/002.png", "a/001.png", "b/001.png"]
    (tmp_path / "order.txt").write_text("\n".join(order) + "\n")
    res, out = _invoke(
        _list(tmp_path),
        "--data",
        data,
        "--zoo",
        tmp_path / "zoo",
        "--create",
        "--order-by-ids",
        tmp_path / "order.txt",
    )
    assert res.exit_code == 0, out
    zoo = Zoo.open(tmp_path / "zoo")
    assert zoo.example_ids.tolist() == order and zoo.labels.tolist() == [1, 0, 1, 0, 0, 1]
    # rows follow the ids: same logits as the folder-order run, permuted
    res, out = _invoke(_list(tmp_path), "--data", data, "--zoo", tmp_path / "plain", "--create")
    plain = Zoo.open(tmp_path / "plain")
    perm = [plain.example_ids.tolist().index(i) for i in order]
    np.testing.assert_array_equal(zoo.scores("tiny"), plain.scores("tiny")[perm])


def test_sigkill_midway_then_resume_equals_uninterrupted(tmp_path):
    from zoolens import Zoo

    data = _images(tmp_path / "data", per_class=80)
    models = _list(tmp_path, depth=32)
    cmd = [
        sys.executable,
        "-c",
        "from zoolens.cli import main; main()",
        "--quiet",
        "collect",
        str(models),
        "--data",
        str(data),
        "--zoo",
        str(tmp_path / "zoo"),
        "--create",
        "--batch-size",
        "8",
        "--shard-size",
        "8",
        "--workers",
        "0",
        "--threads",
        "1",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    work = tmp_path / "zoo.collect"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if len(list(work.glob("*/shard-*.safetensors"))) >= 3:
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(list(work.glob("*/shard-*.safetensors")))
    assert 3 <= done < 20 and not (tmp_path / "zoo" / "zoo.json").exists()
    res = subprocess.run(cmd[:3] + cmd[4:], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert f"resuming, {done * 8} of 160 examples already computed" in res.stderr
    # the uninterrupted reference, in this process
    res2, out = _invoke(
        models,
        "--data",
        data,
        "--zoo",
        tmp_path / "ref",
        "--create",
        "--batch-size",
        "8",
        "--shard-size",
        "8",
    )
    assert res2.exit_code == 0, out
    got, ref = Zoo.open(tmp_path / "zoo"), Zoo.open(tmp_path / "ref")
    assert got.num_examples == ref.num_examples == 160
    assert got.example_ids.tolist() == ref.example_ids.tolist()
    np.testing.assert_array_equal(got.labels, ref.labels)
    np.testing.assert_allclose(got.scores("tiny"), ref.scores("tiny"), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(got.embeddings("tiny"), ref.embeddings("tiny"), rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(got.predictions("tiny"), ref.predictions("tiny"))
    got.verify()


def test_into_a_zoo_imported_without_ids_by_label_order(tmp_path):
    """Third-party outputs first (canonical order, no ids), then collect into that zoo: the
    k-th image of class c fills the k-th row of class c, and the ids are recorded."""
    from zoolens import Zoo

    data = _images(tmp_path / "data")  # a/000..002, b/000..002
    canonical = np.array([1, 0, 0, 1, 1, 0])
    zoo = Zoo.create(tmp_path / "zoo", canonical, class_names=["a", "b"])
    zoo.add("third-party", probs=np.full((6, 2), 0.5))
    np.save(tmp_path / "order.npy", canonical)
    res, out = _invoke(
        _list(tmp_path),
        "--data",
        data,
        "--zoo",
        tmp_path / "zoo",
        "--order-by-labels",
        tmp_path / "order.npy",
    )
    assert res.exit_code == 0, out
    zoo = Zoo.open(tmp_path / "zoo")
    assert zoo.example_ids.tolist() == [
        "b/000.png",
        "a/000.png",
        "a/001.png",
        "b/001.png",
        "b/002.png",
        "a/002.png",
    ]
    res, out = _invoke(_list(tmp_path), "--data", data, "--zoo", tmp_path / "plain", "--create")
    plain = Zoo.open(tmp_path / "plain")
    perm = plain.example_ids.tolist()
    np.testing.assert_array_equal(
        zoo.scores("tiny"), plain.scores("tiny")[[perm.index(i) for i in zoo.example_ids]]
    )
    # labels that do not fit the zoo's are refused
    np.save(tmp_path / "wrong.npy", canonical[::-1])
    Zoo.create(tmp_path / "zoo2", canonical, class_names=["a", "b"])
    res, out = _invoke(
        _list(tmp_path),
        "--data",
        data,
        "--zoo",
        tmp_path / "zoo2",
        "--order-by-labels",
        tmp_path / "wrong.npy",
    )
    assert res.exit_code == 1 and "differ from the zoo's at" in out
