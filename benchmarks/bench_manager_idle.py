"""CPU cost of the embedded manager while it only waits for a long task (as during a training).

Starts the real manager (``python -m ...embedded_sisyphus manager -r config.py``, with its progress printer and
report updates) twice at the same time in two temporary directories on a graph of two tasks that sleep
(``engine_jobs.Sleep``) on a one-core manager (``SIS_LOCAL_CPUS=1``), so that one runs and the other is ready but
waits for the core, as judges wait for a training in the default run (where the manager used to poll every 50 ms
in that state: a quarter of a core): once with the default wait (event-driven on the workers' pidfds, back-off up to
``gs.WAIT_PERIOD_IDLE_MAX``) and once with the former fixed period (``SIS_WAIT_PERIOD_IDLE_MAX=0.5``: a full
scheduling round twice a second). It measures each manager process' own CPU time (user + system, workers
excluded) over ``--seconds`` of waiting, from a few seconds after the task started until before it ends.

    python benchmarks/bench_manager_idle.py [--seconds 60]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import psutil

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIG = """
import engine_jobs
from librispeech_joint_training_given_alignments.sisyphus_api import tk


def py():
    tk.register_output("sleep/first.txt", engine_jobs.Sleep({seconds}).out)
    tk.register_output("sleep/second.txt", engine_jobs.Sleep({seconds} + 0.5).out)
"""


def _start(directory: str, seconds: float, env_extra: dict) -> subprocess.Popen:
    with open(os.path.join(directory, "config.py"), "w") as f:
        f.write(CONFIG.format(seconds=seconds))
    env = dict(os.environ, SIS_LOCAL_CPUS="1", **env_extra)
    env["PYTHONPATH"] = HERE + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [sys.executable, "-m", "librispeech_joint_training_given_alignments.embedded_sisyphus", "manager", "-r",
           "config.py"]
    return subprocess.Popen(cmd, cwd=directory, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="measured waiting time")
    args = parser.parse_args()
    settle = 8.0  # manager start-up, config loading, worker start
    variants = {"project (event-driven + back-off)": {}, "fixed 0.5 s polling (former)": {"SIS_WAIT_PERIOD_IDLE_MAX": "0.5"}}
    with tempfile.TemporaryDirectory(prefix="bench_idle_") as tmp:
        procs = {}
        for i, (name, env) in enumerate(variants.items()):
            directory = os.path.join(tmp, str(i))
            os.makedirs(directory)
            procs[name] = _start(directory, args.seconds + 2 * settle, env)
        time.sleep(settle)
        handles = {name: psutil.Process(p.pid) for name, p in procs.items()}
        before = {name: _cpu(h) for name, h in handles.items()}
        start = time.monotonic()
        time.sleep(args.seconds)
        wall = time.monotonic() - start
        used = {name: _cpu(h) - before[name] for name, h in handles.items()}
        for p in procs.values():
            if p.wait(timeout=2 * (args.seconds + 2 * settle) + 60) != 0:  # the second task runs after the first
                raise SystemExit(f"a manager failed (exit {p.returncode})")
    print(f"embedded manager waiting {wall:.0f} s for one running task while another waits for the core "
          f"(manager process only, workers excluded)")
    print(f"{'':<38}{'CPU s':>8}{'% of a core':>13}")
    for name, cpu in used.items():
        print(f"{name:<38}{cpu:>8.2f}{100 * cpu / wall:>12.2f}%")
    names = list(used)
    print(f"project / former CPU: {used[names[0]] / max(used[names[1]], 1e-9):.2f}x (goal: project < 1 % of a core)")


if __name__ == "__main__":
    main()
