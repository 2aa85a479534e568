"""Sisyphus jobs for x-vectors: plain-torch training, extraction, and checking given embeddings."""
from __future__ import annotations

import shutil
from typing import Optional, Sequence

from librispeech_joint_training_given_alignments.sisyphus_api import Job, Task, tk

from . import corpus, xvectors


class TrainXVectorJob(Job):
    """Speaker-classification training of ``pytorch_networks.xvector.XVectorModel`` on log-mel HDF features.

    Outputs ``out_checkpoint`` (torch file with config + state dict), ``out_log`` (JSON history),
    ``out_train_accuracy`` and ``out_dev_accuracy`` (None without dev segments).
    """

    def __init__(self, feature_hdf: tk.Path, speaker_hdf: tk.Path, settings: xvectors.XVectorTrainingSettings,
                 train_segments: Optional[tk.Path] = None, dev_segments: Optional[tk.Path] = None):
        self.feature_hdf = feature_hdf
        self.speaker_hdf = speaker_hdf
        self.settings = settings
        self.train_segments = train_segments
        self.dev_segments = dev_segments
        self.out_checkpoint = self.output_path("xvector_model.pt")
        self.out_log = self.output_path("training_log.json")
        self.out_train_accuracy = self.output_var("train_accuracy")
        self.out_dev_accuracy = self.output_var("dev_accuracy")

    def tasks(self):
        yield Task("run", rqmt={"cpu": 2, "mem": 8, "time": 12})

    def run(self):
        import torch

        torch.set_num_threads(2)
        m = xvectors.train_xvector_model(
            self.feature_hdf.get_path(), self.speaker_hdf.get_path(), self.out_checkpoint.get_path(),
            self.out_log.get_path(), self.settings,
            self.train_segments.get_path() if self.train_segments is not None else None,
            self.dev_segments.get_path() if self.dev_segments is not None else None)
        self.out_train_accuracy.set(m["train_accuracy"])
        self.out_dev_accuracy.set(m.get("dev_accuracy"))


class ExtractXVectorJob(Job):
    """Per-utterance x-vectors ``[1, D]`` for every seq of a feature HDF (``out_hdf``), optionally speaker-averaged."""

    def __init__(self, checkpoint: tk.Path, feature_hdf: tk.Path, average_per_speaker: bool = True):
        self.checkpoint = checkpoint
        self.feature_hdf = feature_hdf
        self.average_per_speaker = average_per_speaker
        self.out_hdf = self.output_path("xvectors.hdf")

    def tasks(self):
        yield Task("run", rqmt={"cpu": 1, "mem": 4, "time": 2})

    def run(self):
        import torch

        torch.set_num_threads(1)
        xvectors.extract_xvectors(self.checkpoint.get_path(), self.feature_hdf.get_path(), self.out_hdf.get_path(),
                                  self.average_per_speaker)


class CheckGivenXVectorsJob(Job):
    """Verifies that a given x-vector HDF covers every sequence of the corpora with ``[1, D]`` vectors;
    ``out_hdf`` is a copy, ``out_dim`` the embedding size."""

    def __init__(self, xvector_hdf: tk.Path, corpus_files: Sequence[tk.Path]):
        self.xvector_hdf = xvector_hdf
        self.corpus_files = list(corpus_files)
        self.out_hdf = self.output_path("xvectors.hdf")
        self.out_dim = self.output_var("dim")

    def tasks(self):
        yield Task("run", mini_task=True)

    def run(self):
        tags = [e.seq_tag for e in corpus.load_corpora(p.get_path() for p in self.corpus_files)]
        self.out_dim.set(xvectors.check_embedding_hdf(self.xvector_hdf.get_path(), tags))
        shutil.copyfile(self.xvector_hdf.get_path(), self.out_hdf.get_path())
