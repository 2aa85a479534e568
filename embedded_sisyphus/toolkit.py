"""``tk``: the toolkit functions recipe code calls, with Sisyphus' names and semantics."""
from __future__ import annotations

import os
from typing import Any, Optional

from . import global_settings as gs
from .block import block
from .delayed_ops import Delayed
from .graph import OutputPath, ReportTarget, sis_graph
from .job_dir import load_job, setup_job_directory
from .job_path import AbstractPath, Path, Variable

__all__ = [
    "Path", "Variable", "AbstractPath", "block", "register_output", "register_report", "setup_path", "input_path",
    "uncached_path", "sis_graph", "run", "running_in_worker", "load_job", "setup_job_directory", "Delayed", "mktemp",
    "is_path", "zipped",
]


class mktemp:
    """``with tk.mktemp() as name:`` a fresh temporary name (nothing exists there yet); whatever file or directory
    the block creates under it is removed afterwards."""

    def __enter__(self) -> str:
        import tempfile

        handle, self.name = tempfile.mkstemp(prefix="sis_")
        os.close(handle)
        os.remove(self.name)
        return self.name

    def __exit__(self, *exc: Any) -> None:
        import shutil

        if os.path.isdir(self.name) and not os.path.islink(self.name):
            shutil.rmtree(self.name)
        elif os.path.lexists(self.name):
            os.remove(self.name)


def is_path(path: Any) -> bool:
    return isinstance(path, AbstractPath)


def zipped(filename: Any) -> bool:
    """True if the file starts with the gzip magic bytes."""
    with open(uncached_path(filename), "rb") as f:
        return f.read(2) == b"\x1f\x8b"


def register_output(name: str, value: AbstractPath, export_graph: bool = False) -> None:
    if not isinstance(value, AbstractPath):
        raise TypeError(f"register_output({name!r}) needs a Path from a job or tk.Path, got {type(value).__name__}")
    prefix = gs.ALIAS_AND_OUTPUT_SUBDIR
    sis_graph.add_target(OutputPath(os.path.join(prefix, name) if prefix else name, value))


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
