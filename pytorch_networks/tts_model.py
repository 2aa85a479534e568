"""RETURNN entry module of the Glow-TTS family.

One configurable model covers all TTS / joint / given-alignment / frozen / 2-step variants
(see :class:`~.configs.GlowTTSModelConfig`):

* TTS:               ``alignment="mas"``, no head -> losses ``mle``, ``dp``
* joint (aux CE):    + ``phoneme_head`` -> loss ``ce`` (scale ``ce_loss_scale``) on ``aux_latent``; with
                     ``ce_skip_blank_frames`` not on the frames the model's path puts on a blank
* given alignment:   ``alignment="given"`` (durations define prior alignment, dp target and CE labels)
* frozen probe:      ``freeze_glowtts=True`` -> only ``ce``; Glow-TTS weights come from ``preload_from_files``
* 2-step:            step 2 = same config, preloaded from the step-1 checkpoint, with ``freeze_glowtts`` (CE
                     head only), ``ce_loss_scale=0`` or ``freeze_text_encoder`` (TTS continuation)

* distance loss:     ``distance_loss`` ("dist"/"logdist") -> loss ``ed`` (scale ``ed_scale``)

RETURNN functions: :func:`get_model`, :func:`train_step`, :func:`forward_step` (``mode`` = "synthesis",
"durations", "token_durations", "latent", "phoneme_accuracy", "invertibility", "statistics"); callbacks are in
:mod:`.callbacks`.
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import torch
from torch import nn

from .callbacks import (  # noqa: F401  (re-exported: configs refer to module.<CallbackClass>)
    DurationHDFCallback,
    FeatureStatsCallback,
    GriffinLimAudioCallback,
    InvertibilityStatsCallback,
    LatentHDFCallback,
    PhonemeAccuracyCallback,
)
from .commons import (duration_loss, encoding_distance_loss, frame_accuracy, masked_frame_ce, mle_loss, sequence_mask,
                      upsample_labels)
from .configs import AUDIO_KEY, DURATIONS_KEY, PHONEMES_KEY, TOKEN_DURATIONS_KEY, GlowTTSModelConfig
from .feature_extraction import num_frames
from .glow_tts.blanks import frames_on_blanks
from .glow_tts.model import GlowTTS, GlowTTSOutput
from .phoneme_heads import make_phoneme_head
from .returnn_io import current_epoch, get_data, mark_loss, mark_output
from .specaug import apply_spec_aug


class GlowTTSJointModel(GlowTTS):
    """Glow-TTS plus an optional frame-level phoneme head (``phoneme_head.*``) and freezing options."""

    def __init__(self, cfg: GlowTTSModelConfig):
        super().__init__(cfg)
        self.phoneme_head = None
        if cfg.phoneme_head is not None:
            assert cfg.label_target_size is not None, "phoneme_head needs label_target_size"
            self.phoneme_head = make_phoneme_head(cfg.phoneme_head, cfg.out_channels, cfg.label_target_size + 1)
        if cfg.freeze_glowtts and self.phoneme_head is None:
            raise ValueError("freeze_glowtts without phoneme_head leaves nothing to train")
        if cfg.ce_label_alignment not in ("given", "mas"):
            raise ValueError(f"unknown ce_label_alignment {cfg.ce_label_alignment!r}")
        if cfg.ce_label_alignment == "mas" and cfg.alignment != "mas":
            # out.attn would be the given path: "mas" labels would silently equal the given ones
            raise ValueError("ce_label_alignment='mas' needs alignment='mas' (the model's own MAS path gives the "
                             f"labels), got alignment={cfg.alignment!r}")
        if cfg.ce_skip_blank_frames and not cfg.add_blank:
            raise ValueError("ce_skip_blank_frames leaves out the frames on blanks: it needs add_blank")
        for module in self.frozen_modules():
            for p in module.parameters():
                p.requires_grad_(False)
        self.train(True)

    def frozen_modules(self) -> List[nn.Module]:
        if self.cfg.freeze_glowtts:
            return [self.speaker, self.encoder, self.decoder]
        if self.cfg.freeze_text_encoder:
            return [self.encoder]
        return []

    def train(self, mode: bool = True):
        """Frozen parts stay in eval mode (no dropout), whatever RETURNN sets (unless ``frozen_train_mode``)."""
        super().train(mode)
        if self.cfg.frozen_train_mode:
            return self
        for module in self.frozen_modules():
            module.eval()
        return self

    def head_latent(self, out: GlowTTSOutput) -> torch.Tensor:
        """Input of the phoneme head ``[B, T, C]`` according to ``aux_latent``."""
        kind = self.cfg.aux_latent
        if kind == "flow_z":
            latent = out.z
        elif kind == "prior_sample":
            latent = (out.z_m + torch.exp(out.z_logs) * torch.randn_like(out.z_m) * self.cfg.aux_noise_scale)
            latent = latent * out.z_mask
        else:
            raise ValueError(f"unknown aux_latent {kind!r}")
        return latent.transpose(1, 2)

    def _use_specaug(self, epoch: int) -> bool:
        return self.training and self.cfg.specaug is not None and epoch >= self.cfg.specaug_start_epoch

    def phoneme_logits(self, out: GlowTTSOutput, epoch: int = 1) -> torch.Tensor:
        latent = self.head_latent(out)
        if self._use_specaug(epoch):
            latent = apply_spec_aug(latent, out.y_lengths, self.cfg.specaug)
        return self.phoneme_head(latent, out.y_lengths)

    def frame_labels(self, out: GlowTTSOutput, tokens: torch.Tensor, token_lengths: torch.Tensor,
                     durations: Optional[torch.Tensor]) -> torch.Tensor:
        """Token labels upsampled to frames ``[B, T]``: by the given durations (``ce_label_alignment="given"``) or
        by the model's own MAS path of the real audio (``"mas"``, which requires ``alignment="mas"``; with
        ``add_blank`` the blanks' frames go to their neighbouring phonemes)."""
        if self.cfg.ce_label_alignment == "mas":
            if not self.cfg.add_blank:
                return upsample_labels(tokens[:, : out.attn.shape[1]], out.attn)
            durations = self.phoneme_durations(out.attn.sum(-1).long(), token_lengths)
        elif durations is None:
            raise ValueError("ce_label_alignment='given' needs the durations")
        x_mask = sequence_mask(token_lengths, tokens.shape[1]).unsqueeze(1).to(out.z_mask.dtype)
        path = self.given_alignment(durations, x_mask, out.z_mask)
        return upsample_labels(tokens, path)

    def ce_frame_mask(self, out: GlowTTSOutput) -> torch.Tensor:
        """Frames ``[B, T]`` the aux CE is trained on: every valid frame, without those on a blank of the model's
        path with ``ce_skip_blank_frames``."""
        mask = sequence_mask(out.y_lengths, out.z.shape[2])
        if self.cfg.ce_skip_blank_frames:
            mask = mask & ~frames_on_blanks(out.attn)
        return mask


