"""RETURNN entry module for CTC ASR (BLSTM or Conformer) on log-mel features or on the frozen Glow-TTS latent.

``input_type="glow_latent"``: the flow decoder and speaker conditioning of a trained Glow-TTS (config
``AsrModelConfig.glowtts``) map the real mel to z under no_grad/eval; parameter names ``speaker.*``/``decoder.*``
equal the TTS model's, so ``preload_from_files`` with the TTS checkpoint loads them; preload it with
``config.preload(..., new_params_prefixes=AsrModel.NEW_PARAMS_PREFIXES)`` so that a missing TTS parameter fails.

Loss ``ctc`` (sum over the batch, normalised by the number of target labels); forward = CTC log-probs, which
:class:`SearchOutCallback` decodes (greedy, or lexicon-constrained beam search with an optional word n-gram LM) into
words written to ``search_out.py``.
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import numpy as np
import torch
from returnn.forward_iface import ForwardCallbackIface
from torch import nn

from .configs import (ASR_NEW_PARAMS_PREFIXES, AUDIO_KEY, PHONEMES_EOW_KEY, AsrModelConfig, BlstmEncoderConfig,
                      ConformerEncoderConfig, SearchConfig)
from .conformer import BlstmEncoder, ConformerEncoder
from .ctc_decoding import LexiconWordMapper, greedy_ctc_decode, read_lexicon, read_vocab
from .feature_extraction import DbMelFeatureExtraction
from .glow_tts.flow import FlowDecoder
from .returnn_io import current_epoch, get_data, mark_loss, mark_output, seq_len_tensor
from .specaug import apply_spec_aug
from .speaker import SpeakerConditioning


class AsrModel(nn.Module):
    #: the recogniser's own parameters; on the Glow-TTS latent, everything else comes from the TTS checkpoint
    NEW_PARAMS_PREFIXES = ASR_NEW_PARAMS_PREFIXES

    def __init__(self, cfg: AsrModelConfig):
        super().__init__()
        self.cfg = cfg
        self.speaker = None
        self.decoder = None
        if cfg.input_type == "glow_latent":
            assert cfg.glowtts is not None, "input_type='glow_latent' needs the glowtts config"
            fe_cfg = cfg.glowtts.feature_extraction
            self.speaker = SpeakerConditioning(cfg.glowtts.speaker)
            self.decoder = FlowDecoder(cfg.glowtts.decoder, cfg.glowtts.out_channels, self.speaker.gin_channels)
            for module in (self.speaker, self.decoder):
                for p in module.parameters():
                    p.requires_grad_(False)
            in_dim = cfg.glowtts.out_channels
        elif cfg.input_type == "log_mel":
            fe_cfg = cfg.feature_extraction
            in_dim = fe_cfg.num_filters
        else:
            raise ValueError(f"unknown input_type {cfg.input_type!r}")
        self.feature_extraction = DbMelFeatureExtraction(fe_cfg)
        if isinstance(cfg.encoder, ConformerEncoderConfig):
            self.asr_encoder = ConformerEncoder(in_dim, cfg.encoder)
        elif isinstance(cfg.encoder, BlstmEncoderConfig):
            self.asr_encoder = BlstmEncoder(in_dim, cfg.encoder)
        else:
            raise TypeError(f"unknown encoder config {type(cfg.encoder)}")
        self.output = nn.Linear(self.asr_encoder.out_dim, cfg.label_target_size + 1)
        self.train(True)

    @property
    def blank_index(self) -> int:
        return self.cfg.label_target_size

    def train(self, mode: bool = True):
        """The frozen Glow-TTS parts stay in eval mode, unless ``glowtts.frozen_train_mode`` (the original's first
        BLSTM 2nd-step recognisers, which left their dropout active)."""
        super().train(mode)
        if self.cfg.glowtts is not None and self.cfg.glowtts.frozen_train_mode:
            return self
        for module in (self.speaker, self.decoder):
            if module is not None:
                module.eval()
        return self

    def input_features(self, audio: torch.Tensor, audio_lengths: torch.Tensor,
                       speaker_input: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        """``[B, T, F]`` log-mel or Glow-TTS latent z, with frame lengths."""
        feats, lengths = self.feature_extraction(audio, audio_lengths)
        if self.decoder is None:
            return feats, lengths
        with torch.no_grad():
            n_sqz = self.cfg.glowtts.decoder.n_sqz
            t = (feats.shape[1] // n_sqz) * n_sqz
            lengths = torch.div(lengths, n_sqz, rounding_mode="floor") * n_sqz
            y = feats[:, :t].transpose(1, 2)
            mask = (torch.arange(t, device=y.device)[None, :] < lengths[:, None]).unsqueeze(1).to(y.dtype)
            g = self.speaker(speaker_input)
            z, _ = self.decoder(y * mask, mask, g)
        return z.transpose(1, 2), lengths

    def forward(self, audio: torch.Tensor, audio_lengths: torch.Tensor, speaker_input: Optional[torch.Tensor] = None,
                epoch: int = 1) -> Tuple[torch.Tensor, torch.Tensor]:
        """Returns CTC log-probs ``[B, T', V+1]`` and output lengths."""
        x, lengths = self.input_features(audio, audio_lengths, speaker_input)
        if self.training and self.cfg.specaug is not None and epoch >= self.cfg.specaug_start_epoch:
            x = apply_spec_aug(x, lengths, self.cfg.specaug)
        h, lengths = self.asr_encoder(x, lengths)
        return torch.log_softmax(self.output(h), dim=-1), lengths


def get_model(*, epoch: int = 0, step: int = 0, config: AsrModelConfig, **_kwargs) -> AsrModel:
    """RETURNN ``get_model`` (bind ``config`` with functools.partial)."""
    return AsrModel(config)


def _run(model: AsrModel, extern_data, epoch: int = 1):
    device = model.output.weight.device
    audio, audio_lengths = get_data(extern_data, AUDIO_KEY, device)
    speaker_input = None
    if model.speaker is not None and model.speaker.input_key is not None:
        speaker_input = get_data(extern_data, model.speaker.input_key, device)[0]
    return model(audio, audio_lengths, speaker_input, epoch)


def train_step(*, model: AsrModel, extern_data, target_key: str = PHONEMES_EOW_KEY, **_kwargs) -> None:
    """Loss ``ctc`` = summed CTC (zero_infinity) normalised by the total number of target labels."""
    log_probs, lengths = _run(model, extern_data, current_epoch())
    targets, target_lengths = get_data(extern_data, target_key, log_probs.device)
    loss = nn.functional.ctc_loss(log_probs.transpose(0, 1), targets.long(), lengths, target_lengths,
                                  blank=model.blank_index, reduction="sum", zero_infinity=True)
    mark_loss("ctc", loss, inv_norm=seq_len_tensor(extern_data, target_key))


def forward_step(*, model: AsrModel, extern_data, **_kwargs) -> None:
    """Output ``log_probs [B, T', V+1]`` (CTC log-posteriors, blank last) with their lengths; the search callback
    decodes them (greedy or beam search, :class:`SearchOutCallback`)."""
    log_probs, lengths = _run(model, extern_data)
    mark_output("log_probs", log_probs, lengths)


class SearchOutCallback(ForwardCallbackIface):
    """Decodes each utterance's ``log_probs`` as ``search`` says (:class:`.configs.SearchConfig`: greedy best path
    or lexicon-constrained beam search with an optional n-gram LM), maps labels to words through the lexicon and
    writes ``search_out.py`` (``{seq_tag: "words", ...}``, i6_core format). Without a lexicon (greedy only) the
    label strings are written."""

    def __init__(self, vocab: str | List[str], lexicon: Optional[str] = None, eow_suffix: Optional[str] = "#",
                 word_separator: Optional[str] = None, search: SearchConfig = SearchConfig(),
                 filename: str = "search_out.py", prior_file: Optional[str] = None, prior_scale: float = 0.0):
        if search.decoder == "beam" and lexicon is None:
            raise ValueError("SearchOutCallback: beam search needs a lexicon")
        self.vocab = vocab
        self.lexicon = lexicon
        self.eow_suffix = eow_suffix
        self.word_separator = word_separator
        self.search = search
        self.filename = filename
        self.prior_file = prior_file  # log label priors (``PriorCallback``), subtracted times ``prior_scale``
        self.prior_scale = prior_scale
        self.prior = None
        self.labels: List[str] = []
        self.decode = None
        self.results = {}

    def init(self, *, model):
        self.labels = read_vocab(self.vocab) if isinstance(self.vocab, str) else list(self.vocab)
        lexicon = read_lexicon(self.lexicon) if self.lexicon is not None else None
        if self.prior_file is not None:
            self.prior = np.loadtxt(self.prior_file, dtype=np.float32).reshape(-1)
            if len(self.prior) != len(self.labels) + 1:
                raise ValueError(f"prior {self.prior_file} has {len(self.prior)} entries, the vocabulary "
                                 f"{len(self.labels)} labels + blank")
        if self.search.decoder == "beam":
            from .lexicon_search import LexiconBeamSearch

            self.decode = LexiconBeamSearch(self.labels, lexicon, self.search, self.eow_suffix, self.word_separator)
        else:
            mapper = None
            if lexicon is not None:
                mapper = LexiconWordMapper(lexicon, self.eow_suffix, self.word_separator, self.search.unknown_word)
            blank = len(self.labels)

            def decode(log_probs: np.ndarray) -> List[str]:
                ids = greedy_ctc_decode(torch.from_numpy(log_probs)[None], torch.tensor([len(log_probs)]), blank)[0]
                labels = [self.labels[i] for i in ids]
                return mapper(labels) if mapper is not None else labels

            self.decode = decode
        self.results = {}

    def process_seq(self, *, seq_tag: str, outputs):
        log_probs = np.asarray(outputs["log_probs"].raw_tensor, dtype=np.float32)
        if log_probs.shape[-1] != len(self.labels) + 1:
            raise ValueError(f"{seq_tag}: the model gives {log_probs.shape[-1]} CTC outputs, the vocabulary "
                             f"{self.vocab if isinstance(self.vocab, str) else ''} has {len(self.labels)} labels "
                             f"(+ blank)")
        if self.prior is not None:
            log_probs = log_probs - self.prior_scale * self.prior
        self.results[seq_tag] = " ".join(self.decode(log_probs))

    def finish(self):
        with open(self.filename, "w", encoding="utf-8") as f:
            f.write("{\n")
            for tag, text in self.results.items():
                f.write(f"{tag!r}: {text!r},\n")
            f.write("}\n")


class PriorCallback(ForwardCallbackIface):
    """Label prior of a CTC model (the original's ``prior.txt``): the log of the posteriors averaged over every
    frame of the forwarded data, one value per output (blank last), written with ``np.savetxt``."""

    def __init__(self, filename: str = "prior.txt"):
        self.filename = filename
        self.total = None
        self.frames = 0

    def init(self, *, model):
        self.total, self.frames = None, 0

    def process_seq(self, *, seq_tag: str, outputs):
        probs = np.exp(np.asarray(outputs["log_probs"].raw_tensor, dtype=np.float64))
        self.total = probs.sum(0) if self.total is None else self.total + probs.sum(0)
        self.frames += probs.shape[0]

    def finish(self):
        if not self.frames:
            raise ValueError("PriorCallback: no frames were forwarded")
        np.savetxt(self.filename, np.log(self.total / self.frames))
