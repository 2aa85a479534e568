"""Sisyphus jobs for x-vectors around the RETURNN training / forward jobs: speaker averaging, checking given
embeddings."""
from __future__ import annotations

import shutil
from typing import Optional, Sequence

from ..sisyphus_api import Job, Task, tk

from . import corpus, xvectors


class AverageXVectorsPerSpeakerJob(Job):
    """Replaces every sequence's ``[1, D]`` x-vector by the mean over its speaker (``out_hdf``), taken over the
    sequences of ``segment_file`` (all if None); ``out_num_speakers`` is the number of speakers found."""

    def __init__(self, xvector_hdf: tk.Path, segment_file: Optional[tk.Path] = None):
        self.xvector_hdf = xvector_hdf
        self.segment_file = segment_file
        self.out_hdf = self.output_path("xvectors.hdf")
        self.out_num_speakers = self.output_var("num_speakers")

    def tasks(self):
        yield Task("run", mini_task=True)

    def run(self):
        tags = None
        if self.segment_file is not None:
            with open(self.segment_file.get_path()) as f:
                tags = [line.strip() for line in f if line.strip()]
        self.out_num_speakers.set(xvectors.average_per_speaker(self.xvector_hdf.get_path(), self.out_hdf.get_path(),
                                                               tags))


class CheckGivenXVectorsJob(Job):
    """Verifies that a given x-vector HDF covers every sequence of the corpora with ``[1, D]`` vectors;
    ``out_hdf`` is a copy, ``out_dim`` the embedding size, checked against ``expected_dim`` (the models' configured
    x-vector dim) when given, so a wrong file fails here, naming it, not in the first training batch."""

    __sis_hash_exclude__ = {"expected_dim": None}

    def __init__(self, xvector_hdf: tk.Path, corpus_files: Sequence[tk.Path], expected_dim: Optional[int] = None):
        self.xvector_hdf = xvector_hdf
        self.corpus_files = list(corpus_files)
        self.expected_dim = expected_dim
        self.out_hdf = self.output_path("xvectors.hdf")
        self.out_dim = self.output_var("dim")

    def tasks(self):
        yield Task("run", mini_task=True)

    def run(self):
        tags = [e.seq_tag for e in corpus.load_corpora(p.get_path() for p in self.corpus_files)]
        self.out_dim.set(xvectors.check_embedding_hdf(self.xvector_hdf.get_path(), tags, self.expected_dim))
        shutil.copyfile(self.xvector_hdf.get_path(), self.out_hdf.get_path())
