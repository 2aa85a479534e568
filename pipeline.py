"""Job-graph builders shared by all experiment families: training, forward, evaluation.

Each function creates jobs, gives them an alias under ``prefix`` and registers their results under
``prefix`` as well (i6_experiments' convention), and returns what later steps need.
"""
from __future__ import annotations

import dataclasses
import functools
import os
from typing import Any, Dict, List, Optional, Sequence, Union

from .config import SeedSelection, TrainingSettings, get_forward_config, preload
from .jobs.evaluation import MeanPhonemeAccuracyJob, SynthesisLengthRatioJob, SynthesizedCorpusJob
from .jobs.phoneme_baselines import AlignmentFrameAccuracyJob, MajorityClassAccuracyJob
from .jobs.returnn_config import ReturnnConfig
from .jobs.returnn_forward import ReturnnForwardJob
from .jobs.returnn_training import PtCheckpoint, ReturnnTrainingJob, SelectBestTrainingJob
from .jobs.scoring import CorpusToStmJob, ScliteJob, SearchWordsToCtmJob, WerResult
from .jobs.serialization import serialize_network
from .pytorch_networks.configs import SearchConfig
from .sisyphus_api import USING_REAL_SISYPHUS, gs, tk

from . import PACKAGE_NAME

TTS_NETWORK = f"{PACKAGE_NAME}.pytorch_networks.tts_model"
ASR_NETWORK = f"{PACKAGE_NAME}.pytorch_networks.asr_model"
MEL_TO_LINEAR_NETWORK = f"{PACKAGE_NAME}.pytorch_networks.mel_to_linear"
CALLBACKS = f"{PACKAGE_NAME}.pytorch_networks.callbacks"
FROM_DATA = "from_data"  # synthesize(): take the pre-emphasis from the forward data's front end


def default_device() -> str:
    """"gpu" on a cluster (real Sisyphus) or where an NVIDIA GPU is visible, else "cpu". Not hashed.

    It decides only the GPU requirement of RETURNN tasks; the device RETURNN uses is chosen when the task runs
    (``jobs.returnn_training.runtime_device``: "gpu" only if the task asked for one and CUDA is visible). Override
    with ``RETURNN_DEVICE = "cpu"|"gpu"`` in settings.py (or ``SIS_RETURNN_DEVICE``). Looks at the device files, not
    torch, so building a graph needs no training stack.
    """
    configured = getattr(gs, "RETURNN_DEVICE", None)
    if configured:
        return configured
    if USING_REAL_SISYPHUS:
        return "gpu"
    return "gpu" if _nvidia_gpu_visible() else "cpu"


def _nvidia_gpu_visible() -> bool:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return any(d.strip() and d.strip() != "-1" for d in visible.split(","))
    return os.path.isdir("/dev") and any(d.startswith("nvidia") and d[6:].isdigit() for d in os.listdir("/dev"))


def training(prefix: str, returnn_config: ReturnnConfig, settings: TrainingSettings, *,
             keep_epochs: Optional[List[int]] = None, time_rqmt: float = 100, mem_rqmt: float = 10,
             cpu_rqmt: Optional[int] = None) -> ReturnnTrainingJob:
    """A RETURNN training (not hashed: ``cpu_rqmt``, default ``gs.RETURNN_CPUS`` or 4)."""
    if cpu_rqmt is None:
        cpu_rqmt = getattr(gs, "RETURNN_CPUS", 4)
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
                            mem_rqmt=mem_rqmt, time_rqmt=time_rqmt, cpu_rqmt=getattr(gs, "RETURNN_CPUS", 2))
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
                      extern_data: Dict[str, Any], source: str = "viterbi") -> tk.Path:
    """Per-phoneme durations of a trained Glow-TTS as an HDF: ``source="viterbi"``, its Viterbi (MAS) alignment of
    the real audio (sums == the audio's frames); ``"predictor"``, its duration predictor on the text (the original's
    durations HDF; sums need not match the frames); ``"viterbi_tokens"``: the Viterbi path of a model with blanks
    per encoder token (2N+1 per utterance, blanks' frames not merged)."""
    modes = {"viterbi": ("durations", "forward_durations"), "predictor": ("predicted_durations",
                                                                          "forward_predicted_durations"),
             "viterbi_tokens": ("token_durations", "forward_token_durations")}
    if source not in modes:
        raise ValueError(f"durations source must be one of {sorted(modes)}, got {source!r}")
    mode, name = modes[source]
    cfg = _tts_forward_config(model_config, forward_data, extern_data, mode, "DurationHDFCallback")
    return forward(prefix, name, checkpoint, cfg, ["durations.hdf"]).out_files["durations.hdf"]


