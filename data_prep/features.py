"""Log-mel feature extraction identical to the model-side ``DbMelFeatureExtraction`` (networks.md §3.1).

Why: the x-vector model, the duration alignment (frame counts) and the feature statistics must see exactly the
frames the TTS model computes from raw audio at training time; using the same formula (torch STFT, librosa
Slaney mel matrix, 20·log10 of mel *power*, centred frames: ``len // hop + 1``) guarantees that.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Optional, Tuple

import numpy as np


@dataclass(frozen=True)
class LogMelSettings:
    """All settings of the log-mel front end; every field is part of the job hash (defaults: experiments.md §5)."""

    sample_rate: int = 16000
    win_size: float = 0.050  # s → n_fft = window = 800 samples (Hann)
    hop_size: float = 0.0125  # s → 200 samples, 80 frames/s
    num_filters: int = 80
    f_min: int = 60
    f_max: int = 7600
    min_amp: float = 1e-10
    center: bool = True
    preemphasis: Optional[float] = 0.97  # the model input (OggZip raw audio) is pre-emphasised with 0.97

    @property
    def n_fft(self) -> int:
        return int(round(self.win_size * self.sample_rate))

    @property
    def hop_length(self) -> int:
        return int(round(self.hop_size * self.sample_rate))

    def num_frames(self, num_samples: int) -> int:
        """Frame count for ``num_samples`` samples, the same rule the model uses."""
        if self.center:
            return num_samples // self.hop_length + 1
        return max(0, (num_samples - self.n_fft) // self.hop_length + 1)

    def to_fe_config(self, norm: Optional[Tuple[float, float]] = None) -> dict:
        """Dict in the layout of ``DbMelFeatureExtractionConfig`` (experiments.md §5) for model configs."""
        return {"sample_rate": self.sample_rate, "win_size": self.win_size, "hop_size": self.hop_size,
                "f_min": self.f_min, "f_max": self.f_max, "min_amp": self.min_amp,
                "num_filters": self.num_filters, "center": self.center, "norm": norm}


@lru_cache(maxsize=4)
def mel_basis(settings: LogMelSettings) -> np.ndarray:
    """librosa mel matrix ``[num_filters, n_fft//2+1]`` (Slaney norm, non-HTK: librosa defaults)."""
    import librosa

    return librosa.filters.mel(sr=settings.sample_rate, n_fft=settings.n_fft, n_mels=settings.num_filters,
                               fmin=settings.f_min, fmax=settings.f_max).astype(np.float32)


def preemphasize(audio: np.ndarray, coef: Optional[float]) -> np.ndarray:
    """``y[t] = x[t] - coef·x[t-1]`` with ``y[0] = x[0]``, the same as RETURNN's ExtractAudioFeatures."""
    if not coef:
        return audio
    out = audio.copy()
    out[1:] -= coef * audio[:-1]
    return out


class LogMelExtractor:
    """Reusable extractor: keeps window and mel matrix as torch tensors across utterances."""

    def __init__(self, settings: LogMelSettings):
        import torch

        self.settings = settings
        self._torch = torch
        self._window = torch.hann_window(settings.n_fft, periodic=True)
        self._mel = torch.from_numpy(mel_basis(settings)).T.contiguous()  # [F_lin, M]

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        """Raw float audio ``[T]`` in [-1, 1] (no pre-emphasis applied yet) → features ``[frames, num_filters]``."""
        torch = self._torch
        s = self.settings
        x = torch.from_numpy(np.ascontiguousarray(preemphasize(audio.astype(np.float32), s.preemphasis)))
        with torch.no_grad():
            spec = torch.stft(x, n_fft=s.n_fft, hop_length=s.hop_length, win_length=s.n_fft, window=self._window,
                              center=s.center, pad_mode="constant", return_complex=True)
            power = spec.real.square() + spec.imag.square()  # [F_lin, T]
            mel = power.T @ self._mel  # [T, M]
            out = 20.0 * torch.log10(torch.clamp(mel, min=s.min_amp))
        return out.numpy()


def librosa_log_mel(audio: np.ndarray, settings: LogMelSettings) -> np.ndarray:
    """Reference implementation with librosa only (for tests and the benchmark)."""
    import librosa

    s = settings
    y = preemphasize(audio.astype(np.float32), s.preemphasis)
    mel = librosa.feature.melspectrogram(y=y, sr=s.sample_rate, n_fft=s.n_fft, hop_length=s.hop_length,
                                         win_length=s.n_fft, window="hann", center=s.center, pad_mode="constant",
                                         power=2.0, n_mels=s.num_filters, fmin=s.f_min, fmax=s.f_max)
    return (20.0 * np.log10(np.maximum(s.min_amp, mel))).T.astype(np.float32)


def compute_feature_hdf(entries, out_path: str, settings: LogMelSettings) -> int:
    """Write log-mel features of all corpus entries to a RETURNN HDF (dense ``[T, num_filters]``); returns #seqs."""
    import soundfile

    from . import hdf

    extractor = LogMelExtractor(settings)
    with hdf.open_writer(out_path, dim=settings.num_filters, ndim=2) as writer:
        for e in entries:
            audio, sr = soundfile.read(e.audio, dtype="float32")
            if sr != settings.sample_rate:
                raise ValueError(f"{e.seq_tag}: audio {e.audio} has {sr} Hz, features expect {settings.sample_rate}")
            if not np.all(np.isfinite(audio)):
                raise ValueError(f"sequence {e.seq_tag}: audio {e.audio} has NaN/Inf samples")
            feats = extractor(audio)
            assert feats.shape[0] == settings.num_frames(len(audio)), (e.seq_tag, feats.shape, len(audio))
            hdf.write_seq(writer, e.seq_tag, feats)
    return len(entries)


def scalar_mean_std(feature_hdf: str, tags=None) -> Tuple[float, float]:
    """Global scalar mean / std over all bins and frames (``use_scalar_only`` in the original setup)."""
    from . import hdf

    total, total_sq, count = 0.0, 0.0, 0
    wanted = set(tags) if tags is not None else None
    for tag, x in hdf.iter_sequences(feature_hdf, "features"):
        if wanted is not None and tag not in wanted:
            continue
        x = x.astype(np.float64)
        total += float(x.sum())
        total_sq += float(np.square(x).sum())
        count += x.size
    if count == 0:
        raise ValueError(f"no frames selected from {feature_hdf} for statistics")
    mean = total / count
    return mean, float(np.sqrt(max(total_sq / count - mean * mean, 0.0)))
