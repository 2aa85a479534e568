"""Job wall times of a run, from the ``usage.<task>.<id>`` files the workers write into every job directory
(keys ``start``: epoch seconds, ``used_time_h``: hours, once the task finished).

Used for the report's "Job wall times" section and the embedded manager's closing summary: where the time of
a run went (the slowest jobs), its summed task time and its span from the first start to the last end.
"""
from __future__ import annotations

import ast
import os
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple


@dataclass(frozen=True)
class TaskTime:
    """One finished task id of a job."""

    job_id: str  # job directory relative to the work directory
    task: str  # "<task>.<id>"
    start: float  # epoch seconds
    seconds: float


@dataclass(frozen=True)
class WallTimes:
    """Summed task time, span of the run and per-job totals (slowest first)."""

    total_s: float
    span_s: float
    first_start: float
    last_end: float
    jobs: Tuple[Tuple[str, float, int], ...]  # (job id, seconds, number of task ids), sorted by seconds, descending


def collect_task_times(work_dir: str) -> List[TaskTime]:
    """Every finished task of every job under ``work_dir`` (tasks still running, without ``used_time_h``, are
    left out; an unreadable usage file raises, naming it)."""
    times = []
    for path in _usage_files(work_dir):
        name = os.path.basename(path)
        with open(path) as f:
            text = f.read()
        try:
            usage = ast.literal_eval(text)
        except (ValueError, SyntaxError) as exc:
            raise ValueError(f"unreadable usage file {path}: {exc}") from exc
        if not isinstance(usage, dict) or "used_time_h" not in usage or "start" not in usage:
            continue
        job_id = os.path.relpath(os.path.dirname(path), work_dir)
        times.append(TaskTime(job_id, name[len("usage."):], float(usage["start"]), float(usage["used_time_h"]) * 3600))
    return times


def _usage_files(work_dir: str) -> List[str]:
    """``usage.*`` files of the job directories (the ones holding ``job.save``); the walk does not enter a job
    directory's subfolders (its input links lead to other jobs, its work folder may hold large files)."""
    found = []
    for directory, subdirs, files in os.walk(work_dir):
        if "job.save" in files or any(f.startswith("usage.") for f in files):
            subdirs[:] = []
            found.extend(os.path.join(directory, f) for f in files if f.startswith("usage.") and ".tmp." not in f)
    return sorted(found)


def summarize(times: Sequence[TaskTime]) -> WallTimes:
    """Totals over ``times``; jobs ordered by their summed task time (ties by id)."""
    if not times:
        return WallTimes(0.0, 0.0, 0.0, 0.0, ())
    per_job: Dict[str, List[float]] = {}
    for t in times:
        per_job.setdefault(t.job_id, []).append(t.seconds)
    jobs = sorted(((job, sum(s), len(s)) for job, s in per_job.items()), key=lambda j: (-j[1], j[0]))
    first = min(t.start for t in times)
    last = max(t.start + t.seconds for t in times)
    return WallTimes(sum(t.seconds for t in times), last - first, first, last, tuple(jobs))


def format_duration(seconds: float) -> str:
    """``3725`` -> ``"1 h 02 min 05 s"``; under an hour ``"12 min 05 s"``; under a minute ``"4.2 s"``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min {sec:02d} s" if hours else f"{minutes} min {sec:02d} s"


def summary_lines(wall: WallTimes, top: int = 10) -> List[str]:
    """Plain-text summary: totals and the ``top`` slowest jobs (the manager prints it at the end)."""
    lines = [f"job wall times: {len(wall.jobs)} jobs, summed task time {format_duration(wall.total_s)}, "
             f"span (first start to last end) {format_duration(wall.span_s)}"]
    for job, seconds, n in wall.jobs[:top]:
        lines.append(f"  {format_duration(seconds):>16}  {job}" + (f"  ({n} task ids)" if n > 1 else ""))
    return lines


def markdown_section(wall: WallTimes, top: int = 0) -> str:
    """The report's "Job wall times" section (Markdown): totals and a per-job table sorted by time
    (``top`` > 0: only the slowest ``top`` jobs)."""
    rows = wall.jobs[:top] if top > 0 else wall.jobs
    lines = ["## Job wall times", "",
             f"{len(wall.jobs)} finished jobs; summed task time {format_duration(wall.total_s)}; span from the first "
             f"start to the last end {format_duration(wall.span_s)}.", "",
             "| job | wall time | s | share of summed time |", "|---|---|---|---|"]
    for job, seconds, _ in rows:
        share = seconds / wall.total_s if wall.total_s > 0 else 0.0
        lines.append(f"| {job} | {format_duration(seconds)} | {seconds:.1f} | {100 * share:.1f} % |")
    return "\n".join(lines) + "\n"
