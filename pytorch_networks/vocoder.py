"""Griffin-Lim vocoder for the model's dB-mel features.

dB-mel (20*log10 of mel *power*, optionally normalised) -> linear magnitude -> Griffin-Lim phase reconstruction
with the same STFT framing. The magnitude comes from the pseudo-inverse of the mel filter bank (mel power -> linear
power, clamped at 0; no trained vocoder needed) or from a trained mel-to-linear net (``magnitude_source``, e.g.
:class:`.mel_to_linear.MelToLinearPredictor`, the original's BLSTM Griffin-Lim predictor).

Griffin-Lim itself is :func:`griffin_lim`: librosa's algorithm (the "fast" Griffin-Lim of Perraudin et al. 2013,
``librosa.griffinlim``) on torch's FFTs in float32, 3-4x faster than librosa on one thread. The difference is
where the time goes, not the mathematics: librosa recomputes its framing, window sums and padding in every
iteration and normalises the phases with a complex division; here the window sum is computed once and the
overlap-add is ``ceil(n_fft / hop)`` shifted additions. In float64 it returns librosa's waveform to ~1e-11
(tests/test_networks_units.py); the synthesis forwards spent most of their time in it.
"""
from __future__ import annotations

import math
from typing import Callable, Optional, Tuple

import numpy as np
import torch

from .configs import FeatureExtractionConfig
from .feature_extraction import mel_filter_bank


class GriffinLimVocoder:
    """``magnitude_source``: ``[T, F]`` dB-mel -> ``[n_fft//2+1, T]`` linear magnitude; None: the mel pseudo-inverse
    (:meth:`linear_magnitude`)."""

    def __init__(self, fe_cfg: FeatureExtractionConfig, n_iter: int = 32, momentum: float = 0.99, seed: int = 0,
                 magnitude_source: Optional[Callable[[np.ndarray], np.ndarray]] = None):
        self.cfg = fe_cfg
        self.magnitude_source = magnitude_source
        self.n_fft = int(round(fe_cfg.win_size * fe_cfg.sample_rate))
        self.hop_length = int(round(fe_cfg.hop_size * fe_cfg.sample_rate))
        self.window = torch.hann_window(self.n_fft, periodic=True)  # scipy's "hann" (as librosa's stft uses it)
        self.inv_mel = np.linalg.pinv(mel_filter_bank(fe_cfg))  # [n_fft//2+1, F]
        self.n_iter = n_iter
        self.momentum = momentum
        self.rng = np.random.default_rng(seed)

    def linear_magnitude(self, log_mel: np.ndarray) -> np.ndarray:
        """``[T, F]`` dB-mel -> ``[n_fft//2+1, T]`` linear magnitude."""
        feats = np.asarray(log_mel, dtype=np.float64)
        if self.cfg.norm is not None:
            mean, std = self.cfg.norm
            feats = feats * std + mean
        mel_power = np.power(10.0, feats / 20.0).T
        power = np.maximum(self.inv_mel @ mel_power, 0.0)
        return np.sqrt(power)

    def __call__(self, log_mel: np.ndarray) -> np.ndarray:
        """``[T, F]`` dB-mel -> float32 waveform of ``(T-1)*hop`` samples (centred framing)."""
        mag = (self.magnitude_source or self.linear_magnitude)(log_mel)
        # the random initial phases librosa.griffinlim(init="random", random_state=rng) draws
        angles = np.exp(2j * np.pi * self.rng.random(size=mag.shape))
        wave = griffin_lim(torch.from_numpy(np.ascontiguousarray(mag.T)).float(),
                           torch.from_numpy(np.ascontiguousarray(angles.T)).to(torch.complex64), self.window,
                           n_iter=self.n_iter, hop_length=self.hop_length, momentum=self.momentum,
                           center=self.cfg.center)
        return wave.numpy()  # float32 already (float32 magnitude, complex64 phases)


def _overlap_add(frames: torch.Tensor, hop_length: int) -> torch.Tensor:
    """``[T, n]`` frames -> ``[(T - 1) * hop + n]`` signal (rounded up to whole hops), frame ``t`` added at
    ``t * hop``: ``ceil(n / hop)`` shifted additions of hop-sized blocks (``torch.istft``'s overlap-add, an
    ``unfold_backward``, took about a quarter of a Griffin-Lim iteration built on it, on one CPU thread)."""
    n_frames, n = frames.shape
    blocks = math.ceil(n / hop_length)
    frames = torch.nn.functional.pad(frames, (0, blocks * hop_length - n)).reshape(n_frames, blocks, hop_length)
    out = frames.new_zeros(n_frames + blocks - 1, hop_length)
    for j in range(blocks):
        out[j:j + n_frames] += frames[:, j]
    return out.reshape(-1)


