"""Greedy CTC decoding and label-sequence -> word mapping via a pronunciation lexicon (the lexicon-constrained beam
search is in :mod:`.lexicon_search`)."""
from __future__ import annotations

import gzip
import xml.etree.ElementTree as ET
from typing import AbstractSet, Dict, List, Optional, Sequence, Tuple

import torch


def greedy_ctc_decode(log_probs: torch.Tensor, lengths: torch.Tensor, blank: int) -> List[List[int]]:
    """Best path: argmax per frame, merge repeats, drop blanks. log_probs ``[B, T, V]``."""
    best = log_probs.argmax(-1).cpu()
    results = []
    for b, length in enumerate(lengths.cpu().tolist()):
        seq = best[b, :length].tolist()
        out, prev = [], None
        for label in seq:
            if label != prev and label != blank:
                out.append(label)
            prev = label
        results.append(out)
    return results


def read_vocab(path: str) -> List[str]:
    """Labels ordered by index from a RETURNN vocab file (python dict literal label->id) or one label per line."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if text.lstrip().startswith("{"):
        import ast

        mapping = ast.literal_eval(text)
        labels = [None] * (max(mapping.values()) + 1)
        for label, idx in mapping.items():
            labels[idx] = label
        return labels
    return [line.strip() for line in text.splitlines() if line.strip()]


def read_lexicon(path: str) -> List[Tuple[str, List[str]]]:
    """(word, phonemes) pairs from a JSON ``{word: [phonemes]}``, a Bliss lexicon XML (``.xml``/``.xml.gz``) or text lines ``word p1 p2 ...``."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        content = f.read()
    entries = []
    if content.lstrip().startswith("{"):  # JSON {word: [phonemes]} as written by data_prep.lexicon
        import json

        return [(word, list(phons)) for word, phons in json.loads(content).items()]
    if content.lstrip().startswith("<"):
        root = ET.fromstring(content)
        for lemma in root.iter("lemma"):
            orths = [o.text.strip() for o in lemma.findall("orth") if o.text]
            if not orths:
                continue
            for phon in lemma.findall("phon"):
                entries.append((orths[0], (phon.text or "").split()))
    else:
        for line in content.splitlines():
            parts = line.split()
            if parts:
                entries.append((parts[0], parts[1:]))
    return entries


def is_non_lexical(label: str, word_separator: Optional[str] = None, spelling_labels: AbstractSet[str] = frozenset()
                   ) -> bool:
    """Bracketed labels (``[UNKNOWN]``, ``[start]``, ``[end]``, ``[blank]``, ...) that are neither the word separator
    nor used in a lexicon spelling spell no word. Both decoders treat them as silence: a word boundary where the
    labels have a word separator, else nothing (as blank)."""
    return label.startswith("[") and label != word_separator and label not in spelling_labels


def word_spelling(pronunciation: Sequence[str], eow_suffix: Optional[str]) -> List[str]:
    """A lexicon pronunciation as the label sequence the ASR emits for the word: with ``eow_suffix`` the last
    phoneme carries it (``HH AH L OW#``, ``data_prep.lexicon.eow_tokens``), else the phonemes as they are (the
    word separator between words is silence, not part of a word)."""
    spelling = list(pronunciation)
    if eow_suffix and spelling:
        spelling[-1] = spelling[-1] + eow_suffix
    return spelling


def homophone_groups(lexicon: Sequence[Tuple[str, Sequence[str]]]) -> Dict[Tuple[str, ...], List[str]]:
    """Pronunciation -> its words in lexicon order (duplicates removed). Words starting with "[" (silence or noise
    lemmas of Bliss lexicons) stay in, so their pronunciations map to no output word."""
    groups: Dict[Tuple[str, ...], List[str]] = {}
    for word, phons in lexicon:
        group = groups.setdefault(tuple(phons), [])
        if word not in group:
            group.append(word)
    return groups


class LexiconWordMapper:
    """Maps a (greedy) label sequence to words.

    Words end at a label carrying ``eow_suffix`` (e.g. "AH#") or at the ``word_separator`` label; non-lexical labels
    (:func:`is_non_lexical`) count as the separator where there is one and are skipped otherwise. The phonemes of a
    word (suffix stripped) are looked up in the inverted lexicon:

    * a sequence that is no lexicon pronunciation becomes ``unknown_word`` ("<unk>"), which the reference never
      contains, so sclite counts it as a substitution or insertion: the recogniser's error, not a silent deletion;
    * homophones resolve to the word listed first in the lexicon (the project's JSON lexicons are sorted, so the
      alphabetically first): recognising "RED" where the reference says "READ" is an error;
    * lexicon words starting with "[" (silence/noise lemmas) are dropped from the output.
    """

    def __init__(self, lexicon: Sequence[Tuple[str, Sequence[str]]], eow_suffix: Optional[str] = "#",
                 word_separator: Optional[str] = None, unknown_word: str = "<unk>"):
        self.eow_suffix = eow_suffix
        self.word_separator = word_separator
        self.unknown_word = unknown_word
        self.pron_to_word: Dict[Tuple[str, ...], str] = {
            pron: words[0] for pron, words in homophone_groups(lexicon).items()}
        self.spelling_labels = frozenset(p for pron in self.pron_to_word for p in pron)

    def _strip(self, label: str) -> str:
        if self.eow_suffix and label.endswith(self.eow_suffix):
            return label[: -len(self.eow_suffix)]
        return label

    def __call__(self, labels: Sequence[str]) -> List[str]:
        words, current = [], []

        def flush():
            if current:
                words.append(self.pron_to_word.get(tuple(current), self.unknown_word))
                current.clear()

        for label in labels:
            if label == self.word_separator or is_non_lexical(self._strip(label), self.word_separator,
                                                              self.spelling_labels):
                if self.word_separator is not None:
                    flush()
                continue
            current.append(self._strip(label))
            if self.eow_suffix and label.endswith(self.eow_suffix):
                flush()
        flush()
        return [w for w in words if not w.startswith("[")]
