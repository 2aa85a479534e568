"""Glow-TTS core: features -> flow z, text -> prior, alignment (MAS or given) -> MLE / duration targets;
and generation (text -> durations -> prior sample -> inverse flow -> log-mel)."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from ..commons import generate_path, sequence_mask
from ..configs import GlowTTSModelConfig
from ..feature_extraction import DbMelFeatureExtraction
from ..monotonic_align import maximum_path
from ..speaker import SpeakerConditioning
from .blanks import expand_durations, intersperse_blank, merge_blank_durations
from .flow import FlowDecoder
from .text_encoder import TextEncoder


@dataclass
class GlowTTSOutput:
    """Training-mode outputs. Frame-level tensors are ``[B, C, T]``, token-level ``[B, C, N]``."""

    z: torch.Tensor
    z_m: torch.Tensor
    z_logs: torch.Tensor
    logdet: torch.Tensor
    z_mask: torch.Tensor  # [B, 1, T]
    y_lengths: torch.Tensor
    x_m: torch.Tensor
    x_logs: torch.Tensor
    x_mask: torch.Tensor  # [B, 1, N] (N = 2 x phonemes + 1 with ``add_blank``: the encoder's tokens)
    attn: torch.Tensor  # [B, N, T] alignment used for the prior (MAS or given)
    logw: torch.Tensor  # [B, 1, N] predicted log durations
    logw_target: torch.Tensor  # [B, 1, N] log durations of the alignment


def mas_log_likelihood(z: torch.Tensor, x_m: torch.Tensor, x_logs: torch.Tensor) -> torch.Tensor:
    """log N(z_t; m_n, exp(logs_n)) summed over channels for every token n and frame t -> ``[B, N, T]``."""
    x_s_sq_r = torch.exp(-2 * x_logs)  # [B, C, N]
    logp1 = torch.sum(-0.5 * math.log(2 * math.pi) - x_logs, dim=1).unsqueeze(-1)  # [B, N, 1]
    logp2 = torch.matmul(x_s_sq_r.transpose(1, 2), -0.5 * z**2)  # [B, N, T]
    logp3 = torch.matmul((x_m * x_s_sq_r).transpose(1, 2), z)
    logp4 = torch.sum(-0.5 * x_m**2 * x_s_sq_r, dim=1).unsqueeze(-1)
    return logp1 + logp2 + logp3 + logp4


class GlowTTS(nn.Module):
    """Parameter names (stable for ``preload_from_files``): ``speaker.*``, ``encoder.*``, ``decoder.*``."""

    def __init__(self, cfg: GlowTTSModelConfig):
        super().__init__()
        self.cfg = cfg
        self.feature_extraction = DbMelFeatureExtraction(cfg.feature_extraction)
        self.speaker = SpeakerConditioning(cfg.speaker)
        gin = self.speaker.gin_channels
        text_cfg = cfg.text_encoder
        if cfg.given_token_durations and not cfg.add_blank:
            raise ValueError("given_token_durations are per encoder token incl. blanks: it needs add_blank")
        if cfg.add_blank:
            if cfg.alignment != "mas" and not cfg.freeze_glowtts and not cfg.given_token_durations:
                # the blanks would get 0 frames: their duration target log(0) would dominate the dp loss
                raise ValueError("add_blank with alignment='given' needs given_token_durations (per-phoneme "
                                 f"durations have no frames for the blanks); got alignment={cfg.alignment!r}")
            text_cfg = dataclasses.replace(text_cfg, n_vocab=text_cfg.n_vocab + 1)  # the blank is the last id
        self.encoder = TextEncoder(text_cfg, cfg.out_channels, gin)
        self.decoder = FlowDecoder(cfg.decoder, cfg.out_channels, gin)

    # ---------------------------------------------------------------- helpers
    def encode(self, tokens: torch.Tensor, token_lengths: torch.Tensor, g: Optional[torch.Tensor] = None):
        """Text encoder on the phonemes (interspersed with blanks if ``add_blank``): ``x_m, x_logs, logw, x_mask``."""
        if self.cfg.add_blank:
            tokens, token_lengths = intersperse_blank(tokens, token_lengths, self.cfg.text_encoder.n_vocab)
        return self.encoder(tokens, token_lengths, g)

    def encoder_durations(self, durations: torch.Tensor, num_phonemes: int) -> torch.Tensor:
        """Given durations -> frames per encoder token: ``given_token_durations``: already per token
        ``[B, >=2N+1]``; else frames per phoneme ``[B, >=N]`` (``add_blank``: the blanks get no frames)."""
        if self.cfg.given_token_durations:
            return durations[:, : 2 * num_phonemes + 1]
        durations = durations[:, :num_phonemes]
        return expand_durations(durations) if self.cfg.add_blank else durations

    def phoneme_durations(self, durations: torch.Tensor, token_lengths: torch.Tensor) -> torch.Tensor:
        """Frames per encoder token ``[B, N']`` -> per phoneme ``[B, N]`` (``add_blank``: blanks merged onto their
        neighbours); ``token_lengths`` are phoneme counts."""
        return merge_blank_durations(durations, token_lengths.long()) if self.cfg.add_blank else durations

    def mel_features(self, audio: torch.Tensor, audio_lengths: torch.Tensor):
        """Raw audio -> ``y [B, C, T]`` with T and lengths floored to multiples of n_sqz."""
        feats, lengths = self.feature_extraction(audio, audio_lengths)
        n_sqz = self.cfg.decoder.n_sqz
        t = (feats.shape[1] // n_sqz) * n_sqz
        lengths = torch.div(lengths, n_sqz, rounding_mode="floor") * n_sqz
        return feats[:, :t].transpose(1, 2), lengths

    def flow_latent(self, y: torch.Tensor, y_lengths: torch.Tensor, g: Optional[torch.Tensor]):
        """Flow output z of real mel features: ``(z [B, C, T], logdet [B], z_mask [B, 1, T])``."""
        z_mask = sequence_mask(y_lengths, y.shape[2]).unsqueeze(1).to(y.dtype)
        z, logdet = self.decoder(y * z_mask, z_mask, g)
        return z, logdet, z_mask

    @staticmethod
    def given_alignment(durations: torch.Tensor, x_mask: torch.Tensor, z_mask: torch.Tensor) -> torch.Tensor:
        """Integer durations ``[B, N]`` -> path ``[B, N, T]`` (cut to the valid tokens / frames)."""
        attn_mask = x_mask.transpose(1, 2) * z_mask  # [B, N, T]
        durations = durations[:, : x_mask.shape[2]].long() * x_mask[:, 0].long()
        return generate_path(durations, attn_mask)

    # ---------------------------------------------------------------- training
    def forward(self, tokens: torch.Tensor, token_lengths: torch.Tensor, y: torch.Tensor, y_lengths: torch.Tensor,
                g: Optional[torch.Tensor] = None, durations: Optional[torch.Tensor] = None) -> GlowTTSOutput:
        """Training pass. ``alignment="given"`` requires the given ``durations`` (per phoneme ``[B, N]``, or per
        encoder token ``[B, 2N+1]`` with ``given_token_durations``)."""
        x_m, x_logs, logw, x_mask = self.encode(tokens, token_lengths, g)
        z, logdet, z_mask = self.flow_latent(y, y_lengths, g)
        if self.cfg.alignment == "given":
            assert durations is not None, "alignment='given' needs durations"
            attn = self.given_alignment(self.encoder_durations(durations, tokens.shape[1]), x_mask, z_mask)
        elif self.cfg.alignment == "mas":
            with torch.no_grad():
                attn = maximum_path(mas_log_likelihood(z, x_m, x_logs), x_mask, z_mask)
        else:
            raise ValueError(f"unknown alignment {self.cfg.alignment!r}")
        attn = attn.detach()
        z_m = torch.matmul(x_m, attn)  # [B, C, T]
        z_logs = torch.matmul(x_logs, attn)
        logw_target = torch.log(1e-8 + attn.sum(-1)).unsqueeze(1) * x_mask
        return GlowTTSOutput(z, z_m, z_logs, logdet, z_mask, y_lengths, x_m, x_logs, x_mask, attn, logw, logw_target)

    # ---------------------------------------------------------------- generation
    @torch.no_grad()
    def generate(self, tokens: torch.Tensor, token_lengths: torch.Tensor, g: Optional[torch.Tensor] = None,
                 noise_scale: float = 0.66, length_scale: float = 1.0, durations: Optional[torch.Tensor] = None):
        """Text -> log-mel. Returns ``(mel [B, C, T], mel_lengths [B], durations [B, N'])`` (N': the encoder's
        tokens, 2N+1 with ``add_blank``).

        ``durations [B, N]`` (frames per phoneme, e.g. the given alignment; per encoder token ``[B, 2N+1]`` with
        ``given_token_durations``) replace the duration predictor: the "oracle durations" control, which separates
        duration errors from acoustic errors.
        """
        x_m, x_logs, logw, x_mask = self.encode(tokens, token_lengths, g)
        if durations is None:
            w_ceil = torch.ceil(torch.exp(logw) * x_mask * length_scale)[:, 0]  # [B, N]
        else:
            w_ceil = self.encoder_durations(durations, tokens.shape[1]).to(x_m.dtype) * x_mask[:, 0]
        n_sqz = self.cfg.decoder.n_sqz
        y_lengths = torch.clamp(w_ceil.sum(1), min=1).long()
        y_lengths = torch.clamp(torch.div(y_lengths, n_sqz, rounding_mode="floor") * n_sqz, min=n_sqz)
        z_mask = sequence_mask(y_lengths, int(y_lengths.max())).unsqueeze(1).to(x_m.dtype)
        attn = self.given_alignment(w_ceil, x_mask, z_mask)
        z_m = torch.matmul(x_m, attn)
        z_logs = torch.matmul(x_logs, attn)
        z = (z_m + torch.exp(z_logs) * torch.randn_like(z_m) * noise_scale) * z_mask
        y, _ = self.decoder(z, z_mask, g, reverse=True)
        return y, y_lengths, w_ceil.long()
