"""The zoo store: round trips, conversions, validation, integrity (docs/design.md sec. 2)."""

from __future__ import annotations

import json
import os
import warnings

import numpy as np
import pytest

from zoolens import ModelCard, Zoo
from zoolens.errors import ZooCorruptedError, ZoolensError
from zoolens.zoo.store import PROB_FLOOR, ZooWarning

N, C = 200, 5


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def labels(rng):
    return rng.integers(0, C, N)


@pytest.fixture
def zoo(tmp_path, labels):
    return Zoo.create(tmp_path / "zoo", labels, class_names=list("abcde"), dataset_name="toy")


def _softmax(x):
    e = np.exp(x - x.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def test_create_open_dataset_fields(zoo, labels, tmp_path):
    z = Zoo.open(tmp_path / "zoo")
    assert z.num_examples == N and z.num_classes == C and z.class_names == list("abcde")
    assert z.dataset_name == "toy" and not z.is_multilabel and z.models == []
    np.testing.assert_array_equal(z.labels, labels)
    assert z.labels.dtype == np.int64
    cal, ev = z.calibration_indices, z.evaluation_indices
    assert len(cal) == round(0.2 * N) and len(np.intersect1d(cal, ev)) == 0
    np.testing.assert_array_equal(np.union1d(cal, ev), np.arange(N))
    assert (np.diff(cal) > 0).all() and (np.diff(ev) > 0).all()
    # the split is a seeded function of (N, fraction, seed)
    z2 = Zoo.create(tmp_path / "other", labels)
    np.testing.assert_array_equal(z2.calibration_indices, cal)
    z3 = Zoo.create(tmp_path / "third", labels, seed=1)
    assert not np.array_equal(z3.calibration_indices, cal)
    assert z.example_ids is None and z.attributes is None and z.class_groups == {}


def test_float32_round_trip_exact_and_order(zoo, rng):
    logits = rng.normal(size=(N, C)).astype(np.float32) * 10
    emb = rng.normal(size=(N, 7)).astype(np.float32)
    zoo.add("m1", logits=logits, embeddings=emb, card={"arch": "resnet50"})
    zoo.add("m0", decisions=np.argmax(logits, 1))
    z = Zoo.open(zoo.path)
    assert z.models == ["m1", "m0"]
    assert z.kind("m1") == "logits" and z.kind("m0") == "decisions"
    np.testing.assert_array_equal(z.scores("m1"), logits)
    np.testing.assert_array_equal(z.embeddings("m1"), emb)
    for arr in (z.scores("m1"), z.scores("m1", rows=slice(0, 5)), z.embeddings("m1")):
        assert type(arr) is np.ndarray and arr.flags.writeable  # a copy, not the file
    s = z.scores("m1", rows=slice(0, 5))
    s -= 1.0
    np.testing.assert_array_equal(z.scores("m1", rows=slice(0, 5)), logits[:5])
    np.testing.assert_array_equal(z.scores("m1", rows=slice(10, 20)), logits[10:20])
    idx = np.array([5, 3, 199, 0])
    np.testing.assert_array_equal(z.scores("m1", rows=idx), logits[idx])
    mask = np.zeros(N, bool)
    mask[[1, 7]] = True
    np.testing.assert_array_equal(z.scores("m1", rows=mask), logits[[1, 7]])
    np.testing.assert_array_equal(z.predictions("m1"), np.argmax(logits, 1))
    np.testing.assert_array_equal(z.predictions("m0"), np.argmax(logits, 1))
    assert z.has_embeddings("m1") and not z.has_embeddings("m0")
    assert z.card("m1") == ModelCard(name="m1", arch="resnet50")
    with pytest.raises(ZoolensError, match="decision-only"):
        z.scores("m0")


def test_float16_round_trip_within_rounding(zoo, rng):
    logits = rng.normal(size=(N, C)).astype(np.float32) * 30
    zoo.add("h", logits=logits, dtype="float16")
    got = Zoo.open(zoo.path).scores("h")
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, logits.astype(np.float16).astype(np.float32))
    # float16 has an 11-bit significand: relative error <= 2**-11
    assert np.all(np.abs(got - logits) <= np.abs(logits) * 2.0**-11 + 1e-7)
    assert zoo.model_info("h")["dtype"] == "float16"


