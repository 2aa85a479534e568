"""Winograd F(4, r) convolution: the flow WaveNet's kernel-5 convolutions with 0.4x the multiplications, for CPU
training on CPUs whose convolutions run best on oneDNN.

Why: the WaveNet's ``hidden -> 2 hidden`` kernel-5 convolutions took ~45 % of the Glow-TTS CPU training step.
oneDNN already runs them at about the core's peak FLOP rate, so only fewer FLOPs can make them faster. Winograd's
minimal filtering algorithm (Lavin & Gray 2016, "Fast Algorithms for Convolutional Neural Networks"; the Toom-Cook
construction) computes 4 outputs of an r-tap correlation from n = r + 3 products instead of 4 r. On tiles of
n input frames with stride 4:

    y_tile = AT [(G w) * (BT x_tile)]        (AT [4, n], G [n, r], BT [n, n]; * is per transform point)

Over channels, each of the n points is one GEMM ``[O, I] x [I, tiles]``; all n run as one grouped 1x1 convolution
on oneDNN (torch's batched matmul is MKL's AVX2 code on AMD CPUs, ~90 against ~190 GFLOP/s here). The tile
transforms (BT, AT and their adjoints) are numba kernels, one pass each (``winograd_kernels.py``); as torch ops
they were ~0.9 ms of the ~4.2 ms a layer took forward + backward in the step. Forward and backward together take
0.65x the direct convolution's time for the flow's ``192 -> 384`` layers over 438 frames, 1 thread (AMD EPYC
Zen 5; 0.77x on 2 threads, the kernels being single-threaded). In the full-size training step these 48
convolutions take 170 against 245 ms (README, Benchmarks).

Same mathematics, different rounding: the transforms are exact in real arithmetic. In float32 the largest output
error relative to the largest output is ~7e-7, against ~2e-7 for the direct convolution; the input gradient ~9e-7
(2.4e-7), the weight gradient ~2e-6 (9e-7). Measured against a float64 convolution; the tests bound these.
"""
from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from .winograd_kernels import TILE, compile_kernels

# Outputs per tile: TILE = 4 (winograd_kernels). F(4, 5) needs 8 interpolation points; more outputs per tile need
# points like +-3 or +-1/4, whose transforms lose ~10x more precision in float32 (F(6, 5): 7e-6 relative error).
# Finite interpolation points, in the order taken; the last point of every F(TILE, r) is infinity.
_POINTS = (0.0, 1.0, -1.0, 2.0, -2.0, 0.5, -0.5)
# Index of the point 1 among the points: its column of AT is all ones, so a bias added to that point's products
# reaches every output of the tile once (the grouped convolution adds it for free).
_POINT_ONE = _POINTS.index(1.0)
MAX_KERNEL_SIZE = len(_POINTS) + 2 - TILE


