"""Per-phoneme integer durations: a proportional placeholder alignment and a strict validator.

Why: the given-alignment models need ``durations`` with ``sum == #feature frames`` and one entry per TTS phoneme
token. Until durations come from a Glow-TTS Viterbi forward, :func:`proportional_durations` provides an
alignment with exactly the same format so the pipeline can be built and tested; :func:`validate_durations`
is applied to *any* durations HDF (placeholder or external) before it reaches a training dataset.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

import numpy as np

from . import hdf


class DurationError(ValueError):
    """Inconsistent durations; the message names the sequence tag and the mismatching numbers."""


@dataclass(frozen=True)
class ProportionalAlignmentSettings:
    """Relative weight of a token class when distributing frames (phonemes have weight 1).

    Word separators and sentence markers get fewer frames, which is closer to real speech than uniform.
    """

    space_weight: float = 0.5
    boundary_weight: float = 1.0  # [start] / [end] (leading / trailing silence)


def proportional_durations(weights: Sequence[float], num_frames: int) -> np.ndarray:
    """Integer durations ∝ ``weights`` summing exactly to ``num_frames`` (largest-remainder rounding)."""
    w = np.asarray(weights, dtype=np.float64)
    if len(w) == 0:
        raise ValueError("cannot align zero tokens")
    if np.any(w < 0) or w.sum() <= 0:
        raise ValueError(f"invalid weights {weights}")
    exact = w / w.sum() * num_frames
    dur = np.floor(exact).astype(np.int64)
    rest = num_frames - int(dur.sum())
    order = np.argsort(-(exact - dur), kind="stable")
    dur[order[:rest]] += 1
    return dur.astype(np.int32)


def token_weights(labels: Sequence[str], token_ids: np.ndarray, settings: ProportionalAlignmentSettings):
    from .lexicon import END, SPACE, START

    out = []
    for t in token_ids:
        label = labels[int(t)]
        out.append(settings.space_weight if label == SPACE
                   else settings.boundary_weight if label in (START, END) else 1.0)
    return out


def write_proportional_durations(phoneme_hdf: str, feature_hdf: str, out_hdf: str,
                                 settings: ProportionalAlignmentSettings) -> int:
    """Durations for every sequence of ``phoneme_hdf`` from its frame count in ``feature_hdf``."""
    frames = hdf.read_seq_lengths(feature_hdf, "features")
    labels = hdf.read_labels(phoneme_hdf, "phonemes")
    n = 0
    with hdf.open_writer(out_hdf, dim=1, ndim=1) as writer:
        for tag, toks in hdf.iter_sequences(phoneme_hdf, "phonemes"):
            if tag not in frames:
                raise DurationError(f"sequence {tag} has phonemes but no features in {feature_hdf}")
            dur = proportional_durations(token_weights(labels, toks, settings), frames[tag])
            hdf.write_seq(writer, tag, dur)
            n += 1
    return n


def validate_durations(durations: Mapping[str, np.ndarray], phoneme_lengths: Mapping[str, int],
                       frame_lengths: Mapping[str, int], tags: Optional[Sequence[str]] = None,
                       check_sums: bool = True, allow_zero: bool = False) -> None:
    """Check that every sequence has durations, finite, ≥ 1 (≥ 0 with ``allow_zero``), one per phoneme, summing to
    its number of frames (unless ``check_sums=False``).

    Zero durations are an error by default: a phoneme without a frame cannot be learnt by the duration predictor or
    the aux head, and an utterance with fewer frames than phonemes is usually a broken alignment or audio file.
    :param tags: sequences that must be present (default: all sequences with phonemes)
    :param check_sums: False for durations from a duration predictor (the original's source): their sum need not
        match the frames (the model's path cuts or pads them), so only count, sign and finiteness are checked
    :raises DurationError: on the first problem, naming the seq tag and both numbers
    """
    for tag in (tags if tags is not None else phoneme_lengths):
        if tag not in durations:
            raise DurationError(f"sequence {tag} is missing in the durations HDF")
        d = np.asarray(durations[tag]).reshape(-1)
        _check_integer_valued(tag, d)
        if np.any(d < 0):
            raise DurationError(f"sequence {tag}: negative duration {int(d.min())}")
        if tag not in phoneme_lengths:
            raise DurationError(f"sequence {tag} is missing in the phoneme HDF")
        if len(d) != phoneme_lengths[tag]:
            raise DurationError(f"sequence {tag}: {len(d)} durations but {phoneme_lengths[tag]} phonemes")
        if not allow_zero and check_sums and tag in frame_lengths and frame_lengths[tag] < len(d):
            raise DurationError(f"sequence {tag}: {frame_lengths[tag]} frames are too few for {len(d)} phonemes "
                                f"(each needs at least one frame; allow_zero_durations=True accepts it)")
        if not allow_zero:
            zeros = np.flatnonzero(d == 0)
            if len(zeros):
                raise DurationError(f"sequence {tag}: {len(zeros)} phoneme(s) have zero duration (positions "
                                    f"{zeros[:10].tolist()}); allow_zero_durations=True accepts them")
        if not check_sums:
            continue
        if tag not in frame_lengths:
            raise DurationError(f"sequence {tag} is missing in the feature HDF")
        total = int(np.round(d.sum()))
        if total != frame_lengths[tag]:
            raise DurationError(f"sequence {tag}: durations sum to {total} but the features have "
                                f"{frame_lengths[tag]} frames")


def _check_integer_valued(tag: str, d: np.ndarray) -> None:
    """Durations of ``tag`` must be finite and integer valued (HDFs may store them as floats)."""
    if not np.all(np.isfinite(d)):
        raise DurationError(f"sequence {tag}: non-finite duration")
    if np.issubdtype(d.dtype, np.floating) and not np.all(np.equal(np.round(d), d)):
        raise DurationError(f"sequence {tag}: durations are not integer valued")


def validate_duration_hdf(durations_hdf: str, phoneme_hdf: str, feature_hdf: str, check_sums: bool = True,
                          allow_zero: bool = False) -> int:
    """File-level wrapper of :func:`validate_durations`; returns the number of checked sequences. Every error names
    the durations file next to the sequence tag."""
    phon = hdf.read_seq_lengths(phoneme_hdf, "phonemes")
    try:
        validate_durations(hdf.read_all(durations_hdf, "durations"), phon,
                           hdf.read_seq_lengths(feature_hdf, "features"), check_sums=check_sums, allow_zero=allow_zero)
    except DurationError as exc:
        raise DurationError(f"durations HDF {durations_hdf}: {exc}") from None
    return len(phon)


def validate_token_durations(token_durations: Mapping[str, np.ndarray],
                             phoneme_durations: Mapping[str, np.ndarray]) -> None:
    """Check durations per encoder token of a model with blanks (``blank p1 blank ... pN blank``) against the
    validated per-phoneme durations of the same path: every sequence of ``phoneme_durations`` present, 2N+1
    integer entries, every token >= 1 frame (MAS gives each token at least one), and the blanks' frames merged onto
    their neighbours (as the model merges them) give exactly the per-phoneme durations, so the path a
    ``given_token_durations`` model trains on and the CE labels it is judged with are the same alignment.

    :raises DurationError: on the first problem, naming the seq tag and the mismatching numbers
    """
    import torch

    from ..pytorch_networks.glow_tts.blanks import merge_blank_durations

    for tag, phonemes in phoneme_durations.items():
        if tag not in token_durations:
            raise DurationError(f"sequence {tag} is missing in the token durations")
        d = np.asarray(token_durations[tag]).reshape(-1)
        p = np.asarray(phonemes).reshape(-1)
        if len(d) != 2 * len(p) + 1:
            raise DurationError(f"sequence {tag}: {len(d)} token durations but {len(p)} phonemes (needs 2N+1 = "
                                f"{2 * len(p) + 1}: a blank before, between and after them)")
        _check_integer_valued(tag, d)
        if d.min() < 1:
            raise DurationError(f"sequence {tag}: token {int(np.argmin(d))} has {int(d.min())} frames (each token "
                                f"of a Viterbi path has at least one)")
        merged = merge_blank_durations(torch.as_tensor(d, dtype=torch.int64)[None],
                                       torch.tensor([len(p)]))[0].numpy()
        if not np.array_equal(merged, p):
            first = int(np.flatnonzero(merged != p)[0])
            raise DurationError(f"sequence {tag}: the token durations merged onto the phonemes differ from the "
                                f"phoneme durations first at phoneme {first} ({int(merged[first])} vs {int(p[first])} "
                                f"frames): not the same alignment")


def validate_token_duration_hdf(token_durations_hdf: str, phoneme_durations_hdf: str) -> int:
    """File-level wrapper of :func:`validate_token_durations`; returns the number of checked sequences. Every
    error names the token durations file next to the sequence tag."""
    phonemes = hdf.read_all(phoneme_durations_hdf, "durations")
    try:
        validate_token_durations(hdf.read_all(token_durations_hdf, "durations"), phonemes)
    except DurationError as exc:
        raise DurationError(f"token durations HDF {token_durations_hdf}: {exc}") from None
    return len(phonemes)
