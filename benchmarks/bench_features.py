"""Throughput of the log-mel front end (``data_prep.features.LogMelExtractor``) vs librosa on the same files.

Usage: ``python benchmarks/bench_features.py [LIBRISPEECH_SUBSET_DIR]``. Without an argument it synthesises a
small embedded corpus (flite / espeak-ng) into a temporary directory. Both sides read the same decoded audio,
use the same settings (16 kHz, 800-sample Hann window, hop 200, 80 mels 60-7600 Hz, pre-emphasis 0.97) and run
single-threaded; the first pass of each is a warm-up (librosa/numba JIT, torch init) and is not timed.
"""
from __future__ import annotations

import glob
import os
import sys
import tempfile
import time

import numpy as np
import soundfile


def _files(argv) -> list:
    if len(argv) > 1:
        return sorted(glob.glob(os.path.join(argv[1], "**", "*.flac"), recursive=True))
    from librispeech_joint_training_given_alignments.data_prep import synthesis

    tmp = tempfile.mkdtemp(prefix="bench_features_")
    spec = synthesis.SubsetSpec("bench", tuple(v.speaker_id for v in synthesis.DEFAULT_VOICES), 6)
    synthesis.write_librispeech_tree(tmp, synthesis.plan_corpus(synthesis.DEFAULT_VOICES, [spec], seed=11))
    return sorted(glob.glob(os.path.join(tmp, "**", "*.flac"), recursive=True))


def _time(fn, audios, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for a in audios:
            fn(a)
        best = min(best, time.perf_counter() - start)
    return best


def main(argv) -> None:
    import torch

    from librispeech_joint_training_given_alignments.data_prep.features import (LogMelExtractor, LogMelSettings,
                                                                                librosa_log_mel)

    torch.set_num_threads(1)
    files = _files(argv)
    audios = [soundfile.read(f, dtype="float32")[0] for f in files]
    seconds = sum(len(a) for a in audios) / 16000
    settings = LogMelSettings()
    ours = LogMelExtractor(settings)
    ref = lambda a: librosa_log_mel(a, settings)  # noqa: E731
    diff = max(float(np.abs(ours(a) - ref(a)).max()) for a in audios[:5])  # also the warm-up
    t_ours = _time(ours, audios, 3)
    t_ref = _time(ref, audios, 3)
    print(f"{len(files)} files, {seconds:.1f} s audio; max |ours - librosa| = {diff:.2e} dB")
    print(f"ours (torch.stft + librosa mel matrix): {t_ours:.3f} s  = {seconds / t_ours:8.1f}x real time")
    print(f"librosa.feature.melspectrogram        : {t_ref:.3f} s  = {seconds / t_ref:8.1f}x real time")
    print(f"speed ratio ours / librosa: {t_ref / t_ours:.2f}")


if __name__ == "__main__":
    main(sys.argv)
