"""The embedded engine runs graphs like Sisyphus would: layout, order, parallelism, errors, resume."""
import os
import signal
import subprocess
import sys
import textwrap
import time

from librispeech_joint_training_given_alignments.embedded_sisyphus import job_dir as jd
from librispeech_joint_training_given_alignments.embedded_sisyphus.graph import collect_jobs
from librispeech_joint_training_given_alignments.embedded_sisyphus.manager import (LocalManager, Resources,
                                                                                    critical_path_lengths)
from librispeech_joint_training_given_alignments.sisyphus_api import tk

import engine_jobs


def test_graph_runs_in_order_with_layout(sis_setup):
    numbers = [engine_jobs.WriteNumber(i) for i in range(4)]
    total = engine_jobs.SumNumbers([n.out_number for n in numbers])
    total.add_alias("demo/sum")
    state = tk.run(total.out_sum)
    assert set(state.jobs.values()) == {"finished"}
    assert total.out_sum.get() == 6
    job_dir = sis_setup / "work" / total.job_id()
    names = set(os.listdir(job_dir))
    assert {"input", "output", "work", "info", "job.save", "finished", "finished.partial.1", "finished.partial.2",
            "finished.finalize.1", "log.partial.1", "log.finalize.1"} <= names
    links = os.listdir(job_dir / "input")
    assert numbers[0].job_id().replace("/", "_") in links
    assert os.path.realpath(job_dir / "input" / links[0]).startswith(str(sis_setup / "work"))
    info = (job_dir / "info").read_text().splitlines()
    assert any(line.startswith("PARAMETER: numbers: [") for line in info)
    assert "ALIAS: demo/sum" in info
    assert (job_dir / "work" / "partial.0").read_text() == "2"  # numbers 0 and 2: task id 1 got args[0]


def test_parallel_jobs_use_cores(sis_setup):
    jobs = [engine_jobs.Sleep(1.5, str(i)) for i in range(2)]
    start = time.time()
    LocalManager(jobs, resources=Resources(cpu=2, mem=4, gpu=0)).run()
    elapsed = time.time() - start
    stamps = [tuple(map(float, open(j.out_stamp.get_path()).read().split())) for j in jobs]
    assert max(s[0] for s in stamps) < min(s[1] for s in stamps), "the two jobs did not overlap"
    assert elapsed < 5.5


def _start_time(job):
    return float(open(job.out_stamp.get_path()).read().split()[0])


def test_critical_path_lengths():
    head = engine_jobs.Sleep(0.1, "head")
    middle = engine_jobs.Sleep(0.1, "middle", after=head.out_stamp)
    tail = engine_jobs.Sleep(0.1, "tail", after=middle.out_stamp)
    side = engine_jobs.Sleep(0.1, "side", after=head.out_stamp)
    leaf = engine_jobs.Sleep(0.1, "leaf")
    lengths = critical_path_lengths(collect_jobs([leaf, tail, side]))
    assert [lengths[j._sis_id()] for j in (head, middle, tail, side, leaf)] == [3, 2, 1, 1, 1]


def test_longest_chain_starts_first(sis_setup):
    """One core: the jobs of a 3-job chain go before a final job that comes first in graph order, as long as their
    chain is longer."""
    leaf = engine_jobs.Sleep(0.3, "leaf")
    head = engine_jobs.Sleep(0.3, "head")
    middle = engine_jobs.Sleep(0.3, "middle", after=head.out_stamp)
    tail = engine_jobs.Sleep(0.3, "tail", after=middle.out_stamp)
    assert collect_jobs([tail, leaf])[0] is leaf  # graph order alone would start the final job first
    LocalManager([tail, leaf], resources=Resources(cpu=1, mem=4, gpu=0)).run()
    # head (chain of 3), then middle (2) before the leaf (1); tail and leaf tie: graph order, the leaf
    assert _start_time(head) < _start_time(middle) < _start_time(leaf) < _start_time(tail)


