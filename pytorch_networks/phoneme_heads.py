"""Frame-level phoneme classifiers (aux "ASR" heads) on a Glow-TTS latent ``[B, T, C]``."""
from __future__ import annotations

import torch
from torch import nn

from .commons import sequence_mask
from .configs import PhonemeHeadConfig


class FFNHead(nn.Module):
    def __init__(self, cfg: PhonemeHeadConfig, in_dim: int, num_classes: int):
        super().__init__()
        layers = []
        dim = in_dim
        for _ in range(cfg.n_layers - 1):
            layers += [nn.Linear(dim, cfg.n_channels), nn.ReLU(), nn.Dropout(cfg.p_dropout)]
            dim = cfg.n_channels
        layers.append(nn.Linear(dim, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class CNNHead(nn.Module):
    def __init__(self, cfg: PhonemeHeadConfig, in_dim: int, num_classes: int):
        super().__init__()
        self.convs = nn.ModuleList()
        dim = in_dim
        for _ in range(cfg.n_layers):
            self.convs.append(nn.Conv1d(dim, cfg.n_channels, cfg.kernel_size, padding=cfg.kernel_size // 2))
            dim = cfg.n_channels
        self.dropout = nn.Dropout(cfg.p_dropout)
        self.output = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        mask = sequence_mask(lengths, x.shape[1])[:, None, :].to(x.dtype)
        h = x.transpose(1, 2)
        for conv in self.convs:
            h = self.dropout(torch.relu(conv(h * mask)))
        return self.output(h.transpose(1, 2))


class BLSTMHead(nn.Module):
    def __init__(self, cfg: PhonemeHeadConfig, in_dim: int, num_classes: int):
        super().__init__()
        self.lstm = nn.LSTM(in_dim, cfg.n_channels, num_layers=cfg.n_layers, bidirectional=True, batch_first=True,
                            dropout=cfg.p_dropout if cfg.n_layers > 1 else 0.0)
        self.dropout = nn.Dropout(cfg.p_dropout)
        self.output = nn.Linear(2 * cfg.n_channels, num_classes)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = nn.utils.rnn.pack_padded_sequence(x, torch.clamp(lengths, min=1).cpu(), batch_first=True,
                                                   enforce_sorted=False)
        out, _ = self.lstm(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        return self.output(self.dropout(out))


def make_phoneme_head(cfg: PhonemeHeadConfig, in_dim: int, num_classes: int) -> nn.Module:
    heads = {"ffn": FFNHead, "cnn": CNNHead, "blstm": BLSTMHead}
    if cfg.head_type not in heads:
        raise ValueError(f"unknown head_type {cfg.head_type!r}")
    return heads[cfg.head_type](cfg, in_dim, num_classes)
