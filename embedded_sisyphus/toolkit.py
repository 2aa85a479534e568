"""``tk``: the toolkit functions recipe code calls, with Sisyphus' names and semantics."""
from __future__ import annotations

import os
from typing import Any, Optional

from . import global_settings as gs
from .block import block
from .graph import OutputTarget, ReportTarget, sis_graph
from .job_dir import load_job, setup_job_directory
from .job_path import AbstractPath, Path, Variable

__all__ = [
    "Path", "Variable", "AbstractPath", "block", "register_output", "register_report", "setup_path", "input_path",
    "uncached_path", "sis_graph", "run", "running_in_worker", "load_job", "setup_job_directory",
]


def register_output(name: str, value: AbstractPath, export_graph: bool = False) -> None:
    if not isinstance(value, AbstractPath):
        raise TypeError(f"register_output({name!r}) needs a Path from a job or tk.Path, got {type(value).__name__}")
    prefix = gs.ALIAS_AND_OUTPUT_SUBDIR
    sis_graph.add_target(OutputTarget(os.path.join(prefix, name) if prefix else name, value))


def register_report(name: str, values: Any, template: Optional[str] = None, required: Any = None,
                    update_frequency: float = 300) -> ReportTarget:
    """As Sisyphus: ``output/<ALIAS_AND_OUTPUT_SUBDIR + name>``, rewritten every ``update_frequency`` seconds."""
    report = ReportTarget(gs.ALIAS_AND_OUTPUT_SUBDIR + name, values, template, required, update_frequency)
    sis_graph.add_target(report)
    return report


class RelPath:
    """``tk.setup_path(__package__)``: files of a recipe package that hash independent of the checkout."""

    def __init__(self, origin: str, hash_prefix: str):
        self.origin = origin
        self.hash_prefix = hash_prefix

    def __call__(self, path: str, *args: Any, **kwargs: Any) -> Path:
        kwargs.setdefault("hash_overwrite", os.path.join(self.hash_prefix, path))
        return Path(os.path.relpath(os.path.join(self.origin, path)), *args, **kwargs)


def setup_path(package: str) -> RelPath:
    import importlib

    module = importlib.import_module(package)
    origin = os.path.dirname(os.path.abspath(module.__file__))
    return RelPath(origin, package.replace(".", "/"))


def input_path(path: Any) -> AbstractPath:
    return Path(path) if isinstance(path, str) else path


def uncached_path(path: Any) -> str:
    return path.get_path() if isinstance(path, AbstractPath) else str(path)


def running_in_worker() -> bool:
    return bool(getattr(gs, "RUNNING_IN_WORKER", False))


def run(obj: Any, quiet: bool = False, resources: Any = None) -> Any:
    """Script mode: run every job needed for the paths in ``obj``, then return the graph state."""
    from .job import Job, extract_paths
    from .manager import LocalManager

    roots = [obj] if isinstance(obj, Job) else extract_paths(obj)
    return LocalManager(roots, resources=resources).run()
