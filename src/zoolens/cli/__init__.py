"""The ``zoolens`` command line: a thin typer app over zoo/, study/, collect/, report/, demo/.

Each command group lives in its own module (``cli/zoo.py``, ``cli/analyze.py`` …) so the
commands stay small and are developed independently; they all register on the one ``app``
from ``cli/_app.py``. Heavy libraries (torch, matplotlib) are imported inside the commands,
so ``zoolens --help`` is instant.
"""

from __future__ import annotations

from zoolens.cli._app import app, main  # noqa: F401

# Importing a module registers its commands on ``app``.
from zoolens.cli import zoo as _zoo  # noqa: F401,E402
from zoolens.cli import analyze as _analyze  # noqa: F401,E402
from zoolens.cli import probe as _probe  # noqa: F401,E402
from zoolens.cli import collect as _collect  # noqa: F401,E402
from zoolens.cli import soup as _soup  # noqa: F401,E402
from zoolens.cli import demo as _demo  # noqa: F401,E402
from zoolens.cli import report as _report  # noqa: F401,E402
from zoolens.cli import bench as _bench  # noqa: F401,E402
from zoolens.cli import deploy as _deploy  # noqa: F401,E402

__all__ = ["app", "main"]
