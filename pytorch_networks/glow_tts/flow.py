"""Glow flow decoder: invertible map mel ``y`` <-> latent ``z`` with exact log-determinant.

Every step returns ``(x, logdet)`` in the forward direction (logdet ``[B]``) and ``(x, None)`` in reverse.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from ..commons import channel_squeeze, channel_unsqueeze
from ..configs import ConformerEncoderConfig, FlowDecoderConfig
from ..conformer import ConformerBlock
from .layers import WaveNet, pointwise_conv1d
from .packing import FramePacking


class ActNorm(nn.Module):
    """Per-channel affine ``z = bias + exp(logs) * x`` with data-dependent initialisation (Glow, Glow-TTS ``ddi``).

    Why: without it every block starts as the identity on features whose per-channel scale differs by an order
    of magnitude, and the first MAS alignments are made on a latent that is nowhere near the N(mu, 1) prior; the
    alignment then collapses onto few tokens. On the first forward call in training mode the layer sets bias and
    scale so that its output has zero mean and unit variance per channel over the valid frames of that batch.
    The persistent ``initialized`` buffer is saved with the checkpoint, so resumed, preloaded and evaluated models
    are never re-initialised.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.logs = nn.Parameter(torch.zeros(1, channels, 1))
        self.bias = nn.Parameter(torch.zeros(1, channels, 1))
        self.register_buffer("initialized", torch.tensor(False))

    @torch.no_grad()
    def _initialize(self, x: torch.Tensor, mask: torch.Tensor) -> None:
        denom = torch.clamp(mask.sum(), min=1.0)
        mean = torch.sum(x * mask, [0, 2]) / denom
        var = torch.sum(((x - mean[None, :, None]) * mask) ** 2, [0, 2]) / denom
        logs = 0.5 * torch.log(torch.clamp(var, min=1e-6))
        self.bias.copy_((-mean * torch.exp(-logs)).view_as(self.bias))
        self.logs.copy_((-logs).view_as(self.logs))
        self.initialized.fill_(True)

    def forward(self, x, mask, g=None, reverse: bool = False):
        if reverse:
            return (x - self.bias) * torch.exp(-self.logs) * mask, None
        if self.training and not bool(self.initialized):
            self._initialize(x, mask)
        lengths = mask.sum([1, 2])
        return (self.bias + torch.exp(self.logs) * x) * mask, torch.sum(self.logs) * lengths


class InvBatchNorm(nn.Module):
    """Invertible batch normalisation (Real-NVP style) with learnable affine ``bias + exp(logs) * x_hat``.

    Training mode: statistics of the batch over the *valid* frames (population variance) are used and the
    running statistics are updated (detached, ``momentum``). Eval mode: the running statistics are used in both
    directions, so the layer is an exact bijection with ``logdet = (sum(logs) - 0.5 * sum(log(var + eps))) * len``.
    Reverse always uses the running statistics. (The original used batch statistics including padding, did not
    detach the running buffers and was therefore not invertible.)
    """

    def __init__(self, channels: int, momentum: float = 0.1, eps: float = 1e-5):
        super().__init__()
        self.momentum = momentum
        self.eps = eps
        self.logs = nn.Parameter(torch.zeros(1, channels, 1))
        self.bias = nn.Parameter(torch.zeros(1, channels, 1))
        self.register_buffer("running_mean", torch.zeros(1, channels, 1))
        self.register_buffer("running_var", torch.ones(1, channels, 1))

    def _batch_stats(self, x: torch.Tensor, mask: torch.Tensor):
        n = torch.clamp(mask.sum(), min=1.0)
        mean = torch.sum(x * mask, [0, 2], keepdim=True) / n
        var = torch.sum(((x - mean) * mask) ** 2, [0, 2], keepdim=True) / n
        return mean, var

    def forward(self, x, mask, g=None, reverse: bool = False):
        if reverse:
            mean, var = self.running_mean, self.running_var
            x_hat = (x - self.bias) * torch.exp(-self.logs)
            return (x_hat * torch.sqrt(var + self.eps) + mean) * mask, None
        if self.training:
            mean, var = self._batch_stats(x, mask)
            with torch.no_grad():
                self.running_mean.mul_(1 - self.momentum).add_(self.momentum * mean.detach())
                self.running_var.mul_(1 - self.momentum).add_(self.momentum * var.detach())
        else:
            mean, var = self.running_mean, self.running_var
        z = (self.bias + torch.exp(self.logs) * (x - mean) * torch.rsqrt(var + self.eps)) * mask
        lengths = mask.sum([1, 2])
        logdet = (torch.sum(self.logs) - 0.5 * torch.sum(torch.log(var + self.eps))) * lengths
        return z, logdet


