"""Blank tokens between the phonemes (official Glow-TTS' ``add_blank``).

With blanks the text encoder sees ``blank p1 blank p2 ... pN blank`` (2N+1 tokens). MAS can then give the
transitions between phonemes (and leading / trailing silence) to a blank instead of stretching a neighbouring
phoneme over them, which is what lets one phoneme absorb its neighbours' frames when MAS has not settled.
Everything outside the model stays on the phoneme sequence: durations that leave the model (Viterbi durations,
predicted durations, MAS frame labels) are merged back onto the N phonemes by :func:`merge_blank_durations`.
"""
from __future__ import annotations

from typing import Tuple

import torch


def intersperse_blank(tokens: torch.Tensor, lengths: torch.Tensor, blank_id: int
                      ) -> Tuple[torch.Tensor, torch.Tensor]:
    """``[B, N]`` phonemes -> ``[B, 2N+1]`` with ``blank_id`` at every even position; lengths ``2L+1``."""
    batch, n = tokens.shape
    out = tokens.new_full((batch, 2 * n + 1), blank_id)
    out[:, 1::2] = tokens
    return out, 2 * lengths + 1


def expand_durations(durations: torch.Tensor) -> torch.Tensor:
    """Phoneme durations ``[B, N]`` -> ``[B, 2N+1]`` with 0 frames for every blank (oracle-duration synthesis)."""
    batch, n = durations.shape
    out = durations.new_zeros((batch, 2 * n + 1))
    out[:, 1::2] = durations
    return out


def merge_blank_durations(durations: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Durations ``[B, 2N+1]`` of the interspersed sequence -> ``[B, N]`` per phoneme, frame count kept.

    The leading blank goes to the first phoneme, the trailing blank (at ``2L``) to the last, every inner blank
    is split between its two neighbours (the left one gets the lower half). ``lengths [B]`` are phoneme counts.
    """
    n = (durations.shape[1] - 1) // 2
    blanks = durations[:, 0::2]  # [B, N+1]
    left = torch.div(blanks, 2, rounding_mode="floor")
    right = blanks - left
    left[:, 0] = 0
    right[:, 0] = blanks[:, 0]
    batch = torch.arange(durations.shape[0], device=durations.device)
    left[batch, lengths] = blanks[batch, lengths]
    right[batch, lengths] = 0
    return durations[:, 1::2] + right[:, :n] + left[:, 1:]


def frames_on_blanks(path: torch.Tensor) -> torch.Tensor:
    """Frames ``[B, T]`` that a hard path ``[B, 2N+1, T]`` over the interspersed sequence puts on a blank."""
    return path[:, 0::2, :].sum(1) > 0
