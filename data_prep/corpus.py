"""Corpus description of a LibriSpeech-layout tree: one JSON with seq tag, audio path, duration, text, speaker.

Why: every later step (ogg zip, features, lexicon, speaker labels, splits) needs the same per-utterance
metadata; reading the tree once, validating it (corrupt audio, empty transcripts, wrong sample rate) and
storing a small JSON gives a single, checked source of truth that works for real and embedded LibriSpeech.
"""
from __future__ import annotations

import glob
import json
import os
from dataclasses import asdict, dataclass
from typing import Dict, Iterable, List, Sequence

import numpy as np
import soundfile


class CorpusError(ValueError):
    """Bad input in a LibriSpeech tree; the message names the offending file / sequence."""


@dataclass(frozen=True)
class CorpusEntry:
    """One utterance. ``seq_tag`` follows the bliss convention ``<subset>/<utt>/<utt>`` used by the original setup."""

    seq_tag: str
    audio: str  # absolute path
    duration: float  # seconds
    num_samples: int
    text: str  # uppercase words, single spaces
    speaker: str
    chapter: str


def make_seq_tag(subset: str, utt_id: str) -> str:
    return f"{subset}/{utt_id}/{utt_id}"


def speaker_of_seq_tag(seq_tag: str) -> str:
    """Speaker id from a tag; LibriSpeech segment names start with ``<speaker>-``."""
    return seq_tag.split("/")[-1].split("-")[0]


#: Shorter audio is an error: it gives a model (almost) no frames (one 12.5 ms hop = 0.0125 s), so it is a cut or
#: broken file, not speech (LibriSpeech utterances last 1-35 s).
MIN_AUDIO_SECONDS = 0.1


def _check_audio(path: str, expected_sample_rate: int, full_decode: bool, tag: str = "") -> int:
    what = f"audio file {path}" + (f" (sequence {tag})" if tag else "")
    try:
        info = soundfile.info(path)
        if full_decode:
            # float, not int16: a float file's NaN/Inf would silently become 0 in int16 but reach the features as NaN
            data, _ = soundfile.read(path, dtype="float32", always_2d=True)
            num_samples = data.shape[0]
            if not np.all(np.isfinite(data)):
                raise CorpusError(f"{what} has {int(np.sum(~np.isfinite(data)))} NaN/Inf samples")
        else:
            num_samples = info.frames
    except CorpusError:
        raise
    except Exception as exc:  # soundfile raises LibsndfileError / RuntimeError on broken files
        raise CorpusError(f"corrupt or unreadable {what}: {exc}") from exc
    if info.samplerate != expected_sample_rate:
        raise CorpusError(f"audio file {path} has sample rate {info.samplerate}, expected {expected_sample_rate}")
    if info.channels != 1:
        raise CorpusError(f"audio file {path} has {info.channels} channels, expected mono")
    if num_samples == 0:
        raise CorpusError(f"{what} is empty (0 samples)")
    if num_samples < MIN_AUDIO_SECONDS * expected_sample_rate:
        raise CorpusError(f"{what} is too short: {num_samples} samples ({num_samples / expected_sample_rate:.4f} s "
                          f"< {MIN_AUDIO_SECONDS} s)")
    return int(num_samples)