def test_probs_and_counts_stored_as_log_probs(zoo, rng):
    p = _softmax(rng.normal(size=(N, C)) * 3)
    p[0] = [1, 0, 0, 0, 0]  # a zero probability is floored at 1e-12
    zoo.add("p", probs=p)
    got = zoo.scores("p")
    assert zoo.kind("p") == "log_probs"
    np.testing.assert_allclose(got, np.log(np.maximum(p, PROB_FLOOR)).astype(np.float32), rtol=1e-6)
    assert got[0, 1] == pytest.approx(np.log(1e-12), rel=1e-6)
    counts = rng.integers(0, 5, size=(N, C)).astype(float)
    counts[:, 0] += 1  # no empty rows
    zoo.add("votes", counts=counts, card={"framework": "human"})
    np.testing.assert_allclose(
        np.exp(zoo.scores("votes")),
        np.maximum(counts / counts.sum(1, keepdims=True), PROB_FLOOR),
        rtol=1e-5,
    )
    # log_probs given directly; -inf is floored too
    with np.errstate(divide="ignore"):
        lp = np.log(p)
    zoo.add("lp", log_probs=lp)
    np.testing.assert_allclose(zoo.scores("lp"), zoo.scores("p"), rtol=1e-6)


def test_stored_entries_equal_the_stored_rows(zoo, rng):
    """Zoo.stored_entries (single entries through the map) against stored_scores' rows."""
    zoo.add("f16", logits=rng.normal(size=(N, C)).astype(np.float16), dtype="float16")
    zoo.add("lp", probs=_softmax(rng.normal(size=(N, C))))
    zoo.add("t", topk_indices=np.tile([[3, 1]], (N, 1)), topk_values=np.tile([[0.6, 0.1]], (N, 1)))
    rows = rng.integers(-N, N, 50)  # negative rows count from the end, as in stored_scores
    classes = rng.integers(0, C, 50)
    for name in ("f16", "lp", "t"):
        got = zoo.stored_entries(name, rows, classes)
        want = zoo.stored_scores(name, rows=rows)[np.arange(50), classes]
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
    with pytest.raises(ZoolensError, match="class index out of range"):
        zoo.stored_entries("f16", rows[:2], np.array([0, C]))
    with pytest.raises(ZoolensError, match="row index out of range"):
        zoo.stored_entries("f16", np.array([N]), np.array([0]))


def test_topk_full_distribution(zoo):
    idx = np.tile([[3, 1]], (N, 1))
    val = np.tile([[0.6, 0.1]], (N, 1))
    zoo.add("t", topk_indices=idx, topk_values=val)
    s = zoo.scores("t")
    expect = np.log(np.array([0.1, 0.1, 0.1, 0.6, 0.1]))  # rest 0.3 over 3 classes
    np.testing.assert_allclose(s, np.tile(expect, (N, 1)), rtol=1e-6)
    np.testing.assert_array_equal(zoo.predictions("t"), np.full(N, 3))
    # k = 1 and a row whose listed mass is 1: others clamp at 1e-12
    v1 = np.full(N, 0.5)
    v1[0] = 1.0
    zoo.add("t1", topk_indices=np.full(N, 2), topk_values=v1)
    s1 = zoo.scores("t1")
    np.testing.assert_allclose(np.exp(s1[1]), [0.125, 0.125, 0.5, 0.125, 0.125], rtol=1e-6)
    assert s1[0, 0] == pytest.approx(np.log(1e-12), rel=1e-6) and s1[0, 2] == 0.0
    assert zoo.kind("t1") == "topk" and zoo.model_info("t1")["topk"] == 1


def test_replace_duplicate_remove(zoo, rng):
    a = rng.normal(size=(N, C)).astype(np.float32)
    b = rng.normal(size=(N, C)).astype(np.float32)
    zoo.add("m", logits=a)
    zoo.add("x", logits=a)
    with pytest.raises(ZoolensError, match="already in the zoo"):
        zoo.add("m", logits=b)
    old_file = zoo.path / zoo.model_info("m")["file"]
    zoo.add("m", logits=b, replace=True)
    assert zoo.models == ["m", "x"]  # position kept
    np.testing.assert_array_equal(Zoo.open(zoo.path).scores("m"), b)
    assert not old_file.exists()
    zoo.remove("m")
    assert Zoo.open(zoo.path).models == ["x"]
    assert sorted(p.name for p in (zoo.path / "models").iterdir()) == [
        os.path.basename(zoo.model_info("x")["file"])
    ]
    with pytest.raises(ZoolensError, match="no model named"):
        zoo.remove("m")


