"""The local manager: runs the tasks a set of targets needs on this machine, in dependency order.

Each task id runs in its own worker subprocess (so a crashing task cannot take the manager down),
several at once within the cpu/mem/gpu the manager is given. Nothing is kept in memory that the
file system does not also hold, so a killed manager simply continues when it is started again.
"""
from __future__ import annotations

import logging
import os
import select
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Tuple

import psutil

from . import global_settings as gs
from . import job_dir as jd
from .graph import collect_jobs
from .task import _parse_time
from .workdir_lock import WorkDirLock

log = logging.getLogger("embedded_sisyphus")


@dataclass
class Resources:
    cpu: int
    mem: float
    gpu: int

    @classmethod
    def of_this_machine(cls) -> "Resources":
        cpus = gs.LOCAL_CPUS or os.cpu_count() or 1
        mem = gs.LOCAL_MEM_GB or psutil.virtual_memory().total / 1024**3
        gpus = gs.LOCAL_GPUS if gs.LOCAL_GPUS is not None else _count_gpus()
        return cls(int(cpus), float(mem), int(gpus))


def _count_gpus() -> int:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip()])
    return len([d for d in os.listdir("/dev") if d.startswith("nvidia") and d[6:].isdigit()]) if os.path.isdir("/dev") else 0


@dataclass
class RunningTask:
    job: Any
    task_name: str
    task_id: int
    process: subprocess.Popen
    rqmt: Dict[str, Any]
    gpu_ids: List[int] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    stopped_at: Optional[float] = None  # when it was told to stop for exceeding its time limit


@dataclass
class GraphState:
    """What a status check sees: the state of every job and which ones are running."""

    jobs: Dict[str, str]
    running: List[Tuple[Any, str]]

    def counts(self) -> Dict[str, int]:
        counts: Dict[str, int] = {}
        for state in self.jobs.values():
            counts[state] = counts.get(state, 0) + 1
        return counts


def job_state(job: Any, update_jobs: bool = True) -> Tuple[str, List[Tuple[Any, int, str]]]:
    """The state of one job from its directory; the second element lists the task ids of its next task."""
    if jd.is_finished(job):
        return jd.FINISHED, []
    if job._sis_is_held or os.path.exists(os.path.join(job.work_path(), "hold")):
        return jd.HOLD, []
    if not all(p.available() for p in job._sis_inputs):
        return jd.WAITING, []
    if update_jobs and not job._sis_updated:
        job._sis_updated = True
        job.update()
        if not all(p.available() for p in job._sis_inputs):
            return jd.WAITING, []
    if not os.path.isdir(job.work_path()):
        return jd.RUNNABLE, []
    states = jd.task_states(job)
    if any(state == jd.ERROR for _, _, state in states):
        return jd.ERROR, []
    for task_name in _task_order(states):
        ids = [(t, i, s) for t, i, s in states if t.name() == task_name]
        if all(s == jd.FINISHED for _, _, s in ids):
            continue
        if any(s == jd.RUNNING for _, _, s in ids):
            return jd.RUNNING, ids
        if any(s == jd.INTERRUPTED for _, _, s in ids):
            return jd.INTERRUPTED, ids
        return jd.RUNNABLE, ids
    jd.mark_finished(job)  # every task id is done: the job-level marker, as Sisyphus' manager writes it
    return jd.FINISHED, []


def _task_order(states: List[Tuple[Any, int, str]]) -> List[str]:
    order: List[str] = []
    for task, _, _ in states:
        if task.name() not in order:
            order.append(task.name())
    return order


def critical_path_lengths(jobs: List[Any]) -> Dict[str, int]:
    """For every job (by id) the number of jobs on the longest chain from it to a job nothing waits for, itself
    included: 1 for a final judge or report, many for an early training whose outputs everything downstream needs.
    ``jobs`` must hold every dependency of its jobs before them (the order of :func:`collect_jobs`)."""
    waiting_for: Dict[str, List[str]] = {job._sis_id(): [] for job in jobs}
    for job in jobs:
        for dep in job._sis_dependencies():
            if dep._sis_id() in waiting_for:
                waiting_for[dep._sis_id()].append(job._sis_id())
    lengths: Dict[str, int] = {}
    for job in reversed(jobs):
        job_id = job._sis_id()
        lengths[job_id] = 1 + max((lengths[j] for j in waiting_for[job_id]), default=0)
    return lengths


