"""A model hub: one base and thousands of candidate sidekicks, ``zoolens analyze --pairs base``.

The user of a hub looks for a sidekick to their own model and never needs all pairs: with
``--pairs base`` the analysis measures the base's M − 1 pairs (evaluation pass, bootstrap,
pair tables), greedy selection over every candidate, specialization, theta and the rest, in
time and memory linear in M. Measured in a fresh process: wall time, peak RSS (VmHWM), the
stage timings of summary.json and the machine's load (``os.getloadavg``) before and after.

Sizes (float16 logits from ``benchmarks.generator``; the zoo is generated once under
benchmarks/_data and kept unless the runner removes it):

- full: 1 base + 10,000 candidates x 10,000 examples x 100 classes (18.6 GiB on disk);
  target: at most 10 minutes (issue 28, item 3);
- quick: 1 base + 1,000 candidates x 10,000 x 100 (1.9 GiB);
- tiny: 1 base + 40 candidates x 1,000 x 20 (the smoke test's size), where the all-pairs
  run is cheap: the base's pairs.csv rows (but the four columns adjusted for multiple
  testing over the table's pairs) and every other table are compared with it byte for byte.

Example:  python -m benchmarks.bench_hub --size quick
"""

from __future__ import annotations

import shutil

from benchmarks._common import DATA, ensure_zoo, row, say
from benchmarks._results import load_average, module_main
from benchmarks.bench_analyze import _analyze, _detail
from benchmarks.bench_ensemble import spec_for, zoo_name

SIZES = {
    "full": dict(models=10_001, examples=10_000, classes=100),
    "quick": dict(models=1_001, examples=10_000, classes=100),
    "tiny": dict(models=41, examples=1_000, classes=20),
}
# The all-pairs run is compared with the base-only run up to this many models.
COMPARE_UP_TO = 100
BASE = "synthetic-000"


# pairs.csv columns adjusted for multiple testing over the table's pairs: the base's pairs
# in a base-only run, every pair in the all-pairs run (different families by definition).
ADJUSTED = ("mcnemar_p_holm", "mcnemar_q_bh", "paired_bootstrap_p_holm", "paired_bootstrap_q_bh")


def _same_base_rows(got_csv, want_csv) -> bool:
    """The base-only pairs.csv equals the all-pairs one's rows with the base, as text, in
    every column but :data:`ADJUSTED`."""
    import pandas as pd

    got = pd.read_csv(got_csv, dtype=str, keep_default_na=False)
    want = pd.read_csv(want_csv, dtype=str, keep_default_na=False)
    want = want[(want["model_a"] == BASE) | (want["model_b"] == BASE)].reset_index(drop=True)
    keep = [c for c in want.columns if c not in ADJUSTED]
    return list(got.columns) == list(want.columns) and got[keep].equals(want[keep])


def compare_with_all_pairs(path, base_out) -> tuple[bool, str]:
    """Run ``--pairs all`` on the same zoo: whether the base-only run's pairs.csv equals its
    rows with the base and every other CSV equals it, byte for byte, and the words."""
    all_out = base_out.with_name(base_out.name + "-all")
    shutil.rmtree(all_out, ignore_errors=True)
    child = _analyze(path, all_out, ["--pairs", "all"])
    if not child["ok"]:
        return False, f"all-pairs run {child['error']}"
    differ = []
    for table in sorted(all_out.glob("*.csv")):
        mine = base_out / table.name
        if not mine.exists():
            same = False
        elif table.name == "pairs.csv":
            same = _same_base_rows(mine, table)
        else:
            same = mine.read_bytes() == table.read_bytes()
        if not same:
            differ.append(table.name)
    shutil.rmtree(all_out, ignore_errors=True)
    if differ:
        return False, f"identical to the --pairs all run: NO ({', '.join(differ)} differ)"
    return True, (
        "identical to the --pairs all run: yes (pairs.csv's base rows but the 4 columns "
        "adjusted over the table's pairs, every other CSV)"
    )


def run(size: str = "quick", runs: int = 1) -> list[dict]:
    """One whole analysis (``runs`` is the runner's convention; a hub run is timed once)."""
    cfg = SIZES[size]
    spec = spec_for(cfg)
    path = ensure_zoo(zoo_name(cfg), spec)
    gib = cfg["models"] * cfg["examples"] * cfg["classes"] * 2 / 2**30
    out = DATA / f"hub-{zoo_name(cfg)}"
    shutil.rmtree(out, ignore_errors=True)
    load_start = load_average()
    child = _analyze(path, out, ["--pairs", "base", "--verbose"])
    load_end = load_average()
    s = child["summary"]
    checks = []
    ok = child["ok"]
    if ok:
        pairs_rows = len((out / "pairs.csv").read_text().splitlines()) - 1
        right = s.get("pairs") == "base" and pairs_rows == cfg["models"] - 1
        checks.append(f"pairs: {s.get('pairs')}, {pairs_rows:,} pairs.csv rows")
        ok = ok and right
        if cfg["models"] <= COMPARE_UP_TO:
            same, verdict = compare_with_all_pairs(path, out)
            checks.append(verdict)
            ok = ok and same
    checks.append(_detail(child))
    wall = child["wall_s"]
    shape = (
        f"1 base + {cfg['models'] - 1:,} candidates x {cfg['examples']:,} x "
        f"{cfg['classes']:,} float16 ({gib:.1f} GiB), fresh process"
    )
    return [
        row(
            "hub: analyze --pairs base",
            shape,
            ours="zoolens analyze --pairs base (CLI, defaults: 1000 bootstrap resamples, "
            "25 greedy steps over every candidate)",
            ours_s=wall,
            peak_mib=child["peak_mib"],
            target="<= 10 min" if size == "full" else "linear in M; base rows as --pairs all",
            met=ok and (size != "full" or (wall is not None and wall <= 600)),
            check="; ".join(checks),
            notes=f"1 run; load average {load_start} before, {load_end} after",
        )
    ]


def main() -> int:
    say(f"data under {DATA}")
    return module_main("bench_hub", __doc__, SIZES, lambda args: run(args.size))


if __name__ == "__main__":
    raise SystemExit(main())
