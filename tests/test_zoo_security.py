"""Hostile zoos and I/O faults (issue 12): nothing outside the zoo is ever read or deleted,
and every failure is one `error:` line, a non-zero exit, no traceback, the zoo unchanged.

Each test drives the CLI (typer's CliRunner) on a small zoo built through the Python API,
snapshots every file of the zoo (bytes), provokes the fault and compares.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from zoolens.cli import app
from zoolens.errors import ZoolensError
from zoolens.zoo.store import MANIFEST, Zoo

runner = CliRunner()


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (links as their target text) -> its bytes."""
    out: dict[str, bytes] = {}
    for p in sorted(folder.rglob("*")):
        rel = str(p.relative_to(folder))
        if p.is_symlink():
            out[rel] = b"->" + os.readlink(p).encode()
        elif p.is_file():
            out[rel] = p.read_bytes()
    return out


def fails(*args: object, match: str) -> str:
    """The command exits non-zero with one `error:` line on stderr containing ``match``, and
    no traceback."""
    result = runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error")]
    assert len(errors) == 1 and errors[0].startswith("error: "), result.stderr
    assert result.stderr.rstrip().endswith(errors[0]), result.stderr
    assert match.lower() in errors[0].lower(), errors[0]
    return errors[0]


def ok(*args: object) -> str:
    result = runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def make_zoo(path: Path, n: int = 60, c: int = 4, models: int = 3) -> Zoo:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, c, n)
    zoo = Zoo.create(path, labels, calibration_fraction=0.25, seed=0)
    for i in range(models):
        logits = rng.normal(size=(n, c)) + 2.0 * np.eye(c)[labels] * (i + 1)
        zoo.add(f"m{i}", logits=logits)
    return zoo


def edit_manifest(zoo: Path, change) -> None:
    manifest = json.loads((zoo / MANIFEST).read_text())
    change(manifest)
    (zoo / MANIFEST).write_text(json.dumps(manifest, indent=2))


# ---------------------------------------------------------------------------------------------
# item 1: manifest paths outside the zoo


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    victim = tmp_path / "victim" / "precious.safetensors"
    victim.parent.mkdir()
    victim.write_bytes(b"not yours")
    return victim


def _point_m1_at(zoo: Path, target: str) -> None:
    def change(manifest):
        manifest["models"]["m1"]["file"] = target

    edit_manifest(zoo, change)


@pytest.mark.parametrize(
    "how", ["absolute", "dotdot", "dotdot-inside-models", "symlink", "models-symlink"]
)
def test_manifest_path_outside_the_zoo_is_refused_and_nothing_is_touched(
    tmp_path: Path, outside: Path, how: str
) -> None:
    zoo_dir = tmp_path / "zoo"
    make_zoo(zoo_dir)
    if how == "absolute":
        _point_m1_at(zoo_dir, str(outside))
    elif how == "dotdot":
        _point_m1_at(zoo_dir, "../victim/precious.safetensors")
    elif how == "dotdot-inside-models":
        _point_m1_at(zoo_dir, "models/../../victim/precious.safetensors")
    elif how == "symlink":
        (zoo_dir / "models" / "link-0123456789ab.safetensors").symlink_to(outside)
        _point_m1_at(zoo_dir, "models/link-0123456789ab.safetensors")
    else:  # the whole models/ folder is a link to somewhere else
        real = zoo_dir / "models"
        elsewhere = outside.parent
        for p in real.iterdir():
            p.rename(elsewhere / p.name)
        real.rmdir()
        real.symlink_to(elsewhere)
    before = snapshot(zoo_dir)
    outside_before = snapshot(outside.parent)
    out = tmp_path / "out"
    new = tmp_path / "new.npy"
    np.save(new, np.random.default_rng(1).normal(size=(60, 4)))
    for args in (
        ["info", zoo_dir],
        ["verify", zoo_dir],
        ["remove", zoo_dir, "m1"],
        ["import", zoo_dir, new, "--name", "m1", "--replace"],
        ["analyze", zoo_dir, "--base", "m0", "--out", out, "--bootstrap", "0"],
    ):
        fails(
            *args,
            match="refusing to open this zoo" if how != "models-symlink" else "outside the zoo",
        )
        assert outside.read_bytes() == b"not yours"
        assert snapshot(zoo_dir) == before, args
        assert snapshot(outside.parent) == outside_before
    assert not out.exists()
    with pytest.raises(ZoolensError, match="refusing"):
        Zoo.open(zoo_dir)


def test_aux_file_names_outside_the_zoo_are_refused(tmp_path: Path, outside: Path) -> None:
    zoo_dir = tmp_path / "zoo"
    make_zoo(zoo_dir)

    def change(manifest):
        manifest["files"][str(outside)] = manifest["files"]["labels.npy"]

    edit_manifest(zoo_dir, change)
    before = snapshot(zoo_dir)
    fails("verify", zoo_dir, match="not a file name inside the zoo folder")
    assert snapshot(zoo_dir) == before and outside.exists()


def test_labels_symlinked_out_of_the_zoo_are_refused(tmp_path: Path, outside: Path) -> None:
    zoo_dir = tmp_path / "zoo"
    make_zoo(zoo_dir)
    (zoo_dir / "labels.npy").unlink()
    (zoo_dir / "labels.npy").symlink_to(outside)
    fails("info", zoo_dir, match="outside the zoo")
    assert outside.exists()


