"""``zoolens demo``: train the Fashion-MNIST zoo (cached), make soups, run the whole study,
write the report and state which of the paper's findings hold for this zoo.

Layout of the output folder (default ``./zoolens-demo``)::

    cache/        trained models' outputs, keyed by spec + data, checked by zoolens version
    zoo/          the zoo (zoolens.zoo.store.Zoo) of every model's test logits and embeddings
    results/      analyze tables (models.csv, pairs.csv, ...), probe tables, soup.csv,
                  findings.json, timings.json
    soup/         the fine-tuned ingredients' and the soups' state dicts (torch .pt) and the
                  held-out split (heldout.npz), so ``zoolens soup`` can reproduce soup.csv
    report.html   the self-contained HTML report

Nothing here re-implements an analysis: the tables come from ``zoolens.study.analyze`` and
``zoolens.study.probe``, the report from ``zoolens.report.build_report``; the findings are
read back from those tables and summary.json.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from zoolens.errors import ZoolensError, require_torch
from zoolens.progress import info, progress_bar

DEFAULT_OUT = Path("zoolens-demo")
QUICK_OUT = Path("zoolens-demo-quick")  # --quick never overwrites the default profile's folder


def default_out(quick: bool) -> Path:
    return QUICK_OUT if quick else DEFAULT_OUT


@dataclass
class DemoResult:
    out: Path
    profile: str
    zoo_path: Path
    results_dir: Path
    report_path: Path | None
    accuracies: dict[str, float]
    soup_table: Any
    findings: list[dict[str, Any]]
    missing: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    cache_hits: list[str] = field(default_factory=list)
    retrained: list[str] = field(default_factory=list)


def check_writable(out: Path) -> None:
    """Create ``out`` if needed and prove we can write there (one clear line otherwise)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".zoolens-write-test-{os.getpid()}"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ZoolensError(
            f"--out {out}: cannot write there ({reason}); choose a writable folder"
        ) from None


def auto_threads(wanted: int = 2) -> int:
    """``wanted`` torch threads unless the 1-minute load average leaves less than
    ``wanted - 1`` cores free (on 2 cores: load above 1), then 1 thread.

    Why: torch's CPU kernels synchronise their threads at every operation; when other
    processes keep the cores busy, a descheduled thread stalls each barrier, and networks
    made of many small operations (the ViT, the ResNet) then ran 20-40x slower with 2 threads
    than with 1 on the shared development machine."""
    try:
        load = os.getloadavg()[0]
    except OSError:
        return wanted
    free = (os.cpu_count() or 1) - load
    return wanted if free >= wanted - 1 else 1


