"""A shipped ensemble is data, never code (issue 23): hostile ensemble files, built here, are
refused with one `error:` line (no traceback, nothing written, nothing touched outside the
test's folder), or run safely.

The ensembles are two tiny TorchScript networks (and zoolens's own CIFAR ResNet builder with
a checkpoint) collected, analysed and exported through the CLI on 2 x 10 random images, so
every file is made here and the real pipeline reads it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from zoolens.cli import app
from zoolens.errors import ZoolensError

torch.set_num_threads(1)
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")
runner = CliRunner()


def run(*args: object):
    return runner.invoke(app, ["--quiet", *map(str, args)], catch_exceptions=False)


def fails(*args: object, match: str) -> str:
    """One `error:` line containing ``match``, exit 1, no traceback."""
    res = run(*args)
    assert res.exit_code == 1, res.output
    assert "Traceback" not in res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.output
    assert match in lines[0], lines[0]
    return lines[0]


def ok(*args: object) -> str:
    res = run(*args)
    assert res.exit_code == 0, res.output
    return res.output


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.head = torch.nn.Linear(4, 2)

    def forward(self, x):
        return self.head(torch.nn.functional.adaptive_avg_pool2d(self.conv(x), 1).flatten(1))


class Inf(torch.nn.Module):
    """A legal network whose logits are all +inf."""

    def forward(self, x):
        return torch.full((x.shape[0], 2), float("inf"))


def tiny_torchscript(path: Path, seed: int) -> Path:
    torch.manual_seed(seed)
    torch.jit.script(Tiny()).save(str(path))
    return path


def images(folder: Path, per_class: int = 10) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for k, cls in enumerate(("a", "b")):
        (folder / cls).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 128, (32, 32, 3)) + 100 * k  # classes differ in brightness
            Image.fromarray(pixels.astype(np.uint8)).save(folder / cls / f"{i:02d}.png")
    return folder


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """Images, two TorchScript members and a CIFAR ResNet with a checkpoint, collected,
    analysed and exported as ``ensemble.json`` (absolute paths)."""
    from zoolens.collect.cifar_resnet import resnet20

    root = tmp_path_factory.mktemp("made")
    images(root / "data")
    tiny_torchscript(root / "m1.pt", 0)
    tiny_torchscript(root / "m2.pt", 1)
    torch.manual_seed(2)
    torch.save({"state_dict": resnet20(num_classes=2).state_dict()}, root / "r20.th")
    (root / "models.toml").write_text(
        f'[[models]]\nspec = "torchscript:{root / "m1.pt"}"\nname = "m1"\n'
        f'[[models]]\nspec = "torchscript:{root / "m2.pt"}"\nname = "m2"\n'
        '[[models]]\nspec = "python:zoolens.collect.cifar_resnet:pretrained"\nname = "r20"\n'
        f'kwargs = {{ checkpoint = "{root / "r20.th"}" }}\n'
    )
    ok(
        "collect", root / "models.toml", "--data", root / "data", "--zoo", root / "zoo",
        "--create", "--threads", "1", "--batch-size", "8",
    )  # fmt: skip
    ok("analyze", root / "zoo", "--base", "m1", "--out", root / "results", "--bootstrap", "20")
    ok("export", root / "results", "--ensemble", "m1,m2,r20", "--out", root / "ensemble.json")
    return root


def edited(made: Path, folder: Path, change, name: str = "e.json") -> Path:
    spec = json.loads((made / "ensemble.json").read_text())
    change(spec)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(json.dumps(spec))
    return path


def predict_fails(made: Path, ensemble: Path, tmp_path: Path, match: str, *extra) -> str:
    out = tmp_path / "pred.csv"
    line = fails(
        "predict", ensemble, made / "data", "--out", out, "--threads", "1", *extra, match=match
    )
    assert not out.exists()
    return line


def predictions(made: Path, ensemble: Path, out: Path, *extra) -> pd.DataFrame:
    ok(
        "predict",
        ensemble,
        made / "data",
        "--out",
        out,
        "--threads",
        "1",
        "--batch-size",
        "8",
        *extra,
    )
    return pd.read_csv(out)


# ------------------------------------------------------------------ 1, 2: code execution


@pytest.mark.parametrize(
    "spec, kwargs",
    [
        ("python:os:system", lambda t: {"command": f"touch {t / 'PWNED'}"}),
        ("python:shutil:rmtree", lambda t: {"path": str(t / "victim")}),
        ("python:subprocess:run", lambda t: {"args": ["touch", str(t / "PWNED")]}),
    ],
)
def test_python_specs_run_nothing_without_trust_code(made, tmp_path, spec, kwargs):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_text("mine")

    def change(s):
        s["members"][1]["collect"] = {"spec": spec, "kwargs": kwargs(tmp_path)}
        s["members"][1]["checkpoints"] = []

    path = edited(made, tmp_path / "e", change)
    line = predict_fails(made, path, tmp_path, "member 'm2'")
    assert spec in line and "--trust-code" in line
    with pytest.raises(ZoolensError, match="trust_code=True"):
        from zoolens import load_ensemble

        load_ensemble(path)
    assert not (tmp_path / "PWNED").exists()
    assert (victim / "precious.txt").read_text() == "mine"


def test_trust_code_is_the_opt_in(made, tmp_path):
    """With --trust-code a python: member is built (here: a function that does not exist,
    so the builder's own error shows that the import was attempted only then)."""

    def change(s):
        s["members"][1]["collect"] = {"spec": "python:zoolens.collect.cifar_resnet:nope"}
        s["members"][1]["checkpoints"] = []

    path = edited(made, tmp_path / "e", change)
    predict_fails(made, path, tmp_path, "imports and calls Python code")
    predict_fails(made, path, tmp_path, "has no function nope", "--trust-code")


def test_pt2_programs_are_not_unpickled_without_trust_code(made, tmp_path, monkeypatch):
    loads = []
    monkeypatch.setattr(torch.export, "load", lambda *a, **k: loads.append(a))
    program = tmp_path / "e" / "evil.pt2"
    program.parent.mkdir()
    program.write_bytes(b"PK\x03\x04 a pickle inside")
    from zoolens.deploy.schema import sha256_file

    def change(s):
        s["members"][0]["collect"]["spec"] = "torchscript:evil.pt2"
        s["members"][0]["checkpoints"] = [
            {"key": "spec", "path": "evil.pt2", "sha256": sha256_file(program)}
        ]

    path = edited(made, tmp_path / "e", change)
    predict_fails(made, path, tmp_path, "torch unpickles")
    assert loads == []
    predict_fails(made, path, tmp_path, "cannot load TorchScript", "--trust-code")
    assert len(loads) == 1


def test_builtin_builders_need_no_opt_in(made, tmp_path):
    """TorchScript .pt files and zoolens's own CIFAR ResNet builder run as exported."""
    table = predictions(made, made / "ensemble.json", tmp_path / "p.csv")
    assert len(table) == 20 and set(table.top1_class) <= {"a", "b"}


# ------------------------------------------------------------------ 3: sha256 bypass


def test_a_kwarg_naming_another_file_than_the_checked_one_is_refused(made, tmp_path):
    """The checkpoint list holds the genuine file (right sha256) while the kwarg names a
    swapped one: refused before the swapped file is read."""
    from zoolens.collect.cifar_resnet import resnet20

    torch.manual_seed(9)
    torch.save({"state_dict": resnet20(num_classes=2).state_dict()}, tmp_path / "swapped.th")

    def change(s):
        s["members"][2]["collect"]["kwargs"]["checkpoint"] = str(tmp_path / "swapped.th")

    path = edited(made, tmp_path / "e", change)
    line = predict_fails(made, path, tmp_path, "kwarg checkpoint names")
    assert "not among its checkpoints" in line


@pytest.mark.parametrize(
    "kwargs",
    [
        {"cfg": {"file": "/etc/hostname"}},  # nested, under a file key
        {"labels": "sub/labels.txt"},  # a relative path
        {"pretrained_cfg_overlay": {"url": "/tmp/x.pth"}},  # a path-like value anywhere
    ],
)
def test_a_file_naming_kwarg_absent_from_checkpoints_is_refused(made, tmp_path, kwargs):
    def change(s):
        s["members"][2]["collect"]["kwargs"].update(kwargs)

    path = edited(made, tmp_path / "e", change)
    predict_fails(made, path, tmp_path, "not among its checkpoints")


def test_export_records_only_the_files_a_member_loads(made, tmp_path):
    ensemble = json.loads((made / "ensemble.json").read_text())
    recorded = {(m["name"], c["key"]) for m in ensemble["members"] for c in m["checkpoints"]}
    assert recorded == {("m1", "spec"), ("m2", "spec"), ("r20", "checkpoint")}
    # a card whose kwargs name a system file beside the checkpoint: never hashed, refused
    results = tmp_path / "results"
    shutil.copytree(made / "results", results)
    cards = json.loads((results / "cards.json").read_text())
    cards["cards"]["r20"]["collect"]["kwargs"]["notes"] = "/etc/hostname"
    cards["cards"]["r20"]["collect"]["kwargs"]["depth"] = 20
    (results / "cards.json").write_text(json.dumps(cards))
    out = tmp_path / "e.json"
    line = fails(
        "export", results, "--ensemble", "m1,r20", "--zoo", made / "zoo", "--out", out,
        match="kwarg notes = '/etc/hostname' looks like a path",
    )  # fmt: skip
    assert "only the files under checkpoint kwargs" in line and not out.exists()
    del cards["cards"]["r20"]["collect"]["kwargs"]["notes"]
    (results / "cards.json").write_text(json.dumps(cards))
    ok("export", results, "--ensemble", "m1,r20", "--zoo", made / "zoo", "--out", out)
    written = json.loads(out.read_text())
    assert [c["key"] for c in written["members"][1]["checkpoints"]] == ["checkpoint"]


# ------------------------------------------------------------------ 4: paths


def test_bundle_moved_and_run_from_a_folder_with_a_decoy_uses_its_own_models(
    made, tmp_path, monkeypatch
):
    reference = predictions(made, made / "ensemble.json", tmp_path / "ref.csv")
    ok("export", made / "results", "--ensemble", "m1,m2,r20", "--bundle", tmp_path / "b")
    written = json.loads((tmp_path / "b" / "ensemble.json").read_text())
    paths = [c["path"] for m in written["members"] for c in m["checkpoints"]]
    assert all(not Path(p).is_absolute() and p.startswith("files/") for p in paths)
    assert sorted(p.name for p in (tmp_path / "b" / "files").iterdir()) == [
        "m1.pt",
        "m2.pt",
        "r20.th",
    ]
    moved = tmp_path / "elsewhere" / "shipped"
    moved.parent.mkdir()
    shutil.move(tmp_path / "b", moved)
    # the working directory holds decoys under the very names the bundle uses
    decoys = tmp_path / "cwd"
    (decoys / "files").mkdir(parents=True)
    for name, seed in (("m1.pt", 7), ("m2.pt", 8), ("model.pt", 9)):
        tiny_torchscript(decoys / "files" / name, seed)
        tiny_torchscript(decoys / name, seed)
    monkeypatch.chdir(decoys)
    before = snapshot(decoys)
    table = predictions(made, Path("../elsewhere/shipped/ensemble.json"), tmp_path / "p.csv")
    pd.testing.assert_frame_equal(table, reference)
    assert snapshot(decoys) == before


def test_relative_paths_resolve_against_the_ensemble_files_folder(made, tmp_path, monkeypatch):
    """A hand-written file naming ``model.pt``: the one beside it, not the working
    directory's decoy; a path leaving the folder is refused."""
    from zoolens.deploy.schema import sha256_file

    shipped = tmp_path / "shipped"
    shipped.mkdir()
    shutil.copy(made / "m1.pt", shipped / "model.pt")

    def change(s, path="model.pt"):
        s["members"] = [s["members"][0]]
        s["members"][0]["collect"]["spec"] = f"torchscript:{path}"
        s["members"][0]["checkpoints"] = [
            {"key": "spec", "path": path, "sha256": sha256_file(shipped / "model.pt")}
        ]

    def bare(s):  # hand-written: the spec alone, no checkpoint list
        change(s)
        s["members"][0]["checkpoints"] = []

    path = edited(made, shipped, change)
    unlisted = edited(made, shipped, bare, "bare.json")
    reference = edited(made, tmp_path / "ref", lambda s: s.update(members=[s["members"][0]]))
    expected = predictions(made, reference, tmp_path / "ref.csv")
    decoys = tmp_path / "cwd"
    decoys.mkdir()
    tiny_torchscript(decoys / "model.pt", 5)
    monkeypatch.chdir(decoys)
    pd.testing.assert_frame_equal(predictions(made, path, tmp_path / "p.csv"), expected)
    pd.testing.assert_frame_equal(predictions(made, unlisted, tmp_path / "q.csv"), expected)
    from zoolens import load_ensemble

    x = torch.rand(2, 3, 32, 32)
    own = torch.jit.load(str(shipped / "model.pt"))
    temperature = json.loads(unlisted.read_text())["members"][0]["temperature"]
    want = torch.softmax(own(x).double() / temperature, dim=1)
    got = load_ensemble(unlisted)(x)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    escape = edited(made, shipped / "sub", lambda s: change(s, "../model.pt"))
    predict_fails(made, escape, tmp_path, "leaves the ensemble file's folder")


def test_bundle_into_a_non_empty_folder_or_a_zoo_is_refused(made, tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("keep")
    fails(
        "export",
        made / "results",
        "--ensemble",
        "m1",
        "--bundle",
        tmp_path / "full",
        match="not an empty folder",
    )
    assert snapshot(tmp_path / "full") == {"x": b"keep"}
    before = snapshot(made / "zoo")
    fails(
        "export",
        made / "results",
        "--ensemble",
        "m1",
        "--out",
        made / "zoo" / "zoo.json",
        match="inside the zoo",
    )
    fails(
        "export",
        made / "results",
        "--ensemble",
        "m1",
        "--bundle",
        made / "zoo" / "b",
        match="inside the zoo",
    )
    assert snapshot(made / "zoo") == before


# ------------------------------------------------------------------ 5, 6, 7: numbers, hand edits


def _nest(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize(
    "text, match",
    [
        (
            lambda s: re.sub(r'"temperature": [^,]*', '"temperature": 5e-324', s, count=1),
            "members.0.temperature",
        ),
        (lambda s: s.replace('"weight": 1', '"weight": ' + "9" * 40, 1), "members.0.weight"),
        (lambda s: s.replace('"weight": 1', '"weight": ' + "9" * 5000, 1), "not a JSON"),
        (
            lambda s: re.sub(r'"temperature": [^,]*', '"temperature": 1e999', s, count=1),
            "members.0.temperature",
        ),
        (
            lambda s: s.replace(
                '"provenance": {', '"provenance": {"deep": ' + _nest(100000) + ",", 1
            ),
            "nested too deeply",
        ),
        (
            lambda s: s.replace('"provenance": {', '"provenance": {"deep": ' + _nest(500) + ",", 1),
            "more than 32 levels",
        ),
        (lambda s: "\ufeff" + s[:-40], "not a JSON ensemble file"),
    ],
)
def test_hand_edited_text_is_one_line(made, tmp_path, text, match):
    path = tmp_path / "e.json"
    path.write_text(text((made / "ensemble.json").read_text()))
    predict_fails(made, path, tmp_path, match)


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda s: s["members"][0].update(temperature=5e-324), "members.0.temperature"),
        (lambda s: s["members"][0].update(temperature=1e300), "members.0.temperature"),
        (lambda s: s["members"][0].update(weight=10**9), "members.0.weight"),
        (lambda s: s["members"][0].update(input_shape=[3, 10**6, 32]), "input_shape"),
        (
            lambda s: s["members"][0]["collect"].update(preprocess={"resize": 10**6}),
            "resize must be",
        ),
        (
            lambda s: s["members"][0]["collect"].update(preprocess={"rezise": 32}),
            "unknown preprocess key(s) rezise",
        ),
        (lambda s: s["members"][0]["collect"].update(preprocess={"std": [0, 1, 1]}), "std must be"),
        (
            lambda s: s["members"][2]["collect"]["kwargs"].update(num_classes=10**9),
            "kwarg num_classes",
        ),
        (lambda s: s["members"][2]["collect"].update(seed=2**70), "seed must be"),
        (lambda s: s["members"][2]["collect"].update(templates=["{}"] * 5000), "templates"),
        (lambda s: s["members"][2]["collect"].update(probe_l2=float("1e300")), "probe_l2"),
        (lambda s: s.update(class_names=["x" * 5000, "b"]), "class_names.0"),
    ],
)
def test_numbers_and_sizes_are_bounded(made, tmp_path, change, match):
    path = edited(made, tmp_path, change)
    predict_fails(made, path, tmp_path, match)