def get_model(*, epoch: int = 0, step: int = 0, config: GlowTTSModelConfig, **_kwargs) -> GlowTTSJointModel:
    """RETURNN ``get_model`` (bind ``config`` with functools.partial)."""
    return GlowTTSJointModel(config)


def _speaker_input(model: GlowTTS, extern_data, device) -> Optional[torch.Tensor]:
    key = model.speaker.input_key
    return None if key is None else get_data(extern_data, key, device)[0]


def _durations(extern_data, device, need: bool, key: str = DURATIONS_KEY) -> Optional[torch.Tensor]:
    """The given durations ``[B, N]`` of ``key`` (None unless ``need``)."""
    if not need:
        return None
    return get_data(extern_data, key, device)[0].reshape(extern_data[key].raw_tensor.shape[0], -1)


def _path_durations_key(model: GlowTTSJointModel) -> str:
    """The stream of the given alignment's path: per encoder token with ``given_token_durations``."""
    return TOKEN_DURATIONS_KEY if model.cfg.given_token_durations else DURATIONS_KEY


def run_model(model: GlowTTSJointModel, extern_data, with_head: bool = True, epoch: int = 1
              ) -> Tuple[GlowTTSOutput, Optional[torch.Tensor], Optional[torch.Tensor]]:
    """Training-mode pass from extern_data. Returns ``(glow outputs, head logits [B,T,V] | None, frame labels | None)``."""
    device = next(model.parameters()).device
    tokens, token_lengths = get_data(extern_data, PHONEMES_KEY, device)
    audio, audio_lengths = get_data(extern_data, AUDIO_KEY, device)
    cfg = model.cfg
    use_head = with_head and model.phoneme_head is not None
    path_durations = _durations(extern_data, device, cfg.alignment == "given", _path_durations_key(model))
    with torch.set_grad_enabled(torch.is_grad_enabled() and not cfg.freeze_glowtts):
        y, y_lengths = model.mel_features(audio, audio_lengths)
        g = model.speaker(_speaker_input(model, extern_data, device))
        out = model(tokens, token_lengths, y, y_lengths, g, path_durations)
    if not use_head:
        return out, None, None
    logits = model.phoneme_logits(out, epoch)
    label_durations = _durations(extern_data, device, cfg.ce_label_alignment == "given")
    labels = model.frame_labels(out, tokens, token_lengths, label_durations)
    return out, logits, labels


