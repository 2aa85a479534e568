"""The manager's live status: job counts and what each running job reports (``job.info()``), e.g. a training's
epoch and loss, printed while jobs run and not only when a job changes state.

A block is printed when its text changed and at least ``min_interval`` seconds passed since the last one, and
in any case every ``max_interval`` seconds, so a long training shows it is alive without flooding the log.
"""
from __future__ import annotations

import sys
import time
from typing import Any, Callable, List, Optional, TextIO

from . import global_settings as gs


def job_label(job: Any) -> str:
    """The job's alias when it has one (readable), else its work-directory path."""
    aliases = sorted(job.get_aliases())
    return aliases[0] if aliases else f"{gs.WORK_DIR}/{job._sis_id()}"


def running_line(job: Any) -> str:
    """One line for a running job: label, ``info()`` and ``completed_fraction()``; a job whose hooks fail still
    gets its line (with the error), the status must not stop the manager."""
    try:
        info = job.info()
        fraction = job.completed_fraction()
    except Exception as exc:  # noqa: BLE001  (recipe code; reported, not fatal)
        info, fraction = f"info() failed: {type(exc).__name__}: {exc}", None
    text = job_label(job)
    if fraction is not None:
        text += f"  {100 * fraction:.0f}%"
    if info:
        text += f"  [{info}]"
    return text


def counts_line(counts: dict) -> str:
    return f"jobs: {sum(counts.values())}  " + "  ".join(f"{k}: {v}" for k, v in sorted(counts.items()))


def status_block(state: Any) -> List[str]:
    """Counts and one line per running job of a ``GraphState``."""
    return [counts_line(state.counts())] + [f"  running: {running_line(job)}" for job, _ in state.running]


class ProgressPrinter:
    """Call with the manager's ``GraphState`` as often as convenient; it decides when to print."""

    def __init__(self, stream: Optional[TextIO] = None, min_interval: float = 10.0, max_interval: float = 60.0,
                 clock: Callable[[], float] = time.monotonic):
        self.stream = stream
        self.min_interval = min_interval
        self.max_interval = max_interval
        self.clock = clock
        self._last_check: Optional[float] = None
        self._last_print: Optional[float] = None
        self._last_text: Optional[str] = None

    def printed(self, state: Any) -> None:
        """Tell the printer that the full state was just printed elsewhere (e.g. after a job changed state)."""
        now = self.clock()
        self._last_check = self._last_print = now
        self._last_text = "\n".join(status_block(state))

    def __call__(self, state: Any) -> bool:
        """Print the block if due; True when printed. Reading the jobs' logs happens at most every min_interval."""
        now = self.clock()
        if self._last_check is not None and now - self._last_check < self.min_interval:
            return False
        self._last_check = now
        text = "\n".join(status_block(state))
        stale = self._last_print is None or now - self._last_print >= self.max_interval
        if text == self._last_text and not stale:
            return False
        self._last_print, self._last_text = now, text
        stamp = time.strftime("%H:%M:%S")
        print(f"[{stamp}] {text}", file=self.stream or sys.stdout, flush=True)
        return True
