"""Delayed operations: values computed from job outputs once they exist (Sisyphus' ``sisyphus.delayed_ops``).

Recipes build e.g. ``DelayedFormat("{}/model", checkpoint_dir)`` or ``num_speakers + 1`` on a ``tk.Variable`` at graph
time; ``get()`` computes the value when the inputs exist (in the worker). The class names and the instance attributes
are Sisyphus', because a delayed value inside a job's arguments is hashed by them (type name plus members), and the
job ids must be the real Sisyphus' ones. ``AbstractPath`` (so ``Path`` and ``Variable``) derives from ``DelayedBase``.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Tuple, Union

from .hash import sis_hash_helper

__all__ = [
    "DelayedBase", "Delayed", "DelayedAdd", "DelayedSub", "DelayedMul", "DelayedTrueDiv", "DelayedFloorDiv",
    "DelayedMod", "DelayedPow", "DelayedRound", "DelayedGetItem", "DelayedFunctionBase", "DelayedFunction",
    "DelayedFormat", "DelayedReplace", "DelayedFunctionV2", "DelayedFallback", "DelayedSlice", "DelayedJoin",
    "try_get",
]


def try_get(value: Any) -> Any:
    """The value of a delayed object (``get()``), anything else as it is."""
    return value.get() if isinstance(value, DelayedBase) else value


def _ready(value: Any) -> bool:
    return not isinstance(value, DelayedBase) or value.is_set()


class DelayedBase:
    """A value of two operands ``a`` and ``b``; the operators build further delayed values."""

    def __init__(self, a: Any, b: Any = None):
        self.a = a
        self.b = b

    @staticmethod
    def _is_set_helper(value: Any) -> bool:
        return _ready(value)

    def is_set(self) -> bool:
        """True once every delayed operand can be computed."""
        return _ready(self.a) and _ready(self.b)

    def get(self) -> Any:
        raise AssertionError(f"{type(self).__name__} defines no get(); use a concrete delayed operation")

    # arithmetic, both ways round
    def __add__(self, other: Any) -> "DelayedBase":
        return DelayedAdd(self, other)

    def __radd__(self, other: Any) -> "DelayedBase":
        return DelayedAdd(other, self)

    def __sub__(self, other: Any) -> "DelayedBase":
        return DelayedSub(self, other)

    def __rsub__(self, other: Any) -> "DelayedBase":
        return DelayedSub(other, self)

    def __mul__(self, other: Any) -> "DelayedBase":
        return DelayedMul(self, other)

    def __rmul__(self, other: Any) -> "DelayedBase":
        return DelayedMul(other, self)

    def __truediv__(self, other: Any) -> "DelayedBase":
        return DelayedTrueDiv(self, other)

    def __rtruediv__(self, other: Any) -> "DelayedBase":
        return DelayedTrueDiv(other, self)

    def __floordiv__(self, other: Any) -> "DelayedBase":
        return DelayedFloorDiv(self, other)

    def __rfloordiv__(self, other: Any) -> "DelayedBase":
        return DelayedFloorDiv(other, self)

    def __mod__(self, other: Any) -> "DelayedBase":
        return DelayedMod(self, other)

    def __pow__(self, other: Any, modulo: Any = None) -> "DelayedBase":
        power = DelayedPow(self, other)
        return power if modulo is None else DelayedMod(power, modulo)

    def __rpow__(self, other: Any) -> "DelayedBase":
        return DelayedPow(other, self)

    def __round__(self, n: Any = None) -> "DelayedBase":
        return DelayedRound(self, n)

    def __getitem__(self, key: Any) -> "DelayedBase":
        return DelayedGetItem(self, key)

    def __call__(self, *args: Any, **kwargs: Any) -> "DelayedBase":
        return DelayedFunctionV2(self, args, kwargs)

    # strings and functions
    def format(self, *args: Any, **kwargs: Any) -> "DelayedBase":
        return DelayedFormat(self, *args, **kwargs)

    def rformat(self, fstring: Any, *args: Any, **kwargs: Any) -> "DelayedBase":
        """``fstring.format(self, *args, **kwargs)``, delayed."""
        return DelayedFormat(fstring, self, *args, **kwargs)

    def replace(self, *args: Any, **kwargs: Any) -> "DelayedBase":
        return DelayedReplace(self, *args, **kwargs)

    def function(self, func: Callable, *args: Any, **kwargs: Any) -> "DelayedBase":
        """``func(value, *args, **kwargs)``, delayed (``func`` must be importable: it is hashed by name)."""
        return DelayedFunction(self, func, *args, **kwargs)

    def fallback(self, fallback: Any) -> "DelayedBase":
        """The value once it is set, ``fallback`` until then."""
        return DelayedFallback(self, fallback)

    def __str__(self) -> str:
        return str(self.get())

    def __repr__(self) -> str:
        return str(self.get())


class DelayedAdd(DelayedBase):
    def get(self) -> Any:
        return try_get(self.a) + try_get(self.b)


class DelayedSub(DelayedBase):
    def get(self) -> Any:
        return try_get(self.a) - try_get(self.b)


class DelayedMul(DelayedBase):
    def get(self) -> Any:
        return try_get(self.a) * try_get(self.b)


class DelayedTrueDiv(DelayedBase):
    def get(self) -> Any:
        return try_get(self.a) / try_get(self.b)


class DelayedFloorDiv(DelayedBase):
    def get(self) -> Any:
        return try_get(self.a) // try_get(self.b)


class DelayedMod(DelayedBase):
    def get(self) -> Any:
        return try_get(self.a) % try_get(self.b)


class DelayedPow(DelayedBase):
    def get(self) -> Any:
        return try_get(self.a) ** try_get(self.b)


class DelayedRound(DelayedBase):
    def get(self) -> Any:
        return round(try_get(self.a), try_get(self.b))


class DelayedGetItem(DelayedBase):
    def get(self) -> Any:
        return try_get(self.a)[try_get(self.b)]


class Delayed(DelayedBase):
    """A plain value made delayed; hashes exactly as the value."""

    def __init__(self, a: Any):
        super().__init__(a, None)

    def get(self) -> Any:
        return try_get(self.a)

    def _sis_hash(self) -> bytes:
        return sis_hash_helper(self.a)


class DelayedFunctionBase(DelayedBase):
    """A call on ``string`` (the first operand, delayed or not) with further arguments."""

    def __init__(self, string: Any, *args: Any, **kwargs: Any):
        self.string = string
        self.args = args
        self.kwargs = kwargs

    def is_set(self) -> bool:
        return all(_ready(v) for v in (self.string, *self.args, *self.kwargs.values()))


class DelayedFunction(DelayedFunctionBase):
    def __init__(self, string: Any, func: Callable, *args: Any, **kwargs: Any):
        assert func.__name__ != "<lambda>", "a lambda cannot be hashed; give DelayedFunction a named function"
        self.func = func
        super().__init__(string, *args, **kwargs)

    def get(self) -> Any:
        return self.func(try_get(self.string), *self.args, **self.kwargs)


class DelayedFormat(DelayedFunctionBase):
    """``string.format(*args, **kwargs)`` with delayed arguments resolved (what i6_core's configs use for paths)."""

    def get(self) -> Any:
        return try_get(self.string).format(*(try_get(a) for a in self.args), **self.kwargs)


class DelayedReplace(DelayedFunctionBase):
    def get(self) -> Any:
        return try_get(self.string).replace(*self.args, **self.kwargs)


class DelayedFunctionV2(DelayedBase):
    """``func(*args, **kwargs)`` where the function, the argument containers and each argument may be delayed."""

    def __init__(self, func: Union[DelayedBase, Callable], args: Union[DelayedBase, Tuple[Any, ...]],
                 kwargs: Union[DelayedBase, Dict[str, Any]]):
        self.func = func
        self.args = args
        self.kwargs = kwargs

    def is_set(self) -> bool:
        args, kwargs = self.args, self.kwargs
        return (_ready(self.func) and _ready(args) and _ready(kwargs)
                and all(_ready(a) for a in try_get(args)) and all(_ready(v) for v in try_get(kwargs).values()))

    def get(self) -> Any:
        args = [try_get(a) for a in try_get(self.args)]
        kwargs = {k: try_get(v) for k, v in try_get(self.kwargs).items()}
        return try_get(self.func)(*args, **kwargs)


class DelayedFallback(DelayedBase):
    def is_set(self) -> bool:
        return self.a.is_set() or _ready(self.b)

    def get(self) -> Any:
        return self.a.get() if self.a.is_set() else try_get(self.b)


class DelayedSlice(DelayedBase):
    def __init__(self, iterable: Any, index_start: Any = 0, index_end: Any = -1, step: Any = 1):
        self.iterable = iterable
        self.index_start = index_start
        self.index_end = index_end
        self.step = step

    def is_set(self) -> bool:
        return all(_ready(v) for v in (self.iterable, self.index_start, self.index_end, self.step))

    def get(self) -> Any:
        return try_get(self.iterable)[try_get(self.index_start):try_get(self.index_end):try_get(self.step)]


class DelayedJoin(DelayedBase):
    """``separator.join(items)`` with delayed items (paths included) resolved."""

    def __init__(self, iterable: Any, separator: str):
        self.iterable = iterable
        self.separator = separator

    def is_set(self) -> bool:
        return all(_ready(v) for v in self.iterable)

    def get(self) -> str:
        return self.separator.join(try_get(v) for v in self.iterable)
