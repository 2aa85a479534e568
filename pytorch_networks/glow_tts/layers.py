"""Basic channels-first layers used by the text encoder and the flow."""
from __future__ import annotations

import functools
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from .winograd import MAX_KERNEL_SIZE, winograd_conv1d


@functools.cache
def cpu_prefers_onednn() -> bool:
    """Whether torch runs this CPU's convolutions best on oneDNN's own kernels, forward and backward.

    Why: torch's CPU GEMM is MKL's, and MKL runs its AVX2 code on AMD processors, while oneDNN uses AVX-512 where
    the CPU has it. On the AMD EPYC (Zen 5) machine of the default runs, oneDNN's convolution backward and its 1x1
    convolutions took 0.6-0.75x the time of the GEMM paths below (1 thread); on the AVX2 machine before it the GEMM
    weight gradient was the faster one. torch's CPU capability ``"AVX512"`` (its dispatch level, also what
    ``ATEN_CPU_CAPABILITY`` sets) selects oneDNN; cached, so a process never mixes the two.
    """
    return torch.backends.cpu.get_cpu_capability() == "AVX512"


class _Conv1dGemmBackward(torch.autograd.Function):
    """``F.conv1d`` (stride 1, "same" padding) whose backward computes the weight gradient as one GEMM on the
    im2col matrix and the input gradient as a transposed convolution.

    Why: on an AVX2 CPU oneDNN's fused convolution backward took ~2.4x its forward for the flow's WaveNet
    convolutions; split like this it took ~2x (1 thread). Same mathematics: only the summation order of the weight
    gradient differs (float rounding).
    """

    @staticmethod
    def forward(ctx, x, weight, bias, padding: int, dilation: int):
        ctx.save_for_backward(x, weight)
        ctx.padding, ctx.dilation, ctx.has_bias = padding, dilation, bias is not None
        return F.conv1d(x, weight, bias, padding=padding, dilation=dilation)

    @staticmethod
    def backward(ctx, grad_out):
        x, weight = ctx.saved_tensors
        grad_x = grad_w = grad_b = None
        b, c, t = x.shape
        o, _, k = weight.shape
        if ctx.needs_input_grad[0]:
            grad_x = F.conv_transpose1d(grad_out, weight, padding=ctx.padding, dilation=ctx.dilation)
        if ctx.needs_input_grad[1]:
            span = (k - 1) * ctx.dilation + 1
            cols = F.pad(x, (ctx.padding, ctx.padding)).unfold(2, span, 1)[..., :: ctx.dilation]  # [B, C, T, K]
            cols = cols.permute(1, 3, 0, 2).reshape(c * k, b * t)
            grad_w = torch.mm(grad_out.transpose(0, 1).reshape(o, b * t), cols.t()).view(o, c, k)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = grad_out.sum((0, 2))
        return grad_x, grad_w, grad_b, None, None


def same_conv1d(conv: nn.Conv1d, x: torch.Tensor) -> torch.Tensor:
    """``conv(x)`` for a stride-1 "same" ``nn.Conv1d``; in CPU training on CPUs that do not prefer oneDNN
    (:func:`cpu_prefers_onednn`) with the GEMM weight-gradient backward."""
    if x.device.type != "cpu" or not torch.is_grad_enabled() or cpu_prefers_onednn():
        return conv(x)
    return _Conv1dGemmBackward.apply(x, conv.weight, conv.bias, conv.padding[0], conv.dilation[0])


# Smallest in- and output channel count of a 1x1 convolution that pointwise_conv1d hands to oneDNN.
ONEDNN_POINTWISE_MIN_CHANNELS = 160


