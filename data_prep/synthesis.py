"""Real speech synthesis with Debian ``flite`` and ``espeak-ng`` for the embedded LibriSpeech-like corpus.

Why: the pipeline (features, alignments, x-vectors, RETURNN datasets) must be exercised on actual speech
with per-speaker acoustic differences, without downloading LibriSpeech. Both synthesizers are
deterministic, so the corpus is reproducible from its (hashed) settings alone.
"""
from __future__ import annotations

import os
import random
import shutil
import subprocess
import tempfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

from .text_generation import generate_sentences

SAMPLE_RATE = 16000


@dataclass(frozen=True)
class SyntheticVoice:
    """One synthetic speaker.

    :param speaker_id: LibriSpeech-style numeric speaker id (directory name)
    :param engine: "flite" or "espeak-ng"
    :param voice: flite voice name (``flite -lv``) or espeak-ng voice incl. variant, e.g. "en-us+m3"
    :param speed: espeak-ng words per minute; for flite a duration stretch factor is derived from it (175 = 1.0)
    :param pitch: espeak-ng pitch 0..99 (ignored by flite)
    :param gender: "M"/"F", only written to SPEAKERS.TXT
    """

    speaker_id: str
    engine: str
    voice: str
    speed: int = 165
    pitch: int = 50
    gender: str = "M"


@dataclass(frozen=True)
class SubsetSpec:
    """A LibriSpeech subset of the embedded corpus: which voices speak and how many utterances each."""

    name: str
    speaker_ids: Tuple[str, ...]
    utterances_per_speaker: int


DEFAULT_VOICES: Tuple[SyntheticVoice, ...] = (
    SyntheticVoice("1001", "flite", "slt", gender="F"),
    SyntheticVoice("1002", "flite", "awb"),
    SyntheticVoice("1003", "flite", "rms"),
    SyntheticVoice("1004", "flite", "kal16"),
    SyntheticVoice("1005", "espeak-ng", "en-us+m1", speed=160, pitch=40),
    SyntheticVoice("1006", "espeak-ng", "en+f2", speed=150, pitch=65, gender="F"),
    SyntheticVoice("1007", "espeak-ng", "en-gb+m3", speed=175, pitch=35),
    SyntheticVoice("1008", "espeak-ng", "en-us+f4", speed=145, pitch=70, gender="F"),
    SyntheticVoice("2001", "flite", "kal"),
    SyntheticVoice("2002", "espeak-ng", "en-gb-scotland+f3", speed=155, pitch=60, gender="F"),
    SyntheticVoice("3001", "espeak-ng", "en-us+m5", speed=170, pitch=45),
    SyntheticVoice("3002", "espeak-ng", "en+f5", speed=150, pitch=75, gender="F"),
)

DEFAULT_SUBSETS: Tuple[SubsetSpec, ...] = (
    SubsetSpec("train-clean-100", ("1001", "1002", "1003", "1004", "1005", "1006", "1007", "1008"), 25),
    SubsetSpec("dev-clean", ("2001", "2002"), 10),
    SubsetSpec("test-clean", ("3001", "3002"), 10),
)


@dataclass(frozen=True)
class UtterancePlan:
    """Everything needed to synthesise one file; built up-front so synthesis order cannot change results."""

    subset: str
    voice: SyntheticVoice
    chapter_id: str
    utt_id: str  # "<speaker>-<chapter>-<NNNN>"
    text: str
    speed_factor: float


def stable_seed(*parts: object) -> int:
    """Seed that is stable across processes (``hash()`` of str is salted per process)."""
    return zlib.crc32("|".join(str(p) for p in parts).encode("utf8"))


def plan_corpus(
    voices: Sequence[SyntheticVoice], subsets: Sequence[SubsetSpec], seed: int, max_words: int = 24
) -> List[UtterancePlan]:
    """Deterministic list of all utterances (text, ids, per-utterance speaking-rate jitter)."""
    by_id: Dict[str, SyntheticVoice] = {v.speaker_id: v for v in voices}
    if len(by_id) != len(voices):
        raise ValueError("duplicate speaker ids in voices")
    plans: List[UtterancePlan] = []
    for subset in subsets:
        for spk in subset.speaker_ids:
            if spk not in by_id:
                raise ValueError(f"subset {subset.name!r} uses unknown speaker id {spk!r}")
            voice = by_id[spk]
            chapter = str(100 + stable_seed(seed, subset.name, spk) % 900)
            texts = generate_sentences(stable_seed(seed, subset.name, spk, "text"), subset.utterances_per_speaker,
                                       max_words=max_words)
            jitter_rng = random.Random(stable_seed(seed, subset.name, spk, "speed"))
            for i, text in enumerate(texts):
                plans.append(UtterancePlan(subset.name, voice, chapter, f"{spk}-{chapter}-{i:04d}", text,
                                           speed_factor=jitter_rng.uniform(0.92, 1.08)))
    return plans


