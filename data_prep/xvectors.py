"""x-vector settings and the file-level steps around the RETURNN x-vector model: speaker averaging, checks.

Training and extraction run as RETURNN jobs (``pytorch_networks.xvector`` via ``data.train_xvector_model`` /
``data.get_xvectors``) on the log-mel feature HDF: the model sees exactly the features of the other models.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from . import hdf
from .corpus import speaker_of_seq_tag


def default_learning_rates(num_epochs: int = 40, peak: float = 1e-3) -> Tuple[float, ...]:
    """One learning rate per RETURNN epoch: linear warm-up from ``peak / 100`` reaching ``peak`` after 40% of the
    epochs, then linear decay to ``peak / 1000`` in the last epoch."""
    up = max(1, round(0.4 * num_epochs))
    rates = np.concatenate([np.linspace(peak / 100, peak, up + 1)[1:],
                            np.linspace(peak, peak / 1000, num_epochs - up + 1)[1:]])
    return tuple(float(x) for x in rates)


@dataclass(frozen=True)
class XVectorTrainingSettings:
    """Every setting of the x-vector training (all hashed: they go into the RETURNN config and model config).

    The number of epochs is ``len(learning_rates)`` (one learning rate per epoch). Batches are limited by
    ``batch_size_seconds`` of padded (whole-utterance) features and ``max_seqs``; each utterance is then cut to a
    random ``chunk_frames`` window (80 frames/s).
    """

    learning_rates: Tuple[float, ...] = default_learning_rates()
    batch_size_seconds: float = 1000.0
    max_seqs: int = 32
    chunk_frames: int = 160  # 2 s at 80 frames/s
    optimizer: str = "adamw"
    weight_decay: float = 1e-4
    seed: int = 1
    channels: int = 256
    pooling_channels: int = 512
    embedding_dim: int = 512
    dropout: float = 0.1

    @property
    def num_epochs(self) -> int:
        return len(self.learning_rates)


def average_per_speaker(in_hdf: str, out_hdf: str, average_tags: Optional[Sequence[str]] = None) -> int:
    """Every sequence gets the mean ``[1, D]`` x-vector of its speaker (speaker = tag prefix), like the original
    AverageXVectorSpeakerEmbeddingsJob; returns the number of speakers.

    ``average_tags``: the means are taken over these sequences only (e.g. the TTS train split, so a held-out
    utterance's own vector does not leak into what synthesis of its text gets); every sequence of a speaker
    without any of them is an error naming the speaker.
    """
    vectors = hdf.read_all(in_hdf, "x-vectors")
    if not vectors:
        raise ValueError(f"{in_hdf} holds no x-vectors")
    check_finite(vectors, in_hdf)
    if average_tags is None:
        average_tags = list(vectors)
    missing = [tag for tag in average_tags if tag not in vectors]
    if missing:
        raise KeyError(f"{len(missing)} sequence(s) to average over are missing in {in_hdf}, e.g. {missing[:5]}")
    by_spk: Dict[str, List[np.ndarray]] = {}
    for tag in average_tags:
        by_spk.setdefault(speaker_of_seq_tag(tag), []).append(vectors[tag])
    without = sorted({speaker_of_seq_tag(t) for t in vectors} - set(by_spk))
    if without:
        raise ValueError(f"speaker(s) {without} of {in_hdf} have no utterance to average their x-vectors over")
    means = {s: np.mean(v, axis=0).astype(np.float32) for s, v in by_spk.items()}
    dim = next(iter(means.values())).shape[-1]
    with hdf.open_writer(out_hdf, dim=dim, ndim=2) as writer:
        for tag in sorted(vectors):
            hdf.write_seq(writer, tag, means[speaker_of_seq_tag(tag)].reshape(1, dim))
    return len(means)


def check_finite(vectors: Dict[str, np.ndarray], path: str) -> None:
    """NaN/Inf x-vectors (e.g. from a diverged extractor) would silently poison every speaker-conditioned model."""
    bad = sorted(tag for tag, v in vectors.items() if not np.all(np.isfinite(v)))
    if bad:
        raise ValueError(f"x-vector HDF {path}: {len(bad)} sequence(s) have NaN/Inf x-vectors, e.g. {bad[:5]}")


def check_embedding_hdf(path: str, tags: Sequence[str], dim: Optional[int] = None) -> int:
    """Given embeddings must cover every sequence with one finite ``[1, D]`` vector; returns D.

    :param dim: the dimension the models are configured for (``extern_data``'s x-vector dim); None: any, but one
    """
    seen_dim = None
    data = hdf.read_all(path, "given x-vectors")
    for tag in tags:
        if tag not in data:
            raise KeyError(f"sequence {tag} is missing in the x-vector HDF {path}")
        v = data[tag]
        if v.ndim != 2 or v.shape[0] != 1:
            raise ValueError(f"x-vector HDF {path}: sequence {tag}: x-vector has shape {v.shape}, expected [1, D]")
        seen_dim = seen_dim or v.shape[1]
        if dim is not None and v.shape[1] != dim:
            raise ValueError(f"x-vector HDF {path}: sequence {tag}: x-vector dim {v.shape[1]}, but the models are "
                             f"configured for {dim} (XVectorTrainingSettings.embedding_dim / extern_data)")
        if v.shape[1] != seen_dim:
            raise ValueError(f"x-vector HDF {path}: sequence {tag}: x-vector dim {v.shape[1]} != {seen_dim}")
    check_finite({tag: data[tag] for tag in tags}, path)
    return int(seen_dim or 0)
