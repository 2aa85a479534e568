"""Sisyphus jobs for lexicon, vocabularies, phoneme HDFs and speaker labels (wrappers around ``lexicon`` / ``label_hdfs``)."""
from __future__ import annotations

from typing import Sequence, Tuple

from ..sisyphus_api import Job, Task, tk

from . import corpus, label_hdfs, lexicon


class CmuLexiconJob(Job):
    """Word → stress-free CMUdict pronunciation for all words of the given corpora (``out_lexicon``, JSON).

    Unknown words are a hard error listing every OOV word with its seq tags (no G2P fallback);
    ``extra_pronunciations`` adds explicit entries, as a tuple of (word, (phonemes...)) pairs so it hashes stably.
    """

    def __init__(self, corpus_files: Sequence[tk.Path],
                 extra_pronunciations: Tuple[Tuple[str, Tuple[str, ...]], ...] = ()):
        self.corpus_files = list(corpus_files)
        self.extra_pronunciations = tuple(extra_pronunciations)
        self.out_lexicon = self.output_path("lexicon.json")

    def tasks(self):
        yield Task("run", mini_task=True)

    def run(self):
        entries = corpus.load_corpora(p.get_path() for p in self.corpus_files)
        lex = lexicon.build_lexicon(label_hdfs.collect_words(entries), dict(self.extra_pronunciations))
        lexicon.write_lexicon(self.out_lexicon.get_path(), lex)


class PhonemeVocabularyJob(Job):
    """RETURNN vocabulary of an inventory ("tts" or "asr_eow"): ``out_vocab`` (pickled label→index),
    ``out_labels`` (one label per line) and ``out_vocab_size``."""

    def __init__(self, kind: str):
        lexicon.check_inventory_kind(kind)  # fail at graph construction on a typo
        self.kind = kind
        self.out_vocab = self.output_path("vocab.pkl")
        self.out_labels = self.output_path("labels.txt")
        self.out_vocab_size = self.output_var("vocab_size")

    def tasks(self):
        yield Task("run", mini_task=True)

    def run(self):
        labels = lexicon.inventory(self.kind)
        lexicon.write_vocab(self.out_vocab.get_path(), self.out_labels.get_path(), labels)
        self.out_vocab_size.set(len(labels))


class PhonemeHdfJob(Job):
    """Phoneme index sequences (sparse HDF, labels = inventory) of ``kind`` for the corpora: ``out_hdf``,
    plus ``out_text`` (JSON tag → phoneme string, for inspection)."""

    def __init__(self, corpus_files: Sequence[tk.Path], lexicon_file: tk.Path, kind: str):
        lexicon.check_inventory_kind(kind)
        self.corpus_files = list(corpus_files)
        self.lexicon_file = lexicon_file
        self.kind = kind
        self.out_hdf = self.output_path("phonemes.hdf")
        self.out_text = self.output_path("phonemes.json")

    def tasks(self):
        yield Task("run", rqmt={"cpu": 1, "mem": 2, "time": 1})

    def run(self):
        entries = corpus.load_corpora(p.get_path() for p in self.corpus_files)
        label_hdfs.write_phoneme_hdf(entries, lexicon.read_lexicon(self.lexicon_file.get_path()), self.kind,
                                     self.out_hdf.get_path(), self.out_text.get_path())


class SpeakerLabelHdfJob(Job):
    """Speaker index per sequence (``out_hdf``, sparse ``[1]``), ``out_speaker_map`` (JSON speaker→index),
    ``out_num_speakers``."""

    def __init__(self, corpus_files: Sequence[tk.Path]):
        self.corpus_files = list(corpus_files)
        self.out_hdf = self.output_path("speaker_labels.hdf")
        self.out_speaker_map = self.output_path("speakers.json")
        self.out_num_speakers = self.output_var("num_speakers")

    def tasks(self):
        yield Task("run", mini_task=True)

    def run(self):
        entries = corpus.load_corpora(p.get_path() for p in self.corpus_files)
        n = label_hdfs.write_speaker_hdf(entries, self.out_hdf.get_path(), self.out_speaker_map.get_path())
        self.out_num_speakers.set(n)