def pointwise_conv1d(conv: nn.Conv1d, x: torch.Tensor) -> torch.Tensor:
    """``conv(x)`` for a kernel-size-1 ``nn.Conv1d`` applied to frames; on CPUs that prefer oneDNN, wide ones run
    by oneDNN.

    Why: single-threaded, torch sends 1x1 convolutions of a batch under 16 to its own im2col + MKL GEMM path
    ("THNN is faster than MKLDNN single-threaded", ``ConvUtils``), but on the AVX-512 AMD machine oneDNN's took
    0.58x the time forward + backward for the WaveNet's ``192 -> 384`` convolutions over 432 frames (``192 -> 160``:
    0.69x). torch's heuristic always takes oneDNN for dilated convolutions, and a dilation does not change a kernel
    of size 1 (``out[t] = W x[t] + b`` for any dilation), so the call asks for dilation 2. Only where both channel
    counts reach :data:`ONEDNN_POINTWISE_MIN_CHANNELS`: for the laptop models' ``64 -> 128`` convolutions oneDNN took
    1.7x torch's time, and every new input shape costs it a primitive creation (``128 -> 128`` on 4 x 40 frames:
    1.4 instead of 0.3 ms the first time), which the variable batch shapes of a training pay again and again.
    Not for convolutions over a single frame (the speaker conditioning) either, where torch's own path is faster.
    """
    if conv.kernel_size[0] != 1 or conv.stride[0] != 1 or conv.padding[0] != 0 or conv.groups != 1:
        raise ValueError(f"pointwise_conv1d needs a kernel-size-1, stride-1, unpadded convolution, got {conv}")
    if (x.device.type != "cpu" or min(conv.in_channels, conv.out_channels) < ONEDNN_POINTWISE_MIN_CHANNELS
            or not cpu_prefers_onednn()):
        return conv(x)
    return F.conv1d(x, conv.weight, conv.bias, dilation=2)


# Smallest in- and output channel count of a WaveNet convolution that wavenet_conv1d runs by Winograd.
WINOGRAD_MIN_CHANNELS = 128


def wavenet_conv1d(conv: nn.Conv1d, x: torch.Tensor) -> torch.Tensor:
    """``same_conv1d(conv, x)`` for the WaveNet's "same" convolutions; in CPU training on CPUs that prefer oneDNN
    (:func:`cpu_prefers_onednn`), undilated ones of odd kernel size <= 5 and >= :data:`WINOGRAD_MIN_CHANNELS`
    channels by Winograd F(4, r) (``winograd.py``: 0.4x the multiplications for kernel 5, rounding errors ~3x the
    direct convolution's, ~1e-6 relative).

    Why only there: its GEMMs run as a grouped oneDNN convolution, which MKL's AVX2 GEMM on AMD CPUs would not
    match. Forward + backward for 1 x C x T, 1 thread (2 threads): C = 192, T = 438: 0.65x (0.77x) the direct
    convolution's time; C = 128, T = 600: 0.65x (0.78x); C = 96, T = 800: 0.77x (0.96x); C = 64, T = 1200: 1.14x
    (1.3x), so the laptop models keep the direct one. The forward alone does not gain in place (the full-size
    model's 48 forwards without grad, weight norm included: 129 against 101 ms), so inference keeps the direct
    convolution and its outputs.
    """
    if (x.device.type == "cpu" and torch.is_grad_enabled() and x.dtype == torch.float32 and cpu_prefers_onednn()
            and conv.kernel_size[0] % 2 == 1 and conv.kernel_size[0] <= MAX_KERNEL_SIZE
            and conv.stride[0] == 1 and conv.dilation[0] == 1 and conv.groups == 1
            and conv.padding[0] == conv.kernel_size[0] // 2
            and min(conv.in_channels, conv.out_channels) >= WINOGRAD_MIN_CHANNELS):
        return winograd_conv1d(x, conv.weight, conv.bias)
    return same_conv1d(conv, x)


class _GatedTanhSigmoid(torch.autograd.Function):
    """The WaveNet layer's gate ``tanh(a) * sigmoid(b)`` for ``[a; b] = h * noise + cond`` (channel axis 1):
    dropout mask, speaker conditioning and gate in one autograd node, tanh computed as ``2 * sigmoid(2 a) - 1``.

    Why: torch's CPU tanh took ~10x its sigmoid on the flow's ``[192, frames]`` activations (0.19 against
    0.02 ms); through the identity, with the backward written as ``tanh_backward`` / ``sigmoid_backward`` of
    the saved outputs (autograd's own backward of the identity has twice the ops), the activation's forward +
    backward took 0.17 instead of 0.31 ms. Taking the dropout mask and the conditioning in as well saves the
    separate multiply and add nodes, their full-size intermediates and the backward's concatenation: the
    pre-activation is made once (one ``addcmul``), both sigmoids run in place on it as one call, and the
    backward writes both halves of its gradient into one buffer. Same function: only rounding differs (absolute,
    below 2.5e-7). ``noise`` (the scaled dropout mask, :meth:`Dropout.scaled_mask`) and ``cond`` (broadcast over
    frames, or one row per frame) are optional.
    """

    @staticmethod
    def forward(ctx, h, cond, noise):
        if noise is not None:
            z = h * noise if cond is None else torch.addcmul(cond, h, noise)
        else:
            z = h.clone() if cond is None else h + cond
        a, b = z.chunk(2, dim=1)
        a.mul_(2)
        torch.sigmoid_(z)  # [sigmoid(2 a); sigmoid(b)]
        t = a.mul_(2).sub_(1)  # tanh(a)
        ctx.save_for_backward(z, noise)
        ctx.cond_shape = None if cond is None else cond.shape
        return t * b

    @staticmethod
    def backward(ctx, grad_out):
        z, noise = ctx.saved_tensors
        t, s = z.chunk(2, dim=1)
        grad_z = torch.empty_like(z)
        grad_a, grad_b = grad_z.chunk(2, dim=1)
        torch.ops.aten.tanh_backward.grad_input(torch.mul(grad_out, s, out=grad_a), t, grad_input=grad_a)
        torch.ops.aten.sigmoid_backward.grad_input(torch.mul(grad_out, t, out=grad_b), s, grad_input=grad_b)
        grad_h = grad_z if noise is None else grad_z * noise
        grad_cond = None
        if ctx.cond_shape is not None and ctx.needs_input_grad[1]:
            grad_cond = grad_z.sum_to_size(ctx.cond_shape)
        return grad_h, grad_cond, None


