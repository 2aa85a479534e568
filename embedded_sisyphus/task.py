"""A named step of a job, run by a worker process with cwd ``<job>/work`` (Sisyphus' ``Task``)."""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Union

_MEM_UNITS = {"K": 1 / 1024**2, "M": 1 / 1024, "G": 1.0, "T": 1024.0}


def _parse_time(value: Union[int, float, str]) -> float:
    """Hours, as Sisyphus' ``rqmt["time"]``; also ``"H:MM"`` or ``"H:MM:SS"``."""
    if isinstance(value, str) and ":" in value:
        parts = [float(p) for p in value.split(":")]
        return sum(p / 60**i for i, p in enumerate(parts))
    return float(value)


def _parse_mem(value: Union[int, float, str]) -> float:
    if isinstance(value, str) and value and value[-1].upper() in _MEM_UNITS:
        return float(value[:-1]) * _MEM_UNITS[value[-1].upper()]
    return float(value)


class Task:
    def __init__(
        self,
        start: str,
        resume: Optional[str] = None,
        rqmt: Union[Dict[str, Any], Callable[[], Dict[str, Any]], None] = None,
        args: Optional[List[Any]] = None,
        mini_task: bool = False,
        update_rqmt: Optional[Callable] = None,
        parallel: int = 0,
        tries: int = 1,
        continuable: bool = False,
    ):
        self._start = start
        self._resume = resume
        self._rqmt = rqmt if rqmt is not None else {}
        self.mini_task = mini_task
        self.update_rqmt = update_rqmt
        self.tries = tries
        self.continuable = continuable
        if args is None:
            args = [[]]
        self._args = [a if isinstance(a, (list, tuple)) else [a] for a in args]
        self.parallel = len(self._args) if parallel == 0 else min(parallel, len(self._args))
        self._job = None

    def set_job(self, job: Any) -> None:
        self._job = job

    def name(self) -> str:
        return self._start

    @property
    def resumable(self) -> bool:
        return self._resume is not None

    def task_ids(self) -> List[int]:
        return list(range(1, self.parallel + 1))

    def args_for_task_id(self, task_id: int) -> List[Any]:
        """Contiguous chunks, the first ``len(args) % parallel`` one element larger (as in Sisyphus)."""
        n, k = len(self._args), self.parallel
        size, extra = divmod(n, k)
        start = (task_id - 1) * size + min(task_id - 1, extra)
        end = start + size + (1 if task_id - 1 < extra else 0)
        return self._args[start:end]

    def rqmt(self) -> Dict[str, Any]:
        rqmt = dict(self._rqmt() if callable(self._rqmt) else self._rqmt)
        if self.mini_task:
            rqmt.setdefault("engine", "short")
        rqmt["cpu"] = int(rqmt.get("cpu", 1))
        rqmt["mem"] = _parse_mem(rqmt.get("mem", 1))
        rqmt["gpu"] = int(rqmt.get("gpu", 0))
        if rqmt.get("time") is not None:
            rqmt["time"] = _parse_time(rqmt["time"])
        return rqmt

    def run(self, task_id: int) -> None:
        function = getattr(self._job, self._start)
        for args in self.args_for_task_id(task_id):
            function(*args)

    def __repr__(self) -> str:
        return f"Task({self._start!r}, parallel={self.parallel})"