def test_a_waiting_two_core_job_is_not_overtaken(sis_setup):
    """Two cores; a 1-core job on the longest chain runs, a 2-core job on a longer chain than a ready 1-core final
    job waits for both cores: the final job must not take the free core meanwhile (it would delay the 2-core job)."""
    first = engine_jobs.Sleep(1.0, "first")
    chain = engine_jobs.Sleep(0.05, "c3", after=engine_jobs.Sleep(
        0.05, "c2", after=engine_jobs.Sleep(0.05, "c1", after=first.out_stamp).out_stamp).out_stamp)
    two_cores = engine_jobs.Sleep(0.3, "two", cpus=2)
    after_two = engine_jobs.Sleep(0.05, "after two", after=two_cores.out_stamp)
    final = engine_jobs.Sleep(0.3, "final")
    LocalManager([final, after_two, chain], resources=Resources(cpu=2, mem=4, gpu=0)).run()
    assert _start_time(first) < _start_time(two_cores) < _start_time(final)


def test_waiting_for_resources_does_not_poll(sis_setup):
    """While a ready task waits for a core, the manager sleeps until a worker ends (it polled every 50 ms)."""
    rounds = []

    class CountingManager(LocalManager):
        def _schedule(self):
            rounds.append(time.time())
            return super()._schedule()

    jobs = [engine_jobs.Sleep(2.0, str(i)) for i in range(2)]
    CountingManager(jobs, resources=Resources(cpu=1, mem=4, gpu=0)).run()
    first, second = sorted(_start_time(j) for j in jobs)
    assert second - first >= 2.0
    assert len(rounds) < 15, f"{len(rounds)} scheduling rounds in {rounds[-1] - rounds[0]:.1f} s"
    assert second - first < 3.0, "the second job started late: the end of the first did not wake the manager"


def test_finished_jobs_are_skipped(sis_setup):
    job = engine_jobs.WriteNumber(7)
    tk.run(job.out_number)
    mtime = os.path.getmtime(job.out_number.get_path())
    time.sleep(0.05)
    tk.run(job.out_number)
    assert os.path.getmtime(job.out_number.get_path()) == mtime


def test_failed_job_keeps_state_and_reruns_after_clear(sis_setup):
    flag = sis_setup / "flag"
    failing = engine_jobs.FailUnless(str(flag))
    downstream = engine_jobs.SumNumbers([engine_jobs.WriteNumber(1).out_number, failing.out_file])
    state = tk.run(downstream.out_sum)
    assert state.jobs[failing.job_id()] == "error"
    assert state.jobs[downstream.job_id()] == "waiting"
    log = open(jd.task_log(failing, "run", 1)).read()
    assert "RuntimeError: flag file" in log and str(flag) in log
    assert os.path.exists(failing.out_partial.get_path())
    flag.write_text("fixed")
    assert tk.run(failing.out_file).jobs[failing.job_id()] == "error"  # stays failed until cleared
    assert jd.clear_errors(failing)
    assert os.path.exists(jd.task_log(failing, "run", 1) + ".error.01")
    state = tk.run(failing.out_file)
    assert state.jobs[failing.job_id()] == "finished"
    assert open(failing.out_partial.get_path()).read() == "written before the failure\n"


def test_crashing_worker_does_not_stop_the_manager(sis_setup):
    crash = engine_jobs.FailUnless(str(sis_setup / "never"), hard_crash=True)
    fine = engine_jobs.WriteNumber(3)
    state = LocalManager([crash, fine], resources=Resources(cpu=2, mem=4, gpu=0)).run()
    assert state.jobs[crash.job_id()] == "error"
    assert state.jobs[fine.job_id()] == "finished"
    assert "exited with code 3" in open(jd.task_marker(crash, "error", "run", 1)).read()