def test_names_never_reach_the_file_system(zoo, rng):
    a = rng.normal(size=(N, C)).astype(np.float32)
    for name in ["../../etc/passwd", "/abs/path", "a b\tc", "ResNet-50 (seed 3)", "..", "模型"]:
        zoo.add(name, logits=a)
    root = zoo.path.resolve()
    for name in zoo.models:
        file = (zoo.path / zoo.model_info(name)["file"]).resolve()
        assert file.parent == root / "models"
        assert "/" not in file.name and not file.name.startswith(".")
    assert sorted(Zoo.open(zoo.path).models) == sorted(
        ["../../etc/passwd", "/abs/path", "a b\tc", "ResNet-50 (seed 3)", "..", "模型"]
    )
    assert not (zoo.path.parent.parent / "etc").exists()


def test_logits_that_look_like_probs_warn(zoo, rng):
    p = _softmax(rng.normal(size=(N, C)))
    with pytest.warns(ZooWarning, match="look like probabilities"):
        zoo.add("p", logits=p)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        zoo.add("l", logits=rng.normal(size=(N, C)))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"logits": "nan"}, "NaN or inf"),
        ({"logits": "inf"}, "NaN or inf"),
        ({"logits": "rows"}, "rows, the zoo has"),
        ({"logits": "classes"}, "classes"),
        ({"logits": "empty"}, "empty"),
        ({"probs": "unnormalised"}, "sum to 1"),
        ({"probs": "negative"}, r"\[0, 1\]"),
        ({"decisions": "range"}, "outside"),
        ({"decisions": "float"}, "integer"),
        ({"counts": "zero_row"}, "all zero"),
        ({"log_probs": "positive"}, "not log-probabilities"),
        ({"topk": "dup"}, "twice"),
        ({}, "exactly one"),
    ],
)
def test_bad_outputs_rejected_and_zoo_unchanged(zoo, rng, kwargs, message):
    good = rng.normal(size=(N, C)).astype(np.float32)
    zoo.add("ok", logits=good)
    before = (zoo.path / "zoo.json").read_bytes()
    files_before = sorted(os.listdir(zoo.path / "models"))
    arrays = {
        "nan": np.where(np.arange(N * C).reshape(N, C) == 7, np.nan, good),
        "inf": np.where(np.arange(N * C).reshape(N, C) == 7, np.inf, good),
        "rows": good[:-1],
        "classes": good[:, :-1],
        "empty": np.zeros((0, C)),
        "unnormalised": np.full((N, C), 0.5),
        "negative": _softmax(good) - 0.1,
        "range": np.full(N, C),
        "float": np.full(N, 1.5),
        "zero_row": np.vstack([np.zeros((1, C)), np.ones((N - 1, C))]),
        "positive": good + 5,
    }
    call = {k: arrays[v] for k, v in kwargs.items() if k != "topk"}
    if "topk" in kwargs:
        call = {"topk_indices": np.zeros((N, 2), int), "topk_values": np.full((N, 2), 0.2)}
    with pytest.raises(ZoolensError, match=message) as info:
        zoo.add("bad", **call)
    assert "'bad'" in str(info.value) and "\n" not in str(info.value)
    assert (zoo.path / "zoo.json").read_bytes() == before
    assert sorted(os.listdir(zoo.path / "models")) == files_before


def test_create_rejects_bad_labels(tmp_path):
    with pytest.raises(ZoolensError, match="outside"):
        Zoo.create(tmp_path / "a", np.array([0, 1, 5]), class_names=["x", "y", "z"])
    with pytest.raises(ZoolensError, match="outside"):
        Zoo.create(tmp_path / "b", np.array([0, -1, 2]))
    with pytest.raises(ZoolensError, match="integer"):
        Zoo.create(tmp_path / "c", np.array([0.5, 1.0]))
    with pytest.raises(ZoolensError, match="empty"):
        Zoo.create(tmp_path / "d", np.array([], dtype=int))
    Zoo.create(tmp_path / "e", np.array([0, 1]))
    with pytest.raises(ZoolensError, match="already exists"):
        Zoo.create(tmp_path / "e", np.array([0, 1]))
    assert Zoo.create(tmp_path / "e", np.array([0, 1]), exist_ok=True).num_examples == 2


