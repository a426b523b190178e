"""Shared benchmark plumbing: timing (median of runs), peak memory, sizes, the zoo cache.

Peak memory of a call is the peak resident set size (RSS, sampled every 5 ms by a thread)
above the RSS just before the call, so it counts what the call allocates (numpy, torch and
everything else alike); ``python_child`` runs code in a fresh process and reports that
process's own peak RSS (VmHWM), for the absolute "under 4 GiB" targets.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import psutil

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("ZOOLENS_BENCH_DATA", REPO / "benchmarks" / "_data"))
SIZES = ("full", "quick", "tiny")
MIB = 2**20

# Code that makes torch (and what only the torch extra installs) unimportable in the process
# that runs it first, as on the light install (`pip install zoolens`): a finder first on
# sys.meta_path answers as for a package that is not there. (Not sys.modules["torch"] = None:
# scipy's array-API helpers read sys.modules["torch"].) Used by bench_analyze's light-install
# row and, as a sitecustomize, by tests/test_portable.py.
NO_TORCH = """import sys


class _NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "torchvision", "timm", "open_clip", "triton"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, _NotInstalled())
"""


@dataclass
class Timing:
    """Median seconds over ``runs`` calls, each call's seconds, peak extra RSS (MiB)."""

    median_s: float
    times: list[float]
    peak_mib: float
    result: Any = field(default=None, repr=False)


class _PeakSampler:
    def __init__(self, interval: float = 0.005):
        self.proc = psutil.Process()
        self.interval = interval
        self.start_rss = self.proc.memory_info().rss
        self.peak = self.start_rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            self._stop.wait(self.interval)

    def __enter__(self) -> _PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)

    @property
    def peak_mib(self) -> float:
        return (self.peak - self.start_rss) / MIB


def timed(fn: Callable[[], Any], runs: int = 3) -> Timing:
    """Call ``fn`` ``runs`` times; median wall time and the largest peak extra RSS."""
    times, peaks, result = [], [], None
    for _ in range(max(1, runs)):
        result = None
        with _PeakSampler() as sampler:
            t0 = time.perf_counter()
            result = fn()
            times.append(time.perf_counter() - t0)
        peaks.append(sampler.peak_mib)
    return Timing(statistics.median(times), times, max(peaks), result)


def python_child(code: str, *, timeout: float | None = None) -> dict[str, Any]:
    """Run ``code`` in a fresh Python process (repo on sys.path); it may set ``result`` to
    something JSON-able. Returns wall seconds, the child's own peak RSS in MiB (its
    VmHWM, read in the child at exit: unlike ru_maxrss it is not inherited from the parent
    across fork + exec), its CPU seconds (user + system, all threads), rc, the output tail
    and ``result``."""
    wrapper = (
        f"import sys, json, resource; sys.path.insert(0, {str(REPO)!r})\n"
        "result = None\n"
        f"{code}\n"
        "print('RESULT ' + json.dumps(result), flush=True)\n"
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')]\n"
        "print('MAXRSS', int(hwm[0].split()[1]) if hwm else"
        " resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, flush=True)\n"
        "usage = resource.getrusage(resource.RUSAGE_SELF)\n"
        "print('CPU', usage.ru_utime + usage.ru_stime, flush=True)\n"
    )
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(
            [sys.executable, "-c", wrapper],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            timeout=timeout,
        )
        out, rc = proc.stdout.decode(errors="replace"), proc.returncode
    except subprocess.TimeoutExpired as exc:
        out, rc = (exc.stdout or b"").decode(errors="replace") + "\n(timed out)", -9
    wall = time.perf_counter() - t0
    res: dict[str, Any] = {
        "wall_s": wall,
        "peak_mib": None,
        "cpu_s": None,
        "rc": rc,
        "result": None,
        "output": out[-4000:],
    }
    for line in out.splitlines():
        if line.startswith("RESULT "):
            res["result"] = json.loads(line[len("RESULT ") :])
        elif line.startswith("MAXRSS "):
            res["peak_mib"] = int(line.split()[1]) / 1024  # Linux: KiB
        elif line.startswith("CPU "):
            res["cpu_s"] = float(line.split()[1])
    return res


