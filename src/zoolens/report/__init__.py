"""The report: the paper's figures and tables for one results folder, as one HTML file.

``build_report(results_dir, out_path, png_dir=None)`` reads the tables written by
``zoolens analyze`` / ``zoolens probe`` (never the zoo itself: this package imports neither
``zoolens.study`` nor ``zoolens.zoo``) and writes a self-contained HTML page.
Modules: ``tables`` (read and check the tables), ``figures`` (one function per paper figure,
each returning the figure and the numbers it plotted), ``html`` (the page).
"""

from __future__ import annotations

__all__ = ["build_report", "load_results", "ReportResult", "Results"]


def __getattr__(name: str):
    # Lazy: importing zoolens.report stays cheap (pandas/matplotlib load on first use).
    if name in ("build_report", "ReportResult"):
        from zoolens.report import html

        return getattr(html, name)
    if name in ("load_results", "Results"):
        from zoolens.report import tables

        return getattr(tables, name)
    raise AttributeError(f"module 'zoolens.report' has no attribute {name!r}")
