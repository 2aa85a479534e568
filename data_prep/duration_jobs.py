"""Sisyphus jobs for external durations: placeholder alignment and validation (wrappers around ``durations``)."""
from __future__ import annotations

import shutil

from ..sisyphus_api import Job, Task, tk

from . import durations


class ProportionalDurationsJob(Job):
    """Per-TTS-phoneme integer durations distributing each sequence's feature frames proportionally to token
    weights (``out_durations``, sparse-int HDF ``[N]`` per seq). Placeholder until a Glow-TTS Viterbi forward
    produces real alignments; the output format is the same."""

    def __init__(self, phoneme_hdf: tk.Path, feature_hdf: tk.Path,
                 settings: durations.ProportionalAlignmentSettings = durations.ProportionalAlignmentSettings()):
        self.phoneme_hdf = phoneme_hdf
        self.feature_hdf = feature_hdf
        self.settings = settings
        self.out_durations = self.output_path("durations.hdf")

    def tasks(self):
        yield Task("run", mini_task=True)

    def run(self):
        durations.write_proportional_durations(self.phoneme_hdf.get_path(), self.feature_hdf.get_path(),
                                               self.out_durations.get_path(), self.settings)


class ValidateDurationsJob(Job):
    """Checks any durations HDF against phonemes and features (every seq present, ≥ 0, one per phoneme,
    sum == #frames) and outputs a copy (``out_durations``) so consumers depend on the check having passed."""

    def __init__(self, durations_hdf: tk.Path, phoneme_hdf: tk.Path, feature_hdf: tk.Path):
        self.durations_hdf = durations_hdf
        self.phoneme_hdf = phoneme_hdf
        self.feature_hdf = feature_hdf
        self.out_durations = self.output_path("durations.hdf")
        self.out_num_seqs = self.output_var("num_seqs")

    def tasks(self):
        yield Task("run", mini_task=True)

    def run(self):
        n = durations.validate_duration_hdf(self.durations_hdf.get_path(), self.phoneme_hdf.get_path(),
                                            self.feature_hdf.get_path())
        shutil.copyfile(self.durations_hdf.get_path(), self.out_durations.get_path())
        self.out_num_seqs.set(n)
