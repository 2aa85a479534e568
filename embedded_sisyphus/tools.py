"""``sisyphus.tools`` helpers that recipes use: ``try_get``, ``sis_hash``, ``extract_paths``, ``execute_in_dir``,
``sh``, ``hardlink_or_copy``, ``str_to_GB``, ``str_to_hours``."""
from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any, Optional, Set

from . import global_settings as gs
from .delayed_ops import try_get

__all__ = ["try_get", "sis_hash", "extract_paths", "execute_in_dir", "sh", "hardlink_or_copy", "str_to_GB",
           "str_to_hours"]


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