def test_non_finite_probabilities_are_never_written(made, tmp_path):
    """A member whose logits are inf (a legal TorchScript file): refused, nothing written."""
    from zoolens.deploy.schema import sha256_file

    torch.jit.script(Inf()).save(str(tmp_path / "inf.pt"))

    def change(s):
        s["members"][0]["collect"]["spec"] = f"torchscript:{tmp_path / 'inf.pt'}"
        s["members"][0]["checkpoints"][0].update(
            path=str(tmp_path / "inf.pt"), sha256=sha256_file(tmp_path / "inf.pt")
        )

    path = edited(made, tmp_path, change)
    predict_fails(made, path, tmp_path, "probabilities are not finite")


@pytest.mark.parametrize(
    "content, match",
    [
        (b"\x00\x01garbage\xff\xfe", "not a models table"),
        (b"model,temperature\nm1,hot\nm2,1.0\n", "row 2: temperature is not a number"),
        (b"name,t\nm1,1\n", "not a models table"),
        (b"", "not a models table"),
        (b'model,temperature\n"m1,1\n', "not a models table"),
    ],
)
def test_garbage_models_csv_is_one_line(made, tmp_path, content, match):
    results = tmp_path / "results"
    shutil.copytree(made / "results", results)
    (results / "models.csv").write_bytes(content)
    out = tmp_path / "e.json"
    fails(
        "export", results, "--ensemble", "m1,m2", "--zoo", made / "zoo", "--out", out, match=match
    )
    assert not out.exists()


