"""Greedy CTC decoding and label-sequence -> word mapping via a pronunciation lexicon."""
from __future__ import annotations

import gzip
import xml.etree.ElementTree as ET
from typing import Dict, List, Optional, Sequence, Tuple

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


class LexiconWordMapper:
    """Maps a label sequence to words.

    Words end at a label carrying ``eow_suffix`` (e.g. "AH#") or at an explicit ``word_separator`` label; the
    phonemes of a word (suffix stripped) are looked up in the inverted lexicon; unknown pronunciations give
    ``unknown_word``. Words starting with "[" are dropped (as in the original search output)."""

    def __init__(self, lexicon: Sequence[Tuple[str, Sequence[str]]], eow_suffix: Optional[str] = "#",
                 word_separator: Optional[str] = None, unknown_word: str = "[UNKNOWN]"):
        self.eow_suffix = eow_suffix
        self.word_separator = word_separator
        self.unknown_word = unknown_word
        self.pron_to_word: Dict[Tuple[str, ...], str] = {}
        for word, phons in lexicon:
            key = tuple(self._strip(p) for p in phons)
            self.pron_to_word.setdefault(key, word)

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
            if self.word_separator is not None and label == self.word_separator:
                flush()
                continue
            current.append(self._strip(label))
            if self.eow_suffix and label.endswith(self.eow_suffix):
                flush()
        flush()
        return [w for w in words if not w.startswith("[")]
