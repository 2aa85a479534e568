"""Mask, alignment-path, squeeze and loss helpers shared by all networks."""
from __future__ import annotations

import math
from typing import Tuple

import torch


def sequence_mask(lengths: torch.Tensor, max_len: int | None = None) -> torch.Tensor:
    """Bool mask ``[B, max_len]``, True at valid positions."""
    if max_len is None:
        max_len = int(lengths.max())
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


def generate_path(durations: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Hard monotonic alignment from integer durations.

    :param durations: ``[B, N]`` frame counts per token
    :param mask: ``[B, N, T]`` valid (token, frame) pairs
    :return: float path ``[B, N, T]`` with path[b, i, t] = 1 iff cumsum_{i-1} <= t < cumsum_i (and masked);
        frames beyond the total duration stay 0, durations beyond T are cut.
    """
    t_frames = mask.shape[-1]
    ends = torch.cumsum(durations.long(), dim=1)  # [B, N]
    starts = ends - durations.long()
    frames = torch.arange(t_frames, device=durations.device)[None, None, :]
    path = (frames >= starts[:, :, None]) & (frames < ends[:, :, None])
    return path.to(mask.dtype if mask.dtype.is_floating_point else torch.float32) * mask


def channel_squeeze(x: torch.Tensor, mask: torch.Tensor, n_sqz: int = 2) -> Tuple[torch.Tensor, torch.Tensor]:
    """``[B, C, T] -> [B, C*n, T//n]``; channel block k holds the frames t = k (mod n)."""
    b, c, t = x.shape
    t = (t // n_sqz) * n_sqz
    x = x[:, :, :t]
    x_sqz = x.reshape(b, c, t // n_sqz, n_sqz).permute(0, 3, 1, 2).reshape(b, c * n_sqz, t // n_sqz)
    mask_sqz = mask[:, :, n_sqz - 1 : t : n_sqz]
    return x_sqz * mask_sqz, mask_sqz


def channel_unsqueeze(x: torch.Tensor, mask: torch.Tensor, n_sqz: int = 2) -> Tuple[torch.Tensor, torch.Tensor]:
    """Exact inverse of :func:`channel_squeeze`."""
    b, c, t = x.shape
    x_unsqz = x.reshape(b, n_sqz, c // n_sqz, t).permute(0, 2, 3, 1).reshape(b, c // n_sqz, t * n_sqz)
    mask_unsqz = mask.unsqueeze(-1).repeat(1, 1, 1, n_sqz).reshape(b, 1, t * n_sqz)
    return x_unsqz * mask_unsqz, mask_unsqz


def mle_loss(z, m, logs, logdet, mask) -> torch.Tensor:
    """Glow-TTS negative log-likelihood per valid scalar element (incl. the 0.5*log(2*pi) constant).

    z, m, logs: ``[B, C, T]`` (zero at padding), logdet ``[B]``, mask ``[B, 1, T]``.
    """
    nll = torch.sum(logs) + 0.5 * torch.sum(torch.exp(-2 * logs) * (z - m) ** 2) - torch.sum(logdet)
    return nll / (z.shape[1] * torch.sum(mask)) + 0.5 * math.log(2 * math.pi)


def duration_loss(logw: torch.Tensor, logw_target: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Sum of squared log-duration errors / number of tokens (padding must be zero in both inputs)."""
    return torch.sum((logw - logw_target) ** 2) / torch.sum(lengths)


def upsample_labels(labels: torch.Tensor, path: torch.Tensor) -> torch.Tensor:
    """Token labels ``[B, N]`` -> frame labels ``[B, T]`` along a hard path ``[B, N, T]``.

    Frames not covered by the path get label 0 (as in the original models).
    """
    covered = path.sum(1) > 0
    idx = path.argmax(1)  # token index per frame
    frame_labels = torch.gather(labels.long(), 1, idx)
    return torch.where(covered, frame_labels, torch.zeros_like(frame_labels))


def masked_frame_ce(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean cross entropy over valid frames. logits ``[B, T, V]``, targets/mask ``[B, T]``."""
    ce = torch.nn.functional.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
    mask = mask.to(ce.dtype)
    return torch.sum(ce * mask) / torch.clamp(torch.sum(mask), min=1.0)


def frame_accuracy(logits: torch.Tensor, targets: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Per-utterance frame accuracy ``[B]`` = correct valid frames / length."""
    mask = sequence_mask(lengths, logits.shape[1])
    correct = ((logits.argmax(-1) == targets) & mask).sum(1).float()
    return correct / torch.clamp(lengths.float(), min=1.0)
