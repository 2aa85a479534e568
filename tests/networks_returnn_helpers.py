"""Helpers for the pytorch_networks tests: tiny configs, tiny batches and tiny RETURNN training runs.

RETURNN config code for the networks comes from ``jobs.serialization.serialize_network`` (the lead's
serializer); this module only adds data sets, extern_data and the training settings around it.
"""
from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch

from librispeech_joint_training_given_alignments.pytorch_networks import configs as C

PKG = "librispeech_joint_training_given_alignments"
N_VOCAB = 10
N_SPEAKERS = 3
XVEC_DIM = 6
HOP = 200


def tiny_tts_config(**overrides) -> C.GlowTTSModelConfig:
    cfg = C.GlowTTSModelConfig(
        text_encoder=C.TextEncoderConfig(n_vocab=N_VOCAB, hidden_channels=16, filter_channels=32, filter_channels_dp=16,
                                         n_heads=2, n_layers=2, window_size=2),
        decoder=C.FlowDecoderConfig(hidden_channels=16, n_blocks=2, n_layers=2, kernel_size=3),
        speaker=C.SpeakerConfig(mode="embedding", n_speakers=N_SPEAKERS, gin_channels=8),
        feature_extraction=C.FeatureExtractionConfig(num_filters=8, norm=(-60.0, 30.0)),
        out_channels=8,
    )
    return dataclasses.replace(cfg, **overrides)


def tiny_utterances(n: int = 6, seed: int = 0, frames_per_phoneme: Tuple[int, int] = (1, 4)
                    ) -> List[Dict[str, np.ndarray]]:
    """Synthetic utterances: phonemes, durations (sum <= frames), audio of matching length, speaker, x-vector.

    Each phoneme lasts ``frames_per_phoneme`` frames (low, high exclusive); CTC with time reduction needs long
    enough utterances (its loss is zeroed where the output is shorter than the targets).
    """
    rng = np.random.default_rng(seed)
    utts = []
    for i in range(n):
        n_phon = int(rng.integers(3, 7))
        phon = rng.integers(1, N_VOCAB, size=n_phon).astype(np.int32)
        dur = rng.integers(*frames_per_phoneme, size=n_phon).astype(np.int32)
        frames = int(dur.sum()) + int(rng.integers(1, 3))  # model frames = samples // hop + 1 (>= sum(dur))
        samples = (frames - 1) * HOP + int(rng.integers(0, HOP))
        tt = np.arange(samples) / 16000.0
        audio = sum(0.1 * np.sin(2 * np.pi * (200 + 150 * p) * tt) * (tt >= 0) for p in phon[:2])
        audio = (audio + 0.01 * rng.standard_normal(samples)).astype(np.float32)
        eow = np.concatenate([phon, [N_VOCAB]]).astype(np.int32)  # ASR targets: phonemes + eow label
        utts.append(dict(tag=f"tiny/rec{i}/seg{i}", phonemes=phon, durations=dur, audio=audio,
                         speaker=np.array([i % N_SPEAKERS], dtype=np.int32),
                         xvector=rng.standard_normal(XVEC_DIM).astype(np.float32), phonemes_eow=eow))
    return utts


def _pad(seqs: List[np.ndarray]) -> Tuple[torch.Tensor, torch.Tensor]:
    lens = torch.tensor([len(s) for s in seqs])
    out = np.zeros((len(seqs), int(lens.max())) + seqs[0].shape[1:], dtype=seqs[0].dtype)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = s
    return torch.from_numpy(out), lens


def tiny_batch(n: int = 4, seed: int = 0) -> Dict[str, Tuple[torch.Tensor, Optional[torch.Tensor]]]:
    return utterance_batch(tiny_utterances(n, seed))


def utterance_batch(utts: List[Dict[str, np.ndarray]]) -> Dict[str, Tuple[torch.Tensor, Optional[torch.Tensor]]]:
    """Padded ``(tensor, lengths)`` per data key, as RETURNN hands a batch of these utterances to the model."""
    audio, alen = _pad([u["audio"][:, None] for u in utts])
    return {
        C.AUDIO_KEY: (audio, alen),
        C.PHONEMES_KEY: _pad([u["phonemes"] for u in utts]),
        C.DURATIONS_KEY: _pad([u["durations"] for u in utts]),
        C.SPEAKER_KEY: (torch.from_numpy(np.stack([u["speaker"] for u in utts])), None),
        C.XVECTOR_KEY: (torch.from_numpy(np.stack([u["xvector"] for u in utts])), None),
        C.PHONEMES_EOW_KEY: _pad([u["phonemes_eow"] for u in utts]),
    }


