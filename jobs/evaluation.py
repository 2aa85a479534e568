"""Small evaluation jobs on forward outputs."""
from __future__ import annotations

import os

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


class SynthesizedCorpusJob(Job):
    """A corpus description of synthesised audio (``audio_files.txt``: tag, file, seconds) with the texts and
    speakers of the reference corpus, so the audio can be recognised and scored like real speech (sWER)."""

    def __init__(self, audio_list: tk.Path, reference_corpus: tk.Path):
        self.audio_list = audio_list
        self.reference_corpus = reference_corpus
        self.out_corpus = self.output_path("corpus.json")

    def tasks(self):
        yield Task("run", mini_task=True)

    def run(self) -> None:
        import dataclasses

        import soundfile

        from ..data_prep.corpus import load_corpus_json, write_derived_corpus_json

        synthesized = {}
        with open(self.audio_list.get_path()) as f:
            for line in f:
                if line.strip():
                    tag, path, _seconds = line.rstrip("\n").split("\t")
                    # relative file names are relative to the list (the forward job moves both to output/)
                    synthesized[tag] = os.path.join(os.path.dirname(self.audio_list.get_path()), path)
        reference = load_corpus_json(self.reference_corpus.get_path())
        missing = [e.seq_tag for e in reference if e.seq_tag not in synthesized]
        if missing:
            raise KeyError(f"{self.audio_list.get_path()} has no audio for {len(missing)} sequence(s) of "
                           f"{self.reference_corpus.get_path()}, e.g. {missing[:5]}")
        entries = []
        for e in reference:
            info = soundfile.info(synthesized[e.seq_tag])
            entries.append(dataclasses.replace(e, audio=synthesized[e.seq_tag], num_samples=info.frames,
                                               duration=info.frames / info.samplerate))
        write_derived_corpus_json(self.out_corpus.get_path(), self.reference_corpus.get_path(), entries)