def griffin_lim(magnitude: torch.Tensor, angles: torch.Tensor, window: torch.Tensor, *, n_iter: int,
                hop_length: int, momentum: float = 0.99, center: bool = True) -> torch.Tensor:
    """Fast Griffin-Lim as ``librosa.griffinlim(S, n_iter, hop_length, win_length=n_fft, window, center,
    pad_mode="constant", momentum, length=(T - 1) * hop if center)`` with the initial phases given.

    ``magnitude`` ``[T, n_fft//2+1]`` (frame-major: contiguous frames for the FFTs), ``angles`` the initial unit
    phasors of the same shape (complex), ``window`` ``[n_fft]`` analysis and synthesis window. Returns the
    waveform: ``(T - 1) * hop`` samples with centred frames (librosa's ``length``), else ``(T - 1) * hop + n_fft``.
    """
    n_fft = window.shape[0]
    if magnitude.shape[-1] != n_fft // 2 + 1 or angles.shape != magnitude.shape:
        raise ValueError(f"griffin_lim: magnitude {tuple(magnitude.shape)} and angles {tuple(angles.shape)} must "
                         f"both be [frames, n_fft // 2 + 1 = {n_fft // 2 + 1}]")
    n_frames = magnitude.shape[0]
    pad = n_fft // 2 if center else 0
    length = (n_frames - 1) * hop_length if center else (n_frames - 1) * hop_length + n_fft
    window_sum = _overlap_add((window ** 2).expand(n_frames, n_fft), hop_length)
    tiny = torch.finfo(window.dtype).tiny
    inv_window_sum = torch.where(window_sum > tiny, 1.0 / window_sum, torch.ones_like(window_sum))

    def istft(spectrum: torch.Tensor) -> torch.Tensor:
        frames = torch.fft.irfft(spectrum, n=n_fft, dim=-1) * window
        return (_overlap_add(frames, hop_length) * inv_window_sum)[pad:pad + length]

    def stft(wave: torch.Tensor) -> torch.Tensor:
        padded = torch.nn.functional.pad(wave, (pad, pad))
        return torch.fft.rfft(padded.unfold(0, n_fft, hop_length) * window, dim=-1)

    rebuilt = None
    for _ in range(n_iter):
        previous, rebuilt = rebuilt, stft(istft(magnitude * angles))
        angles = rebuilt - (momentum / (1 + momentum)) * previous if (momentum and previous is not None) \
            else rebuilt
        angles = angles * (angles.abs() + tiny).reciprocal_()
    return istft(magnitude * angles)


def deemphasize(wave: np.ndarray, coef: Optional[float]) -> np.ndarray:
    """Inverse of ``data_prep.features.preemphasize`` (and RETURNN's): ``y[t] = x[t] + coef * y[t-1]``."""
    if not coef:
        return np.asarray(wave, dtype=np.float32)
    from scipy.signal import lfilter

    return lfilter([1.0], [1.0, -coef], np.asarray(wave, dtype=np.float64)).astype(np.float32)


FULL_SCALE = 32767.0 / 32768.0  # the largest value a 16-bit file holds exactly


def synthesis_output_waveform(wave: np.ndarray, preemphasis: Optional[float]) -> Tuple[np.ndarray, float]:
    """The waveform to write for a vocoded utterance, so that it is read back exactly as real audio is.

    The models see log-mels of the pre-emphasised file audio (the dataset applies ``preemphasis`` on reading, the
    model computes features from that), so generated features, and their Griffin-Lim waveform, are pre-emphasised.
    Written as they are, a reader would pre-emphasise them a second time; de-emphasised, the reader's
    pre-emphasis restores exactly the vocoded waveform. Real audio is never peak-normalised (and the features are
    normalised with global, not per-utterance statistics), so the level the model generates is kept: only a
    waveform that would exceed full scale is scaled down as a whole (a constant dB shift of every feature, milder
    than clipping). Returns ``(waveform, gain)``; gain < 1 says it was scaled.
    """
    out = deemphasize(wave, preemphasis)
    peak = float(np.max(np.abs(out))) if out.size else 0.0
    gain = FULL_SCALE / peak if peak > FULL_SCALE else 1.0
    return (out * gain).astype(np.float32), gain


AUDIO_SUBTYPES = {"flac": ("FLAC", "PCM_16"), "wav": ("WAV", "PCM_16"), "ogg": ("OGG", "VORBIS")}


def write_synthesis_audio(path: str, wave: np.ndarray, sample_rate: int, preemphasis: Optional[float],
                          audio_format: str = "flac") -> float:
    """Write a vocoded (pre-emphasised) waveform as the corpora store real audio (16-bit FLAC by default: the
    corpus audio is FLAC, so only the content differs, not the coding); returns the gain applied (1.0: none)."""
    import soundfile

    if audio_format not in AUDIO_SUBTYPES:
        raise ValueError(f"audio_format must be one of {sorted(AUDIO_SUBTYPES)}, got {audio_format!r}")
    out, gain = synthesis_output_waveform(wave, preemphasis)
    container, subtype = AUDIO_SUBTYPES[audio_format]
    soundfile.write(path, out, sample_rate, format=container, subtype=subtype)
    return gain
