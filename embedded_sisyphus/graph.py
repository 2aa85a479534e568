"""The targets registered by a config, and the jobs they need."""
from __future__ import annotations

import os
import pprint
import time
from typing import Any, Iterable, List, Optional, Set

from . import global_settings as gs
from .job_path import AbstractPath
from .names import check_name, place_link


class OutputPath:
    """``tk.register_output``: ``output/<name>`` links to the path once it is available (Sisyphus' class name)."""

    def __init__(self, name: str, path: AbstractPath):
        self.name = check_name("output", name)
        self.path = path

    def required_paths(self) -> List[AbstractPath]:
        return [self.path]

    def link_name(self) -> str:
        return os.path.join(gs.BASE_DIR, gs.OUTPUT_DIR, self.name)

    def update(self) -> bool:
        """Create or refresh the link; True once done."""
        if not self.path.available():
            return False
        link = self.link_name()
        target = os.path.realpath(self.path.get_path())
        if os.path.islink(link) and os.readlink(link) == target:
            return True
        place_link("output", os.path.join(gs.BASE_DIR, gs.OUTPUT_DIR), self.name, target)
        log = os.path.join(gs.BASE_DIR, gs.FINISHED_LOG)
        os.makedirs(os.path.dirname(log), exist_ok=True)
        with open(log, "a") as f:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            f.write(f"{stamp}: Finished output: {os.path.relpath(link, gs.BASE_DIR)} (-> {target})\n")
        return True


class ReportTarget:
    """``tk.register_report``: a text file in ``output/`` rewritten from ``values`` while the manager runs.

    As in Sisyphus, the file is written at the first update and then every ``update_frequency`` seconds, whether
    or not the required paths are available yet (a callable ``values`` decides what to show for missing results).
    Additionally it is rewritten as soon as another required path becomes available, so results show when they
    arrive, not a period later. ``update`` returns True once everything required is available.
    """

    def __init__(self, name: str, values: Any, template: Optional[str] = None, required: Any = None,
                 update_frequency: float = 300):
        from .job import extract_paths

        self.name = check_name("output", name)
        self.values = values
        self.template = template
        self.update_frequency = update_frequency
        self._required = extract_paths(values if required is None else required)
        self._last_write: Optional[float] = None
        self._written_available = -1  # required paths available at the last write

    def required_paths(self) -> List[AbstractPath]:
        return list(self._required)

    def update(self, force: bool = False) -> bool:
        available = sum(bool(p.available()) for p in self._required)
        due = self._last_write is None or time.monotonic() - self._last_write >= self.update_frequency
        if force or due or available != self._written_available:
            self.write()
            self._written_available = available
        return available == len(self._required)

    def write(self) -> None:
        if self.template is not None:
            text = self.template.format(**self.values)
        elif callable(self.values):
            text = str(self.values())
        else:
            text = pprint.pformat(self.values, width=140) + "\n"
        path = os.path.join(gs.BASE_DIR, gs.OUTPUT_DIR, self.name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path + ".tmp", "w") as f:
            f.write(text)
        os.replace(path + ".tmp", path)
        self._last_write = time.monotonic()


class SISGraph:
    def __init__(self) -> None:
        self.targets: List[Any] = []

    def add_target(self, target: Any) -> None:
        self.targets.append(target)

    def required_paths(self) -> List[AbstractPath]:
        return [p for t in self.targets for p in t.required_paths()]

    def jobs(self) -> List[Any]:
        return collect_jobs(self.required_paths())

    def job_by_id(self, job_id: str) -> Optional[Any]:
        """The job of the graph with this id (``work/`` prefix allowed), None if there is none."""
        job_id = job_id[len(gs.WORK_DIR) + 1:] if job_id.startswith(gs.WORK_DIR + "/") else job_id
        return next((j for j in self.jobs() if j._sis_id() == job_id), None)

    def jobs_sorted(self) -> List[Any]:
        """Every job after all jobs it depends on: by the length of its longest dependency chain, then by id (so
        the order is the same in every run)."""
        depth: dict = {}
        for job in self.jobs():  # dependencies come first in jobs()
            depth[job._sis_id()] = 1 + max((depth[d._sis_id()] for d in job._sis_dependencies()), default=-1)
        return sorted(self.jobs(), key=lambda j: (depth[j._sis_id()], j._sis_id()))

    def find(self, pattern: str, mode: str = "all") -> List[Any]:
        found: List[Any] = []
        if mode in ("all", "job"):
            found += [j for j in self.jobs() if pattern in j._sis_id() or any(pattern in a for a in j.get_aliases())]
        if mode in ("all", "path"):
            found += [p for p in self.required_paths() if pattern in p.get_path()]
        return found

    def clear(self) -> None:
        self.targets.clear()


def collect_jobs(roots: Iterable[Any]) -> List[Any]:
    """All jobs needed for the given paths or jobs, dependencies first."""
    from .job import Job

    order: List[Any] = []
    seen: Set[str] = set()
    stack: List[Any] = []
    for root in roots:
        job = root if isinstance(root, Job) else getattr(root, "creator", None)
        if job is not None:
            stack.append((job, False))
    while stack:
        job, expanded = stack.pop()
        if expanded:
            order.append(job)
            continue
        if job._sis_id() in seen:
            continue
        seen.add(job._sis_id())
        stack.append((job, True))
        for dep in sorted(job._sis_dependencies(), reverse=True):
            if dep._sis_id() not in seen:
                stack.append((dep, False))
    return order


sis_graph = SISGraph()
