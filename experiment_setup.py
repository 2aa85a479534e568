"""What every experiment family shares: the data, model-size presets and training presets.

One :class:`ExperimentSetup` decides where the data comes from (a real LibriSpeech tree, or the
embedded synthetic corpus) and how large models and trainings are. The experiment files are the
same for both: ``run(LIBRISPEECH)`` on a GPU cluster reproduces the original sizes, ``run(EMBEDDED)``
is the laptop-sized default run.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional, Tuple

import numpy as np

from . import data
from .config import (FUSED_OPTIMIZERS, SeedSelection, TrainingSettings, long_cooldown_lr, oclr, tri_lr,
                     warmup_cooldown_lr, warmup_decay_lr)
from .data_prep.datasets import AUDIO_KEY
from .data_prep.synthesis import DEFAULT_SUBSETS, SubsetSpec
from .data_prep.xvectors import XVectorTrainingSettings
from .pytorch_networks.configs import (AsrModelConfig, BlstmEncoderConfig, ConformerEncoderConfig,
                                       FeatureExtractionConfig, FlowDecoderConfig, GlowTTSModelConfig,
                                       MelToLinearConfig, PhonemeHeadConfig, SearchConfig, SpeakerConfig, SpecaugConfig,
                                       TextEncoderConfig)
from .sisyphus_api import tk


@dataclass(frozen=True)
class ExperimentSetup:
    name: str
    librispeech_root: Optional[str] = None  # None: the embedded synthetic corpus
    train_subset: str = "train-clean-100"
    asr_dev_subsets: Tuple[str, ...] = ("dev-clean",)
    asr_test_subset: str = "dev-other"
    # TTS evaluation: True synthesises the TTS-CV split (the original's regime until April 2024, where its NISQA
    # figures come from); False the texts of ``tts_eval_subset`` (its HEAD: test-clean) with the unseen speakers'
    # average x-vectors (x-vector models; speaker-embedding models cannot represent unseen speakers and stay on TTS-CV)
    tts_eval_subset_is_cv: bool = True
    tts_eval_subset: str = "test-clean"
    # The BLSTM recognisers on the frozen flow output of the 2-step family (the original's blstm_2ndstep runs): True
    # scores them on the TTS-CV split (utterances of the training speakers); False on ``asr_test_subset`` with the
    # x-vectors of the training x-vector model, as the Conformer on the latent (LibriSpeech: dev-other, the original's)
    latent_blstm_eval_is_cv: bool = True
    model_scale: str = "full"  # "full" (the original's sizes) or "tiny"
    epoch_divisor: int = 1  # a recipe of N epochs trains max(1, N // epoch_divisor)
    batch_size_seconds: float = 300.0
    max_seq_length_seconds: float = 25.0
    max_seqs: int = 60
    dev_per_speaker: int = 4
    devtrain_size: int = 3000
    core_only: bool = False  # run only each family's core experiments
    embedded_subsets: Optional[Tuple[SubsetSpec, ...]] = None  # size of the embedded corpus (None: default)
    xvector_settings: XVectorTrainingSettings = XVectorTrainingSettings()
    # Short CTC trainings only leave the all-blank plateau with a constant, high learning rate: when set, the
    # ASR trainings run this many epochs of Adam at 1e-3 instead of their recipe's schedule.
    asr_constant_lr_epochs: Optional[int] = None
    # The alignment model's own epoch budget (None: its recipe's epochs / epoch_divisor). Every given duration and
    # aux label downstream comes from its Viterbi alignment, so laptop-sized runs give it more epochs than the rest.
    alignment_epochs: Optional[int] = None
    # The batches of every Glow-TTS training, the alignment model's included (None: the setup's
    # ``batch_size_seconds`` / ``max_seqs``; set by :func:`training_settings`, which also sets the TTS schedules).
    # What short trainings lack is updates more than epochs: on the embedded corpus the alignment model's
    # boundaries after 20 epochs of 40 s / 16-utterance batches (780 updates) were 64 % within 50 ms of flite's,
    # of 20 s / 8 (1,600 updates) 89 %, of 10 s / 4 (3,700 updates) 92 %; 40 s / 16 after 20 of 40 epochs (780
    # updates, the learning rate still high) 69 %. With 10 s / 4 that model spoke (45 % sWER, length ratio 1.00)
    # while the TTS models of 800-1,600 updates on 20 s / 8 did not (95-97 %, length ratio 0.47-0.72).
    tts_batch_size_seconds: Optional[float] = None
    tts_max_seqs: Optional[int] = None
    # DNSMOS judges each speaker's first this many utterances of an audio set (None: all). On the default run's 7
    # audio sets (112 utterances each) the means of the first 4 per speaker (32) were within 0.03 of all 112
    # (P.808 MOS; per-utterance SD 0.07-0.26), ranking unchanged, for 2/7 of the 30 CPU minutes.
    dnsmos_utterances_per_speaker: Optional[int] = None
    # Laptop-sized TTS trainings: Adam with a short warm-up to this peak and a linear decay instead of the recipe's
    # schedule, and gradient clipping (official Glow-TTS clips at 5). None: the recipe's own schedule.
    tts_peak_lr: Optional[float] = None
    tts_gradient_clip: Optional[float] = None
    # Prior with a learnt mean only (official Glow-TTS' default; the original setup learnt the variance too). With a
    # learnt variance, early MAS lets single tokens widen their Gaussians and absorb most frames; on short trainings
    # that collapse never recovers. None: each recipe's own choice.
    tts_mean_only: Optional[bool] = None
    # Blank tokens between the phonemes of every Glow-TTS that aligns with MAS (``GlowTTSModelConfig.add_blank``,
    # official Glow-TTS' ``add_blank``; the original's models have none). Off: the recipe's models as they were.
    tts_add_blank: bool = False
    # With ``tts_add_blank``: the given-alignment models (exp_joint_flow_ga, the 2-step first step) get blanks too and
    # train on the alignment model's whole Viterbi path, blanks included (``GlowTTSModelConfig.given_token_durations``,
    # the ``token_durations`` stream); their CE labels stay the per-phoneme durations of the same path. Off: they have
    # no blanks and train on the per-phoneme durations (the blanks' frames merged onto their neighbours). Needs
    # ``durations_source="viterbi"`` (a duration predictor's output places no blank in the audio).
    tts_given_token_durations: bool = False
    # With ``tts_add_blank``: the aux CE of every Glow-TTS trained with a head on the prior sample (exp_joint's and
    # exp_joint_flow_ga's v2 models, the 2-step first step) leaves out the frames its path puts on a blank
    # (``GlowTTSModelConfig.ce_skip_blank_frames``): there the latent is the blank's mean while the label is a
    # neighbouring phoneme. Frozen probes keep every frame. Off: the CE covers every frame.
    tts_ce_skip_blank_frames: bool = False
    # The core models that align with MAS (exp_tts' x-vector model, exp_joint's) as the best of several short
    # trainings with other random seeds, continued (``config.SeedSelection``). None: one training with RETURNN's
    # default seed, as in the recipe.
    tts_seed_selection: Optional[SeedSelection] = None
    # The epoch budget of the core Glow-TTS models whose synthesis the sWER targets judge: exp_tts' x-vector model,
    # exp_joint's and exp_joint_flow_ga's core models (None: each recipe's epochs / epoch_divisor).
    tts_core_epochs: Optional[int] = None
    # TextEncoderConfig fields of the same core models (and of the frozen probe on exp_tts' core model, which loads
    # its weights), e.g. (("hidden_channels", 128), ("n_layers", 4)); empty: the setup's sizes for every model.
    tts_core_text_encoder: Tuple[Tuple[str, Any], ...] = ()
    # Trainings whose optimizer torch fuses (Adam: the laptop TTS schedules and the constant-LR presets of CTC models
    # and probes, not the recipe's RAdam) use the fused implementation (``TrainingSettings.fused_optimizer``): same
    # update rule, one kernel instead of ~8 per parameter tensor. Measured on one thread: 4.6 vs 16 ms per step for
    # 0.6 M parameters in 300 tensors (the embedded Glow-TTS' size), 15 vs 86 ms for 10.5 M. Off by default: it
    # changes those trainings' hashes (the full-size graph keeps the original's ids).
    fused_optimizer: bool = False
    # Recognition (every WER and sWER): "beam" = lexicon-constrained CTC beam search with a word n-gram LM, the file
    # ``recognition_lm_file`` (e.g. LibriSpeech's 4-gram ARPA) or, when None, an n-gram of ``recognition_lm_order``
    # estimated from the training transcripts; "greedy" = best path, the fast option.
    recognition_decoder: str = "beam"
    recognition_lm_file: Optional[str] = None
    recognition_lm_order: int = 3
    recognition_lm_weight: float = 2.0  # times log10 LM probabilities (flashlight/KenLM convention)
    recognition_word_score: float = 0.0
    recognition_beam_size: int = 50
    # Likewise for the phoneme probes on a frozen Glow-TTS (only the head trains, so epochs are cheap): the
    # recipe's shortened RAdam "tri" schedule moves the head's weights by ~3e-3 in total, so it stays at its
    # random initialisation and scores below the majority class. When set, probes run this many epochs of
    # Adam at 1e-3 instead.
    probe_constant_lr_epochs: Optional[int] = None
    # pocketsphinx as a second recogniser of every TTS model's audio (always on the real and resynthesised audio;
    # its search is bounded, ``jobs.judges.PocketsphinxSearch``, so it costs a few CPU minutes per model).
    pocketsphinx_on_synthesis: bool = True
    prefix: str = "experiments/librispeech/joint_training/given_alignments/raw_audio"
    # Where the given durations come from: "viterbi" (the alignment Glow-TTS' MAS path of the real audio, validated
    # to sum to the frames) or "predictor" (its duration predictor on the text, the original's durations HDF: only
    # count, sign and finiteness are validated, the models' paths cut or pad them to the frames).
    durations_source: str = "viterbi"
    # Alias root of exp_tts (None: ``<prefix>/TTS_only``); the LibriSpeech setup uses the original's own root.
    tts_only_prefix: Optional[str] = None
    # Griffin-Lim's magnitude in every TTS synthesis (``synthesis_vocoder``): "griffin_lim" (the pseudo-inverse of the
    # mel filter bank, no training) or "mel_to_linear" (the original's trained BLSTM, ``mel_to_linear_vocoder``).
    # Set it to the one with the lower resynthesis sWER (the controls report both).
    vocoder: str = "griffin_lim"
    # The prior's temperature (standard deviation of the noise added to its means) in every TTS synthesis. 0.66: the
    # original's and official Glow-TTS' inference default; the Glow-TTS paper (Kim et al. 2020) reports its MOS at
    # 0.333. ``tts_control_noise_scales``: every synthesising model is also synthesised (and judged by sWER)
    # at these temperatures, so that the report shows what the choice is worth.
    tts_noise_scale: float = 0.66
    tts_control_noise_scales: Tuple[float, ...] = ()

    def epochs(self, n: int) -> int:
        return max(1, n // self.epoch_divisor)

    @property
    def tiny(self) -> bool:
        return self.model_scale == "tiny"


def librispeech(root: str, **kwargs) -> ExperimentSetup:
    """The original setup's sizes on a real LibriSpeech tree (``root`` holds ``train-clean-100`` etc.), every run under
    the original's alias path (exp_tts under the original's ``TTS_only/v2/raw_audio`` root)."""
    kwargs.setdefault("tts_only_prefix", "experiments/librispeech/TTS_only/v2/raw_audio")
    kwargs.setdefault("tts_eval_subset_is_cv", False)  # the original's HEAD synthesises test-clean
    kwargs.setdefault("latent_blstm_eval_is_cv", False)  # the original scored its blstm_2ndstep runs on dev-other
    return ExperimentSetup("librispeech", librispeech_root=root, **kwargs)


# The embedded corpus of the default run: 8 training voices (4 flite, 4 espeak-ng) with 60 utterances each, of which
# 14 per voice are the TTS-CV split (112 utterances, about 1,080 words), and 2 unseen voices with 56 test utterances
# each (112 utterances) as test-clean: large enough that one utterance moves a WER by about 0.1 points, not 5.
EMBEDDED_SUBSETS = (
    SubsetSpec("train-clean-100", ("1001", "1002", "1003", "1004", "1005", "1006", "1007", "1008"), 60),
    SubsetSpec("dev-clean", ("2001", "2002"), 10),
    SubsetSpec("test-clean", ("3001", "3002"), 56),
)

EMBEDDED = ExperimentSetup(
    "embedded",
    asr_dev_subsets=("dev-clean",),
    asr_test_subset="test-clean",
    model_scale="tiny",
    epoch_divisor=10,
    # On 2 cores the trainings are short in updates, not in data passes: smaller batches give more updates for about
    # 1.5x the time per epoch. The log-mel recogniser's test-clean WER (unseen voices) after its 30 epochs was
    # 37.5 % with 40 s / 16-utterance batches, 32.4 % with 20 s / 8.
    batch_size_seconds=20.0,
    max_seq_length_seconds=15.0,
    max_seqs=8,
    dev_per_speaker=14,
    devtrain_size=16,
    core_only=True,
    embedded_subsets=EMBEDDED_SUBSETS,
    asr_constant_lr_epochs=30,
    alignment_epochs=20,
    tts_batch_size_seconds=10.0,
    tts_max_seqs=4,
    dnsmos_utterances_per_speaker=4,
    tts_peak_lr=1e-3,
    tts_gradient_clip=5.0,
    tts_mean_only=True,
    # MAS phoneme boundaries of the 240 flite training utterances within 50 ms of flite's (the proportional baseline:
    # 31.1 %), side runs on the default run's data: the exp_tts core model after its 10 epochs, seeds 42 / 1 / 7,
    # without blanks 30.7 / 24.7 / 84.4 % (MAS settled for seed 7 only), with blanks 59.6 / 90.1 / 78.8 %; the
    # alignment model (20 epochs, seed 42) 91.2 % without, 91.4 % with blanks, and no phoneme of 1 frame (18 %).
    tts_add_blank=True,
    # exp_joint_flow_ga's core model (40 epochs, 128 x 4 text encoder) trained on the alignment model's whole path,
    # blanks included, instead of per-phoneme durations without blanks; side runs on the work dir of the default run
    # of 37c0a9f (same recogniser, real-audio WER 6.5 %), sWER at temperature 0.333, seeds 42 / 1: 14.2 / 11.4 % with
    # blanks, 21.0 / 28.5 % without (at 0.66, seed 42: 18.0 % / 24.7 %). Without the aux CE (scale 0): 18.3 / 18.0 %
    # with blanks, 51.7 % (seed 42) without; CE scale 1.0 instead of 0.1: 26.4 % with blanks, 20.6 % without.
    tts_given_token_durations=True,
    # exp_joint_flow_ga's core model as above (blanks on the whole path), its aux CE without the frames on blanks;
    # side runs on the work dir of the default run of c39c7b0 (same recogniser, real-audio WER 6.5 %), sWER at 0.333,
    # seeds 42 / 1: 10.8 / 9.9 % without, 14.2 / 11.4 % with the blank frames.
    tts_ce_skip_blank_frames=True,
    # The exp_tts core model and its two 10-epoch replicates (seeds 42 / 1 / 7; default run of d017175: sWER 95.9 /
    # 49.6 / 92.5 %, boundaries within 50 ms 59.6 / 90.1 / 78.8 % in side runs) become three 5-epoch candidates,
    # the best continued. exp_joint (MAS too) is selected the same way, so the aux loss is compared on equal terms.
    tts_seed_selection=SeedSelection(seeds=(42, 1, 7), select_after_epochs=5),
    # sWER of the exp_tts core model (selected seed, same recogniser, default run of 0daaaaa and side runs on its
    # work dir): 34.9 % after 20 epochs, 21.7 % after 40, 20.7 % after 80; exp_joint_flow_ga 37.0 % after 20,
    # 28.3 % after 80. A flow decoder of twice the width (128 channels): 34.2 % after 20 epochs, 22.2 % after 40;
    # twice the width and twice the blocks after 40: 22.8 %.
    tts_core_epochs=40,
    # The core models' text encoder twice as wide and deep as the tiny setups' 64 x 2 layers; the flow decoder and
    # every other model stay laptop-sized. sWER at temperature 0.333 / 0.66 after 40 epochs, side runs on the default
    # run of 330b8f0 (same recogniser, real-audio WER 6.5 %; one training each):
    #   exp_joint_flow_ga: 64 x 2 (filter 128, dp filter 64) 26.7 / 31.7 %; 128 x 4 21.0 / 24.7 % (80 epochs:
    #   17.4 / 26.1 %); 192 x 4 (filter 768, dp 256) 17.0 / 22.6 %; 192 x 6 (filter 768, dp 256: the original's
    #   "enc768") 15.6 / 20.6 %, at 3x the training time of 64 x 2 (17.3 vs 5.6 min per 40 epochs, 128 x 4: 7.7).
    #   exp_tts (seed selected): 64 x 2 12.4 / 21.7 % (seed 1); 128 x 4 12.2 / 20.0 % (seed 1); 192 x 6 15.5 / 20.4 %
    #   (seed 7).
    tts_core_text_encoder=(("hidden_channels", 128), ("n_layers", 4)),
    probe_constant_lr_epochs=20,
    fused_optimizer=True,
    # LM weight tuned on dev-clean (voices 2001/2002, 20 utterances, 175 words) with the log-mel recogniser of the
    # default run, grid LM weight {1, 2, 3} x word score {0, 1, 2, 4}: 58.9 % at (1, 0) and (1, 1), 61.1 % at (2, 1),
    # 62.3 % at (3, 4); the tie is broken towards the untuned word score 0.
    recognition_lm_weight=1.0,
    # Resynthesis sWER of the TTS-CV split (log-mel recogniser, LM weight 2): Griffin-Lim on the mel pseudo-inverse
    # 15.7 %, on the trained mel-to-linear BLSTM (5 epochs) 59.4 %; with LM weight 1 and twice the updates per epoch
    # (the default run of fb1a942) 10.3 % and 21.8 %: the pseudo-inverse it is.
    vocoder="griffin_lim",
    # sWER of the trained core models of the default run of 330b8f0 (same recogniser, same checkpoints, only the
    # synthesis temperature changed): exp_tts 21.7 % at 0.66, 12.4 % at 0.333, 8.9 % at 0; exp_joint_flow_ga 31.7 /
    # 26.7 / 23.8 %. The sampled noise, not the means, is most of the tiny models' error; the report keeps 0.66.
    tts_noise_scale=0.333,
    tts_control_noise_scales=(0.66,),
    prefix="experiments/embedded/joint_training/given_alignments",
    xvector_settings=XVectorTrainingSettings(learning_rates=(1e-3,) * 8, batch_size_seconds=60.0, max_seqs=16,
                                             channels=64, pooling_channels=128, embedding_dim=64),
)


# ------------------------------------------------------------------------------------------- data

@dataclass
class SetupData:
    root: tk.Path
    base: data.TrainingDatasets  # without durations: for the alignment (reference) Glow-TTS
    tts: data.TrainingDatasets  # with given durations and x-vectors
    asr: data.TrainingDatasets  # audio + phonemes_eow, ASR CV
    asr_test: Tuple[Dict, tk.Path]  # (dataset, reference corpus) for WER
    durations: tk.Path
    # embedded corpus only (flite's own phone timings are the ground truth; None on LibriSpeech):
    reference_durations: Optional[tk.Path] = None  # flite utterances only
    tts_oracle: Optional[data.TrainingDatasets] = None  # given durations = flite's where known, else Viterbi
    alignment_quality: Dict[str, data.AlignmentQuality] = field(default_factory=dict)  # "viterbi", "proportional"
    given_durations: Optional[tk.Path] = None  # the durations HDF before validation (input of further datasets)
    # the same path per encoder token, blanks included, before validation (``tts_given_token_durations`` only)
    given_token_durations: Optional[tk.Path] = None


#: Built data per (setup, durations_from): everything ``get_data``'s result depends on (the graph itself aside,
#: which :func:`clear_data_cache` is for). Keyed by the setup alone, a second call with other durations silently
#: returned the first call's datasets.
_DATA_CACHE: Dict[Tuple[ExperimentSetup, Callable], SetupData] = {}
_BASE_CACHE: Dict[ExperimentSetup, data.TrainingDatasets] = {}


def clear_data_cache() -> None:
    """Forget built datasets (after the job graph itself was reset, e.g. between tests)."""
    _DATA_CACHE.clear()
    _BASE_CACHE.clear()


def librispeech_root(setup: ExperimentSetup) -> tk.Path:
    if setup.librispeech_root is not None:
        return tk.Path(setup.librispeech_root)
    return data.get_embedded_librispeech_root(subsets=_embedded_subsets(setup))


def _embedded_subsets(setup: ExperimentSetup) -> Tuple[SubsetSpec, ...]:
    return setup.embedded_subsets if setup.embedded_subsets is not None else DEFAULT_SUBSETS


def dataset_settings(setup: ExperimentSetup, partition_epoch: int = 1, **kwargs) -> data.TrainingDatasetSettings:
    return data.TrainingDatasetSettings(partition_epoch=partition_epoch, dev_per_speaker=setup.dev_per_speaker,
                                        devtrain_size=setup.devtrain_size, **kwargs)


def base_datasets(setup: ExperimentSetup) -> data.TrainingDatasets:
    """The setup's training datasets without durations (``SetupData.base``): what the alignment model and the
    vocoder train on. Built on its own (not through :func:`get_data`) because the durations are computed from it:
    the alignment model's synthesis may use the trained vocoder, which must not need the durations."""
    if setup not in _BASE_CACHE:
        _BASE_CACHE[setup] = data.build_training_datasets(
            librispeech_root(setup), dataset_settings(setup, use_durations=False), asr_dev_subsets=(),
            train_subset=setup.train_subset, xvector_settings=setup.xvector_settings)
    return _BASE_CACHE[setup]


