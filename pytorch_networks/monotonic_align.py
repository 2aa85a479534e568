"""Monotonic Alignment Search (MAS): exact Viterbi DP over monotonic, surjective token->frame alignments.

For token log-likelihoods ``value[x, y]`` (token x, frame y) the DP finds the path that starts at token 0 on
frame 0, ends at token t_x-1 on frame t_y-1, and at every frame either stays on the token or advances by one,
maximising the summed value. Tie rule (both implementations): when backtracking, stay on the token unless
advancing was strictly better (``Q[x, y-1] < Q[x-1, y-1]``) or staying is impossible (``x == y``).

:func:`maximum_path` (numba, serial over the batch) is used in training; :func:`maximum_path_reference`
is the straightforward per-utterance Python DP used by tests and the benchmark.
"""
from __future__ import annotations

import numba
import numpy as np
import torch

NEG_INF = -1e9


@numba.njit(cache=True, nogil=True)
def _mas_single(path: np.ndarray, value: np.ndarray, t_x: int, t_y: int) -> None:
    """In-place DP on ``value[:t_x, :t_y]`` (float32) and backtracking into ``path`` (int32)."""
    for y in range(t_y):
        for x in range(max(0, t_x + y - t_y), min(t_x, y + 1)):
            if x == y:
                v_stay = NEG_INF
            else:
                v_stay = value[x, y - 1]
            if x == 0:
                v_adv = 0.0 if y == 0 else NEG_INF
            else:
                v_adv = value[x - 1, y - 1]
            value[x, y] = value[x, y] + max(v_stay, v_adv)
    x = t_x - 1
    for y in range(t_y - 1, -1, -1):
        path[x, y] = 1
        if x != 0 and (x == y or value[x, y - 1] < value[x - 1, y - 1]):
            x -= 1


@numba.njit(cache=True, nogil=True)
def _mas_batch(paths: np.ndarray, values: np.ndarray, t_xs: np.ndarray, t_ys: np.ndarray) -> None:
    # Serial on purpose: the DP of a whole batch takes milliseconds, while numba's parallel runtime spin-waits
    # for its threads; on a loaded machine (other trainings, a busy 2-core laptop) that made a training step
    # over ten times slower, and it also reset torch's intra-op thread count.
    for b in range(paths.shape[0]):
        _mas_single(paths[b], values[b], t_xs[b], t_ys[b])


def maximum_path_numpy(value: np.ndarray, t_xs: np.ndarray, t_ys: np.ndarray) -> np.ndarray:
    """Batched MAS on numpy: ``value [B, N, T]`` -> int32 path ``[B, N, T]`` (value is copied)."""
    value = np.ascontiguousarray(value, dtype=np.float32).copy()
    paths = np.zeros(value.shape, dtype=np.int32)
    _mas_batch(paths, value, np.ascontiguousarray(t_xs, dtype=np.int32), np.ascontiguousarray(t_ys, dtype=np.int32))
    return paths


@torch.no_grad()
def maximum_path(value: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """MAS for a batch of token/frame log-likelihoods.

    :param value: ``[B, N, T]`` log-likelihood of frame t under token n
    :param mask: ``[B, N, T]`` valid pairs (outer product of token and frame masks)
    :return: hard path ``[B, N, T]`` (dtype/device of ``value``), no gradient
    """
    mask_f = mask.to(value.dtype)
    value_np = (value * mask_f).detach().cpu().numpy().astype(np.float32)
    t_xs = mask_f.sum(1)[:, 0].long().cpu().numpy()
    t_ys = mask_f.sum(2)[:, 0].long().cpu().numpy()
    paths = maximum_path_numpy(value_np, t_xs, t_ys)
    return torch.from_numpy(paths).to(device=value.device, dtype=value.dtype)


def maximum_path_reference(value: np.ndarray, t_x: int, t_y: int) -> np.ndarray:
    """Plain per-utterance DP (pure Python loops), same recursion and tie rule as the numba kernel.

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
            q[x, y] = float(q[x, y]) + max(stay, advance)
    x = t_x - 1
    for y in range(t_y - 1, -1, -1):
        path[x, y] = 1
        if x != 0 and (x == y or q[x, y - 1] < q[x - 1, y - 1]):
            x -= 1
    return path