def speech_batch(directory: str, speaker_ids: Tuple[str, ...] = ("1001", "1005"), per_speaker: int = 2
                 ) -> Tuple[Dict[str, Tuple[torch.Tensor, Optional[torch.Tensor]]], int]:
    """A batch of real speech: utterances of the embedded corpus voices (flite / espeak-ng), synthesised into
    ``directory``, with their TTS token ids, proportional durations (summing to the feature frames, like every
    durations HDF), speaker indices and pre-emphasised audio (as the OggZip datasets deliver it).

    Returns (batch as :func:`tiny_batch`, TTS vocabulary size).
    """
    import soundfile

    from librispeech_joint_training_given_alignments.data_prep import corpus, durations, lexicon, synthesis
    from librispeech_joint_training_given_alignments.data_prep.features import LogMelSettings, preemphasize

    plans = synthesis.plan_corpus(synthesis.DEFAULT_VOICES,
                                  [synthesis.SubsetSpec("dev-clean", speaker_ids, per_speaker)], seed=5, max_words=6)
    synthesis.write_librispeech_tree(directory, plans)
    inventory = lexicon.tts_inventory()
    index = {label: i for i, label in enumerate(inventory)}
    settings = LogMelSettings()
    audios, tokens, durs, speakers = [], [], [], []
    for entry in corpus.read_librispeech_subset(directory, "dev-clean"):
        audio, _ = soundfile.read(entry.audio, dtype="float32")
        audios.append(preemphasize(audio, settings.preemphasis).astype(np.float32)[:, None])
        ids = np.array([index[t] for t in lexicon.tts_tokens(entry.text, {w: lexicon.lookup(w)
                                                                          for w in entry.text.split()})])
        tokens.append(ids.astype(np.int32))
        weights = durations.token_weights(inventory, ids, durations.ProportionalAlignmentSettings())
        durs.append(durations.proportional_durations(weights, settings.num_frames(len(audio))))
        speakers.append([speaker_ids.index(entry.speaker)])
    batch = {C.AUDIO_KEY: _pad(audios), C.PHONEMES_KEY: _pad(tokens), C.DURATIONS_KEY: _pad(durs),
             C.SPEAKER_KEY: (torch.tensor(speakers, dtype=torch.int32), None)}
    return batch, len(inventory)


class _FakeDim:
    def __init__(self, lengths):
        self.dyn_size_ext = None if lengths is None else type("Size", (), {"raw_tensor": lengths})()


class _FakeTensor:
    def __init__(self, raw, lengths):
        self.raw_tensor = raw
        self.dims = [_FakeDim(None), _FakeDim(lengths)] + [_FakeDim(None)] * max(0, raw.dim() - 2)


class FakeTensorDict:
    """Stands in for returnn's TensorDict in unit tests (``raw_tensor`` + ``dims[1].dyn_size_ext``)."""

    def __init__(self, data):
        self.data = {k: _FakeTensor(v, lens) for k, (v, lens) in data.items()}

    def __getitem__(self, key):
        return self.data[key]


# ----------------------------------------------------------------------------------------- RETURNN runs
def write_tiny_hdfs(directory: str, utts: List[Dict[str, np.ndarray]]) -> Dict[str, str]:
    """audio.hdf (raw waveform [T,1] + speaker/xvector extras), phon.hdf (phonemes + durations + eow targets)."""
    from returnn.datasets.hdf import SimpleHDFWriter

    files = {k: os.path.join(directory, f"{k}.hdf") for k in ("audio", "phon", "dur", "spk", "xvec", "eow")}
    writers = {
        "audio": SimpleHDFWriter(files["audio"], dim=1, ndim=2),
        "phon": SimpleHDFWriter(files["phon"], dim=N_VOCAB, ndim=1),
        "dur": SimpleHDFWriter(files["dur"], dim=1, ndim=1),
        "spk": SimpleHDFWriter(files["spk"], dim=N_SPEAKERS, ndim=1),
        "xvec": SimpleHDFWriter(files["xvec"], dim=XVEC_DIM, ndim=2),
        "eow": SimpleHDFWriter(files["eow"], dim=N_VOCAB + 1, ndim=1),
    }
    for u in utts:
        tag = [u["tag"]]
        writers["audio"].insert_batch(u["audio"][None, :, None], seq_len=[len(u["audio"])], seq_tag=tag)
        writers["phon"].insert_batch(u["phonemes"][None], seq_len=[len(u["phonemes"])], seq_tag=tag)
        writers["dur"].insert_batch(u["durations"][None], seq_len=[len(u["durations"])], seq_tag=tag)
        writers["spk"].insert_batch(u["speaker"][None], seq_len=[1], seq_tag=tag)
        writers["xvec"].insert_batch(u["xvector"][None, None], seq_len=[1], seq_tag=tag)
        writers["eow"].insert_batch(u["phonemes_eow"][None], seq_len=[len(u["phonemes_eow"])], seq_tag=tag)
    for w in writers.values():
        w.close()
    return files


