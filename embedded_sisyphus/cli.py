"""Command line of the embedded engine, in the spirit of ``sis``.

    python -m librispeech_joint_training_given_alignments.embedded_sisyphus manager -r config.py
    python -m librispeech_joint_training_given_alignments.embedded_sisyphus status config.py
    python -m librispeech_joint_training_given_alignments.embedded_sisyphus clear-errors config.py
    python -m librispeech_joint_training_given_alignments.embedded_sisyphus hash work/<job id> [work/<other id>]

(``sis-local`` is the same after ``pip install``). Run it in the experiment directory: ``work/``,
``alias/`` and ``output/`` are created there, exactly where ``sis manager`` would put them.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import List, Optional

from . import global_settings as gs
from . import job_dir as jd
from .config_loader import load_configs
from .graph import ReportTarget, sis_graph
from .names import InvalidName, place_link
from .workdir_lock import WorkDirLocked
from .manager import GraphState, LocalManager, Resources, graph_state
from .progress import ProgressPrinter, counts_line, running_line

log = logging.getLogger("embedded_sisyphus")


def _link_aliases(jobs) -> None:
    for job in jobs:
        for alias in job.get_aliases():
            place_link("alias", os.path.join(gs.BASE_DIR, gs.ALIAS_DIR), alias, job.work_path())


def _update_targets(force_reports: bool = False) -> int:
    """Output links and reports; a report is rewritten when its update period passed (or ``force_reports``)."""
    return sum(bool(target.update(force=True) if force_reports and isinstance(target, ReportTarget)
                    else target.update()) for target in sis_graph.targets)


def _update_reports() -> None:
    for target in sis_graph.targets:
        if isinstance(target, ReportTarget):
            target.update()


def print_state(state: GraphState, verbose: bool = False, stream=sys.stdout) -> None:
    print(counts_line(state.counts()), file=stream)
    for job, _ in state.running:
        print(f"  running: {running_line(job)}", file=stream)
    for job_id, job_state in sorted(state.jobs.items()):
        if job_state == jd.ERROR:
            print(f"  error:   {gs.WORK_DIR}/{job_id}", file=stream)
        elif verbose:
            print(f"  {job_state}: {gs.WORK_DIR}/{job_id}", file=stream)


def _print_error_logs(state: GraphState, lines: int = 20) -> None:
    for job in sis_graph.jobs():
        if state.jobs.get(job._sis_id()) != jd.ERROR:
            continue
        for marker in jd.error_markers(job):
            log_path = os.path.join(job.work_path(), "log." + os.path.basename(marker)[len("error."):])
            print(f"---- {log_path}")
            if os.path.exists(log_path):
                with open(log_path, errors="replace") as f:
                    print("".join(f.readlines()[-lines:]), end="")


def cmd_manager(args) -> int:
    load_configs(args.config)
    jobs = sis_graph.jobs()
    state = graph_state(sis_graph.required_paths())
    print_state(state)
    if not args.run:
        print("(dry run: add -r to run the jobs)")
        return 0
    os.makedirs(os.path.join(gs.BASE_DIR, gs.WORK_DIR), exist_ok=True)
    _link_aliases(jobs)
    _update_targets()
    if args.clear_errors:
        for job in jobs:
            jd.clear_errors(job)
    resources = Resources.of_this_machine()
    if args.cpus:
        resources.cpu = args.cpus
    if args.mem:
        resources.mem = args.mem
    if args.gpus is not None:
        resources.gpu = args.gpus

    progress = ProgressPrinter(min_interval=args.progress_interval)

    def on_change(s: GraphState) -> None:
        _update_targets()
        print_state(s)
        progress.printed(s)

    def on_tick(s: GraphState) -> None:
        _update_reports()
        progress(s)

    final = LocalManager(sis_graph.required_paths(), resources=resources, on_change=on_change, on_tick=on_tick,
                         tick_interval=args.progress_interval).run()
    _update_targets(force_reports=True)
    print_state(final)
    if not [k for k in final.counts() if k != jd.FINISHED]:
        _print_wall_times()
    if final.counts().get(jd.ERROR):
        _print_error_logs(final)
        print("some jobs are in error state; fix the cause, then run `clear-errors` (or `manager -r -co`)")
        return 1
    unfinished = {k: v for k, v in final.counts().items() if k != jd.FINISHED}
    return 0 if not unfinished else 1


def _print_wall_times() -> None:
    """When everything is finished: the run's summed task time, span and its 10 slowest jobs (usage files)."""
    from ..report import wall_times

    try:
        wall = wall_times.summarize(wall_times.collect_task_times(os.path.join(gs.BASE_DIR, gs.WORK_DIR)))
    except (OSError, ValueError) as exc:
        print(f"job wall times not available: {exc}")
        return
    print("\n".join(wall_times.summary_lines(wall, top=10)))


