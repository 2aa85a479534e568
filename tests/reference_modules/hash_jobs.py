"""The job classes of shared/sisyphus_reference/job_vectors.json; the module name is part of their ids."""
from librispeech_joint_training_given_alignments.sisyphus_api import Job


class MakeText(Job):
    def __init__(self, text, repeat=1):
        self.text = text
        self.repeat = repeat
        self.out_file = self.output_path("out.txt")

    def run(self):
        with open(self.out_file.get_path(), "w") as f:
            f.write(self.text * self.repeat)


class Train(Job):
    def __init__(self, config, model, data, num_epochs=10, extra=None, *, tag="x"):
        self.out_models = self.output_path("models", directory=True)


class TrainV2(Train):
    __sis_version__ = 2
    __sis_hash_exclude__ = {"tag": "x"}
