"""Training of the x-vector model with plain torch, extraction of per-utterance x-vectors, speaker averaging.

Why plain torch inside a Job: the RETURNN training/forward jobs of this repo do not exist yet (``jobs/`` is
empty), and speaker classification on pre-computed log-mel HDFs is small enough to run in-process on CPU.
Training uses random fixed-length chunks (the standard x-vector recipe), extraction the full utterance.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np

from . import hdf
from .corpus import speaker_of_seq_tag


@dataclass(frozen=True)
class XVectorTrainingSettings:
    """Every setting of the x-vector training (all hashed)."""

    num_epochs: int = 40
    batch_size: int = 32
    chunk_frames: int = 160  # 2 s at 80 frames/s
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    seed: int = 1
    channels: int = 256
    pooling_channels: int = 512
    embedding_dim: int = 512
    dropout: float = 0.1


def _read_segments(path: Optional[str]) -> Optional[List[str]]:
    if path is None:
        return None
    with open(path) as f:
        return [l.strip() for l in f if l.strip()]


def _chunk_batch(feats: List[np.ndarray], chunk: int, rng: np.random.RandomState):
    out = np.zeros((len(feats), chunk, feats[0].shape[1]), dtype=np.float32)
    lens = np.zeros(len(feats), dtype=np.int64)
    for i, f in enumerate(feats):
        if len(f) > chunk:
            start = rng.randint(0, len(f) - chunk + 1)
            f = f[start : start + chunk]
        out[i, : len(f)] = f
        lens[i] = len(f)
    return out, lens


def train_xvector_model(feature_hdf: str, speaker_hdf: str, out_checkpoint: str, out_log: str,
                        settings: XVectorTrainingSettings, train_segments: Optional[str] = None,
                        dev_segments: Optional[str] = None) -> Dict[str, float]:
    """Speaker-classification training; writes the checkpoint and a JSON log; returns final metrics."""
    import torch

    from ..pytorch_networks.xvector import XVectorConfig, XVectorModel, save_checkpoint

    torch.manual_seed(settings.seed)
    rng = np.random.RandomState(settings.seed)
    feats = hdf.read_all(feature_hdf)
    speakers = {t: int(v[0]) for t, v in hdf.read_all(speaker_hdf).items()}
    num_speakers = len(hdf.read_labels(speaker_hdf)) or (max(speakers.values()) + 1)
    train_tags = _read_segments(train_segments) or sorted(feats)
    dev_tags = _read_segments(dev_segments) or []
    for tag in train_tags + dev_tags:
        if tag not in feats or tag not in speakers:
            raise KeyError(f"sequence {tag} missing in features ({feature_hdf}) or speaker labels ({speaker_hdf})")
    model = XVectorModel(XVectorConfig(num_speakers=num_speakers, input_dim=feats[train_tags[0]].shape[1],
                                       channels=settings.channels, pooling_channels=settings.pooling_channels,
                                       embedding_dim=settings.embedding_dim, dropout=settings.dropout))
    opt = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=settings.learning_rate, total_steps=settings.num_epochs * max(1, -(-len(train_tags) // settings.batch_size)))
    history = []

    def evaluate(tags: Sequence[str]) -> float:
        model.eval()
        correct = 0
        with torch.no_grad():
            for tag in tags:
                _, logits = model(torch.from_numpy(feats[tag][None].astype(np.float32)))
                correct += int(int(logits.argmax(-1)) == speakers[tag])
        model.train()
        return correct / max(1, len(tags))

    for epoch in range(1, settings.num_epochs + 1):
        order = rng.permutation(len(train_tags))
        total_loss, total_correct, total = 0.0, 0, 0
        for start in range(0, len(order), settings.batch_size):
            batch_tags = [train_tags[i] for i in order[start : start + settings.batch_size]]
            if len(batch_tags) < 2:
                continue  # BatchNorm needs > 1 sample
            x, lens = _chunk_batch([feats[t] for t in batch_tags], settings.chunk_frames, rng)
            y = torch.tensor([speakers[t] for t in batch_tags])
            _, logits = model(torch.from_numpy(x), torch.from_numpy(lens))
            loss = torch.nn.functional.cross_entropy(logits, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total_loss += float(loss) * len(batch_tags)
            total_correct += int((logits.argmax(-1) == y).sum())
            total += len(batch_tags)
        history.append({"epoch": epoch, "train_ce": total_loss / max(1, total),
                        "train_chunk_accuracy": total_correct / max(1, total)})
        print(f"x-vector epoch {epoch}: {history[-1]}", flush=True)
    metrics = {"train_ce": history[-1]["train_ce"], "train_accuracy": evaluate(train_tags)}
    if dev_tags:
        metrics["dev_accuracy"] = evaluate(dev_tags)
    save_checkpoint(model, out_checkpoint)
    with open(out_log, "w") as f:
        json.dump({"settings": asdict(settings), "num_speakers": num_speakers, "history": history,
                   "final": metrics}, f, indent=1)
    return metrics


def extract_xvectors(checkpoint: str, feature_hdf: str, out_hdf: str, average_per_speaker: bool) -> int:
    """x-vector ``[1, D]`` per seq tag (a length-1 time axis, see returnn-pytorch-on-cpu.md §4.2).

    With ``average_per_speaker`` every sequence gets the mean x-vector of its speaker (speaker = tag prefix), like
    the original AverageXVectorSpeakerEmbeddingsJob.
    """
    import torch

    from ..pytorch_networks.xvector import load_checkpoint

    model = load_checkpoint(checkpoint)
    vectors: Dict[str, np.ndarray] = {}
    with torch.no_grad():
        for tag, x in hdf.iter_sequences(feature_hdf):
            emb, _ = model(torch.from_numpy(np.asarray(x, dtype=np.float32)[None]))
            vectors[tag] = emb[0].numpy()
    if average_per_speaker:
        by_spk: Dict[str, List[np.ndarray]] = {}
        for tag, v in vectors.items():
            by_spk.setdefault(speaker_of_seq_tag(tag), []).append(v)
        means = {s: np.mean(v, axis=0) for s, v in by_spk.items()}
        vectors = {t: means[speaker_of_seq_tag(t)] for t in vectors}
    dim = model.config.embedding_dim
    with hdf.open_writer(out_hdf, dim=dim, ndim=2) as writer:
        for tag, v in vectors.items():
            hdf.write_seq(writer, tag, v.reshape(1, dim).astype(np.float32))
    return len(vectors)


def check_embedding_hdf(path: str, tags: Sequence[str], dim: Optional[int] = None) -> int:
    """Given embeddings must cover every sequence with one ``[1, D]`` vector; returns D."""
    seen_dim = None
    data = hdf.read_all(path)
    for tag in tags:
        if tag not in data:
            raise KeyError(f"sequence {tag} is missing in the x-vector HDF {path}")
        v = data[tag]
        if v.ndim != 2 or v.shape[0] != 1:
            raise ValueError(f"sequence {tag}: x-vector has shape {v.shape}, expected [1, D]")
        seen_dim = seen_dim or v.shape[1]
        if v.shape[1] != (dim or seen_dim):
            raise ValueError(f"sequence {tag}: x-vector dim {v.shape[1]} != {dim or seen_dim}")
    return int(seen_dim or 0)
