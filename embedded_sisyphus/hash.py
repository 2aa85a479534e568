"""Sisyphus' structural hash, byte for byte.

Job ids are what users compare across machines and what decides whether a finished job is reused,
so this must produce exactly the bytes of ``sisyphus.hash.sis_hash_helper`` (rwth-i6/sisyphus 21ba684);
``tests/test_sisyphus_hash.py`` checks every reference vector in ``shared/sisyphus_reference``.
"""
from __future__ import annotations

import enum
import hashlib
import inspect
import pathlib
import types
from typing import Any

_BASIC_TYPES = (int, float, bool, str, complex)
_MAX_LEN = 4096
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def sis_hash_helper(obj: Any) -> bytes:
    """The recursive byte representation that every Sisyphus hash is computed from."""
    if type(obj) is enum.EnumMeta:
        type_name = b"EnumMeta"
    else:
        type_name = type(obj).__qualname__.encode("utf-8")
    parts = [type_name]
    if isinstance(obj, bytes):
        parts.append(obj)
    elif obj is None:
        pass
    elif type(obj) in _BASIC_TYPES:
        parts.append(repr(obj).encode("utf-8"))
    elif type(obj) in (list, tuple):
        parts.extend(sis_hash_helper(x) for x in obj)
    elif type(obj) in (set, frozenset):
        parts.extend(sorted(sis_hash_helper(x) for x in obj))
    elif isinstance(obj, dict):
        parts.extend(sorted(sis_hash_helper(item) for item in obj.items()))
    elif inspect.isfunction(obj):
        _assert_importable(obj)
        parts.append(sis_hash_helper((obj.__module__, obj.__qualname__)))
    elif inspect.isclass(obj):
        _assert_importable(obj)
        parts.append(sis_hash_helper((obj.__module__, obj.__qualname__)))
    elif hasattr(obj, "_sis_hash"):
        return obj._sis_hash()
    else:
        parts.append(sis_hash_helper(get_object_state(obj)))
    byte_list = b"(" + b", ".join(parts) + b")"
    if len(byte_list) > _MAX_LEN:
        return hashlib.sha256(byte_list).digest()
    return byte_list


def _assert_importable(obj: Any) -> None:
    assert obj.__module__ != "__main__", f"{obj!r} is defined in __main__ and cannot be hashed stably"
    assert "<lambda>" not in obj.__qualname__, f"lambdas cannot be hashed: {obj!r}"


def short_hash(obj: Any, length: int = 12, chars: str = _BASE62) -> str:
    """sha256 of the hash bytes, written least significant base-62 digit first."""
    value = int.from_bytes(hashlib.sha256(sis_hash_helper(obj)).digest(), "big")
    digits = []
    for _ in range(length):
        digits.append(chars[value % len(chars)])
        value //= len(chars)
    return "".join(digits)


def get_object_state(obj: Any) -> Any:
    """What a plain object contributes to the hash: its pickle state or its members."""
    if isinstance(obj, _BASIC_TYPES + (bytes, list, tuple, set, frozenset, dict)) and not (
        hasattr(obj, "__getnewargs_ex__") or hasattr(obj, "__getnewargs__")
    ):
        raise TypeError(f"Cannot hash subclass {type(obj).__qualname__} of a basic type without __getnewargs__")
    if isinstance(obj, (types.MethodDescriptorType, types.WrapperDescriptorType)):  # unbound, e.g. str.lower
        return obj.__qualname__
    if inspect.ismodule(obj):
        return obj.__name__
    if inspect.isfunction(obj) or inspect.isclass(obj):
        return obj.__module__, obj.__qualname__
    if isinstance(obj, pathlib.PurePath):
        return str(obj)

    if hasattr(obj, "__getnewargs_ex__"):
        args = obj.__getnewargs_ex__()
    elif hasattr(obj, "__getnewargs__"):
        args = obj.__getnewargs__()
    else:
        args = None

    if isinstance(obj, types.MethodType):
        state = {"__self__": obj.__self__, "__func__": obj.__func__}
    elif isinstance(obj, (types.BuiltinMethodType, types.MethodWrapperType)):
        state = {"__self__": obj.__self__, "__name__": obj.__name__}
    elif hasattr(obj, "__sis_state__"):
        state = obj.__sis_state__()
    elif hasattr(obj, "__getstate__") and _overrides_getstate(obj):
        state = obj.__getstate__()
    else:
        state = _get_members(obj)
        if not state and not hasattr(obj, "__dict__") and not hasattr(obj, "__slots__"):
            state = None
    if isinstance(obj, enum.Enum) and isinstance(state, dict):
        state = dict(state)
        state.pop("_sort_order_", None)
    return state if args is None else (args, state)


def _overrides_getstate(obj: Any) -> bool:
    """Python >= 3.11 gives every object a ``__getstate__``; only a class' own one counts."""
    cls_getstate = getattr(type(obj), "__getstate__", None)
    return cls_getstate is not None and cls_getstate is not getattr(object, "__getstate__", None)


def _get_members(obj: Any) -> dict:
    members: dict = {}
    if hasattr(obj, "__dict__"):
        members.update(obj.__dict__)
    slots = getattr(obj, "__slots__", ())
    for key in (slots,) if isinstance(slots, str) else slots:
        if key in members:
            continue
        try:
            members[key] = getattr(obj, key)
        except AttributeError:
            pass
    cls = type(obj)
    missing = object()
    for key in dir(obj):
        if key.startswith("__") and key not in ("__self__", "__func__"):
            continue
        if key in members:
            continue
        cls_value = inspect.getattr_static(cls, key, missing)
        if cls_value is not missing and _is_non_member_descriptor(cls_value):
            continue
        try:
            value = getattr(obj, key)
        except AttributeError:
            continue
        if cls_value is not missing and getattr(cls, key, missing) is value:
            continue
        members[key] = value
    return members


def _is_non_member_descriptor(value: Any) -> bool:
    if inspect.ismemberdescriptor(value):
        return False
    return hasattr(type(value), "__get__")
