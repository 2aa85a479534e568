"""Small x-vector TDNN speaker-embedding model (Snyder et al. 2018 layout, reduced width).

Why: TTS speaker conditioning uses per-utterance speaker embeddings (``xvectors``, networks.md §8.2). The model
is trained on speaker classification over log-mel features of the training speakers; the embedding is the
first segment-level layer (before the non-linearity), as in the original x-vector recipe.

Input: log-mel features ``[B, T, input_dim]`` (the ``LogMelSettings`` front end of ``data_prep.features``)
with lengths ``[B]``. Each utterance is mean/variance normalised over time inside the model, so no global
statistics are needed.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional, Tuple

import torch
from torch import nn


@dataclass(frozen=True)
class XVectorConfig:
    num_speakers: int
    input_dim: int = 80
    channels: int = 256
    pooling_channels: int = 512
    embedding_dim: int = 512
    dropout: float = 0.1


def _masked_mean_std(x: torch.Tensor, mask: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Mean and std over time of ``x [B, C, T]`` where ``mask [B, 1, T]`` is 1 for valid frames."""
    count = mask.sum(dim=2).clamp(min=1.0)
    mean = (x * mask).sum(dim=2) / count
    var = (((x - mean.unsqueeze(2)) ** 2) * mask).sum(dim=2) / count
    return mean, torch.sqrt(var.clamp(min=1e-6))


class XVectorModel(nn.Module):
    """Frame-level TDNN (context 5/3·2/3·3/1/1) → statistics pooling → embedding → classifier."""

    def __init__(self, config: XVectorConfig):
        super().__init__()
        self.config = config
        c = config.channels

        def tdnn(cin: int, cout: int, kernel: int, dilation: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv1d(cin, cout, kernel, dilation=dilation, padding=dilation * (kernel - 1) // 2),
                                 nn.ReLU(), nn.BatchNorm1d(cout))

        self.frame_layers = nn.Sequential(
            tdnn(config.input_dim, c, 5, 1), tdnn(c, c, 3, 2), tdnn(c, c, 3, 3), tdnn(c, c, 1, 1),
            tdnn(c, config.pooling_channels, 1, 1),
        )
        self.embedding = nn.Linear(2 * config.pooling_channels, config.embedding_dim)
        self.classifier = nn.Sequential(
            nn.ReLU(), nn.BatchNorm1d(config.embedding_dim), nn.Dropout(config.dropout),
            nn.Linear(config.embedding_dim, config.embedding_dim), nn.ReLU(), nn.BatchNorm1d(config.embedding_dim),
            nn.Linear(config.embedding_dim, config.num_speakers),
        )

    def forward(self, features: torch.Tensor, lengths: Optional[torch.Tensor] = None
                ) -> Tuple[torch.Tensor, torch.Tensor]:
        """:return: (x-vectors ``[B, embedding_dim]``, speaker logits ``[B, num_speakers]``)"""
        b, t, _ = features.shape
        if lengths is None:
            lengths = torch.full((b,), t, dtype=torch.long, device=features.device)
        mask = (torch.arange(t, device=features.device)[None, :] < lengths[:, None]).float().unsqueeze(1)
        x = features.transpose(1, 2)  # [B, F, T]
        mean, std = _masked_mean_std(x, mask)
        x = (x - mean.unsqueeze(2)) / std.unsqueeze(2) * mask
        h = x
        for layer in self.frame_layers:
            h = layer(h) * mask  # zero padding frames so batching never changes a sequence's x-vector
        pooled = torch.cat(_masked_mean_std(h, mask), dim=1)
        emb = self.embedding(pooled)
        return emb, self.classifier(emb)


def save_checkpoint(model: XVectorModel, path: str) -> None:
    torch.save({"config": asdict(model.config), "model": model.state_dict()}, path)


def load_checkpoint(path: str) -> XVectorModel:
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    model = XVectorModel(XVectorConfig(**ckpt["config"]))
    model.load_state_dict(ckpt["model"])
    model.eval()
    return model
