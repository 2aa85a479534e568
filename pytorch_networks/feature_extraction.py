"""Log-mel (dB) feature extraction inside the model (docs/networks.md §3.1).

Done in the model (not the dataset) so that the same raw waveform feeds TTS, x-vector and ASR parts and the
feature parameters are hashed with the model config.
"""
from __future__ import annotations

from typing import Tuple

import librosa
import numpy as np
import torch
from torch import nn

from .configs import FeatureExtractionConfig


def num_frames(num_samples: torch.Tensor, n_fft: int, hop_length: int, center: bool) -> torch.Tensor:
    """Number of STFT frames for the given sample counts (same framing as :class:`DbMelFeatureExtraction`)."""
    if center:
        return torch.div(num_samples, hop_length, rounding_mode="floor") + 1
    return torch.div(num_samples - n_fft, hop_length, rounding_mode="floor") + 1


class DbMelFeatureExtraction(nn.Module):
    """``20*log10(max(min_amp, mel(|STFT|^2)))`` with librosa (Slaney) filters, optional global mean/std norm."""

    def __init__(self, cfg: FeatureExtractionConfig):
        super().__init__()
        self.cfg = cfg
        self.n_fft = int(round(cfg.win_size * cfg.sample_rate))
        self.hop_length = int(round(cfg.hop_size * cfg.sample_rate))
        mel = librosa.filters.mel(
            sr=cfg.sample_rate, n_fft=self.n_fft, n_mels=cfg.num_filters, fmin=cfg.f_min, fmax=cfg.f_max
        )
        # non-persistent buffers: derived from the config, so checkpoints do not depend on them
        self.register_buffer("mel_basis", torch.tensor(mel, dtype=torch.float32), persistent=False)
        self.register_buffer("window", torch.hann_window(self.n_fft), persistent=False)

    def output_lengths(self, num_samples: torch.Tensor) -> torch.Tensor:
        return num_frames(num_samples, self.n_fft, self.hop_length, self.cfg.center)

    @torch.no_grad()
    def forward(self, audio: torch.Tensor, lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """
        :param audio: ``[B, T_samples]`` (or ``[B, T_samples, 1]``)
        :param lengths: ``[B]`` in samples
        :return: features ``[B, T, F]`` (zero at padding), frame lengths ``[B]``
        """
        power = self.power_spectrum(audio, lengths)
        mel = torch.matmul(self.mel_basis, power)  # [B, F, T]
        feats = 20.0 * torch.log10(torch.clamp(mel, min=self.cfg.min_amp)).transpose(1, 2)
        if self.cfg.norm is not None:
            mean, std = self.cfg.norm
            feats = (feats - mean) / std
        frame_lens = torch.clamp(self.output_lengths(lengths.to(feats.device)), min=0)
        mask = torch.arange(feats.shape[1], device=feats.device)[None, :] < frame_lens[:, None]
        return feats * mask[:, :, None], frame_lens

    @torch.no_grad()
    def power_spectrum(self, audio: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``|STFT|^2`` ``[B, n_fft//2+1, T]`` of the framing the features use (also the target of the trained
        mel-to-linear vocoder); frames beyond a sequence's end are not masked here."""
        if audio.dim() == 3:
            audio = audio[..., 0]
        # zero everything beyond each length so the last (centred) frames equal those of the single utterance
        sample_mask = torch.arange(audio.shape[1], device=audio.device)[None, :] < lengths.to(audio.device)[:, None]
        audio = audio * sample_mask
        spec = torch.stft(
            audio.float(),
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            win_length=self.n_fft,
            window=self.window,
            center=self.cfg.center,
            pad_mode="constant",
            return_complex=True,
        )  # [B, F_lin, T]
        return spec.real**2 + spec.imag**2


def mel_filter_bank(cfg: FeatureExtractionConfig) -> np.ndarray:
    """The mel filter bank ``[F, n_fft//2+1]`` used by the feature extraction (e.g. for mel inversion)."""
    n_fft = int(round(cfg.win_size * cfg.sample_rate))
    return librosa.filters.mel(sr=cfg.sample_rate, n_fft=n_fft, n_mels=cfg.num_filters, fmin=cfg.f_min, fmax=cfg.f_max)
