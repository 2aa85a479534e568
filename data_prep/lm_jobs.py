"""Sisyphus job estimating the recognition word n-gram LM from training transcripts (``ngram_lm``)."""
from __future__ import annotations

from typing import Optional, Sequence

from ..sisyphus_api import Job, Task, tk

from . import corpus, ngram_lm


class NgramLmFromCorpusJob(Job):
    """Word n-gram LM (interpolated Witten-Bell, ARPA ``out_arpa``) from the texts of corpus descriptions.

    Pass only training transcripts (e.g. a corpus filtered to the TTS train segments): texts of an evaluation set
    in the LM would make its WER meaningless. ``lexicon`` (the recognition lexicon, JSON) is the vocabulary: every
    lexicon word gets a probability, also those the texts never contain. The file is loaded once with KenLM (the
    loader the search uses) before the job finishes, so a malformed model fails here, not in the search.
    ``out_num_sentences`` / ``out_num_words``: what it was estimated from.
    """

    def __init__(self, corpus_files: Sequence[tk.Path], lexicon: Optional[tk.Path] = None, order: int = 3):
        self.corpus_files = list(corpus_files)
        self.lexicon = lexicon
        self.order = order
        self.out_arpa = self.output_path("lm.arpa")
        self.out_num_sentences = self.output_var("num_sentences")
        self.out_num_words = self.output_var("num_words")

    def tasks(self):
        yield Task("run", mini_task=True)

    def run(self) -> None:
        from .lexicon import read_lexicon

        entries = corpus.load_corpora(p.get_path() for p in self.corpus_files)
        if not entries:
            raise ValueError(f"{[p.get_path() for p in self.corpus_files]}: no utterances to estimate an LM from")
        sentences = [e.text.split() for e in entries]
        vocabulary = list(read_lexicon(self.lexicon.get_path())) if self.lexicon is not None else None
        lm = ngram_lm.estimate_witten_bell(sentences, self.order, vocabulary)
        ngram_lm.write_arpa(lm, self.out_arpa.get_path())
        check_arpa_loads(self.out_arpa.get_path(), lm.vocabulary)
        self.out_num_sentences.set(len(sentences))
        self.out_num_words.set(sum(len(s) for s in sentences))


def check_arpa_loads(path: str, words: Sequence[str]) -> None:
    """Load ``path`` with flashlight-text's KenLM and score every word once (raises on a malformed file)."""
    from flashlight.lib.text.decoder.kenlm import KenLM
    from flashlight.lib.text.dictionary import Dictionary

    lm = KenLM(path, Dictionary(list(words)))
    start = lm.start(False)
    for i in range(len(words)):
        lm.score(start, i)
