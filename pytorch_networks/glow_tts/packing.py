"""Frame packing for the flow's coupling networks: the valid frames of a padded batch laid back to back.

Why: in a padded batch every WaveNet layer convolves the padding too (10-30 % of the frames of a typical TTS
batch), forward and backward. Packing the valid frames of all sequences into one sequence, separated by ``gap``
zero frames, gives exactly the same convolution results at the valid frames (a convolution with padding ``p``
only ever sees the zeros of its own sequence's padding, and ``gap >= p`` zeros stand in for them) while the
work shrinks to the valid frames. Masks in the flow are sequence masks (valid frames are a prefix), which is
what makes the packed neighbourhoods equal to the padded ones.
"""
from __future__ import annotations

import torch


class FramePacking:
    """Index maps between a padded batch ``[B, C, T]`` and one packed sequence ``[1, C, N]``.

    Packed layout: sequence b occupies ``starts[b] : starts[b] + length[b]``, followed by ``gap`` frames
    (zero after :meth:`pack` and a multiply with :attr:`mask`). Built once per flow pass and shared by all
    coupling layers (one host sync for the lengths).
    """

    def __init__(self, mask: torch.Tensor, gap: int):
        """mask ``[B, 1, T]`` sequence mask (1 at valid frames), gap >= the largest conv padding."""
        batch, _, t = mask.shape
        lengths = mask[:, 0].sum(1).long()
        starts = torch.cumsum(lengths + gap, 0) - (lengths + gap)  # [B]
        # frames of the packed sequence per batch entry, its trailing gap included (for per-sequence conditioning)
        self.segments = [n + gap for n in lengths.tolist()]
        self.segments[-1] -= gap
        self.n_frames = sum(self.segments)
        frame = torch.arange(t, device=mask.device)
        valid = frame[None, :] < lengths[:, None]  # [B, T]
        packed_pos = starts[:, None] + frame[None, :]  # [B, T]
        padded_pos = torch.arange(batch * t, device=mask.device).view(batch, t)
        # packed frame -> padded flat index (gap frames read frame 0; they are zeroed by the mask)
        self.src = torch.zeros(self.n_frames, dtype=torch.long, device=mask.device)
        self.src[packed_pos[valid]] = padded_pos[valid]
        # padded flat index -> packed frame (padding reads packed frame 0, finite; callers mask it)
        self.dst = torch.where(valid, packed_pos, torch.zeros_like(packed_pos)).view(-1)
        self.mask = torch.zeros(1, 1, self.n_frames, dtype=mask.dtype, device=mask.device)
        self.mask[0, 0, packed_pos[valid]] = 1.0
        self.batch, self.t = batch, t

    @staticmethod
    def worthwhile(mask: torch.Tensor) -> bool:
        """Packing pays only when some sequence is shorter than the padded length."""
        return mask.shape[0] > 1 and bool((mask[:, 0, -1] == 0).any())

    def pack(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C, T] -> [1, C, N]``; gap frames hold arbitrary finite values (multiply by :attr:`mask`)."""
        c = x.shape[1]
        return x.transpose(0, 1).reshape(c, self.batch * self.t).index_select(1, self.src).unsqueeze(0)

    def unpack(self, x: torch.Tensor) -> torch.Tensor:
        """``[1, C, N] -> [B, C, T]``; padded frames hold arbitrary finite values (callers mask them)."""
        c = x.shape[1]
        return x[0].index_select(1, self.dst).view(c, self.batch, self.t).transpose(0, 1)
