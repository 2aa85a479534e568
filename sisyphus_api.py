"""The one place recipe code gets the Sisyphus API from.

Under the real Sisyphus (rwth-i6/sisyphus, e.g. ``sis manager`` on a cluster with SLURM/SGE) this is
the real package; everywhere else it is the embedded single-machine engine, which gives the same
job ids and work-directory layout. Note: PyPI's ``sisyphus`` is an unrelated project, recognised and
ignored here.
"""
from __future__ import annotations


def _real_sisyphus():
    try:
        import sisyphus
        from sisyphus import Job, Task, gs, tk  # noqa: F401
        import sisyphus.job  # noqa: F401  (the workflow manager has this module; the PyPI namesake has not)
    except Exception:
        return None
    return sisyphus


_real = _real_sisyphus()
if _real is not None:
    from sisyphus import Job, Task, gs, tk  # type: ignore
    from sisyphus.hash import sis_hash_helper  # type: ignore

    USING_REAL_SISYPHUS = True
else:
    from .embedded_sisyphus import Job, Task, gs, tk
    from .embedded_sisyphus.hash import sis_hash_helper

    USING_REAL_SISYPHUS = False

Path = tk.Path
Variable = tk.Variable

__all__ = ["Job", "Task", "tk", "gs", "Path", "Variable", "sis_hash_helper", "USING_REAL_SISYPHUS"]
