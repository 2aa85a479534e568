"""``tk.block``: groups the jobs created inside it, for overviews (as in Sisyphus)."""
from __future__ import annotations

import functools
from typing import Any, Callable, List


_stack: List["Block"] = []


def active_blocks() -> List["Block"]:
    return list(_stack)


class Block:
    def __init__(self, name: str, cache: bool = False):
        self.name = name
        self.cache = cache
        self.jobs: list = []
        self.children: List["Block"] = []
        if _stack:
            _stack[-1].children.append(self)
        self._cached: dict = {}

    def add_job(self, job: Any) -> None:
        if job not in self.jobs:
            self.jobs.append(job)

    def __enter__(self) -> "Block":
        _stack.append(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        _stack.remove(self)

    def __call__(self, func: Callable) -> Callable:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            key = repr((args, sorted(kwargs.items())))
            if self.cache and key in self._cached:
                return self._cached[key]
            with self:
                result = func(*args, **kwargs)
            if self.cache:
                self._cached[key] = result
            return result

        return wrapper


def block(name: Any = None, cache: bool = False) -> Any:
    """Context manager ``with tk.block("x"):`` or decorator ``@tk.block()``."""
    if callable(name):
        return Block(name.__name__)(name)
    return Block(name or "", cache=cache)
