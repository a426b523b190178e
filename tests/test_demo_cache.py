"""The demo's model cache: keys, version checks, damaged entries, --fresh."""

from __future__ import annotations

import torch

import zoolens
from zoolens.demo.cache import ModelCache, spec_key


def _entry():
    return {"kind": "logits", "scores": torch.arange(6.0).reshape(3, 2), "meta": {"x": 1}}


def test_key_depends_on_spec_and_data():
    spec = {"name": "cnn", "params": {"lr": 0.003}}
    assert spec_key(spec, "data1") == spec_key(dict(spec), "data1")
    assert spec_key(spec, "data1") != spec_key(spec, "data2")
    assert spec_key(spec, "data1") != spec_key({"name": "cnn", "params": {"lr": 0.001}}, "data1")


def test_round_trip_and_hits(tmp_path):
    cache = ModelCache(tmp_path / "cache")
    cache.save("model A", "k1", _entry())
    got = cache.load("model A", "k1")
    assert torch.equal(got["scores"], _entry()["scores"])
    assert got["meta"]["zoolens_version"] == zoolens.__version__
    assert cache.hits == ["model A"]
    assert cache.load("model A", "other-key") is None


def test_other_version_is_retrained_with_a_message(tmp_path, capsys):
    cache = ModelCache(tmp_path)
    cache.save("m", "k", _entry())
    path = cache.path("m", "k")
    entry = torch.load(path, weights_only=True)
    entry["meta"]["zoolens_version"] = "0.0.1"
    torch.save(entry, path)
    assert cache.load("m", "k") is None
    err = capsys.readouterr().err
    assert "zoolens 0.0.1" in err and "retraining m" in err
    assert cache.retrained == ["m"] and cache.hits == []


def test_damaged_entry_and_fresh_are_not_used(tmp_path, capsys):
    cache = ModelCache(tmp_path)
    cache.save("m", "k", _entry())
    assert ModelCache(tmp_path, fresh=True).load("m", "k") is None
    cache.path("m", "k").write_bytes(b"not a torch file")
    assert cache.load("m", "k") is None
    assert "cannot be read" in capsys.readouterr().err


def test_fresh_build_keeps_keys_for_dependent_models(tmp_path, monkeypatch):
    """--fresh retrains; a model that depends on another (the SimCLR probe, the soups) must
    still find its dependency's key (a bug once: KeyError 'key' under --fresh)."""
    from types import SimpleNamespace

    from zoolens.demo import zoo_build
    from zoolens.demo.zoo_build import BuildContext, Spec, build_one

    calls = []

    def fake(ctx, spec, advance):
        calls.append(spec.name)
        return {"kind": "encoder", "state_dict": {"w": torch.zeros(2)}}

    monkeypatch.setitem(zoo_build.TRAINERS, "fake", fake)
    data = SimpleNamespace(fingerprint="fp")
    profile = zoo_build.PROFILES["quick"]
    upstream = Spec("up", "fake", {"a": 1}, {})
    downstream = Spec("down", "fake", {"b": 2}, {}, depends=("up",))
    for fresh in (False, True, False):
        ctx = BuildContext(data, profile, ModelCache(tmp_path, fresh=fresh))
        build_one(ctx, upstream)
        build_one(ctx, downstream)
        assert ctx.built["down"]["meta"]["key"] != ctx.built["up"]["meta"]["key"]
    # trained on the first run, retrained under --fresh, read from the cache on the third
    assert calls == ["up", "down", "up", "down"]
