"""Real speech synthesis with Debian ``flite`` and ``espeak-ng`` for the embedded LibriSpeech-like corpus.

Why: the pipeline (features, alignments, x-vectors, RETURNN datasets) must be exercised on actual speech
with per-speaker acoustic differences, without downloading LibriSpeech. Both synthesizers are
deterministic, so the corpus is reproducible from its (hashed) settings alone.

flite runs with ``-psdur``, which prints the phone segments it synthesised (``phone:end_seconds``, CMU phone set
in lower case, ``pau`` = silence) without changing the audio (checked: the wav is bit-identical with and without
it). These are the ground-truth alignments of the flite utterances (:mod:`.reference_alignment` maps them onto
the TTS tokens); espeak-ng has no such output, so its utterances have no reference. The printed times already
include ``duration_stretch`` and are checked against the wav flite wrote (:func:`check_flite_segments`); the sox
conversion to 16 kHz (kal is 8 kHz) only resamples, so times in seconds stay valid and the sample count is checked
to scale exactly.
"""
from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
import tempfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import soundfile

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


def flite_duration_stretch(voice: SyntheticVoice, speed_factor: float) -> str:
    """flite's ``duration_stretch`` for a voice and an utterance's speaking-rate jitter, as passed to flite."""
    return f"{175.0 / voice.speed / speed_factor:.4f}"


def _synth_command(voice: SyntheticVoice, text: str, speed_factor: float, wav_out: str) -> List[str]:
    if voice.engine == "flite":
        stretch = flite_duration_stretch(voice, speed_factor)
        return ["flite", "-voice", voice.voice, "-psdur", "--setf", f"duration_stretch={stretch}", "-t", text,
                "-o", wav_out]
    if voice.engine == "espeak-ng":
        wpm = int(round(voice.speed * speed_factor))
        return ["espeak-ng", "-v", voice.voice, "-s", str(wpm), "-p", str(voice.pitch), "-w", wav_out, text]
    raise ValueError(f"unknown TTS engine {voice.engine!r} for speaker {voice.speaker_id}")


@dataclass(frozen=True)
class FliteSegments:
    """Phone segments flite printed for one utterance (``-psdur``) and the length of the wav it wrote.

    :param phones: CMU phones in lower case (``pau`` = silence), in time order
    :param ends: end time of each phone in seconds (the first phone starts at 0)
    :param wav_seconds: duration of flite's own wav (before resampling)
    """

    phones: Tuple[str, ...]
    ends: Tuple[float, ...]
    wav_seconds: float


_PSDUR_ITEM = re.compile(r"^([a-z]+):(\d+(?:\.\d+)?)$")
# Where flite's wav ends relative to the printed segments (measured on all voices, see check_flite_segments):
# cluster-unit / clustergen voices (slt, awb, rms) at the end of the final pau, rounded to their 5 ms frames;
# diphone voices (kal, kal16) in the middle of the final pau (cst_diphone.c: the last unit ends at the middle of
# the last segment), up to one pitch period earlier.
FLITE_END_TOLERANCE_SECONDS = 0.015


def parse_flite_psdur(stdout: str, what: str = "flite output") -> Tuple[Tuple[str, ...], Tuple[float, ...]]:
    """``"pau:0.215 eh:0.312 …"`` → (phones, end times); raises ``ValueError`` naming ``what`` on anything else."""
    phones, ends = [], []
    for item in stdout.split():
        m = _PSDUR_ITEM.match(item)
        if m is None:
            raise ValueError(f"{what}: unexpected item {item!r} in flite -psdur output {stdout[:200]!r}")
        phones.append(m.group(1))
        ends.append(float(m.group(2)))
    if not phones:
        raise ValueError(f"{what}: flite -psdur printed no segments")
    return tuple(phones), tuple(ends)


def check_flite_segments(seg: FliteSegments, what: str = "utterance") -> None:
    """Segments must be time-ordered, start and end with ``pau`` and agree with the wav's length.

    The wav must end at the final pause's end (clustergen / cluster-unit voices) or at its middle (diphone voices),
    each within :data:`FLITE_END_TOLERANCE_SECONDS`; anything else means the printed times do not describe this
    audio (e.g. a flite version that ignores ``duration_stretch`` in the printout).
    """
    ends = seg.ends
    if any(b < a for a, b in zip(ends, ends[1:])) or ends[0] < 0:
        raise ValueError(f"{what}: flite segment end times are not increasing: {list(zip(seg.phones, ends))}")
    if len(ends) < 2 or seg.phones[0] != "pau" or seg.phones[-1] != "pau":
        raise ValueError(f"{what}: flite segments do not start and end with a pause: {seg.phones}")
    middle = 0.5 * (ends[-2] + ends[-1])
    off = min(abs(seg.wav_seconds - ends[-1]), abs(seg.wav_seconds - middle))
    if off > FLITE_END_TOLERANCE_SECONDS:
        raise ValueError(f"{what}: flite's wav lasts {seg.wav_seconds:.4f} s, but its segments end at {ends[-1]:.3f} s "
                         f"(final pause from {ends[-2]:.3f} s): the printed times do not match the audio")