def test_open_rejects_non_zoo(tmp_path):
    with pytest.raises(ZoolensError, match="not a zoo"):
        Zoo.open(tmp_path)
    with pytest.raises(ZoolensError, match="not a zoo"):
        Zoo.open(tmp_path / "missing")
    (tmp_path / "zoo.json").write_text("{not json")
    with pytest.raises(ZooCorruptedError, match="corrupted manifest"):
        Zoo.open(tmp_path)


def test_corrupted_and_truncated_files(zoo, rng):
    a = rng.normal(size=(N, C)).astype(np.float32)
    zoo.add("victim", logits=a)
    zoo.add("fine", logits=a + 1)
    file = zoo.path / zoo.model_info("victim")["file"]
    data = bytearray(file.read_bytes())
    data[-3] ^= 0xFF  # flip a bit in the data, same size
    file.write_bytes(bytes(data))  # new mtime -> the read re-hashes
    z = Zoo.open(zoo.path)
    with pytest.raises(ZooCorruptedError, match=r"victim.*sha256|sha256.*victim"):
        z.scores("victim")
    np.testing.assert_array_equal(z.scores("fine"), a + 1)
    with pytest.raises(ZooCorruptedError, match=file.name):
        z.verify()
    file.write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(ZooCorruptedError, match="truncated"):
        Zoo.open(zoo.path).scores("victim")


def test_verify_catches_same_size_same_mtime_corruption(zoo, rng):
    zoo.add("m", logits=rng.normal(size=(N, C)))
    file = zoo.path / zoo.model_info("m")["file"]
    st = file.stat()
    data = bytearray(file.read_bytes())
    data[-1] ^= 1
    file.write_bytes(bytes(data))
    os.utime(file, ns=(st.st_atime_ns, st.st_mtime_ns))
    np.testing.assert_array_equal(Zoo.open(zoo.path).scores("m").shape, (N, C))  # not hashed
    with pytest.raises(ZooCorruptedError, match="'m'"):
        Zoo.open(zoo.path).verify()


def test_moved_file_with_new_mtime_but_same_content_is_fine(zoo, rng):
    a = rng.normal(size=(N, C)).astype(np.float32)
    zoo.add("m", logits=a)
    file = zoo.path / zoo.model_info("m")["file"]
    os.utime(file, ns=(1, 1))
    np.testing.assert_array_equal(Zoo.open(zoo.path).scores("m"), a)


def test_crash_while_writing_manifest_leaves_zoo_unchanged(zoo, rng, monkeypatch):
    a = rng.normal(size=(N, C)).astype(np.float32)
    zoo.add("old", logits=a)
    before = (zoo.path / "zoo.json").read_bytes()
    files_before = sorted(os.listdir(zoo.path / "models"))
    real_replace = os.replace

    def crash(src, dst, *args, **kwargs):
        if str(dst).endswith("zoo.json"):
            raise OSError("simulated power cut")
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="power cut"):
        zoo.add("new", logits=a + 1)
    with pytest.raises(OSError, match="power cut"):
        zoo.add("old", logits=a + 2, replace=True)
    monkeypatch.setattr(os, "replace", real_replace)
    assert (zoo.path / "zoo.json").read_bytes() == before
    z = Zoo.open(zoo.path)
    assert z.models == ["old"]
    np.testing.assert_array_equal(z.scores("old"), a)
    z.verify()
    assert sorted(os.listdir(zoo.path / "models")) == files_before  # no temp files left


def test_manifest_layout(zoo, rng):
    zoo.add("m", logits=rng.normal(size=(N, C)), embeddings=rng.normal(size=(N, 3)))
    m = json.loads((zoo.path / "zoo.json").read_text())
    assert m["format_version"] == 1
    assert m["dataset"]["num_classes"] == C and m["dataset"]["class_names"] == list("abcde")
    assert m["split"]["seed"] == 0 and len(m["split"]["calibration_indices"]) == 40
    e = m["models"]["m"]
    assert set(e) >= {"card", "file", "sha256", "size", "mtime_ns", "kinds", "kind"}
    assert e["kinds"] == ["embeddings", "logits"] and e["file"].startswith("models/m-")
    assert e["file"].endswith(".safetensors") and len(e["sha256"]) == 64
    assert (zoo.path / "labels.npy").exists()
    from safetensors.numpy import load_file

    stored = load_file(zoo.path / e["file"])
    assert set(stored) == {"logits", "embeddings"} and stored["logits"].dtype == np.float32


