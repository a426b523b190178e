"""`zoolens import / info / remove / verify` on the real CIFAR-10 outputs and on bad input.

The acceptance test of issue 2: every file of ../shared/data/cifar10-probs goes into one zoo
(the Kerrigan CSVs by column range, the 1-based-label file with its own labels, the CIFAR-10H
vote counts as a model of framework "human"), and `zoolens info` reports the accuracies
published in ../shared/data/README.md to four decimals.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import shared_path
from zoolens.cli import app
from zoolens.zoo.store import Zoo

runner = CliRunner()

# ../shared/data/README.md, "test accuracy (argmax)"; human votes: majority with ties -> lowest
README_ACCURACY = {
    "lenet": 0.5308,
    "wrn": 0.9109,
    "vgg": 0.9359,
    "pyx": 0.9294,
    "densenet": 0.9668,
    "preresnet": 0.9506,
    "resnet110": 0.9389,
    "human_model_truth": 0.8892,
    "human": 0.9921,
}
CLASSES = "airplane,automobile,bird,cat,deer,dog,frog,horse,ship,truck"


def zl(*args: str):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def ok(*args: str):
    result = zl(*args)
    assert result.exit_code == 0, result.output
    return result


def fails(*args: str, match: str) -> str:
    """The command exits non-zero with exactly one `error:` line containing ``match``."""
    result = zl(*args)
    assert result.exit_code != 0
    err = result.stderr
    assert "Traceback" not in result.output
    # progress bars may precede it on stderr; the error itself is one line
    lines = [line for line in err.splitlines() if line.startswith("error")]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert err.rstrip().endswith(lines[0]), err
    assert match.lower() in lines[0].lower(), lines[0]
    return lines[0]


def _import_cifar10(zoo: Path, data: Path) -> None:
    ok(
        "import",
        zoo,
        data / "densenet-bc-L190-k40.csv",
        "--name",
        "densenet",
        "--kind",
        "probs",
        "--columns",
        "11:21",
        "--create",
        "--labels",
        data / "densenet-bc-L190-k40.csv",
        "--labels-column",
        "0",
        "--class-names",
        CLASSES,
        "--dataset-name",
        "CIFAR-10",
        "--arch",
        "densenet-bc-190",
        "--framework",
        "supervised",
        "--pretrain-data",
        "cifar10",
    )
    for file, name, arch in [
        ("preresnet-110.csv", "preresnet", "preresnet-110"),
        ("resnet-110.csv", "resnet110", "resnet-110"),
    ]:
        ok(
            "import",
            zoo,
            data / file,
            "--name",
            name,
            "--kind",
            "probs",
            "--columns",
            "11:21",
            "--label-column",
            "0",
            "--arch",
            arch,
            "--framework",
            "supervised",
            "--pretrain-data",
            "CIFAR-10",
        )
    ok(
        "import",
        zoo,
        data / "densenet-bc-L190-k40.csv",
        "--name",
        "human",
        "--kind",
        "counts",
        "--columns",
        "1:11",
        "--framework",
        "human",
        "--pretrain-data",
        "cifar10",
    )
    ok(
        "import",
        zoo,
        data / "human_model_truth_cifar10h.csv",
        "--name",
        "human_model_truth",
        "--kind",
        "probs",
        "--columns",
        "10:20",
        "--label-column",
        "20",
        "--label-offset",
        "1",
        "--framework",
        "supervised",
        "--pretrain-data",
        "cifar10",
        "--arch",
        "unknown",
    )
    ok(
        "import",
        zoo,
        data / "lenet-5-cifar-10.npz",
        "--name",
        "lenet",
        "--kind",
        "probs",
        "--key",
        "predictions",
        "--arch",
        "lenet-5",
        "--framework",
        "supervised",
        "--pretrain-data",
        "cifar10",
    )
    ok(
        "import",
        zoo,
        data / "wideresnet-16-4-cifar-10.npz",
        "--name",
        "wrn",
        "--kind",
        "probs",
        "--arch",
        "wideresnet-16-4",
        "--framework",
        "supervised",
        "--pretrain-data",
        "cifar10",
    )
    ok(
        "import",
        zoo,
        data / "vgg16-keras-cifar-10.npz",
        "--name",
        "vgg",
        "--kind",
        "probs",
        "--key",
        "probs",
        "--arch",
        "vgg16",
        "--framework",
        "supervised",
        "--pretrain-data",
        "cifar10",
    )
    ok(
        "import",
        zoo,
        data / "cifar10_test_set_pyx.npy",
        "--name",
        "pyx",
        "--kind",
        "probs",
        "--framework",
        "supervised",
        "--pretrain-data",
        "cifar10",
        "--category",
        "HParam",
    )


@pytest.fixture(scope="module")
def cifar_zoo(tmp_path_factory) -> Path:
    data = shared_path("cifar10-probs")
    zoo = tmp_path_factory.mktemp("cifar") / "cifar10.zoo"
    _import_cifar10(zoo, data)
    return zoo


def test_all_nine_cifar10_models_match_published_accuracy(cifar_zoo):
    report = json.loads(ok("info", cifar_zoo, "--json", "--base", "densenet").stdout)
    assert report["num_examples"] == 10000 and report["num_classes"] == 10
    got = {row["model"]: row["accuracy_all"] for row in report["models"]}
    assert set(got) == set(README_ACCURACY)
    for name, expected in README_ACCURACY.items():
        assert f"{got[name]:.4f}" == f"{expected:.4f}", name
    cats = {row["model"]: row["category"] for row in report["models"]}
    assert cats["densenet"] == "Same" and cats["human"] == "Framework"
    assert cats["lenet"] == "Arch" and cats["pyx"] == "HParam"  # explicit override
    # the table shows the same numbers
    table = ok("info", cifar_zoo, "--base", "densenet").stdout
    for name, expected in README_ACCURACY.items():
        assert name in table and f"{expected:.4f}" in table


def test_cifar10_labels_and_scores_are_the_sources(cifar_zoo):
    data = shared_path("cifar10-probs")
    z = Zoo.open(cifar_zoo)
    npz = np.load(data / "lenet-5-cifar-10.npz")
    np.testing.assert_array_equal(z.labels, npz["ground_truth"])
    assert z.labels[:5].tolist() == [3, 8, 8, 0, 6]
    np.testing.assert_allclose(
        np.exp(z.scores("lenet")), np.maximum(npz["predictions"], 1e-12), rtol=2e-6
    )
    human = np.loadtxt(data / "human_model_truth_cifar10h.csv", delimiter=",")
    np.testing.assert_array_equal(human[:, 20] - 1, z.labels)  # same order once 0-based
    votes = np.loadtxt(data / "densenet-bc-L190-k40.csv", delimiter=",")[:, 1:11]
    frac = votes / votes.sum(1, keepdims=True)
    np.testing.assert_allclose(np.exp(z.scores("human")), np.maximum(frac, 1e-12), rtol=2e-6)
    assert z.card("human").framework == "human"
    assert z.class_names[3] == "cat" and z.dataset_name == "CIFAR-10"


def test_verify_remove(cifar_zoo, tmp_path):
    zoo = tmp_path / "copy.zoo"
    shutil.copytree(cifar_zoo, zoo)
    assert "ok:" in ok("verify", zoo).stderr
    ok("remove", zoo, "lenet", "vgg")
    assert Zoo.open(zoo).models == [
        "densenet",
        "preresnet",
        "resnet110",
        "human",
        "human_model_truth",
        "wrn",
        "pyx",
    ]
    fails("remove", zoo, "lenet", match="no model named 'lenet'")
    ok("verify", zoo)


# ---------------------------------------------------------------------------------------------
# bad input: one line, non-zero exit, the zoo exactly as it was


@pytest.fixture
def small(tmp_path):
    """A 20-example, 3-class zoo with one model, plus a function to snapshot it."""
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, 20)
    np.save(tmp_path / "labels.npy", labels)
    good = rng.normal(size=(20, 3)).astype(np.float32)
    np.save(tmp_path / "good.npy", good)
    zoo = tmp_path / "z"
    ok(
        "import",
        zoo,
        tmp_path / "good.npy",
        "--name",
        "good",
        "--kind",
        "logits",
        "--create",
        "--labels",
        tmp_path / "labels.npy",
    )

    def snapshot():
        return {
            p.relative_to(zoo).as_posix(): p.read_bytes()
            for p in sorted(zoo.rglob("*"))
            if p.is_file() and p.name != ".zoo.lock"
        }

    return zoo, tmp_path, good, labels, snapshot


@pytest.mark.parametrize(
    "case, match",
    [
        ("nan", "NaN or inf"),
        ("inf", "NaN or inf"),
        ("rows", "19 rows, the zoo has 20"),
        ("classes", "4 columns, the zoo has 3 classes"),
        ("duplicate", "already in the zoo"),
        ("empty", "file is empty"),
        ("npz_key", "available: probs (20, 3), y (20,)"),
        ("ragged", "ragged rows"),
        ("bad_safetensors", "unreadable .safetensors"),
        ("truncated_safetensors", "unreadable .safetensors"),
        ("probs_not_summing", "sum to 1"),
        ("labels_disagree", "disagree with the zoo's"),
        ("text_in_csv", "is not a number"),
        ("decisions_out_of_range", "outside [0, 3)"),
        ("missing_file", "no such file"),
        ("unknown_kind", "unknown kind"),
        ("bad_columns", "expected A:B"),
        ("pickle_npy", "pickle"),
    ],
)
def test_bad_import_input(small, case, match):
    zoo, tmp, good, labels, snapshot = small
    before = snapshot()
    args = ["--name", "new", "--kind", "logits"]
    f = tmp / f"{case}.npy"
    if case == "nan":
        bad = good.copy()
        bad[3, 1] = np.nan
        np.save(f, bad)
    elif case == "inf":
        bad = good.copy()
        bad[0, 0] = -np.inf
        np.save(f, bad)
    elif case == "rows":
        np.save(f, good[:-1])
    elif case == "classes":
        np.save(f, np.hstack([good, good[:, :1]]))
    elif case == "duplicate":
        np.save(f, good)
        args = ["--name", "good", "--kind", "logits"]
    elif case == "empty":
        f.write_bytes(b"")
    elif case == "npz_key":
        f = tmp / "a.npz"
        np.savez(f, probs=good, y=labels)
        args += ["--key", "logits"]
    elif case == "ragged":
        f = tmp / "r.csv"
        f.write_text("1,2,3\n4,5,6\n7,8\n" + "1,2,3\n" * 17)
    elif case == "bad_safetensors":
        f = tmp / "x.safetensors"
        f.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}")
    elif case == "truncated_safetensors":
        from safetensors.numpy import save_file

        f = tmp / "t.safetensors"
        save_file({"logits": good}, str(f))
        f.write_bytes(f.read_bytes()[:-40])
    elif case == "probs_not_summing":
        np.save(f, np.full((20, 3), 0.2))
        args = ["--name", "new", "--kind", "probs"]
    elif case == "labels_disagree":
        f = tmp / "l.csv"
        wrong = (labels + 1) % 3
        np.savetxt(f, np.column_stack([wrong, good]), delimiter=",")
        args += ["--label-column", "0"]
    elif case == "text_in_csv":
        f = tmp / "t.csv"
        rows = [",".join(map(str, r)) for r in good]
        rows[4] = "0.1,abc,0.3"
        f.write_text("\n".join(rows) + "\n")
    elif case == "decisions_out_of_range":
        np.save(f, np.full(20, 3))
        args = ["--name", "new", "--kind", "decisions"]
    elif case == "missing_file":
        f = tmp / "nope.npy"
    elif case == "unknown_kind":
        np.save(f, good)
        args = ["--name", "new", "--kind", "softmax"]
    elif case == "bad_columns":
        np.save(f, good)
        args += ["--columns", "1-3"]
    elif case == "pickle_npy":
        np.save(f, np.array([{"a": 1}] * 20, dtype=object), allow_pickle=True)
    line = fails("import", zoo, f, *args, match=match)
    assert str(f.name) in line or case in ("unknown_kind", "bad_columns", "duplicate")
    assert snapshot() == before


def test_duplicate_names_the_model_and_replace_works(small):
    zoo, tmp, good, labels, snapshot = small
    np.save(tmp / "g2.npy", good * 2)
    line = fails("import", zoo, tmp / "g2.npy", "--name", "good", match="already in the zoo")
    assert "'good'" in line and "g2.npy" in line
    ok("import", zoo, tmp / "g2.npy", "--name", "good", "--replace")
    np.testing.assert_array_equal(Zoo.open(zoo).scores("good"), good * 2)


def test_labels_out_of_range_at_create(tmp_path):
    data = shared_path("cifar10-probs")
    # the Kerrigan file's labels are 1-based (1..10): without --label-offset, 10 is out of range
    fails(
        "import",
        tmp_path / "z",
        data / "human_model_truth_cifar10h.csv",
        "--name",
        "h",
        "--kind",
        "probs",
        "--columns",
        "10:20",
        "--create",
        "--label-column",
        "20",
        "--num-classes",
        "10",
        match="outside [0, 10)",
    )
    assert not (tmp_path / "z" / "zoo.json").exists()
    ok(
        "import",
        tmp_path / "z",
        data / "human_model_truth_cifar10h.csv",
        "--name",
        "h",
        "--kind",
        "probs",
        "--columns",
        "10:20",
        "--create",
        "--label-column",
        "20",
        "--label-offset",
        "1",
        "--num-classes",
        "10",
    )
    assert f"{Zoo.open(tmp_path / 'z').accuracy('h'):.4f}" == "0.8892"


def test_failed_create_leaves_nothing(tmp_path):
    np.save(tmp_path / "y.npy", np.array([0, 1, 2, 1]))
    np.save(tmp_path / "bad.npy", np.array([[0.1, np.nan, 0.2]] * 4))
    fails(
        "import",
        tmp_path / "new.zoo",
        tmp_path / "bad.npy",
        "--name",
        "m",
        "--create",
        "--labels",
        tmp_path / "y.npy",
        match="NaN",
    )
    assert not (tmp_path / "new.zoo").exists()
    (tmp_path / "empty").mkdir()
    fails(
        "import",
        tmp_path / "empty",
        tmp_path / "bad.npy",
        "--name",
        "m",
        "--create",
        "--labels",
        tmp_path / "y.npy",
        match="NaN",
    )
    assert list((tmp_path / "empty").iterdir()) == []


def test_not_a_zoo(tmp_path):
    (tmp_path / "plain").mkdir()
    for cmd in (["info"], ["verify"], ["remove"]):
        args = [*cmd, tmp_path / "plain"] + (["m"] if cmd == ["remove"] else [])
        fails(*args, match="not a zoo")
    np.save(tmp_path / "a.npy", np.zeros((2, 2)))
    fails("import", tmp_path / "plain", tmp_path / "a.npy", "--name", "m", match="not a zoo")


def test_corrupted_model_file_is_named(small):
    zoo, tmp, good, labels, snapshot = small
    entry = Zoo.open(zoo).model_info("good")
    file = zoo / entry["file"]
    data = bytearray(file.read_bytes())
    data[-5] ^= 0x55
    file.write_bytes(bytes(data))
    line = fails("verify", zoo, match=file.name)
    assert "'good'" in line and "sha256" in line
    fails("info", zoo, match="'good'")
    file.write_bytes(bytes(data[:100]))  # truncated
    fails("verify", zoo, match="truncated")


def test_model_name_cannot_escape(small):
    zoo, tmp, good, labels, snapshot = small
    np.save(tmp / "e.npy", good)
    ok("import", zoo, tmp / "e.npy", "--name", "../../escaped", "--kind", "logits")
    z = Zoo.open(zoo)
    file = (zoo / z.model_info("../../escaped")["file"]).resolve()
    assert file.parent == (zoo / "models").resolve()
    assert not list(tmp.parent.glob("escaped*")) and not list(tmp.glob("escaped*"))


def test_probs_declared_logits_warns_but_imports(small):
    zoo, tmp, good, labels, snapshot = small
    p = np.exp(good) / np.exp(good).sum(1, keepdims=True)
    np.save(tmp / "p.npy", p)
    result = ok("import", zoo, tmp / "p.npy", "--name", "p", "--kind", "logits")
    assert "warning:" in result.stderr and "look like probabilities" in result.stderr


def test_help_has_examples():
    for cmd in ("import", "info", "remove", "verify"):
        out = ok(cmd, "--help").stdout
        assert "Example:" in out, cmd


# ---------------------------------------------------------------------------------------------
# --id-column on array files: shuffled rows joined to the zoo's ids


@pytest.fixture
def with_ids(tmp_path):
    """A 20-example, 3-class zoo created from an npz holding logits, labels and string ids
    ("00000" ... "00019", zero-padded), the rows of the npz in shuffled order."""
    rng = np.random.default_rng(5)
    n = 20
    labels = rng.integers(0, 3, n)
    logits = rng.normal(size=(n, 3)).astype(np.float32)
    ids = np.asarray([f"{i:05d}" for i in range(n)])
    perm = rng.permutation(n)
    base = tmp_path / "base.npz"
    np.savez(base, logits=logits[perm], labels=labels[perm], ids=ids[perm])
    zoo = tmp_path / "z"
    ok(
        "import",
        zoo,
        base,
        "--name",
        "base",
        "--kind",
        "logits",
        "--create",
        "--label-column",
        "labels",
        "--id-column",
        "ids",
    )
    return zoo, tmp_path, rng, perm, labels, logits, ids


def test_create_from_npz_with_ids_keeps_file_order(with_ids):
    zoo, tmp, rng, perm, labels, logits, ids = with_ids
    z = Zoo.open(zoo)
    assert z.example_ids.tolist() == ids[perm].tolist()
    np.testing.assert_array_equal(z.labels, labels[perm])
    assert np.array_equal(z.scores("base"), logits[perm])


def test_import_shuffled_safetensors_and_pt_with_integer_ids(with_ids):
    """Integer ids 17 match the zoo's "00017"; rows land in the zoo's order exactly."""
    import torch
    from safetensors.numpy import save_file

    zoo, tmp, rng, perm, labels, logits, ids = with_ids
    z = Zoo.open(zoo)
    zoo_order = z.example_ids.astype(int)  # the integer behind each zoo row
    other = rng.normal(size=(20, 3)).astype(np.float32)  # row i belongs to example i
    shuffle = rng.permutation(20)
    save_file(
        {"logits": other[shuffle], "ids": shuffle.astype(np.int64), "y": labels[shuffle]},
        str(tmp / "m.safetensors"),
    )
    ok(
        "import",
        zoo,
        tmp / "m.safetensors",
        "--name",
        "st",
        "--id-column",
        "ids",
        "--label-column",
        "y",
        "--key",
        "logits",
    )
    torch.save(
        {"logits": torch.from_numpy(other[shuffle]), "ids": torch.from_numpy(shuffle)}, tmp / "m.pt"
    )
    ok("import", zoo, tmp / "m.pt", "--name", "pt", "--id-column", "ids", "--kind", "logits")
    z = Zoo.open(zoo)
    assert np.array_equal(z.scores("st"), other[zoo_order])
    assert np.array_equal(z.scores("pt"), other[zoo_order])


def _zoo_json(zoo: Path) -> bytes:
    return (zoo / "zoo.json").read_bytes()


@pytest.mark.parametrize(
    "case, match",
    [
        (
            "missing",
            "1 of the zoo's 20 example ids are missing from the file (zoo ids: '00003'; "
            "unmatched ids in the file: none)",
        ),
        ("extra", "1 ids in the file are not in the zoo (first: 'zzz'; zoo ids look like"),
        ("duplicate", "example id '00004' appears 2 times"),
        ("wrong_length", "the id array 'ids' has 19 entries, the outputs have 20 rows"),
        ("unknown_key", "no array named 'example_ids'; available: logits (20, 3), ids (20,)"),
        ("npy", "a .npy file holds a single array, so it cannot carry --id-column"),
        ("float_ids", "must hold strings or integers, got float64"),
        ("labels_after_join", "disagree with the zoo's"),
    ],
)
def test_bad_array_ids(with_ids, case, match):
    zoo, tmp, rng, perm, labels, logits, ids = with_ids
    before, snap = _zoo_json(zoo), sorted(p.name for p in (zoo / "models").iterdir())
    z = Zoo.open(zoo)
    zids = z.example_ids
    f = tmp / f"{case}.npz"
    key = "ids"
    arrays = {"logits": logits, "ids": ids}
    if case == "missing":
        keep = zids != "00003"
        arrays = {"logits": logits[keep], "ids": zids[keep]}
    elif case == "extra":
        arrays = {"logits": np.vstack([logits, logits[:1]]), "ids": np.append(ids, "zzz")}
    elif case == "duplicate":
        arrays["ids"] = np.where(ids == "00005", "00004", ids)
    elif case == "wrong_length":
        arrays["ids"] = ids[:-1]
    elif case == "unknown_key":
        key = "example_ids"
    elif case == "npy":
        f = tmp / "m.npy"
        np.save(f, logits)
    elif case == "float_ids":
        arrays["ids"] = np.arange(20.0)
    elif case == "labels_after_join":
        arrays = {"logits": logits, "ids": zids, "y": (z.labels + 1) % 3}
    if case != "npy":
        np.savez(f, **arrays)
    extra = ["--label-column", "y"] if case == "labels_after_join" else []
    line = fails(
        "import",
        zoo,
        f,
        "--name",
        "new",
        "--kind",
        "logits",
        "--id-column",
        key,
        *extra,
        match=match,
    )
    assert f.name in line
    assert _zoo_json(zoo) == before
    assert sorted(p.name for p in (zoo / "models").iterdir()) == snap


def test_array_ids_into_a_zoo_without_ids(small):
    zoo, tmp, good, labels, snapshot = small
    before = _zoo_json(zoo)
    np.savez(tmp / "m.npz", logits=good, ids=np.arange(20))
    fails(
        "import",
        zoo,
        tmp / "m.npz",
        "--name",
        "new",
        "--id-column",
        "ids",
        match="m.npz: --id-column given but the zoo has no example ids",
    )
    assert _zoo_json(zoo) == before


def test_failed_create_with_array_ids_leaves_nothing(tmp_path):
    np.savez(
        tmp_path / "m.npz",
        logits=np.zeros((4, 3)),
        labels=np.arange(4) % 3,
        ids=np.array([1, 2, 2, 3]),
    )
    fails(
        "import",
        tmp_path / "new",
        tmp_path / "m.npz",
        "--name",
        "m",
        "--create",
        "--label-column",
        "labels",
        "--id-column",
        "ids",
        match="occurs 2 times",
    )
    assert not (tmp_path / "new").exists()


def test_create_with_labels_file_and_npz_ids_then_help_example(tmp_path, monkeypatch):
    """--create --labels FILE --id-column KEY reads the ids from the npz (integers, stored as
    "0".."9"); then the --help example `zoolens import cifar.zoo vit.npz --name vit --kind
    logits --id-column ids` joins a differently shuffled file."""
    rng = np.random.default_rng(8)
    monkeypatch.chdir(tmp_path)
    order = rng.permutation(10)  # zoo row r is example order[r]
    labels = rng.integers(0, 3, 10)  # labels[i] of example i
    logits = rng.normal(size=(10, 3)).astype(np.float32)
    np.save("labels.npy", labels[order])
    np.savez("first.npz", logits=logits[order], ids=order)
    ok(
        "import",
        "cifar.zoo",
        "first.npz",
        "--name",
        "first",
        "--kind",
        "logits",
        "--create",
        "--labels",
        "labels.npy",
        "--id-column",
        "ids",
    )
    z = Zoo.open(Path("cifar.zoo"))
    assert z.example_ids.tolist() == [str(i) for i in order]
    shuffle = rng.permutation(10)
    np.savez("vit.npz", logits=2 * logits[shuffle], ids=shuffle)
    example = "zoolens import cifar.zoo vit.npz --name vit --kind logits --id-column ids"
    assert example in " ".join(ok("import", "--help").stdout.split())
    ok(*example.split()[1:])
    assert np.array_equal(Zoo.open(Path("cifar.zoo")).scores("vit"), 2 * logits[order])