def test_remove_never_deletes_a_file_the_zoo_did_not_write(tmp_path: Path) -> None:
    """A manifest entry pointing at a file inside models/ that the zoo did not write (a
    name model_file_name never produces, or a link) is read, but never unlinked."""
    zoo_dir = tmp_path / "zoo"
    make_zoo(zoo_dir)
    own = zoo_dir / Zoo.open(zoo_dir).model_info("m1")["file"]
    users = zoo_dir / "models" / "Users File.safetensors"
    os.link(own, users)  # same bytes (hash and size match), but a name the zoo never makes

    def change(manifest):
        manifest["models"]["m1"]["file"] = "models/Users File.safetensors"

    edit_manifest(zoo_dir, change)
    own.unlink()
    ok("info", zoo_dir)
    ok("remove", zoo_dir, "m1")
    assert users.read_bytes()  # still there
    assert "m1" not in Zoo.open(zoo_dir)
    ok("verify", zoo_dir)


def test_sweep_keeps_files_the_zoo_did_not_write(tmp_path: Path) -> None:
    """A writer sweeps crash leftovers: only its own temp files and orphans with its own
    naming, never a user's files (or links) that happen to sit in the folder."""
    zoo_dir = tmp_path / "zoo"
    zoo = make_zoo(zoo_dir, models=1)
    keep = [
        zoo_dir / "models" / "notes.safetensors",
        zoo_dir / ".tmp-mine",
        zoo_dir / "models" / "model-0123456789ab.safetensors.bak",
    ]
    for p in keep:
        p.write_bytes(b"user data")
    target = tmp_path / "target-0123456789ab.safetensors"
    target.write_bytes(b"x")
    link = zoo_dir / "models" / "link-0123456789ab.safetensors"
    link.symlink_to(target)
    orphan = zoo_dir / "models" / "model-0123456789ab.safetensors"
    orphan.write_bytes(b"left by a crash")
    stale = zoo_dir / f".tmp-{'a' * 32}-zoo.json"
    stale.write_bytes(b"{")
    zoo.add("m9", logits=np.zeros((60, 4)))
    assert all(p.read_bytes() == b"user data" for p in keep)
    assert link.is_symlink() and target.exists()
    assert not orphan.exists() and not stale.exists()


# ---------------------------------------------------------------------------------------------
# item 2: values beyond float32's range


@pytest.mark.parametrize("kind, flag", [("logits", None), ("logits", "--float16"), (None, None)])
def test_values_beyond_float32_range_are_refused_not_stored_as_inf(
    tmp_path: Path, kind, flag
) -> None:
    zoo_dir = tmp_path / "zoo"
    make_zoo(zoo_dir)
    huge = tmp_path / "huge.npy"
    np.save(huge, np.random.default_rng(2).normal(size=(60, 4)) * 1e300)
    before = snapshot(zoo_dir)
    args = ["import", zoo_dir, huge, "--name", "huge"]
    args += ["--kind", kind] if kind else []
    args += [flag] if flag else []
    fails(*args, match="beyond float16's range" if flag else "beyond float32's range")
    assert snapshot(zoo_dir) == before


def test_embeddings_beyond_float32_range_are_refused(tmp_path: Path) -> None:
    zoo = make_zoo(tmp_path / "zoo", models=1)
    with pytest.raises(ZoolensError, match="embeddings reach .* beyond float32's range"):
        zoo.add("e", logits=np.zeros((60, 4)), embeddings=np.full((60, 3), 1e39))
    zoo.add("ok", logits=np.full((60, 4), 3e38))  # within range: stored exactly as float32
    assert np.isfinite(zoo.scores("ok")).all()


# ---------------------------------------------------------------------------------------------
# item 8: nearly-probabilities detected as logits warn


