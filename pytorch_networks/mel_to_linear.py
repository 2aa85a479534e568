"""RETURNN entry module of the trained mel-to-linear vocoder front (the original's BLSTM Griffin-Lim predictor).

Why: Griffin-Lim needs a linear magnitude; the pseudo-inverse of the mel filter bank smears the 80 mel bands over the
401 linear bins (and clamps negative values), which makes the resynthesis noisy. The original trained a BLSTM that
maps the dB-mel features to the log10 linear magnitude (docs/networks.md §9); :class:`~.configs.MelToLinearConfig`
describes it. Features and target come from the same raw audio and the same STFT framing
(:class:`~.feature_extraction.DbMelFeatureExtraction`), so the net learns exactly the inversion the TTS models need.

RETURNN functions: :func:`get_model`, :func:`train_step` (losses ``mse`` and ``log_mse``), :func:`forward_step`
(outputs ``linear`` = predicted magnitude, ``target`` = |STFT| of the audio, ``mel`` = the features, each
``[B, T, ...]``) with :class:`SpectralDistanceCallback`. :class:`MelToLinearPredictor` runs a trained checkpoint
inside another forward (``callbacks.GriffinLimAudioCallback``).
"""
from __future__ import annotations

import math
from typing import Optional, Tuple

import numpy as np
import torch
from returnn.forward_iface import ForwardCallbackIface
from torch import nn

from .configs import AUDIO_KEY, MelToLinearConfig  # noqa: F401  (configs refer to network_module.<Config>)
from .feature_extraction import DbMelFeatureExtraction
from .returnn_io import get_data, mark_loss, mark_output


