"""SpecAugment (time and feature masking) for ``[B, T, F]`` inputs."""
from __future__ import annotations

import torch

from .configs import SpecaugConfig


def _mask_along_axis(x: torch.Tensor, axis: int, max_width: int, lengths: torch.Tensor | None) -> torch.Tensor:
    """Zero one random band of width U[0, max_width) per sequence along ``axis`` (1 = time, 2 = features)."""
    b, size = x.shape[0], x.shape[axis]
    limit = lengths.float() if (lengths is not None and axis == 1) else torch.full((b,), float(size), device=x.device)
    width = (torch.rand(b, device=x.device) * max_width).floor()
    start = (torch.rand(b, device=x.device) * torch.clamp(limit - width, min=1.0)).floor()
    pos = torch.arange(size, device=x.device)[None, :]
    band = (pos >= start[:, None]) & (pos < (start + width)[:, None])  # [B, size]
    band = band[:, :, None] if axis == 1 else band[:, None, :]
    return x.masked_fill(band, 0.0)


def apply_spec_aug(x: torch.Tensor, lengths: torch.Tensor, cfg: SpecaugConfig) -> torch.Tensor:
    """``max(len) // repeat_per_n_frames`` time masks and ``num_repeat_feat`` feature masks (independent per seq)."""
    num_time = int(lengths.max()) // cfg.repeat_per_n_frames
    for _ in range(num_time):
        x = _mask_along_axis(x, 1, cfg.max_dim_time, lengths)
    for _ in range(cfg.num_repeat_feat):
        x = _mask_along_axis(x, 2, cfg.max_dim_feat, None)
    return x
