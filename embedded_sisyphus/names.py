"""Alias and output names stay inside ``alias/`` and ``output/``; only links the engine made are ever replaced.

Why: ``add_alias("../../x")`` used to create a link outside ``alias/``, and ``register_output`` with such a name
deleted an existing regular file outside ``output/`` to put its link there.
"""
from __future__ import annotations

import os


class InvalidName(ValueError):
    """An alias or output name that would leave its directory; the message names it and what it would touch."""


def check_name(kind: str, name: str) -> str:
    """``name`` if it is a relative path without ``..`` after normalisation, else :class:`InvalidName`."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidName(f"{kind} name {name!r} is empty or not a string")
    if os.path.isabs(name):
        raise InvalidName(f"{kind} name {name!r} is absolute; {kind} names are relative to the {kind} directory")
    normalised = os.path.normpath(name)
    if normalised == "." or ".." in normalised.split(os.sep):
        raise InvalidName(f"{kind} name {name!r} leaves the {kind} directory (normalised: {normalised!r})")
    return name


def place_link(kind: str, base: str, name: str, target: str) -> str:
    """Make ``<base>/<name>`` a symlink to ``target``; returns the link path.

    The link must land inside ``base`` even after resolving the links on its way (an alias ``a/b`` below an alias
    ``a`` would land in a job directory). Only a symlink is ever replaced; an existing file or directory there is an
    error naming it, never removed.
    """
    check_name(kind, name)
    link = os.path.join(base, name)
    parent = os.path.dirname(link)
    os.makedirs(parent, exist_ok=True)
    real_base, real_parent = os.path.realpath(base), os.path.realpath(parent)
    if os.path.commonpath([real_base, real_parent]) != real_base:
        raise InvalidName(f"{kind} {name!r}: {parent} resolves to {real_parent}, outside {real_base}")
    if os.path.islink(link):
        if os.readlink(link) == target:
            return link
        os.remove(link)
    elif os.path.lexists(link):
        raise FileExistsError(f"{kind} {name!r}: {link} exists and is not a link made by the engine; "
                              f"it is left alone (move it away to get the {kind} link)")
    os.symlink(target, link)
    return link