def test_ids_attributes_groups_multilabel(tmp_path, rng):
    import pandas as pd

    y = rng.integers(0, 2, size=(N, C))
    ids = [f"img_{i:04d}.jpg" for i in range(N)]
    attrs = pd.DataFrame({"domain": rng.choice(["photo", "sketch"], N), "blur": rng.random(N)})
    z = Zoo.create(
        tmp_path / "ml", y, example_ids=ids, attributes=attrs, class_groups={"first": [0, 1]}
    )
    z = Zoo.open(tmp_path / "ml")
    assert z.is_multilabel and z.labels.dtype == np.uint8 and z.num_classes == C
    assert list(z.example_ids) == ids
    pd.testing.assert_frame_equal(z.attributes, attrs)
    assert z.class_groups == {"first": [0, 1]}
    z.set_class_groups({"g": [4]})
    assert Zoo.open(z.path).class_groups == {"g": [4]}
    logits = rng.normal(size=(N, C))
    z.add("m", logits=logits)
    pred = np.argmax(logits, 1)
    assert z.accuracy("m") == pytest.approx(np.mean(y[np.arange(N), pred] == 1))
    with pytest.raises(ZoolensError, match="unique"):
        Zoo.create(tmp_path / "dup", np.zeros(3, int), example_ids=["a", "b", "a"])
    z.verify()


def test_torch_tensor_input(zoo, rng):
    torch = pytest.importorskip("torch")
    a = rng.normal(size=(N, C)).astype(np.float32)
    zoo.add("t", logits=torch.from_numpy(a))
    np.testing.assert_array_equal(zoo.scores("t"), a)


def test_open_many_models_does_not_hash(tmp_path, rng, monkeypatch):
    """Opening a zoo reads no model file (hashing every file made it slow; its time is
    benchmarks/bench_zoo_open.py's to measure)."""
    import zoolens.zoo.layout as layout

    z = Zoo.create(tmp_path / "z", rng.integers(0, 3, 50))
    small = rng.normal(size=(50, 3)).astype(np.float32)
    for i in range(100):
        z.add(f"m{i}", logits=small + i)
    calls = []
    monkeypatch.setattr(layout, "sha256_file", lambda p: calls.append(p) or "x")
    z2 = Zoo.open(tmp_path / "z")
    assert len(z2.models) == 100
    assert calls == []
    z2.scores("m5")  # unchanged file: no hashing either
    assert calls == []


def test_corrupted_labels_file_is_named(zoo):
    f = zoo.path / "labels.npy"
    data = bytearray(f.read_bytes())
    data[-1] ^= 0x01
    f.write_bytes(bytes(data))
    with pytest.raises(ZooCorruptedError, match="labels.npy"):
        Zoo.open(zoo.path).labels  # noqa: B018
    with pytest.raises(ZooCorruptedError, match="labels.npy"):
        Zoo.open(zoo.path).verify()


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=80))
def test_any_name_gives_a_safe_file_name(name):
    import re

    from zoolens.zoo._slug import model_file_name

    file = model_file_name(name, "0" * 64)
    assert re.fullmatch(r"[a-z0-9][a-z0-9._-]*-[0-9a-f]{12}\.safetensors", file)
    assert ".." not in file and "/" not in file
    assert model_file_name(name + "x", "0" * 64) != file  # the hash keeps names apart


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 12), st.integers(1, 12), st.integers(0, 2**31 - 1))
def test_topk_distribution_property(c, k, seed):
    """The reconstructed distribution sums to 1, keeps the listed probabilities, and spreads
    the rest evenly (float64 reference)."""
    from zoolens.zoo.outputs import topk_to_log_probs as _topk_to_log_probs

    k = min(k, c)
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(c), size=7)
    order = np.argsort(-p, axis=1, kind="stable")[:, :k]
    top = np.take_along_axis(p, order, axis=1)
    full = np.exp(_topk_to_log_probs(top.astype(np.float32), order, c).astype(np.float64))
    rest = np.clip(1 - top.sum(1), 0, None)
    for i in range(7):
        for j in range(c):
            if j in order[i]:
                expect = top[i, list(order[i]).index(j)]
            else:
                expect = rest[i] / (c - k)
            assert full[i, j] == pytest.approx(max(expect, 1e-12), rel=1e-5, abs=1e-7)
    assert np.allclose(full.sum(1), 1, atol=1e-5)