def get_data(setup: ExperimentSetup, durations_from: Optional[Callable] = None) -> SetupData:
    """All datasets of a setup; durations come from ``durations_from(setup, base_datasets)`` (a Viterbi
    forward of the alignment Glow-TTS, see exp_tts) and are validated against phonemes and features.

    On the embedded corpus the durations are also measured against flite's own phone timings (and against the
    proportional placeholder as the baseline), and an "oracle" TTS dataset uses flite's timings as the given
    alignment."""
    if durations_from is None:
        from .exp_tts.experiment import alignment_durations as durations_from
    key = (setup, durations_from)
    if key in _DATA_CACHE:
        return _DATA_CACHE[key]
    root = librispeech_root(setup)
    common = dict(train_subset=setup.train_subset, xvector_settings=setup.xvector_settings)
    base = base_datasets(setup)
    durations = durations_from(setup, base)
    token_durations = None
    if setup.tts_given_token_durations:
        if not setup.tts_add_blank or setup.durations_source != "viterbi":
            raise ValueError("tts_given_token_durations needs tts_add_blank and durations_source='viterbi' (got "
                             f"tts_add_blank={setup.tts_add_blank}, durations_source={setup.durations_source!r})")
        token_durations = durations_from(setup, base, per_token=True)
    tts = data.build_training_datasets(root, dataset_settings(setup), asr_dev_subsets=(), durations_file=durations,
                                       durations_sum_to_frames=setup.durations_source == "viterbi",
                                       token_durations_file=token_durations, **common)
    asr = data.build_asr_training_datasets(root, dataset_settings(setup, use_durations=False, use_xvectors=False),
                                           asr_dev_subsets=setup.asr_dev_subsets, **common)
    asr_test = data.build_test_dataset(root, setup.asr_test_subset)
    result = SetupData(root, base, tts, asr, asr_test, tts.durations, given_durations=durations,
                       given_token_durations=token_durations)
    if setup.librispeech_root is None:
        _add_reference_alignment(setup, result, common)
    _DATA_CACHE[key] = result
    return result


