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


def encoding_distance_loss(tokens: torch.Tensor, x_m: torch.Tensor, lengths: torch.Tensor,
                           log: bool = False) -> torch.Tensor:
    """Loss of the original ``*_dist_loss`` / ``*_logdist_loss`` models (pushes phoneme prior means apart).

    The encoder means of all valid tokens are averaged per token ID (over the whole batch), the euclidean
    distances between all pairs of class means (full matrix, every pair twice) are summed and divided by
    ``B * max token ID``; the loss is minus that distance (``log=True``: minus its log).

    tokens ``[B, N]``, x_m ``[B, C, N]``, lengths ``[B]``.
    """
    mask = sequence_mask(lengths, tokens.shape[1])
    labels = tokens.long()[mask]  # [M]
    enc = x_m.transpose(1, 2)[mask]  # [M, C]
    classes, inverse = torch.unique(labels, return_inverse=True)
    sums = torch.zeros(len(classes), enc.shape[1], dtype=enc.dtype, device=enc.device).index_add(0, inverse, enc)
    counts = torch.bincount(inverse, minlength=len(classes)).to(enc.dtype)
    means = sums / counts[:, None]
    diff = means[:, None, :] - means[None, :, :]
    # sqrt with a zero-safe gradient (the diagonal has distance 0)
    sq = torch.sum(diff**2, -1)
    dist_matrix = torch.where(sq > 0, torch.sqrt(torch.clamp(sq, min=1e-20)), torch.zeros_like(sq))
    normaliser = tokens.shape[0] * max(float(labels.max()), 1.0) if labels.numel() > 0 else 1.0
    dist = dist_matrix.sum() / normaliser
    if log:
        return -torch.log(torch.clamp(dist, min=1e-8))
    return -dist


class RunningStatistics:
    """Count / mean / variance (population) / max / min of a stream of values, merged batch-wise with Chan et
    al.'s parallel update (numerically stable; float64)."""

    def __init__(self):
        self.count = 0
        self.mean = 0.0
        self.m2 = 0.0
        self.max = -math.inf
        self.min = math.inf

    def update(self, values) -> None:
        import numpy as np

        values = np.asarray(values, dtype=np.float64).reshape(-1)
        n = values.size
        if n == 0:
            return
        mean_b = float(values.mean())
        m2_b = float(((values - mean_b) ** 2).sum())
        total = self.count + n
        delta = mean_b - self.mean
        self.mean += delta * n / total
        self.m2 += m2_b + delta**2 * self.count * n / total
        self.count = total
        self.max = max(self.max, float(values.max()))
        self.min = min(self.min, float(values.min()))

    @property
    def var(self) -> float:
        return self.m2 / self.count if self.count else float("nan")

    def as_dict(self) -> dict:
        empty = self.count == 0
        return {"count": self.count, "mean": self.mean if not empty else float("nan"), "var": self.var,
                "std": math.sqrt(self.var) if not empty else float("nan"),
                "max": self.max if not empty else float("nan"), "min": self.min if not empty else float("nan")}
