"""CLI commands of this group (registered on the shared app)."""

from __future__ import annotations

from zoolens.cli._app import app, handle_errors  # noqa: F401
