"""The results report of a run: ``output/<prefix>/report/`` with ``results.md``, ``results.csv`` and ``index.html``
(tables, training curves, spectrograms, alignments, audio players), rebuilt while the run goes on.

Fill a ``ReportSpec`` with job outputs and call ``register_report(prefix, spec)``; see ``default_experiment``.
"""
from __future__ import annotations

import os

from ..sisyphus_api import gs, tk
from .page import ReportWriter
from .spec import AudioSource, ReportSpec, flatten_columns

REPORT_FILE = "results.md"


def report_dir(prefix: str) -> str:
    """Where ``register_report(prefix, ...)`` writes, as both engines place ``tk.register_report`` files."""
    return os.path.join(gs.BASE_DIR, gs.OUTPUT_DIR, gs.ALIAS_AND_OUTPUT_SUBDIR + f"{prefix}/report")


def register_report(prefix: str, spec: ReportSpec, update_frequency: float = 30,
                    max_draw_seconds: float = 10) -> ReportWriter:
    """Register the report of ``spec`` under ``output/<prefix>/report/``. It is written by the manager at start,
    every ``update_frequency`` seconds (cheap when nothing changed: figures are only redrawn from new inputs),
    once all values exist, and at the end (embedded engine); under real Sisyphus as that manager updates
    reports. One update draws figures for at most ``max_draw_seconds`` (the rest follow at the next update), so
    the manager is never held up long. Returns the writer (``writer()`` builds the report right away)."""
    writer = ReportWriter(spec, report_dir(prefix), max_draw_seconds)
    tk.register_report(f"{prefix}/report/{REPORT_FILE}", writer, required=spec.required_paths(),
                       update_frequency=update_frequency)
    return writer


__all__ = ["AudioSource", "ReportSpec", "ReportWriter", "flatten_columns", "register_report", "report_dir"]