def _add_reference_alignment(setup: ExperimentSetup, d: SetupData, common: Dict) -> None:
    """flite's reference durations, the alignment quality of the Viterbi and the proportional durations, and the
    oracle dataset (embedded corpus only).

    With ``durations_source="predictor"`` the given durations come from the duration predictor and need not add up
    to the audio's frames: they place no boundary in the audio, so they are not compared with flite's, and there is
    no oracle dataset (its fallback for the espeak-ng utterances would be those durations)."""
    segments = data.get_embedded_flite_segments(subsets=_embedded_subsets(setup))
    d.reference_durations = data.get_reference_durations(d.root, segments, setup.train_subset)
    proportional = data.get_proportional_durations(data.get_tts_phonemes(d.root, setup.train_subset),
                                                   d.base.feature_hdf)
    viterbi = setup.durations_source == "viterbi"
    for name, durations in ((("viterbi", d.durations),) if viterbi else ()) + (("proportional", proportional),):
        d.alignment_quality[name] = data.get_alignment_quality(
            durations, d.reference_durations, d.root, setup.train_subset,
            alias=f"{setup.prefix}/alignment_quality/{name}")
    if not viterbi:
        return
    oracle = data.get_oracle_durations(d.root, segments, d.durations, setup.train_subset)
    d.tts_oracle = data.build_training_datasets(d.root, dataset_settings(setup), asr_dev_subsets=(),
                                                durations_file=oracle, **common)


