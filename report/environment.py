"""Where the results come from (as ESPnet and icefall record it): commit, package versions, machine, command."""
from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from typing import List

_PACKAGES = ("torch", "returnn", "numpy")


def _commit(directory: str) -> str:
    try:
        commit = subprocess.run(["git", "-C", directory, "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", directory, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown (no git)"
    return (commit + (" with uncommitted changes" if dirty else "")) if commit else "unknown (not a git checkout)"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def describe_environment() -> List[str]:
    """A few lines for the top of the report (computed once per manager, when the report is registered)."""
    package_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    versions = ", ".join(f"{p} {_version(p)}" for p in _PACKAGES)
    return [f"Recipe commit: {_commit(package_dir)}",
            f"Python {platform.python_version()}, {versions}; host {platform.node()}",
            f"Command: {' '.join(sys.argv)} (started {time.strftime('%Y-%m-%d %H:%M:%S')})"]
