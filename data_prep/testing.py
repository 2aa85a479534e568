"""Helpers for tests and quick local runs: a tiny embedded corpus spec and a graph runner with readable errors.

Why here and not in a conftest: several ``tests/test_data_*.py`` modules share them, and a failing job should
surface its log tail (e.g. the OOV list or the bad seq tag) in the assertion message.
"""
from __future__ import annotations

import contextlib
import glob
import os
from typing import Any, Dict, Iterable, Iterator, Tuple

from .synthesis import SubsetSpec
from .xvectors import XVectorTrainingSettings

TINY_TRAIN_SPEAKERS = ("1001", "1002", "1005", "1006")
TINY_SUBSETS: Tuple[SubsetSpec, ...] = (
    SubsetSpec("train-clean-100", TINY_TRAIN_SPEAKERS, 5),
    SubsetSpec("dev-clean", ("2001",), 2),
    SubsetSpec("test-clean", ("3001",), 2),
)


#: A small x-vector TDNN trained for 2 epochs: the RETURNN training (and forward) of :func:`tiny_first_jobs`.
TINY_XVECTOR_SETTINGS = XVectorTrainingSettings(learning_rates=(3e-3, 3e-3), batch_size_seconds=60.0, max_seqs=4,
                                                chunk_frames=80, channels=16, pooling_channels=24, embedding_dim=16,
                                                dropout=0.0)


def tiny_first_jobs(prefix: str = "tiny_first_jobs") -> Dict[str, Any]:
    """The first jobs of the default graph on the tiny corpus, with outputs registered under ``prefix/``.

    The same builders as the default run (``data.py``), so the same job classes and code paths, only smaller:
    corpus synthesis (flite / espeak-ng) -> corpus JSON -> log-mel HDF, CMUdict lexicon, TTS phoneme HDF, speaker
    labels -> a RETURNN x-vector training (:data:`TINY_XVECTOR_SETTINGS`) -> a RETURNN forward (per-utterance
    x-vectors). About a minute on one core: a quick check that a new setup (e.g. the real Sisyphus on SLURM, see the
    README) runs the project's jobs, and what ``tests/test_real_sisyphus_slurm.py`` runs under both engines.
    Returns {output name: path}; the names are the registered outputs' file names.
    """
    from .. import data
    from ..sisyphus_api import tk

    root = data.get_embedded_librispeech_root(subsets=TINY_SUBSETS, seed=7)
    corpus = data.get_corpus(root, "train-clean-100")
    features = data.get_log_mel_hdf([corpus])
    lexicon = data.get_lexicon([corpus])
    speakers = data.get_speaker_labels([corpus])
    training = data.train_xvector_model(features, speakers, TINY_XVECTOR_SETTINGS)
    checkpoint = training.out_checkpoints[TINY_XVECTOR_SETTINGS.num_epochs]
    model_config = data.xvector_model_config(TINY_XVECTOR_SETTINGS, speakers.num_speakers)
    outputs = {
        "corpus.json": corpus,
        "log_mel.hdf": features,
        "lexicon.json": lexicon,
        "phonemes.hdf": data.get_phoneme_hdf([corpus], lexicon, "tts"),
        "speakers.hdf": speakers.hdf,
        "xvector_training.learning_rates": training.out_learning_rates,
        "xvector_training.checkpoint.pt": checkpoint.path,
        "xvectors.hdf": data.get_xvectors(features, checkpoint, model_config=model_config),
    }
    for name, path in outputs.items():
        tk.register_output(f"{prefix}/{name}", path)
    return outputs


class JobFailed(RuntimeError):
    pass


@contextlib.contextmanager
def experiment_dir(base_dir: str) -> Iterator[str]:
    """Use ``base_dir`` as Sisyphus BASE_DIR (and cwd) while the block runs; job paths resolve against it."""
    from ..sisyphus_api import gs

    old = gs.BASE_DIR, os.getcwd(), gs.WAIT_PERIOD_BETWEEN_CHECKS
    gs.BASE_DIR = base_dir
    gs.WAIT_PERIOD_BETWEEN_CHECKS = 0.05
    os.chdir(base_dir)
    try:
        yield base_dir
    finally:
        gs.BASE_DIR, cwd, gs.WAIT_PERIOD_BETWEEN_CHECKS = old
        os.chdir(cwd)


def run_graph(targets: Iterable[Any]) -> None:
    """Run all jobs needed for ``targets`` with the embedded engine (inside :func:`experiment_dir`);
    raise :class:`JobFailed` with the tails of the failed jobs' logs."""
    from ..sisyphus_api import gs, tk

    base_dir = gs.BASE_DIR
    state = tk.run(list(targets))
    bad = {j: s for j, s in state.jobs.items() if s != "finished"}
    if bad:
        msgs = []
        for job_id, s in sorted(bad.items()):
            logs = sorted(glob.glob(os.path.join(base_dir, "work", job_id, "log.*")))
            tail = ""
            for log in logs:
                with open(log, errors="replace") as f:
                    tail += f.read()[-3000:]
            msgs.append(f"{job_id}: {s}\n{tail}")
        raise JobFailed("jobs did not finish:\n" + "\n".join(msgs))
