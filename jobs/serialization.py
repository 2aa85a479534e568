"""Writes a network module and its config dataclass into RETURNN config code.

The model config is written as an explicit ``repr`` (with imports of every dataclass it contains),
never referenced by name, and the hash covers every field of it, so each model parameter decides the
job id. Values only known once earlier jobs ran (``tk.Variable``: number of speakers, feature
statistics, ...) may sit inside the config: they hash as their path, make the job depend on their
creator, and are written as their values when the worker writes the config file.
"""
from __future__ import annotations

import ast
import dataclasses
import importlib
import importlib.util
import os
from typing import Any, Dict, List, Optional, Set

from ..sisyphus_api import sis_hash_helper
from .returnn_config import instantiate_paths


def _dataclass_types(value: Any, found: Set[type]) -> None:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        found.add(type(value))
        for f in dataclasses.fields(value):
            _dataclass_types(getattr(value, f.name), found)
    elif isinstance(value, dict):
        for k, v in value.items():
            _dataclass_types(k, found)
            _dataclass_types(v, found)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for v in value:
            _dataclass_types(v, found)


def canonical_module(name: str) -> str:
    """Module names as RETURNN imports them: a Sisyphus setup imports recipes as ``recipe.<package>``."""
    return name[len("recipe."):] if name.startswith("recipe.") else name


def _import_path_lines() -> List[str]:
    """Where the package folder carries the package's name (``recipe/<package>`` in a Sisyphus setup), put
    its parent on ``sys.path`` so RETURNN imports it by its canonical name; installed packages need nothing."""
    from .. import PACKAGE_NAME

    package_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if os.path.basename(package_dir) != PACKAGE_NAME:
        return []
    return ["import sys", f"sys.path.insert(0, {os.path.dirname(package_dir)!r})  # not hashed: the checkout"]


def module_top_level_names(module_name: str) -> Set[str]:
    """Names a module defines or imports at its top level, read from its source without importing it."""
    spec = importlib.util.find_spec(module_name)
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        raise ModuleNotFoundError(f"network module {module_name} not found (or not a .py source file)")
    with open(spec.origin) as f:
        tree = ast.parse(f.read(), spec.origin)
    names: Set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def _is_delayed(value: Any) -> bool:
    return hasattr(value, "_sis_hash") and hasattr(value, "get") and hasattr(value, "get_path")


def python_literal(value: Any, name: str) -> str:
    """``repr`` that is checked to rebuild an equal value, so nothing is silently lost in the config."""
    text = repr(value)
    types: Set[type] = set()
    _dataclass_types(value, types)
    scope = {t.__qualname__: t for t in types}
    try:
        rebuilt = eval(text, scope)
    except Exception as exc:
        raise ValueError(f"{name}: repr() of {type(value).__name__} cannot be evaluated back ({exc}): {text[:200]}")
    if rebuilt != value:
        raise ValueError(f"{name}: repr() of {type(value).__name__} does not rebuild an equal value: {text[:200]}")
    return text


@dataclasses.dataclass
class NetworkCode:
    """The part of a RETURNN config that defines the model functions; see :func:`serialize_network`."""

    network_module: str
    model_config: Any
    train: bool = True
    train_step_kwargs: Dict[str, Any] = dataclasses.field(default_factory=dict)
    forward_step_kwargs: Dict[str, Any] = dataclasses.field(default_factory=dict)
    forward_callback: Optional[str] = None
    forward_callback_kwargs: Dict[str, Any] = dataclasses.field(default_factory=dict)
    train_step_name: str = "train_step"
    forward_step_name: str = "forward_step"

    def _sis_hash(self) -> bytes:
        return sis_hash_helper({f.name: getattr(self, f.name) for f in dataclasses.fields(self)})

    def check(self) -> None:
        """The module defines the functions and the callback the config names; read from its source, not imported,
        so that building a graph (e.g. ``sis manager`` on a login node) needs no torch or RETURNN."""
        needed = ["get_model", self.train_step_name if self.train else self.forward_step_name]
        defined = module_top_level_names(self.network_module)
        for name in needed:
            if name not in defined:
                raise AttributeError(f"network module {self.network_module} has no {name}")
        if not self.train and self.forward_callback is not None:
            callback_module, _, callback_name = self._callback_location()
            if callback_name not in module_top_level_names(callback_module):
                raise AttributeError(f"module {callback_module} has no forward callback {callback_name}")

    def _callback_location(self):
        """``"Class"`` lives in the network module; ``"pkg.module.Class"`` anywhere importable."""
        if "." in self.forward_callback:
            module, _, name = self.forward_callback.rpartition(".")
            return module, ".", name
        return self.network_module, ".", self.forward_callback

    def get(self) -> str:
        """The config code; Variables are read here, so call it only once their jobs are finished."""
        values = {
            "model_config": instantiate_paths(self.model_config),
            "train_step_kwargs": instantiate_paths(self.train_step_kwargs),
            "forward_step_kwargs": instantiate_paths(self.forward_step_kwargs),
            "forward_callback_kwargs": instantiate_paths(self.forward_callback_kwargs),
        }
        types: Set[type] = set()
        for value in values.values():
            _dataclass_types(value, types)
        lines: List[str] = ["import functools", *_import_path_lines(), f"import {self.network_module} as network_module"]
        for t in sorted(types, key=lambda t: (t.__module__, t.__qualname__)):
            lines.append(f"from {canonical_module(t.__module__)} import {t.__qualname__}")
        lines.append("")
        lines.append(f"model_config = {python_literal(values['model_config'], 'model_config')}")
        lines.append("get_model = functools.partial(network_module.get_model, config=model_config)")
        if self.train:
            kwargs = python_literal(values["train_step_kwargs"], "train_step_kwargs")
            lines.append(f"train_step = functools.partial(network_module.{self.train_step_name}, **{kwargs})")
        else:
            kwargs = python_literal(values["forward_step_kwargs"], "forward_step_kwargs")
            lines.append(f"forward_step = functools.partial(network_module.{self.forward_step_name}, **{kwargs})")
            if self.forward_callback is not None:
                kwargs = python_literal(values["forward_callback_kwargs"], "forward_callback_kwargs")
                callback_module, _, callback_name = self._callback_location()
                lines.insert(lines.index(f"import {self.network_module} as network_module") + 1,
                             f"from {callback_module} import {callback_name} as ForwardCallback")
                lines.append(f"forward_callback = ForwardCallback(**{kwargs})")
        return "\n".join(lines) + "\n"

    def __str__(self) -> str:
        return self.get()


def serialize_network(network_module: str, model_config: Any, *, train: bool = True, **kwargs: Any) -> NetworkCode:
    """Config code defining ``get_model`` and ``train_step`` (``train=True``) or ``forward_step`` + ``forward_callback``.

    Written into the config: ``get_model = functools.partial(module.get_model, config=<explicit repr>)``,
    ``train_step``/``forward_step`` as partials with the given kwargs, ``forward_callback = module.<Class>(**kw)``.
    Fails here, at graph-build time, if the module lacks a function or a value does not survive ``repr``.
    """
    code = NetworkCode(network_module, model_config, train=train, **kwargs)
    code.check()
    if not any(_is_delayed(v) for v in _walk(code)):
        code.get()  # validates the literals now rather than in the worker
    return code


def _walk(value: Any):
    stack = [value]
    while stack:
        v = stack.pop()
        yield v
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            stack.extend(getattr(v, f.name) for f in dataclasses.fields(v))
        elif isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, (list, tuple)):
            stack.extend(v)