def _synth_command(voice: SyntheticVoice, text: str, speed_factor: float, wav_out: str) -> List[str]:
    if voice.engine == "flite":
        stretch = 175.0 / voice.speed / speed_factor
        return ["flite", "-voice", voice.voice, "--setf", f"duration_stretch={stretch:.4f}", "-t", text, "-o", wav_out]
    if voice.engine == "espeak-ng":
        wpm = int(round(voice.speed * speed_factor))
        return ["espeak-ng", "-v", voice.voice, "-s", str(wpm), "-p", str(voice.pitch), "-w", wav_out, text]
    raise ValueError(f"unknown TTS engine {voice.engine!r} for speaker {voice.speaker_id}")


def synthesize_to_flac(voice: SyntheticVoice, text: str, speed_factor: float, flac_out: str,
                       sample_rate: int = SAMPLE_RATE) -> None:
    """Synthesise ``text`` and write a 16-bit mono FLAC at ``sample_rate``.

    sox resamples (flite kal is 8 kHz, espeak-ng 22.05 kHz), removes DC, normalises to -3 dBFS so voices have
    comparable levels, and runs with ``-R -D`` (repeatable, no dither) so the output is bit-exact reproducible.
    """
    with tempfile.TemporaryDirectory() as tmp:
        wav = os.path.join(tmp, "synth.wav")
        cmd = _synth_command(voice, text, speed_factor, wav)
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0 or not os.path.exists(wav) or os.path.getsize(wav) <= 44:
            raise RuntimeError(f"synthesis failed for speaker {voice.speaker_id} ({' '.join(cmd[:3])}): {res.stderr}")
        cmd = ["sox", "-R", "-D", wav, "-r", str(sample_rate), "-b", "16", "-c", "1", flac_out,
               "highpass", "20", "gain", "-n", "-3"]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError(f"sox conversion failed for {flac_out}: {res.stderr}")


def _check_tools(voices: Sequence[SyntheticVoice]) -> None:
    needed = {"sox"} | {v.engine for v in voices}
    missing = [t for t in sorted(needed) if shutil.which(t) is None]
    if missing:
        raise RuntimeError(f"missing synthesis tools: {missing} (Debian packages flite / espeak-ng / sox)")


def write_librispeech_tree(root: str, plans: Sequence[UtterancePlan], num_workers: int = 2) -> None:
    """Write FLACs, ``*.trans.txt`` and ``SPEAKERS.TXT`` in the LibriSpeech directory layout under ``root``.

    Synthesis runs in ``num_workers`` threads (each waits on a subprocess); everything written is independent of
    the completion order.
    """
    _check_tools([p.voice for p in plans])
    chapters: Dict[Tuple[str, str, str], List[UtterancePlan]] = {}
    for p in plans:
        chapters.setdefault((p.subset, p.voice.speaker_id, p.chapter_id), []).append(p)
    for (subset, spk, chap) in chapters:
        os.makedirs(os.path.join(root, subset, spk, chap), exist_ok=True)

    def _one(p: UtterancePlan) -> None:
        out = os.path.join(root, p.subset, p.voice.speaker_id, p.chapter_id, p.utt_id + ".flac")
        synthesize_to_flac(p.voice, p.text, p.speed_factor, out)

    with ThreadPoolExecutor(max_workers=max(1, num_workers)) as pool:
        list(pool.map(_one, plans))  # list() re-raises the first worker exception

    for (subset, spk, chap), utts in sorted(chapters.items()):
        with open(os.path.join(root, subset, spk, chap, f"{spk}-{chap}.trans.txt"), "w") as f:
            for p in utts:
                f.write(f"{p.utt_id} {p.text}\n")
    speakers = {}
    for p in plans:
        speakers.setdefault(p.voice.speaker_id, (p.voice, p.subset))
    with open(os.path.join(root, "SPEAKERS.TXT"), "w") as f:
        f.write(";ID  |SEX| SUBSET           |MINUTES| NAME\n")
        for spk, (voice, subset) in sorted(speakers.items()):
            f.write(f"{spk:<5}| {voice.gender} | {subset:<17}| 0.00 | {voice.engine}:{voice.voice}\n")
