"""Small helpers around RETURNN's HDF format (see docs: returnn-pytorch-on-cpu.md §4.1/4.2).

Why: all data streams (features, phonemes, durations, speakers, x-vectors) are HDFs keyed by seq tag.
Writing goes through RETURNN's own ``SimpleHDFWriter`` (so ``HDFDataset`` reads them); reading uses h5py
directly, which is much faster than instantiating a RETURNN dataset just to check lengths.
"""
from __future__ import annotations

import os
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import h5py
import numpy as np


def open_writer(path: str, dim: int, ndim: int, labels: Optional[Sequence[str]] = None):
    """SimpleHDFWriter that tolerates a left-over file from a crashed earlier attempt of the same job."""
    from returnn.datasets.hdf import SimpleHDFWriter

    if os.path.exists(path):
        os.remove(path)  # SimpleHDFWriter asserts the file does not exist
    return SimpleHDFWriter(path, dim=dim, ndim=ndim, labels=list(labels) if labels is not None else None)


def write_seq(writer, tag: str, data: np.ndarray) -> None:
    """Insert one sequence (``[T]`` sparse or ``[T, D]`` dense); one per call so nothing is padded."""
    writer.insert_batch(data[None], seq_len=[data.shape[0]], seq_tag=[tag])


def _tags(f: h5py.File) -> List[str]:
    return [t.decode("utf8") if isinstance(t, bytes) else str(t) for t in f["seqTags"][...]]


def read_seq_lengths(path: str) -> Dict[str, int]:
    """Tag → length of the ``inputs`` ("data") stream."""
    with h5py.File(path, "r") as f:
        return dict(zip(_tags(f), (int(x) for x in f["seqLengths"][:, 0])))


def iter_sequences(path: str) -> Iterator[Tuple[str, np.ndarray]]:
    """Yield (tag, data) of the ``inputs`` stream in file order."""
    with h5py.File(path, "r") as f:
        lens = f["seqLengths"][:, 0]
        offsets = np.concatenate([[0], np.cumsum(lens)])
        inputs = f["inputs"]
        for i, tag in enumerate(_tags(f)):
            yield tag, inputs[offsets[i] : offsets[i + 1]]


def read_all(path: str) -> Dict[str, np.ndarray]:
    return dict(iter_sequences(path))


def read_labels(path: str) -> List[str]:
    with h5py.File(path, "r") as f:
        if "labels" not in f:
            return []
        return [x.decode("utf8") if isinstance(x, bytes) else str(x) for x in f["labels"][...]]