def gated_tanh_sigmoid(h: torch.Tensor, cond: torch.Tensor | None = None,
                       noise: torch.Tensor | None = None) -> torch.Tensor:
    """WaveNet's gate ``tanh(a) * sigmoid(b)`` of ``[a; b] = h * noise + cond`` (channel axis 1; ``noise`` and
    ``cond`` optional); see :class:`_GatedTanhSigmoid`."""
    return _GatedTanhSigmoid.apply(h, cond, noise)


class Dropout(nn.Dropout):
    """``nn.Dropout`` whose CPU training masks come from 16 random bits per element instead of ``bernoulli_``.

    Why: torch's CPU ``bernoulli_`` draws one Mersenne-Twister number per element through a slow serial path; the
    Glow-TTS step's 77 dropout calls (48 on the WaveNet's ``[384, frames]`` activations) spent ~5 % of it there.
    ``random_`` on int64 words read as four int16 lanes, compared in place, takes a quarter of its time (0.15
    against 0.65 ms on ``[384, 438]``; the generator's time goes per word, so 32 bits per element took 0.31 ms).
    An element is kept with probability ``k = round((1 - p) 2^16) / 2^16`` (1 - p rounded to 2^-16: 0.95 ->
    0.949997, 0.9 -> 0.899994, 0.5 exactly; ``bernoulli_`` compares a 24-bit float, fused GPU dropouts often 8
    bits) and scaled by ``1 / k``, so the expectation is exactly x, as ``nn.Dropout``'s. Only the random stream and
    this rounding of p differ. Other devices (their native fused dropout), eval mode and ``p = 0`` use
    ``nn.Dropout`` unchanged; no parameters, so checkpoints are unaffected.
    """

    def scaled_mask(self, x: torch.Tensor) -> torch.Tensor | None:
        """The CPU training mask, ``1 / k`` where x is kept and 0 elsewhere (k: the keep probability, see the class
        docstring), that :meth:`forward` multiplies x by (callers fusing the multiply into their next op use it
        directly); None where the forward is not this multiply (eval mode, ``p = 0``, other devices, ``inplace``)."""
        if not self.training or self.p == 0.0 or x.device.type != "cpu" or self.inplace:
            return None
        threshold = round((1.0 - self.p) * 2**16)  # kept where a lane + 2^15 (uniform on [0, 2^16)) is below it
        if threshold in (0, 2**16):  # 1 - p rounds to 0 or 1
            return torch.full_like(x, float(threshold > 0))
        n = x.numel()
        words = torch.empty((n + 3) // 4, dtype=torch.int64).random_(-(2**63), None)  # full 64-bit range
        lanes = words.view(torch.int16)[:n].view(x.shape)  # uniform on [-2^15, 2^15)
        # the comparison written straight into x's dtype (1.0 where kept): a bool result and its conversion took
        # ~3x as long on the WaveNet's [384, frames] activations
        kept = torch.lt(lanes, threshold - 2**15, out=torch.empty(x.shape, dtype=x.dtype))
        return kept.div_(threshold / 2**16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mask = self.scaled_mask(x)
        return super().forward(x) if mask is None else x * mask


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channel axis of ``[B, C, T]`` tensors."""

    def __init__(self, channels: int, eps: float = 1e-4):
        super().__init__()
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(x - mean) / sqrt(var + eps) * gamma + beta`` over C (population variance), as ``F.layer_norm`` on
        the channels-last view: one kernel each way instead of ~9 forward and ~15 backward ops (half the time on
        the text encoder's ``[B, 192, tokens]`` tensors). The result is the channels-last memory transposed."""
        return F.layer_norm(x.transpose(1, 2), (x.shape[1],), self.gamma, self.beta, self.eps).transpose(1, 2)


class ConvReluNorm(nn.Module):
    """Prenet: residual stack of [conv -> LayerNorm -> ReLU -> dropout] with a zero-initialised projection,
    so that it starts as the identity."""

    def __init__(self, channels: int, hidden: int, kernel_size: int = 5, n_layers: int = 3, p_dropout: float = 0.5):
        super().__init__()
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        for i in range(n_layers):
            self.convs.append(nn.Conv1d(channels if i == 0 else hidden, hidden, kernel_size, padding=kernel_size // 2))
            self.norms.append(ChannelLayerNorm(hidden))
        self.dropout = Dropout(p_dropout)
        self.proj = nn.Conv1d(hidden, channels, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = x
        for conv, norm in zip(self.convs, self.norms):
            h = self.dropout(torch.relu(norm(same_conv1d(conv, h * mask))))
        return (x + pointwise_conv1d(self.proj, h)) * mask


class WaveNet(nn.Module):
    """Non-causal WaveNet (gated dilated convs, residual/skip 1x1 convs, optional global conditioning g).

    Used inside the affine coupling layers; all convs are weight-normalised as in Glow-TTS.
    """

    def __init__(self, hidden: int, kernel_size: int, dilation_rate: int, n_layers: int, gin_channels: int = 0,
                 p_dropout: float = 0.0):
        super().__init__()
        assert kernel_size % 2 == 1
        self.hidden = hidden
        self.n_layers = n_layers
        self.in_layers = nn.ModuleList()
        self.res_skip_layers = nn.ModuleList()
        self.dropout = Dropout(p_dropout)
        self.cond_layer = weight_norm(nn.Conv1d(gin_channels, 2 * hidden * n_layers, 1)) if gin_channels > 0 else None
        self.max_padding = (kernel_size * dilation_rate ** (n_layers - 1) - dilation_rate ** (n_layers - 1)) // 2
        for i in range(n_layers):
            dilation = dilation_rate**i
            padding = (kernel_size * dilation - dilation) // 2
            self.in_layers.append(weight_norm(nn.Conv1d(hidden, 2 * hidden, kernel_size, dilation=dilation,
                                                        padding=padding)))
            out = 2 * hidden if i < n_layers - 1 else hidden  # last layer: skip only
            self.res_skip_layers.append(weight_norm(nn.Conv1d(hidden, out, 1)))

    def forward(self, x: torch.Tensor, mask: torch.Tensor, g: torch.Tensor | None = None,
                g_segments: Sequence[int] | None = None) -> torch.Tensor:
        """x ``[B, hidden, T]``, zero where the mask is 0 (the residual update relies on it), mask ``[B, 1, T]``,
        g ``[B, gin, 1]``.

        ``g_segments``: x holds the ``G`` sequences of g packed back to back into one (``B == 1``, see
        ``packing.py``); the first ``g_segments[0]`` frames get g's row 0, the next ``g_segments[1]`` row 1, ...
        """
        output = None
        conds = None
        if g is not None and self.cond_layer is not None:
            cond = self.cond_layer(g)  # [B, 2*hidden*n_layers, 1]
            if g_segments is not None:
                # a cat of expanded rows: its backward is a sum per segment (index_select's scatters column by column,
                # ~5x slower forward + backward on the flow's sizes)
                cond = torch.cat([cond[b].expand(-1, n) for b, n in enumerate(g_segments)], dim=1).unsqueeze(0)
            # split: its backward is one cat, where every slice's backward zero-fills a full-size gradient
            conds = cond.split(2 * self.hidden, dim=1)
        for i in range(self.n_layers):
            h = wavenet_conv1d(self.in_layers[i], x)
            noise = self.dropout.scaled_mask(h)
            if noise is None:
                h = self.dropout(h)  # eval mode or p = 0: h itself; other devices: their native dropout
            acts = gated_tanh_sigmoid(h, None if conds is None else conds[i], noise)
            res_skip = pointwise_conv1d(self.res_skip_layers[i], acts)
            if i < self.n_layers - 1:
                # chunk rather than two slices: its backward is one cat instead of two zero-filled copies
                res, skip = res_skip.chunk(2, dim=1)
                x = torch.addcmul(x, res, mask)  # (x + res) * mask: x is zero where the mask is 0
            else:
                skip = res_skip
            output = skip if output is None else output + skip
        return output * mask
