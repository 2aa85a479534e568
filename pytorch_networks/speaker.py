"""Speaker conditioning vector g for Glow-TTS (duration predictor input and coupling-layer conditioning)."""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from .configs import SpeakerConfig


class SpeakerConditioning(nn.Module):
    """Maps speaker labels (``mode="embedding"``) or given x-vectors (``mode="xvector"``) to g ``[B, gin]``."""

    def __init__(self, cfg: SpeakerConfig):
        super().__init__()
        self.cfg = cfg
        self.emb_g = None
        self.x_vector_bottleneck = None
        if cfg.mode == "embedding":
            self.emb_g = nn.Embedding(cfg.n_speakers, cfg.gin_channels)
            nn.init.uniform_(self.emb_g.weight, -0.1, 0.1)
        elif cfg.mode == "xvector":
            if cfg.bottleneck:
                self.x_vector_bottleneck = nn.Sequential(nn.Linear(cfg.xvector_dim, cfg.gin_channels), nn.ReLU())
            elif cfg.xvector_dim != cfg.gin_channels:
                raise ValueError("x-vectors without bottleneck need gin_channels == xvector_dim")
        elif cfg.mode != "none":
            raise ValueError(f"unknown speaker mode {cfg.mode!r}")

    @property
    def gin_channels(self) -> int:
        return 0 if self.cfg.mode == "none" else self.cfg.gin_channels

    @property
    def input_key(self) -> Optional[str]:
        """Which data key the conditioning needs (None for mode "none")."""
        from .configs import SPEAKER_KEY, XVECTOR_KEY

        return {"embedding": SPEAKER_KEY, "xvector": XVECTOR_KEY}.get(self.cfg.mode)

    def forward(self, speaker_input: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
        """speaker_input: labels ``[B]``/``[B, 1]`` or x-vectors ``[B, D]``/``[B, 1, D]``."""
        if self.cfg.mode == "none":
            return None
        assert speaker_input is not None, f"speaker mode {self.cfg.mode!r} needs {self.input_key!r}"
        if self.cfg.mode == "embedding":
            labels = speaker_input.reshape(speaker_input.shape[0]).long()
            return nn.functional.normalize(self.emb_g(labels), dim=-1)
        xvec = speaker_input.reshape(speaker_input.shape[0], -1).float()
        return self.x_vector_bottleneck(xvec) if self.x_vector_bottleneck is not None else xvec