CONFIG = textwrap.dedent(
    """
    from librispeech_joint_training_given_alignments.sisyphus_api import tk
    import engine_jobs

    def py():
        numbers = [engine_jobs.WriteNumber(i, delay=DELAY) for i in range(3)]
        total = engine_jobs.SumNumbers([n.out_number for n in numbers])
        total.add_alias("demo/sum")
        tk.register_output("demo/report.txt", total.out_report)
    """
)


def _cli(cwd, *args, **kwargs):
    cmd = [sys.executable, "-m", "librispeech_joint_training_given_alignments.embedded_sisyphus", *args]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, **kwargs)


def test_cli_manager_status_and_killed_run_resumes(sis_setup):
    (sis_setup / "config.py").write_text(CONFIG.replace("DELAY", "1.0"))
    status = _cli(sis_setup, "status", "config.py")
    assert status.returncode == 0, status.stderr
    assert "jobs: 4" in status.stdout and "runnable: 3" in status.stdout and "waiting: 1" in status.stdout
    # start a manager, kill it (and its workers) while the first jobs run
    proc = subprocess.Popen(
        [sys.executable, "-m", "librispeech_joint_training_given_alignments.embedded_sisyphus", "manager", "-r",
         "--cpus", "1", "config.py"], cwd=sis_setup, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True)
    deadline = time.time() + 30
    while time.time() < deadline and not list((sis_setup / "work").rglob("usage.run.1")):
        time.sleep(0.1)
    running = _cli(sis_setup, "status", "config.py")
    assert "running: 1" in running.stdout and "running: work/engine_jobs/WriteNumber." in running.stdout
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(0.2)
    after_kill = _cli(sis_setup, "status", "config.py")
    assert "finished: 3" not in after_kill.stdout
    result = _cli(sis_setup, "manager", "-r", "config.py", timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "finished: 4" in result.stdout
    assert (sis_setup / "output" / "demo" / "report.txt").read_text() == "sum=3\n"
    assert os.path.islink(sis_setup / "alias" / "demo" / "sum")
    assert "Finished output: output/demo/report.txt" in (sis_setup / "log" / "finished.log").read_text()


def test_cli_reports_errors_and_clears_them(sis_setup):
    (sis_setup / "config.py").write_text(textwrap.dedent(
        f"""
        from librispeech_joint_training_given_alignments.sisyphus_api import tk
        import engine_jobs

        def py():
            tk.register_output("fail/out.txt", engine_jobs.FailUnless({str(sis_setup / 'flag')!r}).out_file)
        """))
    failed = _cli(sis_setup, "manager", "-r", "config.py", timeout=60)
    assert failed.returncode == 1
    assert "error: 1" in failed.stdout and "RuntimeError: flag file" in failed.stdout
    (sis_setup / "flag").write_text("")
    cleared = _cli(sis_setup, "clear-errors", "config.py")
    assert "1 error marker(s) cleared" in cleared.stdout
    assert _cli(sis_setup, "manager", "-r", "config.py", timeout=60).returncode == 0
    assert (sis_setup / "output" / "fail" / "out.txt").read_text() == "ok\n"


def test_stopping_a_worker_stops_its_child_programs(sis_setup):
    import threading

    job = engine_jobs.SpawnChild(60)
    result = {}
    thread = threading.Thread(target=lambda: result.update(state=tk.run(job)))
    thread.start()
    deadline = time.time() + 30
    while time.time() < deadline and not os.path.exists(job.out_pid.get_path()):
        time.sleep(0.1)
    child = int(open(job.out_pid.get_path()).read())
    worker = eval(open(jd.usage_file(job, "run", 1)).read())["pid"]
    os.kill(worker, signal.SIGTERM)
    thread.join(30)
    assert result["state"].jobs[job.job_id()] == "error"
    time.sleep(0.2)
    try:
        os.kill(child, 0)
        alive = open(f"/proc/{child}/stat").read().split()[2] != "Z"
    except (ProcessLookupError, FileNotFoundError):
        alive = False
    assert not alive, "the task's child program outlived its stopped worker"