def test_rows_that_are_nearly_probabilities_warn_when_read_as_logits(tmp_path: Path) -> None:
    zoo_dir = tmp_path / "zoo"
    make_zoo(zoo_dir, models=1)
    rng = np.random.default_rng(3)
    labels = Zoo.open(zoo_dir).labels
    good = 0.5 * rng.dirichlet(np.ones(4), size=60) + 0.5 * np.eye(4)[labels]  # informative
    probs = good * 1.3
    probs[0, 0] = -0.02
    file = tmp_path / "near.npy"
    np.save(file, probs)
    result = runner.invoke(
        app, ["import", str(zoo_dir), str(file), "--name", "near"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    warns = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warns) == 1 and "almost probabilities" in warns[0], result.stderr
    assert "row sums" in warns[0] and "-0.02" in warns[0]
    # genuine logits (even small ones) and exact probabilities do not warn
    for arr in (rng.normal(scale=0.1, size=(60, 4)) + np.eye(4)[labels], good):
        np.save(file, arr)
        result = runner.invoke(
            app,
            ["import", str(zoo_dir), str(file), "--name", f"x{arr.min():.3f}"],
            catch_exceptions=False,
        )
        assert result.exit_code == 0 and "warning" not in result.stderr, result.stderr


def test_reimporting_identical_data_gives_identical_bytes(tmp_path: Path) -> None:
    """Item 8: the same outputs under the same name make the same file (name and bytes)."""
    file = tmp_path / "m.npz"
    rng = np.random.default_rng(4)
    np.savez(file, logits=rng.normal(size=(60, 4)), embeddings=rng.normal(size=(60, 5)))
    infos = []
    for i in range(4):
        zoo_dir = tmp_path / f"zoo{i}"
        make_zoo(zoo_dir, models=0)
        ok("import", zoo_dir, file, "--name", "same", "--key", "logits")
        infos.append(Zoo.open(zoo_dir).model_info("same"))
    assert len({(i["file"], i["sha256"]) for i in infos}) == 1


# ---------------------------------------------------------------------------------------------
# item 6: a hand-edited manifest is validated by the schema on every open


def _set(path: list, value):
    def change(manifest):
        target = manifest
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


def _cal(change_indices):
    def change(manifest):
        manifest["split"]["calibration_indices"] = change_indices(
            manifest["split"]["calibration_indices"]
        )

    return change


@pytest.mark.parametrize(
    "change, match",
    [
        (
            _set(["dataset", "num_classes"], "4"),
            "dataset.num_classes: Input should be a valid integer",
        ),
        (_set(["dataset", "num_classes"], 5), "4 class names for num_classes 5"),
        (_set(["dataset", "num_examples"], 60.0), "dataset.num_examples"),
        (_set(["models"], ["m0"]), "models: Input should be a valid dictionary"),
        (_cal(lambda c: c + [60]), "calibration_indices must be unique, sorted and in [0, 60)"),
        (_cal(lambda c: [-1] + c), "calibration_indices[0]: Input should be greater than or equal"),
        (_cal(lambda c: [c[0]] + c), "unique, sorted"),
        (_cal(lambda c: c[::-1]), "unique, sorted"),
        (_cal(lambda c: list(range(60))), "leave no evaluation example"),
        (
            _set(["models", "m0", "card", "hparams"], "lr=0.1"),
            "models['m0'].card.hparams: Input should be a valid dictionary",
        ),
        (_set(["models", "m0", "shape"], [60, 5]), "recorded shape [60, 5]"),
        (_set(["models", "m0", "shape"], [59, 4]), "recorded shape [59, 4]"),
        (_set(["models", "m0", "kind"], "probs"), "models['m0'].kind"),
        (_set(["models", "m0", "size"], -3), "models['m0'].size"),
        (_set(["models", "m0", "sha256"], "abc"), "models['m0'].sha256"),
        (_set(["models", "m0", "kinds"], []), "models['m0'].kinds"),
        (_set(["split", "seed"], "0"), "split.seed"),
        (_set(["dataset", "class_groups"], {"g": [9]}), "class group 'g'"),
        (_set(["dataset", "multilabel"], "no"), "dataset.multilabel"),
        (_set(["files", "labels.npy", "size"], None), "files['labels.npy'].size"),
        (_set(["models", "m0", "card", "category"], "Cousins"), "unknown category"),
        (_set(["dataset", "num_classes"], 10**9), "dataset.num_classes"),
    ],
)
def test_hand_edited_manifest_is_refused_with_one_line(tmp_path: Path, change, match) -> None:
    zoo_dir = tmp_path / "zoo"
    make_zoo(zoo_dir)
    edit_manifest(zoo_dir, change)
    before = snapshot(zoo_dir)
    for args in (
        ["info", zoo_dir],
        ["remove", zoo_dir, "m1"],
        ["analyze", zoo_dir, "--base", "m0", "--out", tmp_path / "out"],
    ):
        line = fails(*args, match=match)
        assert "invalid manifest" in line and "zoo.json" in line
        assert snapshot(zoo_dir) == before


def test_unknown_manifest_keys_survive_a_write(tmp_path: Path) -> None:
    """Forward compatibility: fields the schema does not know are kept, not refused."""
    zoo_dir = tmp_path / "zoo"
    make_zoo(zoo_dir)
    edit_manifest(zoo_dir, _set(["models", "m0", "future_field"], {"x": 1}))
    edit_manifest(zoo_dir, _set(["future_top"], [1, 2]))
    ok("remove", zoo_dir, "m1")
    manifest = json.loads((zoo_dir / MANIFEST).read_text())
    assert manifest["models"]["m0"]["future_field"] == {"x": 1}
    assert manifest["future_top"] == [1, 2]


# ---------------------------------------------------------------------------------------------
# property: whatever the manifest holds, Zoo.open raises only ZoolensError

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


_TEMPLATE: dict[str, str] = {}


def _valid_manifest(tmp: Path) -> dict:
    """The manifest of a small valid zoo at ``tmp/template`` (made once per session)."""
    key = str(tmp)
    if key not in _TEMPLATE:
        make_zoo(tmp / "template", n=12, c=3, models=2)
        _TEMPLATE[key] = (tmp / "template" / MANIFEST).read_text()
    return json.loads(_TEMPLATE[key])


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj[:3]):
            yield from _paths(v, prefix + (i,))


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_random_manifests_raise_only_zoolens_errors(tmp_path_factory, data) -> None:
    tmp = tmp_path_factory.getbasetemp() / "manifest-property"
    tmp.mkdir(exist_ok=True)
    manifest = _valid_manifest(tmp)
    zoo_dir = tmp / "template"
    mode = data.draw(st.sampled_from(["mutate", "mutate", "mutate", "random"]))
    if mode == "random":
        text = json.dumps(data.draw(_json))
    else:
        paths = list(_paths(manifest))
        for _ in range(data.draw(st.integers(1, 3))):
            path = data.draw(st.sampled_from(paths))
            value = data.draw(_json)
            if not path:
                manifest = value
                break
            target = manifest
            try:
                for key in path[:-1]:
                    target = target[key]
                if data.draw(st.booleans()) and isinstance(target, dict):
                    target.pop(path[-1], None)
                else:
                    target[path[-1]] = value
            except (KeyError, IndexError, TypeError):
                pass
        text = json.dumps(manifest)
    (zoo_dir / MANIFEST).write_text(text)
    try:
        zoo = Zoo.open(zoo_dir)
        # a manifest that opens must also serve reads without anything but ZoolensError
        for name in zoo.models:
            zoo.kind(name), zoo.card(name), zoo.model_info(name), zoo.predictions(name)  # noqa: B018
        zoo.calibration_indices, zoo.evaluation_indices, zoo.labels, zoo.class_groups  # noqa: B018
    except ZoolensError:
        pass
    finally:
        (zoo_dir / MANIFEST).write_text(_TEMPLATE[str(tmp)])


# ---------------------------------------------------------------------------------------------
# item 5: ordinary I/O failures are one line (disk full, read-only, a folder where a file goes)

