"""Lexicon-constrained CTC beam search with an optional word n-gram LM (flashlight-text's ``LexiconDecoder``).

Why flashlight-text: it is the decoder the original setup used (wav2letter/flashlight), ships KenLM in its PyPI
wheel (ARPA, gzipped ARPA and KenLM binaries load as they are) and is what torchaudio's CTC decoder wraps.

How the project's labels map onto it:

* tokens = the ASR vocabulary labels in index order, plus the CTC blank as the extra last index (``AsrModel``);
* a word's spelling is the label sequence the model is trained to emit for it (:func:`.ctc_decoding.word_spelling`):
  ``HH AH L OW#`` with end-of-word labels; the bare phonemes where a word-separator label (``[space]``) separates
  words;
* the silence token is the word separator where there is one (flashlight allows it between words), else the
  blank; non-lexical labels (``[start]``, ``[end]``, ``[UNKNOWN]``, ...) have their probability added to it;
* homophones: with an LM every lexicon word the LM knows is a candidate and the LM decides; of the words it does
  not know (they all get its ``<unk>`` probability, so they would tie) and, without an LM, of all words of a
  homophone group, only the lexicon-first one (alphabetically first for the project's sorted lexicons) is kept, as
  in greedy decoding. Unknown words cannot come out: the search only spells lexicon words.
"""
from __future__ import annotations

import math
from typing import List, Optional, Sequence, Tuple

import numpy as np

from .configs import SearchConfig
from .ctc_decoding import homophone_groups, is_non_lexical, word_spelling


class LexiconBeamSearch:
    def __init__(self, labels: Sequence[str], lexicon: Sequence[Tuple[str, Sequence[str]]], search: SearchConfig,
                 eow_suffix: Optional[str] = "#", word_separator: Optional[str] = None):
        from flashlight.lib.text.decoder import (CriterionType, LexiconDecoder, LexiconDecoderOptions, SmearingMode,
                                                 Trie, ZeroLM)
        from flashlight.lib.text.decoder.kenlm import KenLM
        from flashlight.lib.text.dictionary import Dictionary

        self.labels = list(labels)
        self.blank = len(self.labels)
        self.num_tokens = len(self.labels) + 1
        token_index = {label: i for i, label in enumerate(self.labels)}
        if word_separator is not None and word_separator not in token_index:
            raise ValueError(f"word separator {word_separator!r} is not one of the {len(self.labels)} labels")
        self.silence = token_index[word_separator] if word_separator is not None else self.blank

        groups = []  # (spelling as token ids, words in lexicon order)
        for pron, words in homophone_groups(lexicon).items():
            words = [w for w in words if not w.startswith("[")]
            if not words:
                continue
            spelling = word_spelling(pron, eow_suffix)
            unknown = [t for t in spelling if t not in token_index]
            if unknown or not spelling:
                raise ValueError(f"lexicon word {words[0]!r}: spelling {spelling} has labels {unknown} that are not "
                                 f"in the recogniser's vocabulary")
            groups.append(([token_index[t] for t in spelling], words))
        if not groups:
            raise ValueError("the lexicon has no words to recognise")
        spelling_labels = {self.labels[t] for spelling, _ in groups for t in spelling}
        self.non_lexical = [i for i, label in enumerate(self.labels)
                            if is_non_lexical(label, word_separator, spelling_labels) and i != self.silence]

        self.words = sorted({w for _, words in groups for w in words}) + [search.unknown_word]
        word_index = {w: i for i, w in enumerate(self.words)}
        self.word_dict = Dictionary(self.words)
        self.lm = KenLM(str(search.lm_file), self.word_dict) if search.lm_file is not None else ZeroLM()
        start = self.lm.start(False)
        unk_index = word_index[search.unknown_word]
        unk_score = self.lm.score(start, unk_index)[1]

        self.trie = Trie(self.num_tokens, self.silence)
        self.candidates: List[str] = []
        for spelling, words in groups:
            if search.lm_file is None:
                kept = words[:1]
            else:
                scores = {w: self.lm.score(start, word_index[w])[1] for w in words}
                known = [w for w in words if scores[w] != unk_score]
                unknown = [w for w in words if scores[w] == unk_score]
                kept = known + unknown[:1]
            for word in kept:
                self.trie.insert(spelling, word_index[word], self.lm.score(start, word_index[word])[1])
                self.candidates.append(word)
        self.trie.smear(SmearingMode.MAX)

        options = LexiconDecoderOptions(
            beam_size=search.beam_size,
            beam_size_token=search.beam_size_token or self.num_tokens,
            beam_threshold=search.beam_threshold,
            lm_weight=search.lm_weight,
            word_score=search.word_score,
            unk_score=-math.inf,
            sil_score=search.sil_score,
            log_add=False,
            criterion_type=CriterionType.CTC,
        )
        self.decoder = LexiconDecoder(options, self.trie, self.lm, self.silence, self.blank, unk_index, [], False)

    def emissions(self, log_probs: np.ndarray) -> np.ndarray:
        """``[T, V+1]`` log-probs as the decoder reads them: non-lexical labels folded into the silence token."""
        log_probs = np.asarray(log_probs, dtype=np.float32)
        if log_probs.ndim != 2 or log_probs.shape[1] != self.num_tokens:
            raise ValueError(f"expected CTC log-probs [T, {self.num_tokens}] ({len(self.labels)} labels + blank), "
                             f"got shape {log_probs.shape}")
        out = np.array(log_probs, dtype=np.float32, order="C")
        if self.non_lexical:
            cols = [self.silence] + self.non_lexical
            out[:, self.silence] = np.logaddexp.reduce(log_probs[:, cols], axis=1)
            out[:, self.non_lexical] = -np.inf
        return out

    def __call__(self, log_probs: np.ndarray) -> List[str]:
        """Best word sequence for one utterance's CTC log-probs ``[T, V+1]`` (blank last)."""
        emissions = self.emissions(log_probs)
        if emissions.shape[0] == 0:
            return []
        results = self.decoder.decode(emissions.ctypes.data, emissions.shape[0], emissions.shape[1])
        if not results:
            return []
        return [self.words[i] for i in results[0].words if i >= 0]
