"""Glow flow decoder: invertible map mel ``y`` <-> latent ``z`` with exact log-determinant.

Every step returns ``(x, logdet)`` in the forward direction (logdet ``[B]``) and ``(x, None)`` in reverse.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from ..commons import channel_squeeze, channel_unsqueeze
from ..configs import FlowDecoderConfig
from .layers import WaveNet


class ActNorm(nn.Module):
    """Per-channel affine ``z = bias + exp(logs) * x`` (initialised as identity)."""

    def __init__(self, channels: int):
        super().__init__()
        self.logs = nn.Parameter(torch.zeros(1, channels, 1))
        self.bias = nn.Parameter(torch.zeros(1, channels, 1))

    def forward(self, x, mask, g=None, reverse: bool = False):
        if reverse:
            return (x - self.bias) * torch.exp(-self.logs) * mask, None
        lengths = mask.sum([1, 2])
        return (self.bias + torch.exp(self.logs) * x) * mask, torch.sum(self.logs) * lengths


class InvConvNear(nn.Module):
    """Invertible 1x1 convolution on channel groups of size ``n_split``.

    Channels are grouped so that every group holds n_split/2 channels of each half (the halves are what the
    coupling layer splits), and one shared ``n_split x n_split`` matrix mixes each group.
    """

    def __init__(self, channels: int, n_split: int = 4):
        super().__init__()
        assert n_split % 2 == 0 and channels % n_split == 0
        self.channels = channels
        self.n_split = n_split
        w = torch.linalg.qr(torch.randn(n_split, n_split))[0]
        if torch.det(w) < 0:
            w[:, 0] = -w[:, 0]
        self.weight = nn.Parameter(w)

    def _to_groups(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t = x.shape
        x = x.view(b, 2, c // self.n_split, self.n_split // 2, t).permute(0, 1, 3, 2, 4)
        return x.reshape(b, self.n_split, c // self.n_split, t)

    def _from_groups(self, x: torch.Tensor) -> torch.Tensor:
        b, _, groups, t = x.shape
        x = x.view(b, 2, self.n_split // 2, groups, t).permute(0, 1, 3, 2, 4)
        return x.reshape(b, self.channels, t)

    def forward(self, x, mask, g=None, reverse: bool = False):
        weight = torch.linalg.inv(self.weight) if reverse else self.weight
        z = torch.einsum("ij,bjgt->bigt", weight, self._to_groups(x))
        z = self._from_groups(z) * mask
        if reverse:
            return z, None
        lengths = mask.sum([1, 2])
        logdet = torch.linalg.slogdet(self.weight)[1] * (self.channels / self.n_split) * lengths
        return z, logdet


class AffineCoupling(nn.Module):
    """Affine coupling: the first half conditions (via WaveNet, with g) a shift/log-scale of the second half."""

    def __init__(self, channels: int, hidden: int, kernel_size: int, dilation_rate: int, n_layers: int,
                 gin_channels: int = 0, p_dropout: float = 0.0, sigmoid_scale: bool = False):
        super().__init__()
        self.half = channels // 2
        self.sigmoid_scale = sigmoid_scale
        self.start = weight_norm(nn.Conv1d(self.half, hidden, 1))
        self.wn = WaveNet(hidden, kernel_size, dilation_rate, n_layers, gin_channels, p_dropout)
        # zero init: each coupling starts as the identity, which keeps early training stable
        self.end = nn.Conv1d(hidden, 2 * (channels - self.half), 1)
        nn.init.zeros_(self.end.weight)
        nn.init.zeros_(self.end.bias)

    def forward(self, x, mask, g=None, reverse: bool = False):
        x0, x1 = x[:, : self.half], x[:, self.half :]
        h = self.wn(self.start(x0) * mask, mask, g)
        out = self.end(h)
        m, logs = out[:, : x1.shape[1]], out[:, x1.shape[1] :]
        if self.sigmoid_scale:
            logs = torch.log(1e-6 + torch.sigmoid(logs + 2))
        if reverse:
            z1 = (x1 - m) * torch.exp(-logs) * mask
            return torch.cat([x0, z1], 1), None
        z1 = (m + torch.exp(logs) * x1) * mask
        return torch.cat([x0, z1], 1), torch.sum(logs * mask, [1, 2])


class FlowDecoder(nn.Module):
    """squeeze(n_sqz) -> n_blocks x [ActNorm, InvConvNear, AffineCoupling] -> unsqueeze."""

    def __init__(self, cfg: FlowDecoderConfig, in_channels: int, gin_channels: int = 0):
        super().__init__()
        self.cfg = cfg
        c = in_channels * cfg.n_sqz
        self.flows = nn.ModuleList()
        for _ in range(cfg.n_blocks):
            self.flows.append(ActNorm(c))
            self.flows.append(InvConvNear(c, cfg.n_split))
            self.flows.append(AffineCoupling(c, cfg.hidden_channels, cfg.kernel_size, cfg.dilation_rate,
                                             cfg.n_layers, gin_channels, cfg.p_dropout, cfg.sigmoid_scale))

    def forward(self, x: torch.Tensor, mask: torch.Tensor, g: Optional[torch.Tensor] = None, reverse: bool = False
                ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """x ``[B, C, T]`` (T a multiple of n_sqz), mask ``[B, 1, T]``, g ``[B, gin]``.

        :return: ``(z, logdet [B])`` forward, ``(y, None)`` reverse
        """
        g3 = g.unsqueeze(-1) if g is not None else None
        if self.cfg.n_sqz > 1:
            x, x_mask = channel_squeeze(x, mask, self.cfg.n_sqz)
        else:
            x_mask = mask
        logdet_total = None if reverse else torch.zeros(x.shape[0], device=x.device, dtype=x.dtype)
        flows = reversed(self.flows) if reverse else self.flows
        for flow in flows:
            x, logdet = flow(x, x_mask, g=g3, reverse=reverse)
            if not reverse:
                logdet_total = logdet_total + logdet
        if self.cfg.n_sqz > 1:
            x, _ = channel_unsqueeze(x, x_mask, self.cfg.n_sqz)
        return x, logdet_total