def test_summary_json_deep_or_huge_is_one_line(made, tmp_path):
    results = tmp_path / "results"
    shutil.copytree(made / "results", results)
    for text in (_nest(100000), '{"x": ' + "9" * 5000 + "}"):
        (results / "summary.json").write_text(text)
        fails(
            "export",
            results,
            "--ensemble",
            "m1,m2",
            "--out",
            tmp_path / "e.json",
            match="summary.json",
        )


# ------------------------------------------------------------------ 7: decompression bombs

LIMIT_AS = 4 << 30  # the address-space limit the bombs must stay under

RUN_LIMITED = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))
from zoolens.cli import app
sys.argv = ["zoolens", *sys.argv[1:]]
app()
"""


def run_limited(*args: object):
    """The CLI in a subprocess whose address space is capped at 4 GiB (RLIMIT_AS)."""
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-c", RUN_LIMITED.format(limit=LIMIT_AS), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=600,
    )


def png_bomb(path: Path, side: int = 20_000) -> Path:
    """A valid grayscale PNG of side x side zeros: ~400 KB on disk, 1.2 GB as RGB."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    packer = zlib.compressobj(1)
    block = b"\0" * ((side + 1) * 500)  # 500 rows (filter byte + pixels) at a time
    idat = b"".join(packer.compress(block) for _ in range(side // 500)) + packer.flush()
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )
    return path


def test_decompression_bombs_are_skipped_and_listed_in_bounded_memory(made, tmp_path):
    flat = tmp_path / "flat"
    flat.mkdir()
    png_bomb(flat / "bomb.png")
    png_bomb(flat / "bomb-9000.png", side=9_000)  # below PIL's own limit, above zoolens's
    for name in ("a/00.png", "b/01.png"):
        shutil.copy(made / "data" / name, flat / name.replace("/", "-"))
    out = tmp_path / "p.csv"
    res = run_limited(
        "predict", made / "ensemble.json", flat, "--out", out, "--device", "cpu", "--threads", "1"
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert "Traceback" not in res.stderr
    assert "skipped 2 undecodable image(s)" in res.stderr
    table = pd.read_csv(out)
    assert sorted(table.image) == ["a-00.png", "b-01.png"]
    from zoolens.collect.images import UndecodableImage, decode_image

    with pytest.raises(UndecodableImage, match="20000 x 20000|DecompressionBomb"):
        decode_image(flat / "bomb.png")
    with pytest.raises(UndecodableImage, match="9000 x 9000 pixels"):
        decode_image(flat / "bomb-9000.png")


# ------------------------------------------------------------------ 9: report thumbnails


def _png(path: Path, value: int = 90) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8, 3), value, dtype=np.uint8)).save(path)
    return path


