"""The whole ``zoolens analyze --base`` on the ImageNet-shaped float16 zoo, in a fresh process.

Everything the paper's Sections 3-4.5 need, in one command: temperatures, all-pairs
agreement, all-pair ensembles (exact top-k kernel), specialization, greedy selection,
bootstrap intervals. Measured: wall time of the command and the process's peak RSS.
Targets (issue 8): under 10 minutes and under 4 GiB for 82 x 50,000 x 1,000.
"""

from __future__ import annotations

import json
import shutil

from benchmarks._common import DATA, ensure_zoo, python_child, row, say
from benchmarks.bench_ensemble import SIZES as ZOO_SIZES
from benchmarks.bench_ensemble import spec_for, zoo_name

SIZES = {"full": "full", "quick": "quick", "tiny": "tiny"}


def run(size: str = "quick", runs: int = 1) -> list[dict]:
    zcfg = ZOO_SIZES[SIZES[size]]
    path = ensure_zoo(zoo_name(zcfg), spec_for(zcfg))
    out = DATA / f"analyze-{zoo_name(zcfg)}"
    shutil.rmtree(out, ignore_errors=True)
    base = "synthetic-000"
    argv = ["analyze", str(path), "--base", base, "--out", str(out), "--quiet"]
    say(f"analyze: zoolens {' '.join(argv)}")
    code = (
        "from typer.testing import CliRunner\n"
        "from zoolens.cli import app\n"
        f"r = CliRunner().invoke(app, ['--quiet'] + {argv[:-1]!r})\n"
        "result = {'exit_code': r.exit_code, 'output': r.output[-2000:],"
        " 'exception': repr(r.exception) if r.exception else None}\n"
    )
    child = python_child(code)
    res = child["result"] or {}
    ok = child["rc"] == 0 and res.get("exit_code") == 0
    summary = out / "summary.json"
    extra = ""
    if ok and summary.exists():
        s = json.loads(summary.read_text())
        if "topk_fallback_rate" in s:
            extra = f"; top-k full-row fallback {s['topk_fallback_rate']:.2e}"
    detail = (f"exit 0, tables in {out.name}{extra}" if ok else
              f"FAILED rc={child['rc']} {res.get('exception') or ''} "
              f"{(res.get('output') or child['output'])[-300:]}")
    wall, peak = child["wall_s"], child["peak_mib"]
    met = ok and peak is not None and peak < 4096 and wall < 600
    return [row("zoolens analyze --base", f"{zcfg['models']} x {zcfg['examples']:,} x "
                f"{zcfg['classes']:,} float16, fresh process", ours="zoolens analyze (CLI, "
                "defaults: 1000 bootstrap resamples, 25 greedy steps)", ours_s=wall,
                peak_mib=peak, target="< 10 min, peak RSS < 4 GiB", met=met,
                check=detail, notes="1 run (a whole analysis)")]
