"""A RETURNN config as a hashable object, written to a runnable ``#!rnn.py`` file by a job.

Hash = ``{"returnn_config": config, "python_epilog_hash": ..., "python_prolog_hash": ...}`` exactly as
i6_core's ``ReturnnConfig``: ``post_config`` (device, logging, epochs to keep, ...) never changes a job id.
The model code goes into the epilog as text (see :mod:`.serialization`), so every model parameter is hashed.
"""
from __future__ import annotations

import copy
import dataclasses
import inspect
import os
import pprint
import textwrap
from typing import Any, Dict, List, Optional, Union

from ..sisyphus_api import DelayedBase, sis_hash_helper

Code = Union[str, List[str], None]


def instantiate_paths(value: Any) -> Any:
    """Paths become the plain strings RETURNN reads, Variables their values, checkpoints their file names,
    inside dicts, lists, tuples and (frozen) dataclasses alike; called in the worker, at write time."""
    if hasattr(value, "get_path") and hasattr(value, "_sis_hash"):
        return value.get() if hasattr(value, "get") else value.get_path()
    if isinstance(value, DelayedBase):  # e.g. DelayedFormat("{}/model", path), var + 1 (i6-style configs)
        return value.get()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {f.name: instantiate_paths(getattr(value, f.name)) for f in dataclasses.fields(value) if f.init}
        return dataclasses.replace(value, **changes)
    if isinstance(value, dict):
        return type(value)((k, instantiate_paths(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)) and not hasattr(value, "_fields"):
        return type(value)(instantiate_paths(v) for v in value)
    return value


def _code_text(code: Code) -> str:
    if code is None:
        return ""
    if isinstance(code, str):
        return textwrap.dedent(code)
    if isinstance(code, (list, tuple)):
        return "\n".join(_code_text(c) for c in code)
    if inspect.isfunction(code) or inspect.isclass(code):
        return inspect.getsource(code)
    if hasattr(code, "get") and callable(code.get):  # e.g. serialization.NetworkCode
        return code.get()
    raise TypeError(f"python prolog/epilog must be str, list, function or class, got {type(code).__name__}")


class ReturnnConfig:
    def __init__(
        self,
        config: Dict[str, Any],
        post_config: Optional[Dict[str, Any]] = None,
        *,
        python_prolog: Code = None,
        python_prolog_hash: Any = None,
        python_epilog: Code = "",
        python_epilog_hash: Any = None,
        sort_config: bool = True,
    ):
        self.config = dict(config)
        self.post_config = dict(post_config or {})
        self.python_prolog = python_prolog
        self.python_prolog_hash = python_prolog if python_prolog_hash is None else python_prolog_hash
        self.python_epilog = python_epilog
        self.python_epilog_hash = python_epilog if python_epilog_hash is None else python_epilog_hash
        self.sort_config = sort_config
        self.check_consistency()

    def check_consistency(self) -> None:
        both = set(self.config) & set(self.post_config)
        if both:
            raise ValueError(f"RETURNN config keys {sorted(both)} are in both config and post_config")

    def _sis_hash(self) -> bytes:
        return sis_hash_helper(
            {
                "returnn_config": self.config,
                "python_epilog_hash": self.python_epilog_hash,
                "python_prolog_hash": self.python_prolog_hash,
            }
        )

    def get(self, key: str, default: Any = None) -> Any:
        if key in self.post_config:
            return self.post_config[key]
        return self.config.get(key, default)

    def update(self, other: "ReturnnConfig") -> None:
        self.config.update(copy.deepcopy(other.config))
        self.post_config.update(copy.deepcopy(other.post_config))
        self.python_prolog = _join(self.python_prolog, other.python_prolog)
        self.python_prolog_hash = _join(self.python_prolog_hash, other.python_prolog_hash)
        self.python_epilog = _join(self.python_epilog, other.python_epilog)
        self.python_epilog_hash = _join(self.python_epilog_hash, other.python_epilog_hash)
        self.check_consistency()

    def serialize(self) -> str:
        merged = {**self.config, **self.post_config}
        keys = sorted(merged) if self.sort_config else list(merged)
        lines = ["#!rnn.py", "", _code_text(self.python_prolog), ""]
        for key in keys:
            value = instantiate_paths(merged[key])
            if not pprint.isreadable(value):
                raise ValueError(f"RETURNN config value for {key!r} cannot be written as Python: {value!r}")
            lines.append(f"{key} = {pprint.pformat(value, indent=2, width=150)}")
        lines += ["", _code_text(self.python_epilog), ""]
        return "\n".join(lines)

    def write(self, path: str) -> None:
        text = self.serialize()
        compile(text, path, "exec")  # a syntax error is reported here, naming the file, not inside RETURNN
        tmp = f"{path}.tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, path)


def _join(a: Any, b: Any) -> Any:
    if not a:
        return b
    if not b:
        return a
    if isinstance(a, str) and isinstance(b, str):
        return a + "\n" + b
    return list(a if isinstance(a, list) else [a]) + list(b if isinstance(b, list) else [b])