def distance_loss(model: GlowTTSJointModel, out: GlowTTSOutput, tokens: torch.Tensor) -> Optional[torch.Tensor]:
    """The "ed" loss selected by ``cfg.distance_loss`` (None if not configured)."""
    kind = model.cfg.distance_loss
    if kind is None:
        return None
    if model.cfg.add_blank:
        raise ValueError("distance_loss is defined on the phonemes' encodings; add_blank interleaves blanks")
    if kind in ("dist", "logdist"):
        token_lengths = out.x_mask.sum([1, 2]).long()
        return encoding_distance_loss(tokens[:, : out.x_m.shape[2]], out.x_m, token_lengths, log=kind == "logdist")
    raise ValueError(f"unknown distance_loss {kind!r}")


def train_step(*, model: GlowTTSJointModel, extern_data, ce_loss_scale: float = 1.0, mle_loss_scale: float = 1.0,
               dp_loss_scale: float = 1.0, ed_scale: float = 1.0, **_kwargs) -> None:
    """Losses: ``mle`` + ``dp`` (unless Glow-TTS is frozen), ``ed`` (if ``distance_loss``, scale ed_scale) and
    ``ce`` (if a head exists, scale ce_loss_scale)."""
    out, logits, labels = run_model(model, extern_data, epoch=current_epoch())
    if not model.cfg.freeze_glowtts:
        mark_loss("mle", mle_loss(out.z, out.z_m, out.z_logs, out.logdet, out.z_mask), scale=mle_loss_scale)
        token_lengths = out.x_mask.sum([1, 2])
        mark_loss("dp", duration_loss(out.logw, out.logw_target, token_lengths), scale=dp_loss_scale)
        device = out.z.device
        ed = distance_loss(model, out, get_data(extern_data, PHONEMES_KEY, device)[0])
        if ed is not None:
            mark_loss("ed", ed, scale=ed_scale)
    if logits is not None:
        mark_loss("ce", masked_frame_ce(logits, labels, model.ce_frame_mask(out)), scale=ce_loss_scale)