def synthesize_to_flac(voice: SyntheticVoice, text: str, speed_factor: float, flac_out: str,
                       sample_rate: int = SAMPLE_RATE) -> Optional[FliteSegments]:
    """Synthesise ``text`` and write a 16-bit mono FLAC at ``sample_rate``; returns flite's phone segments
    (checked against its wav) for flite voices, None for espeak-ng.

    sox resamples (flite kal is 8 kHz, espeak-ng 22.05 kHz), removes DC, normalises to -3 dBFS so voices have
    comparable levels, and runs with ``-R -D`` (repeatable, no dither) so the output is bit-exact reproducible.
    None of these change the timing; the FLAC's sample count is checked to be the wav's, scaled by the rate ratio.
    """
    with tempfile.TemporaryDirectory() as tmp:
        wav = os.path.join(tmp, "synth.wav")
        cmd = _synth_command(voice, text, speed_factor, wav)
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0 or not os.path.exists(wav) or os.path.getsize(wav) <= 44:
            raise RuntimeError(f"synthesis failed for speaker {voice.speaker_id} ({' '.join(cmd[:3])}): {res.stderr}")
        wav_info = soundfile.info(wav)
        segments = None
        if voice.engine == "flite":
            what = f"speaker {voice.speaker_id} (flite {voice.voice}), text {text!r}"
            phones, ends = parse_flite_psdur(res.stdout, what)
            segments = FliteSegments(phones, ends, wav_info.frames / wav_info.samplerate)
            check_flite_segments(segments, what)
        cmd = ["sox", "-R", "-D", wav, "-r", str(sample_rate), "-b", "16", "-c", "1", flac_out,
               "highpass", "20", "gain", "-n", "-3"]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError(f"sox conversion failed for {flac_out}: {res.stderr}")
        expected = round(wav_info.frames * sample_rate / wav_info.samplerate)
        got = soundfile.info(flac_out).frames
        if abs(got - expected) > 1:
            raise RuntimeError(f"sox changed the length of {flac_out}: {got} samples, expected {expected}")
    return segments


def _check_tools(voices: Sequence[SyntheticVoice]) -> None:
    needed = {"sox"} | {v.engine for v in voices}
    missing = [t for t in sorted(needed) if shutil.which(t) is None]
    if missing:
        raise RuntimeError(f"missing synthesis tools: {missing} (Debian packages flite / espeak-ng / sox)")


def write_librispeech_tree(root: str, plans: Sequence[UtterancePlan], num_workers: int = 2,
                           flite_segments_out: Optional[str] = None) -> None:
    """Write FLACs, ``*.trans.txt`` and ``SPEAKERS.TXT`` in the LibriSpeech directory layout under ``root``, and
    (if ``flite_segments_out`` is given) flite's phone segments of every flite utterance as JSON
    (:func:`write_flite_segments`).

    Synthesis runs in ``num_workers`` threads (each waits on a subprocess); everything written is independent of
    the completion order.
    """
    _check_tools([p.voice for p in plans])
    chapters: Dict[Tuple[str, str, str], List[UtterancePlan]] = {}
    for p in plans:
        chapters.setdefault((p.subset, p.voice.speaker_id, p.chapter_id), []).append(p)
    for (subset, spk, chap) in chapters:
        os.makedirs(os.path.join(root, subset, spk, chap), exist_ok=True)

    def _one(p: UtterancePlan) -> Optional[FliteSegments]:
        out = os.path.join(root, p.subset, p.voice.speaker_id, p.chapter_id, p.utt_id + ".flac")
        return synthesize_to_flac(p.voice, p.text, p.speed_factor, out)

    with ThreadPoolExecutor(max_workers=max(1, num_workers)) as pool:
        segments = list(pool.map(_one, plans))  # list() re-raises the first worker exception
    if flite_segments_out is not None:
        write_flite_segments(flite_segments_out, plans, segments)

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


def write_flite_segments(path: str, plans: Sequence[UtterancePlan],
                         segments: Sequence[Optional[FliteSegments]]) -> None:
    """JSON ``{"utterances": {utt_id: {subset, speaker, voice, text, duration_stretch, wav_seconds, segments}}}``
    for every plan with segments (flite voices); ``segments`` is a list of ``[phone, end_seconds]`` as printed."""
    utts = {}
    for p, seg in zip(plans, segments):
        if seg is None:
            continue
        utts[p.utt_id] = {"subset": p.subset, "speaker": p.voice.speaker_id, "voice": f"flite:{p.voice.voice}",
                          "text": p.text, "duration_stretch": float(flite_duration_stretch(p.voice, p.speed_factor)),
                          "wav_seconds": seg.wav_seconds, "segments": [[ph, t] for ph, t in zip(seg.phones, seg.ends)]}
    with open(path, "w", encoding="utf8") as f:
        json.dump({"source": "flite -psdur (phone:end time in seconds, CMU phones, pau = silence)",
                   "utterances": dict(sorted(utts.items()))}, f, indent=0)


def read_flite_segments(path: str) -> Dict[str, dict]:
    """utt_id → entry of :func:`write_flite_segments` (``segments`` as a list of ``(phone, end_seconds)``)."""
    with open(path, encoding="utf8") as f:
        utts = json.load(f)["utterances"]
    for entry in utts.values():
        entry["segments"] = [(str(ph), float(t)) for ph, t in entry["segments"]]
    return utts
