"""The one place recipe code gets the Sisyphus API from.

Under the real Sisyphus (rwth-i6/sisyphus, e.g. ``sis manager`` on a cluster with SLURM/SGE) this is
the real package; everywhere else it is the embedded single-machine engine, which gives the same
job ids and work-directory layout. Note: PyPI's ``sisyphus`` is an unrelated project, recognised and
ignored here.
"""
from __future__ import annotations

import importlib
import sys


def _real_sisyphus():
    try:
        import sisyphus
        from sisyphus import Job, Task, gs, tk  # noqa: F401
        import sisyphus.job  # noqa: F401  (the workflow manager has this module; the PyPI namesake has not)
    except Exception:
        return None
    return sisyphus


def _embedded_engine():
    """The embedded engine, one copy per process whatever name the recipes were imported under.

    A config may import the recipes as ``recipe.<package>`` (real Sisyphus' layout) while ``sis-local`` runs the engine
    as ``<package>.embedded_sisyphus``: the relative import would then load a second engine whose graph the command
    never sees (it found 0 jobs). So an engine copy that is already running wins.
    """
    from . import PACKAGE_NAME

    for name in (f"{PACKAGE_NAME}.embedded_sisyphus", f"recipe.{PACKAGE_NAME}.embedded_sisyphus"):
        module = sys.modules.get(name)
        if module is not None and hasattr(module, "reset_graph"):  # fully imported
            return module
    return importlib.import_module(".embedded_sisyphus", __package__)


_real = _real_sisyphus()
if _real is not None:
    from sisyphus import Job, Task, gs, tk  # type: ignore
    from sisyphus.hash import sis_hash_helper  # type: ignore
    from sisyphus.delayed_ops import DelayedBase  # type: ignore

    USING_REAL_SISYPHUS = True
else:
    _engine = _embedded_engine()
    Job, Task, gs, tk = _engine.Job, _engine.Task, _engine.gs, _engine.tk
    sis_hash_helper = _engine.hash.sis_hash_helper
    DelayedBase = importlib.import_module(_engine.__name__ + ".delayed_ops").DelayedBase

    USING_REAL_SISYPHUS = False

Path = tk.Path
Variable = tk.Variable

__all__ = ["Job", "Task", "tk", "gs", "Path", "Variable", "DelayedBase", "sis_hash_helper", "USING_REAL_SISYPHUS"]