import errno  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import textwrap  # noqa: E402


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_disk_full_during_import_is_one_line_and_leaves_no_temp(
    tmp_path: Path, monkeypatch
) -> None:
    """Write-failure injection: the tensor writer fills part of its temp file, then the disk
    is full (as a real full disk does half-way through)."""
    import zoolens.zoo.store as store

    zoo_dir = tmp_path / "zoo"
    make_zoo(zoo_dir)
    new = tmp_path / "new.npy"
    np.save(new, np.random.default_rng(1).normal(size=(60, 4)))
    before = snapshot(zoo_dir)

    def half_then_full(path, tensors, metadata):
        Path(path).write_bytes(b"\0" * 100)
        _enospc()

    monkeypatch.setattr(store, "write_tensors", half_then_full)
    for extra in ([], ["--replace", "--name", "m0"]):
        args = ["import", zoo_dir, new] + (extra or ["--name", "new"])
        fails(*args, match=f"{zoo_dir / 'models'}: no space left on the device")
        assert snapshot(zoo_dir) == before


def _readonly(monkeypatch, folder: Path) -> None:
    """Injected EROFS: any open of a path in ``folder`` for writing, rename or unlink fails
    as on a read-only mount."""
    real_open, real_replace, real_unlink = os.open, os.replace, os.unlink
    inside = str(folder)
    write = os.O_WRONLY | os.O_RDWR | os.O_CREAT

    def check(path):
        if str(path).startswith(inside):
            raise OSError(errno.EROFS, "Read-only file system", str(path))

    def open_(path, flags, *a, **k):
        if flags & write:
            check(path)
        return real_open(path, flags, *a, **k)

    def replace(src, dst, *a, **k):
        check(dst)
        return real_replace(src, dst, *a, **k)

    def unlink(path, *a, **k):
        check(path)
        return real_unlink(path, *a, **k)

    monkeypatch.setattr(os, "open", open_)
    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(os, "unlink", unlink)


def test_read_only_zoo_is_one_line(tmp_path: Path, monkeypatch) -> None:
    zoo_dir = tmp_path / "zoo"
    make_zoo(zoo_dir)
    new = tmp_path / "new.npy"
    np.save(new, np.random.default_rng(1).normal(size=(60, 4)))
    (zoo_dir / ".zoo.lock").unlink(missing_ok=True)
    before = snapshot(zoo_dir)
    _readonly(monkeypatch, zoo_dir)
    for args in (
        ["import", zoo_dir, new, "--name", "new"],
        ["import", zoo_dir, new, "--name", "m0", "--replace"],
        ["remove", zoo_dir, "m1"],
    ):
        fails(*args, match="read-only file system")
        assert snapshot(zoo_dir) == before
    ok("info", zoo_dir)  # reading still works


def test_lock_file_that_is_a_folder_is_one_line(tmp_path: Path) -> None:
    zoo_dir = tmp_path / "zoo"
    make_zoo(zoo_dir)
    (zoo_dir / ".zoo.lock").unlink(missing_ok=True)
    (zoo_dir / ".zoo.lock").mkdir()
    before = snapshot(zoo_dir)
    fails("remove", zoo_dir, "m1", match=".zoo.lock: is a folder, not a file")
    assert snapshot(zoo_dir) == before


def _results(tmp_path: Path) -> Path:
    zoo_dir = tmp_path / "zoo"
    make_zoo(zoo_dir)
    out = tmp_path / "results"
    ok("analyze", zoo_dir, "--base", "m0", "--out", out, "--bootstrap", "0")
    return out


def test_report_png_dir_naming_a_file_is_one_line(tmp_path: Path) -> None:
    out = _results(tmp_path)
    a_file = tmp_path / "file.txt"
    a_file.write_text("mine")
    fails(
        "report",
        out,
        "--out",
        tmp_path / "r.html",
        "--png-dir",
        a_file,
        match=f"{a_file}: already exists",
    )
    assert a_file.read_text() == "mine" and not (tmp_path / "r.html").exists()


def test_disk_full_during_report_is_one_line_and_leaves_nothing(
    tmp_path: Path, monkeypatch
) -> None:
    out = _results(tmp_path)
    report = tmp_path / "rep" / "r.html"
    report.parent.mkdir()
    monkeypatch.setattr(os, "fsync", _enospc)
    fails("report", out, "--out", report, match=f"{report}: no space left on the device")
    assert list(report.parent.iterdir()) == []


def test_report_is_written_with_the_umask(tmp_path: Path) -> None:
    """Item 8: report.html and model files are ordinary files (0644 under umask 022)."""
    out = _results(tmp_path)
    old = os.umask(0o022)
    try:
        ok("report", out, "--out", tmp_path / "r.html")
        zoo = make_zoo(tmp_path / "zoo2", models=1)
    finally:
        os.umask(old)
    assert (tmp_path / "r.html").stat().st_mode & 0o777 == 0o644
    model = zoo.path / zoo.model_info("m0")["file"]
    assert model.stat().st_mode & 0o777 == 0o644


# A real full disk and a real read-only mount, where the kernel lets us make them: a user and
# mount namespace (unshare -rm) with a 1 MiB tmpfs, and a read-only bind mount of the zoo.
_NAMESPACE = textwrap.dedent("""
    import json, os, subprocess, sys
    from pathlib import Path
    zoo, new, mnt, zl = (Path(a) for a in sys.argv[1:5])
    def snap(folder):
        return {str(p.relative_to(folder)): p.read_bytes().hex()
                for p in sorted(folder.rglob("*")) if p.is_file()}
    def run(*args):
        p = subprocess.run([sys.executable, "-c", "from zoolens.cli import main; main()",
                            *map(str, args)], capture_output=True, text=True)
        return {"rc": p.returncode, "stderr": p.stderr}
    out = {}
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "none", str(mnt)], check=True)
    subprocess.run(["cp", "-a", str(zoo), str(mnt / "zoo")], check=True)
    st = os.statvfs(mnt)
    with open(mnt / "fill", "wb") as fh:  # leave 16 KiB: less than one model file
        fh.write(b"\\0" * (st.f_bavail * st.f_frsize - (16 << 10)))
    before = snap(mnt / "zoo")
    out["import"] = run("import", mnt / "zoo", new, "--name", "big")
    out["import_same"] = snap(mnt / "zoo") == before
    out["analyze"] = run("analyze", zoo, "--base", "m0", "--out", mnt / "out",
                         "--bootstrap", "0")
    out["analyze_left"] = sorted(os.listdir(mnt / "out")) if (mnt / "out").exists() else []
    subprocess.run(["mount", "--bind", str(zoo), str(zoo)], check=True)
    subprocess.run(["mount", "-o", "remount,ro,bind", str(zoo)], check=True)
    before = snap(zoo)
    out["ro_import"] = run("import", zoo, new, "--name", "big")
    out["ro_remove"] = run("remove", zoo, "m1")
    out["ro_same"] = snap(zoo) == before
    print(json.dumps(out))
""")