def exp_probe(seconds: float = 1.0) -> float | None:
    """This machine's speed right now: nanoseconds a float64 ``exp`` takes per element and
    thread with every core busy (torch's kernel, the one the analysis spends most of its
    time in; one thread per core on a 262,144-element array, in a fresh process). The
    hosts these benchmarks run on change speed by up to ~30 % from hour to hour, so rows
    measured at different times compare only together with this figure. None without torch.
    """
    code = f"""
import threading, time
try:
    import torch
except ImportError:
    torch = None
if torch is not None:
    import os
    torch.set_num_threads(1)
    cores = len(os.sched_getaffinity(0))
    x = torch.randn(262144, dtype=torch.float64)
    outs = [torch.empty_like(x) for _ in range(cores)]
    torch.exp(x, out=outs[0])
    counts = [0] * cores
    stop = time.perf_counter() + {seconds!r}
    def work(k):
        while time.perf_counter() < stop:
            torch.exp(x, out=outs[k])
            counts[k] += 1
    begin = time.perf_counter()
    threads = [threading.Thread(target=work, args=(k,)) for k in range(cores)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    elapsed = time.perf_counter() - begin
    result = elapsed * 1e9 / (max(1, min(counts)) * x.numel())
"""
    value = python_child(code, timeout=60)["result"]
    return float(value) if value is not None else None


def row(
    benchmark: str,
    case: str,
    *,
    ours: str,
    ours_s: float,
    baseline: str = "",
    baseline_s: float | None = None,
    peak_mib: float | None = None,
    baseline_peak_mib: float | None = None,
    target: str = "",
    check: str = "",
    notes: str = "",
    met: bool | None = None,
) -> dict[str, Any]:
    """One result line of the table (the runner prints and writes these)."""
    speedup = (baseline_s / ours_s) if (baseline_s and ours_s) else None
    return {
        "benchmark": benchmark,
        "case": case,
        "ours": ours,
        "ours_s": ours_s,
        "baseline": baseline,
        "baseline_s": baseline_s,
        "speedup": speedup,
        "peak_mib": peak_mib,
        "baseline_peak_mib": baseline_peak_mib,
        "target": target,
        "met": met,
        "check": check,
        "notes": notes,
    }


QUIET = False  # set by the runner's --quiet


def say(message: str) -> None:
    """A progress line on stderr (silent with --quiet)."""
    if not QUIET:
        print(message, file=sys.stderr, flush=True)


# --- the synthetic zoo cache -------------------------------------------------------------


def zoo_path(name: str) -> Path:
    return DATA / name


def ensure_zoo(name: str, spec) -> Path:
    """The zoo ``name`` under benchmarks/_data, generated (model by model) unless a zoo with
    the same spec is already there."""
    from benchmarks.generator import write_zoo

    path = zoo_path(name)
    stamp = path / "benchmark-spec.json"
    want = {k: v for k, v in asdict(spec).items() if k != "models"}
    want = json.loads(json.dumps(want))  # tuples -> lists, as read back
    if stamp.exists() and json.loads(stamp.read_text()) == want:
        return path
    if path.exists():
        shutil.rmtree(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(path.parent).free
    need = spec.num_models * spec.num_examples * spec.num_classes * 2
    if free < 1.5 * need:
        raise SystemExit(
            f"not enough disk for the {name} zoo: need ~{need / 2**30:.1f} GiB, "
            f"{free / 2**30:.1f} GiB free under {path.parent}"
        )
    say(
        f"generating zoo {name}: {spec.num_models} x {spec.num_examples} x {spec.num_classes} "
        f"float16 ({need / 2**30:.2f} GiB)"
    )
    t0 = time.perf_counter()
    write_zoo(path, spec, progress=not QUIET)
    stamp.write_text(json.dumps(want))
    say(f"  generated in {time.perf_counter() - t0:.0f} s")
    return path


def remove_zoo(name: str) -> None:
    shutil.rmtree(zoo_path(name), ignore_errors=True)
