"""Monotonic Alignment Search: batched numba kernel vs the straightforward per-utterance Python reference DP.

Default sizes as in training: batch 16, ~100 phonemes, ~800 frames (lengths vary per utterance).
Run: ``python benchmarks/bench_mas.py [--batch 16 --tokens 100 --frames 800 --repeats 5]``
"""
import argparse
import time

import numpy as np

from librispeech_joint_training_given_alignments.pytorch_networks.monotonic_align import (
    maximum_path_numpy, maximum_path_reference)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=100)
    parser.add_argument("--frames", type=int, default=800)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    t_xs = rng.integers(int(args.tokens * 0.7), args.tokens + 1, size=args.batch)
    t_ys = rng.integers(int(args.frames * 0.7), args.frames + 1, size=args.batch)
    t_xs[0], t_ys[0] = args.tokens, args.frames
    value = rng.standard_normal((args.batch, args.tokens, args.frames)).astype(np.float32)

    maximum_path_numpy(value[:1], t_xs[:1], t_ys[:1])  # JIT compile / cache load outside the timing
    start = time.perf_counter()
    for _ in range(args.repeats):
        paths = maximum_path_numpy(value, t_xs, t_ys)
    t_numba = (time.perf_counter() - start) / args.repeats

    start = time.perf_counter()
    ref = [maximum_path_reference(value[b], int(t_xs[b]), int(t_ys[b])) for b in range(args.batch)]
    t_ref = time.perf_counter() - start
    assert all((paths[b] == ref[b]).all() for b in range(args.batch)), "numba MAS differs from the reference"

    print(f"MAS batch={args.batch} tokens<={args.tokens} frames<={args.frames}")
    print(f"{'implementation':<32}{'seconds/batch':>15}")
    print(f"{'numba batched (serial)':<32}{t_numba:>15.5f}")
    print(f"{'reference per-utterance (python)':<32}{t_ref:>15.5f}")
    print(f"speed-up: {t_ref / t_numba:.1f}x (results identical)")


if __name__ == "__main__":
    main()