def test_thumbnails_only_from_regular_files_under_the_image_root(tmp_path):
    import os

    from zoolens.report.html import THUMBNAIL_MAX_BYTES, thumbnail_uri

    root = tmp_path / "root"
    good = _png(root / "a" / "good.png")
    outside = _png(tmp_path / "outside.png")
    os.mkfifo(root / "a" / "fifo.png")
    (root / "a" / "link.png").symlink_to(outside)
    with open(root / "a" / "big.png", "wb") as fh:  # sparse: no disk used
        fh.truncate(THUMBNAIL_MAX_BYTES + 1)
    assert thumbnail_uri(str(good), str(root)).startswith("data:image/png;base64,")
    for path in ("fifo.png", "link.png", "big.png", "../../outside.png"):
        assert thumbnail_uri(str(root / "a" / path), str(root)) is None, path
    assert thumbnail_uri(str(outside), str(root)) is None
    assert thumbnail_uri(str(good), None) is None  # no root recorded: nothing embedded
    assert thumbnail_uri(str(good), "/") is None  # "/" is no limit


def test_report_never_opens_a_fifo_named_by_drilldown_csv(made, tmp_path):
    """drilldown.csv's image column rewritten to a FIFO under the root, a file outside
    and a good image: the report finishes (in a subprocess with a timeout: a FIFO that is
    opened blocks for ever) and embeds only the good image."""
    import os
    import subprocess
    import sys

    results = tmp_path / "results"
    shutil.copytree(made / "results", results)
    root = tmp_path / "root"
    good = _png(root / "good.png")
    os.mkfifo(root / "fifo.png")
    secret = _png(tmp_path / "secret.png", 17)
    summary = json.loads((results / "summary.json").read_text())
    assert summary["zoo"]["image_root"] == str((made / "data").resolve())
    summary["zoo"]["image_root"] = str(root)
    (results / "summary.json").write_text(json.dumps(summary))
    drill = pd.read_csv(results / "drilldown.csv", keep_default_na=False)
    examples = drill.example.unique()
    assert len(examples) >= 3, "the fixture's drill-down needs three examples"
    paths = {examples[0]: good, examples[1]: root / "fifo.png", examples[2]: secret}
    drill["image"] = [str(paths.get(e, "")) for e in drill.example]
    drill.to_csv(results / "drilldown.csv", index=False)
    (results / "drilldown.json").unlink(missing_ok=True)  # its recorded size no longer holds
    out = tmp_path / "report.html"
    code = "from zoolens.cli import app; app()"
    res = subprocess.run(
        [sys.executable, "-c", code, "report", str(results), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    page = out.read_text()
    assert page.count('<img src="data:image/png;base64,') == 1


# ------------------------------------------------------------------ 10, 11: names, CSVs, --out


@pytest.fixture(scope="module")
def named(tmp_path_factory):
    """A zoo whose model and class names carry a bidi override and spreadsheet formulas,
    analysed."""
    from zoolens import Zoo

    root = tmp_path_factory.mktemp("named")
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 3, 300)
    zoo = Zoo.create(root / "zoo", labels, class_names=["=1+1", "@cmd", "-x"])
    names = ["base", "evil\u202egnp.exe", '=HYPERLINK("http://x")', "-0.5"]
    for k, name in enumerate(names):
        zoo.add(name, logits=rng.normal(size=(300, 3)) + (1 + k) * np.eye(3)[labels])
    ok("analyze", root / "zoo", "--base", "base", "--out", root / "results", "--bootstrap", "20")
    return root, names


def test_written_csvs_neutralise_formulas_in_text_cells_only(named):
    root, names = named
    text = (root / "results" / "models.csv").read_text()
    assert "'=HYPERLINK" in text and "\n=" not in text and ",=" not in text
    models = pd.read_csv(root / "results" / "models.csv", keep_default_na=False)
    assert sorted(models.model) == sorted(
        ['\'=HYPERLINK("http://x")', "-0.5", "base", "evil\u202egnp.exe"]
    )
    # numbers are numbers: no numeric column gained a quote, negative values stay negative
    for name in ("pairs", "models"):
        table = pd.read_csv(root / "results" / f"{name}.csv")
        assert not any(
            str(v).startswith("'") for c in table.select_dtypes("number") for v in table[c]
        )
    pairs = pd.read_csv(root / "results" / "pairs.csv")
    assert (pairs.select_dtypes("number") < 0).any().any()  # e.g. negative gains, written as -0.0…
    from zoolens.deploy.export import _read_models
    from zoolens.report.tables import load_results

    assert sorted(_read_models(root / "results" / "models.csv").model) == sorted(names)
    assert sorted(load_results(root / "results").get("models").model) == sorted(names)


def test_report_escapes_bidi_controls_and_shows_names_restored(named, tmp_path):
    root, _ = named
    out = tmp_path / "report.html"
    ok("report", root / "results", "--out", out)
    page = out.read_text()
    assert "\u202e" not in page and "evil\\u202egnp.exe" in page
    assert "=HYPERLINK(&quot;http://x&quot;)" in page and "&#x27;=HYPERLINK" not in page


def test_predictions_csv_neutralises_class_names(made, tmp_path):
    def change(s):
        s["class_names"] = ["=1+1", "@SUM(A1)"]

    path = edited(made, tmp_path / "e", change)
    flat = tmp_path / "flat"
    flat.mkdir()
    for name in ("a/00.png", "b/01.png"):
        shutil.copy(made / "data" / name, flat / ("-" + name.replace("/", "-")))
    out = tmp_path / "p.csv"
    ok("predict", path, flat, "--out", out, "--threads", "1")
    table = pd.read_csv(out)
    assert set(table.top1_class) <= {"'=1+1", "'@SUM(A1)"}
    assert sorted(table.image) == ["'-a-00.png", "'-b-01.png"]
    assert table.top1_prob.dtype == float and table.top1_index.dtype == np.int64


def test_out_inside_a_zoo_is_refused(named, made, tmp_path):
    root, _ = named
    zoo = root / "zoo"
    before = snapshot(zoo)
    fails("analyze", zoo, "--base", "base", "--out", zoo, match="inside the zoo")
    fails("analyze", zoo, "--base", "base", "--out", zoo / "models" / "r", match="inside the zoo")
    fails("ensemble", zoo, "--start", "base", "--out", zoo / "g", match="inside the zoo")
    fails("report", root / "results", "--out", zoo / "zoo.json", match="inside the zoo")
    fails(
        "export",
        root / "results",
        "--ensemble",
        "base",
        "--out",
        zoo / "zoo.json",
        match="inside the zoo",
    )
    fails(
        "predict",
        made / "ensemble.json",
        made / "data",
        "--out",
        zoo / "p.csv",
        match="inside the zoo",
    )
    assert snapshot(zoo) == before


def test_error_lines_are_capped_and_progress_names_escaped():
    from zoolens.progress import progress_bar, set_quiet

    set_quiet(False)
    with progress_bar(3, "file \x1b[2J\u202e[red]x[/red].png") as advance:
        advance(3)
    description = advance.bar.tasks[0].description
    assert "\x1b" not in description and "\u202e" not in description
    assert "\\x1b" in description and "\\[red]" in description
    res = run("predict", "d/" * 2000 + "e.json", "images")  # the message quotes the path
    assert res.exit_code == 1 and "Traceback" not in res.output
    line = res.output.strip()
    assert line.startswith("error: d/d/") and line.endswith("…")
    assert len(line) == 1_000 + len("error: ")


# ------------------------------------------------------------------ 8: predict's scratch


def test_predict_sweeps_the_scratch_a_killed_run_left(made, tmp_path, monkeypatch):
    """A `predict --ray` killed with SIGKILL leaves its scratch folder in TMPDIR; the next
    run removes it (named by the dead process's pid) before making its own, which it names
    by its own pid and removes when done; a live process's folder is never touched."""
    import subprocess
    import sys
    import tempfile

    import zoolens.collect.distributed as distributed
    from zoolens.collect.images import ImageFolder
    from zoolens.collect.runner import RunOptions
    from zoolens.deploy.predict import SCRATCH_PREFIX, _run_on_ray
    from zoolens.deploy.schema import read_ensemble_file

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    ).stdout.strip()
    stale = tmp_path / f"{SCRATCH_PREFIX}{dead}-abc"
    (stale / "shards").mkdir(parents=True)
    (stale / "shards" / "0.npz").write_bytes(b"\0" * 1024)
    alive = tmp_path / f"{SCRATCH_PREFIX}1-abc"  # pid 1 always runs
    alive.mkdir()
    seen = []

    def ray_stand_in(entry, folder, store, options, **kwargs):
        seen.extend(p.name for p in tmp_path.iterdir())
        raise RuntimeError("stop here")

    monkeypatch.setattr(distributed, "run_into_store_ray", ray_stand_in)
    member = read_ensemble_file(made / "ensemble.json").members[0]
    folder = ImageFolder(made / "data")
    with pytest.raises(RuntimeError, match="stop here"):
        _run_on_ray(member, folder, folder, RunOptions(threads=1), None)
    mine = [n for n in seen if n.startswith(f"{SCRATCH_PREFIX}{os.getpid()}-")]
    assert stale.name not in seen and len(mine) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [alive.name]


