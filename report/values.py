"""One table cell: a spec value resolved to what is known now (a number, "pending", a link, empty)."""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

VALUE, PENDING, MISSING, LINK, ERROR = "value", "pending", "missing", "link", "error"


@dataclass(frozen=True)
class Cell:
    kind: str
    raw: Any = None  # the value itself (CSV), the file for LINK, the message for ERROR

    @property
    def text(self) -> str:
        if self.kind == VALUE:
            return format_value(self.raw)
        if self.kind == PENDING:
            return "pending"
        if self.kind == LINK:
            return self.raw.rsplit("/", 1)[-1]
        if self.kind == ERROR:
            return "error"
        return ""

    @property
    def csv(self) -> str:
        if self.kind == VALUE:
            return repr(self.raw) if isinstance(self.raw, float) else str(self.raw)
        return self.raw if self.kind == LINK else self.text


def format_value(value: Any) -> str:
    """Numbers with 4 significant digits below 10 (accuracies, MOS, ratios), 2 decimals above (WERs)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if math.isnan(value) or math.isinf(value):
        return str(value)
    return f"{value:.4g}" if abs(value) < 10 else f"{value:.2f}"


def resolve(value: Any, where: str = "") -> Cell:
    """A spec value -> Cell. Job outputs count only once their job has finished (``available()``), so a value
    written halfway through a job never shows; delayed values (real Sisyphus) once ``is_set()``."""
    if value is None:
        return Cell(MISSING)
    try:
        if hasattr(value, "available") and hasattr(value, "get_path"):  # tk.Path / tk.Variable
            if not value.available():
                return Cell(PENDING)
            if hasattr(value, "set"):  # a Variable: its value
                got = value.get()
                return Cell(PENDING) if got is None else Cell(VALUE, got)
            return Cell(LINK, value.get_path())
        if hasattr(value, "is_set") and hasattr(value, "get"):  # delayed operations
            return Cell(VALUE, value.get()) if value.is_set() else Cell(PENDING)
    except Exception as exc:  # noqa: BLE001  (a broken result must not take the report or the manager down)
        log.warning("report value %s (%r) could not be read: %s", where, value, exc)
        return Cell(ERROR, f"{type(exc).__name__}: {exc}")
    return Cell(VALUE, value)

