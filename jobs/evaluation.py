"""Small evaluation jobs on forward outputs."""
from __future__ import annotations

import os
from typing import Dict, Tuple

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
        from ..data_prep import hdf

        values = np.concatenate([np.asarray(v, dtype=np.float64).reshape(-1) for v in
                                 hdf.read_all(self.accuracy_hdf.get_path(), "aux-head accuracy").values()] or [[]])
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

        synthesized = {tag: path for tag, (path, _) in read_audio_list(self.audio_list.get_path()).items()}
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


def read_audio_list(path: str) -> Dict[str, Tuple[str, float]]:
    """``audio_files.txt`` of a synthesis (``tag<TAB>file<TAB>seconds`` per line) as ``{tag: (file, seconds)}``;
    relative file names are relative to the list (the forward job moves both to its output folder)."""
    entries: Dict[str, Tuple[str, float]] = {}
    with open(path) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            fields = line.rstrip("\n").split("\t")
            if len(fields) != 3:
                raise ValueError(f"{path}:{number}: expected 'tag<TAB>file<TAB>seconds', got {line.strip()!r}")
            tag, file_name, seconds = fields
            if tag in entries:
                raise ValueError(f"{path}:{number}: sequence {tag} listed twice")
            entries[tag] = (os.path.join(os.path.dirname(path), file_name), float(seconds))
    return entries


class SynthesisLengthRatioJob(Job):
    """How long synthesised speech is compared with the real recordings of the same texts: total synthesised
    seconds / total real seconds (``out_length_ratio``) and the mean of the per-utterance ratios
    (``out_mean_length_ratio``), over the utterances of ``reference_corpus`` (each must be in ``audio_list``).

    A sWER means little without it: speech at 0.5x length loses words whatever the recogniser does.
    """

    def __init__(self, audio_list: tk.Path, reference_corpus: tk.Path):
        self.audio_list = audio_list
        self.reference_corpus = reference_corpus
        self.out_length_ratio = self.output_var("length_ratio")
        self.out_mean_length_ratio = self.output_var("mean_length_ratio")

    def tasks(self):
        yield Task("run", mini_task=True)

    def run(self) -> None:
        from ..data_prep.corpus import load_corpus_json

        synthesized = read_audio_list(self.audio_list.get_path())
        reference = load_corpus_json(self.reference_corpus.get_path())
        missing = [e.seq_tag for e in reference if e.seq_tag not in synthesized]
        if missing:
            raise KeyError(f"{self.audio_list.get_path()} has no audio for {len(missing)} sequence(s) of "
                           f"{self.reference_corpus.get_path()}, e.g. {missing[:5]}")
        if not reference:
            raise ValueError(f"{self.reference_corpus.get_path()} has no utterances")
        bad = [e.seq_tag for e in reference if e.duration <= 0]
        if bad:
            raise ValueError(f"{self.reference_corpus.get_path()}: non-positive duration for {bad[:5]}")
        real = np.array([e.duration for e in reference], dtype=np.float64)
        synth = np.array([synthesized[e.seq_tag][1] for e in reference], dtype=np.float64)
        self.out_length_ratio.set(round(float(synth.sum() / real.sum()), 4))
        self.out_mean_length_ratio.set(round(float(np.mean(synth / real)), 4))
