"""Small x-vector TDNN speaker-embedding model (Snyder et al. 2018 layout, reduced width) as a RETURNN model.

Why: TTS speaker conditioning uses per-utterance speaker embeddings (``xvectors``, networks.md §8.2). The model
is trained on speaker classification over log-mel features of the training speakers; the embedding is the
first segment-level layer (before the non-linearity), as in the original x-vector recipe.

Input: log-mel features ``audio_features [B, T, input_dim]`` from the log-mel feature HDF of
``data_prep.features`` (the same front end the TTS/ASR models compute from raw audio), speaker labels
``speaker_labels [B, 1]`` for training. Each utterance is mean/variance normalised over time inside the model,
so no global statistics are needed.

RETURNN entry points (bind ``config`` with ``functools.partial``, see ``jobs.serialization``):
``get_model``; ``train_step`` (loss ``ce`` on random ``chunk_frames`` chunks in training, on whole utterances
in dev; ``error`` reported only); ``forward_step`` (output ``xvector [B, embedding_dim]``);
:class:`XVectorHDFCallback` (writes ``xvectors.hdf`` with one ``[1, D]`` sequence per seq tag).
"""
from __future__ import annotations

import os
from typing import Optional, Tuple

import numpy as np
import returnn.frontend as rf
import torch
from returnn.forward_iface import ForwardCallbackIface
from torch import nn

from .configs import AUDIO_KEY, SPEAKER_KEY, XVectorConfig  # noqa: F401  (configs written before it moved import it here)
from .returnn_io import get_data, mark_output


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


def get_model(*, epoch: int = 0, step: int = 0, config: XVectorConfig, **_kwargs) -> XVectorModel:
    """RETURNN ``get_model`` (bind ``config`` with functools.partial)."""
    return XVectorModel(config)


def random_chunks(features: torch.Tensor, lengths: torch.Tensor, chunk_frames: int
                  ) -> Tuple[torch.Tensor, torch.Tensor]:
    """One random window of at most ``chunk_frames`` frames per sequence (the standard x-vector training input);
    sequences not longer than the window are kept whole. :return: ``[B, min(T, chunk_frames), F]``, lengths"""
    width = min(features.shape[1], chunk_frames)
    starts = (torch.rand(len(lengths), device=lengths.device) * (lengths - width + 1).clamp(min=1)).long()
    index = (starts[:, None] + torch.arange(width, device=lengths.device)[None, :]).clamp(max=features.shape[1] - 1)
    chunks = torch.gather(features, 1, index[:, :, None].expand(-1, -1, features.shape[2]))
    return chunks, lengths.clamp(max=width)


def train_step(*, model: XVectorModel, extern_data, chunk_frames: int = 160, feature_key: str = AUDIO_KEY,
               speaker_key: str = SPEAKER_KEY, **_kwargs) -> None:
    """Loss ``ce``: speaker cross-entropy, mean over the sequences of the batch (reported and optimised);
    ``error``: speaker classification error (reported only).

    In training each sequence is cut to a random ``chunk_frames`` window; a batch of one sequence is given two
    different windows, since the BatchNorm of the segment-level layers needs more than one value per channel.
    Dev/eval (model in eval mode) use the whole utterances.
    """
    device = model.embedding.weight.device
    features, lengths = get_data(extern_data, feature_key, device)
    speakers = get_data(extern_data, speaker_key, device)[0].reshape(-1).long()
    if model.training:
        if features.shape[0] == 1:
            features, lengths, speakers = features.repeat(2, 1, 1), lengths.repeat(2), speakers.repeat(2)
        features, lengths = random_chunks(features, lengths, chunk_frames)
    _, logits = model(features, lengths)
    ctx = rf.get_run_ctx()
    ctx.mark_as_loss(nn.functional.cross_entropy(logits, speakers, reduction="none"), "ce", use_normalized_loss=True)
    ctx.mark_as_loss((logits.argmax(-1) != speakers).float(), "error", as_error=True)


def forward_step(*, model: XVectorModel, extern_data, feature_key: str = AUDIO_KEY, **_kwargs) -> None:
    """Output ``xvector [B, embedding_dim]`` of the whole utterance."""
    features, lengths = get_data(extern_data, feature_key, model.embedding.weight.device)
    emb, _ = model(features, lengths)
    mark_output("xvector", emb)


class XVectorHDFCallback(ForwardCallbackIface):
    """Writes output ``xvector`` to ``filename`` (default ``xvectors.hdf``): one ``[1, D]`` float32 sequence per
    seq tag (a length-1 time axis, the layout of the ``xvectors`` data key)."""

    def __init__(self, filename: str = "xvectors.hdf"):
        self.filename = filename
        self.writer = None

    def init(self, *, model):
        self.writer = None

    def process_seq(self, *, seq_tag: str, outputs):
        from returnn.datasets.hdf import SimpleHDFWriter

        vec = np.asarray(outputs["xvector"].raw_tensor, dtype=np.float32).reshape(1, -1)
        if self.writer is None:
            if os.path.exists(self.filename):  # SimpleHDFWriter refuses existing files
                os.remove(self.filename)
            self.writer = SimpleHDFWriter(self.filename, dim=vec.shape[1], ndim=2)
        self.writer.insert_batch(vec[None], seq_len=[1], seq_tag=[seq_tag])

    def finish(self):
        if self.writer is None:
            raise ValueError(f"{self.filename}: no sequences were forwarded")
        self.writer.close()
