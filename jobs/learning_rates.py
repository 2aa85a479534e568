"""RETURNN's learning-rates file (``learning_rate_file``), read without executing it.

RETURNN writes it after every epoch (atomically, by rename) as a dict literal
``{epoch: EpochData(learningRate=..., error={"train_loss_mle": ..., "dev_loss_mle": ...}), ...}`` where NaN
appears as ``float('nan')``. The report reads it while a training runs, so it is parsed from the syntax tree
(``ast.literal_eval`` after rewriting the few non-literal forms) instead of with ``eval``.
"""
from __future__ import annotations

import ast
import math
from dataclasses import dataclass, field
from typing import Dict

_FLOAT_NAMES = {"nan": math.nan, "inf": math.inf}


class LearningRatesError(ValueError):
    """The file is not a RETURNN learning-rates file."""


@dataclass(frozen=True)
class EpochScores:
    """One epoch: the learning rate and every score RETURNN stored (``<dataset>_<loss|error>_<name>``)."""

    learning_rate: float
    scores: Dict[str, float] = field(default_factory=dict)


class _ToLiterals(ast.NodeTransformer):
    """``EpochData(learningRate=a, error=b)`` -> ``{"learning_rate": a, "error": b}``; ``float('nan')``, ``nan``,
    ``inf`` -> constants. Anything else that is not a literal is left alone, so ``literal_eval`` rejects it."""

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        name = node.func.id if isinstance(node.func, ast.Name) else None
        if name == "EpochData" and not node.args and all(k.arg for k in node.keywords):
            keys = [ast.Constant("learning_rate" if k.arg == "learningRate" else k.arg) for k in node.keywords]
            return ast.Dict(keys=keys, values=[k.value for k in node.keywords])
        if name == "float" and len(node.args) == 1 and not node.keywords and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            try:
                return ast.Constant(float(node.args[0].value))
            except ValueError:
                return node
        return node

    def visit_Name(self, node: ast.Name) -> ast.AST:
        return ast.Constant(_FLOAT_NAMES[node.id]) if node.id in _FLOAT_NAMES else node


def parse_learning_rates(text: str, source: str = "<learning_rates>") -> Dict[int, EpochScores]:
    """``{epoch: EpochScores}`` from the file's text. Also accepts the plain-dict form
    ``{epoch: {"learning_rate": ..., "error": {...}}}``. RETURNN's ``:meta:`` entries are dropped."""
    try:
        tree = _ToLiterals().visit(ast.parse(text.strip() or "{}", mode="eval"))
        data = ast.literal_eval(tree)
    except (SyntaxError, ValueError, TypeError) as exc:
        raise LearningRatesError(f"{source}: not a RETURNN learning-rates file ({exc})") from None
    if not isinstance(data, dict):
        raise LearningRatesError(f"{source}: expected a dict of epochs, got {type(data).__name__}")
    epochs: Dict[int, EpochScores] = {}
    for epoch, entry in data.items():
        if not isinstance(epoch, int) or not isinstance(entry, dict):
            raise LearningRatesError(f"{source}: epoch {epoch!r} has no EpochData entry")
        error = entry.get("error") or {}
        if isinstance(error, (int, float)):  # RETURNN's old format: one plain score
            error = {"old_format_score": error}
        if not isinstance(error, dict):
            raise LearningRatesError(f"{source}: epoch {epoch}: 'error' is not a dict")
        scores = {str(k): float(v) for k, v in error.items() if not str(k).startswith(":")}
        epochs[epoch] = EpochScores(float(entry.get("learning_rate", math.nan)), scores)
    return epochs


def read_learning_rates_file(path: str) -> Dict[int, EpochScores]:
    with open(path) as f:
        return parse_learning_rates(f.read(), path)


def read_learning_rates(path: str) -> Dict[int, Dict[str, float]]:
    """``{epoch: {score name: value}}`` (what checkpoint selection needs)."""
    return {epoch: entry.scores for epoch, entry in read_learning_rates_file(path).items()}
