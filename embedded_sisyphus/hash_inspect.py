"""What went into a job's hash, as a readable tree, and which hashed values differ between two jobs.

The question users ask when a job id changed unexpectedly. The tree is the exact object the job class' ``hash()``
gives to ``gs.SIS_HASH`` (after ``__sis_hash_exclude__``/``__sis_hash_overwrite__``, with ``__sis_version__``), so it
shows what the hash saw, not the constructor arguments. Inputs show as the id of the job that creates them.

Works on jobs of either engine: jobs of a graph loaded by a config (embedded engine, or the real Sisyphus where the
recipes use it) and ``job.save`` files of a work dir written by either (a real Sisyphus pickle is read with its
``sisyphus.*`` classes mapped onto this engine, so no Sisyphus installation is needed to inspect one).
"""
from __future__ import annotations

import dataclasses
import gzip
import importlib
import inspect
import os
import pickle
import re
import sys
from typing import Any, Dict, Iterator, List, Optional, Tuple

from . import global_settings as gs
from .hash import get_object_state

_WORK_OUTPUT = re.compile(r"(?:^|/)" + "work" + r"/(.+?\.[0-9A-Za-z]{12})/output/(.+)$")
_BASIC = (int, float, bool, str, complex, bytes, type(None))


class _Captured(Exception):
    def __init__(self, obj: Any):
        super().__init__("captured")
        self.obj = obj


def hashed_object(job: Any) -> Any:
    """The object ``type(job).hash(job._sis_kwargs)`` hashes: ``gs.SIS_HASH`` of the job's engine is intercepted."""
    engine_gs = _engine_settings(job)
    original = engine_gs.SIS_HASH

    def capture(obj: Any, *args: Any, **kwargs: Any) -> str:
        raise _Captured(obj)

    engine_gs.SIS_HASH = capture
    try:
        type(job).hash(dict(job._sis_kwargs))
    except _Captured as captured:
        return captured.obj
    finally:
        engine_gs.SIS_HASH = original
    raise RuntimeError(f"{type(job).__name__}.hash() did not call gs.SIS_HASH; its tree cannot be shown")


def _engine_settings(job: Any) -> Any:
    """The ``global_settings`` module of the engine whose ``Job`` this job is."""
    for cls in type(job).__mro__:
        if cls.__name__ == "Job" and cls.__module__.endswith(".job"):
            return importlib.import_module(cls.__module__[: -len(".job")] + ".global_settings")
    return gs


# ------------------------------------------------------------------------------------------------ tree
def _path_label(path: Any) -> str:
    overwrite = getattr(path, "hash_overwrite", None)
    creator = getattr(path, "creator", None)
    if creator is not None:
        text = f"{creator.job_id()}/output/{path.path}"
    else:
        match = _WORK_OUTPUT.search(str(getattr(path, "path", path)))
        text = f"{match.group(1)}/output/{match.group(2)}" if match else f"input {getattr(path, 'path', path)}"
    if overwrite is not None:
        text += f" (hash_overwrite={overwrite!r})"
    return f"{type(path).__name__} {text}"


def _inner_hashed(obj: Any) -> Any:
    """For an object with its own ``_sis_hash`` (e.g. a RETURNN config): what it passes to ``sis_hash_helper``."""
    module = sys.modules.get(type(obj).__module__)
    helper = getattr(module, "sis_hash_helper", None)
    if helper is None:
        return None
    seen: List[Any] = []

    def capture(value: Any) -> bytes:
        seen.append(value)
        raise _Captured(value)

    module.sis_hash_helper = capture
    try:
        obj._sis_hash()
    except _Captured:
        pass
    finally:
        module.sis_hash_helper = helper
    return seen[0] if seen else None


def _node(obj: Any) -> Tuple[str, Any]:
    """``("leaf", text)`` or ``(type label, [(key, child), ...])`` for one hashed value."""
    if hasattr(obj, "_sis_id") and callable(getattr(obj, "job_id", None)):
        return "leaf", f"Job {obj.job_id()}"
    if hasattr(obj, "creator") and hasattr(obj, "path") and hasattr(obj, "_sis_hash"):
        return "leaf", _path_label(obj)
    if isinstance(obj, _BASIC):
        return "leaf", repr(obj)
    if isinstance(obj, dict):
        return ("leaf", "{}") if not obj else ("", [(str(k), obj[k]) for k in sorted(obj, key=repr)])
    if isinstance(obj, (list, tuple)):
        if not obj:
            return "leaf", "[]" if isinstance(obj, list) else "()"
        return "", [(f"[{i}]", v) for i, v in enumerate(obj)]
    if isinstance(obj, (set, frozenset)):
        return ("leaf", "set()") if not obj else ("", [(f"{{{v!r}}}", v) for v in sorted(obj, key=repr)])
    if inspect.isclass(obj) or inspect.isfunction(obj):
        return "leaf", f"{obj.__module__}.{obj.__qualname__}"
    if hasattr(obj, "_sis_hash"):
        inner = _inner_hashed(obj)
        if inner is None:
            return "leaf", f"{type(obj).__name__} (own _sis_hash)"
        label, children = _node(inner)
        return type(obj).__name__, children if label != "leaf" else [("", inner)]
    if dataclasses.is_dataclass(obj):
        state = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    else:
        state = get_object_state(obj)
    label, children = _node(state)
    return type(obj).__name__, children if label != "leaf" else [("", state)]


