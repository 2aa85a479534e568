"""Small jobs that exercise the embedded engine (imported by its worker processes, so not in a test file)."""
import os
import time

from librispeech_joint_training_given_alignments.sisyphus_api import Job, Task


class WriteNumber(Job):
    def __init__(self, number, delay=0.0):
        self.number = number
        self.delay = delay
        self.out_number = self.output_var("number")

    def tasks(self):
        yield Task("run", mini_task=True)

    def run(self):
        time.sleep(self.delay)
        self.out_number.set(self.number)


class SumNumbers(Job):
    """Two tasks, the first with two parallel task ids, to check ordering and argument chunks."""

    def __init__(self, numbers):
        self.numbers = numbers
        self.out_sum = self.output_var("sum")
        self.out_report = self.output_path("report.txt")

    def tasks(self):
        yield Task("partial", args=[[0], [1]], rqmt={"cpu": 1, "mem": 0.5})
        yield Task("finalize", mini_task=True)

    def partial(self, index):
        half = self.numbers[index::2]
        with open(f"partial.{index}", "w") as f:
            f.write(str(sum(v.get() for v in half)))

    def finalize(self):
        total = sum(int(open(f"partial.{i}").read()) for i in (0, 1))
        self.out_sum.set(total)
        with open(self.out_report.get_path(), "w") as f:
            f.write(f"sum={total}\n")


class FailUnless(Job):
    """Fails until a flag file exists: a job that can be fixed and rerun."""

    def __init__(self, flag_file, hard_crash=False):
        self.flag_file = flag_file
        self.hard_crash = hard_crash
        self.out_file = self.output_path("out.txt")
        self.out_partial = self.output_path("partial.txt")

    def run(self):
        if not os.path.exists(self.out_partial.get_path()):
            with open(self.out_partial.get_path(), "w") as f:
                f.write("written before the failure\n")
        if not os.path.exists(self.flag_file):
            if self.hard_crash:
                os._exit(3)
            raise RuntimeError(f"flag file {self.flag_file} missing")
        with open(self.out_file.get_path(), "w") as f:
            f.write("ok\n")


class Sleep(Job):
    """Sleeps and writes its start and end time; ``after``: a path it waits for (a link in a chain of jobs),
    ``cpus``: its task's core requirement (default: the task's default requirement)."""

    def __init__(self, seconds, name, after=None, cpus=None):
        self.seconds = seconds
        self.name = name
        self.after = after
        self.cpus = cpus
        self.out_stamp = self.output_path("stamp.txt")

    def tasks(self):
        yield Task("run") if self.cpus is None else Task("run", rqmt={"cpu": self.cpus, "mem": 1})

    def run(self):
        start = time.time()
        time.sleep(self.seconds)
        with open(self.out_stamp.get_path(), "w") as f:
            f.write(f"{start} {time.time()}\n")


class SpawnChild(Job):
    """Starts a long-running child program, as a RETURNN task does."""

    def __init__(self, seconds):
        self.seconds = seconds
        self.out_pid = self.output_path("child.pid")

    def run(self):
        import subprocess

        child = subprocess.Popen(["sleep", str(self.seconds)])
        with open(self.out_pid.get_path(), "w") as f:
            f.write(str(child.pid))
        child.wait()


class FakeTraining(Job):
    """Prints RETURNN-like step lines for a few seconds (its task log grows while it runs), and reports them
    through ``info()`` as ReturnnTrainingJob does: for the manager's live status."""

    def __init__(self, steps, step_seconds):
        self.steps = steps
        self.step_seconds = step_seconds
        self.out_done = self.output_path("done")

    def run(self):
        for step in range(self.steps):
            print(f"ep 1 train, step {step}, mle {2.0 - 0.1 * step:.3f}, num_seqs 3, "
                  f"complete {100 * (step + 1) / self.steps:.2f}%", flush=True)
            time.sleep(self.step_seconds)
        with open(self.out_done.get_path(), "w") as f:
            f.write("done\n")

    def info(self):
        from librispeech_joint_training_given_alignments.jobs.returnn_progress import last_progress

        job_dir = os.path.dirname(os.path.dirname(self.out_done.get_path()))
        progress = last_progress([os.path.join(job_dir, "log.run.1")])
        return None if progress is None else progress.describe(1)


class CountRuns(Job):
    """Appends one line per run of its task to ``log_file`` (shared by several jobs), then sleeps."""

    def __init__(self, log_file, name, seconds=1.0):
        self.log_file = log_file
        self.name = name
        self.seconds = seconds
        self.out_done = self.output_path("done")

    def run(self):
        with open(self.log_file, "a") as f:
            f.write(f"{self.name} {os.getpid()}\n")
        time.sleep(self.seconds)
        with open(self.out_done.get_path(), "w") as f:
            f.write("done\n")


class FailFirstTime(Job):
    """Fails its first run (leaving a marker in its work dir), succeeds on the next: a transient failure."""

    def __init__(self, tries):
        self.tries = tries
        self.out_file = self.output_path("out.txt")

    def tasks(self):
        yield Task("run", tries=self.tries)

    def run(self):
        if not os.path.exists("failed_once"):
            open("failed_once", "w").close()
            raise RuntimeError("injected failure")
        with open(self.out_file.get_path(), "w") as f:
            f.write("ok\n")


class Hang(Job):
    """Sleeps far longer than its time requirement (hours) allows."""

    def __init__(self, seconds, time_rqmt):
        self.seconds = seconds
        self.time_rqmt = time_rqmt
        self.out_file = self.output_path("out.txt")

    def tasks(self):
        yield Task("run", rqmt={"cpu": 1, "mem": 0.5, "time": self.time_rqmt})

    def run(self):
        time.sleep(self.seconds)
        with open(self.out_file.get_path(), "w") as f:
            f.write("ok\n")

