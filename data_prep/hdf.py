"""Small helpers around RETURNN's HDF format (see docs: returnn-pytorch-on-cpu.md §4.1/4.2).

Why: all data streams (features, phonemes, durations, speakers, x-vectors) are HDFs keyed by seq tag.
Writing goes through RETURNN's own ``SimpleHDFWriter`` (so ``HDFDataset`` reads them); reading uses h5py
directly, which is much faster than instantiating a RETURNN dataset just to check lengths.
"""
from __future__ import annotations

import contextlib
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


class HdfReadError(ValueError):
    """An HDF that cannot be read (missing, truncated, not RETURNN's layout); the message names the file and its
    role (durations, phonemes, features, x-vectors, ...)."""


@contextlib.contextmanager
def _open(path: str, role: str) -> Iterator[h5py.File]:
    """h5py's own errors name neither the file nor what it was for; every read goes through here."""
    try:
        with h5py.File(path, "r") as f:
            for name in ("seqTags", "seqLengths", "inputs"):
                if name not in f:
                    raise KeyError(f"no dataset {name!r} (not a RETURNN HDF)")
            yield f
    except HdfReadError:
        raise
    except (OSError, KeyError, ValueError, RuntimeError) as exc:
        raise HdfReadError(f"{role} HDF {path} cannot be read: {exc} (truncated, corrupt or not a RETURNN HDF? "
                           f"rerun the job that wrote it)") from exc


def _tags(f: h5py.File) -> List[str]:
    return [t.decode("utf8") if isinstance(t, bytes) else str(t) for t in f["seqTags"][...]]


def read_seq_lengths(path: str, role: str = "input") -> Dict[str, int]:
    """Tag → length of the ``inputs`` ("data") stream; ``role`` names the file's purpose in errors."""
    with _open(path, role) as f:
        return dict(zip(_tags(f), (int(x) for x in f["seqLengths"][:, 0])))


def iter_sequences(path: str, role: str = "input") -> Iterator[Tuple[str, np.ndarray]]:
    """Yield (tag, data) of the ``inputs`` stream in file order."""
    with _open(path, role) as f:
        lens = f["seqLengths"][:, 0]
        offsets = np.concatenate([[0], np.cumsum(lens)])
        inputs = f["inputs"]
        if offsets[-1] > inputs.shape[0]:
            raise HdfReadError(f"{role} HDF {path}: the sequence lengths add up to {int(offsets[-1])} frames but "
                               f"'inputs' holds {inputs.shape[0]} (truncated?)")
        for i, tag in enumerate(_tags(f)):
            yield tag, inputs[offsets[i] : offsets[i + 1]]


def read_all(path: str, role: str = "input") -> Dict[str, np.ndarray]:
    return dict(iter_sequences(path, role))


def read_labels(path: str, role: str = "input") -> List[str]:
    with _open(path, role) as f:
        if "labels" not in f:
            return []
        return [x.decode("utf8") if isinstance(x, bytes) else str(x) for x in f["labels"][...]]
