"""Runs one task id of one job: ``python -m ...embedded_sisyphus.worker <job dir> <task> <task id>``.

Output and errors go to the log the manager opened; the markers it leaves are the only result.
"""
from __future__ import annotations

import os
import resource
import signal
import socket
import sys
import time
import traceback

from . import global_settings as gs
from . import job_dir as jd


def _stop_process_group(signum: int, _frame) -> None:
    """A stopped worker takes the programs it started (e.g. RETURNN) with it: they share its process group."""
    signal.signal(signum, signal.SIG_DFL)
    os.killpg(os.getpgid(0), signum)


def run_task(directory: str, task_name: str, task_id: int) -> int:
    gs.RUNNING_IN_WORKER = True
    if os.getpgid(0) == os.getpid():  # started by the manager as a session (and group) leader
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, _stop_process_group)
    job = jd.load_job(directory)
    tasks = {t.name(): t for t in job._sis_tasks()}
    if task_name not in tasks:
        print(f"job {directory} has no task {task_name!r} (tasks: {sorted(tasks)})", file=sys.stderr)
        return 2
    task = tasks[task_name]
    usage = jd.usage_file(job, task_name, task_id)
    start = time.time()
    jd.write_usage(usage, pid=os.getpid(), host=socket.gethostname(), task=task_name, task_id=task_id,
                   start=start, rqmt=os.environ.get("SIS_WORKER_RQMT"))
    print(f"==== {time.strftime('%Y-%m-%d %H:%M:%S')} start {job._sis_id()} {task_name}.{task_id} pid {os.getpid()}",
          flush=True)
    os.chdir(os.path.join(directory, gs.JOB_WORK_DIR))
    try:
        task.run(task_id)
    except BaseException:  # the task's own failure: report it, mark it, keep everything else
        traceback.print_exc()
        sys.stdout.flush()
        open(jd.task_marker(job, "error", task_name, task_id), "w").close()
        _finish_usage(usage, job, task_name, task_id, start, ok=False)
        return 1
    if not task.continuable:
        open(jd.task_marker(job, "finished", task_name, task_id), "w").close()
    _finish_usage(usage, job, task_name, task_id, start, ok=True)
    print(f"==== {time.strftime('%Y-%m-%d %H:%M:%S')} finished {task_name}.{task_id}", flush=True)
    return 0


def _finish_usage(usage: str, job, task_name: str, task_id: int, start: float, ok: bool) -> None:
    max_rss_gb = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                     resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024**2
    jd.write_usage(usage, pid=os.getpid(), host=socket.gethostname(), task=task_name, task_id=task_id, start=start,
                   used_time_h=(time.time() - start) / 3600, max_rss_gb=round(max_rss_gb, 3), finished=True, ok=ok)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) not in (2, 3):
        print("usage: worker JOB_DIR TASK_NAME [TASK_ID]", file=sys.stderr)
        return 2
    return run_task(os.path.abspath(argv[0]), argv[1], int(argv[2]) if len(argv) == 3 else 1)


if __name__ == "__main__":
    sys.exit(main())