def train_mel_to_linear(prefix: str, datasets: Any, settings: TrainingSettings, *,
                        model_config: Optional[Any] = None, audio_key: str = "audio_features") -> Dict[str, Any]:
    """Train the original's mel-to-linear vocoder front (``pytorch_networks.mel_to_linear``: BLSTM, dB-mel -> log10
    linear magnitude, losses ``mse`` and ``log_mse``) with RETURNN on the training audio of ``datasets`` (a
    ``data.TrainingDatasets``: its train split, CV on its TTS-CV split). Only the audio streams are read (features and
    target are computed from the raw audio with the front end the TTS models use), so the job waits for no alignment
    or x-vector job. ``model_config`` (:class:`~.pytorch_networks.configs.MelToLinearConfig`) defaults to the
    original's sizes on ``experiment_setup.feature_extraction(datasets)``, the TTS models' features.

    Returns ``{"prefix", "train_job", "checkpoint", "model_config", "spectral_distance"}``: pass it as ``vocoder=`` to
    :func:`synthesize` / :func:`resynthesize`; ``spectral_distance`` (:func:`evaluate_mel_to_linear` on TTS-CV) says
    how close its magnitudes and the mel pseudo-inverse's come to the real ones.
    """
    from .config import get_training_config
    from .pytorch_networks.configs import MelToLinearConfig

    if model_config is None:
        from .experiment_setup import feature_extraction

        model_config = MelToLinearConfig(feature_extraction=feature_extraction(datasets))
    train, cv = audio_only(datasets.train, audio_key), audio_only(datasets.cv, audio_key)
    extern_data = {audio_key: datasets.extern_data[audio_key]}
    network = serialize_network(MEL_TO_LINEAR_NETWORK, model_config)
    returnn_config = get_training_config(train=train, dev=cv, extern_data=extern_data, network=network,
                                         settings=settings, audio_key=audio_key)
    job = training(prefix, returnn_config, settings, time_rqmt=24)
    checkpoint = last_checkpoint(job)
    vocoder = {"prefix": prefix, "train_job": job, "checkpoint": checkpoint, "model_config": model_config}
    vocoder["spectral_distance"] = evaluate_mel_to_linear(prefix, vocoder, cv, extern_data)
    return vocoder


def evaluate_mel_to_linear(prefix: str, vocoder: Dict[str, Any], forward_data: Dict[str, Any],
                           extern_data: Dict[str, Any]) -> tk.Path:
    """``spectral_distance.csv`` of a trained mel-to-linear net on ``forward_data`` (held-out audio): rows
    ``mel_to_linear`` and ``pseudo_inverse`` (plain Griffin-Lim's magnitude), columns ``log_spectral_distance_db``
    and ``spectral_convergence`` against the true |STFT| (``mel_to_linear.SpectralDistanceCallback``)."""
    network = serialize_network(MEL_TO_LINEAR_NETWORK, vocoder["model_config"], train=False,
                                forward_callback="SpectralDistanceCallback")
    cfg = get_forward_config(forward_data=forward_data, extern_data=extern_data, network=network)
    job = forward(prefix, "spectral_distance", vocoder["checkpoint"], cfg, ["spectral_distance.csv"])
    return job.out_files["spectral_distance.csv"]


