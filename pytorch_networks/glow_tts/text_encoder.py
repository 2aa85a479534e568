"""Glow-TTS text encoder: token embeddings -> (prenet) -> Transformer -> per-token prior (mean, log-std),
plus the duration predictor on the detached encoder output."""
from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import nn

from ..commons import sequence_mask
from ..configs import TextEncoderConfig
from .attention import RelativeTransformerEncoder
from .layers import ChannelLayerNorm, ConvReluNorm, Dropout, same_conv1d


class DurationPredictor(nn.Module):
    """2 x [conv -> ReLU -> LayerNorm -> dropout] -> 1x1 conv; predicts log durations (masked output)."""

    def __init__(self, in_channels: int, filter_channels: int, kernel_size: int, p_dropout: float):
        super().__init__()
        self.conv_1 = nn.Conv1d(in_channels, filter_channels, kernel_size, padding=kernel_size // 2)
        self.norm_1 = ChannelLayerNorm(filter_channels)
        self.conv_2 = nn.Conv1d(filter_channels, filter_channels, kernel_size, padding=kernel_size // 2)
        self.norm_2 = ChannelLayerNorm(filter_channels)
        self.proj = nn.Conv1d(filter_channels, 1, 1)
        self.dropout = Dropout(p_dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.dropout(self.norm_1(torch.relu(same_conv1d(self.conv_1, x * mask))))
        x = self.dropout(self.norm_2(torch.relu(same_conv1d(self.conv_2, x * mask))))
        # masked (the original left the conv bias at padded positions, which leaked into the dp loss)
        return self.proj(x * mask) * mask


class TextEncoder(nn.Module):
    """Returns the per-token prior ``x_m, x_logs [B, out, N]``, log durations ``logw [B, 1, N]`` and the mask."""

    def __init__(self, cfg: TextEncoderConfig, out_channels: int, gin_channels: int = 0):
        super().__init__()
        self.cfg = cfg
        h = cfg.hidden_channels
        self.emb = nn.Embedding(cfg.n_vocab, h)
        nn.init.normal_(self.emb.weight, 0.0, h**-0.5)
        if cfg.encoder_type == "transformer":
            self.pre = ConvReluNorm(h, h, kernel_size=5, n_layers=3, p_dropout=0.5) if cfg.prenet else None
            self.encoder = RelativeTransformerEncoder(h, cfg.filter_channels, cfg.n_heads, cfg.n_layers,
                                                      cfg.kernel_size, cfg.p_dropout, cfg.window_size,
                                                      cfg.block_length)
        elif cfg.encoder_type == "embedding":
            self.pre = None
            self.encoder = None
        else:
            raise ValueError(f"unknown encoder_type {cfg.encoder_type!r}")
        self.proj_m = nn.Conv1d(h, out_channels, 1)
        # "v2_1": learnt per-token shift of the prior mean (nn.Embedding default init N(0, 1), as the original)
        self.mean_emb = nn.Embedding(cfg.n_vocab, out_channels) if cfg.mean_extra_embedding else None
        self.proj_s = None if cfg.mean_only else nn.Conv1d(h, out_channels, 1)
        self.proj_w = DurationPredictor(h + gin_channels, cfg.filter_channels_dp, cfg.kernel_size, cfg.p_dropout)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor, g: Optional[torch.Tensor] = None
                ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """tokens ``[B, N]``, lengths ``[B]``, g ``[B, gin]`` or None."""
        x = self.emb(tokens.long()) * (self.cfg.hidden_channels**0.5)
        x = x.transpose(1, 2)  # [B, h, N]
        x_mask = sequence_mask(lengths, x.shape[2]).unsqueeze(1).to(x.dtype)
        if self.pre is not None:
            x = self.pre(x, x_mask)
        if self.encoder is not None:
            x = self.encoder(x, x_mask)
        x_m = self.proj_m(x)
        if self.mean_emb is not None:
            x_m = x_m + self.mean_emb(tokens.long()).transpose(1, 2)
        x_m = x_m * x_mask
        x_logs = self.proj_s(x) * x_mask if self.proj_s is not None else torch.zeros_like(x_m)
        # duration predictor on the detached encoder output: the dp loss must not shape the prior
        x_dp = x.detach()
        if g is not None:
            x_dp = torch.cat([x_dp, g.unsqueeze(-1).expand(-1, -1, x_dp.shape[-1])], dim=1)
        logw = self.proj_w(x_dp, x_mask)
        return x_m, x_logs, logw, x_mask