# ------------------------------------------------------------------ acceptance review (sec2)


class _Writes:
    """Unpickling this creates ``path`` (a stand-in for any code a pickle may run)."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def tiny_program(path: Path, seed: int = 3, batch: object = "dynamic") -> Path:
    """A torch.export program of ``Tiny`` (``batch="dynamic"``: any batch size)."""
    torch.manual_seed(seed)
    shapes = {"x": {0: torch.export.Dim.DYNAMIC}} if batch == "dynamic" else None
    program = torch.export.export(
        Tiny().eval(), (torch.randn(2, 3, 32, 32),), dynamic_shapes=shapes
    )
    torch.export.save(program, str(path))
    return path


def hostile_program(path: Path, pwned: Path) -> Path:
    """A valid torch.export archive whose weights are a pickle that creates ``pwned``."""
    import pickle
    import zipfile

    base = tiny_program(path.with_name("base-" + path.name.replace("/", "")))
    with zipfile.ZipFile(base) as zin:
        items = [(info, zin.read(info.filename)) for info in zin.infolist()]
    config_name = next(
        i.filename for i, _ in items if i.filename.endswith("model_weights_config.json")
    )
    config = json.loads(dict((i.filename, d) for i, d in items)[config_name])
    key = next(iter(config["config"]))
    config["config"][key]["use_pickle"] = True
    weight = config["config"][key]["path_name"]
    with zipfile.ZipFile(path, "w") as out:
        for info, data in items:
            if info.filename == config_name:
                data = json.dumps(config).encode()
            elif info.filename.endswith("weights/" + weight):
                data = pickle.dumps(_Writes(pwned), protocol=2)
            out.writestr(info, data)
    base.unlink()
    return path


@pytest.mark.parametrize(
    "name, spec, listed",
    [
        ("model.pt2", "model.pt2/", False),  # a trailing slash: the text no longer ends in .pt2
        ("model.pt2", "model.pt2/.", False),
        ("model.pt2", "./model.pt2", True),  # listed with its sha256 under key "spec"
        ("model.PT2", "model.PT2", True),
        ("model.pt", "model.pt", True),  # a torch.export archive under a TorchScript name
    ],
)
def test_a_pt2_program_is_never_unpickled_without_trust_code_however_named(
    made, tmp_path, name, spec, listed
):
    from zoolens import load_ensemble
    from zoolens.collect.specs import ModelEntry, load_model
    from zoolens.deploy.schema import sha256_file

    pwned = tmp_path / "PWNED"
    folder = tmp_path / "e"
    folder.mkdir()
    program = hostile_program(folder / name, pwned)

    def change(s):
        s["members"] = [s["members"][0]]
        s["members"][0]["collect"]["spec"] = f"torchscript:{spec}"
        s["members"][0]["checkpoints"] = (
            [{"key": "spec", "path": spec, "sha256": sha256_file(program)}] if listed else []
        )

    path = edited(made, folder, change)
    predict_fails(made, path, tmp_path, "torch unpickles")
    with pytest.raises(ZoolensError, match="torch unpickles"):
        load_ensemble(path)
    # defence in depth: the loader itself refuses torch.export.load without the opt-in
    with pytest.raises(ZoolensError, match="torch.export program.*refused"):
        load_model(ModelEntry(spec=f"torchscript:{program}", name="m"))
    assert not pwned.exists()
    # the opt-in is the reader's: an ensemble file cannot grant it to itself
    path = edited(made, folder, lambda s: (change(s), s["members"][0]["collect"].update(
        allow_pickle=True)))  # fmt: skip
    predict_fails(made, path, tmp_path, "torch unpickles")
    assert not pwned.exists()


def test_a_trusted_pt2_member_runs(made, tmp_path):
    """With --trust-code a torch.export member predicts (its GraphModule refuses eval():
    zoolens does not call it); without, one line; a program exported for a fixed batch
    size fails with one line naming the member."""
    from zoolens import load_ensemble

    folder = tmp_path / "e"
    folder.mkdir()
    tiny_program(folder / "model.pt2")

    def change(s, file="model.pt2"):
        s["members"] = [s["members"][0]]
        s["members"][0]["collect"]["spec"] = f"torchscript:{file}"
        s["members"][0]["checkpoints"] = []

    path = edited(made, folder, change)
    predict_fails(made, path, tmp_path, "torch unpickles")
    table = predictions(made, path, tmp_path / "p.csv", "--trust-code")
    assert len(table) == 20
    model = load_ensemble(path, trust_code=True)
    x = torch.rand(3, 3, 32, 32)
    program = torch.export.load(str(folder / "model.pt2")).module()
    temperature = json.loads(path.read_text())["members"][0]["temperature"]
    want = torch.softmax(program(x).double() / temperature, dim=1)
    torch.testing.assert_close(model(x), want, rtol=1e-5, atol=1e-6)  # float32 logits
    # the CSV's probabilities are the module's own on the images (top-1 of two classes)
    from PIL import Image

    first = np.asarray(Image.open(made / "data" / "a" / "00.png"), dtype=np.float32) / 255
    image = torch.from_numpy(first).permute(2, 0, 1)[None]
    expected = torch.softmax(program(image).double() / temperature, dim=1).max().item()
    assert table.top1_prob.iloc[0] == pytest.approx(expected, rel=1e-5)
    tiny_program(folder / "fixed.pt2", batch="static")  # exported for batches of 2
    fixed = edited(made, folder, lambda s: change(s, "fixed.pt2"), "fixed.json")
    predict_fails(made, fixed, tmp_path, "member 'm1' fails on one image", "--trust-code")


def test_a_symlinked_ensemble_file_reads_the_files_beside_its_target(made, tmp_path):
    from zoolens.deploy.schema import sha256_file

    real = tmp_path / "real"
    real.mkdir()
    shutil.copy(made / "m1.pt", real / "model.pt")

    def change(s):
        s["members"] = [s["members"][0]]
        s["members"][0]["collect"]["spec"] = "torchscript:model.pt"
        s["members"][0]["checkpoints"] = [
            {"key": "spec", "path": "model.pt", "sha256": sha256_file(real / "model.pt")}
        ]

    target = edited(made, real, change)
    links = tmp_path / "links"
    links.mkdir()
    tiny_torchscript(links / "model.pt", 11)  # a decoy beside the link
    (links / "e.json").symlink_to(target)
    expected = predictions(made, target, tmp_path / "ref.csv")
    pd.testing.assert_frame_equal(predictions(made, links / "e.json", tmp_path / "p.csv"), expected)
    unlisted = edited(made, real, lambda s: (change(s), s["members"][0].update(checkpoints=[])), "u.json")  # fmt: skip
    (links / "u.json").symlink_to(unlisted)
    pd.testing.assert_frame_equal(predictions(made, links / "u.json", tmp_path / "q.csv"), expected)


def test_a_weights_name_kwarg_is_refused_as_a_name_not_a_missing_checkpoint(made, tmp_path):
    def change(s):
        s["members"][0]["collect"] = {
            "spec": "torchvision:resnet18",
            "kwargs": {"weights": "IMAGENET1K_V1", "num_classes": 2},
        }
        s["members"][0]["checkpoints"] = []

    line = predict_fails(made, edited(made, tmp_path / "e", change), tmp_path, "not a file")
    assert "'IMAGENET1K_V1'" in line and "torchvision:resnet18/IMAGENET1K_V1" in line
    assert "not among its checkpoints" not in line


def test_predict_lists_every_skipped_image_bounded(made, tmp_path):
    flat = tmp_path / "flat"
    flat.mkdir()
    for i in range(25):
        (flat / f"bad{i:02d}.png").write_bytes(b"not a png")
    for name in ("a/00.png", "b/01.png"):
        shutil.copy(made / "data" / name, flat / name.replace("/", "-"))
    res = runner.invoke(  # not --quiet: the warning is the point
        app, ["predict", str(made / "ensemble.json"), str(flat), "--out", str(tmp_path / "p.csv")]
    )
    assert res.exit_code == 0, res.output
    out = res.output
    listed = ", ".join(f"bad{i:02d}.png" for i in range(20))
    assert f"skipped 25 undecodable image(s): {listed} and 5 more" in out
    assert len(pd.read_csv(tmp_path / "p.csv")) == 2


# ------------------------------------------------------------------ review: resources


def test_cifar_resnet_depth_is_bounded_by_the_architecture(made, tmp_path):
    """depth 99998 allocated gigabytes (a traceback under a 4 GiB limit): one line, before
    anything is built; He et al.'s CIFAR ResNets are 6n+2 deep, 8 to 1202."""
    from zoolens.collect.cifar_resnet import MAX_DEPTH, pretrained

    def change(s):
        s["members"][2]["collect"]["kwargs"] = {"depth": 99998}
        s["members"][2]["checkpoints"] = []

    path = edited(made, tmp_path / "e", change)
    res = run_limited("predict", path, made / "data", "--out", tmp_path / "p.csv", "--threads", "1")
    assert res.returncode == 1 and "Traceback" not in res.stderr, res.stderr[-2000:]
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("error")]
    assert len(lines) == 1 and lines[0] == res.stderr.strip().splitlines()[-1], res.stderr
    assert "member 'r20'" in lines[0] and "6n+2 in [8, 1202]" in lines[0]
    assert not (tmp_path / "p.csv").exists()
    assert MAX_DEPTH == 1202 and (MAX_DEPTH - 2) % 6 == 0
    for depth in (MAX_DEPTH + 6, 2, 21):
        with pytest.raises(ZoolensError, match="6n"):
            pretrained(depth=depth)
    model, _, card = pretrained(depth=14, num_classes=3)
    assert card["arch"] == "resnet14" and model(torch.rand(1, 3, 32, 32))[0].shape == (1, 3)