def graph_state(targets: Iterable[Any]) -> GraphState:
    jobs: Dict[str, str] = {}
    running = []
    for job in collect_jobs(targets):
        state, ids = job_state(job)
        jobs[job._sis_id()] = state
        if state == jd.RUNNING:
            running.append((job, ",".join(f"{t.name()}.{i}" for t, i, s in ids if s == jd.RUNNING)))
    return GraphState(jobs, running)


class LocalManager:
    """Runs every job needed for ``targets`` (paths or jobs) until done or blocked by errors."""

    def __init__(self, targets: Iterable[Any], resources: Optional[Resources] = None, on_change: Any = None,
                 on_tick: Any = None, tick_interval: Optional[float] = None):
        """on_change(state): after a scheduling round in which job states changed; on_tick(state): after every
        round, for live progress and periodic reports; ``tick_interval``: the longest wait between two rounds while
        tasks run (the idle back-off stops there, so a live progress display keeps following a training)."""
        self.targets = list(targets)
        self.tick_interval = tick_interval
        self.resources = resources or Resources.of_this_machine()
        self.on_change = on_change
        self.on_tick = on_tick
        self.running: List[RunningTask] = []
        self._startable = False  # a task was ready but waits for resources (set by each scheduling round)
        self._last_summary: Optional[Dict[str, int]] = None
        self._idle_wait = 0.0  # current back-off of the wait between rounds
        self._idle_seen: Any = None  # (job counts, running task ids) of the last round, to detect changes
        self._pidfds: Dict[int, int] = {}  # pid of a running worker -> pidfd (readable once the worker ended)

    # ---------------------------------------------------------------- public
    def run(self) -> GraphState:
        """Holds the work directory's lock while it runs: a second manager on it refuses, naming this one."""
        with WorkDirLock(os.path.join(gs.BASE_DIR, gs.WORK_DIR)):
            return self._run()

    def _run(self) -> GraphState:
        while True:
            self._reap()
            state = self._schedule()
            self._report(state)
            if self.on_tick is not None:
                self.on_tick(state)
            if not self.running and not self._external_running(state) and not self._startable:
                self._close_pidfds(set())
                return state
            self._wait(state)

    # ---------------------------------------------------------------- internals
    def _wait(self, state: GraphState) -> None:
        """Sleep until the next scheduling round: until one of our workers ends (event-driven, via pidfds), or
        the back-off time passed. The back-off starts at ``gs.WAIT_PERIOD_BETWEEN_CHECKS`` and doubles, up to
        ``gs.WAIT_PERIOD_IDLE_MAX``, for every round in which nothing changed; so a manager that only waits for
        long trainings costs almost no CPU (it used to walk the whole graph twice a second). A task that waits for
        resources changes nothing here: only the end of one of our workers frees resources, and that wakes the wait
        at once (polling for it every 50 ms cost a quarter of a core during the 2-core default run). Workers of an
        earlier manager (not our children) keep the short period, as their end wakes nobody."""
        seen = (state.counts(), sorted((r.job._sis_id(), r.task_name, r.task_id) for r in self.running))
        if seen != self._idle_seen or self._external_running(state):
            self._idle_seen = seen
            self._idle_wait = gs.WAIT_PERIOD_BETWEEN_CHECKS
        else:
            self._idle_wait = min(2 * self._idle_wait, max(gs.WAIT_PERIOD_IDLE_MAX, gs.WAIT_PERIOD_BETWEEN_CHECKS))
            if self.tick_interval is not None:
                self._idle_wait = min(self._idle_wait, max(self.tick_interval, gs.WAIT_PERIOD_BETWEEN_CHECKS))
        self._wait_for_worker_exit(self._idle_wait)

    def _wait_for_worker_exit(self, timeout: float) -> None:
        pids = {r.process.pid for r in self.running}
        self._close_pidfds(pids)
        poller = select.poll()
        for pid in pids:
            if pid not in self._pidfds:
                try:
                    self._pidfds[pid] = os.pidfd_open(pid)
                except ProcessLookupError:  # already gone: schedule now
                    return
                except (AttributeError, OSError):  # no pidfd support (not Linux >= 5.3): the fixed period
                    time.sleep(gs.WAIT_PERIOD_BETWEEN_CHECKS)
                    return
            poller.register(self._pidfds[pid], select.POLLIN)
        poller.poll(timeout * 1000)

    def _close_pidfds(self, keep: set) -> None:
        for pid in [p for p in self._pidfds if p not in keep]:
            os.close(self._pidfds.pop(pid))

    def _external_running(self, state: GraphState) -> bool:
        """Workers of an earlier, killed manager that are still alive."""
        ours = {r.job._sis_id() for r in self.running}
        return any(job._sis_id() not in ours for job, _ in state.running)

    def _schedule(self) -> GraphState:
        """One round: the state of every job, then the ready tasks started in the order of
        :func:`critical_path_lengths` (longest chain of waiting jobs first; graph order among equals). Strictly in
        that order: once a task does not fit into the free resources, no task after it starts in this round, so a
        2-CPU training on the critical path is not kept waiting by a stream of 1-CPU judges that could each take
        one of the cores as it frees."""
        jobs_state: Dict[str, str] = {}
        ours = {(r.job._sis_id(), r.task_name, r.task_id) for r in self.running}
        self._startable = False
        jobs = collect_jobs(self.targets)
        ready: List[Tuple[Any, Any, int]] = []
        for job in jobs:
            state, ids = job_state(job)
            if state in (jd.RUNNABLE, jd.INTERRUPTED, jd.RUNNING) and not os.path.isdir(job.work_path()):
                jd.setup_job_directory(job)
                state, ids = job_state(job)
            if state in (jd.RUNNABLE, jd.INTERRUPTED, jd.RUNNING):
                for task, task_id, task_state in ids:
                    if (job._sis_id(), task.name(), task_id) in ours:
                        state = jd.RUNNING
                    elif task_state in (jd.RUNNABLE, jd.INTERRUPTED):
                        ready.append((job, task, task_id))
            jobs_state[job._sis_id()] = state
        if ready:
            lengths = critical_path_lengths(jobs)
            ready.sort(key=lambda r: -lengths[r[0]._sis_id()])  # stable: graph order among equals
        for job, task, task_id in ready:
            if self._startable or not self._start(job, task, task_id):
                self._startable = True
                continue
            jobs_state[job._sis_id()] = jd.RUNNING
        running_info = [(job, "") for job in jobs if jobs_state[job._sis_id()] == jd.RUNNING]
        return GraphState(jobs_state, running_info)

    def _free(self) -> Resources:
        used_cpu = sum(r.rqmt["cpu"] for r in self.running)
        used_mem = sum(r.rqmt["mem"] for r in self.running)
        used_gpu = sum(r.rqmt["gpu"] for r in self.running)
        return Resources(self.resources.cpu - used_cpu, self.resources.mem - used_mem, self.resources.gpu - used_gpu)

    def _fit(self, rqmt: Dict[str, Any]) -> Dict[str, Any]:
        """Requests larger than this machine are shrunk to it, so a cluster recipe still runs on a laptop."""
        rqmt = dict(rqmt)
        rqmt["cpu"] = max(1, min(rqmt["cpu"], self.resources.cpu))
        rqmt["mem"] = min(rqmt["mem"], self.resources.mem)
        rqmt["gpu"] = min(rqmt["gpu"], self.resources.gpu)
        return rqmt

    def _start(self, job: Any, task: Any, task_id: int) -> bool:
        rqmt = self._fit(job.task_rqmt(task))
        free = self._free()
        if self.running and (rqmt["cpu"] > free.cpu or rqmt["mem"] > free.mem or rqmt["gpu"] > free.gpu):
            return False
        used_gpus = {g for r in self.running for g in r.gpu_ids}
        gpu_ids = [g for g in range(self.resources.gpu) if g not in used_gpus][: rqmt["gpu"]]
        env = dict(os.environ)
        env.update(job._sis_environment)
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(rqmt["cpu"])
        env["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, gpu_ids))
        env["SIS_WORKER_RQMT"] = repr(rqmt)
        cmd = [sys.executable, "-m", f"{__package__}.worker", job.work_path(), task.name(), str(task_id)]
        usage = jd.usage_file(job, task.name(), task_id)
        if os.path.exists(usage):  # left by an interrupted earlier run
            os.remove(usage)
        log_file = open(jd.task_log(job, task.name(), task_id), "ab")
        process = subprocess.Popen(
            cmd, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True
        )
        log_file.close()
        # the task counts as running from now on, not only once the worker has written its own usage file (which
        # it may already have done: that one is kept)
        jd.write_usage(usage, pid=process.pid, host=socket.gethostname(), task=task.name(), task_id=task_id,
                       start=time.time(), rqmt=repr(rqmt), replace=False)
        log.info("started %s %s.%d (pid %d)", job._sis_id(), task.name(), task_id, process.pid)
        self.running.append(RunningTask(job, task.name(), task_id, process, rqmt, gpu_ids))
        return True

    def _stop_overdue(self) -> None:
        """Stop tasks that ran longer than their ``rqmt["time"]`` (hours), when ``gs.LOCAL_ENFORCE_TIME_RQMT``."""
        if not gs.LOCAL_ENFORCE_TIME_RQMT:
            return
        now = time.monotonic()
        for r in self.running:
            if r.rqmt.get("time") is None or r.process.poll() is not None:
                continue
            limit_s = _parse_time(r.rqmt["time"]) * 3600
            if r.stopped_at is None and now - r.started > limit_s:
                message = (f"stopped for time: {r.task_name}.{r.task_id} ran {now - r.started:.0f} s, longer than "
                           f"its time requirement of {limit_s:.0f} s (rqmt['time']={r.rqmt['time']} h); raise the "
                           f"task's time rqmt, or set gs.LOCAL_ENFORCE_TIME_RQMT = False (env "
                           f"SIS_LOCAL_ENFORCE_TIME_RQMT=False) to let the embedded engine ignore time limits\n")
                with open(jd.task_marker(r.job, "error", r.task_name, r.task_id), "w") as f:
                    f.write(message)
                with open(jd.task_log(r.job, r.task_name, r.task_id), "a") as f:
                    f.write("==== " + message)
                log.error("%s %s", r.job._sis_id(), message.strip())
                r.stopped_at = now
                _signal_group(r.process.pid, signal.SIGTERM)
            elif r.stopped_at is not None and now - r.stopped_at > gs.LOCAL_STOP_GRACE_SECONDS:
                _signal_group(r.process.pid, signal.SIGKILL)

    def _retry_if_allowed(self, r: RunningTask) -> None:
        """``Task(tries=N)``: a failed task id runs again until it failed N times (its logs are kept as .error.NN)."""
        task = next((t for t in r.job._sis_tasks() if t.name() == r.task_name), None)
        if task is None or task.tries <= 1:
            return
        earlier = jd.failed_attempts(r.job, r.task_name, r.task_id)
        if earlier + 1 < task.tries:
            jd.clear_task_error(r.job, r.task_name, r.task_id)
            log.warning("retrying %s %s.%d automatically (failed %d of %d tries; log kept as .error.%02d)",
                        r.job._sis_id(), r.task_name, r.task_id, earlier + 1, task.tries, earlier + 1)

    def _reap(self) -> None:
        self._stop_overdue()
        still = []
        for r in self.running:
            code = r.process.poll()
            if code is None:
                still.append(r)
                continue
            if code != 0 and not os.path.exists(jd.task_marker(r.job, "error", r.task_name, r.task_id)):
                # the worker died before it could mark the error itself (killed, out of memory)
                with open(jd.task_marker(r.job, "error", r.task_name, r.task_id), "w") as f:
                    f.write(f"worker exited with code {code}\n")
            level = logging.INFO if code == 0 else logging.ERROR
            log.log(level, "%s %s %s.%d (exit %d)", "finished" if code == 0 else "FAILED", r.job._sis_id(),
                    r.task_name, r.task_id, code)
            if code != 0:
                self._retry_if_allowed(r)
        self.running = still

    def _report(self, state: GraphState) -> None:
        counts = state.counts()
        if counts != self._last_summary:
            self._last_summary = counts
            log.info("%s", " ".join(f"{k}({v})" for k, v in sorted(counts.items())))
            if self.on_change is not None:
                self.on_change(state)


def _signal_group(pid: int, signum: int) -> None:
    """The worker is a session leader: its process group holds the programs it started."""
    try:
        os.killpg(pid, signum)
    except ProcessLookupError:
        pass
