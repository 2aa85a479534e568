"""Griffin-Lim vocoder for the model's dB-mel features.

dB-mel (20*log10 of mel *power*, optionally normalised) -> linear magnitude -> Griffin-Lim phase reconstruction
with the same STFT framing. The magnitude comes from the pseudo-inverse of the mel filter bank (mel power -> linear
power, clamped at 0; no trained vocoder needed) or from a trained mel-to-linear net (``magnitude_source``, e.g.
:class:`.mel_to_linear.MelToLinearPredictor`, the original's BLSTM Griffin-Lim predictor).
"""
from __future__ import annotations

from typing import Callable, Optional, Tuple

import librosa
import numpy as np

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
        length = (mag.shape[1] - 1) * self.hop_length if self.cfg.center else None
        wave = librosa.griffinlim(mag, n_iter=self.n_iter, hop_length=self.hop_length, win_length=self.n_fft,
                                  n_fft=self.n_fft, window="hann", center=self.cfg.center, length=length,
                                  pad_mode="constant", momentum=self.momentum, init="random", random_state=self.rng)
        return wave.astype(np.float32)


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
