"""Model configuration dataclasses.

Contract with the config serializer: every dataclass holds plain values only (int, float, str, bool,
None, tuples of those or nested config dataclasses), is frozen (hashable, so it can be a default of
another dataclass), and ``eval(repr(cfg))`` with the class names imported reconstructs an equal object.
Defaults follow the original experiments (docs/networks.md §2.1).
"""
from __future__ import annotations

from dataclasses import dataclass, fields, is_dataclass
from typing import Any, Dict, Optional, Tuple, Union

# extern_data keys (docs/networks.md §8.2); the train/forward steps take them from here by default
AUDIO_KEY = "audio_features"
PHONEMES_KEY = "phonemes"
PHONEMES_EOW_KEY = "phonemes_eow"
SPEAKER_KEY = "speaker_labels"
DURATIONS_KEY = "durations"
# given durations per encoder token of a model with blanks (2N+1 per utterance: the alignment model's whole path)
TOKEN_DURATIONS_KEY = "token_durations"
XVECTOR_KEY = "xvectors"

#: Parameter-name prefixes of an ASR model on the Glow-TTS latent that a TTS checkpoint does not have (``AsrModel``)
ASR_NEW_PARAMS_PREFIXES = ("asr_encoder.", "output.")


@dataclass(frozen=True)
class FeatureExtractionConfig:
    """Log-mel (dB) features computed inside the model from the raw 16 kHz waveform."""

    sample_rate: int = 16000
    win_size: float = 0.05
    hop_size: float = 0.0125
    f_min: int = 60
    f_max: int = 7600
    min_amp: float = 1e-10
    num_filters: int = 80
    center: bool = True
    norm: Optional[Tuple[float, float]] = None  # global (mean, std) of the dB-mel features


@dataclass(frozen=True)
class SpecaugConfig:
    """SpecAugment: ``max_len // repeat_per_n_frames`` time masks and ``num_repeat_feat`` feature masks."""

    repeat_per_n_frames: int = 100
    max_dim_time: int = 20
    num_repeat_feat: int = 5
    max_dim_feat: int = 8


@dataclass(frozen=True)
class TextEncoderConfig:
    """Glow-TTS text encoder (+ duration predictor).

    ``encoder_type="transformer"``: embedding -> prenet -> relative-position Transformer;
    ``encoder_type="embedding"``: the "simple encoder" (scaled embedding only).
    mean_extra_embedding: add a learnt per-token shift ``nn.Embedding(n_vocab, out_channels)`` to the prior mean
        projection, ``x_m = proj_m(h) + emb(token)`` (the "v2_1" joint model).
    """

    n_vocab: int
    hidden_channels: int = 192
    filter_channels: int = 768
    filter_channels_dp: int = 256
    n_heads: int = 2
    n_layers: int = 6
    kernel_size: int = 3
    p_dropout: float = 0.1
    window_size: Optional[int] = 4
    block_length: Optional[int] = None
    mean_only: bool = False
    prenet: bool = True
    encoder_type: str = "transformer"
    mean_extra_embedding: bool = False


@dataclass(frozen=True)
class FlowDecoderConfig:
    """Glow flow decoder: squeeze -> n_blocks x [norm, InvConvNear, affine coupling] -> unsqueeze.

    norm_type: "actnorm" (per-channel affine) or "batchnorm" (invertible batch norm: batch statistics over
        the valid frames in training, running statistics in eval mode, where it is exactly invertible).
    coupling_type: coupling network "wavenet" (WN, as Glow-TTS) or "conformer" (``n_layers`` small conformer
        blocks of dim ``hidden_channels`` with ``n_heads`` MHSA heads, FF dim 2*hidden, conv kernel ``kernel_size``;
        ``dilation_rate`` unused).
    n_early_every: multiscale flow (0 = off): every ``n_early_every`` blocks half of the current channels is
        factored out (Glow-style) and concatenated again (``cat(early_1, early_2, ..., final)``) at the end;
        exactly invertible. The channel count of each stage must stay divisible by ``n_split``.
    """

    hidden_channels: int = 192
    kernel_size: int = 5
    dilation_rate: int = 1
    n_blocks: int = 12
    n_layers: int = 4
    p_dropout: float = 0.05
    n_split: int = 4
    n_sqz: int = 2
    sigmoid_scale: bool = False
    norm_type: str = "actnorm"
    coupling_type: str = "wavenet"
    n_heads: int = 2
    n_early_every: int = 0


