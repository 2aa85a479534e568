"""Sisyphus jobs for log-mel features and their global statistics (wrappers around ``features``)."""
from __future__ import annotations

from typing import Optional, Sequence

from ..sisyphus_api import Job, Task, tk

from . import corpus, features


class LogMelFeatureHdfJob(Job):
    """Log-mel features ``[T, num_filters]`` per seq tag as RETURNN HDF (``out_hdf``), model-identical front end."""

    def __init__(self, corpus_files: Sequence[tk.Path], settings: features.LogMelSettings):
        self.corpus_files = list(corpus_files)
        self.settings = settings
        self.out_hdf = self.output_path("features.hdf")

    def tasks(self):
        yield Task("run", rqmt={"cpu": 1, "mem": 4, "time": 4})

    def run(self):
        import torch

        torch.set_num_threads(1)
        entries = corpus.load_corpora(p.get_path() for p in self.corpus_files)
        features.compute_feature_hdf(entries, self.out_hdf.get_path(), self.settings)


class FeatureStatisticsJob(Job):
    """Scalar global mean / std of a feature HDF (optionally restricted to a segment file) for ``fe_config.norm``."""

    def __init__(self, feature_hdf: tk.Path, segment_file: Optional[tk.Path] = None):
        self.feature_hdf = feature_hdf
        self.segment_file = segment_file
        self.out_mean = self.output_var("mean")
        self.out_std_dev = self.output_var("std_dev")

    def tasks(self):
        yield Task("run", mini_task=True)

    def run(self):
        tags = None
        if self.segment_file is not None:
            with open(self.segment_file.get_path()) as f:
                tags = [l.strip() for l in f if l.strip()]
        mean, std = features.scalar_mean_std(self.feature_hdf.get_path(), tags)
        self.out_mean.set(mean)
        self.out_std_dev.set(std)
