"""Sisyphus jobs for corpus creation and audio containers; thin wrappers around ``synthesis`` / ``corpus`` / ``audio``."""
from __future__ import annotations

from typing import Sequence, Tuple

from ..sisyphus_api import Job, Task, tk

from . import audio_containers, corpus, synthesis


class SynthesizeEmbeddedLibriSpeechJob(Job):
    """A small LibriSpeech-layout corpus of real synthetic speech (flite + espeak-ng voices, 16 kHz FLAC).

    Outputs ``out_root`` (the ``LibriSpeech`` directory, usable wherever a real LibriSpeech root is expected),
    ``out_flite_segments`` (JSON: flite's phone segments of every flite utterance, checked against its audio; the
    ground truth for :class:`~.duration_jobs.ReferenceDurationsJob`) and ``out_num_utterances``.
    """

    def __init__(self, voices: Tuple[synthesis.SyntheticVoice, ...] = synthesis.DEFAULT_VOICES,
                 subsets: Tuple[synthesis.SubsetSpec, ...] = synthesis.DEFAULT_SUBSETS, seed: int = 1,
                 max_words: int = 24):
        self.voices = tuple(voices)
        self.subsets = tuple(subsets)
        self.seed = seed
        self.max_words = max_words
        self.out_root = self.output_path("LibriSpeech", directory=True)
        self.out_flite_segments = self.output_path("flite_segments.json")
        self.out_num_utterances = self.output_var("num_utterances")

    def tasks(self):
        n = sum(len(s.speaker_ids) * s.utterances_per_speaker for s in self.subsets)
        yield Task("run", rqmt={"cpu": 2, "mem": 2, "time": max(0.5, n / 3000)})

    def run(self):
        plans = synthesis.plan_corpus(self.voices, self.subsets, self.seed, self.max_words)
        synthesis.write_librispeech_tree(self.out_root.get_path(), plans, num_workers=2,
                                         flite_segments_out=self.out_flite_segments.get_path())
        self.out_num_utterances.set(len(plans))


class LibriSpeechCorpusJob(Job):
    """Validated corpus description (JSON) of one subset of a LibriSpeech tree (real or embedded).

    Fails with the file / seq tag on corrupt audio, wrong sample rate, missing audio or empty transcripts.
    Outputs ``out_corpus`` (JSON: seq_tag, audio, duration, num_samples, text, speaker, chapter),
    ``out_segments`` (one seq tag per line) and ``out_num_seqs``.
    """

    def __init__(self, librispeech_root: tk.Path, subset: str, sample_rate: int = 16000, full_decode: bool = True):
        self.librispeech_root = librispeech_root
        self.subset = subset
        self.sample_rate = sample_rate
        self.full_decode = full_decode
        self.out_corpus = self.output_path("corpus.json")
        self.out_segments = self.output_path("segments.txt")
        self.out_num_seqs = self.output_var("num_seqs")

    def tasks(self):
        yield Task("run", rqmt={"cpu": 1, "mem": 2, "time": 2})

    def run(self):
        entries = corpus.read_librispeech_subset(self.librispeech_root.get_path(), self.subset, self.sample_rate,
                                                 self.full_decode)
        corpus.write_corpus_json(self.out_corpus.get_path(), self.subset, entries, self.sample_rate)
        with open(self.out_segments.get_path(), "w") as f:
            f.write("".join(e.seq_tag + "\n" for e in entries))
        self.out_num_seqs.set(len(entries))


class BalancedSpeakerSplitJob(Job):
    """Train / dev segment files with ``dev_per_speaker`` held-out utterances per speaker (TTS-CV split)."""

    def __init__(self, corpus_file: tk.Path, dev_per_speaker: int = 4, seed: int = 42):
        self.corpus_file = corpus_file
        self.dev_per_speaker = dev_per_speaker
        self.seed = seed
        self.out_train_segments = self.output_path("train.segments")
        self.out_dev_segments = self.output_path("dev.segments")

    def tasks(self):
        yield Task("run", mini_task=True)

    def run(self):
        train, dev = corpus.balanced_speaker_split(corpus.load_corpus_json(self.corpus_file.get_path()),
                                                   self.dev_per_speaker, self.seed)
        for path, tags in ((self.out_train_segments, train), (self.out_dev_segments, dev)):
            with open(path.get_path(), "w") as f:
                f.write("".join(t + "\n" for t in tags))


class OggZipJob(Job):
    """Zip for RETURNN's ``OggZipDataset``: the FLAC files unchanged plus ``<name>.txt`` (text, duration, seq_name).

    FLAC is lossless and soundfile reads it from the zip, so no re-encoding (the original used ogg without
    conversion, ``no_conversion=True``).
    """

    def __init__(self, corpus_files: Sequence[tk.Path]):
        self.corpus_files = list(corpus_files)
        self.out_ogg_zip = self.output_path("out.ogg.zip")

    def tasks(self):
        yield Task("run", rqmt={"cpu": 1, "mem": 2, "time": 1})

    def run(self):
        entries = corpus.load_corpora(p.get_path() for p in self.corpus_files)
        audio_containers.write_ogg_zip(entries, self.out_ogg_zip.get_path())
