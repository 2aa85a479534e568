"""Relative-position multi-head self-attention Transformer (post-LN), as used by the Glow-TTS text encoder."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .layers import ChannelLayerNorm, Dropout, pointwise_conv1d, same_conv1d


class RelativeMultiHeadAttention(nn.Module):
    """Self-attention with Shaw-style relative position embeddings for keys and values.

    Distances in [-window, window] have learned embeddings shared across heads; larger distances get a zero
    embedding (no clipping), i.e. beyond the window only content attention remains.
    """

    def __init__(self, channels: int, n_heads: int, window_size: int | None = 4, p_dropout: float = 0.0,
                 block_length: int | None = None):
        super().__init__()
        assert channels % n_heads == 0
        self.n_heads = n_heads
        self.d_k = channels // n_heads
        self.window_size = window_size
        self.block_length = block_length
        self.conv_q = nn.Conv1d(channels, channels, 1)
        self.conv_k = nn.Conv1d(channels, channels, 1)
        self.conv_v = nn.Conv1d(channels, channels, 1)
        self.conv_o = nn.Conv1d(channels, channels, 1)
        self.dropout = Dropout(p_dropout)
        for conv in (self.conv_q, self.conv_k, self.conv_v):
            nn.init.xavier_uniform_(conv.weight)
        if window_size is not None:
            std = self.d_k**-0.5
            self.emb_rel_k = nn.Parameter(torch.randn(2 * window_size + 1, self.d_k) * std)
            self.emb_rel_v = nn.Parameter(torch.randn(2 * window_size + 1, self.d_k) * std)

    def _band_index(self, length: int, device: torch.device):
        """Index maps between the ``[L, L]`` distance matrix and the ``2w+1`` window offsets.

        ``to_abs [L, L]``: offset ``j - i + w`` of key j for query i, or ``2w+1`` (a zero column) outside the
        window; ``to_rel [L, 2w+1]``: key ``i + r - w`` of offset r for query i, or ``L`` (a zero column) where
        that key does not exist.
        """
        w = self.window_size
        pos = torch.arange(length, device=device)
        dist = pos[None, :] - pos[:, None]  # j - i
        to_abs = torch.where(dist.abs() <= w, dist + w, torch.full_like(dist, 2 * w + 1))
        key = pos[:, None] + torch.arange(-w, w + 1, device=device)[None, :]  # [L, 2w+1]
        to_rel = torch.where((key >= 0) & (key < length), key, torch.full_like(key, length))
        return to_abs, to_rel

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor) -> torch.Tensor:
        """x ``[B, C, L]``, attn_mask ``[B, 1, L, L]`` (1 = may attend).

        The relative terms are computed in the window's ``2w+1`` offsets and moved to / from the ``[L, L]``
        score matrix with a gather: ``q . e_k[j - i]`` is one ``[B*H*L, d] x [d, 2w+1]`` matmul, and
        ``sum_j p_ij e_v[j - i]`` gathers p's band and multiplies it with ``e_v``. Why: the same sums as
        materialising ``[L, L, d]`` tables of the embeddings and contracting them with an L-batched einsum (zero
        outside the window), without the ``L x L x d`` tables, their scatter-add backward and the many tiny
        matrix products of the L-batched einsum (an attention layer's forward + backward on CPU, batch 4 x 36 tokens:
        ~1.3x as long that way).
        """
        b, c, length = x.shape
        q = pointwise_conv1d(self.conv_q, x).view(b, self.n_heads, self.d_k, length).transpose(2, 3)  # [B, H, L, d]
        k = pointwise_conv1d(self.conv_k, x).view(b, self.n_heads, self.d_k, length).transpose(2, 3)
        v = pointwise_conv1d(self.conv_v, x).view(b, self.n_heads, self.d_k, length).transpose(2, 3)
        scores = torch.matmul(q, k.transpose(-2, -1))
        if self.window_size is not None:
            to_abs, to_rel = self._band_index(length, x.device)
            rel = F.pad(torch.matmul(q, self.emb_rel_k.t()), (0, 1))  # [B, H, L, 2w+2], last column zero
            scores = scores + rel.gather(3, to_abs.expand(b, self.n_heads, length, length))
        scores = scores / math.sqrt(self.d_k)
        scores = scores.masked_fill(attn_mask == 0, -1e4)
        if self.block_length is not None:
            band = torch.ones(length, length, device=x.device).triu(-self.block_length).tril(self.block_length)
            scores = scores.masked_fill(band == 0, -1e4)
        p = self.dropout(torch.softmax(scores, dim=-1))
        out = torch.matmul(p, v)
        if self.window_size is not None:
            p_band = F.pad(p, (0, 1)).gather(3, to_rel.expand(b, self.n_heads, length, 2 * self.window_size + 1))
            out = out + torch.matmul(p_band, self.emb_rel_v)
        out = out.transpose(2, 3).reshape(b, c, length)
        return pointwise_conv1d(self.conv_o, out)


class ConvFeedForward(nn.Module):
    """Position-wise FFN with convolutions: conv(k) -> ReLU -> dropout -> conv(k)."""

    def __init__(self, channels: int, filter_channels: int, kernel_size: int, p_dropout: float = 0.0):
        super().__init__()
        self.conv_1 = nn.Conv1d(channels, filter_channels, kernel_size, padding=kernel_size // 2)
        self.conv_2 = nn.Conv1d(filter_channels, channels, kernel_size, padding=kernel_size // 2)
        self.dropout = Dropout(p_dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.dropout(torch.relu(same_conv1d(self.conv_1, x * mask)))
        return same_conv1d(self.conv_2, x * mask) * mask


class RelativeTransformerEncoder(nn.Module):
    """Post-LN Transformer: x = LN(x + drop(MHA(x))); x = LN(x + drop(FFN(x)))."""

    def __init__(self, channels: int, filter_channels: int, n_heads: int, n_layers: int, kernel_size: int,
                 p_dropout: float, window_size: int | None = 4, block_length: int | None = None):
        super().__init__()
        self.attn_layers = nn.ModuleList(
            RelativeMultiHeadAttention(channels, n_heads, window_size, p_dropout, block_length) for _ in range(n_layers)
        )
        self.norm_layers_1 = nn.ModuleList(ChannelLayerNorm(channels) for _ in range(n_layers))
        self.ffn_layers = nn.ModuleList(
            ConvFeedForward(channels, filter_channels, kernel_size, p_dropout) for _ in range(n_layers)
        )
        self.norm_layers_2 = nn.ModuleList(ChannelLayerNorm(channels) for _ in range(n_layers))
        self.dropout = Dropout(p_dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        attn_mask = mask.unsqueeze(2) * mask.unsqueeze(-1)  # [B, 1, L, L]
        for attn, n1, ffn, n2 in zip(self.attn_layers, self.norm_layers_1, self.ffn_layers, self.norm_layers_2):
            x = x * mask
            x = n1(x + self.dropout(attn(x, attn_mask)))
            x = n2(x + self.dropout(ffn(x, mask)))
        return x * mask
