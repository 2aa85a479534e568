"""Monotonic Alignment Search (MAS): exact Viterbi DP over monotonic, surjective token->frame alignments.

For token log-likelihoods ``value[x, y]`` (token x, frame y) the DP finds the path that starts at token 0 on
frame 0, ends at token t_x-1 on frame t_y-1, and at every frame either stays on the token or advances by one,
maximising the summed value. Recursion and tie rule are those of the official Glow-TTS Cython kernel
(``monotonic_align/core.pyx``): ``Q[x, y] = value[x, y] + max(stay, advance)`` in float32 with ``-1e9`` for an
impossible move, and when backtracking stay on the token unless advancing was strictly better
(``Q[x, y-1] < Q[x-1, y-1]``) or staying is impossible (``x == y``).

:func:`maximum_path` is used in training. Why it is faster than the official wrapper + kernel:

- the lengths come from the token / frame masks (``[B, N]`` + ``[B, T]``), not from reducing the ``[B, N, T]``
  mask twice; values outside ``[:t_x, :t_y]`` are never read, so the input is not multiplied by the mask;
- the input is read where it lies (a float32 CPU tensor is not copied, nor modified: the DP keeps only two
  score columns), and the output is written once, directly in the value's dtype (no int32 path + conversion);
- the kernel walks frame by frame over a rolling column, reading the ``[N, T]`` values in tiles of
  ``_TILE`` frames that are transposed into a small frame-major buffer, so the inner loop over tokens is
  contiguous and vectorised; the back-pointers are one byte per band cell (frame-major);
- the utterances of a batch run on a private thread pool of ``torch.get_num_threads()`` Python threads
  calling the GIL-free kernel. numba's ``parallel=True`` runtime is not used: its OpenMP layer reset torch's
  intra-op thread count to all cores on its first call, and its spinning threads slowed training on a loaded
  machine; Python threads change no thread setting of torch or OpenMP.

:func:`maximum_path_reference` is the straightforward per-utterance Python DP used by tests (and as the
bit-identity check of the benchmark).
"""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Optional

import numba
import numpy as np
import torch

NEG_INF = -1e9
_TILE = 16  # frames per transposed tile: 16 x N float32 stays in L1 for N up to several hundred tokens


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _column(q_new: np.ndarray, advance: np.ndarray, q_old: np.ndarray, row: np.ndarray, n: int) -> None:
    """One DP column on views starting at the band's first token (a loop from 0 that LLVM vectorises)."""
    for x in range(n):
        stay = q_old[x + 1]
        adv = q_old[x]
        advance[x] = stay < adv
        q_new[x + 1] = row[x] + max(stay, adv)


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _mas_single(path: np.ndarray, value: np.ndarray, t_x: int, t_y: int) -> None:
    """DP on ``value[:t_x, :t_y]`` (float32, read only) and backtracking into ``path`` (fully written)."""
    path[:, :] = 0
    neg = np.float32(NEG_INF)
    # columns of Q, shifted by one token: q[x + 1] = Q[x, y]; q[0] is the "advance from token -1" sentinel.
    # Cells above the diagonal are never written, so they hold -1e9: "staying is impossible" as in the official DP.
    q_old = np.full(t_x + 1, neg, dtype=np.float32)
    q_new = np.full(t_x + 1, neg, dtype=np.float32)
    advance = np.empty((t_y, t_x), dtype=np.uint8)  # back-pointers of the band cells: 1 = came from token x-1
    tile = np.empty((_TILE, t_x), dtype=np.float32)
    for y0 in range(0, t_y, _TILE):
        y1 = min(y0 + _TILE, t_y)
        lo0 = max(0, t_x + y0 - t_y)
        hi1 = min(t_x, y1)
        tile[: y1 - y0, lo0:hi1] = value[lo0:hi1, y0:y1].T  # the tile's band, frame-major
        for y in range(y0, y1):
            lo = max(0, t_x + y - t_y)
            hi = min(t_x, y + 1)
            if y == 0:
                q_new[1] = tile[0, 0] + max(neg, np.float32(0.0))
            else:
                _column(q_new[lo:], advance[y, lo:], q_old[lo:], tile[y - y0, lo:], hi - lo)
                if hi == y + 1:  # x == y: staying is impossible, advance whatever the scores
                    advance[y, y] = 1
            q_old, q_new = q_new, q_old
    x = t_x - 1
    for y in range(t_y - 1, -1, -1):
        path[x, y] = 1
        if x != 0 and advance[y, x]:
            x -= 1


@numba.njit(cache=True, nogil=True)
def _mas_range(paths: np.ndarray, values: np.ndarray, t_xs: np.ndarray, t_ys: np.ndarray, start: int,
               stop: int) -> None:
    for b in range(start, stop):
        _mas_single(paths[b], values[b], t_xs[b], t_ys[b])


_POOL_LOCK = threading.Lock()
_POOL: Optional[ThreadPoolExecutor] = None
_POOL_SIZE = 0


def _pool(workers: int) -> ThreadPoolExecutor:
    """A module-level thread pool of ``workers`` threads (re-created only when the count changes)."""
    global _POOL, _POOL_SIZE
    with _POOL_LOCK:
        if _POOL is None or _POOL_SIZE != workers:
            if _POOL is not None:
                _POOL.shutdown(wait=False)
            _POOL = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mas")
            _POOL_SIZE = workers
        return _POOL


