"""The embedded Sisyphus-compatible engine for one machine; use real Sisyphus on clusters.

It implements the part of rwth-i6/sisyphus that recipes touch (``Job``, ``Task``, ``tk``, ``gs``) with
byte-identical hashes, job ids and work-directory layout, plus a local manager that runs a graph on
this machine. Recipe code never imports it directly: it imports ``sisyphus_api``, which prefers the
real package when that is installed.
"""
from . import global_settings as gs
from . import toolkit as tk
from .job import Job, created_jobs
from .job_path import Path, Variable
from .task import Task


def reset_graph() -> None:
    """Forget all jobs and targets (a fresh config load; used by tests and the CLI)."""
    created_jobs.clear()
    tk.sis_graph.clear()


__all__ = ["Job", "Task", "Path", "Variable", "gs", "tk", "reset_graph"]