@functools.cache
def winograd_matrices(r: int, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(AT [TILE, n], G [n, r], BT [n, n])`` of F(TILE, r) in ``dtype``, n = TILE + r - 1.

    Toom-Cook: a correlation is the transpose of a linear convolution, which evaluates both polynomials at the n
    points, multiplies, and interpolates: ``y = V_m^T [(V_r w) * (V^-T x)]`` with V_k the points' Vandermonde
    matrices of k columns (the infinity row picks the top coefficient). G is scaled by ``1 / f_j``,
    ``f_j = prod_{l != j} (a_j - a_l)``, and BT by ``f_j``, which keeps BT's entries small integers and halves.
    Built in float64 and checked against the definition of the correlation before the cast.
    """
    if not 1 <= r <= MAX_KERNEL_SIZE:
        raise ValueError(f"Winograd F({TILE}, r) needs a kernel size between 1 and {MAX_KERNEL_SIZE}, got {r}")
    n = TILE + r - 1
    points = torch.tensor(_POINTS[: n - 1], dtype=torch.float64)

    def vandermonde(columns: int) -> torch.Tensor:
        v = torch.zeros(n, columns, dtype=torch.float64)
        v[: n - 1] = points[:, None] ** torch.arange(columns, dtype=torch.float64)
        v[n - 1, columns - 1] = 1.0  # the point at infinity: the highest coefficient
        return v

    diff = points[:, None] - points[None, :]
    f = torch.ones(n, dtype=torch.float64)
    f[: n - 1] = torch.where(torch.eye(n - 1, dtype=torch.bool), 1.0, diff).prod(1)
    at = vandermonde(TILE).t()
    g = vandermonde(r) / f[:, None]
    bt = f[:, None] * torch.linalg.inv(vandermonde(n)).t()
    # y_i = sum_k w_k x_{i+k} for every x and w: the trilinear form sum_j AT[i, j] G[j, k] BT[j, l] is [l == i + k]
    form = torch.einsum("ij,jk,jl->ikl", at, g, bt)
    i, k, l = torch.meshgrid(torch.arange(TILE), torch.arange(r), torch.arange(n), indexing="ij")
    if not torch.allclose(form, (l == i + k).double(), rtol=0.0, atol=1e-12):
        raise AssertionError(f"Winograd F({TILE}, {r}) transforms do not reproduce the correlation")
    return at.to(dtype), g.to(dtype), bt.to(dtype)


@functools.cache
def _transform_kernels(r: int):
    """The numba tile transforms of F(TILE, r) (``winograd_kernels.py``), compiled on first use."""
    at, _, bt = winograd_matrices(r, torch.float64)
    return compile_kernels(at, bt)


def _as_numpy(tensor: torch.Tensor):
    """The tensor's memory as a numpy array, for the kernels (contiguous CPU tensors: no copy)."""
    return tensor.detach().numpy()


class _WinogradConv1d(torch.autograd.Function):
    """``F.conv1d(x, weight, bias, padding=(r - 1) // 2)`` (stride 1, dilation 1, odd r) by Winograd F(TILE, r);
    backward in the transform domain as well: the input gradient through the transposed GEMMs and transforms,
    the weight gradient as the GEMMs ``dM_j V_j^T`` (another grouped 1x1 convolution) mapped back by ``G^T``.
    The tile transforms and their adjoints are the numba kernels of ``winograd_kernels.py``."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        b, i, t = x.shape
        o, _, r = weight.shape
        n, tiles = TILE + r - 1, -(-t // TILE)
        left = (r - 1) // 2
        kernels = _transform_kernels(r)
        v = x.new_empty(b, n, i, tiles)  # V[b, j, c, tile] = sum_l BT[j, l] xp[b, c, TILE tile + l]
        kernels.input_transform(_as_numpy(x.contiguous()), left, _as_numpy(v))
        g = winograd_matrices(r, x.dtype)[1]
        u = torch.mm(g, weight.reshape(o * i, r).t())  # U[j, o, c] = sum_k G[j, k] w[o, c, k]
        point_bias = None
        if bias is not None:
            point_bias = bias.new_zeros(n, o)
            point_bias[_POINT_ONE] = bias
            point_bias = point_bias.view(-1)
        # dilation 2 on a kernel of size 1 changes nothing but makes torch take oneDNN (see pointwise_conv1d)
        m = F.conv1d(v.view(b, n * i, tiles), u.view(n * o, i, 1), point_bias, groups=n, dilation=2)
        y = x.new_empty(b, o, t)
        kernels.output_transform(_as_numpy(m).reshape(b, n, o, tiles), _as_numpy(y))
        v_by_tile = None  # the weight gradient's input: V with tiles as channels, [1, n*B*tiles, I]
        if ctx.needs_input_grad[1]:
            v_by_tile = v.permute(1, 0, 3, 2).reshape(1, n * b * tiles, i)
        ctx.save_for_backward(v, v_by_tile, u)
        ctx.shapes = (b, i, t, o, r, tiles, left, bias is not None)
        return y

    @staticmethod
    def backward(ctx, grad_y):
        v, v_by_tile, u = ctx.saved_tensors
        b, i, t, o, r, tiles, left, has_bias = ctx.shapes
        n = TILE + r - 1
        kernels = _transform_kernels(r)
        grad_x = grad_w = grad_b = None
        if has_bias and ctx.needs_input_grad[2]:
            grad_b = grad_y.sum((0, 2))
        grad_m = grad_y.new_empty(b, n, o, tiles)  # [B, n, O, tiles]
        kernels.output_transform_adjoint(_as_numpy(grad_y.contiguous()), _as_numpy(grad_m))
        if ctx.needs_input_grad[1]:
            # [n*O, B*tiles, 1]: a copy only where B > 1 (for B = 1 the reshape is a view)
            grad_m_w = grad_m.permute(1, 2, 0, 3).reshape(n * o, b * tiles, 1)
            grad_u = F.conv1d(v_by_tile, grad_m_w, groups=n, dilation=2)  # [1, n*O, I]
            g = winograd_matrices(r, grad_y.dtype)[1]
            grad_w = torch.mm(g.t(), grad_u.view(n, o * i)).t().reshape(o, i, r)
        if ctx.needs_input_grad[0]:
            grad_v = torch.ops.aten.convolution_backward(
                grad_m.view(b, n * o, tiles), v.view(b, n * i, tiles), u.view(n * o, i, 1), None, [1], [0], [2],
                False, [0], n, [True, False, False])[0]
            grad_x = grad_y.new_empty(b, i, t)
            kernels.input_transform_adjoint(_as_numpy(grad_v).reshape(b, n, i, tiles), left, _as_numpy(grad_x))
        return grad_x, grad_w, grad_b


def winograd_conv1d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``F.conv1d(x, weight, bias, padding=(r - 1) // 2)`` for x ``[B, I, T]``, weight ``[O, I, r]`` (odd
    r <= :data:`MAX_KERNEL_SIZE`), stride and dilation 1, by Winograd F(4, r), float32 or float64 CPU tensors; see the
    module docstring."""
    r = weight.shape[-1]
    if r % 2 == 0 or r > MAX_KERNEL_SIZE or x.dim() != 3 or weight.dim() != 3 or x.shape[1] != weight.shape[1]:
        raise ValueError(f"winograd_conv1d needs x [B, I, T], weight [O, I, r] with odd r <= {MAX_KERNEL_SIZE}; "
                         f"got {tuple(x.shape)} and {tuple(weight.shape)}")
    if x.device.type != "cpu" or weight.device.type != "cpu" or x.dtype not in (torch.float32, torch.float64):
        raise ValueError(f"winograd_conv1d runs in float32 or float64 on the CPU (its transforms are numba kernels); "
                         f"got x {x.dtype} on {x.device}, weight on {weight.device}")
    return _WinogradConv1d.apply(x, weight, bias)