def tts_datasets(setup: ExperimentSetup, partition_epoch: int = 1) -> data.TrainingDatasets:
    """The TTS datasets of :func:`get_data` (given durations, x-vectors) with another partition epoch of the
    training data (the original's block-1 joint runs: 3)."""
    d = get_data(setup)
    if partition_epoch == 1:
        return d.tts
    return data.build_training_datasets(d.root, dataset_settings(setup, partition_epoch=partition_epoch),
                                        asr_dev_subsets=(), durations_file=d.given_durations,
                                        durations_sum_to_frames=setup.durations_source == "viterbi",
                                        token_durations_file=d.given_token_durations,
                                        train_subset=setup.train_subset, xvector_settings=setup.xvector_settings)


@dataclass(frozen=True)
class TtsEvalData:
    """What a TTS model synthesises for its evaluation (``pipeline.tts_experiment(tts_eval_data=...)``)."""

    key: str  # alias part: ``<prefix>/tts_eval_gl/<key>/forward``
    dataset: Dict
    extern_data: Dict
    reference_corpus: tk.Path  # texts of the synthesised utterances (sWER reference)


def tts_eval_data(setup: ExperimentSetup, speaker_mode: str) -> Optional[TtsEvalData]:
    """The test-clean evaluation set of an x-vector model when ``setup.tts_eval_subset_is_cv`` is False; None:
    synthesise the TTS-CV split (``datasets.synthesis``), as for every speaker-embedding model."""
    if setup.tts_eval_subset_is_cv or speaker_mode != "xvector":
        return None
    d = get_data(setup)
    dataset = data.build_tts_eval_dataset(d.root, setup.tts_eval_subset, d.tts, setup.xvector_settings)
    extern = {k: v for k, v in d.tts.extern_data.items() if k in (AUDIO_KEY, "phonemes", "xvectors")}
    return TtsEvalData(setup.tts_eval_subset, dataset, extern, data.get_corpus(d.root, setup.tts_eval_subset))