def make_norm_layer(norm_type: str, channels: int) -> nn.Module:
    if norm_type == "actnorm":
        return ActNorm(channels)
    if norm_type == "batchnorm":
        return InvBatchNorm(channels)
    raise ValueError(f"unknown norm_type {norm_type!r}")


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


class ConformerCouplingNet(nn.Module):
    """Coupling network made of ``n_layers`` conformer blocks (macaron FF with dim 2*hidden, MHSA with
    ``n_heads`` heads and key padding mask, depthwise conv module, final LayerNorm); after every block the
    per-layer slice of the (weight-normed 1x1) speaker projection ``cond_layer(g)`` is added. ``[B, H, T]`` io."""

    def __init__(self, hidden: int, kernel_size: int, n_layers: int, n_heads: int, gin_channels: int = 0,
                 p_dropout: float = 0.0):
        super().__init__()
        if hidden % n_heads != 0:
            raise ValueError(f"conformer coupling: hidden_channels {hidden} not divisible by n_heads {n_heads}")
        self.hidden = hidden
        block_cfg = ConformerEncoderConfig(conformer_size=hidden, num_layers=n_layers, num_heads=n_heads,
                                           ff_dim=2 * hidden, conv_kernel_size=kernel_size,
                                           att_weights_dropout=p_dropout, conv_dropout=p_dropout,
                                           ff_dropout=p_dropout, mhsa_dropout=p_dropout, final_dropout=p_dropout)
        self.blocks = nn.ModuleList(ConformerBlock(block_cfg) for _ in range(n_layers))
        self.cond_layer = weight_norm(nn.Conv1d(gin_channels, hidden * n_layers, 1)) if gin_channels > 0 else None

    def forward(self, x: torch.Tensor, mask: torch.Tensor, g: Optional[torch.Tensor] = None) -> torch.Tensor:
        cond = self.cond_layer(g).transpose(1, 2) if (g is not None and self.cond_layer is not None) else None
        frame_mask = mask[:, 0] > 0  # [B, T]
        time_mask = mask.transpose(1, 2)  # [B, T, 1]
        h = x.transpose(1, 2)
        for i, block in enumerate(self.blocks):
            h = block(h, frame_mask)
            if cond is not None:
                h = h + cond[:, :, i * self.hidden : (i + 1) * self.hidden]
            h = h * time_mask
        return h.transpose(1, 2)


class AffineCoupling(nn.Module):
    """Affine coupling: the first half conditions (via the coupling network, with g) a shift/log-scale of the
    second half. Coupling network: WaveNet (``coupling_type="wavenet"``, parameters ``wn.*``) or conformer blocks
    (``"conformer"``, parameters ``conformer.*``)."""

    def __init__(self, channels: int, hidden: int, kernel_size: int, dilation_rate: int, n_layers: int,
                 gin_channels: int = 0, p_dropout: float = 0.0, sigmoid_scale: bool = False,
                 coupling_type: str = "wavenet", n_heads: int = 2):
        super().__init__()
        self.half = channels // 2
        self.sigmoid_scale = sigmoid_scale
        self.start = weight_norm(nn.Conv1d(self.half, hidden, 1))
        if coupling_type == "wavenet":
            self.wn = WaveNet(hidden, kernel_size, dilation_rate, n_layers, gin_channels, p_dropout)
        elif coupling_type == "conformer":
            self.conformer = ConformerCouplingNet(hidden, kernel_size, n_layers, n_heads, gin_channels, p_dropout)
        else:
            raise ValueError(f"unknown coupling_type {coupling_type!r}")
        self.coupling_type = coupling_type
        # zero init: each coupling starts as the identity, which keeps early training stable
        self.end = nn.Conv1d(hidden, 2 * (channels - self.half), 1)
        nn.init.zeros_(self.end.weight)
        nn.init.zeros_(self.end.bias)

    def forward(self, x, mask, g=None, reverse: bool = False, packing: Optional[FramePacking] = None):
        """``packing`` (WaveNet coupling only): run start/WaveNet/end on the packed valid frames (same result)."""
        x0, x1 = torch.split(x, [self.half, x.shape[1] - self.half], dim=1)
        if self.coupling_type == "wavenet" and packing is not None:
            pmask = packing.mask
            h = self.wn(pointwise_conv1d(self.start, packing.pack(x0)) * pmask, pmask, g, g_segments=packing.segments)
            out = packing.unpack(pointwise_conv1d(self.end, h))
        else:
            net = self.wn if self.coupling_type == "wavenet" else self.conformer
            h = net(pointwise_conv1d(self.start, x0) * mask, mask, g)
            out = pointwise_conv1d(self.end, h)
        m, logs = out.chunk(2, dim=1)
        if self.sigmoid_scale:
            logs = torch.log(1e-6 + torch.sigmoid(logs + 2))
        if reverse:
            z1 = (x1 - m) * torch.exp(-logs) * mask
            return torch.cat([x0, z1], 1), None
        z1 = (m + torch.exp(logs) * x1) * mask
        return torch.cat([x0, z1], 1), torch.sum(logs * mask, [1, 2])