def test_preprocess_sides_are_capped_and_large_ones_run_in_bounded_memory(made, tmp_path):
    """8,192 px (805 MB of float32 per image, a MemoryError traceback) and 2,048 px are
    refused by the schema. Under a 4 GiB address-space limit (torch alone maps most of it)
    512 px runs, and the cap, 1,024 px, at --batch-size 256 (batches shrunk to 64 MiB) either
    runs or stops with one line naming the member: never a traceback."""

    def change(s, side=8192):
        s["members"] = [s["members"][0]]
        s["members"][0]["collect"]["preprocess"] = {"resize": side, "crop": side}
        s["members"][0]["input_shape"] = [3, min(side, 1024), min(side, 1024)]

    for side in (8192, 2048):
        folder = tmp_path / str(side)
        predict_fails(
            made, edited(made, folder, lambda s: change(s, side)), tmp_path, "in [1, 1024]"
        )
    out = tmp_path / "p.csv"
    for side, batch in ((512, 1), (1024, 256)):
        path = edited(made, tmp_path / "e", lambda s: change(s, side), f"{side}.json")
        res = run_limited("predict", path, made / "data", "--out", out, "--device", "cpu",
                          "--threads", "1", "--batch-size", batch)  # fmt: skip
        assert "Traceback" not in res.stderr, res.stderr[-2000:]
        if side == 512 or res.returncode == 0:
            assert res.returncode == 0, res.stderr[-2000:]
            assert len(pd.read_csv(out)) == 20
            out.unlink()
        else:
            lines = [ln for ln in res.stderr.splitlines() if ln.startswith("error")]
            assert len(lines) == 1 and "member 'm1': out of memory" in lines[0], res.stderr
            assert not out.exists()