@dataclass(frozen=True)
class LatentAsrData:
    """Data of a recogniser on an x-vector Glow-TTS latent trained as the original's Conformer (second_step_asr)."""

    train: data.TrainingDatasets  # audio, phonemes_eow, per-utterance x-vectors; TTS train split, partition epoch 3
    dev: Dict  # the ASR dev subsets with their x-vectors
    test: Dict  # ``asr_test_subset`` (LibriSpeech: dev-other) with its x-vectors
    test_corpus: tk.Path


def latent_asr_data(setup: ExperimentSetup, partition_epoch: int = 3) -> LatentAsrData:
    """:class:`LatentAsrData`; dev and test x-vectors come from the training x-vector model (the original computed
    them from the audio inside the model)."""
    from .data_prep.datasets import PHONEMES_EOW_KEY, XVECTOR_KEY

    d = get_data(setup)
    train = data.build_training_datasets(
        d.root, dataset_settings(setup, partition_epoch=partition_epoch, use_durations=False),
        keys=(AUDIO_KEY, PHONEMES_EOW_KEY, XVECTOR_KEY), asr_dev_subsets=(), train_subset=setup.train_subset,
        xvector_settings=setup.xvector_settings)
    dev_xvectors = data.get_subset_xvectors(d.root, setup.asr_dev_subsets, d.tts, setup.xvector_settings)
    return LatentAsrData(train, data.build_asr_eval_dataset(d.root, setup.asr_dev_subsets, xvectors=dev_xvectors),
                         *latent_asr_test_data(setup))