def forward_step(*, model: GlowTTSJointModel, extern_data, mode: str = "synthesis", noise_scale: float = 0.66,
                 length_scale: float = 1.0, duration_source: str = "predictor", **_kwargs) -> None:
    """Forward outputs per ``mode``:

    * "synthesis": ``mel [B, T, F]`` generated from text (-> :class:`GriffinLimAudioCallback`); token durations from
      the duration predictor (``duration_source="predictor"``, the default for synthesis) or the given durations
      (``"given"``: the oracle-durations control)
    * "resynthesis": ``mel [B, T, F]`` the log-mel features of the real audio (the vocoder-ceiling control)
    * "durations": ``durations [B, N]`` int32: per-token frame counts of the Viterbi (MAS) / given alignment of the
      real audio (-> :class:`DurationHDFCallback`)
    * "token_durations": as "durations", per encoder token of a model with blanks (``[B, 2N+1]``, blanks' frames
      not merged: the given durations of ``given_token_durations`` models)
    * "predicted_durations": ``durations [B, N]`` int32: the duration predictor's ``round(exp(logw))`` for the text
      (no length scale; the original's durations HDF; their sum need not match the audio's frames)
    * "latent": ``z`` (flow output of the real mel) and ``z_mean`` (aligned prior means), ``[B, T, F]``
      (-> :class:`LatentHDFCallback`)
    * "phoneme_accuracy": ``accuracy [B]`` frame accuracy of the head (-> :class:`PhonemeAccuracyCallback`)
    * "invertibility": ``abs_error [B, T, F]`` = ``|y - f^-1(f(y))|`` of the real mel through the flow decoder
      (-> :class:`InvertibilityStatsCallback`, running statistics over all valid elements)
    * "statistics": ``features [B, T, F]`` the normalised log-mel of the real audio as the flow sees it (frames cut
      to a multiple of ``n_sqz``, as the original's ``preprocess``) (-> :class:`FeatureStatsCallback`: the original's
      feature statistics, running over all valid elements; parameter-free, so no checkpoint is needed)
    """
    device = next(model.parameters()).device
    if mode == "synthesis":
        tokens, token_lengths = get_data(extern_data, PHONEMES_KEY, device)
        g = model.speaker(_speaker_input(model, extern_data, device))
        durations = _durations(extern_data, device, duration_source == "given", _path_durations_key(model))
        mel, mel_lengths, _ = model.generate(tokens, token_lengths, g, noise_scale, length_scale, durations)
        mark_output("mel", mel.transpose(1, 2), mel_lengths)
    elif mode == "resynthesis":
        audio, audio_lengths = get_data(extern_data, AUDIO_KEY, device)
        feats, lengths = model.feature_extraction(audio, audio_lengths)
        mark_output("mel", feats, lengths)
    elif mode in ("durations", "token_durations"):
        if mode == "token_durations" and not model.cfg.add_blank:  # a config error: before any model pass
            raise ValueError("forward mode 'token_durations' is for a model with blanks (add_blank); the "
                             "'durations' of a model without them are already per encoder token")
        tokens, token_lengths = get_data(extern_data, PHONEMES_KEY, device)
        out, _, _ = run_model(model, extern_data, with_head=False)
        if mode == "durations":
            durations = model.phoneme_durations(out.attn.sum(-1), token_lengths)
        else:
            durations, token_lengths = out.attn.sum(-1), 2 * token_lengths + 1
        # The flow sees the frames floored to a multiple of n_sqz; the last token (the trailing blank of the
        # token path, which merging gives to the last phoneme) also gets the frames cut off there, so the durations
        # add up to the feature frames of the audio (what consumers validate) and merge into the phoneme durations.
        _, audio_lengths = get_data(extern_data, AUDIO_KEY, device)
        fe = model.feature_extraction
        all_frames = num_frames(audio_lengths, fe.n_fft, fe.hop_length, model.cfg.feature_extraction.center)
        batch = torch.arange(durations.shape[0], device=device)
        durations[batch, token_lengths - 1] += (all_frames - out.y_lengths).to(durations.dtype)
        mark_output("durations", durations.to(torch.int32), token_lengths)
    elif mode == "predicted_durations":
        tokens, token_lengths = get_data(extern_data, PHONEMES_KEY, device)
        g = model.speaker(_speaker_input(model, extern_data, device))
        _, _, logw, x_mask = model.encode(tokens, token_lengths, g)
        durations = model.phoneme_durations(torch.round(torch.exp(logw) * x_mask)[:, 0], token_lengths)
        mark_output("durations", durations.to(torch.int32), token_lengths)
    elif mode == "latent":
        out, _, _ = run_model(model, extern_data, with_head=False)
        mark_output("z", out.z.transpose(1, 2), out.y_lengths)
        mark_output("z_mean", out.z_m.transpose(1, 2), out.y_lengths)
    elif mode == "phoneme_accuracy":
        out, logits, labels = run_model(model, extern_data)
        assert logits is not None, "phoneme_accuracy needs a phoneme head"
        mark_output("accuracy", frame_accuracy(logits, labels, out.y_lengths))
    elif mode == "invertibility":
        audio, audio_lengths = get_data(extern_data, AUDIO_KEY, device)
        y, y_lengths = model.mel_features(audio, audio_lengths)
        g = model.speaker(_speaker_input(model, extern_data, device))
        mark_output("abs_error", flow_roundtrip_error(model, y, y_lengths, g).transpose(1, 2), y_lengths)
    elif mode == "statistics":
        audio, audio_lengths = get_data(extern_data, AUDIO_KEY, device)
        y, y_lengths = model.mel_features(audio, audio_lengths)
        mark_output("features", y.transpose(1, 2), y_lengths)
    else:
        raise ValueError(f"unknown forward mode {mode!r}")


@torch.no_grad()
def flow_roundtrip_error(model: GlowTTS, y: torch.Tensor, y_lengths: torch.Tensor, g: Optional[torch.Tensor]
                         ) -> torch.Tensor:
    """``|y - f^-1(f(y))|`` ``[B, C, T]`` (zero at padding) for mel ``y [B, C, T]``."""
    z, _, z_mask = model.flow_latent(y, y_lengths, g)
    y_rec, _ = model.decoder(z, z_mask, g, reverse=True)
    return (y * z_mask - y_rec).abs() * z_mask