def meta_dataset(files: Dict[str, str], keys: List[str], durations_file: Optional[str] = None) -> dict:
    """MetaDataset over the tiny HDFs providing the requested extern_data keys."""
    source = {C.AUDIO_KEY: "audio", C.PHONEMES_KEY: "phon", C.DURATIONS_KEY: "dur", C.SPEAKER_KEY: "spk",
              C.XVECTOR_KEY: "xvec", C.PHONEMES_EOW_KEY: "eow"}
    paths = dict(files)
    if durations_file is not None:
        paths["dur"] = durations_file
    datasets = {source[k]: {"class": "HDFDataset", "files": [paths[source[k]]], "use_cache_manager": False}
                for k in keys}
    datasets["audio"]["seq_ordering"] = "sorted_reverse"
    return {"class": "MetaDataset", "datasets": datasets, "data_map": {k: (source[k], "data") for k in keys},
            "seq_order_control_dataset": "audio"}


EXTERN_DATA = {
    C.AUDIO_KEY: {"shape": (None, 1), "dtype": "float32"},
    C.PHONEMES_KEY: {"shape": (None,), "dtype": "int32", "sparse": True, "dim": N_VOCAB},
    C.DURATIONS_KEY: {"shape": (None,), "dtype": "int32"},
    C.SPEAKER_KEY: {"shape": (None,), "dtype": "int32", "sparse": True, "dim": N_SPEAKERS},
    C.XVECTOR_KEY: {"shape": (None, XVEC_DIM), "dtype": "float32"},
    C.PHONEMES_EOW_KEY: {"shape": (None,), "dtype": "int32", "sparse": True, "dim": N_VOCAB + 1},
}


def returnn_config_text(network_code: str, dataset: dict, keys: List[str], *, task: str = "train",
                        num_epochs: int = 1, extra: str = "") -> str:
    settings = {
        "backend": "torch",
        "device": "cpu",
        "task": task,
        "behavior_version": 24,
        "use_tensorflow": False,
        "rf_native_opt": False,
        "torch_distributed": None,
        "torch_dataloader_opts": {"num_workers": 0},
        "model": "models/epoch",
        "learning_rate_file": "learning_rates",
        "num_epochs": num_epochs,
        "log": ["./returnn.log"],
        "log_verbosity": 4,
        "extern_data": {k: EXTERN_DATA[k] for k in keys},
        "batch_size": 200000,
        "max_seqs": 3,
        "optimizer": {"class": "adam", "epsilon": 1e-8},
        "learning_rate": 1e-3,
        "random_seed": 1,
    }
    if task == "train":
        settings["train"] = dataset
    else:
        settings["forward_data"] = dataset
    lines = ["#!rnn.py"] + [f"{k} = {v!r}" for k, v in settings.items()]
    if not isinstance(network_code, str):  # jobs.serialization.NetworkCode
        network_code = network_code.get()
    return "\n".join(lines) + "\n" + network_code + "\n" + extra + "\n"


def run_returnn(workdir: str, config_text: str, name: str = "returnn.config", timeout: int = 180) -> str:
    path = os.path.join(workdir, name)
    with open(path, "w") as f:
        f.write(config_text)
    env = dict(os.environ, RETURNN_FRONTEND_NATIVE_OPT="0", OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="2")
    proc = subprocess.run([sys.executable, "-m", "returnn", path], cwd=workdir, env=env, capture_output=True,
                          text=True, timeout=timeout)
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise AssertionError(f"RETURNN failed (rc {proc.returncode}):\n{output[-6000:]}")
    return output


def check_logdet_matches_jacobian(flow, gin=3, t=4, atol=1e-7):
    """The flow's log-determinant equals log|det| of its numerical Jacobian (float64, one sequence)."""
    mask = torch.ones(1, 1, t, dtype=torch.float64)
    g = torch.randn(1, gin, dtype=torch.float64) if gin else None
    x = torch.randn(1, 4, t, dtype=torch.float64)

    def f(flat):
        return flow(flat.view(1, 4, t), mask, g)[0].reshape(-1)

    jac = torch.autograd.functional.jacobian(f, x.reshape(-1))
    _, logabsdet = torch.linalg.slogdet(jac)
    _, logdet = flow(x, mask, g)
    assert torch.allclose(logdet[0], logabsdet, atol=atol), (float(logdet[0]), float(logabsdet))
