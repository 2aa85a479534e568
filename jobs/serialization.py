"""Writes a network module and its config dataclass into RETURNN config code.

The model config is written as its ``repr`` (with imports of every dataclass it contains) rather than
referenced by name, so the config text, and with it the training job's hash, changes with every
model parameter. The model code itself is imported from this package at run time.
"""
from __future__ import annotations

import dataclasses
import importlib
from typing import Any, Dict, List, Optional, Set


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


def serialize_network(
    network_module: str,
    model_config: Any,
    *,
    train_step_kwargs: Optional[Dict[str, Any]] = None,
    forward_step_kwargs: Optional[Dict[str, Any]] = None,
    forward_callback: Optional[str] = None,
    forward_callback_kwargs: Optional[Dict[str, Any]] = None,
    train: bool = True,
    forward_step_name: str = "forward_step",
    train_step_name: str = "train_step",
) -> str:
    """Config code that defines ``get_model``, ``train_step`` and/or ``forward_step`` + ``forward_callback``."""
    module = importlib.import_module(network_module)
    for needed in ["get_model"] + ([train_step_name] if train else [forward_step_name]):
        if not hasattr(module, needed):
            raise AttributeError(f"network module {network_module} has no {needed}()")
    if forward_callback is not None and not hasattr(module, forward_callback):
        raise AttributeError(f"network module {network_module} has no forward callback {forward_callback}")

    values = {"model_config": model_config, "train_step_kwargs": train_step_kwargs or {},
              "forward_step_kwargs": forward_step_kwargs or {}, "forward_callback_kwargs": forward_callback_kwargs or {}}
    types: Set[type] = set()
    for value in values.values():
        _dataclass_types(value, types)
    lines: List[str] = ["import functools", f"import {network_module} as network_module"]
    for t in sorted(types, key=lambda t: (t.__module__, t.__qualname__)):
        lines.append(f"from {t.__module__} import {t.__qualname__}")
    lines.append("")
    lines.append(f"model_config = {python_literal(model_config, 'model_config')}")
    lines.append("get_model = functools.partial(network_module.get_model, config=model_config)")
    if train:
        kwargs = python_literal(values["train_step_kwargs"], "train_step_kwargs")
        lines.append(f"train_step = functools.partial(network_module.{train_step_name}, **{kwargs})")
    else:
        kwargs = python_literal(values["forward_step_kwargs"], "forward_step_kwargs")
        lines.append(f"forward_step = functools.partial(network_module.{forward_step_name}, **{kwargs})")
        if forward_callback is not None:
            kwargs = python_literal(values["forward_callback_kwargs"], "forward_callback_kwargs")
            lines.append(f"forward_callback = network_module.{forward_callback}(**{kwargs})")
    return "\n".join(lines) + "\n"