def tree_items(obj: Any, prefix: str = "") -> Iterator[Tuple[str, str]]:
    """``(dotted key path, leaf text)`` for every leaf of a hashed value (what ``diff`` compares)."""
    label, content = _node(obj)
    if label == "leaf":
        yield prefix, content
        return
    if label:  # a changed type shows in a diff even where the members happen to agree
        yield prefix + "<type>", label
    for key, child in content:
        sep = "" if not prefix or key.startswith("[") or key.startswith("{") or not key else "."
        yield from tree_items(child, prefix + sep + key)


def render_tree(obj: Any, indent: str = "  ") -> List[str]:
    """An indented tree: ``key: value`` for leaves, ``key: <Type>`` above the members of objects."""
    lines: List[str] = []

    def walk(value: Any, key: str, depth: int) -> None:
        label, content = _node(value)
        pad = indent * depth
        if label == "leaf":
            lines.append(f"{pad}{key}: {content}" if key else f"{pad}{content}")
            return
        if key or label:
            lines.append(f"{pad}{key}:" + (f" <{label}>" if label else ""))
            depth += 1
        for child_key, child in content:
            walk(child, child_key, depth)

    walk(obj, "", 0)
    return lines


def format_tree(job: Any) -> str:
    """The job id, class, version and one line per hashed leaf (key path = value)."""
    lines = [f"{job.job_id()}", f"  class {type(job).__module__}.{type(job).__qualname__}"]
    hashed = hashed_object(job)
    version = getattr(type(job), "__sis_version__", None)
    if version is not None:
        lines.append(f"  __sis_version__ = {version!r}")
        hashed = hashed[0]
    excluded = sorted(set(job._sis_kwargs) - set(hashed)) if isinstance(hashed, dict) else []
    if excluded:
        lines.append(f"  not hashed (default of __sis_hash_exclude__, or left out by {type(job).__name__}.hash): "
                     + ", ".join(excluded))
    lines += ["  " + line for line in render_tree(hashed)]
    return "\n".join(lines)


def diff(job_a: Any, job_b: Any) -> List[str]:
    """The hashed values that differ between two jobs of one class (empty: same hash input)."""
    if type(job_a).__qualname__ != type(job_b).__qualname__:
        raise ValueError(f"{job_a.job_id()} and {job_b.job_id()} are jobs of different classes "
                         f"({type(job_a).__qualname__}, {type(job_b).__qualname__}); only jobs of one class compare")
    a, b = dict(tree_items(hashed_object(job_a))), dict(tree_items(hashed_object(job_b)))
    lines = []
    for key in sorted(set(a) | set(b)):
        if a.get(key) != b.get(key):
            lines.append(f"{key}:\n  - {a.get(key, '(absent)')}\n  + {b.get(key, '(absent)')}")
    return lines


# ------------------------------------------------------------------------------------------------ finding jobs
def job_id_of(reference: str) -> str:
    """A job id from an id, a job dir (``work/<id>``, absolute or relative) or an alias link to one."""
    if os.path.islink(reference.rstrip("/")) or os.path.isdir(reference):
        reference = os.path.realpath(reference)
    reference = reference.rstrip("/")
    marker = f"/{gs.WORK_DIR}/"
    if marker in reference:
        reference = reference.split(marker, 1)[1]
    elif reference.startswith(gs.WORK_DIR + "/"):
        reference = reference[len(gs.WORK_DIR) + 1:]
    return reference


class _SisyphusAliasUnpickler(pickle.Unpickler):
    """Reads ``job.save`` files of the real Sisyphus: its ``sisyphus.*`` classes become this engine's."""

    def find_class(self, module: str, name: str) -> Any:
        if module == "sisyphus" or module.startswith("sisyphus."):
            try:
                return super().find_class(module, name)
            except ImportError:
                engine = __package__
                target = engine + module[len("sisyphus"):]
                try:
                    return super().find_class(target, name)
                except (ImportError, AttributeError) as exc:
                    raise ImportError(f"job.save refers to {module}.{name}, which the embedded engine lacks "
                                      f"(install the real Sisyphus to read it)") from exc
        return super().find_class(module, name)


def load_saved_job(job_id: str, base_dir: Optional[str] = None) -> Any:
    """The job pickled in ``work/<id>/job.save`` (by either engine)."""
    path = os.path.join(base_dir or gs.BASE_DIR, gs.WORK_DIR, job_id, gs.JOB_SAVE)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no {path}: give the config that builds the job, or run in the experiment dir")
    with gzip.open(path, "rb") as f:
        return _SisyphusAliasUnpickler(f).load()


def graph_jobs() -> Dict[str, Any]:
    """Every job created so far in this process, by either engine."""
    from .job import created_jobs

    jobs = dict(created_jobs)
    real = sys.modules.get("sisyphus.job")
    if real is not None and real is not sys.modules.get(__package__ + ".job"):
        jobs.update(getattr(real, "created_jobs", {}))
    return jobs