def maximum_path_numpy(value: np.ndarray, t_xs: np.ndarray, t_ys: np.ndarray, out: Optional[np.ndarray] = None,
                       workers: Optional[int] = None) -> np.ndarray:
    """Batched MAS on numpy: ``value [B, N, T]`` (not modified) -> path ``[B, N, T]``.

    :param out: array to write the path into (float32/float64/int32 ``[B, N, T]``); default a new int32 array
    :param workers: threads over the batch; default ``torch.get_num_threads()`` (the job's CPU allotment)
    """
    value = np.ascontiguousarray(value, dtype=np.float32)
    if value.ndim != 3:
        raise ValueError(f"MAS value must be [B, N, T], got shape {value.shape}")
    batch, n, t = value.shape
    t_xs = np.ascontiguousarray(t_xs, dtype=np.int64)
    t_ys = np.ascontiguousarray(t_ys, dtype=np.int64)
    if t_xs.shape != (batch,) or t_ys.shape != (batch,):
        raise ValueError(f"MAS lengths must be [B={batch}], got {t_xs.shape} and {t_ys.shape}")
    if (t_xs > n).any() or (t_ys > t).any() or (t_xs > t_ys).any() or (t_xs < 1).any():
        bad = int(np.flatnonzero((t_xs > n) | (t_ys > t) | (t_xs > t_ys) | (t_xs < 1))[0])
        raise ValueError(f"MAS needs 1 <= tokens <= frames within [N={n}, T={t}]; sequence {bad} of the batch has "
                         f"{int(t_xs[bad])} tokens and {int(t_ys[bad])} frames")
    paths = np.empty(value.shape, dtype=np.int32) if out is None else out
    workers = max(1, min(batch, torch.get_num_threads() if workers is None else workers))
    if workers == 1:
        _mas_range(paths, value, t_xs, t_ys, 0, batch)
        return paths
    # interleaved chunks of the batch so that long and short utterances spread over the threads
    order = np.argsort(-(t_xs * t_ys), kind="stable")
    chunks = [np.sort(order[i::workers]) for i in range(workers)]
    futures = [_pool(workers).submit(_run_indices, paths, value, t_xs, t_ys, idx) for idx in chunks]
    for f in futures:
        f.result()
    return paths


def _run_indices(paths, value, t_xs, t_ys, idx) -> None:
    for b in idx:
        _mas_range(paths, value, t_xs, t_ys, int(b), int(b) + 1)


def _lengths(mask: torch.Tensor, name: str, batch: int) -> np.ndarray:
    """Valid positions per sequence from a ``[B, L]`` or ``[B, 1, L]`` mask (bool or 0/1 float)."""
    if mask.dim() == 3:
        if mask.shape[1] != 1:
            raise ValueError(f"MAS {name} must be [B, L] or [B, 1, L], got {tuple(mask.shape)}")
        mask = mask[:, 0]
    if mask.dim() != 2 or mask.shape[0] != batch:
        raise ValueError(f"MAS {name} must be [B={batch}, L] or [B, 1, L], got {tuple(mask.shape)}")
    return mask.sum(1, dtype=torch.int64).cpu().numpy()


@torch.no_grad()
def maximum_path(value: torch.Tensor, x_mask: torch.Tensor, y_mask: torch.Tensor) -> torch.Tensor:
    """MAS for a batch of token/frame log-likelihoods.

    :param value: ``[B, N, T]`` log-likelihood of frame t under token n (only ``[:t_x, :t_y]`` is read)
    :param x_mask: ``[B, N]`` or ``[B, 1, N]`` valid tokens
    :param y_mask: ``[B, T]`` or ``[B, 1, T]`` valid frames
    :return: hard path ``[B, N, T]`` (dtype/device of ``value``), no gradient
    """
    batch, n, t = value.shape
    t_xs = _lengths(x_mask, "token mask", batch)
    t_ys = _lengths(y_mask, "frame mask", batch)
    if x_mask.shape[-1] != n or y_mask.shape[-1] != t:
        raise ValueError(f"MAS masks {tuple(x_mask.shape)} / {tuple(y_mask.shape)} do not fit value {(batch, n, t)}")
    value_np = value.detach().to(device="cpu", dtype=torch.float32).numpy()  # no copy for a float32 CPU tensor
    out_dtype = value.dtype if value.dtype in (torch.float32, torch.float64) else torch.float32
    out = torch.empty((batch, n, t), dtype=out_dtype)
    maximum_path_numpy(value_np, t_xs, t_ys, out=out.numpy())
    return out.to(device=value.device, dtype=value.dtype)


def maximum_path_reference(value: np.ndarray, t_x: int, t_y: int) -> np.ndarray:
    """Plain per-utterance DP (pure Python loops, the official recursion on a full copy of the matrix).

    :param value: ``[N, T]`` log-likelihoods (only ``[:t_x, :t_y]`` is used)
    :return: int32 path ``[N, T]``
    """
    q = np.array(value, dtype=np.float32, copy=True)
    path = np.zeros(q.shape, dtype=np.int32)
    for y in range(t_y):
        for x in range(max(0, t_x + y - t_y), min(t_x, y + 1)):
            stay = NEG_INF if x == y else float(q[x, y - 1])
            if x == 0:
                advance = 0.0 if y == 0 else NEG_INF
            else:
                advance = float(q[x - 1, y - 1])
            q[x, y] = np.float32(float(q[x, y]) + max(stay, advance))
    x = t_x - 1
    for y in range(t_y - 1, -1, -1):
        path[x, y] = 1
        if x != 0 and (x == y or q[x, y - 1] < q[x - 1, y - 1]):
            x -= 1
    return path
