"""Word n-gram LM with interpolated Witten-Bell smoothing, written as an ARPA backoff model (KenLM reads it).

Why hand-written: no maintained Python package estimates an ARPA model (KenLM's ``lmplz`` is not in its PyPI
package, SRILM is not free software, IRSTLM is an unmaintained shell pipeline, the pure-Python builders on PyPI do
not implement interpolated smoothing correctly). The embedded corpus is a few hundred sentences, so a small exact
estimator is enough; for real LibriSpeech the official 4-gram ARPA is used instead.

Model (Witten & Bell 1991; SRILM's ``-wbdiscount -interpolate``), over the sentence ``<s> w1 .. wk </s>``:

* unigrams, interpolated with the uniform distribution over the vocabulary ``V`` (every lexicon word, ``</s>``,
  ``<unk>``; ``<s>`` is never predicted):  ``P(w) = (c(w) + T0/|V|) / (N + T0)``, ``N`` = tokens, ``T0`` = seen types;
* higher orders: ``P(w|h) = (c(h w) + T(h) P(w|h')) / (c(h) + T(h))`` with ``c(h) = sum_w c(h w)``, ``T(h)`` = number
  of distinct words seen after ``h``, ``h'`` = ``h`` without its first word.

In ARPA form every seen n-gram gets its interpolated probability and every seen context ``h`` the backoff weight
``T(h) / (c(h) + T(h))``: for an unseen ``h w`` the interpolated formula is exactly that weight times ``P(w|h')``,
so the backoff model and the interpolated model are the same distribution (tested).
"""
from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

BOS = "<s>"
EOS = "</s>"
UNK = "<unk>"
ARPA_LOG10_ZERO = -99.0  # KenLM's / SRILM's "probability 0" for <s>

Ngram = Tuple[str, ...]


@dataclass
class WittenBellLm:
    """An estimated model: ``probs[n][ngram]`` (n = 1..order) and ``backoffs[context]`` as plain probabilities."""

    order: int
    vocabulary: Tuple[str, ...]  # predicted words: every word, </s>, <unk> (not <s>)
    probs: Dict[int, Dict[Ngram, float]] = field(default_factory=dict)
    backoffs: Dict[Ngram, float] = field(default_factory=dict)

    def prob(self, word: str, context: Sequence[str] = ()) -> float:
        """``P(word | context)`` of the backoff model (only the last ``order - 1`` context words matter)."""
        if word == BOS:
            raise ValueError(f"{BOS} is never predicted")
        context = tuple(context)[-(self.order - 1):] if self.order > 1 else ()
        if (word,) not in self.probs[1]:
            word = UNK
        weight = 1.0
        while True:
            gram = context + (word,)
            p = self.probs[len(gram)].get(gram)
            if p is not None:
                return weight * p
            weight *= self.backoffs.get(context, 1.0)
            context = context[1:]


def sentence_ngrams(words: Sequence[str], order: int) -> Iterable[Ngram]:
    """Every n-gram (n = 1..order) of ``<s> words </s>`` except the unigram ``<s>``."""
    seq = (BOS, *words, EOS)
    for n in range(1, order + 1):
        for i in range(len(seq) - n + 1):
            gram = seq[i:i + n]
            if gram != (BOS,):
                yield gram


def estimate_witten_bell(sentences: Iterable[Sequence[str]], order: int = 3,
                         vocabulary: Optional[Iterable[str]] = None) -> WittenBellLm:
    """Estimate the model from tokenised sentences.

    :param vocabulary: words that must get a probability even if the text never has them (the recognition lexicon);
        text words outside a given vocabulary count as ``<unk>``. ``None``: the words of the text.
    """
    if order < 1:
        raise ValueError(f"n-gram order must be >= 1, got {order}")
    vocab = None if vocabulary is None else {w for w in vocabulary if w not in (BOS, EOS, UNK)}
    for w in vocab or ():
        if not w or any(c.isspace() for c in w):
            raise ValueError(f"vocabulary word {w!r} is empty or contains white space")
    counts: Counter = Counter()
    text_words = set()
    num_sentences = 0
    for sentence in sentences:
        words = [w if vocab is None or w in vocab else UNK for w in sentence]
        for w in words:
            if w in (BOS, EOS):
                raise ValueError(f"sentence {' '.join(sentence)!r} contains the reserved token {w}")
        text_words.update(words)
        counts.update(sentence_ngrams(words, order))
        num_sentences += 1
    if num_sentences == 0:
        raise ValueError("no sentences to estimate an n-gram model from")
    predicted = sorted((vocab if vocab is not None else set()) | text_words | {EOS, UNK})
    lm = WittenBellLm(order, tuple(predicted), {n: {} for n in range(1, order + 1)}, {})

    unigrams = {g[0]: c for g, c in counts.items() if len(g) == 1}
    total = sum(unigrams.values())
    types = len(unigrams)
    for w in predicted:
        lm.probs[1][(w,)] = (unigrams.get(w, 0) + types / len(predicted)) / (total + types)

    followers: Dict[Ngram, List[Tuple[str, int]]] = defaultdict(list)  # context -> [(word, count)]
    for gram, c in counts.items():
        if len(gram) >= 2:
            followers[gram[:-1]].append((gram[-1], c))
    for n in range(2, order + 1):
        for context, seen in sorted((h, s) for h, s in followers.items() if len(h) == n - 1):
            context_count = sum(c for _, c in seen)
            distinct = len(seen)
            lower = context[1:]
            for word, c in seen:
                lower_prob = lm.probs[n - 1][lower + (word,)]  # seen: every suffix of a seen n-gram is seen
                lm.probs[n][context + (word,)] = (c + distinct * lower_prob) / (context_count + distinct)
            lm.backoffs[context] = distinct / (context_count + distinct)
    return lm


def _log10(p: float) -> str:
    return f"{math.log10(p):.7f}"


def write_arpa(lm: WittenBellLm, path: str) -> None:
    """ARPA text: ``\\data\\`` counts, then per order ``log10 P  n-gram  [log10 backoff]``."""
    sections = {1: len(lm.probs[1]) + 1}  # + <s>
    for n in range(2, lm.order + 1):
        sections[n] = len(lm.probs[n])
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n\\data\\\n")
        for n, count in sections.items():
            f.write(f"ngram {n}={count}\n")
        for n in range(1, lm.order + 1):
            f.write(f"\n\\{n}-grams:\n")
            if n == 1:
                entries = [((BOS,), None)] + [(g, p) for g, p in sorted(lm.probs[1].items())]
            else:
                entries = sorted(lm.probs[n].items())
            for gram, p in entries:
                prob = f"{ARPA_LOG10_ZERO:.1f}" if p is None else _log10(p)
                line = f"{prob}\t{' '.join(gram)}"
                if n < lm.order and gram in lm.backoffs:
                    line += f"\t{_log10(lm.backoffs[gram])}"
                f.write(line + "\n")
        f.write("\n\\end\\\n")