def read_librispeech_subset(root: str, subset: str, expected_sample_rate: int = 16000,
                            full_decode: bool = True) -> List[CorpusEntry]:
    """Read ``<root>/<subset>/<spk>/<chapter>/*.trans.txt`` and check every referenced audio file.

    :param full_decode: decode every file completely (catches truncated files, which ``soundfile.info`` alone
        does not); costs a few minutes on full train-clean-100, which is negligible relative to training.
    """
    subset_dir = os.path.join(root, subset)
    if not os.path.isdir(subset_dir):
        raise CorpusError(f"LibriSpeech subset directory not found: {subset_dir}")
    trans_files = sorted(glob.glob(os.path.join(subset_dir, "*", "*", "*.trans.txt")))
    if not trans_files:
        raise CorpusError(f"no */*/*.trans.txt files under {subset_dir}")
    entries: List[CorpusEntry] = []
    seen: Dict[str, str] = {}  # utterance id -> "file:line" of its first transcript line
    for trans in trans_files:
        chapter_dir = os.path.dirname(trans)
        for line_no, line in enumerate(_read_transcript_lines(trans), 1):
            if not line.strip():
                continue
            utt_id, _, text = line.partition(" ")
            text = " ".join(text.split()).upper()
            tag = make_seq_tag(subset, utt_id)
            if utt_id in seen:
                raise CorpusError(f"sequence {tag} has two transcript lines: {seen[utt_id]} and {trans}:{line_no}")
            seen[utt_id] = f"{trans}:{line_no}"
            if not text:
                raise CorpusError(f"empty transcript for sequence {tag} ({trans}:{line_no})")
            parts = utt_id.split("-")
            if len(parts) != 3:
                raise CorpusError(f"utterance id {utt_id!r} in {trans}:{line_no} is not <speaker>-<chapter>-<utt>")
            audio = os.path.abspath(os.path.join(chapter_dir, utt_id + ".flac"))
            if not os.path.exists(audio):
                raise CorpusError(f"audio file for sequence {tag} missing: {audio}")
            n = _check_audio(audio, expected_sample_rate, full_decode, tag)
            entries.append(CorpusEntry(tag, audio, n / expected_sample_rate, n, text, parts[0], parts[1]))
    return entries


def _read_transcript_lines(path: str) -> List[str]:
    """The lines of a ``.trans.txt`` (UTF-8; LibriSpeech's are ASCII); a bad byte is an error naming file and line."""
    with open(path, "rb") as f:
        raw = f.read().split(b"\n")
    lines = []
    for line_no, line in enumerate(raw, 1):
        try:
            lines.append(line.decode("utf8").rstrip("\r"))
        except UnicodeDecodeError as exc:
            raise CorpusError(f"transcript {path}:{line_no} is not UTF-8 ({exc.reason} at byte {exc.start}: "
                              f"{line[max(0, exc.start - 10):exc.start + 10]!r})") from None
    return lines


def write_corpus_json(path: str, name: str, entries: Sequence[CorpusEntry], sample_rate: int) -> None:
    with open(path, "w", encoding="utf8") as f:
        json.dump({"name": name, "sample_rate": sample_rate, "entries": [asdict(e) for e in entries]}, f, indent=1)


def load_corpus_json(path: str) -> List[CorpusEntry]:
    with open(path, encoding="utf8") as f:
        return [CorpusEntry(**e) for e in json.load(f)["entries"]]


def write_derived_corpus_json(path: str, source: str, entries: Sequence[CorpusEntry]) -> None:
    """A corpus made from ``source`` (filtered, other audio, ...): same name and sample rate."""
    with open(source, encoding="utf8") as f:
        header = json.load(f)
    write_corpus_json(path, header["name"], entries, header["sample_rate"])


def load_corpora(paths: Iterable[str]) -> List[CorpusEntry]:
    """Concatenate several corpus files (e.g. dev-clean + dev-other) and reject duplicate tags."""
    entries: List[CorpusEntry] = []
    seen: Dict[str, str] = {}
    for p in paths:
        for e in load_corpus_json(p):
            if e.seq_tag in seen:
                raise CorpusError(f"sequence {e.seq_tag} appears in both {seen[e.seq_tag]} and {p}")
            seen[e.seq_tag] = p
            entries.append(e)
    return entries


def balanced_speaker_split(entries: Sequence[CorpusEntry], dev_per_speaker: int, seed: int = 42):
    """Train/dev segment split with ``dev_per_speaker`` random utterances of each speaker in dev.

    Mirrors the original GenerateBalancedSpeakerDevSegmentFileJob (seed 42, 4 per speaker) so the TTS-CV set
    covers every training speaker. Returns (train_tags, dev_tags), both in corpus order.
    """
    import random

    rng = random.Random(seed)
    by_spk: Dict[str, List[str]] = {}
    for e in entries:
        by_spk.setdefault(e.speaker, []).append(e.seq_tag)
    dev = set()
    for spk in sorted(by_spk):
        tags = list(by_spk[spk])
        if len(tags) <= dev_per_speaker:
            raise CorpusError(f"speaker {spk} has only {len(tags)} utterances, cannot hold out {dev_per_speaker}")
        rng.shuffle(tags)
        dev.update(tags[:dev_per_speaker])
    train = [e.seq_tag for e in entries if e.seq_tag not in dev]
    return train, [e.seq_tag for e in entries if e.seq_tag in dev]
