"""`--ray`: (model x shard) jobs on a local Ray cluster write the zoo a local run writes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from zoolens.collect.images import ImageFolder
from zoolens.collect.runner import RunOptions, collect_entries
from zoolens.collect.specs import ModelEntry

torch.set_num_threads(1)


def test_ray_run_equals_local_run_and_resumes(tmp_path, monkeypatch):
    ray = pytest.importorskip("ray")
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        (tmp_path / "data" / cls).mkdir(parents=True)
        for k in range(12):
            Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(
                tmp_path / "data" / cls / f"{k:02d}.png"
            )
    folder = ImageFolder(tmp_path / "data")
    entries = [
        ModelEntry(
            spec="python:zoolens.collect.cifar_resnet:pretrained",
            name=f"r{d}",
            kwargs={"depth": d, "num_classes": 2},
            seed=s,
        )
        for d, s in ((8, 0), (14, 1))
    ]
    opts = RunOptions(batch_size=4, shard_size=8, threads=1, device="cpu")
    local = collect_entries(entries, folder, tmp_path / "local", create=True, options=opts)

    # one shard of r8 computed locally beforehand: the Ray run must resume around it
    from zoolens.collect.runner import ShardStore, _entry_fingerprint, run_batches, work_dir_for
    from zoolens.collect.specs import load_model

    fp = _entry_fingerprint(entries[0], True, folder.fingerprint(), opts, "cpu")
    store = ShardStore(work_dir_for(tmp_path / "remote"), "r8", fp, len(folder), 8)
    loaded = load_model(entries[0], class_names=folder.classes)
    run_batches(
        loaded,
        folder.with_transform(loaded.transform),
        [(8, 16)],
        opts,
        on_shard=lambda s, e, a: store.write(s, e, a, loaded.card),
    )
    assert store.done() == {1}

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        remote = collect_entries(
            entries, folder, tmp_path / "remote", create=True, options=opts, use_ray=True
        )
    finally:
        ray.shutdown()
    assert remote.models == local.models == ["r8", "r14"]
    assert remote.example_ids.tolist() == local.example_ids.tolist()
    for name in local.models:
        a, b = local.scores(name), remote.scores(name)
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(remote.predictions(name), local.predictions(name))
        np.testing.assert_allclose(
            remote.embeddings(name), local.embeddings(name), rtol=1e-5, atol=1e-6
        )
        # the same card, cost included, except the measured latency (a wall time)
        measured = {"latency_ms", "batch_size", "source"}
        assert remote.card(name).model_dump(exclude={"cost": measured}) == local.card(
            name
        ).model_dump(exclude={"cost": measured})
        assert remote.card(name).cost.macs == local.card(name).cost.macs > 0
    assert not work_dir_for(tmp_path / "remote").exists()
