"""Helpers for tests and quick local runs: a tiny embedded corpus spec and a graph runner with readable errors.

Why here and not in a conftest: several ``tests/test_data_*.py`` modules share them, and a failing job should
surface its log tail (e.g. the OOV list or the bad seq tag) in the assertion message.
"""
from __future__ import annotations

import contextlib
import glob
import os
from typing import Any, Iterable, Iterator, Tuple

from .synthesis import SubsetSpec

TINY_TRAIN_SPEAKERS = ("1001", "1002", "1005", "1006")
TINY_SUBSETS: Tuple[SubsetSpec, ...] = (
    SubsetSpec("train-clean-100", TINY_TRAIN_SPEAKERS, 5),
    SubsetSpec("dev-clean", ("2001",), 2),
    SubsetSpec("test-clean", ("3001",), 2),
)


class JobFailed(RuntimeError):
    pass


@contextlib.contextmanager
def experiment_dir(base_dir: str) -> Iterator[str]:
    """Use ``base_dir`` as Sisyphus BASE_DIR (and cwd) while the block runs; job paths resolve against it."""
    from ..sisyphus_api import gs

    old = gs.BASE_DIR, os.getcwd(), gs.WAIT_PERIOD_BETWEEN_CHECKS
    gs.BASE_DIR = base_dir
    gs.WAIT_PERIOD_BETWEEN_CHECKS = 0.05
    os.chdir(base_dir)
    try:
        yield base_dir
    finally:
        gs.BASE_DIR, cwd, gs.WAIT_PERIOD_BETWEEN_CHECKS = old
        os.chdir(cwd)


def run_graph(targets: Iterable[Any]) -> None:
    """Run all jobs needed for ``targets`` with the embedded engine (inside :func:`experiment_dir`);
    raise :class:`JobFailed` with the tails of the failed jobs' logs."""
    from ..sisyphus_api import gs, tk

    base_dir = gs.BASE_DIR
    state = tk.run(list(targets))
    bad = {j: s for j, s in state.jobs.items() if s != "finished"}
    if bad:
        msgs = []
        for job_id, s in sorted(bad.items()):
            logs = sorted(glob.glob(os.path.join(base_dir, "work", job_id, "log.*")))
            tail = ""
            for log in logs:
                with open(log, errors="replace") as f:
                    tail += f.read()[-3000:]
            msgs.append(f"{job_id}: {s}\n{tail}")
        raise JobFailed("jobs did not finish:\n" + "\n".join(msgs))
