"""Small evaluation jobs on forward outputs."""
from __future__ import annotations

import h5py
import numpy as np

from ..sisyphus_api import Job, Task, tk


class MeanPhonemeAccuracyJob(Job):
    """Mean over utterances of the per-utterance frame accuracies in a phoneme-prediction HDF."""

    def __init__(self, accuracy_hdf: tk.Path):
        self.accuracy_hdf = accuracy_hdf
        self.out_accuracy = self.output_var("accuracy")

    def tasks(self):
        yield Task("run", mini_task=True)

    def run(self) -> None:
        with h5py.File(self.accuracy_hdf.get_path(), "r") as f:
            values = np.asarray(f["inputs"][...], dtype=np.float64).reshape(-1)
        if values.size == 0:
            raise ValueError(f"{self.accuracy_hdf.get_path()} holds no sequences")
        self.out_accuracy.set(round(float(values.mean()), 6))
