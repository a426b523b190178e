"""Importers: every supported file format and layout lands the same arrays in the zoo."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from zoolens import Zoo
from zoolens.errors import ZoolensError
from zoolens.zoo.importers import detect_kind, import_file, load_outputs, parse_columns, read_labels
from zoolens.zoo.store import ZooWarning

# The outputs in these tests are random, so the after-import chance-level check (tested on its own
# in test_public_dumps.py) fires on almost every import here; it is not what these tests are about.
pytestmark = pytest.mark.filterwarnings(r"ignore:.*at chance level:zoolens.zoo.outputs.ZooWarning")

N, C = 30, 4


@pytest.fixture
def rng():
    return np.random.default_rng(3)


@pytest.fixture
def labels(rng):
    return rng.integers(0, C, N)


@pytest.fixture
def zoo(tmp_path, labels):
    ids = [f"img_{i:03d}.png" for i in range(N)]
    return Zoo.create(tmp_path / "zoo", labels, example_ids=ids)


def _probs(rng):
    x = rng.normal(size=(N, C)) * 2
    e = np.exp(x - x.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def test_parse_columns():
    assert parse_columns("11:21") == slice(11, 21)
    assert parse_columns(":10") == slice(None, 10)
    assert parse_columns("3:") == slice(3, None)
    assert parse_columns(None) is None
    with pytest.raises(ZoolensError, match="A:B"):
        parse_columns("3")


def test_detect_kind(rng):
    p = _probs(rng)
    assert detect_kind(p) == "probs"
    assert detect_kind(np.log(p)) == "log_probs"
    assert detect_kind(rng.normal(size=(N, C))) == "logits"
    assert detect_kind(rng.integers(0, 9, size=(N, C)) + np.eye(C)[np.zeros(N, int)]) == "counts"
    assert detect_kind(np.arange(N) % C) == "decisions"


@pytest.mark.parametrize("fmt", ["npy", "npz", "safetensors", "pt", "csv", "csv_header", "tsv"])
def test_formats_round_trip(zoo, tmp_path, rng, fmt):
    logits = rng.normal(size=(N, C)).astype(np.float32)
    if fmt == "npy":
        f = tmp_path / "x.npy"
        np.save(f, logits)
    elif fmt == "npz":
        f = tmp_path / "x.npz"
        np.savez(f, logits=logits, labels=np.zeros(N))
    elif fmt == "safetensors":
        from safetensors.numpy import save_file

        f = tmp_path / "x.safetensors"
        save_file({"logits": logits, "feats": np.zeros((N, 7), np.float32)}, str(f))
    elif fmt == "pt":
        torch = pytest.importorskip("torch")
        f = tmp_path / "x.pt"
        torch.save({"logits": torch.from_numpy(logits), "epoch": 3}, f)
    elif fmt == "csv":
        f = tmp_path / "x.csv"
        np.savetxt(f, logits, delimiter=",", fmt="%.9g")
    elif fmt == "csv_header":
        f = tmp_path / "x.csv"
        f.write_text("a,b,c,d\n" + "\n".join(",".join(f"{v:.9g}" for v in r) for r in logits))
    else:
        f = tmp_path / "x.tsv"
        np.savetxt(f, logits, delimiter="\t", fmt="%.9g")
    kind = import_file(zoo, f, "m", kind="logits")
    assert kind == "logits"
    np.testing.assert_array_equal(zoo.scores("m"), logits)  # %.9g is float32-exact
    assert zoo.card("m").name == "m"


def test_npz_key_choice(zoo, tmp_path, rng):
    p = _probs(rng)
    f = tmp_path / "two.npz"
    np.savez(f, a=p, b=p[:, ::-1].copy())
    with pytest.raises(ZoolensError, match=r"several arrays \(a \(30, 4\), b \(30, 4\)\)"):
        import_file(zoo, f, "m", kind="probs")
    with pytest.raises(ZoolensError, match="no array named 'c'; available: a"):
        import_file(zoo, f, "m", kind="probs", key="c")
    import_file(zoo, f, "m", kind="probs", key="b")
    np.testing.assert_allclose(np.exp(zoo.scores("m")), p[:, ::-1], rtol=1e-6)


def test_csv_id_join_reorders(zoo, tmp_path, rng):
    p = _probs(rng)
    perm = rng.permutation(N)
    ids = np.asarray(zoo.example_ids)[perm]
    f = tmp_path / "shuffled.csv"
    lines = ["file,label," + ",".join(f"p{c}" for c in range(C))]
    lines += [
        f"{ids[i]},{zoo.labels[perm[i]]}," + ",".join(f"{v:.17g}" for v in p[perm[i]])
        for i in range(N)
    ]
    f.write_text("\n".join(lines) + "\n")
    import_file(zoo, f, "m", kind="probs", id_column="file", label_column="label")
    np.testing.assert_allclose(np.exp(zoo.scores("m")), p, rtol=1e-6)
    # a missing id and an extra id are both named
    f2 = tmp_path / "missing.csv"
    f2.write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(ZoolensError, match="1 of the zoo's 30 example ids are missing"):
        import_file(zoo, f2, "m2", kind="probs", id_column=0, label_column=1)
    f3 = tmp_path / "extra.csv"
    f3.write_text("\n".join(lines[:-1] + [lines[-1].replace(".png", ".jpg")]) + "\n")
    with pytest.raises(ZoolensError, match="missing"):
        import_file(zoo, f3, "m3", kind="probs", id_column=0, label_column=1)
    f4 = tmp_path / "extra2.csv"
    f4.write_text("\n".join(lines + ["zzz.png,0," + ",".join(["0.25"] * C)]) + "\n")
    with pytest.raises(ZoolensError, match="1 ids in the file are not in the zoo.*zzz.png"):
        import_file(zoo, f4, "m4", kind="probs", id_column="file", label_column="label")
    assert zoo.models == ["m"]


def test_id_column_needs_zoo_ids(tmp_path, labels, rng):
    z = Zoo.create(tmp_path / "noids", labels)
    f = tmp_path / "x.csv"
    f.write_text("\n".join(f"a{i}," + ",".join(["0.25"] * C) for i in range(N)) + "\n")
    with pytest.raises(ZoolensError, match="no example ids"):
        import_file(z, f, "m", kind="probs", id_column=0)


def test_topk_csv_timm_style_header(zoo, tmp_path, rng):
    p = _probs(rng)
    order = np.argsort(-p, axis=1, kind="stable")[:, :2]
    top = np.take_along_axis(p, order, axis=1)
    f = tmp_path / "topk.csv"
    lines = ["filename,index_0,index_1,prob_0,prob_1"]
    lines += [
        f"{zoo.example_ids[i]},{order[i, 0]},{order[i, 1]},{float(top[i, 0])!r},{float(top[i, 1])!r}"
        for i in range(N)
    ]
    f.write_text("\n".join(lines) + "\n")
    assert import_file(zoo, f, "t", kind="topk", id_column="filename") == "topk"
    full = np.full((N, C), 0.0)
    rest = (1 - top.sum(1)) / (C - 2)
    full[:] = rest[:, None]
    np.put_along_axis(full, order, top, axis=1)
    np.testing.assert_allclose(np.exp(zoo.scores("t")), np.maximum(full, 1e-12), rtol=1e-5)
    np.testing.assert_array_equal(zoo.predictions("t"), order[:, 0])


def test_topk_layouts_and_k1(zoo, tmp_path, rng):
    p = _probs(rng)
    order = np.argsort(-p, axis=1, kind="stable")[:, :2]
    top = np.take_along_axis(p, order, axis=1)
    blocks = tmp_path / "blocks.csv"
    np.savetxt(blocks, np.hstack([order, top]), delimiter=",", fmt="%.17g")
    pairs = tmp_path / "pairs.csv"
    np.savetxt(
        pairs,
        np.column_stack([order[:, 0], top[:, 0], order[:, 1], top[:, 1]]),
        delimiter=",",
        fmt="%.17g",
    )
    import_file(zoo, blocks, "b", kind="topk")
    import_file(zoo, pairs, "p", kind="topk", topk_layout="pairs")
    np.testing.assert_array_equal(zoo.scores("b"), zoo.scores("p"))
    k1 = tmp_path / "k1.npz"
    np.savez(k1, pred_class=order[:, 0], confidence=top[:, 0])
    import_file(zoo, k1, "k1", kind="topk")
    np.testing.assert_array_equal(zoo.predictions("k1"), order[:, 0])
    np.testing.assert_allclose(
        np.exp(zoo.scores("k1"))[np.arange(N), order[:, 0]], top[:, 0], rtol=1e-6
    )
    assert zoo.model_info("k1")["topk"] == 1


def test_decisions_and_counts(zoo, tmp_path, rng):
    d = rng.integers(0, C, N)
    f = tmp_path / "d.csv"
    np.savetxt(f, d, fmt="%d")
    assert import_file(zoo, f, "d") == "decisions"  # detected
    np.testing.assert_array_equal(zoo.predictions("d"), d)
    votes = rng.integers(0, 5, size=(N, C))
    votes[:, 0] += 1
    fv = tmp_path / "v.npy"
    np.save(fv, votes)
    import_file(zoo, fv, "votes", kind="counts")
    np.testing.assert_allclose(
        np.exp(zoo.scores("votes")),
        np.maximum(votes / votes.sum(1, keepdims=True), 1e-12),
        rtol=1e-5,
    )


def test_declared_kind_mismatch_warns(zoo, tmp_path, rng, labels):
    # informative probabilities, right on most rows but not all (a model right on every
    # example is itself a warning: the file may hold the labels): the sanity check is quiet
    target = labels.copy()
    target[:3] = (labels[:3] + 1) % C
    p = 0.5 * _probs(rng) + 0.5 * np.eye(C)[target]
    f = tmp_path / "p.npy"
    np.save(f, p)
    with pytest.warns(ZooWarning, match="look like probabilities"):
        import_file(zoo, f, "a", kind="logits")
    with pytest.warns(ZooWarning, match="look like probs"):
        import_file(zoo, f, "b", kind="counts")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        import_file(zoo, f, "c", kind="probs")


def test_read_labels_variants(tmp_path):
    y = np.array([3, 8, 8, 0, 6])
    np.save(tmp_path / "y.npy", y.astype(np.uint16))
    np.testing.assert_array_equal(read_labels(tmp_path / "y.npy"), y)
    np.savez(tmp_path / "y.npz", predictions=np.zeros((5, 10)), ground_truth=y)
    np.testing.assert_array_equal(read_labels(tmp_path / "y.npz"), y)
    (tmp_path / "y.csv").write_text("\n".join(f"x{i},{v + 1}" for i, v in enumerate(y)))
    np.testing.assert_array_equal(read_labels(tmp_path / "y.csv", column=1, offset=1), y)
    with pytest.raises(ZoolensError, match="--labels-column"):
        read_labels(tmp_path / "y.csv")
    (tmp_path / "f.csv").write_text("1.5\n2\n")
    with pytest.raises(ZoolensError, match="integer"):
        read_labels(tmp_path / "f.csv")


def test_columns_excluding_label_and_id(tmp_path, rng, labels):
    p = _probs(rng)
    f = tmp_path / "x.csv"
    np.savetxt(f, np.column_stack([labels, p]), delimiter=",", fmt="%.17g")
    out = load_outputs(f, num_classes=C, label_column=0)
    assert out.kind == "probs" and out.arrays["probs"].shape == (N, C)
    np.testing.assert_array_equal(out.arrays["probs"], p)  # %.17g round-trips exactly
    np.testing.assert_array_equal(out.labels, labels)
    with pytest.raises(ZoolensError, match="overlaps"):
        load_outputs(f, num_classes=C, label_column=0, columns="0:4")
    with pytest.raises(ZoolensError, match="5 columns, the zoo has 4 classes"):
        load_outputs(f, num_classes=C, kind="probs")
    with pytest.raises(ZoolensError, match="out of range"):
        load_outputs(f, num_classes=C, label_column=9)


def test_kerrigan_layout_real_file(tmp_path):
    from conftest import shared_path

    f = shared_path("cifar10-probs", "human_model_truth_cifar10h.csv")
    out = load_outputs(
        f, num_classes=10, kind="probs", columns="10:20", label_column=20, label_offset=1
    )
    raw = np.loadtxt(f, delimiter=",")
    np.testing.assert_array_equal(out.arrays["probs"], raw[:, 10:20])
    np.testing.assert_array_equal(out.labels, raw[:, 20] - 1)


# ---------------------------------------------------------------------------------------------
# id arrays in npz / safetensors / pt files (rows from a shuffled DataLoader)


def _save_arrays(path, arrays, fmt):
    """Write name -> array as npz, safetensors or pt (a dict of tensors; lists kept as is)."""
    if fmt == "npz":
        np.savez(path, **arrays)
    elif fmt == "safetensors":
        from safetensors.numpy import save_file

        save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(path))
    else:
        import torch

        torch.save(
            {
                k: v if isinstance(v, list) else torch.from_numpy(np.ascontiguousarray(v))
                for k, v in arrays.items()
            },
            path,
        )


@pytest.mark.parametrize(
    "fmt, id_type",
    [
        ("npz", "str"),
        ("npz", "int"),
        ("npz", "bytes"),
        ("safetensors", "int"),
        ("pt", "int"),
        ("pt", "list_str"),
        ("pt", "list_int"),
    ],
)
def test_array_ids_join_shuffled_rows(tmp_path, rng, labels, fmt, id_type):
    ints = id_type in ("int", "list_int")
    zoo_ids = (
        [f"{i:05d}" for i in range(N)]
        if ints  # zero-padded: matched as integers
        else [f"img_{i:03d}.png" for i in range(N)]
    )
    z = Zoo.create(tmp_path / "zoo", labels, example_ids=zoo_ids)
    logits = rng.normal(size=(N, C)).astype(np.float32)
    perm = rng.permutation(N)
    ids: object = np.asarray(zoo_ids)[perm]
    if ints:
        ids = perm.astype(np.int64)
    if id_type == "bytes":
        ids = np.char.encode(np.asarray(zoo_ids)[perm], "utf-8")
    if id_type.startswith("list"):
        ids = [int(i) for i in perm] if ints else [zoo_ids[i] for i in perm]
    f = tmp_path / f"m.{fmt}"
    _save_arrays(f, {"logits": logits[perm], "ids": ids, "y": labels[perm].astype(np.int64)}, fmt)
    assert import_file(z, f, "m", id_column="ids", label_column="y") == "logits"
    assert np.array_equal(z.scores("m"), logits)  # exact: float32 in, float32 stored
    # the labels are checked after the join: shuffled differently they disagree
    other = rng.permutation(N)
    _save_arrays(f, {"logits": logits[perm], "ids": ids, "y": labels[other].astype(np.int64)}, fmt)
    if not np.array_equal(labels[other], labels[perm]):
        with pytest.raises(ZoolensError, match="disagree with the zoo's"):
            import_file(z, f, "m2", id_column="ids", label_column="y")
    assert z.models == ["m"]


def test_array_ids_without_the_join_would_be_wrong(zoo, tmp_path, rng):
    """Control: the same shuffled file imported without ids lands rows in file order."""
    logits = rng.normal(size=(N, C)).astype(np.float32)
    perm = rng.permutation(N)
    f = tmp_path / "m.npz"
    np.savez(f, logits=logits[perm], ids=np.asarray(zoo.example_ids)[perm])
    import_file(zoo, f, "joined", id_column="ids")
    import_file(zoo, f, "raw", key="logits")
    assert np.array_equal(zoo.scores("joined"), logits)
    assert np.array_equal(zoo.scores("raw"), logits[perm])
    assert not np.array_equal(logits[perm], logits)


def test_id_array_is_not_an_output_candidate(zoo, tmp_path, rng):
    """Names that auto-detection would otherwise pick up (an 'index' name for top-k, a second
    1-D array beside decisions, an (N, C)-shaped id array) are set aside first."""
    perm = rng.permutation(N)
    ids = np.asarray(zoo.example_ids)[perm]
    p = _probs(rng)
    top = np.argsort(-p, axis=1)[:, :2]
    f = tmp_path / "topk.npz"
    np.savez(f, class_ids=top[perm], probs=np.take_along_axis(p, top, 1)[perm], example_index=ids)
    assert import_file(zoo, f, "t", kind="topk", id_column="example_index") == "topk"
    np.testing.assert_array_equal(zoo.predictions("t"), top[:, 0])
    f2 = tmp_path / "dec.npz"
    pred = rng.integers(0, C, N)
    np.savez(f2, pred=pred[perm], ids=perm)  # integer ids vs "img_..." ids: refused below
    with pytest.raises(
        ZoolensError, match=r"ids are integers but the zoo's example ids are not \(e.g. 'img_"
    ):
        import_file(zoo, f2, "d", kind="decisions", id_column="ids")
    np.savez(f2, pred=pred[perm], ids=ids)
    assert import_file(zoo, f2, "d", kind="decisions", id_column="ids") == "decisions"
    np.testing.assert_array_equal(zoo.predictions("d"), pred)


def test_integer_ids_rules(tmp_path, labels, rng):
    logits = rng.normal(size=(N, C)).astype(np.float32)
    f = tmp_path / "m.npz"
    np.savez(f, logits=logits[::-1], ids=np.arange(N)[::-1] + 100)
    plain = Zoo.create(tmp_path / "plain", labels, example_ids=[str(i + 100) for i in range(N)])
    import_file(plain, f, "m", id_column="ids")
    assert np.array_equal(plain.scores("m"), logits)
    ambiguous = [str(i + 100) for i in range(N)]
    ambiguous[0] = "0101"  # and "101": the same integer
    z = Zoo.create(tmp_path / "amb", labels, example_ids=ambiguous)
    with pytest.raises(ZoolensError, match="'0101' and '101' are the same integer"):
        import_file(z, f, "m", id_column="ids")
    np.savez(f, logits=logits, ids=np.arange(N) + 0.0)
    with pytest.raises(ZoolensError, match="must hold strings or integers, got float64"):
        import_file(plain, f, "f", id_column="ids")
    np.savez(f, logits=logits, ids=np.arange(N).reshape(-1, 2))  # wrong shape
    with pytest.raises(ZoolensError, match="must be 1-D"):
        import_file(plain, f, "f", id_column="ids")
    assert plain.models == ["m"]


def test_npy_cannot_carry_ids(zoo, tmp_path, rng):
    f = tmp_path / "m.npy"
    np.save(f, rng.normal(size=(N, C)))
    with pytest.raises(ZoolensError, match="single array, so it cannot carry"):
        import_file(zoo, f, "m", id_column="ids")
    from zoolens.zoo.importers import read_ids

    with pytest.raises(ZoolensError, match="single array"):
        read_ids(f, "ids")
    g = tmp_path / "ids.pt"
    import torch

    torch.save({"logits": torch.zeros(N, C), "ids": [f"a{i}" for i in range(N)]}, g)
    assert read_ids(g, "ids").tolist() == [f"a{i}" for i in range(N)]
