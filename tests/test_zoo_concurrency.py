"""Concurrent writers and crashes: the lock serialises writers, the manifest moves last.

Two processes adding different models at the same time must both land (each writer re-reads
the manifest under the lock). A process killed (SIGKILL, no clean-up at all) at any point of an
add must leave the previous zoo readable and unchanged, and must not leave the lock held.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from zoolens import Zoo

N, C = 500, 10

WRITER = textwrap.dedent("""
    import os, sys, time, numpy as np
    from zoolens import Zoo
    path, prefix, count, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    zoo = Zoo.open(path)  # opened before the other writer's adds: a stale snapshot
    rng = np.random.default_rng(abs(hash(prefix)) % 2**32)
    print("ready", flush=True)
    while not os.path.exists(go):  # start together, so the adds interleave
        time.sleep(0.005)
    for i in range(count):
        zoo.add(f"{prefix}{i}", logits=rng.normal(size=(zoo.num_examples, zoo.num_classes)))
""")

KILLER = textwrap.dedent("""
    import os, signal, sys, numpy as np
    import zoolens.zoo.store as store
    from zoolens import Zoo
    path, stage = sys.argv[1], sys.argv[2]
    zoo = Zoo.open(path)

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    if stage == "model_file":      # half-way through writing the model's temp file
        def write_tensors(filename, tensors, metadata=None):
            with open(filename, "wb") as fh:
                fh.write(b"x" * 1000)
            die()
        store.write_tensors = write_tensors
    elif stage == "manifest_temp":  # the new manifest is half written to its temp file
        def write_manifest(path, manifest):
            from zoolens.atomic import temp_path_for
            with open(temp_path_for(path / "zoo.json"), "w") as fh:
                fh.write('{"format_version": 1, "models": {')
            die()
        store._write_manifest = write_manifest
    elif stage == "before_rename":  # model file in place, manifest not yet replaced
        real = os.replace
        def replace(src, dst):
            if str(dst).endswith("zoo.json"):
                die()
            return real(src, dst)
        os.replace = replace
    x = np.random.default_rng(0).normal(size=(zoo.num_examples, zoo.num_classes))
    zoo.add("victim", logits=x, replace=True)
    sys.exit(3)  # not reached
""")


def _env():
    env = dict(os.environ)
    src = os.path.join(os.path.dirname(__file__), "..", "src")
    env["PYTHONPATH"] = os.path.abspath(src) + os.pathsep + env.get("PYTHONPATH", "")
    return env


@pytest.fixture
def zoo(tmp_path):
    rng = np.random.default_rng(0)
    z = Zoo.create(tmp_path / "zoo", rng.integers(0, C, N))
    z.add("victim", logits=rng.normal(size=(N, C)).astype(np.float32))
    return z


def test_two_processes_adding_different_models_both_land(zoo):
    go = zoo.path.parent / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(zoo.path), prefix, "6", str(go)],
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for prefix in ("a", "b")
    ]
    for p in procs:
        assert p.stdout.readline().strip() == "ready"
    go.touch()
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    z = Zoo.open(zoo.path)
    assert sorted(z.models) == sorted(["victim"] + [f"{p}{i}" for p in "ab" for i in range(6)])
    # each writer's own models are in its own order
    assert [m for m in z.models if m.startswith("a")] == [f"a{i}" for i in range(6)]
    z.verify()
    assert z.orphan_files() == []


@pytest.mark.parametrize("stage", ["model_file", "manifest_temp", "before_rename"])
def test_killed_mid_add_leaves_previous_zoo(zoo, stage):
    before = (zoo.path / "zoo.json").read_bytes()
    old = zoo.scores("victim")
    proc = subprocess.run(
        [sys.executable, "-c", KILLER, str(zoo.path), stage],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert (zoo.path / "zoo.json").read_bytes() == before
    z = Zoo.open(zoo.path)
    assert z.models == ["victim"]
    np.testing.assert_array_equal(z.scores("victim"), old)
    z.verify()
    # the dead writer's lock is gone: the next writer gets in at once
    z.add("after", logits=old + 1)
    assert Zoo.open(zoo.path).models == ["victim", "after"]
    # ... and sweeps what the dead writer left behind (temp files, unreferenced model files)
    assert z.orphan_files() == []
    assert not [p for p in zoo.path.rglob(".tmp-*")]