def run_demo(
    out: str | os.PathLike | None = None,
    *,
    quick: bool = False,
    fresh: bool = False,
    data_dir: str | os.PathLike | None = None,
    threads: int | None = None,
    report: bool = True,
) -> DemoResult:
    """Build (or read from the cache) the demo zoo and run the study; see the module doc.

    threads: torch CPU threads for training (default: 2, or 1 on a busy machine)."""
    require_torch("the demo")
    import torch

    from zoolens.demo.cache import ModelCache
    from zoolens.demo.data import load_fashion_mnist
    from zoolens.demo.zoo_build import (
        PROFILES,
        BuildContext,
        build_one,
        model_specs,
        prepare,
        simclr_encoder_spec,
        soup_init,
        soup_specs,
    )

    started, cpu_started = time.perf_counter(), time.process_time()
    out = default_out(quick) if out is None else Path(out)
    check_writable(out)
    data = load_fashion_mnist(data_dir)
    profile = PROFILES["quick" if quick else "default"]
    info(
        f"zoolens demo ({profile.name} profile, about {profile.minutes} minutes on 2 CPU "
        f"cores): Fashion-MNIST from {data.source}; training on {profile.train_size:,} of "
        f"60,000 training images, scoring on all 10,000 test images; output in {out}"
    )
    if threads is None:
        threads = auto_threads()
        try:
            load = f"{os.getloadavg()[0]:.1f}"
        except OSError:
            load = "unknown"
        info(
            f"training with {threads} torch thread(s) ("
            + ("the machine is busy: " if threads == 1 and (os.cpu_count() or 1) > 1 else "")
            + f"load {load} on {os.cpu_count()} cores; --threads N overrides)"
        )
    old_threads = torch.get_num_threads()
    ctx = BuildContext(data, profile, ModelCache(out / "cache", fresh=fresh), threads=threads)
    seconds: dict[str, float] = {}
    try:
        prepare(ctx)
        t0 = time.perf_counter()
        specs = model_specs(profile)
        build_one(ctx, simclr_encoder_spec(profile))
        for spec in specs:
            build_one(ctx, spec)
        seconds["train_zoo"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        soup_table, soup_comparison = _make_soups(ctx, out, soup_specs(profile), soup_init)
        seconds["soups"] = time.perf_counter() - t0
    finally:
        torch.set_num_threads(old_threads)

    t0 = time.perf_counter()
    zoo = _write_zoo(ctx, out / "zoo", specs)
    accuracies = {s.name: _acc(ctx, s.name) for s in specs}
    seconds["zoo"] = time.perf_counter() - t0
    results_dir = out / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    from zoolens.study.soup import write_soup_table

    write_soup_table(soup_table, results_dir)
    missing: list[str] = []
    t0 = time.perf_counter()
    summary = _analyze(zoo, results_dir, specs, missing)
    seconds["analyze"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    _probe_study(zoo, results_dir, profile, missing)
    seconds["probe"] = time.perf_counter() - t0
    from zoolens.demo.findings import collect_findings

    findings = collect_findings(results_dir, summary, soup_table, missing, soup_comparison)
    # before the report, which shows it ("Findings for this zoo"); rewritten below if the
    # report itself adds to ``missing``
    findings_payload = {"table_version": 1, "profile": profile.name, "findings": findings}
    _write_json(results_dir / "findings.json", {**findings_payload, "missing": list(missing)})
    report_path = None
    if report:
        t0 = time.perf_counter()
        report_path = _report(results_dir, out / "report.html", missing)
        seconds["report"] = time.perf_counter() - t0
    seconds["total"] = time.perf_counter() - started
    seconds["total_cpu"] = time.process_time() - cpu_started
    _write_json(results_dir / "findings.json", {**findings_payload, "missing": missing})
    _write_json(
        results_dir / "timings.json",
        {
            "profile": profile.name,
            "seconds": seconds,
            "train_seconds": ctx.timings,
            "cache_hits": ctx.cache.hits,
            "threads": threads,
        },
    )
    return DemoResult(
        out,
        profile.name,
        zoo.path,
        results_dir,
        report_path,
        accuracies,
        soup_table,
        findings,
        missing,
        seconds,
        list(ctx.cache.hits),
        list(ctx.cache.retrained),
    )


def _acc(ctx, name: str) -> float:
    scores = ctx.built[name]["scores"]
    return float(np.mean(scores.argmax(dim=1).numpy() == ctx.data.test_labels))


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    from zoolens.atomic import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, default=_json_default))


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return str(value)