class FlowDecoder(nn.Module):
    """squeeze(n_sqz) -> n_blocks x [norm, InvConvNear, AffineCoupling] -> unsqueeze.

    Multiscale (``n_early_every > 0``): before block k (k a positive multiple of n_early_every) the second half of
    the current channels is factored out; the output is ``cat(early_1, ..., early_n, final)`` in the squeezed
    space. The reverse splits z the same way and re-attaches every factored chunk *behind* the kept channels
    before running the preceding blocks, so reverse(forward(x)) == x (the original concatenated it in front).
    ``flows`` stays a flat list (3 modules per block) so parameter names do not depend on the variant.

    WaveNet couplings run on the packed valid frames of the batch (:class:`FramePacking`, built once per pass)
    when the batch has padding; ``pack_frames = False`` runs them on the padded batch (same result, slower;
    kept as the reference the packing is tested against).
    """

    def __init__(self, cfg: FlowDecoderConfig, in_channels: int, gin_channels: int = 0):
        super().__init__()
        self.cfg = cfg
        self.block_channels = self._block_channels(cfg, in_channels * cfg.n_sqz)
        self.flows = nn.ModuleList()
        for c in self.block_channels:
            self.flows.append(make_norm_layer(cfg.norm_type, c))
            self.flows.append(InvConvNear(c, cfg.n_split))
            self.flows.append(AffineCoupling(c, cfg.hidden_channels, cfg.kernel_size, cfg.dilation_rate,
                                             cfg.n_layers, gin_channels, cfg.p_dropout, cfg.sigmoid_scale,
                                             cfg.coupling_type, cfg.n_heads))
        self.pack_frames = cfg.coupling_type == "wavenet"

    @staticmethod
    def _block_channels(cfg: FlowDecoderConfig, channels: int):
        """Channel count every block operates on (constant unless multiscale)."""
        out = []
        c = channels
        for b in range(cfg.n_blocks):
            if cfg.n_early_every > 0 and b > 0 and b % cfg.n_early_every == 0:
                if c % 2 != 0 or (c // 2) % cfg.n_split != 0:
                    raise ValueError(f"multiscale flow: cannot halve {c} channels at block {b} "
                                     f"(result must be divisible by n_split={cfg.n_split})")
                c = c // 2
            out.append(c)
        return out

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
        packing = None
        if self.pack_frames and FramePacking.worthwhile(x_mask):
            packing = FramePacking(x_mask, gap=self.flows[2].wn.max_padding)
        if reverse:
            x = self._reverse(x, x_mask, g3, packing)
            logdet_total = None
        else:
            x, logdet_total = self._forward(x, x_mask, g3, packing)
        if self.cfg.n_sqz > 1:
            x, _ = channel_unsqueeze(x, x_mask, self.cfg.n_sqz)
        return x, logdet_total

    def _block(self, b: int):
        return self.flows[3 * b : 3 * b + 3]

    @staticmethod
    def _step(flow, x, x_mask, g3, packing, reverse: bool):
        if isinstance(flow, AffineCoupling):
            return flow(x, x_mask, g=g3, reverse=reverse, packing=packing)
        return flow(x, x_mask, g=g3, reverse=reverse)

    def _forward(self, x, x_mask, g3, packing):
        logdet_total = torch.zeros(x.shape[0], device=x.device, dtype=x.dtype)
        early = []
        for b, c in enumerate(self.block_channels):
            if x.shape[1] > c:  # factor out the second half
                early.append(x[:, c:])
                x = x[:, :c]
            for flow in self._block(b):
                x, logdet = self._step(flow, x, x_mask, g3, packing, reverse=False)
                logdet_total = logdet_total + logdet
        if early:
            x = torch.cat(early + [x], dim=1)
        return x, logdet_total

    def _reverse(self, x, x_mask, g3, packing):
        sizes = [prev - cur for prev, cur in zip(self.block_channels[:-1], self.block_channels[1:]) if prev > cur]
        if sizes:
            chunks = torch.split(x, sizes + [self.block_channels[-1]], dim=1)
            early, x = list(chunks[:-1]), chunks[-1]
        for b in reversed(range(len(self.block_channels))):
            for flow in reversed(self._block(b)):
                x, _ = self._step(flow, x, x_mask, g3, packing, reverse=True)
            if b > 0 and self.block_channels[b - 1] > self.block_channels[b]:
                x = torch.cat([x, early.pop()], dim=1)
        return x
