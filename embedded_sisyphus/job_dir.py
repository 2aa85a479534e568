"""The on-disk state of a job, in Sisyphus' work-directory layout.

State lives only in the file system (markers ``finished``, ``finished.<task>.<id>``,
``error.<task>.<id>``, the ``usage.<task>.<id>`` file of a running worker), so a killed manager can be
restarted at any time and the real Sisyphus can take over a work directory made here.
"""
from __future__ import annotations

import ast
import glob
import gzip
import os
import pickle
import socket
from typing import Any, Dict, List, Optional, Tuple

from . import global_settings as gs

FINISHED = "finished"
ERROR = "error"
RUNNING = "running"
INTERRUPTED = "interrupted"
RUNNABLE = "runnable"
WAITING = "waiting"
HOLD = "hold"


def job_dir(job: Any) -> str:
    return job.work_path()


def is_finished(job: Any) -> bool:
    directory = job_dir(job)
    if os.path.exists(os.path.join(directory, gs.JOB_FINISHED_MARKER)):
        return True
    return os.path.exists(os.path.join(directory, gs.JOB_FINISHED_MARKER + ".tar.gz"))


def task_marker(job: Any, kind: str, task_name: str, task_id: int) -> str:
    return os.path.join(job_dir(job), f"{kind}.{task_name}.{task_id}")


def task_log(job: Any, task_name: str, task_id: int) -> str:
    return os.path.join(job_dir(job), f"log.{task_name}.{task_id}")


def usage_file(job: Any, task_name: str, task_id: int) -> str:
    return os.path.join(job_dir(job), f"{gs.PLOGGING_FILE}.{task_name}.{task_id}")


def error_markers(job: Any) -> List[str]:
    return sorted(glob.glob(os.path.join(glob.escape(job_dir(job)), "error.*")))


def running_pid(job: Any, task_name: str, task_id: int) -> Optional[int]:
    """The pid of a live worker of this task on this host, else None."""
    try:
        with open(usage_file(job, task_name, task_id)) as f:
            usage = ast.literal_eval(f.read())
    except (OSError, SyntaxError, ValueError):
        return None
    if not isinstance(usage, dict) or usage.get("host") != socket.gethostname() or usage.get("finished"):
        return None
    pid = usage.get("pid")
    try:
        os.kill(pid, 0)
    except (OSError, TypeError):
        return None
    try:  # a reused pid is not our worker
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            if b"embedded_sisyphus" not in f.read():
                return None
    except OSError:
        pass
    return pid


def task_states(job: Any) -> List[Tuple[Any, int, str]]:
    """(task, task id, state) for every task id of the job, in execution order."""
    result = []
    for task in job._sis_tasks():
        for task_id in task.task_ids():
            if os.path.exists(task_marker(job, "finished", task.name(), task_id)):
                state = FINISHED
            elif os.path.exists(task_marker(job, "error", task.name(), task_id)):
                state = ERROR
            elif running_pid(job, task.name(), task_id) is not None:
                state = RUNNING
            elif os.path.exists(usage_file(job, task.name(), task_id)):
                state = INTERRUPTED
            else:
                state = RUNNABLE
            result.append((task, task_id, state))
    return result


def setup_job_directory(job: Any) -> None:
    """Create ``work/<id>/`` with input links, output dirs, ``job.save`` and ``info``."""
    directory = job_dir(job)
    for sub in (gs.JOB_INPUT, gs.JOB_OUTPUT, gs.JOB_WORK_DIR):
        os.makedirs(os.path.join(directory, sub), exist_ok=True)
    for name in job._sis_output_dirs:
        os.makedirs(os.path.join(directory, gs.JOB_OUTPUT, name), exist_ok=True)
    for creator in job._sis_dependencies():
        link = os.path.join(directory, gs.JOB_INPUT, creator._sis_id().replace("/", "_"))
        if not os.path.islink(link):
            os.symlink(creator.work_path(), link)
    _write_atomic(os.path.join(directory, gs.JOB_SAVE), gzip.compress(pickle.dumps(job)))
    _write_atomic(os.path.join(directory, gs.JOB_INFO), info_text(job).encode())


def info_text(job: Any) -> str:
    lines = [f"TAG: {tag}" for tag in sorted(job.tags)]
    lines += sorted(f"INPUT: {p.get_path()}" for p in job._sis_inputs)
    lines += sorted(f"PARAMETER: {k}: {v}" for k, v in job._sis_kwargs.items())
    lines += [f"ALIAS: {a}" for a in sorted(job.get_aliases())]
    return "\n".join(lines) + "\n"


def load_job(directory: str) -> Any:
    with gzip.open(os.path.join(directory, gs.JOB_SAVE), "rb") as f:
        return pickle.load(f)


def mark_finished(job: Any) -> None:
    open(os.path.join(job_dir(job), gs.JOB_FINISHED_MARKER), "a").close()


def clear_errors(job: Any) -> List[str]:
    """Let a failed task run again: keep its log as ``log.<task>.<id>.error.NN``, outputs and work stay."""
    cleared = []
    for marker in error_markers(job):
        name = os.path.basename(marker)[len("error."):]
        task_name, _, task_id = name.rpartition(".")
        clear_task_error(job, task_name, int(task_id))
        cleared.append(marker)
    return cleared


def clear_task_error(job: Any, task_name: str, task_id: int) -> None:
    """Clear one task id's error (its log kept as ``log.<task>.<id>.error.NN``, usage file and marker removed)."""
    log = task_log(job, task_name, task_id)
    if os.path.exists(log):
        n = 1
        while os.path.exists(f"{log}.error.{n:02d}"):
            n += 1
        os.replace(log, f"{log}.error.{n:02d}")
    usage = usage_file(job, task_name, task_id)
    if os.path.exists(usage):
        os.remove(usage)
    marker = task_marker(job, "error", task_name, task_id)
    if os.path.exists(marker):
        os.remove(marker)


def failed_attempts(job: Any, task_name: str, task_id: int) -> int:
    """Earlier failed runs of a task id whose error was cleared (each left a ``log.<task>.<id>.error.NN``)."""
    return len(glob.glob(glob.escape(task_log(job, task_name, task_id)) + ".error.[0-9][0-9]*"))


def write_usage(path: str, replace: bool = True, **values: Any) -> None:
    """``replace=False``: only if the file does not exist yet (atomically; an existing one is kept)."""
    _write_atomic(path, repr(values).encode(), replace=replace)


def _write_atomic(path: str, data: bytes, replace: bool = True) -> None:
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
    if replace:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        os.remove(tmp)
