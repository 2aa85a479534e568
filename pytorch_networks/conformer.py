"""Compact Conformer encoder (VGG frontend with 4x time reduction, macaron FF, MHSA, conv module) and BLSTM
encoder for CTC ASR. Inputs are ``[B, T, F]`` with lengths ``[B]``."""
from __future__ import annotations

from typing import Tuple

import torch
from torch import nn

from .commons import channel_squeeze, sequence_mask
from .configs import BlstmEncoderConfig, ConformerEncoderConfig


class VGGFrontend(nn.Module):
    """conv(1->c1) ReLU pool_t -> conv(c1->c2) conv(c2->c3) ReLU pool_t -> conv(c3->c4) ReLU -> Linear to model dim.

    Time is reduced by the product of the two pooling factors (max-pooling over time only)."""

    def __init__(self, in_features: int, cfg: ConformerEncoderConfig):
        super().__init__()
        c1, c2, c3, c4 = cfg.frontend_channels
        k = cfg.frontend_kernel_size
        self.pool = cfg.frontend_pool
        self.conv1 = nn.Conv2d(1, c1, k, padding=k // 2)
        self.conv2 = nn.Conv2d(c1, c2, k, padding=k // 2)
        self.conv3 = nn.Conv2d(c2, c3, k, padding=k // 2)
        self.conv4 = nn.Conv2d(c3, c4, k, padding=k // 2)
        self.linear = nn.Linear(c4 * in_features, cfg.conformer_size)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        for p in self.pool:
            lengths = torch.div(lengths, p, rounding_mode="floor")
        return lengths

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        mask = sequence_mask(lengths, x.shape[1])[:, :, None].to(x.dtype)
        h = (x * mask).unsqueeze(1)  # [B, 1, T, F]
        h = torch.relu(self.conv1(h))
        h = nn.functional.max_pool2d(h, (self.pool[0], 1))
        h = torch.relu(self.conv3(self.conv2(h)))
        h = nn.functional.max_pool2d(h, (self.pool[1], 1))
        h = torch.relu(self.conv4(h))  # [B, C, T', F]
        b, c, t, f = h.shape
        h = self.linear(h.permute(0, 2, 1, 3).reshape(b, t, c * f))
        return h, self.output_lengths(lengths)


class FeedForwardModule(nn.Module):
    def __init__(self, dim: int, ff_dim: int, dropout: float):
        super().__init__()
        self.net = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, ff_dim), nn.SiLU(), nn.Dropout(dropout),
                                 nn.Linear(ff_dim, dim), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ConvModule(nn.Module):
    """LN -> pointwise(2d) -> GLU -> depthwise conv -> LN -> SiLU -> pointwise -> dropout."""

    def __init__(self, dim: int, kernel_size: int, dropout: float):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.pointwise_1 = nn.Linear(dim, 2 * dim)
        self.depthwise = nn.Conv1d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim)
        self.depthwise_norm = nn.LayerNorm(dim)
        self.pointwise_2 = nn.Linear(dim, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = nn.functional.glu(self.pointwise_1(self.norm(x)), dim=-1)
        h = h * mask[:, :, None]
        h = self.depthwise(h.transpose(1, 2)).transpose(1, 2)
        h = nn.functional.silu(self.depthwise_norm(h))
        return self.dropout(self.pointwise_2(h))


class ConformerBlock(nn.Module):
    """x += FF/2; x += MHSA; x += Conv; x += FF/2; LN."""

    def __init__(self, cfg: ConformerEncoderConfig):
        super().__init__()
        d = cfg.conformer_size
        self.ff_1 = FeedForwardModule(d, cfg.ff_dim, cfg.ff_dropout)
        self.mhsa_norm = nn.LayerNorm(d)
        self.mhsa = nn.MultiheadAttention(d, cfg.num_heads, dropout=cfg.att_weights_dropout, batch_first=True)
        self.mhsa_dropout = nn.Dropout(cfg.mhsa_dropout)
        self.conv = ConvModule(d, cfg.conv_kernel_size, cfg.conv_dropout)
        self.ff_2 = FeedForwardModule(d, cfg.ff_dim, cfg.ff_dropout)
        self.final_norm = nn.LayerNorm(d)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = x + 0.5 * self.ff_1(x)
        h = self.mhsa_norm(x)
        h, _ = self.mhsa(h, h, h, key_padding_mask=~mask, need_weights=False)
        x = x + self.mhsa_dropout(h)
        x = x + self.conv(x, mask)
        x = x + 0.5 * self.ff_2(x)
        return self.final_norm(x)


class ConformerEncoder(nn.Module):
    def __init__(self, in_features: int, cfg: ConformerEncoderConfig):
        super().__init__()
        self.frontend = VGGFrontend(in_features, cfg)
        self.blocks = nn.ModuleList(ConformerBlock(cfg) for _ in range(cfg.num_layers))
        self.final_dropout = nn.Dropout(cfg.final_dropout)
        self.out_dim = cfg.conformer_size

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        x, lengths = self.frontend(x, lengths)
        mask = sequence_mask(lengths, x.shape[1])
        for block in self.blocks:
            x = block(x, mask)
        return self.final_dropout(x), lengths


class BlstmEncoder(nn.Module):
    """Frame stacking by ``subsampling_factor`` (channel squeeze) then a multi-layer BLSTM."""

    def __init__(self, in_features: int, cfg: BlstmEncoderConfig):
        super().__init__()
        self.factor = cfg.subsampling_factor
        self.lstm = nn.LSTM(in_features * cfg.subsampling_factor, cfg.n_channels, num_layers=cfg.n_layers,
                            bidirectional=True, batch_first=True, dropout=cfg.p_dropout if cfg.n_layers > 1 else 0.0)
        self.dropout = nn.Dropout(cfg.p_dropout)
        self.out_dim = 2 * cfg.n_channels

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        if self.factor > 1:
            mask = sequence_mask(lengths, x.shape[1])[:, None, :].to(x.dtype)
            x, _ = channel_squeeze(x.transpose(1, 2), mask, self.factor)
            x = x.transpose(1, 2)
            lengths = torch.div(lengths, self.factor, rounding_mode="floor")
        packed = nn.utils.rnn.pack_padded_sequence(x, torch.clamp(lengths, min=1).cpu(), batch_first=True,
                                                   enforce_sorted=False)
        out, _ = self.lstm(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        return self.dropout(out), lengths
