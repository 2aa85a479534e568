"""Public data builders: LibriSpeech (real or embedded synthetic) → RETURNN datasets for TTS / ASR / joint training.

Every function only creates Sisyphus jobs and returns their outputs (``tk.Path`` / ``tk.Variable`` / dataset dicts
containing them), so all data choices are hashed into the consumers. Data flow (experiments.md §1):

    LibriSpeech root ─► LibriSpeechCorpusJob (per subset, validated JSON)
        ├─► OggZipJob (raw audio for ``audio_features``)      ├─► LogMelFeatureHdfJob ─► FeatureStatisticsJob
        ├─► CmuLexiconJob ─► PhonemeHdfJob(tts / asr_eow)      ├─► SpeakerLabelHdfJob
        ├─► BalancedSpeakerSplitJob (TTS train / CV)
        ├─► ProportionalDurationsJob (or given HDF) ─► ValidateDurationsJob
        ├─► ReferenceDurationsJob (flite's segments from SynthesizeEmbeddedLibriSpeechJob) ─► AlignmentQualityJob
        └─► x-vectors: ReturnnTrainingJob ─► ReturnnForwardJob (model ``pytorch_networks.xvector`` on the log-mel
            HDF + speaker labels), or given HDF ─► CheckGivenXVectorsJob: one x-vector per utterance (training);
            ─► AverageXVectorsPerSpeakerJob: the speaker's average over the TTS train split (synthesis)
    ─► MetaDataset dicts {audio_features, phonemes, phonemes_eow, speaker_labels, durations, xvectors}
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Sequence, Tuple, Union

from .sisyphus_api import tk

from .config import TrainingSettings, get_forward_config, get_training_config
from .data_prep import datasets as ds
from .data_prep import lexicon as lexmod
from .data_prep.corpus_jobs import (BalancedSpeakerSplitJob, LibriSpeechCorpusJob, OggZipJob,
                                    SynthesizeEmbeddedLibriSpeechJob)
from .data_prep.duration_jobs import (AlignmentQualityJob, MergeDurationsJob, ProportionalDurationsJob,
                                      ReferenceDurationsJob, ValidateDurationsJob, ValidateTokenDurationsJob)
from .data_prep.durations import ProportionalAlignmentSettings
from .data_prep.feature_jobs import FeatureStatisticsJob, LogMelFeatureHdfJob
from .data_prep.features import LogMelSettings
from .data_prep.lexicon_jobs import CmuLexiconJob, PhonemeHdfJob, PhonemeVocabularyJob, SpeakerLabelHdfJob
from .data_prep.synthesis import DEFAULT_SUBSETS, DEFAULT_VOICES, SubsetSpec, SyntheticVoice
from .data_prep.xvector_jobs import AverageXVectorsPerSpeakerJob, CheckGivenXVectorsJob
from .data_prep.xvectors import XVectorTrainingSettings
from .jobs.returnn_forward import ReturnnForwardJob
from .jobs.returnn_training import PtCheckpoint, ReturnnTrainingJob
from .jobs.serialization import serialize_network
from .pipeline import default_device
from .pytorch_networks.configs import XVectorConfig

DATA_PREFIX = "experiments/librispeech/data/joint_ga"
XVECTOR_NETWORK = "librispeech_joint_training_given_alignments.pytorch_networks.xvector"

EpochWiseFilter = Tuple[int, int, int]  # (from epoch, to epoch, max mean length in seconds)


# --------------------------------------------------------------------------------------------- corpus / audio

def _embedded_synthesis(voices: Tuple[SyntheticVoice, ...], subsets: Tuple[SubsetSpec, ...],
                        seed: int) -> SynthesizeEmbeddedLibriSpeechJob:
    job = SynthesizeEmbeddedLibriSpeechJob(voices=voices, subsets=subsets, seed=seed)
    job.add_alias(f"{DATA_PREFIX}/embedded_librispeech")
    return job


def get_embedded_librispeech_root(voices: Tuple[SyntheticVoice, ...] = DEFAULT_VOICES,
                                  subsets: Tuple[SubsetSpec, ...] = DEFAULT_SUBSETS, seed: int = 1) -> tk.Path:
    """LibriSpeech-layout root of synthetic real speech (flite / espeak-ng); see ``SynthesizeEmbeddedLibriSpeechJob``."""
    return _embedded_synthesis(voices, subsets, seed).out_root


def get_embedded_flite_segments(voices: Tuple[SyntheticVoice, ...] = DEFAULT_VOICES,
                                subsets: Tuple[SubsetSpec, ...] = DEFAULT_SUBSETS, seed: int = 1) -> tk.Path:
    """flite's phone segments (JSON) of the flite utterances of the embedded corpus with the same arguments as
    :func:`get_embedded_librispeech_root` (the same synthesis job); the input of :func:`get_reference_durations`."""
    return _embedded_synthesis(voices, subsets, seed).out_flite_segments


def get_corpus(librispeech_root: tk.Path, subset: str) -> tk.Path:
    """Validated corpus JSON of one subset (seq_tag ``<subset>/<utt>/<utt>``, audio, duration, text, speaker)."""
    return LibriSpeechCorpusJob(librispeech_root, subset).out_corpus


def get_ogg_zip(corpus_files: Sequence[tk.Path]) -> tk.Path:
    return OggZipJob(list(corpus_files)).out_ogg_zip


def get_log_mel_hdf(corpus_files: Sequence[tk.Path], settings: LogMelSettings = LogMelSettings()) -> tk.Path:
    return LogMelFeatureHdfJob(list(corpus_files), settings).out_hdf


def get_feature_statistics(feature_hdf: tk.Path, segment_file: Optional[tk.Path] = None):
    """(mean, std) scalar ``tk.Variable``s, e.g. for ``LogMelSettings.to_fe_config(norm=...)``."""
    job = FeatureStatisticsJob(feature_hdf, segment_file)
    return job.out_mean, job.out_std_dev


def get_tts_split(corpus_file: tk.Path, dev_per_speaker: int = 4, seed: int = 42) -> Tuple[tk.Path, tk.Path]:
    """(train segments, CV segments) with ``dev_per_speaker`` CV utterances per speaker."""
    job = BalancedSpeakerSplitJob(corpus_file, dev_per_speaker, seed)
    return job.out_train_segments, job.out_dev_segments


# --------------------------------------------------------------------------------------------- text / speakers

@dataclass(frozen=True)
class Vocab:
    vocab_file: tk.Path  # pickled {label: index}
    labels_file: tk.Path
    size: int  # static: the inventories do not depend on the corpus

    def returnn_vocab(self) -> Dict[str, Any]:
        """``Vocabulary.create_vocab`` options (``unknown_label=None``: the vocab has no "UNK")."""
        return {"class": "Vocabulary", "vocab_file": self.vocab_file, "unknown_label": None}


def get_vocab(kind: str) -> Vocab:
    """``kind="tts"`` (44 labels, ``[blank]`` last) or ``"asr_eow"`` (79 labels; CTC blank is an extra index)."""
    job = PhonemeVocabularyJob(kind)
    job.add_alias(f"{DATA_PREFIX}/vocab_{kind}")
    return Vocab(job.out_vocab, job.out_labels, len(lexmod.inventory(kind)))


def get_lexicon(corpus_files: Sequence[tk.Path],
                extra_pronunciations: Tuple[Tuple[str, Tuple[str, ...]], ...] = ()) -> tk.Path:
    """CMUdict lexicon of all words of the corpora; OOV words fail the job, listing words and seq tags."""
    return CmuLexiconJob(list(corpus_files), extra_pronunciations).out_lexicon


def get_phoneme_hdf(corpus_files: Sequence[tk.Path], lexicon: tk.Path, kind: str) -> tk.Path:
    return PhonemeHdfJob(list(corpus_files), lexicon, kind).out_hdf


@dataclass(frozen=True)
class SpeakerLabels:
    hdf: tk.Path
    speaker_map: tk.Path
    num_speakers: tk.Variable


def get_speaker_labels(corpus_files: Sequence[tk.Path]) -> SpeakerLabels:
    job = SpeakerLabelHdfJob(list(corpus_files))
    return SpeakerLabels(job.out_hdf, job.out_speaker_map, job.out_num_speakers)


# --------------------------------------------------------------------------------------------- durations / x-vectors

def get_proportional_durations(phoneme_hdf: tk.Path, feature_hdf: tk.Path,
                               settings: ProportionalAlignmentSettings = ProportionalAlignmentSettings()) -> tk.Path:
    """Placeholder alignment (frames ∝ token weights); same format as a Viterbi-derived durations HDF."""
    return ProportionalDurationsJob(phoneme_hdf, feature_hdf, settings).out_durations


def get_validated_durations(durations_hdf: tk.Path, phoneme_hdf: tk.Path, feature_hdf: tk.Path,
                            check_sums: bool = True, allow_zero_durations: bool = False) -> tk.Path:
    """Durations that passed the consistency check (all seqs, finite, ≥ 1 unless ``allow_zero_durations``, one per
    phoneme, sum == #frames unless ``check_sums=False``: duration-predictor output)."""
    return ValidateDurationsJob(durations_hdf, phoneme_hdf, feature_hdf, check_sums, allow_zero_durations).out_durations


def get_validated_token_durations(token_durations_hdf: tk.Path, phoneme_durations_hdf: tk.Path) -> tk.Path:
    """Durations per encoder token (blanks included) that passed the check against the validated per-phoneme
    durations of the same path (2N+1 per utterance, every token >= 1 frame, merging gives the phonemes')."""
    return ValidateTokenDurationsJob(token_durations_hdf, phoneme_durations_hdf).out_durations


def get_tts_phonemes(librispeech_root: tk.Path, subset: str = "train-clean-100") -> tk.Path:
    """The TTS phoneme HDF of one subset, the same job :func:`build_training_datasets` uses for its ``phonemes``."""
    corpus_file = get_corpus(librispeech_root, subset)
    return get_phoneme_hdf([corpus_file], get_lexicon([corpus_file]), "tts")


def get_reference_durations(librispeech_root: tk.Path, flite_segments: tk.Path, subset: str = "train-clean-100", *,
                            feature_settings: LogMelSettings = LogMelSettings(),
                            min_frames_per_token: int = 0) -> tk.Path:
    """Ground-truth durations of the flite utterances of ``subset`` (see ``data_prep/reference_alignment.py``), in
    the format of the given durations, on the phonemes and features :func:`build_training_datasets` uses. Only
    sequences spoken by a flite voice are in it. ``min_frames_per_token=1`` makes a training alignment (no zeros)."""
    corpus_file = get_corpus(librispeech_root, subset)
    job = ReferenceDurationsJob(flite_segments, [corpus_file], get_tts_phonemes(librispeech_root, subset),
                                get_log_mel_hdf([corpus_file], feature_settings), feature_settings,
                                min_frames_per_token)
    return job.out_durations


def get_oracle_durations(librispeech_root: tk.Path, flite_segments: tk.Path, fallback_durations: tk.Path,
                         subset: str = "train-clean-100", *,
                         feature_settings: LogMelSettings = LogMelSettings()) -> tk.Path:
    """A complete given alignment for ``subset`` (``durations_file`` of :func:`build_training_datasets`): the flite
    reference (at least one frame per token) for every flite utterance, ``fallback_durations`` (e.g. the alignment
    model's Viterbi durations) for the others, which have no reference (espeak-ng)."""
    reference = get_reference_durations(librispeech_root, flite_segments, subset, feature_settings=feature_settings,
                                        min_frames_per_token=1)
    return MergeDurationsJob(reference, fallback_durations).out_durations


@dataclass(frozen=True)
class AlignmentQuality:
    """Outputs of ``AlignmentQualityJob``: the reports and the overall figures."""

    report: tk.Path  # JSON: overall, per speaker (voice), worst utterances
    report_csv: tk.Path
    mean_abs_error_ms: tk.Variable
    percent_within_20ms: tk.Variable
    percent_within_50ms: tk.Variable

    def figures(self) -> Dict[str, tk.Variable]:
        return {"mean_abs_boundary_error_ms": self.mean_abs_error_ms,
                "percent_boundaries_within_20ms": self.percent_within_20ms,
                "percent_boundaries_within_50ms": self.percent_within_50ms}


def get_alignment_quality(durations_hdf: tk.Path, reference_hdf: tk.Path, librispeech_root: tk.Path,
                          subset: str = "train-clean-100", *, feature_settings: LogMelSettings = LogMelSettings(),
                          voices: Tuple[SyntheticVoice, ...] = DEFAULT_VOICES,
                          alias: Optional[str] = None) -> AlignmentQuality:
    """Boundary errors of ``durations_hdf`` (any durations of ``subset``) against ``reference_hdf`` (from
    :func:`get_reference_durations`), over the utterances with a reference, per voice and overall; ``voices`` only
    name the speakers in the report."""
    job = AlignmentQualityJob(durations_hdf, reference_hdf, get_tts_phonemes(librispeech_root, subset),
                              feature_settings, tuple((v.speaker_id, f"{v.engine}:{v.voice}") for v in voices))
    if alias is not None:
        job.add_alias(alias)
    return AlignmentQuality(job.out_report, job.out_report_csv, job.out_mean_abs_error_ms, job.out_percent_within_20ms,
                            job.out_percent_within_50ms)


def xvector_model_config(settings: XVectorTrainingSettings, num_speakers: Union[int, tk.Variable],
                         feature_settings: LogMelSettings = LogMelSettings()) -> XVectorConfig:
    """Model config of the x-vector model (``num_speakers`` may be the ``tk.Variable`` of the speaker labels)."""
    return XVectorConfig(num_speakers=num_speakers, input_dim=feature_settings.num_filters,
                         channels=settings.channels, pooling_channels=settings.pooling_channels,
                         embedding_dim=settings.embedding_dim, dropout=settings.dropout)


def _frames_per_second(feature_settings: LogMelSettings) -> int:
    return int(round(feature_settings.sample_rate / feature_settings.hop_length))


def train_xvector_model(feature_hdf: tk.Path, speaker_labels: SpeakerLabels,
                        settings: XVectorTrainingSettings = XVectorTrainingSettings(),
                        train_segments: Optional[tk.Path] = None,
                        dev_segments: Optional[tk.Path] = None, *,
                        feature_settings: LogMelSettings = LogMelSettings()) -> ReturnnTrainingJob:
    """RETURNN speaker-classification training (loss ``ce``) of ``pytorch_networks.xvector`` on the log-mel HDF.

    ``feature_settings`` must be those of ``feature_hdf`` (input dim, frame rate for the batch size). Returns the
    training job: ``out_checkpoints`` holds the last epoch, ``out_learning_rates`` the train/dev ``ce``/``error``
    scores; the model config for :func:`get_xvectors` is :func:`xvector_model_config`.
    """
    model_config = xvector_model_config(settings, speaker_labels.num_speakers, feature_settings)
    network = serialize_network(XVECTOR_NETWORK, model_config, train=True,
                                train_step_kwargs={"chunk_frames": settings.chunk_frames})
    train_settings = TrainingSettings(learning_rates=tuple(settings.learning_rates), optimizer=settings.optimizer,
                                      epsilon=1e-8, weight_decay=settings.weight_decay,
                                      batch_size_seconds=settings.batch_size_seconds, max_seq_length_seconds=None,
                                      max_seqs=settings.max_seqs, sample_rate=_frames_per_second(feature_settings))

    def dataset(segments, seq_ordering):
        return ds.meta_dataset(ds.hdf_dataset([feature_hdf], segment_file=segments, seq_ordering=seq_ordering),
                               {ds.SPEAKER_KEY: speaker_labels.hdf})

    keep_epochs = [settings.num_epochs]
    returnn_config = get_training_config(
        train=dataset(train_segments, "random"),
        dev=dataset(dev_segments, "sorted") if dev_segments is not None else None,
        extern_data=ds.extern_data([ds.AUDIO_KEY, ds.SPEAKER_KEY], audio_dim=feature_settings.num_filters,
                                   num_speakers=speaker_labels.num_speakers),
        network=network, settings=train_settings, keep_epochs=keep_epochs)
    returnn_config.config["random_seed"] = settings.seed
    job = ReturnnTrainingJob(returnn_config, device=default_device(), num_epochs=settings.num_epochs,
                             keep_epochs=keep_epochs, time_rqmt=12, mem_rqmt=8, cpu_rqmt=2)
    job.add_alias(f"{DATA_PREFIX}/xvector/training")
    return job


def get_xvectors(feature_hdf: tk.Path, checkpoint: PtCheckpoint, *, model_config: XVectorConfig,
                 feature_settings: LogMelSettings = LogMelSettings(),
                 alias: str = f"{DATA_PREFIX}/xvector/extraction") -> tk.Path:
    """Per-utterance x-vector HDF (``[1, D]`` per seq of ``feature_hdf``, the utterance's own vector) from a
    trained model (RETURNN forward with ``XVectorHDFCallback``)."""
    if model_config.input_dim != feature_settings.num_filters:
        raise ValueError(f"x-vector model input dim {model_config.input_dim} != {feature_settings.num_filters} "
                         "log-mel filters of the features")
    network = serialize_network(XVECTOR_NETWORK, model_config, train=False, forward_callback="XVectorHDFCallback",
                                forward_callback_kwargs={"filename": "xvectors.hdf"})
    returnn_config = get_forward_config(
        forward_data=ds.meta_dataset(ds.hdf_dataset([feature_hdf]), {}),
        extern_data=ds.extern_data([ds.AUDIO_KEY], audio_dim=feature_settings.num_filters), network=network,
        batch_size_seconds=300.0, max_seqs=32, sample_rate=_frames_per_second(feature_settings))
    job = ReturnnForwardJob(checkpoint, returnn_config, output_files=["xvectors.hdf"], device=default_device(),
                            time_rqmt=2, mem_rqmt=4, cpu_rqmt=1)
    job.add_alias(alias)
    return job.out_files["xvectors.hdf"]


def get_speaker_average_xvectors(xvector_hdf: tk.Path, segment_file: Optional[tk.Path] = None) -> tk.Path:
    """Every utterance of ``xvector_hdf`` gets its speaker's mean x-vector, averaged over the utterances in
    ``segment_file`` (all if None); for synthesis, where the original used the speaker's average."""
    return AverageXVectorsPerSpeakerJob(xvector_hdf, segment_file).out_hdf


def get_given_xvectors(xvector_hdf: tk.Path, corpus_files: Sequence[tk.Path],
                       expected_dim: Optional[int] = None) -> tk.Path:
    """Use an existing x-vector HDF; checked to cover every sequence of the corpora with finite vectors of
    ``expected_dim`` (the dimension the models are configured for), when given."""
    return CheckGivenXVectorsJob(xvector_hdf, list(corpus_files), expected_dim).out_hdf


# --------------------------------------------------------------------------------------------- training datasets

@dataclass(frozen=True)
class TrainingDatasetSettings:
    """Settings of the training MetaDatasets (experiments.md §7.1/§7.6)."""

    partition_epoch: int = 1
    seq_ordering: str = "laplace:.1000"
    epoch_wise_filters: Tuple[EpochWiseFilter, ...] = ()
    dev_per_speaker: int = 4  # TTS-CV: utterances per training speaker
    devtrain_size: int = 3000  # random subset of the training segments
    preemphasis: Optional[float] = 0.97  # of the raw audio (the models compute their features from it)
    use_durations: bool = True
    use_xvectors: bool = True


@dataclass
class TrainingDatasets:
    """RETURNN dataset dicts (with ``tk.Path`` objects) and everything a config needs about the streams."""

    train: Dict[str, Any]
    cv: Dict[str, Any]
    devtrain: Dict[str, Any]
    cv_asr: Optional[Dict[str, Any]]
    joint: Dict[str, Any]  # every training-subset utterance (TTS train + CV), in corpus order: for forwards
    extern_data: Dict[str, Dict[str, Any]]
    tts_vocab: Vocab
    asr_vocab: Vocab
    speaker_labels: SpeakerLabels
    feature_settings: LogMelSettings
    feature_hdf: tk.Path
    feature_norm: Tuple[tk.Variable, tk.Variable]  # scalar (mean, std) on the TTS train segments
    train_segments: tk.Path
    cv_segments: tk.Path
    # TTS-CV for synthesis: as ``cv`` but with each speaker's average x-vector instead of the utterance's own
    synthesis: Dict[str, Any]
    phonemes: Optional[tk.Path] = None  # TTS phoneme HDF of the whole training subset
    durations: Optional[tk.Path] = None
    xvectors: Optional[tk.Path] = None  # per utterance (the datasets for training and analysis)
    speaker_xvectors: Optional[tk.Path] = None  # speaker averages over the TTS train split (synthesis)
    extras: Dict[str, Any] = field(default_factory=dict)


ALL_KEYS = (ds.AUDIO_KEY, ds.PHONEMES_KEY, ds.PHONEMES_EOW_KEY, ds.SPEAKER_KEY, ds.DURATIONS_KEY, ds.XVECTOR_KEY,
            ds.TOKEN_DURATIONS_KEY)
TTS_KEYS = (ds.AUDIO_KEY, ds.PHONEMES_KEY, ds.SPEAKER_KEY, ds.DURATIONS_KEY, ds.XVECTOR_KEY, ds.TOKEN_DURATIONS_KEY)
ASR_KEYS = (ds.AUDIO_KEY, ds.PHONEMES_EOW_KEY)


def build_training_datasets(
    librispeech_root: tk.Path,
    settings: TrainingDatasetSettings = TrainingDatasetSettings(),
    *,
    train_subset: str = "train-clean-100",
    asr_dev_subsets: Sequence[str] = ("dev-clean",),
    keys: Sequence[str] = ALL_KEYS,
    feature_settings: LogMelSettings = LogMelSettings(),
    durations_file: Optional[tk.Path] = None,
    durations_sum_to_frames: bool = True,
    token_durations_file: Optional[tk.Path] = None,
    alignment_settings: ProportionalAlignmentSettings = ProportionalAlignmentSettings(),
    xvectors_file: Optional[tk.Path] = None,
    xvector_settings: XVectorTrainingSettings = XVectorTrainingSettings(),
    allow_zero_durations: bool = False,
) -> TrainingDatasets:
    """TTS / ASR / joint training datasets from a LibriSpeech tree (real or embedded).

    :param keys: data keys in the MetaDatasets (subset of ``ALL_KEYS``); ``durations`` / ``xvectors`` are only
        added when also enabled in ``settings``
    :param durations_file: given durations HDF (e.g. a Glow-TTS Viterbi forward); default: proportional
        placeholder alignment. Either way it is validated against phonemes and features (their sums against the
        frames only with ``durations_sum_to_frames``; False for duration-predictor output)
    :param token_durations_file: the same given alignment per encoder token of a model with blanks (2N+1 per
        utterance) -> the ``token_durations`` stream (``GlowTTSModelConfig.given_token_durations``), validated
        against the per-phoneme durations; None: no such stream
    :param allow_zero_durations: accept phonemes with zero frames in the durations (an error by default)
    :param xvectors_file: given per-utterance x-vector HDF; default: train the x-vector model on the TTS train
        split and extract one x-vector per utterance (the training job is then ``extras["xvector_training"]``).
        Training, CV and analysis datasets read each utterance's own x-vector; ``synthesis`` (TTS-CV texts to
        synthesise) reads the speaker's average over the TTS train split, as in the original.
    :param asr_dev_subsets: subsets for the ASR CV set ``cv_asr`` (audio + phonemes_eow); empty → None
    """
    unknown = set(keys) - set(ALL_KEYS)
    if unknown:
        raise ValueError(f"unknown data keys {sorted(unknown)}; known: {ALL_KEYS}")
    keys = [k for k in keys if (k != ds.DURATIONS_KEY or settings.use_durations)
            and (k != ds.XVECTOR_KEY or settings.use_xvectors)
            and (k != ds.TOKEN_DURATIONS_KEY or (settings.use_durations and token_durations_file is not None))]

    train_corpus = get_corpus(librispeech_root, train_subset)
    train_segments, cv_segments = get_tts_split(train_corpus, settings.dev_per_speaker)
    zip_file = get_ogg_zip([train_corpus])
    feature_hdf = get_log_mel_hdf([train_corpus], feature_settings)
    norm = get_feature_statistics(feature_hdf, train_segments)
    tts_vocab, asr_vocab = get_vocab("tts"), get_vocab("asr_eow")
    lexicon = get_lexicon([train_corpus])
    tts_phonemes = get_phoneme_hdf([train_corpus], lexicon, "tts")
    speakers = get_speaker_labels([train_corpus])

    streams = _label_streams(keys, train_corpus, lexicon, tts_phonemes, speakers)
    durations = None
    if ds.DURATIONS_KEY in keys:
        raw = durations_file or get_proportional_durations(tts_phonemes, feature_hdf, alignment_settings)
        durations = streams[ds.DURATIONS_KEY] = get_validated_durations(raw, tts_phonemes, feature_hdf,
                                                                          durations_sum_to_frames,
                                                                          allow_zero_durations)
    if ds.TOKEN_DURATIONS_KEY in keys:
        streams[ds.TOKEN_DURATIONS_KEY] = get_validated_token_durations(token_durations_file, durations)
    xvectors = speaker_xvectors = None
    extras: Dict[str, Any] = {}
    if ds.XVECTOR_KEY in keys:
        xvectors, speaker_xvectors = _xvector_streams(train_corpus, feature_hdf, speakers, train_segments,
                                                      cv_segments, feature_settings, xvectors_file,
                                                      xvector_settings, extras)
        streams[ds.XVECTOR_KEY] = xvectors

    def audio(segments, partition_epoch, seq_ordering, random_subset=None, filters=()):
        return _audio_dataset(zip_file, settings, feature_settings, segments, partition_epoch, seq_ordering,
                              random_subset, filters)

    train = ds.meta_dataset(audio(train_segments, settings.partition_epoch, settings.seq_ordering,
                                  filters=settings.epoch_wise_filters), streams)
    cv = ds.meta_dataset(audio(cv_segments, 1, "sorted"), streams)
    synthesis_streams = dict(streams)
    if speaker_xvectors is not None:
        synthesis_streams[ds.XVECTOR_KEY] = speaker_xvectors
    synthesis = ds.meta_dataset(audio(cv_segments, 1, "sorted"), synthesis_streams)
    # devtrain draws from the TTS train segments only, so every stream covers it (fixes quirk 11 of the original)
    devtrain = ds.meta_dataset(audio(train_segments, 1, "sorted_reverse", random_subset=settings.devtrain_size),
                               streams)
    joint = ds.meta_dataset(audio(None, 1, "default"), streams)
    cv_asr = (_asr_cv_dataset(librispeech_root, asr_dev_subsets, settings.preemphasis, feature_settings)
              if asr_dev_subsets and ds.PHONEMES_EOW_KEY in keys else None)

    extern = ds.extern_data(keys, audio_dim=1, tts_vocab_size=tts_vocab.size, asr_vocab_size=asr_vocab.size,
                            num_speakers=speakers.num_speakers, xvector_dim=xvector_settings.embedding_dim)
    return TrainingDatasets(train=train, cv=cv, devtrain=devtrain, cv_asr=cv_asr, joint=joint, extern_data=extern,
                            tts_vocab=tts_vocab, asr_vocab=asr_vocab, speaker_labels=speakers,
                            feature_settings=feature_settings, feature_hdf=feature_hdf, feature_norm=norm,
                            train_segments=train_segments, cv_segments=cv_segments, synthesis=synthesis,
                            phonemes=tts_phonemes, durations=durations, xvectors=xvectors,
                            speaker_xvectors=speaker_xvectors, extras=extras)


def get_subset_xvectors(librispeech_root: tk.Path, subsets: Sequence[str], tts: TrainingDatasets,
                        xvector_settings: XVectorTrainingSettings = XVectorTrainingSettings()) -> tk.Path:
    """Per-utterance x-vectors of further subsets (dev/test: unseen speakers) by the x-vector model of ``tts``."""
    training = tts.extras.get("xvector_training")
    if training is None:
        raise ValueError("x-vectors of further subsets need the x-vector model trained by build_training_datasets "
                         "(given x-vector files cover the training subset only)")
    features = get_log_mel_hdf([get_corpus(librispeech_root, s) for s in subsets], tts.feature_settings)
    return get_xvectors(features, training.out_checkpoints[xvector_settings.num_epochs],
                        model_config=xvector_model_config(xvector_settings, tts.speaker_labels.num_speakers,
                                                          tts.feature_settings),
                        feature_settings=tts.feature_settings,
                        alias=f"{DATA_PREFIX}/xvector/extraction/{'+'.join(subsets)}")


def build_asr_eval_dataset(librispeech_root: tk.Path, subsets: Sequence[str], *, xvectors: Optional[tk.Path] = None,
                           with_targets: bool = True, preemphasis: Optional[float] = 0.97) -> Dict[str, Any]:
    """Audio of ``subsets`` (sorted_reverse) with their ``phonemes_eow`` (``with_targets``: a CV set) and per-utterance
    ``xvectors`` (recognisers on an x-vector Glow-TTS latent)."""
    corpora = [get_corpus(librispeech_root, s) for s in subsets]
    streams: Dict[str, Any] = {}
    if with_targets:
        streams[ds.PHONEMES_EOW_KEY] = get_phoneme_hdf(corpora, get_lexicon(corpora), "asr_eow")
    if xvectors is not None:
        streams[ds.XVECTOR_KEY] = xvectors
    audio = ds.ogg_zip_dataset([get_ogg_zip(corpora)], audio=ds.raw_audio_options(preemphasis),
                               seq_ordering="sorted_reverse")
    return ds.meta_dataset(audio, streams)


def build_tts_eval_dataset(librispeech_root: tk.Path, subset: str, tts: TrainingDatasets,
                           xvector_settings: XVectorTrainingSettings = XVectorTrainingSettings()) -> Dict[str, Any]:
    """The texts of an unseen-speaker subset (the original's test-clean TTS evaluation) to synthesise with an x-vector
    Glow-TTS: MetaDataset {audio, TTS phonemes, x-vectors}, every utterance with its speaker's average x-vector
    (extracted by the x-vector model of ``tts``, averaged over the subset as the original did). Speaker-embedding
    models cannot represent unseen speakers (the original fed test speaker ids into the training speakers' table)."""
    corpus_file = get_corpus(librispeech_root, subset)
    phonemes = get_phoneme_hdf([corpus_file], get_lexicon([corpus_file]), "tts")
    xvectors = get_subset_xvectors(librispeech_root, [subset], tts, xvector_settings)
    audio = ds.ogg_zip_dataset([get_ogg_zip([corpus_file])], audio=ds.raw_audio_options(
        0.97, tts.feature_settings.sample_rate), seq_ordering="sorted")
    return ds.meta_dataset(audio, {ds.PHONEMES_KEY: phonemes,
                                   ds.XVECTOR_KEY: get_speaker_average_xvectors(xvectors)})


def _label_streams(keys: Sequence[str], train_corpus: tk.Path, lexicon: tk.Path, tts_phonemes: tk.Path,
                   speakers: SpeakerLabels) -> Dict[str, Any]:
    """The label HDFs of the requested keys (phonemes, phonemes with end-of-word marks, speaker labels)."""
    streams: Dict[str, Any] = {}
    if ds.PHONEMES_KEY in keys:
        streams[ds.PHONEMES_KEY] = tts_phonemes
    if ds.PHONEMES_EOW_KEY in keys:
        streams[ds.PHONEMES_EOW_KEY] = get_phoneme_hdf([train_corpus], lexicon, "asr_eow")
    if ds.SPEAKER_KEY in keys:
        streams[ds.SPEAKER_KEY] = speakers.hdf
    return streams


def _xvector_streams(train_corpus: tk.Path, feature_hdf: tk.Path, speakers: SpeakerLabels, train_segments: tk.Path,
                     cv_segments: tk.Path, feature_settings: LogMelSettings, xvectors_file: Optional[tk.Path],
                     xvector_settings: XVectorTrainingSettings, extras: Dict[str, Any]) -> Tuple[tk.Path, tk.Path]:
    """(per-utterance x-vectors, speaker averages over the TTS train split): the given file (checked against the
    configured dimension) or a trained x-vector model's extraction (its training job goes to ``extras``)."""
    if xvectors_file is not None:
        xvectors = get_given_xvectors(xvectors_file, [train_corpus], expected_dim=xvector_settings.embedding_dim)
    else:
        training = train_xvector_model(feature_hdf, speakers, xvector_settings, train_segments, cv_segments,
                                       feature_settings=feature_settings)
        extras["xvector_training"] = training
        xvectors = get_xvectors(feature_hdf, training.out_checkpoints[xvector_settings.num_epochs],
                                model_config=xvector_model_config(xvector_settings, speakers.num_speakers,
                                                                  feature_settings),
                                feature_settings=feature_settings)
    return xvectors, get_speaker_average_xvectors(xvectors, train_segments)


def _audio_dataset(zip_file: tk.Path, settings: TrainingDatasetSettings, feature_settings: LogMelSettings,
                   segments: Optional[tk.Path], partition_epoch: int, seq_ordering: str, random_subset=None,
                   filters=()) -> Dict[str, Any]:
    """The raw-audio OggZipDataset of the training subset, restricted to ``segments`` (None: all)."""
    ewf = {(f, t): {"max_mean_len": m} for f, t, m in filters} or None
    return ds.ogg_zip_dataset([zip_file], audio=ds.raw_audio_options(settings.preemphasis,
                                                                      feature_settings.sample_rate),
                              segment_file=segments, partition_epoch=partition_epoch, seq_ordering=seq_ordering,
                              fixed_random_subset=random_subset, epoch_wise_filter=ewf)


def _asr_cv_dataset(librispeech_root: tk.Path, asr_dev_subsets: Sequence[str], preemphasis: Optional[float],
                    feature_settings: LogMelSettings) -> Dict[str, Any]:
    """ASR CV: the dev subsets' audio with their phonemes_eow labels."""
    dev_corpora = [get_corpus(librispeech_root, s) for s in asr_dev_subsets]
    dev_streams = {ds.PHONEMES_EOW_KEY: get_phoneme_hdf(dev_corpora, get_lexicon(dev_corpora), "asr_eow")}
    dev_audio = ds.ogg_zip_dataset([get_ogg_zip(dev_corpora)],
                                   audio=ds.raw_audio_options(preemphasis, feature_settings.sample_rate),
                                   seq_ordering="sorted_reverse")
    return ds.meta_dataset(dev_audio, dev_streams)


def build_tts_training_datasets(librispeech_root: tk.Path,
                                settings: TrainingDatasetSettings = TrainingDatasetSettings(),
                                **kwargs: Any) -> TrainingDatasets:
    """TTS datasets: audio, phonemes, speaker labels (+ durations, x-vectors per ``settings``); no ASR CV."""
    kwargs.setdefault("asr_dev_subsets", ())
    return build_training_datasets(librispeech_root, settings, keys=TTS_KEYS, **kwargs)


def build_asr_training_datasets(librispeech_root: tk.Path,
                                settings: TrainingDatasetSettings = TrainingDatasetSettings(use_durations=False,
                                                                                            use_xvectors=False),
                                **kwargs: Any) -> TrainingDatasets:
    """ASR datasets: audio + phonemes_eow, with ``cv_asr`` on the dev subsets."""
    return build_training_datasets(librispeech_root, settings, keys=ASR_KEYS, **kwargs)


def build_test_dataset(librispeech_root: tk.Path, subset: str, preemphasis: Optional[float] = 0.97,
                       audio_key: str = ds.AUDIO_KEY) -> Tuple[Dict[str, Any], tk.Path]:
    """(MetaDataset {``audio_key``: raw audio} sorted_reverse, reference corpus JSON) for ASR search / forward on
    ``subset``; ``audio_key`` defaults to the key the models read (``audio_features``)."""
    corpus_file = get_corpus(librispeech_root, subset)
    audio = ds.ogg_zip_dataset([get_ogg_zip([corpus_file])], audio=ds.raw_audio_options(preemphasis),
                               seq_ordering="sorted_reverse")
    return ({"class": "MetaDataset", "datasets": {"zip_dataset": audio},
             "data_map": {audio_key: ("zip_dataset", "data")}, "seq_order_control_dataset": "zip_dataset"},
            corpus_file)
