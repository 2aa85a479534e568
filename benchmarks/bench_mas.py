"""Monotonic Alignment Search: the project's ``maximum_path`` vs the official Glow-TTS Cython kernel.

Reference: PyPI ``monotonic-alignment-search`` (``maximum_path_cython``: Cython wheels of Glow-TTS'
``monotonic_align``, with its original torch wrapper). Install it with ``pip install -e .[benchmarks]``.
Both get the same float32 ``[B, N, T]`` log-likelihoods on the CPU; the reference gets the ``[B, N, T]`` mask
its API takes, the project the ``[B, 1, N]`` / ``[B, 1, T]`` token / frame masks the model has. Each call is
timed end to end (wrapper + kernel, torch tensor in, torch path out). The two run in interleaved rounds and the
ratio is the median of the per-round ratios (robust on a busy machine); the paths are checked bit-identical.

Run: ``python benchmarks/bench_mas.py [--rounds 15 --threads 1]`` (prints one line per size:
batch 32 x 80-120 tokens x 500-800 frames, and 16 x 1000-2000 frames).
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from librispeech_joint_training_given_alignments.pytorch_networks.commons import sequence_mask
from librispeech_joint_training_given_alignments.pytorch_networks.monotonic_align import maximum_path

SIZES = (  # (batch, tokens min, tokens max, frames min, frames max)
    (32, 80, 120, 500, 800),
    (16, 100, 200, 1000, 2000),
)


def _inputs(rng, batch, n_lo, n_hi, t_lo, t_hi):
    t_xs = torch.from_numpy(rng.integers(n_lo, n_hi + 1, size=batch))
    t_ys = torch.from_numpy(rng.integers(t_lo, t_hi + 1, size=batch))
    t_xs[0], t_ys[0] = n_hi, t_hi
    value = torch.from_numpy(rng.standard_normal((batch, n_hi, t_hi)).astype(np.float32) * 3)
    x_mask = sequence_mask(t_xs, n_hi).unsqueeze(1).float()  # [B, 1, N] as in the model
    y_mask = sequence_mask(t_ys, t_hi).unsqueeze(1).float()  # [B, 1, T]
    return value, x_mask, y_mask, x_mask.transpose(1, 2) * y_mask  # the official API's [B, N, T] mask


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (the project's MAS threads)")
    args = parser.parse_args()
    try:
        from monotonic_alignment_search import maximum_path_cython
    except ImportError as e:
        raise SystemExit("bench_mas needs the reference: pip install monotonic-alignment-search "
                         "(or pip install -e .[benchmarks])") from e
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    print(f"MAS, {args.rounds} interleaved rounds, torch threads {args.threads} (official kernel: serial)")
    print(f"{'batch x tokens x frames':<28}{'project ms':>12}{'official ms':>13}{'project/official':>18}")
    for batch, n_lo, n_hi, t_lo, t_hi in SIZES:
        value, x_mask, y_mask, attn_mask = _inputs(rng, batch, n_lo, n_hi, t_lo, t_hi)
        ours = maximum_path(value, x_mask, y_mask)  # also the numba JIT / cache load
        ref = maximum_path_cython(value, attn_mask)
        assert torch.equal(ours, ref), "project MAS differs from the official kernel"
        t_ours, t_ref = [], []
        for r in range(args.rounds):
            pair = [("o", lambda: maximum_path(value, x_mask, y_mask)),
                    ("r", lambda: maximum_path_cython(value, attn_mask))]
            if r % 2:
                pair.reverse()
            for name, fn in pair:
                (t_ours if name == "o" else t_ref).append(_timed(fn))
        ratio = statistics.median(o / r for o, r in zip(t_ours, t_ref))
        label = f"{batch} x {n_lo}-{n_hi} x {t_lo}-{t_hi}"
        print(f"{label:<28}{statistics.median(t_ours) * 1e3:>12.2f}{statistics.median(t_ref) * 1e3:>13.2f}"
              f"{ratio:>17.2f}x")
    print("paths bit-identical; ratio = median over rounds of project time / official time (goal <= 0.5)")


if __name__ == "__main__":
    main()
