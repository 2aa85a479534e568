"""Trivial jobs for the engine benchmark (a module of its own: job ids include the module name)."""
from librispeech_joint_training_given_alignments.sisyphus_api import Job, Task


class Trivial(Job):
    def __init__(self, index, inputs=(), settings=None):
        self.inputs = list(inputs)
        self.settings = settings
        self.out = self.output_path("out.txt")

    def tasks(self):
        yield Task("run", mini_task=True)

    def run(self):
        open(self.out.get_path(), "w").close()


class Sleep(Job):
    """Stands for a long training in the idle-manager benchmark: one task that only waits."""

    def __init__(self, seconds):
        self.seconds = seconds
        self.out = self.output_path("out.txt")

    def tasks(self):
        yield Task("run", rqmt={"cpu": 1, "mem": 1, "time": 1})

    def run(self):
        import time

        time.sleep(self.seconds)
        open(self.out.get_path(), "w").close()
