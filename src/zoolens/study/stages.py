"""The stages of ``zoolens analyze``, named once, and their timer.

``STAGES`` is the one list: ``study.analyze`` runs its stages by these names (each a
function of ``study.analyze`` named ``stage_<name>``), summary.json's ``timings_s`` records
them in this order, ``zoolens analyze --verbose`` lists them in its help and prints them,
and ``benchmarks/bench_analyze.py`` reports them. Standard library only: the CLI imports
it for its help text.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

__all__ = ["OPTIONAL_STAGES", "STAGES", "StageTimer", "describe"]

STAGES: tuple[str, ...] = (
    "inputs",
    "temperatures",
    "selection",
    "evaluation",
    "tables",
    "interpolation",
    "drilldown",
    "greedy",
    "headline",
    "shift",
    "write",
)
# Stages that run only when asked for: shift with --shift.
OPTIONAL_STAGES: frozenset[str] = frozenset({"shift"})


class StageTimer:
    """Wall time of each stage (seconds, in the order run); only names of ``STAGES``."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.timings: dict[str, float] = {}
        self._running: tuple[str, float] | None = None

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        if name not in STAGES:
            raise ValueError(f"{name!r} is not a stage of analyze ({', '.join(STAGES)})")
        began = time.perf_counter()
        self._running = (name, began)
        try:
            yield
        finally:
            self._running = None
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - began

    def rounded(self) -> dict[str, float]:
        """The timings so far, the running stage's included up to now."""
        timings = dict(self.timings)
        if self._running is not None:
            name, began = self._running
            timings[name] = timings.get(name, 0.0) + time.perf_counter() - began
        return {name: round(seconds, 3) for name, seconds in timings.items()}

    def elapsed(self) -> float:
        """Wall time since the timer started (the stages' sum, give or take the moments
        between two stages)."""
        return time.perf_counter() - self.started


def describe() -> str:
    """The stage list as the CLI's help names it."""
    optional = ", ".join(f"{name} only with --{name}" for name in sorted(OPTIONAL_STAGES))
    return f"{', '.join(STAGES)} ({optional})"
