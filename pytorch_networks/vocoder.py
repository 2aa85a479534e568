"""Griffin-Lim vocoder for the model's dB-mel features (no trained vocoder needed).

dB-mel (20*log10 of mel *power*, optionally normalised) -> mel power -> linear power via the pseudo-inverse of
the mel filter bank (clamped at 0) -> magnitude -> Griffin-Lim phase reconstruction with the same STFT framing.
"""
from __future__ import annotations

import librosa
import numpy as np

from .configs import FeatureExtractionConfig
from .feature_extraction import mel_filter_bank


class GriffinLimVocoder:
    def __init__(self, fe_cfg: FeatureExtractionConfig, n_iter: int = 32, momentum: float = 0.99, seed: int = 0):
        self.cfg = fe_cfg
        self.n_fft = int(round(fe_cfg.win_size * fe_cfg.sample_rate))
        self.hop_length = int(round(fe_cfg.hop_size * fe_cfg.sample_rate))
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
        mag = self.linear_magnitude(log_mel)
        length = (mag.shape[1] - 1) * self.hop_length if self.cfg.center else None
        wave = librosa.griffinlim(mag, n_iter=self.n_iter, hop_length=self.hop_length, win_length=self.n_fft,
                                  n_fft=self.n_fft, window="hann", center=self.cfg.center, length=length,
                                  pad_mode="constant", momentum=self.momentum, init="random", random_state=self.rng)
        return wave.astype(np.float32)


def peak_normalize_int16(wave: np.ndarray) -> np.ndarray:
    """Scale to int16 with the peak at full scale (peaks below 0.01 are not amplified beyond 100x)."""
    return (wave * 32767.0 / max(0.01, float(np.max(np.abs(wave))) if wave.size else 0.01)).astype(np.int16)
