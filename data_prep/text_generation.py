"""Deterministic English-like sentence generator for the embedded corpus.

Why: tests and the embedded pipeline need REAL speech with known transcripts; a seeded template grammar
gives reproducible, pronounceable text whose words are all in CMUdict (see ``wordlist.py``).
"""
from __future__ import annotations

import random
from typing import List

from . import wordlist as wl


def _noun_phrase(rng: random.Random) -> List[str]:
    words = [rng.choice(wl.DETERMINERS)]
    if rng.random() < 0.6:
        words.append(rng.choice(wl.ADJECTIVES))
    words.append(rng.choice(wl.NOUNS))
    return words


def _clause(rng: random.Random) -> List[str]:
    words = _noun_phrase(rng)
    if rng.random() < 0.55:
        words.append(rng.choice(wl.TRANSITIVE_VERBS))
        words += _noun_phrase(rng)
    else:
        words.append(rng.choice(wl.INTRANSITIVE_VERBS))
    if rng.random() < 0.4:
        words.append(rng.choice(wl.PREPOSITIONS))
        words += _noun_phrase(rng)
    if rng.random() < 0.3:
        words.append(rng.choice(wl.ADVERBS))
    return words


def generate_sentence(rng: random.Random, max_words: int = 24) -> str:
    """One uppercase sentence (LibriSpeech transcript style: no punctuation, single spaces)."""
    words = _clause(rng)
    if rng.random() < 0.35:
        words.append(rng.choice(wl.CONJUNCTIONS))
        words += _clause(rng)
    return " ".join(words[:max_words]).upper()


def generate_sentences(seed: int, count: int, max_words: int = 24) -> List[str]:
    """``count`` sentences from an isolated RNG, so results only depend on ``seed`` (and not on call order)."""
    rng = random.Random(seed)
    return [generate_sentence(rng, max_words=max_words) for _ in range(count)]


def all_words() -> List[str]:
    """Every word the generator can emit (uppercase), used to check lexicon coverage."""
    cats = (wl.DETERMINERS, wl.ADJECTIVES, wl.NOUNS, wl.TRANSITIVE_VERBS, wl.INTRANSITIVE_VERBS, wl.ADVERBS,
            wl.PREPOSITIONS, wl.CONJUNCTIONS)
    return sorted({w.upper() for c in cats for w in c})
