"""How far an alignment's phoneme boundaries are from the reference (flite's own segments).

Why: every given duration and aux-loss label comes from an aligner; without a measurement a collapsed alignment
(one token taking most frames) goes unnoticed. The figures are the usual ones of forced-alignment evaluation:
mean absolute boundary error and the share of boundaries within 20 ms and 50 ms.

Definitions:

* Both HDFs hold frames per TTS token (``[start] [space] w1 [space] … [end]``) of the same sequence, summing to
  the same number of feature frames (checked). Token ``k`` ends after ``C[k] = d[0] + … + d[k]`` frames.
* A **boundary** is the start or the end of a *phoneme* token: ``C[k]`` counts when token ``k`` or token ``k+1``
  is a phoneme, for ``k < N-1`` (the sequence's end is the same in both). Boundaries between two silence/word-boundary
  tokens (``[start]|[space]``, ``[space]|[end]``) are not counted: where a pause sits among such neighbours is a
  convention (the reference gives a leading pause to ``[start]`` and leaves the ``[space]`` after it empty; MAS gives
  every token at least one frame), not an alignment error. A zero-length ``[space]`` between two words makes the
  end of the first word and the start of the second the same position in that alignment; both are counted, so an
  aligner that puts a frame into the ``[space]`` is off by that frame at one of them.
* The error of a boundary is ``|C_hyp[k] - C_ref[k]| · hop`` in ms (frames of both HDFs are the feature frames, so
  errors are multiples of the hop, 12.5 ms by default). "Within X ms" means error ≤ X ms (at a 12.5 ms hop: within 20
  ms = at most 1 frame off, within 50 ms = at most 4 frames off).
* Figures are pooled over all boundaries of the utterances that have a reference, per speaker (voice) and overall;
  utterances without a reference (espeak-ng voices) do not count.
"""
from __future__ import annotations

import csv
import json
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from .durations import DurationError
from .lexicon import END, SPACE, START

THRESHOLDS_MS = (20.0, 50.0)
_SILENCE_TOKENS = frozenset((START, SPACE, END))


def boundary_positions(tokens: Sequence[str]) -> np.ndarray:
    """Indices ``k`` of the cumulative ends ``C[k]`` that are phoneme boundaries (see the module docstring)."""
    phoneme = np.array([t not in _SILENCE_TOKENS for t in tokens], dtype=bool)
    k = np.arange(len(tokens) - 1)
    return k[phoneme[:-1] | phoneme[1:]]


def boundary_errors_frames(hyp: np.ndarray, ref: np.ndarray, tokens: Sequence[str],
                           tag: str = "sequence") -> np.ndarray:
    """``|C_hyp - C_ref|`` in frames at every boundary of one sequence; both must fit ``tokens`` and the same frames."""
    hyp, ref = np.asarray(hyp, np.int64).reshape(-1), np.asarray(ref, np.int64).reshape(-1)
    if not (len(hyp) == len(ref) == len(tokens)):
        raise DurationError(f"sequence {tag}: {len(hyp)} durations, {len(ref)} reference durations, "
                            f"{len(tokens)} phoneme tokens")
    if hyp.sum() != ref.sum():
        raise DurationError(f"sequence {tag}: durations sum to {int(hyp.sum())} frames, the reference to "
                            f"{int(ref.sum())}")
    pos = boundary_positions(tokens)
    return np.abs(np.cumsum(hyp)[pos] - np.cumsum(ref)[pos])


def summarize(errors_ms: np.ndarray, num_utterances: int) -> Dict[str, float]:
    """Mean absolute error (ms) and the percentage of boundaries within each of :data:`THRESHOLDS_MS`."""
    if errors_ms.size == 0:
        raise ValueError("no boundaries to evaluate")
    out = {"num_utterances": num_utterances, "num_boundaries": int(errors_ms.size),
           "mean_abs_error_ms": round(float(errors_ms.mean()), 3)}
    for t in THRESHOLDS_MS:
        out[f"percent_within_{t:g}ms"] = round(100.0 * float(np.mean(errors_ms <= t + 1e-9)), 3)
    return out


def alignment_quality(durations: Mapping[str, np.ndarray], reference: Mapping[str, np.ndarray],
                      tokens: Mapping[str, Sequence[str]], speaker_of: Mapping[str, str], hop_ms: float,
                      voice_names: Optional[Mapping[str, str]] = None) -> dict:
    """Report over every sequence of ``reference``: ``overall``, ``per_speaker`` (with voice names where known)
    and the 10 ``worst_utterances`` by mean error.

    :raises DurationError: a referenced sequence missing in ``durations`` / ``tokens``, or inconsistent lengths
    """
    voice_names = voice_names or {}
    per_speaker: Dict[str, List[np.ndarray]] = {}
    per_utt: List[Tuple[float, str]] = []
    for tag in reference:
        if tag not in durations:
            raise DurationError(f"sequence {tag} has a reference but is missing in the durations HDF")
        if tag not in tokens:
            raise DurationError(f"sequence {tag} has a reference but is missing in the phoneme HDF")
        err = boundary_errors_frames(durations[tag], reference[tag], tokens[tag], tag) * hop_ms
        per_speaker.setdefault(speaker_of[tag], []).append(err)
        per_utt.append((float(err.mean()) if err.size else 0.0, tag))
    if not per_speaker:
        raise ValueError("the reference holds no sequences")
    report = {"hop_ms": hop_ms, "overall": summarize(np.concatenate([e for v in per_speaker.values() for e in v]),
                                                     sum(len(v) for v in per_speaker.values())),
              "per_speaker": {}}
    for spk in sorted(per_speaker):
        report["per_speaker"][spk] = {"voice": voice_names.get(spk, ""),
                                      **summarize(np.concatenate(per_speaker[spk]), len(per_speaker[spk]))}
    report["worst_utterances"] = [{"seq_tag": tag, "mean_abs_error_ms": round(e, 3)}
                                  for e, tag in sorted(per_utt, key=lambda x: (-x[0], x[1]))[:10]]
    return report


def write_report_csv(report: dict, path: str) -> None:
    """One row per speaker and a final ``overall`` row."""
    fields = ["speaker", "voice", "num_utterances", "num_boundaries", "mean_abs_error_ms"] + \
        [f"percent_within_{t:g}ms" for t in THRESHOLDS_MS]
    rows: Iterable[dict] = [{"speaker": spk, **v} for spk, v in report["per_speaker"].items()]
    with open(path, "w", newline="", encoding="utf8") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
        writer.writerow({"speaker": "overall", "voice": "", **report["overall"]})


def write_report_json(report: dict, path: str) -> None:
    with open(path, "w", encoding="utf8") as f:
        json.dump(report, f, indent=1)