def _make_soups(ctx, out: Path, specs, soup_init_fn):
    """Fine-tune the ingredients (cached), then compare soups on held-out and test data."""
    from zoolens.demo.models import SmallCNN
    from zoolens.demo.zoo_build import build_one
    from zoolens.study.soup import format_soup_table, run_soups, save_state_dict

    soup_init_fn(ctx)
    names = []
    for spec in specs:
        build_one(ctx, spec)
        names.append(spec.name)
    state_dicts = [ctx.built[n]["state_dict"] for n in names]
    t = ctx.tensors
    total = 3 * len(names) + 2
    with progress_bar(total, "soups: score ingredients", "evals") as advance:
        result = run_soups(
            SmallCNN(),
            state_dicts,
            names,
            (t.x_held, t.y_held.numpy()),
            (t.x_test, t.y_test.numpy()),
            progress=advance,
        )
    folder = out / "soup"
    folder.mkdir(parents=True, exist_ok=True)
    for name, sd in zip(names, state_dicts):
        save_state_dict(sd, folder / f"{name}.pt")
    save_state_dict(result.uniform, folder / "uniform_soup.pt")
    save_state_dict(result.greedy.state_dict, folder / "greedy_soup.pt")
    from zoolens.atomic import atomic_path

    with atomic_path(folder / "heldout.npz") as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, x=t.x_held.numpy(), y=t.y_held.numpy())
    info(
        "soups (Wortsman et al. 2022), fine-tuned from the SimCLR encoder + probe head:\n"
        + format_soup_table(result.table)
    )
    comparison = None
    if result.test_right:
        from zoolens.demo.findings import compare_soup

        comparison = compare_soup(
            result.test_right["greedy_soup"],
            result.test_right["best_ingredient"],
            identical=list(result.greedy.members) == [result.greedy.order[0]],
        )
    return result.table, comparison


def _write_zoo(ctx, path: Path, specs):
    """A fresh zoo of every member's test scores, embeddings and card (rebuilt each run from
    the cache, so it never mixes models of different runs)."""
    from zoolens.demo.data import CLASS_GROUPS, CLASS_NAMES
    from zoolens.demo.zoo_build import DATASET_NAME
    from zoolens.zoo.cards import ModelCard
    from zoolens.zoo.store import Zoo

    if path.exists():
        if not (path / "zoo.json").exists():
            raise ZoolensError(
                f"{path}: exists and is not a zoo; move it away or choose another --out"
            )
        shutil.rmtree(path)
    zoo = Zoo.create(
        path,
        ctx.data.test_labels,
        class_names=CLASS_NAMES,
        dataset_name=DATASET_NAME,
        calibration_fraction=0.2,
        seed=0,
        example_ids=[f"t10k-{i:05d}" for i in range(10000)],
        class_groups=CLASS_GROUPS,
    )
    for spec in specs:
        entry = ctx.built[spec.name]
        scores = entry["scores"].numpy().astype(np.float32)
        emb = entry.get("embeddings")
        card = ModelCard(name=spec.name, seed=spec.seed, **spec.card)
        kwargs = {"probs": scores} if entry["kind"] == "probs" else {"logits": scores}
        zoo.add(spec.name, card=card, embeddings=None if emb is None else emb.numpy(), **kwargs)
    return zoo


def _analyze(zoo, results_dir: Path, specs, missing: list[str]) -> dict[str, Any]:
    """zoolens.study.analyze with base = cnn-base; greedy from the base over only the models
    less accurate than the base (paper Sec. 4.5) on the evaluation split, the split whose
    accuracies the findings quote (the search itself chooses on the calibration split)."""
    from zoolens.demo.zoo_build import BASE

    try:
        from zoolens.study.analyze import analyze
    except ImportError as exc:
        missing.append(f"analysis tables (zoolens.study.analyze not importable: {exc})")
        return {}
    ev = zoo.evaluation_indices
    labels = zoo.labels[ev]
    ev_acc = {n: float(np.mean(zoo.predictions(n)[ev] == labels)) for n in zoo.models}
    pool: list[str] | None = [n for n in zoo.models if ev_acc[n] < ev_acc[BASE]]
    if not pool:  # no model is less accurate than the base: nothing lower-accuracy to add
        missing.append(
            "greedy ensemble of lower-accuracy models (no model is less accurate than the base)"
        )
        pool = None
    info(
        f"analyze: base {BASE}; greedy from {BASE} over "
        f"{len(pool) if pool else 'all'} models less accurate than it (evaluation split)"
    )
    result = analyze(zoo, BASE, results_dir, pool=pool, start=BASE, command="zoolens demo")
    return result.summary


