"""What a running RETURNN training is doing, read from the tail of its log (cheap enough for every status line).

With ``log_verbosity >= 5`` RETURNN's PyTorch engine prints one line per step,
``ep 3 train, step 12, mle 1.234, dp 0.456, num_seqs 40, 0.123 sec/step, elapsed 0:00:12, ..., complete 28.57%``,
and at verbosity 3 one line per epoch, ``Epoch 3: Total train loss: mle 1.234 dp 0.456``. The last such line
says the epoch, the step and the current losses.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Dict, Iterable, Optional

_STEP_LINE = re.compile(r"\bep (\d+) (\S+), step (\d+), (.*)$")
_EPOCH_LINE = re.compile(r"\bEpoch (\d+): Total train loss: (.*)$")
_SCORE = re.compile(r"^([A-Za-z_][\w.]*) (-?(?:\d+\.?\d*(?:e[-+]?\d+)?|nan|inf))$")
_COMPLETE = re.compile(r"^complete (\d+(?:\.\d+)?)%$")
# per-step entries that are not losses
_NOT_A_LOSS = {"num_seqs"}


@dataclass(frozen=True)
class TrainingProgress:
    """The last progress line found: ``epoch`` in progress (or just finished when ``step`` is None)."""

    epoch: int
    dataset: str
    step: Optional[int]
    losses: Dict[str, float] = field(default_factory=dict)
    epoch_fraction: Optional[float] = None  # of the current epoch, from "complete NN%"

    def describe(self, num_epochs: Optional[int] = None) -> str:
        text = f"ep {self.epoch}" + (f"/{num_epochs}" if num_epochs else "")
        if self.step is not None:
            text += f" {self.dataset} step {self.step}"
            if self.epoch_fraction is not None:
                text += f" ({100 * self.epoch_fraction:.0f}%)"
        else:
            text += " done"
        if self.losses:
            text += " " + " ".join(f"{k} {v:.4g}" for k, v in self.losses.items())
        return text


def _scores(parts: Iterable[str]) -> Dict[str, float]:
    out: Dict[str, float] = {}
    for part in parts:
        m = _SCORE.match(part.strip())
        if m and m.group(1) not in _NOT_A_LOSS and ":" not in m.group(1):
            out[m.group(1)] = float(m.group(2))
    return out


def parse_progress_line(line: str) -> Optional[TrainingProgress]:
    m = _STEP_LINE.search(line)
    if m:
        parts = m.group(4).split(", ")
        fraction = next((float(c.group(1)) / 100 for p in parts if (c := _COMPLETE.match(p.strip()))), None)
        return TrainingProgress(int(m.group(1)), m.group(2), int(m.group(3)), _scores(parts), fraction)
    m = _EPOCH_LINE.search(line)
    if m:
        tokens = m.group(2).split()
        pairs = [f"{a} {b}" for a, b in zip(tokens[::2], tokens[1::2])] if len(tokens) > 1 else [f"loss {tokens[0]}"]
        return TrainingProgress(int(m.group(1)), "train", None, _scores(pairs), None)
    return None


def read_tail(path: str, max_bytes: int = 16384) -> str:
    """The last ``max_bytes`` of a file (without the partial first line), '' if it does not exist."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            data = f.read()
    except OSError:
        return ""
    text = data.decode("utf8", errors="replace")
    return text.split("\n", 1)[1] if size > max_bytes and "\n" in text else text


def last_progress(log_paths: Iterable[str], max_bytes: int = 16384) -> Optional[TrainingProgress]:
    """The last progress line in the tail of the first log that has one."""
    for path in log_paths:
        for line in reversed(read_tail(path, max_bytes).splitlines()):
            progress = parse_progress_line(line)
            if progress is not None and progress.dataset == "train":
                return progress
    return None
