"""Failure injection on the embedded engine: a second manager, names that leave their directory, time limits,
automatic retries, and the status exit code (issue 11)."""
import os
import subprocess
import sys
import textwrap
import time

import pytest

from librispeech_joint_training_given_alignments.embedded_sisyphus import gs
from librispeech_joint_training_given_alignments.embedded_sisyphus import job_dir as jd
from librispeech_joint_training_given_alignments.embedded_sisyphus.manager import LocalManager, Resources
from librispeech_joint_training_given_alignments.embedded_sisyphus.names import InvalidName
from librispeech_joint_training_given_alignments.embedded_sisyphus.workdir_lock import WorkDirLock, WorkDirLocked
from librispeech_joint_training_given_alignments.sisyphus_api import tk

import engine_jobs

ENGINE = "librispeech_joint_training_given_alignments.embedded_sisyphus"


def _cli(cwd, *args, **kwargs):
    return subprocess.run([sys.executable, "-m", ENGINE, *args], cwd=cwd, capture_output=True, text=True, **kwargs)


def test_two_managers_started_together_run_each_task_once(sis_setup):
    runs = sis_setup / "runs.txt"
    (sis_setup / "config.py").write_text(textwrap.dedent(
        f"""
        from librispeech_joint_training_given_alignments.sisyphus_api import tk
        import engine_jobs

        def py():
            for i in range(3):
                tk.register_output(f"done/{{i}}", engine_jobs.CountRuns({str(runs)!r}, str(i), 1.0).out_done)
        """))
    cmd = [sys.executable, "-m", ENGINE, "manager", "-r", "--cpus", "2", "config.py"]
    procs = [subprocess.Popen(cmd, cwd=sis_setup, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(2)]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert sorted(runs.read_text().split()[::2]) == ["0", "1", "2"], runs.read_text()
    assert codes == [0, 1], outputs
    refused = outputs[[p.returncode for p in procs].index(1)]
    winner = procs[[p.returncode for p in procs].index(0)]
    assert "another manager is running" in refused and f"pid {winner.pid} on host" in refused, refused


def test_lock_names_the_holder_and_a_dead_holder_is_taken_over(sis_setup):
    work = str(sis_setup / "work")
    with WorkDirLock(work):
        with pytest.raises(WorkDirLocked, match=f"pid {os.getpid()} on host"):
            LocalManager([engine_jobs.WriteNumber(1)], resources=Resources(1, 1, 0)).run()
    # a lock file left by a manager that died (its flock went with it) does not block the next manager
    dead = subprocess.run([sys.executable, "-c", f"from {ENGINE}.workdir_lock import WorkDirLock as L; "
                                                 f"L({work!r}).acquire(); import os; os._exit(9)"])
    assert dead.returncode == 9 and "pid" in open(os.path.join(work, WorkDirLock.FILE_NAME)).read()
    job = engine_jobs.WriteNumber(2)
    assert tk.run(job.out_number).jobs[job.job_id()] == "finished"


@pytest.mark.parametrize("name", ["../../x", "/tmp/abs_alias", "a/../../x", ".."])
def test_traversal_alias_and_output_names_are_refused(sis_setup, name):
    job = engine_jobs.WriteNumber(3)
    with pytest.raises(InvalidName, match="alias name"):
        job.add_alias(name)
    with pytest.raises(InvalidName, match="output name"):
        tk.register_output(name, job.out_number)
    with pytest.raises(InvalidName, match="output name"):
        tk.register_report(name, {"x": job.out_number})


def test_outputs_never_remove_a_file_and_aliases_stay_inside(sis_setup):
    outside = sis_setup / "outside.txt"
    outside.write_text("keep me\n")
    config = textwrap.dedent(
        """
        from librispeech_joint_training_given_alignments.sisyphus_api import tk
        import engine_jobs

        def py():
            job = engine_jobs.WriteNumber(4)
            job.add_alias("num")
            tk.register_output("kept.txt", job.out_number)
        """)
    (sis_setup / "config.py").write_text(config)
    (sis_setup / "output").mkdir()
    (sis_setup / "output" / "kept.txt").write_text("a user's file\n")
    result = _cli(sis_setup, "manager", "-r", "config.py", timeout=120)
    assert result.returncode != 0
    assert "output/kept.txt exists and is not a link made by the engine" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert (sis_setup / "output" / "kept.txt").read_text() == "a user's file\n"
    job_dir = os.readlink(sis_setup / "alias" / "num")
    # an alias below the link "num" would land in that job's directory
    (sis_setup / "config.py").write_text(config.replace('"kept.txt"', '"mine.txt"') + textwrap.indent(textwrap.dedent(
        """
        other = engine_jobs.WriteNumber(5)
        other.add_alias("num/inner")
        tk.register_output("other", other.out_number)
        """), "    "))
    result = _cli(sis_setup, "manager", "-r", "config.py", timeout=120)
    assert result.returncode != 0
    assert "alias 'num/inner'" in result.stderr and "outside" in result.stderr, result.stderr
    assert not os.path.lexists(os.path.join(job_dir, "inner"))
    assert outside.read_text() == "keep me\n"


def test_hanging_task_is_stopped_at_its_time_limit(sis_setup, monkeypatch):
    monkeypatch.setattr(gs, "LOCAL_STOP_GRACE_SECONDS", 2.0)
    hang = engine_jobs.Hang(120, time_rqmt=1.5 / 3600)  # 1.5 s
    start = time.time()
    state = LocalManager([hang], resources=Resources(1, 1, 0)).run()
    assert time.time() - start < 60
    assert state.jobs[hang.job_id()] == "error"
    marker = open(jd.task_marker(hang, "error", "run", 1)).read()
    assert "stopped for time" in marker and "time requirement of 2 s" in marker
    assert "LOCAL_ENFORCE_TIME_RQMT" in marker
    assert "stopped for time" in open(jd.task_log(hang, "run", 1)).read()


def test_time_limit_can_be_switched_off(sis_setup, monkeypatch):
    monkeypatch.setattr(gs, "LOCAL_ENFORCE_TIME_RQMT", False)
    job = engine_jobs.Hang(2, time_rqmt=0.5 / 3600)
    assert LocalManager([job], resources=Resources(1, 1, 0)).run().jobs[job.job_id()] == "finished"


def test_tries_recovers_from_one_failure(sis_setup):
    job = engine_jobs.FailFirstTime(tries=2)
    state = LocalManager([job], resources=Resources(1, 1, 0)).run()
    assert state.jobs[job.job_id()] == "finished"
    assert "injected failure" in open(jd.task_log(job, "run", 1) + ".error.01").read()
    once = engine_jobs.FailFirstTime(tries=1)
    assert LocalManager([once], resources=Resources(1, 1, 0)).run().jobs[once.job_id()] == "error"


def test_status_exit_code_says_whether_jobs_are_in_error(sis_setup):
    flag = sis_setup / "flag"
    (sis_setup / "config.py").write_text(textwrap.dedent(
        f"""
        from librispeech_joint_training_given_alignments.sisyphus_api import tk
        import engine_jobs

        def py():
            tk.register_output("fail/out.txt", engine_jobs.FailUnless({str(flag)!r}).out_file)
        """))
    assert _cli(sis_setup, "status", "config.py").returncode == 0  # runnable, nothing failed
    assert _cli(sis_setup, "manager", "-r", "config.py", timeout=60).returncode == 1
    status = _cli(sis_setup, "status", "config.py")
    assert status.returncode == 1 and "error" in status.stdout
