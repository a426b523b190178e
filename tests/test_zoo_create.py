"""``zoo.create.import_model``: the Python API of ``zoolens import --create``, all or
nothing (a failed create-and-import leaves no zoo behind), as the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import accuracy_score

from zoolens.errors import ZoolensError
from zoolens.zoo.create import NewZoo, import_model
from zoolens.zoo.store import Zoo


def _files(tmp_path: Path, n: int = 200, c: int = 5) -> tuple[Path, Path, np.ndarray]:
    rng = np.random.default_rng(0)
    y = rng.integers(0, c, n)
    logits = rng.normal(size=(n, c))
    logits[np.arange(n), y] += 2.0  # a model right most of the time
    np.save(tmp_path / "labels.npy", y)
    np.savez(tmp_path / "m.npz", logits=logits)
    return tmp_path / "labels.npy", tmp_path / "m.npz", logits


def test_create_and_import(tmp_path: Path) -> None:
    labels, model, logits = _files(tmp_path)
    zoo, read_as = import_model(
        tmp_path / "z", model, "m", key="logits", create=NewZoo(labels=labels)
    )
    assert read_as == "logits"
    y = np.load(labels)
    assert zoo.models == ["m"]
    assert zoo.accuracy("m") == pytest.approx(accuracy_score(y, logits.argmax(1)), abs=1e-12)
    assert Zoo.open(tmp_path / "z").num_examples == len(y)


def test_failed_create_leaves_no_folder(tmp_path: Path) -> None:
    labels, _, _ = _files(tmp_path)
    short = tmp_path / "short.npy"
    np.save(short, np.zeros((150, 5)))  # 150 rows for 200 labels
    with pytest.raises(ZoolensError):
        import_model(tmp_path / "z", short, "m", create=NewZoo(labels=labels))
    assert not (tmp_path / "z").exists()


def test_failed_create_keeps_an_existing_folder(tmp_path: Path) -> None:
    labels, _, _ = _files(tmp_path)
    folder = tmp_path / "z"
    folder.mkdir()  # made by the user, empty: the folder stays, the zoo goes
    chance = tmp_path / "chance.npy"
    np.save(chance, np.random.default_rng(1).normal(size=(200, 5)))  # at chance level
    with pytest.raises(ZoolensError, match="--strict: nothing imported"):
        import_model(folder, chance, "m", create=NewZoo(labels=labels), strict=True)
    assert folder.is_dir() and not list(folder.iterdir())


def test_create_refuses_an_existing_zoo(tmp_path: Path) -> None:
    labels, model, _ = _files(tmp_path)
    import_model(tmp_path / "z", model, "m", key="logits", create=NewZoo(labels=labels))
    with pytest.raises(ZoolensError, match="a zoo already exists here"):
        import_model(tmp_path / "z", model, "m2", key="logits", create=NewZoo(labels=labels))
    assert Zoo.open(tmp_path / "z").models == ["m"]  # untouched