@dataclass(frozen=True)
class SpeakerConfig:
    """Speaker conditioning vector g (feeds the duration predictor and every coupling layer).

    ``mode="embedding"``: L2-normalised ``nn.Embedding(n_speakers, gin_channels)`` on ``speaker_labels``;
    ``mode="xvector"``: given x-vectors ``[B, xvector_dim]`` (``xvectors``), optionally through a trainable
    ``Linear(xvector_dim, gin_channels) + ReLU`` bottleneck (without it gin_channels must equal xvector_dim);
    ``mode="none"``: single-speaker, no conditioning.
    """

    mode: str = "embedding"
    n_speakers: int = 251
    gin_channels: int = 256
    xvector_dim: int = 512
    bottleneck: bool = True


@dataclass(frozen=True)
class PhonemeHeadConfig:
    """Frame-level phoneme classifier on a Glow-TTS latent: ``head_type`` in {"ffn", "cnn", "blstm"}.

    ffn: ``n_layers`` Linear layers (n_layers-1 hidden + output); cnn: ``n_layers`` convs + output Linear;
    blstm: ``n_layers`` BLSTM layers of ``n_channels`` per direction + output Linear.
    """

    head_type: str = "ffn"
    n_channels: int = 512
    n_layers: int = 3
    kernel_size: int = 5
    p_dropout: float = 0.1


@dataclass(frozen=True)
class GlowTTSModelConfig:
    """Top-level config of the Glow-TTS family (TTS, joint with aux CE, given alignment, frozen probe).

    alignment: "mas" (Monotonic Alignment Search) or "given" (external ``durations`` define the alignment
        for MLE, duration target and CE labels).
    phoneme_head / label_target_size: optional aux classifier with ``label_target_size + 1`` outputs.
    aux_latent: input of the head: "flow_z" (flow output of the real mel; the original's "v1" and frozen
        "decoder" input) or "prior_sample" (z_m + exp(z_logs) * eps * aux_noise_scale; "v2" and frozen "encoder").
    ce_label_alignment: "given" (durations, as in all original models) or "mas" (the model's own MAS path of the
        real audio, as the frozen "_mas" probes; requires ``alignment="mas"``).
    freeze_glowtts: all Glow-TTS parts frozen (requires_grad False, eval mode, no_grad); only the head trains.
    freeze_text_encoder: only the text encoder (incl. duration predictor) is frozen (2-step "tts" variant).
    frozen_train_mode: the frozen parts stay in train mode (dropout active, still no gradients): the original's
        ``*_no_eval`` probes.
    distance_loss: extra loss "ed" (scale ``ed_scale`` of train_step): "dist" / "logdist" = the original
        ``*_dist_loss`` / ``*_logdist_loss`` models: minus the (log of the) summed pairwise euclidean distance
        between the per-phoneme-ID means of the encoder means x_m in the batch (pushes the phoneme priors apart).
        None = no "ed" loss.
    add_blank: a blank token between every two phonemes and at both ends (official Glow-TTS' ``add_blank``; the
        original's models have none). With ``alignment="given"`` it needs ``given_token_durations``; durations
        leaving the model are per phoneme.
    given_token_durations: the given alignment's path (MLE prior, duration targets, oracle-duration synthesis) is
        read per encoder token, blanks included (``TOKEN_DURATIONS_KEY``: the alignment model's whole Viterbi path,
        2N+1 per utterance), instead of per phoneme; the CE labels stay the per-phoneme ``durations`` (the same
        path with the blanks' frames merged onto their neighbours). Needs ``add_blank``. Why: a given-alignment
        model without blanks must model every transition inside a phoneme's single prior mean.
    ce_skip_blank_frames: the aux CE leaves out the frames the model's own path (MAS or the given token path)
        puts on a blank. Needs ``add_blank``. Why: with ``aux_latent="prior_sample"`` a blank frame's latent is the
        blank's mean for all its frames while its label is a neighbouring phoneme (the left half of an inner blank
        gets one neighbour, the right half the other), so the CE there asks one encoding for two labels. Training
        only: the evaluation ("phoneme_accuracy") still scores every frame.
    """

    text_encoder: TextEncoderConfig
    decoder: FlowDecoderConfig = FlowDecoderConfig()
    speaker: SpeakerConfig = SpeakerConfig()
    feature_extraction: FeatureExtractionConfig = FeatureExtractionConfig()
    out_channels: int = 80
    alignment: str = "mas"
    phoneme_head: Optional[PhonemeHeadConfig] = None
    label_target_size: Optional[int] = None
    aux_latent: str = "flow_z"
    aux_noise_scale: float = 1.0
    ce_label_alignment: str = "given"
    specaug: Optional[SpecaugConfig] = None
    specaug_start_epoch: int = 1
    freeze_glowtts: bool = False
    freeze_text_encoder: bool = False
    distance_loss: Optional[str] = None
    frozen_train_mode: bool = False
    add_blank: bool = False
    given_token_durations: bool = False
    ce_skip_blank_frames: bool = False

    def __sis_state__(self) -> Dict[str, Any]:
        """What the job hash covers: every field, except ``frozen_train_mode``, ``add_blank``,
        ``given_token_durations`` and ``ce_skip_blank_frames`` at their defaults (added later; the configs without
        them keep their job ids)."""
        state = dict(self.__dict__)
        for name in ("frozen_train_mode", "add_blank", "given_token_durations", "ce_skip_blank_frames"):
            if not state[name]:
                del state[name]
        return state


