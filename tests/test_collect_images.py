"""ImageFolder order, ids and checks; canonical re-ordering against a float loop oracle."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from zoolens.collect.images import ImageFolder, UndecodableImage, ids_in_label_order
from zoolens.errors import ZoolensError


def _folder(tmp_path, layout):
    for cls, names in layout.items():
        (tmp_path / cls).mkdir(parents=True, exist_ok=True)
        for i, name in enumerate(names):
            Image.new("RGB", (4, 4), (i * 40, 0, 0)).save(tmp_path / cls / name)
    return tmp_path


def test_order_ids_and_labels(tmp_path):
    root = _folder(tmp_path, {"b": ["2.png", "10.png"], "a": ["x.png"], "c": ["0.png"]})
    (root / "a" / "notes.txt").write_text("not an image")
    folder = ImageFolder(root)
    assert folder.classes == ["a", "b", "c"]
    # files sorted by name inside a class (string order: "10" < "2")
    assert folder.example_ids.tolist() == ["a/x.png", "b/10.png", "b/2.png", "c/0.png"]
    assert folder.labels.tolist() == [0, 1, 1, 2]
    given = ImageFolder(root, classes=["c", "b", "a"])
    assert given.example_ids.tolist() == ["c/0.png", "b/10.png", "b/2.png", "a/x.png"]
    assert given.labels.tolist() == [0, 1, 1, 2]
    assert given.fingerprint() != folder.fingerprint()
    img = folder[2]
    assert img.size == (4, 4) and img.mode == "RGB"


def test_class_list_file_and_errors(tmp_path):
    root = _folder(tmp_path / "d", {"a": ["1.png"], "b": ["1.png"]})
    (tmp_path / "classes.txt").write_text("b\na\n")
    assert ImageFolder(root, classes=tmp_path / "classes.txt").classes == ["b", "a"]
    with pytest.raises(ZoolensError, match="class folder 'b' is not in the class list"):
        ImageFolder(root, classes=["a"])
    with pytest.raises(ZoolensError, match="class 'z' of the class list has no folder"):
        ImageFolder(root, classes=["a", "b", "z"])
    with pytest.raises(ZoolensError, match="names a class twice"):
        ImageFolder(root, classes=["a", "a", "b"])
    (root / "empty").mkdir()
    with pytest.raises(ZoolensError, match="empty: class folder has no images"):
        ImageFolder(root)
    with pytest.raises(ZoolensError, match="image folder not found"):
        ImageFolder(tmp_path / "nope")
    (tmp_path / "void").mkdir()
    with pytest.raises(ZoolensError, match="no class folders"):
        ImageFolder(tmp_path / "void")


def test_undecodable_image_raises_typed_error(tmp_path):
    root = _folder(tmp_path, {"a": ["1.png"]})
    (root / "a" / "2.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    folder = ImageFolder(root)
    with pytest.raises(UndecodableImage, match="2.jpg"):
        folder[1]


def test_ids_in_label_order_matches_a_loop():
    rng = np.random.default_rng(0)
    target = rng.integers(0, 4, size=200)
    labels = np.sort(target)  # a class-sorted folder with the same counts
    ids = np.asarray([f"c{c}/{k:04d}" for c in range(4) for k in range(int(np.sum(target == c)))])
    got = ids_in_label_order(ids, labels, target)
    # oracle: the k-th occurrence of class c in target order gets the k-th file of class c
    seen = {c: 0 for c in range(4)}
    expect = []
    for c in target:
        expect.append(f"c{c}/{seen[int(c)]:04d}")
        seen[int(c)] += 1
    assert got.tolist() == expect
    with pytest.raises(ZoolensError, match="cannot align"):
        ids_in_label_order(ids, labels, np.roll(np.sort(target), 1) * 0)


def test_positions_look_ids_up_in_folder_order(tmp_path):
    root = _folder(tmp_path, {"b": ["2.png", "10.png"], "a": ["x.png"]})
    folder = ImageFolder(root)
    ids = ["b/2.png", "a/x.png", "b/2.png", "b/10.png"]
    order = folder.example_ids.tolist()
    want = [order.index(e) for e in ids]  # a plain loop over the folder order
    got = folder.positions(ids)
    assert got.dtype == np.int64 and got.tolist() == want == [2, 0, 2, 1]
    assert folder.positions(np.asarray(ids)).tolist() == want  # numpy strings alike
    assert folder.positions([]).shape == (0,)
    with pytest.raises(ZoolensError) as err:
        folder.positions(["a/x.png", "c/9.png", "d/1.png"])
    # the first unknown id, in the given order, and the folder, on one line
    assert str(err.value) == f"example id 'c/9.png' is not in the image folder {root}"
    clone = folder.with_transform(None)
    assert clone.positions(ids).tolist() == want