class MelToLinearModel(nn.Module):
    def __init__(self, cfg: MelToLinearConfig):
        super().__init__()
        self.cfg = cfg
        self.feature_extraction = DbMelFeatureExtraction(cfg.feature_extraction)
        n_mels = cfg.feature_extraction.num_filters
        self.n_linear = self.feature_extraction.n_fft // 2 + 1
        if cfg.num_layers < 1:
            raise ValueError(f"MelToLinearConfig.num_layers must be >= 1, got {cfg.num_layers}")
        self.blstms = nn.ModuleList(
            nn.LSTM(n_mels if i == 0 else 2 * cfg.hidden_size, cfg.hidden_size, batch_first=True, bidirectional=True)
            for i in range(cfg.num_layers))
        self.mel_projection = nn.Linear(n_mels, cfg.mel_projection_size)
        self.output = nn.Linear(2 * cfg.hidden_size + cfg.mel_projection_size, self.n_linear)
        # log10 floor of the target magnitude: the features floor the mel *power* at min_amp
        self.log_floor = 0.5 * math.log10(cfg.feature_extraction.min_amp)

    def forward(self, mel: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """dB-mel ``[B, T, F]`` -> log10 linear magnitude ``[B, T, n_fft//2+1]`` (zero at padding)."""
        x = mel
        summed = None
        lengths_cpu = lengths.detach().cpu().clamp(min=1)
        for blstm in self.blstms:
            packed = nn.utils.rnn.pack_padded_sequence(x, lengths_cpu, batch_first=True, enforce_sorted=False)
            out, _ = blstm(packed)
            x, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=mel.shape[1])
            summed = x if summed is None else summed + x
        h = torch.cat([summed, torch.relu(self.mel_projection(mel))], dim=-1)
        mask = torch.arange(mel.shape[1], device=mel.device)[None, :] < lengths.to(mel.device)[:, None]
        return self.output(h) * mask[:, :, None]

    def features_and_target(self, audio: torch.Tensor, audio_lengths: torch.Tensor
                            ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(dB-mel ``[B, T, F]``, true magnitude ``[B, T, n_fft//2+1]`` (zero at padding), frame lengths ``[B]``)."""
        mel, lengths = self.feature_extraction(audio, audio_lengths)
        magnitude = torch.sqrt(self.feature_extraction.power_spectrum(audio, audio_lengths)).transpose(1, 2)
        mask = torch.arange(magnitude.shape[1], device=mel.device)[None, :] < lengths[:, None]
        return mel, magnitude * mask[:, :, None], lengths


def get_model(*, epoch: int = 0, step: int = 0, config: MelToLinearConfig, **_kwargs) -> MelToLinearModel:
    """RETURNN ``get_model`` (bind ``config`` with functools.partial)."""
    return MelToLinearModel(config)


def _masked_mean(values: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    mask = torch.arange(values.shape[1], device=values.device)[None, :] < lengths[:, None]
    return (values * mask[:, :, None]).sum() / (mask.sum() * values.shape[2]).clamp(min=1)


def train_step(*, model: MelToLinearModel, extern_data, **_kwargs) -> None:
    """Losses ``mse`` (magnitude, scale ``mse_scale``) and ``log_mse`` (log10 magnitude, scale ``log_mse_scale``),
    each the mean over the valid frames and linear bins (the original: sums / 401, normalised by the frames)."""
    device = model.output.weight.device
    audio, audio_lengths = get_data(extern_data, AUDIO_KEY, device)
    mel, target, lengths = model.features_and_target(audio, audio_lengths)
    log_pred = model(mel, lengths)
    log_target = torch.log10(torch.clamp(target, min=10.0 ** model.log_floor))
    mark_loss("mse", _masked_mean((torch.pow(10.0, log_pred) - target) ** 2, lengths), scale=model.cfg.mse_scale)
    mark_loss("log_mse", _masked_mean((log_pred - log_target) ** 2, lengths), scale=model.cfg.log_mse_scale)


def forward_step(*, model: MelToLinearModel, extern_data, **_kwargs) -> None:
    """Outputs ``linear`` (predicted magnitude), ``target`` (|STFT| of the audio) and ``mel`` (the features)."""
    device = model.output.weight.device
    audio, audio_lengths = get_data(extern_data, AUDIO_KEY, device)
    mel, target, lengths = model.features_and_target(audio, audio_lengths)
    mark_output("linear", torch.pow(10.0, model(mel, lengths)), lengths)
    mark_output("target", target, lengths)
    mark_output("mel", mel, lengths)


# ------------------------------------------------------------------------------------------- evaluation

def log_spectral_distance(magnitude: np.ndarray, reference: np.ndarray, floor: float = 1e-5) -> float:
    """RMS over every bin and frame of the dB difference of two magnitudes ``[..., bins]`` (both floored at
    ``floor``, so that the pseudo-inverse's clamped zeros count as a floor value, not minus infinity)."""
    diff = 20.0 * (np.log10(np.maximum(magnitude, floor)) - np.log10(np.maximum(reference, floor)))
    return float(np.sqrt(np.mean(diff ** 2)))


def spectral_convergence(magnitude: np.ndarray, reference: np.ndarray) -> float:
    """``||S - S_hat||_F / ||S||_F`` (Arik et al. 2019), on linear magnitudes."""
    return float(np.linalg.norm(reference - magnitude) / max(np.linalg.norm(reference), 1e-12))


class SpectralDistanceCallback(ForwardCallbackIface):
    """How close the trained net's linear magnitude, and the mel pseudo-inverse's (plain Griffin-Lim's input), come
    to the true |STFT| of the forwarded audio: writes ``spectral_distance.csv`` with a header and the rows
    ``mel_to_linear`` and ``pseudo_inverse``, columns ``log_spectral_distance_db`` (RMS dB difference) and
    ``spectral_convergence``, each the mean over utterances."""

    def __init__(self, filename: str = "spectral_distance.csv"):
        self.filename = filename
        self.pinv = None
        self.values = {}

    def init(self, *, model):
        from .vocoder import GriffinLimVocoder

        self.pinv = GriffinLimVocoder(model.cfg.feature_extraction)
        self.values = {"mel_to_linear": [], "pseudo_inverse": []}

    def process_seq(self, *, seq_tag: str, outputs):
        target = np.asarray(outputs["target"].raw_tensor, dtype=np.float64)
        predictions = {"mel_to_linear": np.asarray(outputs["linear"].raw_tensor, dtype=np.float64),
                       "pseudo_inverse": self.pinv.linear_magnitude(np.asarray(outputs["mel"].raw_tensor)).T}
        for name, magnitude in predictions.items():
            self.values[name].append((log_spectral_distance(magnitude, target),
                                      spectral_convergence(magnitude, target)))

    def finish(self):
        with open(self.filename, "w") as f:
            f.write("vocoder,log_spectral_distance_db,spectral_convergence\n")
            for name, rows in self.values.items():
                lsd, sc = np.mean(np.array(rows), axis=0) if rows else (float("nan"), float("nan"))
                f.write(f"{name},{float(lsd)!r},{float(sc)!r}\n")


class MelToLinearPredictor:
    """A trained checkpoint of :class:`MelToLinearModel` as the magnitude source of Griffin-Lim (in
    ``GriffinLimAudioCallback``): ``[T, F]`` dB-mel -> ``[n_fft//2+1, T]`` linear magnitude."""

    def __init__(self, config: MelToLinearConfig, checkpoint: str, device: Optional[torch.device] = None):
        self.device = device or torch.device("cpu")
        self.model = MelToLinearModel(config)
        state = torch.load(checkpoint, map_location="cpu")
        self.model.load_state_dict(state["model"] if "model" in state else state)
        self.model.to(self.device).eval()

    @torch.no_grad()
    def __call__(self, log_mel: np.ndarray) -> np.ndarray:
        mel = torch.as_tensor(np.asarray(log_mel, dtype=np.float32), device=self.device)[None]
        log_magnitude = self.model(mel, torch.tensor([mel.shape[1]], device=self.device))[0]
        return torch.pow(10.0, log_magnitude).T.double().cpu().numpy()