def test_batches_are_shrunk_to_the_byte_budget():
    from zoolens.collect.batches import MAX_BATCH_BYTES, fit_batch_size
    from zoolens.collect.images import UndecodableImage

    class Items:
        def __init__(self, shape):
            self.shape = shape

        def __getitem__(self, index):
            if index < 3:
                raise UndecodableImage(Path(f"{index}.png"), "broken")
            return torch.zeros(self.shape)

    big = 3 * 1024 * 1024 * 4  # bytes of one 1,024 px float32 image
    assert fit_batch_size(Items((3, 1024, 1024)), [(0, 10)], 256) == MAX_BATCH_BYTES // big == 5
    assert fit_batch_size(Items((3, 224, 224)), [(0, 10)], 256) == 111  # 64 MiB / 588 KiB
    assert fit_batch_size(Items((3, 224, 224)), [(0, 10)], 64) == 64  # 37 MiB: kept
    assert fit_batch_size(Items((3, 32, 32)), [(0, 3)], 8) == 8  # nothing decodes: kept


def test_a_resize_that_would_stretch_a_thin_image_skips_it():
    """Resizing the short side scales the long one: a 1 x 5,000 image at resize 32 would be
    32 x 160,000; it is skipped as unreadable, a square one is resized."""
    from PIL import Image

    from zoolens.collect.images import UndecodableImage
    from zoolens.collect.specs import build_preprocess

    transform = build_preprocess({"resize": 32}, "m")
    with pytest.raises(UndecodableImage, match="long side 160,000 px, beyond 1,024"):
        transform(Image.new("RGB", (5000, 1)))
    assert transform(Image.new("RGB", (64, 64))).shape == (3, 32, 32)


