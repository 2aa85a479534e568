"""Paths and variables as Sisyphus defines them: a file name plus the job that creates it.

A path hashes as ``(creator id + "/output", relative path)`` (or ``(None, path)`` for inputs), never
by where the work directory lives, so the same graph has the same ids on every machine.
"""
from __future__ import annotations

import ast
import gzip
import os
import pickle
from typing import Any, Optional

from . import global_settings as gs
from .delayed_ops import DelayedBase
from .hash import sis_hash_helper


_SPECIAL_FLOATS = {"nan": float("nan"), "inf": float("inf")}


def literal_value(text: str) -> Any:
    """A value written as ``repr`` (``Variable.set``): ``ast.literal_eval`` plus the names ``nan`` and ``inf``
    that ``repr`` of a float can produce. Nothing is executed: a Variable file is data, not code."""
    tree = ast.parse(text.strip(), mode="eval")

    class _Specials(ast.NodeTransformer):
        def visit_Name(self, node: ast.Name) -> ast.AST:
            if node.id in _SPECIAL_FLOATS:
                return ast.copy_location(ast.Constant(_SPECIAL_FLOATS[node.id]), node)
            return node

    return ast.literal_eval(_Specials().visit(tree))


class _NoBackup:
    def __repr__(self) -> str:
        return "NoBackup"

    def __reduce__(self) -> str:  # unpickles as the module's singleton, so ``backup is NoBackup`` still holds
        return "NoBackup"


NoBackup = _NoBackup()


def _creator_hash_value(creator: Any) -> Any:
    """What a path's hash says about its creator: ``<job id>/output`` for a job; any other creator object (duck-typed,
    e.g. a test double with ``_sis_path``) is hashed as itself, as Sisyphus does."""
    if creator is None:
        return None
    if hasattr(creator, "_sis_id"):
        return f"{creator._sis_id()}/{gs.JOB_OUTPUT}"
    return creator


def _creator_location(creator: Any) -> Optional[str]:
    """The creator's output folder relative to the base dir (``work/<job id>/output``), None for an input file."""
    if creator is None:
        return None
    if hasattr(creator, "_sis_id"):
        return os.path.join(gs.WORK_DIR, creator._sis_id(), gs.JOB_OUTPUT)
    return creator._sis_path(gs.JOB_OUTPUT)


class AbstractPath(DelayedBase):
    """As in Sisyphus a delayed value (``path + "x"``, ``var * 2``, ``DelayedFormat("{}", path)``)."""

    def __init__(
        self,
        path: str,
        creator: Any = None,
        cached: bool = False,
        hash_overwrite: Any = None,
        tags: Optional[set] = None,
        available: Any = None,
    ):
        if not isinstance(path, str):
            raise TypeError(f"Path needs a str, got {type(path).__name__}: {path!r}")
        self.path = path
        self.creator = creator
        self.cached = cached
        self.hash_overwrite = hash_overwrite
        self._tags = tags
        self._available = available

    # ----- identity
    def _sis_hash(self) -> bytes:
        if self.hash_overwrite is None:
            creator = _creator_hash_value(self.creator)
            path = self.path
        else:
            overwrite = self.hash_overwrite
            if isinstance(overwrite, str):
                overwrite = (None, overwrite)
            assert isinstance(overwrite, tuple) and len(overwrite) == 2, f"bad hash_overwrite {overwrite!r}"
            creator, path = overwrite
            if hasattr(creator, "_sis_id"):
                creator = f"{creator._sis_id()}/{gs.JOB_OUTPUT}"
        return b"(Path, " + sis_hash_helper((creator, path)) + b")"

    def _key(self) -> tuple:
        return type(self).__name__, _creator_location(self.creator), self.path

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, AbstractPath) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __lt__(self, other: "AbstractPath") -> bool:
        return self.get_path() < other.get_path()

    # ----- location
    def get_path(self) -> str:
        if self.creator is not None:
            return os.path.join(gs.BASE_DIR, _creator_location(self.creator), self.path)
        return os.path.join(gs.BASE_DIR, self.path)  # join keeps absolute paths as they are

    def get_cached_path(self) -> str:
        return self.get_path()

    def rel_path(self) -> str:
        return os.path.relpath(self.get_path(), gs.BASE_DIR)

    def get(self) -> str:
        return self.get_path()

    def __str__(self) -> str:
        return self.get_cached_path()

    def __fspath__(self) -> str:
        return self.get_cached_path()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.get_path()}>"

    # ----- state
    def available(self, debug_info: Any = None) -> bool:
        if self._available is not None:
            return bool(self._available(self))
        if self.creator is None:
            return os.path.exists(self.get_path())
        return self.creator.path_available(self)

    def is_set(self) -> bool:
        return self.available()

    @property
    def tags(self) -> set:
        if self._tags is not None:
            return self._tags
        return set(getattr(self.creator, "tags", set()) or set())

    # ----- derived paths
    def copy(self) -> "AbstractPath":
        new = type(self).__new__(type(self))
        new.__dict__.update(self.__dict__)
        return new

    def copy_append(self, suffix: str) -> "AbstractPath":
        new = self.copy()
        new.path = self.path + suffix
        if isinstance(new.hash_overwrite, str):
            new.hash_overwrite = new.hash_overwrite + suffix
        elif isinstance(new.hash_overwrite, tuple):
            new.hash_overwrite = (new.hash_overwrite[0], new.hash_overwrite[1] + suffix)
        return new

    def join_right(self, other: str) -> "AbstractPath":
        return self.copy_append("/" + other)

    # ----- pickling into job.save: as in Sisyphus the creator is left out (unless gs.INCLUDE_CREATOR_STATE) and the
    # path made absolute, so a worker unpickles one job, not the graph above it; everything else is kept
    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        if not gs.INCLUDE_CREATOR_STATE:
            state["path"] = self.get_path()
            state["creator"] = None
        return state

    def __deepcopy__(self, memo: dict) -> "AbstractPath":
        new = self.copy()
        memo[id(self)] = new
        return new


class Path(AbstractPath):
    pass


class Variable(AbstractPath):
    """A job output holding one Python value, written as ``repr(value)`` (or a gzip pickle)."""

    def __init__(self, path: str, creator: Any = None, pickle: bool = False, backup: Any = NoBackup, **kwargs):
        super().__init__(path, creator=creator, **kwargs)
        self.pickle = pickle
        self.backup = backup

    def get(self) -> Any:
        if not os.path.isfile(self.get_path()):
            if self.backup is NoBackup:
                raise FileNotFoundError(f"Variable {self.get_path()} is not set yet")
            return self.backup
        if self.pickle:
            with gzip.open(self.get_path(), "rb") as f:
                return pickle.load(f)
        with open(self.get_path()) as f:
            text = f.read()
        try:
            return literal_value(text)
        except (ValueError, SyntaxError) as exc:
            raise ValueError(f"Variable {self.get_path()} does not hold a Python literal ({exc}): {text[:200]!r}")

    def set(self, value: Any) -> None:
        os.makedirs(os.path.dirname(self.get_path()), exist_ok=True)
        tmp = self.get_path() + ".tmp"
        if self.pickle:
            with gzip.open(tmp, "wb") as f:
                pickle.dump(value, f)
        else:
            with open(tmp, "w") as f:
                f.write(f"{value!r}\n")
        os.replace(tmp, self.get_path())

    def is_set(self) -> bool:
        return os.path.isfile(self.get_path())

    def __repr__(self) -> str:
        value = self.get() if self.is_set() else None
        return f"<Variable {self.get_path()} {value}>"
