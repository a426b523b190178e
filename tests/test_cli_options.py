"""Options several commands take are declared once (``zoolens.cli.options``): each command that
takes one shows the same flag, help text, value range and metavar, so the texts cannot drift
apart again (before, --pool, --combine, --no-calibration, --folds, --batch-size, --threads, --ray-address and
--strict each had two wordings)."""

from __future__ import annotations

import pytest
import typer.main

from zoolens.cli import app

SHARED = [
    ("--pool", ("analyze", "ensemble")),
    ("--max-steps", ("analyze", "ensemble")),
    ("--combine", ("analyze", "ensemble")),
    ("--no-calibration", ("analyze", "ensemble")),
    ("--folds", ("analyze", "ensemble")),
    ("--batch-size", ("collect", "predict")),
    ("--device", ("collect", "predict")),
    ("--amp", ("collect", "predict")),
    ("--threads", ("collect", "predict")),
    ("--strict", ("collect", "predict")),
    ("--create", ("collect", "predict")),
    ("--ray-address", ("analyze", "collect", "predict")),
    ("zoo", ("info", "remove", "verify", "ensemble")),
]


def _param(command: str, flag: str):
    params = typer.main.get_command(app).commands[command].params  # type: ignore[attr-defined]
    found = [p for p in params if flag in p.opts or p.name == flag]
    assert len(found) == 1, f"{command} has no single {flag}"
    return found[0]


@pytest.mark.parametrize("flag, commands", SHARED, ids=[flag for flag, _ in SHARED])
def test_a_shared_option_reads_the_same_in_every_command(flag, commands):
    seen = {
        command: (p.opts, p.secondary_opts, p.help, p.metavar, getattr(p, "min", None))
        for command in commands
        for p in [_param(command, flag)]
    }
    first = seen[commands[0]]
    assert first[2], f"{flag} has no help text"
    assert all(value == first for value in seen.values()), seen