def test_real_full_disk_and_read_only_mount(tmp_path: Path) -> None:
    if shutil.which("unshare") is None:
        pytest.skip("unshare not available: the injected-failure tests above cover this")
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(
            "user and mount namespaces not permitted here (unshare -rm failed); the "
            "injected-failure tests above cover this"
        )
    zoo_dir = tmp_path / "zoo"
    make_zoo(zoo_dir, n=2000, c=10, models=2)
    new = tmp_path / "new.npy"
    np.save(new, np.random.default_rng(1).normal(size=(2000, 10)))
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run(
        ["unshare", "-rm", sys.executable, "-c", _NAMESPACE, str(zoo_dir), str(new), str(mnt), ""],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    for key, match in (
        ("import", "no space left on the device"),
        ("analyze", "no space left on the device"),
        ("ro_import", "read-only file system"),
        ("ro_remove", "read-only file system"),
    ):
        rc, err = res[key]["rc"], res[key]["stderr"]
        errors = [line for line in err.splitlines() if line.startswith("error")]
        assert rc != 0 and "Traceback" not in err and len(errors) == 1, (key, err)
        assert match in errors[0], (key, errors[0])
    assert res["import_same"], "the zoo on the full disk changed"
    assert res["ro_same"], "the read-only zoo changed"
    assert res["analyze_left"] == [], res["analyze_left"]


# ---------------------------------------------------------------------------------------------
# item 3: one stray label id is refused before anything is made per class


@pytest.mark.parametrize("stray", [10**8, 2**40])
def test_one_stray_label_id_is_refused_before_allocating(tmp_path: Path, stray: int) -> None:
    labels = np.arange(100) % 10
    labels[17] = stray
    np.save(tmp_path / "labels.npy", labels)
    np.save(tmp_path / "out.npy", np.zeros((100, 10)))
    fails(
        "import",
        tmp_path / "zoo",
        tmp_path / "out.npy",
        "--name",
        "a",
        "--create",
        "--labels",
        tmp_path / "labels.npy",
        match=f"label {stray} at row 17 is far above the other labels' range "
        "(the other labels lie in 0 .. 9)",
    )
    assert not (tmp_path / "zoo").exists()
    fails(
        "import",
        tmp_path / "zoo",
        tmp_path / "out.npy",
        "--name",
        "a",
        "--create",
        "--labels",
        tmp_path / "labels.npy",
        "--num-classes",
        "100000000",
        match="100000000 classes; a zoo has between 1 and 1,000,000 classes",
    )
    # a sparse but plausible label set is fine: labels up to 999 with 10 distinct values
    labels[17] = 999
    np.save(tmp_path / "labels.npy", labels)
    np.save(tmp_path / "out.npy", np.random.default_rng(0).normal(size=(100, 1000)))
    ok(
        "import",
        tmp_path / "zoo",
        tmp_path / "out.npy",
        "--name",
        "a",
        "--create",
        "--labels",
        tmp_path / "labels.npy",
        "--kind",
        "logits",
    )
    assert Zoo.open(tmp_path / "zoo").num_classes == 1000


# ---------------------------------------------------------------------------------------------
# item 4: a very wide CSV is refused after one cheap pass, before parsing


def test_very_wide_csv_row_is_refused_quickly(tmp_path: Path, monkeypatch) -> None:
    """Refused by the one cheap pass over the bytes, before any parsing (it took > 600 s and
    13 GB when pandas parsed it): pandas' read_csv is never called."""
    import pandas as pd

    def parsed(*args: object, **kwargs: object) -> None:
        raise AssertionError("the wide table reached the parser")

    zoo_dir = tmp_path / "zoo"
    make_zoo(zoo_dir)
    wide = tmp_path / "wide.csv"
    with open(wide, "w") as fh:
        fh.write("0.1,0.2,0.3,0.4\n" * 5)
        fh.write(",".join(["0"] * 10_000_000) + "\n")  # 20 MB, one row
        fh.write("0.1,0.2,0.3,0.4\n" * 54)
    before = snapshot(zoo_dir)
    monkeypatch.setattr(pd, "read_csv", parsed)
    fails(
        "import",
        zoo_dir,
        wide,
        "--name",
        "w",
        match="line 6 has 10,000,000 fields; tables of at most 100,000 columns are read",
    )
    assert snapshot(zoo_dir) == before


def test_table_cell_limit(tmp_path: Path, monkeypatch) -> None:
    import zoolens.zoo.readers.table as importers

    monkeypatch.setattr(importers, "MAX_TABLE_CELLS", 100)
    zoo_dir = tmp_path / "zoo"
    make_zoo(zoo_dir)
    table = tmp_path / "t.csv"
    np.savetxt(table, np.full((60, 4), 0.25), delimiter=",")
    fails(
        "import",
        zoo_dir,
        table,
        "--name",
        "t",
        match="60 rows of up to 4 fields is more than the 100 cells",
    )


# ---------------------------------------------------------------------------------------------
# item 7: absurd option values are one line each; the greedy loop shows progress


@pytest.mark.parametrize(
    "option, value, match",
    [
        ("--bootstrap", "1000000000", "--bootstrap 1000000000: must lie in 0 .. 100,000"),
        ("--bootstrap", "-1", "--bootstrap -1: must lie in 0 .. 100,000"),
        ("--memory-gb", "inf", "--memory-gb inf: give a positive number of GiB"),
        ("--memory-gb", "nan", "--memory-gb nan: give a positive number of GiB"),
        ("--memory-gb", "1e300", "--memory-gb 1e+300: must lie in 0.0009766 .. 1,048,576 GiB"),
        ("--seed", "-1", "--seed -1: must lie in 0 .. 4,294,967,295"),
        ("--max-steps", "100000000", "--max-steps 100000000: must lie in 1 .. 10,000"),
        ("--max-steps", "0", "--max-steps 0: must lie in 1 .. 10,000"),
        ("--chunk-size", "0", "--chunk-size 0: must lie in 1"),
        ("--folds", "1", "--folds 1: must lie in 2 .. 100"),
    ],
)
def test_absurd_option_values_are_one_line(tmp_path: Path, option, value, match) -> None:
    zoo_dir = tmp_path / "zoo"
    make_zoo(zoo_dir)
    before = snapshot(zoo_dir)
    out = tmp_path / "out"
    fails("analyze", zoo_dir, "--base", "m0", "--out", out, option, value, match=match)
    assert not out.exists() and snapshot(zoo_dir) == before
    if option in ("--max-steps", "--memory-gb"):
        fails("ensemble", zoo_dir, "--start", "m0", option, value, match=match)


def test_option_limits_hold_for_the_python_api(tmp_path: Path) -> None:
    from zoolens.study.analyze import analyze

    zoo = make_zoo(tmp_path / "zoo")
    with pytest.raises(ZoolensError, match="--bootstrap 1000000000: must lie in"):
        analyze(zoo, "m0", n_bootstrap=10**9)
    with pytest.raises(ZoolensError, match="n_bootstrap .--bootstrap. must be an integer"):
        analyze(zoo, "m0", n_bootstrap=1e3)


def test_greedy_steps_show_progress(tmp_path: Path) -> None:
    zoo_dir = tmp_path / "zoo"
    make_zoo(zoo_dir)
    result = runner.invoke(
        app, ["ensemble", str(zoo_dir), "--start", "m0", "--max-steps", "7"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert "greedy selection" in result.stderr and "7/7" in result.stderr
    quiet = runner.invoke(
        app, ["--quiet", "ensemble", str(zoo_dir), "--start", "m0"], catch_exceptions=False
    )
    assert quiet.exit_code == 0 and "greedy selection" not in quiet.stderr


# ---------------------------------------------------------------------------------------------
# item 8: the smaller things


def test_terminal_escape_codes_in_names_are_shown_not_executed(tmp_path: Path) -> None:
    zoo_dir = tmp_path / "zoo"
    zoo = make_zoo(zoo_dir)
    evil = "red\x1b[31m\x1b]0;pwned\x07\u202eevil[bold]"
    zoo.add(evil, logits=np.random.default_rng(5).normal(size=(60, 4)))
    for args in (
        ["info", zoo_dir],
        ["analyze", zoo_dir, "--base", evil, "--out", tmp_path / "o", "--bootstrap", "0"],
        ["remove", zoo_dir, "nothing\x1b[2J"],
    ):
        result = runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
        text = result.stdout + result.stderr
        assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text, args
        assert "\\x1b" in text, (args, text)
    info = runner.invoke(app, ["info", str(zoo_dir)], catch_exceptions=False)
    assert "evil[bold]" in info.stdout  # rich markup in a name is shown, not applied


def test_unicode_normal_form_twins_are_refused(tmp_path: Path) -> None:
    import unicodedata

    zoo_dir = tmp_path / "zoo"
    make_zoo(zoo_dir, models=0)
    file = tmp_path / "m.npy"
    np.save(file, np.random.default_rng(6).normal(size=(60, 4)))
    nfc = unicodedata.normalize("NFC", "café")
    nfd = unicodedata.normalize("NFD", "café")
    assert nfc != nfd
    ok("import", zoo_dir, file, "--name", nfc)
    before = snapshot(zoo_dir)
    fails("import", zoo_dir, file, "--name", nfd, match="another Unicode normal form")
    assert snapshot(zoo_dir) == before


@pytest.mark.parametrize(
    "command, message",
    [
        (["import", "{zoo}", "{file}", "--name", "x"], "the zoo is as it was before the command"),
        (["analyze", "{zoo}", "--base", "m0", "--out", "{out}"], "the output folder is unchanged"),
    ],
)
def test_ctrl_c_messages_say_what_is_left(tmp_path: Path, monkeypatch, command, message):
    zoo_dir = tmp_path / "zoo"
    make_zoo(zoo_dir)
    file = tmp_path / "m.npy"
    np.save(file, np.random.default_rng(6).normal(size=(60, 4)))
    before = snapshot(zoo_dir)

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    import zoolens.study.tables as study_tables
    import zoolens.zoo.store as store

    monkeypatch.setattr(store, "write_tensors", interrupt)
    monkeypatch.setattr(study_tables, "write_csv", interrupt)
    args = [a.format(zoo=zoo_dir, file=file, out=tmp_path / "out") for a in command]
    result = runner.invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 130
    assert message in result.stderr and "resume" not in result.stderr
    assert snapshot(zoo_dir) == before and not (tmp_path / "out").exists()


def test_scratch_folders_of_dead_processes_are_swept(tmp_path: Path) -> None:
    from zoolens.zoo.scratch import STAGE_PREFIX, owned_name, pid_alive, sweep_dead

    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    ).stdout.strip()
    assert not pid_alive(int(dead))
    stale = tmp_path / f"{STAGE_PREFIX}{dead}-abc"
    stale.mkdir()
    (stale / "pairs.csv").write_bytes(b"\0" * 4096)
    mine = tmp_path / owned_name(STAGE_PREFIX, "live")
    mine.mkdir()
    foreign = tmp_path / f"{STAGE_PREFIX}notapid"
    foreign.mkdir()
    assert sweep_dead(tmp_path, STAGE_PREFIX) == [stale]
    assert not stale.exists() and mine.exists() and foreign.exists()


def test_greedy_over_the_memory_budget_writes_no_scratch_files(tmp_path: Path, monkeypatch) -> None:
    """Through the CLI: a tiny memory budget holds the greedy pool lazily (study.greedy);
    nothing is written under TMPDIR."""
    import tempfile

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    monkeypatch.setenv("TMPDIR", str(scratch))
    zoo_dir = tmp_path / "zoo"
    make_zoo(zoo_dir, n=3000, c=10, models=3)
    output = ok("ensemble", zoo_dir, "--start", "m0", "--memory-gb", "0.001", "--max-steps", "2")
    assert "recomputed on demand" in output
    assert list(scratch.iterdir()) == []


def test_truncated_table_and_mixed_runs_are_noted_in_the_report(tmp_path: Path) -> None:
    from zoolens.report.tables import load_results

    out = _results(tmp_path)
    assert not [
        n for n in load_results(out).notes if "from another run" in n or "truncated or changed" in n
    ]
    pairs = out / "pairs.csv"
    data = pairs.read_bytes()
    pairs.write_bytes(data[: len(data) - 7])  # killed mid-row
    other = tmp_path / "other"
    ok("analyze", tmp_path / "zoo", "--base", "m1", "--out", other, "--bootstrap", "0")
    for suffix in (".csv", ".parquet", ".json"):  # an older run's table left in the folder
        (out / f"models{suffix}").write_bytes((other / f"models{suffix}").read_bytes())
    notes = load_results(out).notes
    assert any(n.startswith("pairs.csv:") and "truncated or changed since" in n for n in notes), (
        notes
    )
    assert any(n.startswith("models.csv: from another run than summary.json") for n in notes)
    result = runner.invoke(
        app, ["report", str(out), "--out", str(tmp_path / "r.html")], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert "truncated or changed since" in result.stderr
    assert "the folder mixes runs" in result.stderr
    html = (tmp_path / "r.html").read_text()
    assert "truncated or changed since" in html and "mixes runs" in html


def test_disk_full_during_analyze_out_leaves_no_partial_folder(tmp_path: Path, monkeypatch) -> None:
    """pyarrow reports a full disk without errno or path ("[errno 28] ... No space left on
    device"): one line naming the file, and nothing of the run is left, while the tables
    of an earlier run in the same folder stay byte-identical."""
    import pandas as pd

    zoo_dir = tmp_path / "zoo"
    make_zoo(zoo_dir)
    out = tmp_path / "results"
    ok("analyze", zoo_dir, "--base", "m0", "--out", out, "--bootstrap", "0")
    earlier = snapshot(out)
    written = []

    def full(self, path, *args, **kwargs):
        written.append(path)
        if len(written) == 3:  # a few tables in, the disk fills
            raise OSError("Error writing bytes to file. Detail: [errno 28] No space left on device")
        return real(self, path, *args, **kwargs)

    real = pd.DataFrame.to_parquet
    monkeypatch.setattr(pd.DataFrame, "to_parquet", full)
    for target in (out, tmp_path / "fresh"):
        written.clear()
        fails(
            "analyze",
            zoo_dir,
            "--base",
            "m1",
            "--out",
            target,
            "--bootstrap",
            "0",
            match="no space left on the device",
        )
    assert snapshot(out) == earlier
    assert not (tmp_path / "fresh").exists()


# ---------------------------------------------------------------------------------------------
# issue 23: text that would allocate gigabytes, leftovers of a failed create, confusable names

LIMITED = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
from zoolens.cli import app
sys.argv = ["zoolens", *sys.argv[1:]]
app()
"""


def limited(*args: object) -> subprocess.CompletedProcess:
    """The CLI in a subprocess capped at 4 GiB of address space (RLIMIT_AS)."""
    return subprocess.run(
        [sys.executable, "-c", LIMITED, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=600,
    )


def one_error_line(result: subprocess.CompletedProcess, match: str) -> str:
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr and "MemoryError" not in result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-2000:]
    assert match in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def ten_thousand(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    np.save(tmp_path / "out.npy", rng.normal(size=(10_000, 3)).astype(np.float32))
    return tmp_path


@pytest.mark.parametrize("column", ["label", "id"])
def test_one_huge_cell_among_10000_rows_is_one_line_under_4_gib(ten_thousand, column) -> None:
    """One 200 KB cell would make a (10,001,) <U200000 array: 7.45 GiB."""
    rows = [f"img{i},{'abc'[i % 3]}" for i in range(10_000)]
    huge = "x" * 200_000
    rows[5000] = f"{huge},a" if column == "id" else f"img5000,{huge}"
    (ten_thousand / "labels.csv").write_text("id,label\n" + "\n".join(rows) + "\n")
    zoo = ten_thousand / "zoo"
    extra = ["--labels-id-column", "id", "--id-column", "id"] if column == "id" else []
    result = limited(
        "import", zoo, ten_thousand / "out.npy", "--name", "m", "--create",
        "--labels", ten_thousand / "labels.csv", "--labels-column", "label", *extra,
    )  # fmt: skip
    one_error_line(result, "line 5002, column")
    assert "200,000 characters" in result.stderr and not zoo.exists()


def test_a_10_mb_class_list_is_one_line_under_4_gib(ten_thousand) -> None:
    """A JSON class list with one 5 MB name among 500,000: 15 GB as a fixed-width array."""
    np.save(ten_thousand / "labels.npy", np.arange(10_000) % 3)
    names = ["c0", "c1", "c2", "z" * 5_000_000] + [f"k{i}" for i in range(500_000)]
    (ten_thousand / "classes.json").write_text(json.dumps(names))
    assert (ten_thousand / "classes.json").stat().st_size > 10_000_000
    result = limited(
        "import", ten_thousand / "zoo", ten_thousand / "out.npy", "--name", "m", "--create",
        "--labels", ten_thousand / "labels.npy", "--class-names", ten_thousand / "classes.json",
    )  # fmt: skip
    one_error_line(result, "class name 4 has 5,000,000 characters")
    assert not (ten_thousand / "zoo").exists()


def test_huge_ids_and_names_through_the_python_api_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(ZoolensError, match="example id 2 has 5,000 characters"):
        Zoo.create(tmp_path / "a", [0, 1], example_ids=["a", "b" * 5000])
    with pytest.raises(ZoolensError, match="class name 1 has 300 characters"):
        Zoo.create(tmp_path / "b", [0, 1], class_names=["x" * 300, "y"])
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


@pytest.mark.parametrize("existed", [False, True])
def test_a_failed_import_create_leaves_nothing_and_the_retry_works(
    tmp_path: Path, monkeypatch, existed: bool
) -> None:
    import zoolens.zoo.store as store

    zoo_dir = tmp_path / "zoo"
    if existed:
        zoo_dir.mkdir()
    file = tmp_path / "m.npy"
    np.save(file, np.random.default_rng(6).normal(size=(20, 3)))
    np.save(tmp_path / "y.npy", np.arange(20) % 3)
    real = store._write_npy

    def disk_full(path, arr):
        if path.name == store.LABELS_FILE:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, arr)

    monkeypatch.setattr(store, "_write_npy", disk_full)
    args = ["import", zoo_dir, file, "--name", "m", "--create", "--labels", tmp_path / "y.npy"]
    fails(*args, match="no space left")
    assert (sorted(zoo_dir.iterdir()) == []) if existed else not zoo_dir.exists()
    monkeypatch.setattr(store, "_write_npy", real)
    ok(*args)
    assert Zoo.open(zoo_dir).models == ["m"]


@pytest.mark.parametrize(
    "labels, match",
    [
        (["cat", "Cat", "dog"], "differ only in case"),
        (
            ["cat", "cat\u202e", "dog"],
            "differ only in case, width, look-alike letters or invisible",
        ),
        (
            ["cat", "c\u200bat", "dog"],
            "differ only in case, width, look-alike letters or invisible",
        ),
        (["cat", "ｃａｔ", "dog"], "differ only in case, width, look-alike letters or invisible"),
        (["cat", "\u0441at", "dog"], "look-alike letters"),  # a Cyrillic es for the c
        (["copper", "\u0441\u043e\u0440per", "dog"], "look-alike letters"),  # с, о, р
    ],
)
def test_confusable_class_names_are_refused_at_create(tmp_path: Path, labels, match) -> None:
    file = tmp_path / "m.npy"
    np.save(file, np.random.default_rng(6).normal(size=(30, 3)))
    (tmp_path / "y.csv").write_text("\n".join(labels[i % 3] for i in range(30)) + "\n")
    fails(
        "import", tmp_path / "zoo", file, "--name", "m", "--create",
        "--labels", tmp_path / "y.csv", match=match,
    )  # fmt: skip
    assert not (tmp_path / "zoo").exists()


def test_class_names_in_other_scripts_are_kept(tmp_path: Path) -> None:
    """Look-alike folding only refuses two names that read the same: a Russian or Greek
    class list whose names differ is one class per name."""
    from zoolens.zoo.classes import check_confusable

    check_confusable(["кот", "собака", "сова", "cat", "dog"], "here")
    check_confusable(["γάτα", "σκύλος", "cat"], "here")
    with pytest.raises(ZoolensError, match="look-alike"):
        check_confusable(["cat", "сat"], "here")


def test_whitespace_and_normal_forms_of_one_name_are_one_class(tmp_path: Path) -> None:
    import unicodedata

    nfc, nfd = (unicodedata.normalize(f, "café") for f in ("NFC", "NFD"))
    labels = [nfc, nfd, "cat", "cat ", " cat", "dog"]
    file = tmp_path / "m.npy"
    np.save(file, np.random.default_rng(6).normal(size=(30, 3)))
    (tmp_path / "y.csv").write_text("label\n" + "\n".join(labels[i % 6] for i in range(30)) + "\n")
    ok("import", tmp_path / "zoo", file, "--name", "m", "--create", "--labels", tmp_path / "y.csv")
    zoo = Zoo.open(tmp_path / "zoo")
    assert zoo.class_names == [nfc, "cat", "dog"]  # sorted: "caf" < "cat"
    expected = {nfc: 0, nfd: 0, "cat": 1, "cat ": 1, " cat": 1, "dog": 2}
    assert zoo.labels.tolist() == [expected[labels[i % 6]] for i in range(30)]


@pytest.mark.parametrize("text", ["[" * 100_000 + "]" * 100_000, '{"a": [' + "9" * 5000 + "]}"])
def test_deep_or_huge_class_map_json_is_one_line(tmp_path: Path, text: str) -> None:
    from zoolens.zoo.classes import ClassIndex
    from zoolens.zoo.classmap import read_class_map

    path = tmp_path / "map.json"
    path.write_text(text)
    with pytest.raises(ZoolensError, match="--class-map"):
        read_class_map(path, ClassIndex(["a", "b"]), 4)
