"""RETURNN dataset dicts (MetaDataset of OggZip / HDF sub-datasets) for the data keys of networks.md §8.2.

Why pure dict builders: they contain ``tk.Path`` objects (so dataset choices are hashed into the training jobs)
and are turned into plain strings only when a config is written (``jobs.returnn_config.instantiate_paths``).
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Sequence, Tuple

# the data keys the models read (one definition, in the model configs)
from ..pytorch_networks.configs import (AUDIO_KEY, DURATIONS_KEY, PHONEMES_EOW_KEY, PHONEMES_KEY,  # noqa: F401
                                        SPEAKER_KEY, TOKEN_DURATIONS_KEY, XVECTOR_KEY)

# sub-dataset name inside the MetaDataset for each data key
_SUB = {AUDIO_KEY: "audio", PHONEMES_KEY: "phonemes", PHONEMES_EOW_KEY: "phonemes_eow", SPEAKER_KEY: "speakers",
        DURATIONS_KEY: "durations", TOKEN_DURATIONS_KEY: "token_durations", XVECTOR_KEY: "xvectors"}

PathLike = Any  # tk.Path or str


def raw_audio_options(preemphasis: Optional[float] = 0.97, sample_rate: int = 16000) -> Dict[str, Any]:
    """OggZip audio options of the original raw-audio datastream (pre-emphasis 0.97, no peak normalisation)."""
    return {"features": "raw", "peak_normalization": False, "preemphasis": preemphasis, "sample_rate": sample_rate}


def audio_options_of(dataset: Dict[str, Any], key: str = AUDIO_KEY) -> Optional[Dict[str, Any]]:
    """The OggZip ``audio`` options (pre-emphasis, peak normalisation, sample rate) through which ``dataset``
    (a MetaDataset or an OggZipDataset) reads ``key``; None where that stream is not read from audio files (e.g. a
    feature HDF). Synthesised audio must be read with exactly these options to be treated like the real audio."""
    if dataset.get("class") == "MetaDataset":
        if key not in dataset["data_map"]:
            raise KeyError(f"the MetaDataset has no data key {key!r} (keys: {sorted(dataset['data_map'])})")
        sub, _ = dataset["data_map"][key]
        dataset = dataset["datasets"][sub]
    if dataset.get("class") != "OggZipDataset":
        return None
    return dict(dataset["audio"]) if dataset.get("audio") is not None else None


def ogg_zip_dataset(zips: Sequence[PathLike], *, audio: Optional[Dict[str, Any]], segment_file: Optional[PathLike] = None,
                    partition_epoch: int = 1, seq_ordering: str = "default",
                    fixed_random_subset: Optional[int] = None,
                    epoch_wise_filter: Optional[Dict[Tuple[int, int], Dict[str, Any]]] = None) -> Dict[str, Any]:
    d: Dict[str, Any] = {"class": "OggZipDataset", "path": list(zips) if len(zips) > 1 else zips[0], "audio": audio,
                         "targets": None, "partition_epoch": partition_epoch, "seq_ordering": seq_ordering,
                         "use_cache_manager": False}
    if segment_file is not None:
        d["segment_file"] = segment_file
    if fixed_random_subset:
        d["fixed_random_subset"] = fixed_random_subset
    if epoch_wise_filter:
        d["epoch_wise_filter"] = epoch_wise_filter
    return d


def hdf_dataset(files: Sequence[PathLike], *, segment_file: Optional[PathLike] = None, partition_epoch: int = 1,
                seq_ordering: str = "default") -> Dict[str, Any]:
    d: Dict[str, Any] = {"class": "HDFDataset", "files": list(files), "use_cache_manager": False,
                         "partition_epoch": partition_epoch, "seq_ordering": seq_ordering}
    if segment_file is not None:
        d["seq_list_filter_file"] = segment_file
    return d


def meta_dataset(audio: Dict[str, Any], streams: Dict[str, PathLike]) -> Dict[str, Any]:
    """MetaDataset whose sequence list / order / partitioning come from the ``audio`` sub-dataset.

    :param streams: data key → HDF file; the HDFs may hold more sequences than the audio (e.g. the whole corpus
        while the audio dataset is restricted to a segment list): sequences are joined by tag.
    """
    datasets = {_SUB[AUDIO_KEY]: audio}
    data_map = {AUDIO_KEY: (_SUB[AUDIO_KEY], "data")}
    for key, hdf_file in streams.items():
        if hdf_file is None:
            continue
        datasets[_SUB[key]] = hdf_dataset([hdf_file])
        data_map[key] = (_SUB[key], "data")
    return {"class": "MetaDataset", "datasets": datasets, "data_map": data_map,
            "seq_order_control_dataset": _SUB[AUDIO_KEY]}


def extern_data(keys: Sequence[str], *, audio_dim: int, tts_vocab_size: Optional[int] = None,
                asr_vocab_size: Optional[int] = None, num_speakers: Any = None,
                xvector_dim: int = 512) -> Dict[str, Dict[str, Any]]:
    """``extern_data`` for the torch engine (shapes as the models expect them, networks.md §8.2).

    The vocabulary sizes / number of speakers are only needed for the keys that use them.

    ``durations`` is declared dense int (the HDF stores it as 1-D ints, which RETURNN would call "sparse dim 1"),
    ``xvectors`` as ``[B, 1, D]`` (one vector per utterance stored with a length-1 time axis).
    """
    all_keys = {
        AUDIO_KEY: {"shape": (None, audio_dim), "dim": audio_dim, "dtype": "float32"},
        PHONEMES_KEY: {"shape": (None,), "sparse": True, "dim": tts_vocab_size, "dtype": "int32"},
        PHONEMES_EOW_KEY: {"shape": (None,), "sparse": True, "dim": asr_vocab_size, "dtype": "int32"},
        SPEAKER_KEY: {"shape": (1,), "sparse": True, "dim": num_speakers, "dtype": "int32"},
        DURATIONS_KEY: {"shape": (None,), "dtype": "int32"},
        TOKEN_DURATIONS_KEY: {"shape": (None,), "dtype": "int32"},
        XVECTOR_KEY: {"shape": (None, xvector_dim), "dim": xvector_dim, "dtype": "float32"},
    }
    needed = {PHONEMES_KEY: tts_vocab_size, PHONEMES_EOW_KEY: asr_vocab_size, SPEAKER_KEY: num_speakers}
    missing = [k for k in keys if k in needed and needed[k] is None]
    if missing:
        raise ValueError(f"extern_data: the dims of {missing} are not given")
    return {k: all_keys[k] for k in keys}
