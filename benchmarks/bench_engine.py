"""Engine overhead: build and status-check a graph of N trivial jobs (default 1,000).

Prints each phase next to a baseline that does the unavoidable part of the same work without the
engine (hashing the same arguments with the Sisyphus hash; one stat() per job directory), and the ratio.

    python benchmarks/bench_engine.py [--jobs 1000]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from librispeech_joint_training_given_alignments.embedded_sisyphus import gs, job_dir, reset_graph, tk  # noqa: E402
from librispeech_joint_training_given_alignments.embedded_sisyphus.hash import short_hash  # noqa: E402
from librispeech_joint_training_given_alignments.embedded_sisyphus.manager import graph_state  # noqa: E402

import engine_jobs  # noqa: E402


def settings(i: int) -> dict:
    return {"lr": 1e-3 * (i % 7), "layers": [256] * (i % 5), "name": f"job{i}"}


def build(n: int):
    jobs = []
    for i in range(n):
        inputs = [jobs[i - 1].out] if i and i % 10 else []  # chains of 10
        jobs.append(engine_jobs.Trivial(i, inputs, settings(i)))
    for j in jobs[9::10]:
        tk.register_output(f"bench/{j.job_id()}", j.out)
    return jobs


def baseline_build(n: int) -> None:
    for i in range(n):
        short_hash({"index": i, "inputs": [], "settings": settings(i)})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        gs.BASE_DIR = tmp
        reset_graph()
        t0 = time.perf_counter()
        jobs = build(args.jobs)
        t_build = time.perf_counter() - t0
        t0 = time.perf_counter()
        baseline_build(args.jobs)
        b_build = time.perf_counter() - t0

        for j in jobs[: len(jobs) // 2]:  # half of them set up and finished, as in a running experiment
            job_dir.setup_job_directory(j)
            open(j.out.get_path(), "w").close()
            job_dir.mark_finished(j)
        t0 = time.perf_counter()
        state = graph_state(tk.sis_graph.required_paths())
        t_status = time.perf_counter() - t0
        t0 = time.perf_counter()
        for j in jobs:
            os.path.exists(os.path.join(j.work_path(), "finished"))
        b_status = time.perf_counter() - t0

    print(f"{'phase':<28}{'engine [s]':>12}{'baseline [s]':>14}{'ratio':>8}")
    print(f"{'build ' + str(args.jobs) + ' jobs':<28}{t_build:>12.3f}{b_build:>14.3f}{t_build / b_build:>8.1f}")
    print(f"{'status check':<28}{t_status:>12.3f}{b_status:>14.3f}{t_status / b_status:>8.1f}")
    print(f"states: {state.counts()}")


if __name__ == "__main__":
    main()