def audio_only(dataset: Dict[str, Any], audio_key: str = "audio_features") -> Dict[str, Any]:
    """The MetaDataset reading only ``audio_key`` of ``dataset`` (same sub-dataset: segments, ordering,
    partitioning and front end), without its label, duration or x-vector streams."""
    if dataset.get("class") != "MetaDataset" or audio_key not in dataset.get("data_map", {}):
        raise ValueError(f"audio_only needs a MetaDataset with the data key {audio_key!r}, got "
                         f"{dataset.get('class')!r} with keys {sorted(dataset.get('data_map', {}))}")
    sub, data_key = dataset["data_map"][audio_key]
    return {"class": "MetaDataset", "datasets": {sub: dataset["datasets"][sub]},
            "data_map": {audio_key: (sub, data_key)}, "seq_order_control_dataset": sub}


def _vocoder_kwargs(vocoder: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """GriffinLimAudioCallback arguments of a trained mel-to-linear net; none for plain Griffin-Lim (the mel
    pseudo-inverse), so that the job ids of Griffin-Lim-only runs stay as they were."""
    if vocoder is None:
        return {}
    return {"mel_to_linear_checkpoint": vocoder["checkpoint"], "mel_to_linear_config": vocoder["model_config"]}


def synthesize(prefix: str, checkpoint: PtCheckpoint, model_config: Any, forward_data: Dict[str, Any],
               extern_data: Dict[str, Any], *, noise_scale: float = 0.66, length_scale: float = 1.0,
               gl_iter: int = 32, audio_format: str = "flac", audio_key: str = "audio_features",
               preemphasis: Union[float, None, str] = FROM_DATA, duration_source: str = "predictor",
               eval_key: Optional[str] = None, vocoder: Optional[Dict[str, Any]] = None,
               alias_suffix: str = "") -> Dict[str, tk.Path]:
    """Text -> Glow-TTS log-mel -> Griffin-Lim -> ``audio_files`` (a folder) and ``audio_files.txt`` (tag, file,
    seconds per line).

    ``vocoder``: a :func:`train_mel_to_linear` result: its net gives Griffin-Lim's magnitude (the original's
    BLSTM-GL; the alias stays ``tts_eval_gl``, the original's name for it); None: the mel pseudo-inverse.

    The audio is written so that the front end the model was trained on reads it back as the generated features
    (de-emphasised with that front end's pre-emphasis, no peak normalisation: ``GriffinLimAudioCallback``);
    ``preemphasis`` defaults to the one ``forward_data`` reads ``audio_key`` with (the TTS data's own front end).
    ``duration_source="given"``: the given durations replace the duration predictor (the oracle-durations
    control, aliased under ``tts_eval_gl_oracle_durations``). ``eval_key`` (e.g. "test-clean") adds a path part:
    ``tts_eval_gl/<eval_key>/forward`` (the original's alias of its test-clean evaluation). ``alias_suffix`` tells
    further syntheses of one model apart (e.g. "_noise_0.66" for a control temperature).
    """
    if preemphasis == FROM_DATA:
        preemphasis = front_end_preemphasis(forward_data, audio_key)
    cfg = _tts_forward_config(model_config, forward_data, extern_data, "synthesis", "GriffinLimAudioCallback",
                              {"preemphasis": preemphasis, "gl_iter": gl_iter, "audio_format": audio_format,
                               **_vocoder_kwargs(vocoder)},
                              not_needed_keys=[audio_key], noise_scale=noise_scale, length_scale=length_scale,
                              duration_source=duration_source)
    name = ("tts_eval_gl" if duration_source == "predictor" else "tts_eval_gl_oracle_durations") + alias_suffix
    if eval_key is not None:
        name = f"{name}/{eval_key}"
    job = forward(f"{prefix}/{name}", "forward", checkpoint, cfg, ["audio_files", "audio_files.txt"])
    return job.out_files


def resynthesize(prefix: str, model_config: Any, forward_data: Dict[str, Any], extern_data: Dict[str, Any], *,
                 gl_iter: int = 32, audio_format: str = "flac", audio_key: str = "audio_features",
                 vocoder: Optional[Dict[str, Any]] = None) -> Dict[str, tk.Path]:
    """Real audio -> the model's log-mel front end -> Griffin-Lim: the vocoder ceiling every sWER is compared
    with. No checkpoint: only the (parameter-free) feature extraction of ``model_config`` is used. ``vocoder``
    (a :func:`train_mel_to_linear` result) gives Griffin-Lim's magnitude, aliased ``<prefix>/resynthesis_blstm_gl``;
    None: the mel pseudo-inverse, ``<prefix>/resynthesis_gl``."""
    preemphasis = front_end_preemphasis(forward_data, audio_key)
    cfg = _tts_forward_config(model_config, forward_data, extern_data, "resynthesis", "GriffinLimAudioCallback",
                              {"preemphasis": preemphasis, "gl_iter": gl_iter, "audio_format": audio_format,
                               **_vocoder_kwargs(vocoder)})
    name = "resynthesis_gl" if vocoder is None else "resynthesis_blstm_gl"
    return forward(f"{prefix}/{name}", "forward", None, cfg, ["audio_files", "audio_files.txt"]).out_files


def front_end_preemphasis(dataset: Dict[str, Any], audio_key: str = "audio_features") -> Optional[float]:
    """The pre-emphasis with which ``dataset`` reads its audio (an error where it reads no audio files)."""
    from .data_prep.datasets import audio_options_of

    options = audio_options_of(dataset, audio_key)
    if options is None:
        raise ValueError(f"{audio_key!r} of the dataset is not read from audio files, so its pre-emphasis is unknown: "
                         f"pass preemphasis explicitly")
    return options.get("preemphasis")


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


def feature_statistics(prefix: str, model_config: Any, forward_data: Dict[str, Any],
                       extern_data: Dict[str, Any]) -> tk.Path:
    """Statistics (count, mean, var, std, max, min) of the normalised log-mel features the flow of ``model_config``
    sees on ``forward_data``: the original's "feature stats" forward, aliased ``<prefix>/forward_statistics``. No
    checkpoint: the front end has no trained parameters (the original loaded the trained model, which did not change
    the result), so the job need not wait for the training."""
    cfg = _tts_forward_config(model_config, forward_data, extern_data, "statistics", "FeatureStatsCallback")
    return forward(prefix, "forward_statistics", None, cfg, ["statistics.csv"]).out_files["statistics.csv"]


# the latents every phoneme head is scored on (the original's "phoneme_pred" and "encoder_phoneme_pred")
PHONEME_PRED_LATENTS = ("flow_z", "prior_sample")


def compute_phoneme_pred_accuracy(prefix: str, checkpoint: PtCheckpoint, model_config: Any,
                                  forward_data: Dict[str, Any], extern_data: Dict[str, Any]) -> tk.Variable:
    """Mean (over utterances) frame accuracy of the phoneme head of ``model_config`` on its ``aux_latent``,
    against the labels the model trains on (``ce_label_alignment``: given durations or its own MAS path)."""
    cfg = _tts_forward_config(model_config, forward_data, extern_data, "phoneme_accuracy", "PhonemeAccuracyCallback")
    job = forward(prefix, "forward", checkpoint, cfg, ["phoneme_accuracy.hdf"], register=False)
    mean = MeanPhonemeAccuracyJob(job.out_files["phoneme_accuracy.hdf"])
    tk.register_output(f"{prefix}/accuracy", mean.out_accuracy)
    return mean.out_accuracy


def phoneme_accuracy_baselines(prefix: str, phoneme_hdf: tk.Path, durations_hdf: tk.Path,
                               proportional_durations_hdf: tk.Path, train_segments: tk.Path, eval_segments: tk.Path,
                               *, frame_multiple: int = 1) -> Dict[str, tk.Variable]:
    """Reference points for head accuracies on the frame labels (tokens upsampled by ``durations_hdf``) of
    ``eval_segments`` (see ``jobs.phoneme_baselines``):

    * "majority_class": always the most frequent frame label of ``train_segments``;
    * "proportional_alignment": the tokens upsampled by ``proportional_durations_hdf``.

    ``frame_multiple``: only the frames a Glow-TTS flow sees count (``n_sqz``).
    """
    majority = MajorityClassAccuracyJob(phoneme_hdf, durations_hdf, train_segments, eval_segments, frame_multiple)
    proportional = AlignmentFrameAccuracyJob(phoneme_hdf, proportional_durations_hdf, durations_hdf, eval_segments,
                                             frame_multiple)
    baselines = {"majority_class": majority.out_accuracy, "proportional_alignment": proportional.out_accuracy}
    for name, value in baselines.items():
        tk.register_output(f"{prefix}/{name}", value)
    return baselines


def tts_phoneme_accuracy_baselines(prefix: str, datasets: Any, frame_multiple: int) -> Dict[str, tk.Variable]:
    """:func:`phoneme_accuracy_baselines` for heads scored on ``datasets.cv`` (TTS-CV) against the given
    durations of ``datasets`` (a ``data.TrainingDatasets``); majority class from the TTS train split."""
    from .data import get_proportional_durations

    if datasets.durations is None or datasets.phonemes is None:
        raise ValueError("phoneme accuracy baselines need datasets with given durations and TTS phonemes")
    proportional = get_proportional_durations(datasets.phonemes, datasets.feature_hdf)
    return phoneme_accuracy_baselines(prefix, datasets.phonemes, datasets.durations, proportional,
                                      datasets.train_segments, datasets.cv_segments, frame_multiple=frame_multiple)


def asr_search(prefix: str, checkpoint: PtCheckpoint, model_config: Any, forward_data: Dict[str, Any],
               extern_data: Dict[str, Any], corpus_file: tk.Path, vocab: tk.Path, lexicon: Optional[tk.Path],
               *, key: str = "dev-clean", not_needed_keys: Sequence[str] = (), eow_suffix: Optional[str] = "#",
               word_separator: Optional[str] = None, search: SearchConfig = SearchConfig(),
               prior_file: Optional[tk.Path] = None, prior_scale: float = 0.0) -> WerResult:
    """CTC recognition as ``search`` says (greedy, or lexicon-constrained beam search with an optional n-gram LM)
    -> words -> ctm -> sclite against the corpus. Returns the WER with its substitution/deletion/insertion counts;
    registers ``<prefix>/search/<key>/sclite/{wer,sub,del,ins,words,report}``. ``prior_file`` (:func:`compute_prior`):
    its log priors times ``prior_scale`` are subtracted from the log-posteriors before decoding."""
    callback_kwargs = {"vocab": vocab, "lexicon": lexicon, "eow_suffix": eow_suffix,
                       "word_separator": word_separator, "search": search}
    if prior_file is not None:
        callback_kwargs.update(prior_file=prior_file, prior_scale=prior_scale)
    network = serialize_network(ASR_NETWORK, model_config, train=False, forward_callback="SearchOutCallback",
                                forward_callback_kwargs=callback_kwargs)
    cfg = get_forward_config(forward_data=forward_data, extern_data=extern_data, network=network,
                             not_needed_keys=not_needed_keys)
    search_job = forward(f"{prefix}/search/{key}", "search_job", checkpoint, cfg, ["search_out.py"], register=False)
    ctm = SearchWordsToCtmJob(search_job.out_files["search_out.py"], corpus_file).out_ctm
    stm = CorpusToStmJob(corpus_file).out_stm
    result = WerResult.from_sclite(ScliteJob(stm, ctm, precision_ndigit=2))
    for name, value in result.variables().items():
        tk.register_output(f"{prefix}/search/{key}/sclite/{name}", value)
    tk.register_output(f"{prefix}/search/{key}/sclite/report", result.report_dir)
    return result


# ------------------------------------------------------------------------------------------- experiment runners

def tts_experiment(prefix: str, model_config: Any, datasets: Any, settings: TrainingSettings, *,
                   train_step_kwargs: Optional[Dict[str, Any]] = None, preload_from_files: Optional[Dict] = None,
                   keep_epochs: Optional[List[int]] = None, tts_eval: bool = True,
                   phoneme_pred: Optional[bool] = None, phoneme_pred_latents: Sequence[str] = PHONEME_PRED_LATENTS,
                   latent_space: bool = False, invertibility: bool = False, feature_stats: bool = False,
                   tts_eval_data: Optional[Any] = None, vocoder: Optional[Dict[str, Any]] = None,
                   noise_scale: float = 0.66, control_noise_scales: Sequence[float] = ()) -> Dict[str, Any]:
    """Train a Glow-TTS family model and evaluate it (i6 ``run_exp``).

    tts_eval: synthesise the TTS-CV split with Griffin-Lim, speakers given by ``datasets.synthesis`` (x-vector
    models: the speaker's average x-vector) -> ``result["audio"]``, ``result["audio_list"]``; with
    ``tts_eval_data`` (``experiment_setup.TtsEvalData``) its texts instead (no oracle-duration synthesis: no given
    durations), and ``result["tts_eval_reference_corpus"]`` names the texts (the sWER reference). ``vocoder``: a
    :func:`train_mel_to_linear` result for every synthesis of the model (None: Griffin-Lim on the mel pseudo-inverse).
    ``noise_scale``: the prior's temperature of every synthesis; each of ``control_noise_scales`` adds a synthesis
    of the same texts at that temperature -> ``result["audio_list_noise"][scale]`` (alias
    ``tts_eval_gl_noise_<scale>``).
    phoneme_pred (default: when the model has a head): frame accuracy of the head on the TTS-CV split, once per
    latent in ``phoneme_pred_latents`` (default: the flow output z of the real audio and the prior sample, the
    original's "phoneme_pred" and "encoder_phoneme_pred") -> ``result["phoneme_accuracy"][latent]``, plus the
    majority-class and proportional-alignment baselines -> ``result["phoneme_accuracy_baselines"]``.
    invertibility / feature_stats: statistics of the flow's round-trip error / of the features on the devtrain data
    (the original's forwards) -> ``result["invertibility"]`` / ``result["feature_statistics"]``.
    """
    from .config import get_training_config
    from .data_prep.datasets import AUDIO_KEY, DURATIONS_KEY

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
        if tts_eval_data is not None:
            forward_data, extern_data, eval_key = tts_eval_data.dataset, tts_eval_data.extern_data, tts_eval_data.key
            result["tts_eval_reference_corpus"] = tts_eval_data.reference_corpus
        else:
            forward_data, extern_data, eval_key = datasets.synthesis, datasets.extern_data, None
        synthesis = functools.partial(synthesize, prefix, checkpoint, model_config, forward_data, extern_data,
                                      audio_key=AUDIO_KEY, eval_key=eval_key, vocoder=vocoder)
        audio = synthesis(noise_scale=noise_scale)
        result["audio"], result["audio_list"] = audio["audio_files"], audio["audio_files.txt"]
        if control_noise_scales:
            result["audio_list_noise"] = {
                scale: synthesis(noise_scale=scale, alias_suffix=f"_noise_{scale}")["audio_files.txt"]
                for scale in control_noise_scales}
        # given durations: not for the alignment model (trained without them) nor the test-clean texts (none known)
        if tts_eval_data is None and DURATIONS_KEY in datasets.extern_data:
            oracle = synthesis(noise_scale=noise_scale, duration_source="given")
            result["audio_list_oracle_durations"] = oracle["audio_files.txt"]
    if phoneme_pred is None:
        phoneme_pred = model_config.phoneme_head is not None
    if phoneme_pred:
        if not phoneme_pred_latents:
            raise ValueError(f"{prefix}: phoneme_pred needs at least one latent to score the head on")
        result["phoneme_accuracy"] = {
            latent: compute_phoneme_pred_accuracy(f"{prefix}/phoneme_pred/{latent}", checkpoint,
                                                  dataclasses.replace(model_config, aux_latent=latent), datasets.cv,
                                                  datasets.extern_data)
            for latent in phoneme_pred_latents}
        result["phoneme_accuracy_baselines"] = tts_phoneme_accuracy_baselines(
            f"{prefix}/phoneme_pred/baselines", datasets, model_config.decoder.n_sqz)
    if latent_space:
        result["latent_space"] = extract_latent(prefix, checkpoint, model_config, datasets.cv, datasets.extern_data)
    if invertibility:
        result["invertibility"] = evaluate_invertibility(prefix, checkpoint, model_config, datasets.devtrain,
                                                         datasets.extern_data)
    if feature_stats:
        result["feature_statistics"] = feature_statistics(prefix, model_config, datasets.devtrain,
                                                          datasets.extern_data)
    return result


def seed_selected_tts_experiment(prefix: str, selection: SeedSelection, model_config: Any, datasets: Any,
                                 settings: TrainingSettings, *, train_step_kwargs: Optional[Dict[str, Any]] = None,
                                 **kwargs: Any) -> Dict[str, Any]:
    """:func:`tts_experiment` of the best of several seeds (``selection``): one candidate training per seed
    (``<prefix>/seed_candidates/seed_<s>``, the first ``selection.select_after_epochs`` epochs of ``settings``'
    schedule, no evaluation), the choice among them by their last epoch's ``selection.score``
    (``<prefix>/seed_candidates/selection``), and the chosen candidate continued through the schedule's remaining
    epochs and evaluated as ``tts_experiment`` does (``kwargs``). The result also holds ``seed_candidates``: per
    candidate its ``train_job`` and, as ``metrics``, its score and whether it was chosen (1/0)."""
    if kwargs.get("preload_from_files"):
        raise ValueError(f"{prefix}: a seed-selected training starts from its chosen candidate; it cannot also "
                         f"preload {sorted(kwargs['preload_from_files'])}")
    head, tail = selection.split(settings)
    trainings = {
        f"seed_{seed}": tts_experiment(f"{prefix}/seed_candidates/seed_{seed}", model_config, datasets,
                                       dataclasses.replace(settings, learning_rates=head, random_seed=seed),
                                       train_step_kwargs=train_step_kwargs, tts_eval=False, phoneme_pred=False)
        for seed in selection.seeds}
    choice = SelectBestTrainingJob({k: r["checkpoint"] for k, r in trainings.items()},
                                   {k: r["train_job"].out_learning_rates for k, r in trainings.items()},
                                   key=selection.score)
    choice.add_alias(f"{prefix}/seed_candidates/selection")
    candidates = {}
    for key, r in trainings.items():
        for name, var in (("score", choice.out_scores[key]), ("selected", choice.out_selected[key])):
            tk.register_output(f"{prefix}/seed_candidates/{key}/{name}", var)
        candidates[key] = {"prefix": r["prefix"], "train_job": r["train_job"],
                           "metrics": {f"selection_{selection.score}": choice.out_scores[key],
                                       "selected": choice.out_selected[key]}}
    kwargs["preload_from_files"] = preload("selected_seed", choice.out_checkpoint)
    result = tts_experiment(prefix, model_config, datasets, dataclasses.replace(settings, learning_rates=tail),
                            train_step_kwargs=train_step_kwargs, **kwargs)
    result["seed_candidates"] = candidates
    return result


def with_seed_candidates(results: Dict[str, Dict[str, Any]]) -> Dict[str, Dict[str, Any]]:
    """A family's results with every seed-selected experiment's candidates as experiments of their own
    (``<name>/seed_candidates/seed_<s>``), so the report shows their curves and scores next to the chosen one."""
    flat: Dict[str, Dict[str, Any]] = {}
    for name, result in results.items():
        flat[name] = result
        for key, candidate in result.get("seed_candidates", {}).items():
            flat[f"{name}/seed_candidates/{key}"] = candidate
    return flat


def asr_experiment(prefix: str, model_config: Any, train_datasets: Any, settings: TrainingSettings, *,
                   dev: Optional[Dict[str, Any]], test_dataset: Dict[str, Any], test_corpus: tk.Path,
                   vocab_labels: tk.Path, lexicon: tk.Path, target_key: str = "phonemes_eow",
                   eow_suffix: Optional[str] = "#", word_separator: Optional[str] = None,
                   preload_from_files: Optional[Dict] = None, test_key: str = "test",
                   search: SearchConfig = SearchConfig()) -> Dict[str, Any]:
    """Train a CTC ASR model (log-mel or Glow latent input) and score its recognition (``search``) with sclite.

    The result holds ``wers`` (test key -> :class:`WerResult`) and ``audio_options``, the front end its training
    data reads audio with (what ``synthetic_wer`` reads synthesised audio with)."""
    from .config import get_training_config
    from .data_prep.datasets import AUDIO_KEY, audio_options_of

    network = serialize_network(ASR_NETWORK, model_config, train_step_kwargs={"target_key": target_key})
    returnn_config = get_training_config(train=train_datasets.train, dev=dev, extern_data=train_datasets.extern_data,
                                         network=network, settings=settings,
                                         preload_from_files=preload_from_files)
    job = training(prefix, returnn_config, settings)
    checkpoint = last_checkpoint(job)
    test_keys = set(_dataset_keys(test_dataset))
    extern = {k: v for k, v in train_datasets.extern_data.items() if k in test_keys}
    wer = asr_search(prefix, checkpoint, model_config, test_dataset, extern, test_corpus, vocab_labels, lexicon,
                     key=test_key, eow_suffix=eow_suffix, word_separator=word_separator, search=search)
    return {"prefix": prefix, "train_job": job, "checkpoint": checkpoint, "model_config": model_config,
            "train_extern_data": train_datasets.extern_data, "wers": {test_key: wer},
            "audio_options": audio_options_of(train_datasets.train, AUDIO_KEY)}


def compute_prior(prefix: str, checkpoint: PtCheckpoint, model_config: Any, forward_data: Dict[str, Any],
                  extern_data: Dict[str, Any]) -> tk.Path:
    """Log label priors of a CTC model over ``forward_data`` (its training data) -> ``<prefix>/prior.txt``, the job
    aliased ``<prefix>/prior_job`` (the original's names)."""
    network = serialize_network(ASR_NETWORK, model_config, train=False, forward_callback="PriorCallback")
    cfg = get_forward_config(forward_data=forward_data, extern_data=extern_data, network=network)
    job = forward(prefix, "prior_job", checkpoint, cfg, ["prior.txt"], register=False)
    tk.register_output(f"{prefix}/prior.txt", job.out_files["prior.txt"])
    return job.out_files["prior.txt"]


def synthetic_wer(prefix: str, audio_list: tk.Path, reference_corpus: tk.Path, asr: Dict[str, Any],
                  vocab_labels: tk.Path, lexicon: tk.Path, *, key: str = "swer",
                  search: SearchConfig = SearchConfig()) -> WerResult:
    """sWER: synthesised audio recognised by a trained ASR system (``asr_experiment`` result), scored by sclite
    against the texts the audio was synthesised from, with the synthesised/real length ratio.

    The audio takes the path real audio takes: a corpus description, an ogg zip, and the ASR's own training front
    end (``asr["audio_options"]``: the same pre-emphasis, no peak normalisation)."""
    from .data_prep import datasets as ds
    from .data_prep.corpus_jobs import OggZipJob

    if asr.get("audio_options") is None:
        raise ValueError(f"{asr['prefix']}: the recogniser was not trained on audio files (no OggZip audio options), "
                         f"so synthesised audio cannot be read through its front end")
    corpus = SynthesizedCorpusJob(audio_list, reference_corpus).out_corpus
    audio = ds.ogg_zip_dataset([OggZipJob([corpus]).out_ogg_zip], audio=asr["audio_options"],
                               seq_ordering="sorted_reverse")
    dataset = ds.meta_dataset(audio, {})
    extern = {ds.AUDIO_KEY: asr["train_extern_data"][ds.AUDIO_KEY]}
    result = asr_search(prefix, asr["checkpoint"], asr["model_config"], dataset, extern, corpus, vocab_labels,
                        lexicon, key=key, search=search)
    ratio = SynthesisLengthRatioJob(audio_list, reference_corpus)
    tk.register_output(f"{prefix}/search/{key}/length_ratio", ratio.out_length_ratio)
    tk.register_output(f"{prefix}/search/{key}/mean_length_ratio", ratio.out_mean_length_ratio)
    return dataclasses.replace(result, length_ratio=ratio.out_length_ratio,
                               mean_length_ratio=ratio.out_mean_length_ratio)


def _dataset_keys(dataset: Dict[str, Any]) -> List[str]:
    if dataset.get("class") == "MetaDataset":
        return list(dataset["data_map"])
    return ["data"]