def latent_asr_test_data(setup: ExperimentSetup) -> Tuple[Dict, tk.Path]:
    """``(dataset, reference corpus)`` of ``asr_test_subset`` (LibriSpeech: dev-other) with the x-vectors of the
    training x-vector model: where every recogniser on an x-vector Glow-TTS latent is scored (no targets)."""
    d = get_data(setup)
    test_xvectors = data.get_subset_xvectors(d.root, [setup.asr_test_subset], d.tts, setup.xvector_settings)
    return (data.build_asr_eval_dataset(d.root, [setup.asr_test_subset], xvectors=test_xvectors, with_targets=False),
            data.get_corpus(d.root, setup.asr_test_subset))


def cv_reference_corpus(setup: ExperimentSetup) -> tk.Path:
    """The corpus description of the TTS-CV split (reference texts for WERs on it)."""
    from .jobs.scoring import FilterCorpusJob

    d = get_data(setup)
    return FilterCorpusJob(data.get_corpus(d.root, setup.train_subset), d.tts.cv_segments).out_corpus


def recognition_lexicon(setup: ExperimentSetup) -> tk.Path:
    """Lexicon of every subset a recogniser is trained or scored on (maps phoneme sequences back to words)."""
    d = get_data(setup)
    subsets = {setup.train_subset, setup.asr_test_subset, *setup.asr_dev_subsets}
    return data.get_lexicon([data.get_corpus(d.root, s) for s in sorted(subsets)])


def recognition_lm(setup: ExperimentSetup) -> tk.Path:
    """The word n-gram LM of the recogniser: ``setup.recognition_lm_file`` where given, else an interpolated
    Witten-Bell n-gram (ARPA) of the ASR training transcripts (TTS train split only: the TTS-CV texts are evaluation
    data), with every recognition-lexicon word in its vocabulary."""
    if setup.recognition_lm_file is not None:
        return tk.Path(setup.recognition_lm_file)
    from .data_prep.lm_jobs import NgramLmFromCorpusJob
    from .jobs.scoring import FilterCorpusJob

    d = get_data(setup)
    texts = FilterCorpusJob(data.get_corpus(d.root, setup.train_subset), d.asr.train_segments).out_corpus
    job = NgramLmFromCorpusJob([texts], lexicon=recognition_lexicon(setup), order=setup.recognition_lm_order)
    job.add_alias(f"{setup.prefix}/recognition_lm")
    tk.register_output(f"{setup.prefix}/recognition_lm/lm.arpa", job.out_arpa)
    return job.out_arpa


def recognition_search(setup: ExperimentSetup, decoder: Optional[str] = None) -> SearchConfig:
    """How every recogniser of the setup decodes (``pipeline.asr_search(..., search=...)``); ``decoder`` overrides
    ``setup.recognition_decoder`` ("greedy" or "beam")."""
    decoder = decoder or setup.recognition_decoder
    if decoder == "greedy":
        return SearchConfig()
    return SearchConfig(decoder="beam", beam_size=setup.recognition_beam_size, lm_file=recognition_lm(setup),
                        lm_weight=setup.recognition_lm_weight, word_score=setup.recognition_word_score)


# ------------------------------------------------------------------------------------------- models

def feature_extraction(datasets: data.TrainingDatasets) -> FeatureExtractionConfig:
    """The original's dB-mel front end, normalised with the TTS-train mean/std (resolved when written)."""
    s = datasets.feature_settings
    return FeatureExtractionConfig(sample_rate=s.sample_rate, win_size=s.win_size, hop_size=s.hop_size,
                                   f_min=s.f_min, f_max=s.f_max, min_amp=s.min_amp, num_filters=s.num_filters,
                                   center=s.center, norm=datasets.feature_norm)