@dataclass(frozen=True)
class BlstmEncoderConfig:
    """BLSTM CTC encoder: frame stacking by ``subsampling_factor`` then ``n_layers`` BLSTM layers."""

    n_channels: int = 512
    n_layers: int = 2
    p_dropout: float = 0.1
    subsampling_factor: int = 4


@dataclass(frozen=True)
class ConformerEncoderConfig:
    """Conformer CTC encoder with a VGG-style 4x time-reduction frontend."""

    conformer_size: int = 384
    num_layers: int = 12
    num_heads: int = 4
    ff_dim: int = 1536
    conv_kernel_size: int = 31
    att_weights_dropout: float = 0.2
    conv_dropout: float = 0.2
    ff_dropout: float = 0.2
    mhsa_dropout: float = 0.2
    final_dropout: float = 0.2
    frontend_channels: Tuple[int, int, int, int] = (32, 64, 64, 32)
    frontend_kernel_size: int = 3
    frontend_pool: Tuple[int, int] = (2, 2)


@dataclass(frozen=True)
class AsrModelConfig:
    """CTC ASR on log-mel features (``input_type="log_mel"``) or on the frozen Glow-TTS flow output z
    (``input_type="glow_latent"``, requires ``glowtts``; its flow/speaker parameters keep the TTS names so a
    TTS checkpoint preloads without prefix). Output size ``label_target_size + 1``, blank = last index."""

    label_target_size: int
    encoder: Union[BlstmEncoderConfig, ConformerEncoderConfig] = ConformerEncoderConfig()
    input_type: str = "log_mel"
    glowtts: Optional[GlowTTSModelConfig] = None
    feature_extraction: FeatureExtractionConfig = FeatureExtractionConfig()
    specaug: Optional[SpecaugConfig] = None
    specaug_start_epoch: int = 1


