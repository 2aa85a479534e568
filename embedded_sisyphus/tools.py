"""``sisyphus.tools`` helpers that recipes use: ``try_get``, ``sis_hash``, ``extract_paths``, ``execute_in_dir``,
``sh``, ``hardlink_or_copy``, ``str_to_GB``, ``str_to_hours``, ``cache_result``, ``finished_results_cache``."""
from __future__ import annotations

import functools
import os
import pickle
import shutil
import subprocess
import time
from typing import Any, Callable, Dict, Optional, Set, Tuple

from . import global_settings as gs
from .delayed_ops import try_get

__all__ = ["try_get", "sis_hash", "extract_paths", "execute_in_dir", "sh", "hardlink_or_copy", "str_to_GB",
           "str_to_hours", "cache_result", "finished_results_cache"]


def sis_hash(obj: Any) -> str:
    """The short hash a job id ends with (``gs.SIS_HASH``)."""
    return gs.SIS_HASH(obj)


def extract_paths(args: Any) -> Set[Any]:
    """Every path inside ``args`` (a set, as in Sisyphus)."""
    from .job import extract_paths as _extract

    return set(_extract(args))


class execute_in_dir:
    """``with execute_in_dir(d):`` run the block with ``d`` as working directory."""

    def __init__(self, workdir: str):
        self.workdir = workdir

    def __enter__(self) -> str:
        self.previous = os.getcwd()
        os.chdir(self.workdir)
        return self.workdir

    def __exit__(self, *exc: Any) -> None:
        os.chdir(self.previous)


def sh(command: str, capture_output: bool = False, pipefail: bool = True, except_return_codes=(0,),
       sis_quiet: bool = False, sis_replace: Optional[dict] = None, include_stderr: bool = False,
       **kwargs: Any) -> Optional[str]:
    """Run ``command`` (``str.format``-ed with ``kwargs``) in bash, failing on an unexpected exit status."""
    command = command.format(**kwargs)
    for old, new in (sis_replace or {}).items():
        command = command.replace(old, new)
    full = ["/bin/bash", "-c", ("set -ueo pipefail && " if pipefail else "") + command]
    result = subprocess.run(full, stdout=subprocess.PIPE if capture_output else None,
                            stderr=subprocess.STDOUT if capture_output and include_stderr else None)
    if result.returncode not in except_return_codes:
        raise subprocess.CalledProcessError(result.returncode, command)
    return result.stdout.decode() if capture_output else None


def hardlink_or_copy(src: str, dst: str, use_symlink_instead_of_copy: bool = False) -> None:
    """A hard link where the file system allows it, else a symlink (if asked) or a copy."""
    try:
        os.link(src, dst)
    except OSError:
        if use_symlink_instead_of_copy:
            os.symlink(src, dst)
        elif os.path.isdir(src):
            shutil.copytree(src, dst)
        else:
            shutil.copy2(src, dst)


def str_to_GB(value: Any) -> float:
    """``"4G"``, ``"512M"``, ``"1T"`` or a number (GB) as GB."""
    from .task import _parse_mem

    return _parse_mem(value)


def str_to_hours(value: Any) -> float:
    """``"HH:MM:SS"``, ``"MM:SS"`` or a number (hours) as hours."""
    if isinstance(value, str) and ":" in value:
        parts = [float(p) for p in value.split(":")]
        while len(parts) < 3:
            parts.insert(0, 0.0)
        return parts[0] + parts[1] / 60 + parts[2] / 3600
    return float(value)


class cache_result:
    """Decorator: remember a function's result per arguments for ``cache_time`` seconds (Sisyphus' signature).

    ``force_update``: name of a keyword argument that, when true, recomputes (and is not passed on);
    ``clear_cache``: name of a keyword argument whose presence empties the cache (the call returns None).
    Arguments are told apart by their ``repr``, so unhashable arguments work too.
    """

    def __init__(self, cache_time: float = 30, force_update: Optional[str] = None,
                 clear_cache: Optional[str] = None):
        self.cache_time, self.force_update, self.clear_cache = cache_time, force_update, clear_cache
        self.entries: Dict[str, Tuple[float, Any]] = {}

    def __call__(self, func: Callable) -> Callable:
        @functools.wraps(func)
        def cached(*args: Any, **kwargs: Any) -> Any:
            if self.clear_cache and self.clear_cache in kwargs:
                self.entries.clear()
                return None
            force = bool(kwargs.pop(self.force_update, False)) if self.force_update else False
            key = repr((args, sorted(kwargs.items())))
            hit = self.entries.get(key)
            if force or hit is None or time.time() - hit[0] > self.cache_time:
                hit = (time.time(), func(*args, **kwargs))
                self.entries[key] = hit
            return hit[1]

        return cached


class FinishedResultsCache:
    """Answers that cannot change once true ("job X is finished", "path Y is available"), kept in memory and, with
    ``gs.CACHE_FINISHED_RESULTS``, in ``gs.CACHE_FINISHED_RESULTS_PATH`` between manager starts (Sisyphus' API)."""

    def __init__(self) -> None:
        self.results: Dict[Any, Any] = {}

    def __getitem__(self, key: Any) -> Any:
        return self.results.get(key)

    def __setitem__(self, key: Any, value: Any) -> None:
        self.results[key] = value

    def reset(self) -> None:
        self.results.clear()

    def read_from_file(self) -> None:
        if gs.CACHE_FINISHED_RESULTS and os.path.isfile(gs.CACHE_FINISHED_RESULTS_PATH):
            with open(gs.CACHE_FINISHED_RESULTS_PATH, "rb") as f:
                self.results.update(pickle.load(f))

    def write_to_file(self) -> None:
        if gs.CACHE_FINISHED_RESULTS:
            tmp = gs.CACHE_FINISHED_RESULTS_PATH + ".tmp"
            with open(tmp, "wb") as f:
                pickle.dump(self.results, f)
            os.replace(tmp, gs.CACHE_FINISHED_RESULTS_PATH)

    def caching(self, get_key: Callable = lambda x: x,
                cache_if: Callable = lambda result, *args, **kwargs: result is True) -> Callable:
        """Decorator: return a remembered result for ``get_key(*args, **kwargs)`` if there is one (only while
        ``gs.CACHE_FINISHED_RESULTS``), else call and remember results that ``cache_if`` accepts."""
        def decorator(func: Callable) -> Callable:
            @functools.wraps(func)
            def cached(*args: Any, **kwargs: Any) -> Any:
                if not gs.CACHE_FINISHED_RESULTS:
                    return func(*args, **kwargs)
                key = get_key(*args, **kwargs)
                if key in self.results:
                    return self.results[key]
                result = func(*args, **kwargs)
                if cache_if(result, *args, **kwargs):
                    self.results[key] = result
                return result

            return cached

        return decorator


finished_results_cache = FinishedResultsCache()
