"""Throughput of the log-mel front end (``data_prep.features.LogMelExtractor``) vs librosa and a plain
``scipy.fft`` STFT on the same files (interleaved rounds, median of per-round time ratios).

Usage: ``python benchmarks/bench_features.py [LIBRISPEECH_SUBSET_DIR]``. Without an argument it synthesises a
small embedded corpus (flite / espeak-ng) into a temporary directory. Both sides read the same decoded audio,
use the same settings (16 kHz, 800-sample Hann window, hop 200, 80 mels 60-7600 Hz, pre-emphasis 0.97) and run
single-threaded; the first pass of each is a warm-up (librosa/numba JIT, torch init) and is not timed.
"""
from __future__ import annotations

import glob
import os
import statistics
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


def scipy_fft_log_mel(audio: np.ndarray, settings) -> np.ndarray:
    """A plain STFT with ``scipy.fft``: centre padding, strided frames, periodic Hann window, rfft, power, the
    same librosa mel matrix, dB. The straightforward NumPy/SciPy way to compute the same features."""
    import scipy.fft
    import scipy.signal

    from librispeech_joint_training_given_alignments.data_prep.features import mel_basis, preemphasize

    s = settings
    y = preemphasize(audio.astype(np.float32), s.preemphasis)
    if s.center:
        y = np.pad(y, (s.n_fft // 2, s.n_fft // 2), mode="constant")
    frames = np.lib.stride_tricks.sliding_window_view(y, s.n_fft)[:: s.hop_length]
    window = scipy.signal.get_window("hann", s.n_fft, fftbins=True).astype(np.float32)
    spec = scipy.fft.rfft(frames * window, axis=-1)
    power = spec.real**2 + spec.imag**2
    mel = power @ mel_basis(s).T
    return (20.0 * np.log10(np.maximum(s.min_amp, mel))).astype(np.float32)


def _time(fn, audios) -> float:
    start = time.perf_counter()
    for a in audios:
        fn(a)
    return time.perf_counter() - start


def main(argv) -> None:
    import torch

    from librispeech_joint_training_given_alignments.data_prep.features import (LogMelExtractor, LogMelSettings,
                                                                                librosa_log_mel)

    torch.set_num_threads(1)
    files = _files(argv)
    audios = [soundfile.read(f, dtype="float32")[0] for f in files]
    seconds = sum(len(a) for a in audios) / 16000
    settings = LogMelSettings()
    impls = {"project (torch.stft)": LogMelExtractor(settings),
             "librosa.feature.melspectrogram": lambda a: librosa_log_mel(a, settings),
             "plain scipy.fft STFT": lambda a: scipy_fft_log_mel(a, settings)}
    project = impls["project (torch.stft)"]
    diffs = {name: max(float(np.abs(project(a) - fn(a)).max()) for a in audios[:5])  # also the warm-up
             for name, fn in impls.items()}
    times = {name: [] for name in impls}
    rounds = 7
    for r in range(rounds):  # interleaved, the order rotating each round
        names = list(impls)
        for name in names[r % 3:] + names[: r % 3]:
            times[name].append(_time(impls[name], audios))
    print(f"{len(files)} files, {seconds:.1f} s audio, {rounds} interleaved rounds, 1 thread")
    print(f"{'':<34}{'s (median)':>11}{'x real time':>13}{'project/this time':>19}{'max |diff| dB':>15}")
    for name in impls:
        ratio = statistics.median(p / t for p, t in zip(times["project (torch.stft)"], times[name]))
        med = statistics.median(times[name])
        print(f"{name:<34}{med:>11.3f}{seconds / med:>13.1f}{ratio:>18.2f}x{diffs[name]:>15.2e}")


if __name__ == "__main__":
    main(sys.argv)
