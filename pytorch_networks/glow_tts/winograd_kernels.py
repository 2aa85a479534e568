"""numba kernels for the tile transforms of the Winograd F(4, r) convolution (``winograd.py``), one pass each.

Why: in torch every transform took 3-6 ops (a pad, the unfold's copy, a batched ``[n, n] x [n, I*tiles]`` matmul,
a permute copy, the overlap-add's loop), each a full pass over the layer's activations. In the full-size Glow-TTS
CPU training step they took ~0.9 ms of the ~4.2 ms a 192 -> 384 WaveNet convolution cost forward + backward.
Each kernel here makes one pass: per channel row, the loop over tiles loads a tile's inputs, computes all its
outputs with the matrix entries as constants (zeros skipped), and stores them. LLVM vectorises that loop.
Isolated, on a [192, 438] / [384, 438] layer, the input transform takes 0.04 ms against 0.10 ms in torch, and the
output transform 0.03 ms against 0.12 ms; the training step took 0.95x its time (old and new code alternating in
one process).

Why generated source: the loop body has to hold the tile size and the matrix entries as literals. Only then does
LLVM keep the tile in registers and fold the multiplications. So the kernels of each kernel size r are written
out from its matrices (:func:`kernel_source`) and compiled by numba on first use, ~0.5 s per kernel and dtype once
per process. numba's on-disk cache needs a source file, so these are not cached.

The matrix entries of F(4, r) are dyadic rationals (5.25, -4.25, 0.125, ...), exact in float32. The kernels
multiply in the input's dtype and add in the order written. Only float rounding differs from the torch
formulation, and the tests bound it. Single-threaded (``nogil``, like the MAS kernel), so more torch threads do not
speed them up: on 2 threads a layer takes 0.77x the direct convolution's time, against 0.65x on 1.

Layouts (C-contiguous arrays): x, grad x ``[B, I, T]``; V, grad V ``[B, n, I, tiles]``; M, grad M
``[B, n, O, tiles]``; y, grad y ``[B, O, T]``, with ``tiles = ceil(T / 4)`` and ``n = r + 3``.
"""
from __future__ import annotations

import types

import numba
import numpy as np
import torch

# Outputs per tile; winograd.TILE is this value.
TILE = 4
# The grid the matrix entries are checked to lie on (and snapped to, removing the float64 construction's ~1e-15).
_GRID = 2.0**-20


def _exact(value: float) -> float:
    """``value`` snapped to the dyadic grid, checked to be exact in float32."""
    snapped = round(value / _GRID) * _GRID
    if abs(snapped - value) > 1e-9 or float(np.float32(snapped)) != snapped:
        raise AssertionError(f"Winograd matrix entry {value!r} is not a dyadic rational exact in float32")
    return snapped


def _combination(coefficients, names) -> str:
    """Source of ``sum_k coefficients[k] * names[k]``, without the zero terms (float32 literals)."""
    terms = []
    for coefficient, name in zip(coefficients, names):
        c = _exact(float(coefficient))
        if c != 0.0:
            terms.append(name if c == 1.0 else f"-{name}" if c == -1.0 else f"np.float32({c!r}) * {name}")
    return " + ".join(terms).replace("+ -", "- ") if terms else "np.float32(0.0)"