def cmd_status(args) -> int:
    load_configs(args.config)
    state = graph_state(sis_graph.required_paths())
    print_state(state, verbose=args.verbose)
    return 1 if state.counts().get(jd.ERROR) else 0  # scripts can tell a failed experiment from a running one


def cmd_clear_errors(args) -> int:
    load_configs(args.config)
    cleared = [m for job in sis_graph.jobs() for m in jd.clear_errors(job)]
    for marker in cleared:
        print(f"cleared {marker}")
    print(f"{len(cleared)} error marker(s) cleared")
    return 0


def cmd_hash(args) -> int:
    from . import hash_inspect

    if args.config:
        load_configs(args.config)
    known = hash_inspect.graph_jobs()
    jobs = []
    for reference in args.jobs:
        job_id = hash_inspect.job_id_of(reference)
        if job_id in known:
            jobs.append(known[job_id])
        elif args.config:
            print(f"{job_id}: not in the graph of {' '.join(args.config)}", file=sys.stderr)
            return 2
        else:
            jobs.append(hash_inspect.load_saved_job(job_id))
    if len(jobs) == 1:
        print(hash_inspect.format_tree(jobs[0]))
        return 0
    differences = hash_inspect.diff(jobs[0], jobs[1])
    print(f"--- {jobs[0].job_id()}\n+++ {jobs[1].job_id()}")
    print("\n".join(differences) if differences else "no hashed value differs")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sis-local", description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--log_level", type=int, default=20)
    sub = parser.add_subparsers(dest="command", required=True)
    manager = sub.add_parser("manager", aliases=["m"], help="run the jobs of the configs")
    manager.add_argument("-r", "--run", action="store_true", help="run (otherwise only show the state)")
    manager.add_argument("-co", "--clear-errors", dest="clear_errors", action="store_true",
                         help="clear error markers once before running")
    manager.add_argument("--cpus", type=int, help="cores to use (default: all)")
    manager.add_argument("--mem", type=float, help="memory in GB to use (default: all)")
    manager.add_argument("--gpus", type=int, help="GPUs to use (default: all visible)")
    manager.add_argument("--progress-interval", dest="progress_interval", type=float, default=10.0,
                         help="seconds between live status checks (printed when changed, at least every 60 s)")
    manager.add_argument("config", nargs="*")
    manager.set_defaults(func=cmd_manager)
    status = sub.add_parser("status", aliases=["s"], help="show job states and progress")
    status.add_argument("-v", "--verbose", action="store_true", help="list every job")
    status.add_argument("config", nargs="*")
    status.set_defaults(func=cmd_status)
    clear = sub.add_parser("clear-errors", help="remove error markers so failed tasks run again")
    clear.add_argument("config", nargs="*")
    clear.set_defaults(func=cmd_clear_errors)
    hashed = sub.add_parser(
        "hash", help="what went into a job's hash (tree); with two jobs of one class: the hashed values that differ",
        description="JOB: a job id, a job dir (work/<id>) or an alias link. Without --config the jobs are read from "
                    "work/<id>/job.save (written by either engine); with --config the configs build the graph.")
    hashed.add_argument("jobs", nargs="+", metavar="JOB", help="one job (tree) or two jobs of one class (diff)")
    hashed.add_argument("--config", action="append", default=None, help="a config that builds the graph (repeatable)")
    hashed.set_defaults(func=cmd_hash)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, format="[%(asctime)s] %(levelname)s: %(message)s", datefmt="%H:%M:%S")
    try:
        return args.func(args)
    except (WorkDirLocked, InvalidName, FileExistsError) as exc:  # the message says it all; no traceback
        print(f"sis-local: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