def text_encoder(setup: ExperimentSetup, datasets: data.TrainingDatasets, filter_channels: int = 768,
                 **kwargs) -> TextEncoderConfig:
    if setup.tiny:
        kwargs = {"hidden_channels": 64, "filter_channels_dp": 64, "n_layers": 2, **kwargs}
        filter_channels = max(64, filter_channels // 6)
    return TextEncoderConfig(n_vocab=datasets.tts_vocab.size, filter_channels=filter_channels, **kwargs)


def flow_decoder(setup: ExperimentSetup, p_dropout: float = 0.05, n_blocks: int = 12, **kwargs) -> FlowDecoderConfig:
    if setup.tiny:
        kwargs = {"hidden_channels": 64, "n_layers": 2, **kwargs}
        n_blocks = max(2, n_blocks // 4)
    return FlowDecoderConfig(p_dropout=p_dropout, n_blocks=n_blocks, **kwargs)


def speaker(setup: ExperimentSetup, datasets: data.TrainingDatasets, mode: str = "xvector", gin_channels: int = 256,
            bottleneck: bool = True) -> SpeakerConfig:
    xvector_dim = datasets.extern_data.get("xvectors", {}).get("shape", (None, 512))[-1]
    if setup.tiny:
        gin_channels = xvector_dim if (mode == "xvector" and not bottleneck) else 32
    return SpeakerConfig(mode=mode, n_speakers=datasets.speaker_labels.num_speakers, gin_channels=gin_channels,
                         xvector_dim=xvector_dim, bottleneck=bottleneck)


def phoneme_head(setup: ExperimentSetup, head_type: str = "ffn") -> PhonemeHeadConfig:
    if setup.tiny:
        return PhonemeHeadConfig(head_type=head_type, n_channels=64, n_layers=2)
    return PhonemeHeadConfig(head_type=head_type)


def glow_tts(setup: ExperimentSetup, datasets: data.TrainingDatasets, *, core: bool = False,
             speaker_mode: str = "xvector",
             gin_channels: int = 256, bottleneck: bool = True, filter_channels: int = 768,
             decoder_dropout: float = 0.05, n_blocks: int = 12, mean_only: bool = False,
             encoder_type: str = "transformer", encoder_options: Optional[Dict] = None,
             decoder_options: Optional[Dict] = None, **model_kwargs) -> GlowTTSModelConfig:
    """A Glow-TTS family config; ``model_kwargs`` set alignment, head, aux latent, freezing, ...;
    ``encoder_options``/``decoder_options`` further TextEncoderConfig/FlowDecoderConfig fields. ``core``: one of
    the core models the sWER targets judge, whose text encoder takes ``setup.tts_core_text_encoder``."""
    if "phoneme_head" in model_kwargs and model_kwargs["phoneme_head"] is not None:
        model_kwargs.setdefault("label_target_size", datasets.tts_vocab.size)
    if setup.tts_mean_only is not None:
        mean_only = setup.tts_mean_only
    # a model trained on given durations has blanks only with the alignment's whole path (tts_given_token_durations);
    # a frozen probe passes its frozen model's choice
    alignment = model_kwargs.get("alignment", "mas")
    given_tokens = (setup.tts_given_token_durations and alignment == "given"
                    and not model_kwargs.get("freeze_glowtts", False))
    model_kwargs.setdefault("add_blank", setup.tts_add_blank and (alignment == "mas" or given_tokens))
    if given_tokens:
        model_kwargs.setdefault("given_token_durations", True)
    if (setup.tts_ce_skip_blank_frames and model_kwargs["add_blank"] and model_kwargs.get("phoneme_head") is not None
            and model_kwargs.get("aux_latent") == "prior_sample" and not model_kwargs.get("freeze_glowtts", False)):
        model_kwargs.setdefault("ce_skip_blank_frames", True)
    encoder = text_encoder(setup, datasets, filter_channels, mean_only=mean_only, encoder_type=encoder_type,
                           **(encoder_options or {}))
    if core:
        encoder = dataclasses.replace(encoder, **dict(setup.tts_core_text_encoder))
    return GlowTTSModelConfig(
        text_encoder=encoder,
        decoder=flow_decoder(setup, decoder_dropout, n_blocks, **(decoder_options or {})),
        speaker=speaker(setup, datasets, speaker_mode, gin_channels, bottleneck),
        feature_extraction=feature_extraction(datasets),
        **model_kwargs,
    )


def specaug() -> SpecaugConfig:
    return SpecaugConfig(repeat_per_n_frames=100, max_dim_time=20, num_repeat_feat=5, max_dim_feat=8)


def blstm_encoder(setup: ExperimentSetup) -> BlstmEncoderConfig:
    return BlstmEncoderConfig(n_channels=128, n_layers=2) if setup.tiny else BlstmEncoderConfig()


def conformer_encoder(setup: ExperimentSetup) -> ConformerEncoderConfig:
    if setup.tiny:
        return ConformerEncoderConfig(conformer_size=64, num_layers=2, num_heads=2, ff_dim=128, conv_kernel_size=7,
                                      frontend_channels=(8, 16, 16, 8))
    return ConformerEncoderConfig()


def asr_model(setup: ExperimentSetup, datasets: data.TrainingDatasets, encoder, *, label_target_size: int,
              glowtts: Optional[GlowTTSModelConfig] = None, with_specaug: bool = True) -> AsrModelConfig:
    return AsrModelConfig(label_target_size=label_target_size, encoder=encoder,
                          input_type="log_mel" if glowtts is None else "glow_latent", glowtts=glowtts,
                          feature_extraction=feature_extraction(datasets), specaug=specaug() if with_specaug else None)


def mel_to_linear_config(setup: ExperimentSetup, datasets: data.TrainingDatasets) -> MelToLinearConfig:
    """The original's BLSTM Griffin-Lim predictor (2 BLSTM layers of 512 per direction) on the TTS models' features;
    laptop size: 64."""
    if setup.tiny:
        return MelToLinearConfig(feature_extraction(datasets), hidden_size=64, mel_projection_size=64)
    return MelToLinearConfig(feature_extraction(datasets))


def mel_to_linear_training_settings(setup: ExperimentSetup) -> TrainingSettings:
    """The original's vocoder training (Adam eps 1e-16, LR 1e-3 -> 1e-6 linearly over 50 epochs, 300 s batches,
    gradient accumulation 5, sequences up to 30 s, 200 per batch), shortened by the epoch divisor; laptop setups
    keep the setup's batching and accumulate no gradients."""
    n = setup.epochs(50)
    learning_rates = tuple(float(x) for x in np.linspace(1e-3, 1e-6, n)) if n > 1 else (1e-3,)
    if setup.tiny:
        kwargs: Dict = {}
        _setup_batching(setup, kwargs)
        _setup_fused_optimizer(setup, "adam", kwargs)
        return TrainingSettings(learning_rates=learning_rates, optimizer="adam", epsilon=1e-16, **kwargs)
    return TrainingSettings(learning_rates=learning_rates, optimizer="adam", epsilon=1e-16, batch_size_seconds=300.0,
                            max_seq_length_seconds=30.0, max_seqs=200, accum_grad_multiple_step=5)


def mel_to_linear_vocoder(setup: ExperimentSetup) -> Dict:
    """The trained mel-to-linear vocoder of the setup (``pipeline.train_mel_to_linear`` on the TTS train split's
    audio, alias ``<prefix>/vocoder/blstm_gl_predictor``): ``{"checkpoint", "model_config", "spectral_distance",
    ...}``, the ``vocoder=`` of ``pipeline.synthesize`` / ``resynthesize`` / ``tts_experiment``."""
    from . import pipeline

    base = base_datasets(setup)
    return pipeline.train_mel_to_linear(f"{setup.prefix}/vocoder/blstm_gl_predictor", base,
                                        mel_to_linear_training_settings(setup),
                                        model_config=mel_to_linear_config(setup, base))


def synthesis_options(setup: ExperimentSetup) -> Dict[str, Any]:
    """The synthesis arguments of :func:`pipeline.tts_experiment` for every TTS model of the setup: vocoder, prior
    temperature and the control temperatures."""
    return {"vocoder": synthesis_vocoder(setup), "noise_scale": setup.tts_noise_scale,
            "control_noise_scales": setup.tts_control_noise_scales}


def synthesis_vocoder(setup: ExperimentSetup) -> Optional[Dict]:
    """What ``setup.vocoder`` selects for every TTS synthesis: None (Griffin-Lim on the mel pseudo-inverse; the job
    ids stay those of the Griffin-Lim-only graph) or the trained mel-to-linear vocoder."""
    if setup.vocoder == "griffin_lim":
        return None
    if setup.vocoder == "mel_to_linear":
        return mel_to_linear_vocoder(setup)
    raise ValueError(f"ExperimentSetup.vocoder must be 'griffin_lim' or 'mel_to_linear', got {setup.vocoder!r}")


# ------------------------------------------------------------------------------------------- trainings

_SCHEDULES = {"tri": tri_lr, "long_cooldown": long_cooldown_lr, "oclr": oclr, "warmup_cooldown": warmup_cooldown_lr}


def training_settings(setup: ExperimentSetup, schedule: str, num_epochs: int, *, optimizer: str = "radam",
                      epsilon: float = 1e-9, epochs: Optional[int] = None, **kwargs) -> TrainingSettings:
    """The original's named LR schedules ("tri", "long_cooldown", "oclr", "warmup_cooldown" of the 400-epoch runs),
    shortened by the epoch divisor (``epochs`` overrides the shortened count); laptop setups with ``tts_peak_lr``
    use a short warm-up instead, and their ``tts_gradient_clip`` / ``tts_batch_size_seconds`` / ``tts_max_seqs``.
    Every Glow-TTS training takes its settings from here (so do CTC models where ``asr_constant_lr_epochs`` is
    None, the setups without tts_*)."""
    n = epochs if epochs is not None else setup.epochs(num_epochs)
    if setup.tts_peak_lr is not None:
        learning_rates = warmup_decay_lr(n, peak=setup.tts_peak_lr)
        optimizer, epsilon = "adam", 1e-9
    else:
        learning_rates = _SCHEDULES[schedule](n) if n > 1 else (5e-4,)
    if setup.tts_gradient_clip is not None:
        kwargs.setdefault("gradient_clip_norm", setup.tts_gradient_clip)
    for key, value in (("batch_size_seconds", setup.tts_batch_size_seconds), ("max_seqs", setup.tts_max_seqs)):
        if value is not None:
            kwargs[key] = value
    _setup_batching(setup, kwargs)
    _setup_fused_optimizer(setup, optimizer, kwargs)
    return TrainingSettings(learning_rates=learning_rates, optimizer=optimizer, epsilon=epsilon, **kwargs)


def asr_training_settings(setup: ExperimentSetup, schedule: str, num_epochs: int, **kwargs) -> TrainingSettings:
    """:func:`training_settings` for CTC models, honouring ``setup.asr_constant_lr_epochs``."""
    if setup.asr_constant_lr_epochs is None:
        return training_settings(setup, schedule, num_epochs, **kwargs)
    return _constant_lr_settings(setup, setup.asr_constant_lr_epochs, **kwargs)


def probe_training_settings(setup: ExperimentSetup, schedule: str, num_epochs: int,
                            **kwargs) -> TrainingSettings:
    """:func:`training_settings` for phoneme probes on a frozen model, honouring
    ``setup.probe_constant_lr_epochs``."""
    if setup.probe_constant_lr_epochs is None:
        return training_settings(setup, schedule, num_epochs, **kwargs)
    return _constant_lr_settings(setup, setup.probe_constant_lr_epochs, **kwargs)


def _setup_batching(setup: ExperimentSetup, kwargs: Dict) -> None:
    """The setup's batch size, maximum sequence length and sequences per batch, unless a recipe sets its own."""
    kwargs.setdefault("batch_size_seconds", setup.batch_size_seconds)
    kwargs.setdefault("max_seq_length_seconds", setup.max_seq_length_seconds)
    kwargs.setdefault("max_seqs", setup.max_seqs)


def _setup_fused_optimizer(setup: ExperimentSetup, optimizer: str, kwargs: Dict) -> None:
    """The setup's ``fused_optimizer`` switch for a training with ``optimizer``, unless a recipe sets its own: only
    optimizers torch fuses take it (the recipe's RAdam keeps torch's default implementation)."""
    if setup.fused_optimizer and optimizer in FUSED_OPTIMIZERS:
        kwargs.setdefault("fused_optimizer", True)


def _constant_lr_settings(setup: ExperimentSetup, num_epochs: int, **kwargs) -> TrainingSettings:
    """``num_epochs`` of Adam at 1e-3 with the setup's batching (the laptop presets of CTC models and probes)."""
    kwargs.update(optimizer="adam", epsilon=1e-8)
    _setup_batching(setup, kwargs)
    _setup_fused_optimizer(setup, kwargs["optimizer"], kwargs)
    return TrainingSettings(learning_rates=(1e-3,) * num_epochs, **kwargs)


__all__ = ["ExperimentSetup", "EMBEDDED", "librispeech", "get_data", "glow_tts", "training_settings", "AUDIO_KEY"]
