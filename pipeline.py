"""Job-graph builders shared by all experiment families: training, forward, evaluation.

Each function creates jobs, gives them an alias under ``prefix`` and registers their results under
``prefix`` as well (i6_experiments' convention), and returns what later steps need.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

from .config import TrainingSettings, get_forward_config
from .jobs.evaluation import MeanPhonemeAccuracyJob, SynthesizedCorpusJob
from .jobs.returnn_config import ReturnnConfig
from .jobs.returnn_forward import ReturnnForwardJob
from .jobs.returnn_training import PtCheckpoint, ReturnnTrainingJob
from .jobs.scoring import CorpusToStmJob, ScliteJob, SearchWordsToCtmJob
from .jobs.serialization import serialize_network
from .sisyphus_api import USING_REAL_SISYPHUS, gs, tk

from . import PACKAGE_NAME

TTS_NETWORK = f"{PACKAGE_NAME}.pytorch_networks.tts_model"
ASR_NETWORK = f"{PACKAGE_NAME}.pytorch_networks.asr_model"
CALLBACKS = f"{PACKAGE_NAME}.pytorch_networks.callbacks"


def default_device() -> str:
    """"gpu" on a cluster (real Sisyphus) or where CUDA is visible, else "cpu". Not hashed.

    Override with ``RETURNN_DEVICE = "cpu"|"gpu"`` in settings.py (or ``SIS_RETURNN_DEVICE``).
    """
    configured = getattr(gs, "RETURNN_DEVICE", None)
    if configured:
        return configured
    if USING_REAL_SISYPHUS:
        return "gpu"
    try:
        import torch

        return "gpu" if torch.cuda.is_available() else "cpu"
    except ImportError:
        return "cpu"


def training(prefix: str, returnn_config: ReturnnConfig, settings: TrainingSettings, *,
             keep_epochs: Optional[List[int]] = None, time_rqmt: float = 100, mem_rqmt: float = 10,
             cpu_rqmt: int = 4) -> ReturnnTrainingJob:
    job = ReturnnTrainingJob(returnn_config, log_verbosity=5, device=default_device(), num_epochs=settings.num_epochs,
                             keep_epochs=keep_epochs, time_rqmt=time_rqmt, mem_rqmt=mem_rqmt, cpu_rqmt=cpu_rqmt)
    job.add_alias(f"{prefix}/training")
    tk.register_output(f"{prefix}/training.models", job.out_model_dir)
    return job


def last_checkpoint(job: ReturnnTrainingJob) -> PtCheckpoint:
    return job.out_checkpoints[max(job.out_checkpoints)]


def forward(prefix: str, name: str, checkpoint: Optional[PtCheckpoint], returnn_config: ReturnnConfig,
            output_files: Sequence[str], *, register: bool = True, mem_rqmt: float = 8,
            time_rqmt: float = 4) -> ReturnnForwardJob:
    job = ReturnnForwardJob(checkpoint, returnn_config, output_files=list(output_files), device=default_device(),
                            mem_rqmt=mem_rqmt, time_rqmt=time_rqmt)
    job.add_alias(f"{prefix}/{name}")
    if register:
        for file_name in output_files:
            tk.register_output(f"{prefix}/{name}/{file_name}", job.out_files[file_name])
    return job


def _tts_forward_config(model_config: Any, forward_data: Dict[str, Any], extern_data: Dict[str, Any], mode: str,
                        callback: str, callback_kwargs: Optional[Dict[str, Any]] = None,
                        not_needed_keys: Sequence[str] = (), **forward_kwargs: Any) -> ReturnnConfig:
    network = serialize_network(TTS_NETWORK, model_config, train=False, forward_step_kwargs={"mode": mode, **forward_kwargs},
                                forward_callback=f"{CALLBACKS}.{callback}", forward_callback_kwargs=callback_kwargs or {})
    return get_forward_config(forward_data=forward_data, extern_data=extern_data, network=network,
                              not_needed_keys=not_needed_keys)


def extract_durations(prefix: str, checkpoint: PtCheckpoint, model_config: Any, forward_data: Dict[str, Any],
                      extern_data: Dict[str, Any]) -> tk.Path:
    """Per-phoneme Viterbi durations of the real audio (MAS of a trained Glow-TTS) as an HDF."""
    cfg = _tts_forward_config(model_config, forward_data, extern_data, "durations", "DurationHDFCallback")
    return forward(prefix, "forward_durations", checkpoint, cfg, ["durations.hdf"]).out_files["durations.hdf"]


def synthesize(prefix: str, checkpoint: PtCheckpoint, model_config: Any, forward_data: Dict[str, Any],
               extern_data: Dict[str, Any], *, noise_scale: float = 0.66, length_scale: float = 1.0,
               gl_iter: int = 32, audio_format: str = "ogg", audio_key: str = "audio_features") -> Dict[str, tk.Path]:
    """Text -> Glow-TTS log-mel -> Griffin-Lim -> ``audio_files`` (a folder) and ``audio_files.txt`` (tag, file,
    seconds per line)."""
    cfg = _tts_forward_config(model_config, forward_data, extern_data, "synthesis", "GriffinLimAudioCallback",
                              {"gl_iter": gl_iter, "audio_format": audio_format}, not_needed_keys=[audio_key],
                              noise_scale=noise_scale, length_scale=length_scale)
    job = forward(f"{prefix}/tts_eval_gl", "forward", checkpoint, cfg, ["audio_files", "audio_files.txt"])
    return job.out_files


def extract_latent(prefix: str, checkpoint: PtCheckpoint, model_config: Any, forward_data: Dict[str, Any],
                   extern_data: Dict[str, Any]) -> Dict[str, tk.Path]:
    """Flow output z of the real audio (``samples.hdf``) and the aligned prior means (``mean.hdf``)."""
    cfg = _tts_forward_config(model_config, forward_data, extern_data, "latent", "LatentHDFCallback")
    job = forward(prefix, "forward_latent_space", checkpoint, cfg, ["samples.hdf", "mean.hdf"])
    return dict(job.out_files)


def evaluate_invertibility(prefix: str, checkpoint: PtCheckpoint, model_config: Any, forward_data: Dict[str, Any],
                           extern_data: Dict[str, Any]) -> tk.Path:
    """Statistics of |y - f^-1(f(y))| of the flow on real features (count, mean, var, std, max, min)."""
    cfg = _tts_forward_config(model_config, forward_data, extern_data, "invertibility", "InvertibilityStatsCallback")
    return forward(prefix, "forward_invertibility", checkpoint, cfg, ["invertibility.csv"]).out_files["invertibility.csv"]


def compute_phoneme_pred_accuracy(prefix: str, checkpoint: PtCheckpoint, model_config: Any,
                                  forward_data: Dict[str, Any], extern_data: Dict[str, Any],
                                  key: str = "train-clean") -> tk.Variable:
    """Frame accuracy of the auxiliary phoneme head against the labels upsampled by the given durations."""
    cfg = _tts_forward_config(model_config, forward_data, extern_data, "phoneme_accuracy", "PhonemeAccuracyCallback")
    job = forward(f"{prefix}/phoneme_pred/{key}", "forward", checkpoint, cfg, ["phoneme_accuracy.hdf"],
                  register=False)
    mean = MeanPhonemeAccuracyJob(job.out_files["phoneme_accuracy.hdf"])
    tk.register_output(f"{prefix}/phoneme_pred/{key}/accuracy", mean.out_accuracy)
    return mean.out_accuracy


def asr_search(prefix: str, checkpoint: PtCheckpoint, model_config: Any, forward_data: Dict[str, Any],
               extern_data: Dict[str, Any], corpus_file: tk.Path, vocab: tk.Path, lexicon: Optional[tk.Path],
               *, key: str = "dev-clean", not_needed_keys: Sequence[str] = (), eow_suffix: Optional[str] = "#",
               word_separator: Optional[str] = None) -> tk.Variable:
    """Greedy CTC recognition -> words through the lexicon -> ctm -> sclite WER against the corpus."""
    network = serialize_network(ASR_NETWORK, model_config, train=False, forward_callback="SearchOutCallback",
                                forward_callback_kwargs={"vocab": vocab, "lexicon": lexicon, "eow_suffix": eow_suffix,
                                                         "word_separator": word_separator})
    cfg = get_forward_config(forward_data=forward_data, extern_data=extern_data, network=network,
                             not_needed_keys=not_needed_keys)
    search = forward(f"{prefix}/search/{key}", "search_job", checkpoint, cfg, ["search_out.py"], register=False)
    ctm = SearchWordsToCtmJob(search.out_files["search_out.py"], corpus_file).out_ctm
    stm = CorpusToStmJob(corpus_file).out_stm
    sclite = ScliteJob(stm, ctm, precision_ndigit=2)
    tk.register_output(f"{prefix}/search/{key}/sclite/wer", sclite.out_wer)
    tk.register_output(f"{prefix}/search/{key}/sclite/report", sclite.out_report_dir)
    return sclite.out_wer


# ------------------------------------------------------------------------------------------- experiment runners

def tts_experiment(prefix: str, model_config: Any, datasets: Any, settings: TrainingSettings, *,
                   train_step_kwargs: Optional[Dict[str, Any]] = None, preload_from_files: Optional[Dict] = None,
                   keep_epochs: Optional[List[int]] = None, tts_eval: bool = True,
                   phoneme_pred: Optional[bool] = None, phoneme_pred_latents: Sequence[str] = (),
                   latent_space: bool = False, invertibility: bool = False) -> Dict[str, Any]:
    """Train a Glow-TTS family model and evaluate it (i6 ``run_exp``).

    tts_eval: synthesise the TTS-CV split with Griffin-Lim; phoneme_pred (default: when the model has a head):
    frame accuracy of the head on the TTS-CV split, once per latent in ``phoneme_pred_latents`` (e.g. the
    frozen probes' "encoder"/"decoder" evaluation) or with the trained latent.
    """
    from .config import get_training_config
    from .data_prep.datasets import AUDIO_KEY

    network = serialize_network(TTS_NETWORK, model_config, train_step_kwargs=train_step_kwargs or {})
    returnn_config = get_training_config(train=datasets.train, dev=datasets.cv, extern_data=datasets.extern_data,
                                         network=network, settings=settings,
                                         eval_datasets={"devtrain": datasets.devtrain},
                                         preload_from_files=preload_from_files, keep_epochs=keep_epochs)
    job = training(prefix, returnn_config, settings, keep_epochs=keep_epochs)
    checkpoint = last_checkpoint(job)
    result: Dict[str, Any] = {"prefix": prefix, "train_job": job, "checkpoint": checkpoint,
                              "model_config": model_config}
    if tts_eval:
        audio = synthesize(prefix, checkpoint, model_config, datasets.cv, datasets.extern_data, audio_key=AUDIO_KEY)
        result["audio"], result["audio_list"] = audio["audio_files"], audio["audio_files.txt"]
    if phoneme_pred is None:
        phoneme_pred = model_config.phoneme_head is not None
    if phoneme_pred:
        import dataclasses

        result["phoneme_accuracy"] = {}
        for latent in phoneme_pred_latents or [model_config.aux_latent]:
            eval_config = dataclasses.replace(model_config, aux_latent=latent)
            eval_prefix = f"{prefix}/{latent}_eval" if phoneme_pred_latents else prefix
            result["phoneme_accuracy"][latent] = compute_phoneme_pred_accuracy(
                eval_prefix, checkpoint, eval_config, datasets.cv, datasets.extern_data)
    if latent_space:
        result["latent_space"] = extract_latent(prefix, checkpoint, model_config, datasets.cv, datasets.extern_data)
    if invertibility:
        result["invertibility"] = evaluate_invertibility(prefix, checkpoint, model_config, datasets.devtrain,
                                                         datasets.extern_data)
    return result


def asr_experiment(prefix: str, model_config: Any, train_datasets: Any, settings: TrainingSettings, *,
                   dev: Optional[Dict[str, Any]], test_dataset: Dict[str, Any], test_corpus: tk.Path,
                   vocab_labels: tk.Path, lexicon: tk.Path, target_key: str = "phonemes_eow",
                   eow_suffix: Optional[str] = "#", word_separator: Optional[str] = None,
                   preload_from_files: Optional[Dict] = None, test_key: str = "test") -> Dict[str, Any]:
    """Train a CTC ASR model (log-mel or Glow latent input) and score greedy decoding with sclite."""
    from .config import get_training_config

    network = serialize_network(ASR_NETWORK, model_config, train_step_kwargs={"target_key": target_key})
    returnn_config = get_training_config(train=train_datasets.train, dev=dev, extern_data=train_datasets.extern_data,
                                         network=network, settings=settings,
                                         preload_from_files=preload_from_files)
    job = training(prefix, returnn_config, settings)
    checkpoint = last_checkpoint(job)
    test_keys = set(_dataset_keys(test_dataset))
    extern = {k: v for k, v in train_datasets.extern_data.items() if k in test_keys}
    wer = asr_search(prefix, checkpoint, model_config, test_dataset, extern, test_corpus, vocab_labels, lexicon,
                     key=test_key, eow_suffix=eow_suffix, word_separator=word_separator)
    return {"prefix": prefix, "train_job": job, "checkpoint": checkpoint, "model_config": model_config,
            "train_extern_data": train_datasets.extern_data, "wers": {test_key: wer}}


def synthetic_wer(prefix: str, audio_list: tk.Path, reference_corpus: tk.Path, asr: Dict[str, Any],
                  vocab_labels: tk.Path, lexicon: tk.Path, *, preemphasis: Optional[float] = 0.97,
                  key: str = "swer") -> tk.Variable:
    """sWER: synthesised audio recognised by a trained ASR system (``asr_experiment`` result), scored by sclite
    against the texts the audio was synthesised from."""
    from .data_prep import datasets as ds
    from .data_prep.corpus_jobs import OggZipJob

    corpus = SynthesizedCorpusJob(audio_list, reference_corpus).out_corpus
    audio = ds.ogg_zip_dataset([OggZipJob([corpus]).out_ogg_zip], audio=ds.raw_audio_options(preemphasis),
                               seq_ordering="sorted_reverse")
    dataset = ds.meta_dataset(audio, {})
    extern = {ds.AUDIO_KEY: asr["train_extern_data"][ds.AUDIO_KEY]}
    return asr_search(prefix, asr["checkpoint"], asr["model_config"], dataset, extern, corpus, vocab_labels, lexicon,
                      key=key)


def _dataset_keys(dataset: Dict[str, Any]) -> List[str]:
    if dataset.get("class") == "MetaDataset":
        return list(dataset["data_map"])
    return ["data"]
