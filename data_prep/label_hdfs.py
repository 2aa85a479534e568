"""Writers for the sparse label streams: phoneme sequences (TTS / ASR-EOW) and speaker labels.

Why: MetaDataset joins streams by seq tag, so each stream is an HDF with the corpus seq tags; sparse int32
``inputs`` with ``labels`` make RETURNN report the correct vocabulary size for each key.
"""
from __future__ import annotations

import json
from typing import Dict, List, Mapping, Sequence

import numpy as np

from . import hdf, lexicon as lexmod
from .corpus import CorpusEntry


def collect_words(entries: Sequence[CorpusEntry]) -> Dict[str, List[str]]:
    """word → seq tags it occurs in (for OOV reporting)."""
    occ: Dict[str, List[str]] = {}
    for e in entries:
        for w in e.text.split():
            occ.setdefault(w, []).append(e.seq_tag)
    return occ


def write_phoneme_hdf(entries: Sequence[CorpusEntry], lex: Mapping[str, Sequence[str]], kind: str,
                      out_hdf: str, out_text: str) -> int:
    """Phoneme index sequences of ``kind`` ("tts" or "asr_eow") per seq tag; also a readable JSON of the strings."""
    labels = lexmod.inventory(kind)
    index = {l: i for i, l in enumerate(labels)}
    missing = {w: t for w, t in collect_words(entries).items() if w not in lex}
    if missing:
        raise lexmod.OOVError(missing)
    texts = {}
    with hdf.open_writer(out_hdf, dim=len(labels), ndim=1, labels=labels) as writer:
        for e in entries:
            toks = lexmod.tokens(kind, e.text, lex)
            texts[e.seq_tag] = " ".join(toks)
            hdf.write_seq(writer, e.seq_tag, np.array([index[t] for t in toks], dtype=np.int32))
    with open(out_text, "w", encoding="utf8") as f:
        json.dump(texts, f, indent=0)
    return len(entries)


def speaker_index(entries: Sequence[CorpusEntry]) -> Dict[str, int]:
    """Speakers sorted as strings → consecutive indices (stable for a given speaker set)."""
    return {s: i for i, s in enumerate(sorted({e.speaker for e in entries}))}


def write_speaker_hdf(entries: Sequence[CorpusEntry], out_hdf: str, out_map: str) -> int:
    """One int32 speaker index per sequence (``[1]``, sparse, dim = #speakers); returns #speakers."""
    spk = speaker_index(entries)
    labels = sorted(spk, key=spk.get)
    with hdf.open_writer(out_hdf, dim=len(spk), ndim=1, labels=labels) as writer:
        for e in entries:
            hdf.write_seq(writer, e.seq_tag, np.array([spk[e.speaker]], dtype=np.int32))
    with open(out_map, "w", encoding="utf8") as f:
        json.dump(spk, f, indent=0)
    return len(spk)
