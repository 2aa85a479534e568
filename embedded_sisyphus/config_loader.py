"""Loads setup configs the way ``sis manager CONFIG`` does (sisyphus/loader.py)."""
from __future__ import annotations

import ast
import asyncio
import importlib
import inspect
import logging
import os
import sys
from typing import List, Sequence

log = logging.getLogger("embedded_sisyphus")


def _split_call(name: str):
    if name.endswith(")") and "(" in name:
        base, arg_text = name[: name.index("(")], name[name.index("(") :]
        args = ast.literal_eval(arg_text[:-1] + ",)") if arg_text != "()" else ()
        return base, tuple(args)
    return name, None


def load_config(name: str) -> None:
    """``config.py`` -> ``config.py()``; ``config/exp.py`` -> ``config.exp.py()``; ``pkg.mod.func(1)``."""
    base, args = _split_call(name)
    if base.endswith(".py"):
        module_name, function_name, explicit = base[:-3].replace(os.sep, "."), "py", False
    else:
        module_name, _, function_name = base.rpartition(".")
        explicit = True
        if not module_name:
            module_name, function_name, explicit = base, "py", False
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    module = importlib.import_module(module_name)
    function = getattr(module, function_name, None)
    if function is None:
        if explicit:
            raise AttributeError(f"config {name!r}: module {module_name} has no function {function_name!r}")
        log.warning("config %s has no %s(); importing it was all", name, function_name)
        return
    result = function(*(args or ()))
    if inspect.iscoroutine(result):
        asyncio.run(result)


def default_configs() -> List[str]:
    if os.path.isfile("config.py"):
        return ["config.py"]
    if os.path.isdir("config"):
        return ["config.main"]
    raise FileNotFoundError("no config given and neither config.py nor config/ exists in " + os.getcwd())


def load_configs(names: Sequence[str]) -> None:
    for name in names or default_configs():
        load_config(name)