def _probe_study(zoo, results_dir: Path, profile, missing: list[str]) -> None:
    """Feature combination (paper Sec. 4.6, Fig. 6) and CKA (Fig. 13) through
    zoolens.study.probe.run_probe: the base combined with a Framework model (SimCLR), a
    Dataset model (digit features) and, as a control, a Reinit twin; probes use a short λ
    grid and a looser tolerance to fit the CPU budget (the study's defaults are finer)."""
    try:
        from zoolens.study.probe import ProbeSettings, run_probe
    except ImportError as exc:
        missing.append(f"feature-combination tables (zoolens.study.probe: {exc})")
        return
    from zoolens.demo.zoo_build import BASE

    quick = profile.name == "quick"
    partners = (
        ("simclr-cnn+probe",) if quick else ("simclr-cnn+probe", "digits-cnn+probe", "cnn-seed1")
    )
    with_emb = [n for n in zoo.models if zoo.has_embeddings(n)]
    pairs = [(BASE, p) for p in partners if p in with_emb]
    if BASE not in with_emb or not pairs:
        missing.append("feature-combination tables (no embedding pair with the base)")
        return
    settings = ProbeSettings(l2_grid=(1e-3, 1e-4, 1e-5), tol=1e-4, max_iter=300, seed=0)
    run_probe(
        zoo,
        with_emb,
        out_dir=results_dir,
        pairs=pairs,
        rates=(0.0, 0.5, 1.0) if quick else (0.0, 0.25, 0.5, 0.75, 1.0),
        draws=1 if quick else 2,
        settings=settings,
        diversity=not quick,
        steps=4,
        rbf_max_examples=2000,
    )
    _downstream_study(zoo, results_dir, with_emb, pairs, settings, missing)


# The demo's downstream task (paper Fig. 7): the three class groups of the same test images
# (tops / footwear / other). A coarse relabelling, not a new dataset: the demo has no second
# image set, and the point of Fig. 7 (stacking two embeddings vs each alone; downstream vs
# upstream accuracy) only needs a task the embeddings were not trained for.
DOWNSTREAM_TASK = "the 3 class groups (tops, footwear, other) of the same test images"


def _downstream_study(
    zoo, results_dir: Path, with_emb: list[str], pairs, settings, missing: list[str]
) -> None:
    """transfer.csv and stacking.csv (Fig. 7) through zoolens.study.probe.run_stacking on a
    downstream zoo of the embedding models' test embeddings labelled by class group."""
    from zoolens.demo.data import CLASS_GROUPS
    from zoolens.study.probe import run_stacking
    from zoolens.zoo.store import Zoo

    group_of = np.full(len(zoo.class_names), -1, dtype=np.int64)
    for k, classes in enumerate(CLASS_GROUPS.values()):
        group_of[classes] = k
    if (group_of < 0).any():
        missing.append("downstream tables (a class is in no class group)")
        return
    path = results_dir.parent / "downstream-zoo"
    if path.exists():
        shutil.rmtree(path)
    down = Zoo.create(
        path,
        group_of[np.asarray(zoo.labels)],
        class_names=list(CLASS_GROUPS),
        dataset_name=DOWNSTREAM_TASK,
        calibration_fraction=0.2,
        seed=0,
    )
    for name in with_emb:
        # decisions: the model's class mapped to its group (the downstream zoo needs scores)
        down.add(
            name,
            decisions=group_of[np.asarray(zoo.predictions(name))],
            embeddings=zoo.embeddings(name),
            card=zoo.card(name),
        )
    run_stacking(zoo, down, with_emb, out_dir=results_dir, pairs=pairs, settings=settings)


def _report(results_dir: Path, path: Path, missing: list[str]) -> Path | None:
    try:
        from zoolens.report import build_report
    except ImportError as exc:
        missing.append(f"HTML report (zoolens.report not importable: {exc})")
        return None
    build_report(results_dir, path, warn=lambda m: None)
    return path