@dataclass(frozen=True)
class SearchConfig:
    """How CTC output becomes words (hashed with every search job).

    ``decoder="greedy"``: best path (argmax per frame), merged repeats, blanks dropped, then every word's label
    sequence looked up in the lexicon; a label sequence that is no lexicon entry becomes ``unknown_word`` (an
    error sclite counts), homophones resolve to the word listed first in the lexicon (the project's lexicons are
    sorted, so: the alphabetically first), so a recogniser that cannot tell them apart makes errors.

    ``decoder="beam"``: lexicon-constrained CTC beam search (flashlight-text's ``LexiconDecoder``): only lexicon
    words come out. With ``lm_file`` (ARPA, gzipped ARPA or KenLM binary; word level) the n-gram LM scores the
    words and decides between homophones; without it every homophone group keeps only its lexicon-first word, as in
    greedy mode. ``lm_weight`` multiplies the LM's log10 probabilities (KenLM's and flashlight's convention; the
    acoustic scores are natural-log CTC posteriors), ``word_score`` is added per word (insertion bonus/penalty),
    ``sil_score`` per silence/word-separator frame, ``beam_threshold`` prunes hypotheses that far below the best,
    ``beam_size_token`` limits the labels tried per frame (None: all).
    """

    decoder: str = "greedy"
    beam_size: int = 50
    beam_size_token: Optional[int] = None
    beam_threshold: float = 25.0
    lm_file: Optional[Any] = None  # tk.Path in the job graph, a file name in the worker
    lm_weight: float = 1.0
    word_score: float = 0.0
    sil_score: float = 0.0
    unknown_word: str = "<unk>"

    def __post_init__(self):
        if self.decoder not in ("greedy", "beam"):
            raise ValueError(f"SearchConfig.decoder must be 'greedy' or 'beam', got {self.decoder!r}")
        if self.decoder == "greedy" and self.lm_file is not None:
            raise ValueError("SearchConfig: an lm_file needs decoder='beam' (greedy decoding uses no LM)")
        if self.beam_size < 1 or (self.beam_size_token is not None and self.beam_size_token < 1):
            raise ValueError(f"SearchConfig: beam sizes must be >= 1, got {self.beam_size}, {self.beam_size_token}")


@dataclass(frozen=True)
class MelToLinearConfig:
    """The trained vocoder front of the original (Rossenbach's BLSTM Griffin-Lim predictor, docs/networks.md §9):
    dB-mel ``[B, T, F]`` (``feature_extraction``'s features, normalised as the TTS models' are) -> ``num_layers``
    BLSTM layers of ``hidden_size`` per direction, their outputs summed, concatenated with
    ``ReLU(Linear(F -> mel_projection_size)(mel))`` -> Linear -> log10 linear magnitude ``[B, T, n_fft//2+1]`` of the
    same STFT framing (Griffin-Lim then recovers the phase). Loss: ``mse_scale`` x MSE of the magnitude plus
    ``log_mse_scale`` x MSE of its log10 (the original's 0.05 and 1.0); log10 of the target is floored at
    ``sqrt(feature_extraction.min_amp)``, the magnitude the features' power floor stands for.
    """

    feature_extraction: FeatureExtractionConfig
    hidden_size: int = 512
    num_layers: int = 2
    mel_projection_size: int = 512
    mse_scale: float = 0.05
    log_mse_scale: float = 1.0


@dataclass(frozen=True)
class XVectorConfig:
    """The x-vector TDNN of :mod:`.xvector` (here, not there, so building a graph needs no torch)."""

    num_speakers: int
    input_dim: int = 80
    channels: int = 256
    pooling_channels: int = 512
    embedding_dim: int = 512
    dropout: float = 0.1


ALL_CONFIG_CLASSES = (
    FeatureExtractionConfig,
    SpecaugConfig,
    TextEncoderConfig,
    FlowDecoderConfig,
    SpeakerConfig,
    PhonemeHeadConfig,
    GlowTTSModelConfig,
    BlstmEncoderConfig,
    ConformerEncoderConfig,
    AsrModelConfig,
    SearchConfig,
    MelToLinearConfig,
)


def config_classes_in(cfg) -> set:
    """All dataclass types reachable from ``cfg`` (for writing ``from ... import ...`` lines)."""
    found = set()
    stack = [cfg]
    while stack:
        obj = stack.pop()
        if is_dataclass(obj) and not isinstance(obj, type):
            found.add(type(obj))
            stack.extend(getattr(obj, f.name) for f in fields(obj))
        elif isinstance(obj, (list, tuple)):
            stack.extend(obj)
    return found