def test_allocation_failures_are_one_line_naming_the_member(made, tmp_path, monkeypatch):
    """A real one (a trusted python: builder asking torch for 40 GB under a 4 GiB limit)
    and torch's / Python's messages raised where members are built or run."""
    from zoolens import load_ensemble
    from zoolens.deploy import predict as predict_module
    from zoolens.errors import is_out_of_memory

    def change(s):
        s["members"][1]["collect"] = {"spec": "python:torch:empty", "kwargs": {"size": [100000, 100000]}}  # fmt: skip
        s["members"][1]["checkpoints"] = []

    path = edited(made, tmp_path / "e", change)
    res = run_limited("predict", path, made / "data", "--out", tmp_path / "p.csv",
                      "--threads", "1", "--trust-code")  # fmt: skip
    assert res.returncode == 1 and "Traceback" not in res.stderr, res.stderr[-2000:]
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("error")]
    assert len(lines) == 1 and lines[0] == res.stderr.strip().splitlines()[-1], res.stderr
    assert "member 'm2': out of memory" in lines[0], lines
    torch_message = (
        "[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate "
        "memory: you tried to allocate 805306368 bytes. Error code 12"
    )
    for exc in (RuntimeError(torch_message), MemoryError()):

        def raising(*args, exc=exc, **kwargs):
            raise exc

        monkeypatch.setattr(predict_module, "build_member", raising)
        predict_fails(made, made / "ensemble.json", tmp_path, "member 'm1': out of memory")
        with pytest.raises(ZoolensError, match="member 'm1': out of memory"):
            load_ensemble(made / "ensemble.json")
        monkeypatch.undo()
    monkeypatch.setattr("zoolens.collect.runner.run_model", lambda *a, **k: (_ for _ in ()).throw(MemoryError()))  # fmt: skip
    predict_fails(made, made / "ensemble.json", tmp_path, "member 'm1': out of memory")
    assert is_out_of_memory(RuntimeError("CUDA out of memory. Tried to allocate 2 GiB"))
    assert not is_out_of_memory(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))


def test_collect_turns_allocation_failures_into_one_line(made, tmp_path, monkeypatch):
    monkeypatch.setattr("zoolens.collect.runner.load_model", lambda *a, **k: (_ for _ in ()).throw(MemoryError()))  # fmt: skip
    fails(
        "collect", f"torchscript:{made / 'm1.pt'}", "--data", made / "data",
        "--zoo", tmp_path / "zoo", "--create", "--threads", "1",
        match="model 'm1': out of memory",
    )  # fmt: skip
    assert not (tmp_path / "zoo").exists()