def kernel_source(at: torch.Tensor, bt: torch.Tensor) -> str:
    """Python source of the four kernels for the float64 matrices ``AT [TILE, n]`` and ``BT [n, n]``.

    - ``input_transform(x, left, v)``: ``v[b, j, c, k] = sum_l BT[j, l] xp[b, c, 4 k + l]``, where xp is x
      shifted right by ``left`` frames, with zeros outside x.
    - ``output_transform(m, y)``: ``y[b, o, 4 k + q] = sum_j AT[q, j] m[b, j, o, k]`` for ``4 k + q < T``.
    - ``output_transform_adjoint(gy, gm)``: ``gm[b, j, o, k] = sum_q AT[q, j] gy[b, o, 4 k + q]`` (gy zero
      beyond T).
    - ``input_transform_adjoint(gv, left, gx)``: the overlap-add
      ``gx[b, c, t] = sum_{k, l: 4 k + l = t + left} sum_j BT[j, l] gv[b, j, c, k]``.
    """
    a, bmat = at.tolist(), bt.tolist()
    n = len(bmat)
    blocks = -(-n // TILE)  # tiles a tile's n inputs overlap
    xs, ms, qs, gs = ([f"{p}{k}" for k in range(count)] for p, count in (("x", n), ("m", n), ("q", TILE), ("g", n)))
    lines = [
        "def input_transform(x, left, v):",
        "    nb, ni, nt = x.shape",
        "    tiles = v.shape[3]",
        f"    span = tiles + {blocks}",
        "    d = np.empty((4, span), dtype=x.dtype)  # the shifted row by phase: d[p, k] = xp[4 k + p]",
        "    for b in range(nb):",
        "        for c in range(ni):",
        "            for p in range(4):",
        "                for k in range(span):",
        "                    t = 4 * k + p - left",
        "                    d[p, k] = x[b, c, t] if 0 <= t < nt else 0",
        "            for k in range(tiles):",
        *(f"                {xs[l]} = d[{l % TILE}, k + {l // TILE}]" for l in range(n)),
        *(f"                v[b, {j}, c, k] = {_combination(bmat[j], xs)}" for j in range(n)),
        "",
        "def output_transform(m, y):",
        "    nb, n, no, tiles = m.shape",
        "    nt = y.shape[2]",
        "    tile = np.empty((tiles, 4), dtype=m.dtype)",
        "    acc = tile.reshape(-1)",
        "    for b in range(nb):",
        "        for o in range(no):",
        "            for k in range(tiles):",
        *(f"                {ms[j]} = m[b, {j}, o, k]" for j in range(n)),
        *(f"                tile[k, {q}] = {_combination(a[q], ms)}" for q in range(TILE)),
        "            for t in range(nt):",
        "                y[b, o, t] = acc[t]",
        "",
        "def output_transform_adjoint(gy, gm):",
        "    nb, no, nt = gy.shape",
        "    tiles = gm.shape[3]",
        "    tile = np.zeros((tiles, 4), dtype=gy.dtype)",
        "    row = tile.reshape(-1)  # frames from nt on stay zero",
        "    for b in range(nb):",
        "        for o in range(no):",
        "            for t in range(nt):",
        "                row[t] = gy[b, o, t]",
        "            for k in range(tiles):",
        *(f"                {qs[q]} = tile[k, {q}]" for q in range(TILE)),
        *(f"                gm[b, {j}, o, k] = {_combination([a[q][j] for q in range(TILE)], qs)}" for j in range(n)),
        "",
        "def input_transform_adjoint(gv, left, gx):",
        "    nb, n, ni, tiles = gv.shape",
        "    nt = gx.shape[2]",
        # acc[s, k + s, p]: what tile k adds to the shifted frame 4 (k + s) + p. Entries no tile writes stay zero.
        f"    acc = np.zeros(({blocks}, tiles + {blocks}, 4), dtype=gv.dtype)",
        "    for b in range(nb):",
        "        for c in range(ni):",
        "            for k in range(tiles):",
        *(f"                {gs[j]} = gv[b, {j}, c, k]" for j in range(n)),
        *(f"                acc[{l // TILE}, k + {l // TILE}, {l % TILE}] = "
          f"{_combination([bmat[j][l] for j in range(n)], gs)}" for l in range(n)),
        "            for t in range(nt):",
        "                p = t + left",
        "                gx[b, c, t] = " + " + ".join(f"acc[{s}, p >> 2, p & 3]" for s in range(blocks)),
    ]
    return "\n".join(lines) + "\n"


def compile_kernels(at: torch.Tensor, bt: torch.Tensor) -> types.SimpleNamespace:
    """The four kernels of :func:`kernel_source`, compiled by numba (lazily, per dtype), as a namespace's attributes."""
    namespace = {"np": np}
    filename = f"<Winograd F({TILE}, {bt.shape[0] - TILE + 1}) transforms>"
    exec(compile(kernel_source(at, bt), filename, "exec"), namespace)
    jit = numba.njit(nogil=True, boundscheck=False)
    names = ("input_transform", "output_transform", "output_transform_adjoint", "input_transform_adjoint")
    return types.SimpleNamespace(**{name: jit(namespace[name]) for name in names})
