"""The runner: any module over any dataset, sharded, resumable, deterministic; skips bad images."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from zoolens.collect.runner import RunOptions, ShardStore, run_model, select_device, shard_ranges
from zoolens.errors import ZoolensError

torch.set_num_threads(1)


class TwoLayer(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(12, 7), nn.ReLU())
        self.head = nn.Linear(7, 3)

    def forward(self, x):
        return self.head(self.body(x))


def _data(n=53):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, 3, 2, 2, generator=g)
    return torch.utils.data.TensorDataset(x, torch.zeros(n, dtype=torch.long)), x


def test_module_outputs_match_a_direct_forward_and_hook_embeddings(tmp_path):
    model, (ds, x) = TwoLayer().eval(), _data()
    out = run_model(
        model, ds, work_dir=tmp_path, name="m", options=RunOptions(batch_size=8, shard_size=20)
    )
    with torch.no_grad():
        emb = model.body(x)
        logits = model.head(emb)
    assert out.indices.tolist() == list(range(53))
    np.testing.assert_allclose(out.logits, logits.numpy(), rtol=1e-6, atol=1e-6)
    # a bare-logits module: the embedding is the input of its last Linear
    np.testing.assert_allclose(out.embeddings, emb.numpy(), rtol=1e-6, atol=1e-6)
    assert out.skipped == {}


def test_tuple_callable_and_no_embeddings(tmp_path):
    ds, x = _data(10)
    out = run_model(
        lambda b: (b.flatten(1)[:, :4], b.flatten(1)),
        ds,
        name="f",
        options=RunOptions(batch_size=3),
    )
    np.testing.assert_array_equal(out.logits, x.flatten(1)[:, :4].numpy())
    assert out.embeddings.shape == (10, 12)
    np.testing.assert_array_equal(out.embeddings, x.flatten(1).numpy())
    only = run_model(lambda b: b.flatten(1)[:, :2], ds, name="g")
    assert only.embeddings is None and only.logits.shape == (10, 2)
    np.testing.assert_array_equal(only.logits, x.flatten(1)[:, :2].numpy())


def test_shard_layout_rounds_to_whole_batches():
    assert RunOptions(batch_size=8, shard_size=20).effective_shard_size() == 24
    assert RunOptions(batch_size=8).effective_shard_size() == 128
    assert shard_ranges(50, 24) == [(0, 24), (24, 48), (48, 50)]
    with pytest.raises(ZoolensError, match="batch-size"):
        RunOptions(batch_size=0).effective_shard_size()


class Interrupting(nn.Module):
    """Counts forward calls; raises KeyboardInterrupt on call number ``stop_at``."""

    def __init__(self, model, stop_at=None):
        super().__init__()
        self.model, self.stop_at, self.calls = model, stop_at, 0

    def forward(self, x):
        self.calls += 1
        if self.stop_at is not None and self.calls == self.stop_at:
            raise KeyboardInterrupt
        return self.model(x)


def test_resume_recomputes_only_missing_shards(tmp_path):
    model, (ds, _) = TwoLayer().eval(), _data()
    opts = RunOptions(batch_size=8, shard_size=16)  # 4 shards of 2 batches (last: 1 batch)
    reference = run_model(model, ds, name="m", options=opts)
    first = Interrupting(model, stop_at=4)  # dies inside shard 2: shard 1 is written
    with pytest.raises(KeyboardInterrupt):
        run_model(first, ds, work_dir=tmp_path, name="m", options=opts)
    shards = sorted(p.name for p in next(tmp_path.iterdir()).glob("shard-*"))
    assert shards == ["shard-000000.safetensors"]
    second = Interrupting(model)
    out = run_model(second, ds, work_dir=tmp_path, name="m", options=opts)
    assert second.calls == 5  # 7 batches in all, 2 were already done
    np.testing.assert_array_equal(out.indices, reference.indices)
    np.testing.assert_array_equal(out.logits, reference.logits)
    np.testing.assert_array_equal(out.embeddings, reference.embeddings)


def test_shards_of_another_run_are_not_mixed_in(tmp_path):
    store = ShardStore(tmp_path, "m", {"a": 1}, 53, 8)
    store.write(
        0,
        8,
        {
            "indices": np.arange(8),
            "logits": np.zeros((8, 3), np.float32),
            "embeddings": None,
            "skipped": {},
        },
        {},
    )
    with pytest.raises(ZoolensError, match=r"different run of model 'm' \(differs in a\)"):
        ShardStore(tmp_path, "m", {"a": 2}, 53, 8)
    fresh = ShardStore(tmp_path, "m", {"a": 2}, 53, 8, resume=False)
    assert fresh.done() == set()
    with pytest.raises(ZoolensError, match="shard missing"):
        fresh.assemble()


def test_device_selection():
    assert select_device("cpu").type == "cpu"
    assert select_device(None).type in ("cpu", "cuda", "mps")
    if not torch.cuda.is_available():
        with pytest.raises(ZoolensError, match="CUDA is not available"):
            select_device("cuda")


def test_collect_model_any_dataset_into_a_zoo(tmp_path):
    from zoolens import Zoo
    from zoolens.collect.runner import collect_model, work_dir_for

    model, (ds, x) = TwoLayer().eval(), _data(20)
    labels = np.arange(20) % 3
    with pytest.raises(ZoolensError, match="give labels"):
        collect_model(model, ds, tmp_path / "zoo", name="m", create=True)
    zoo = collect_model(
        model,
        ds,
        tmp_path / "zoo",
        name="m",
        labels=labels,
        create=True,
        class_names=["x", "y", "z"],
        card={"arch": "two-layer"},
        options=RunOptions(batch_size=6),
    )
    assert zoo.models == ["m"] and zoo.card("m").arch == "two-layer"
    assert zoo.example_ids.tolist() == [str(i) for i in range(20)]
    np.testing.assert_array_equal(zoo.labels, labels)
    with torch.no_grad():
        np.testing.assert_allclose(zoo.scores("m"), model(x).numpy(), rtol=1e-6, atol=1e-6)
    assert zoo.embeddings("m").shape == (20, 7)
    with torch.no_grad():
        np.testing.assert_allclose(zoo.embeddings("m"), model.body(x).numpy(), rtol=1e-6, atol=1e-6)
    assert not work_dir_for(tmp_path / "zoo").exists()
    with pytest.raises(ZoolensError, match="already in"):
        collect_model(model, ds, tmp_path / "zoo", name="m", labels=labels)
    ds.targets = labels
    collect_model(lambda b: model(b) * 2, ds, tmp_path / "zoo", name="double")
    np.testing.assert_allclose(
        Zoo.open(tmp_path / "zoo").scores("double"), 2 * zoo.scores("m"), rtol=1e-6, atol=1e-6
    )


def test_data_index_positions_and_unknown_id():
    from zoolens.collect.runner import DataIndex

    data = DataIndex([1, 0, 2, 1], example_ids=["d", "a", "c", "b"], name="my set")
    ids = ["b", "d", "b", "c", "a"]
    order = ["d", "a", "c", "b"]
    got = data.positions(ids)
    assert got.dtype == np.int64 and got.tolist() == [order.index(e) for e in ids]
    assert data.positions(np.asarray(ids)).tolist() == got.tolist()
    assert DataIndex([0, 1, 1]).positions(["2", "0"]).tolist() == [2, 0]  # default ids
    with pytest.raises(ZoolensError) as err:
        data.positions(["a", "zz", "yy"])
    assert str(err.value) == "example id 'zz' is not in my set"
