"""Glow-TTS training throughput (mel frames per second, forward + MAS + loss + backward + Adam step): the
project's model vs coqui-tts' Glow-TTS at the same configuration, side by side in interleaved rounds.

Reference: the PyPI package ``coqui-tts`` (``pip install -e .[benchmarks]``), its Glow-TTS text encoder
(``TTS.tts.layers.glow_tts.encoder.Encoder``), flow decoder (``TTS.tts.layers.glow_tts.decoder.Decoder``),
loss (``TTS.tts.layers.losses.GlowTTSLoss``) and MAS (``monotonic_alignment_search.maximum_path``, the
official Cython kernel), composed exactly as ``TTS.tts.models.glow_tts.GlowTTS.forward`` does. The model
class itself is not imported: ``import TTS`` (and the model's speaker manager) demand torchaudio and
torchcodec, whose newest PyPI wheels (torchaudio 2.11) are built against an older torch and fail to load with
this environment's torch 2.13 (``OSError: Could not load this library: .../_torchaudio.abi3.so``). The layers
need neither, so the package's ``__init__`` check is bypassed (:func:`_import_coqui`).

Configuration mapping (project ``GlowTTSModelConfig(text_encoder=TextEncoderConfig(n_vocab=44))`` defaults
-> coqui arguments; the parameter counts are checked equal before timing):

- text encoder: hidden 192 -> ``hidden_channels_enc``; filter 768 -> ``encoder_params.hidden_channels_ffn``;
  6 layers, 2 heads, kernel 3, dropout 0.1 -> ``num_layers, num_heads, kernel_size, dropout_p``; relative
  window 4 -> ``rel_attn_window_size=4`` (coqui's config leaves it unset; official Glow-TTS uses 4); prenet ->
  ``use_prenet=True``; learnt prior scale (``mean_only=False``) -> ``mean_only=False``; duration predictor
  filter 256 -> ``hidden_channels_dp``;
- flow: 12 blocks x 4 WaveNet layers, hidden 192, kernel 5, dilation 1, dropout 0.05, n_split 4, n_sqz 2 ->
  ``num_flow_blocks_dec, num_block_layers, hidden_channels_dec, kernel_size_dec, dilation_rate, dropout_p_dec,
  num_splits, num_squeeze``;
- speaker: the project's L2-normalised ``Embedding(251, 256)`` -> the same embedding feeding coqui's
  d-vector input (``c_in_channels=256``; coqui normalises d-vectors the same way).

Both get the same mel features (random, fixed seed; feature extraction is not timed) and token sequences, run
single-threaded by default, and the ratio is the median of per-round frame-rate ratios, printed with their quartiles.
Optimizer: Adam (lr 1e-4, eps 1e-9) on both sides; the project's is built from ``config.TrainingSettings`` the way
RETURNN builds it, twice: torch's default implementation and ``fused_optimizer=True`` (the
``ExperimentSetup.fused_optimizer`` switch). coqui runs with both as well, so each is compared like for like (the
model's step, same optimizer); the third ratio is the project's fused Adam, what the embedded setup trains with,
against coqui's with torch's default Adam.

Run: ``python benchmarks/bench_glowtts.py [--device cpu|cuda --batch 4 --seconds 3 --rounds 9 --threads 1]``
"""
from __future__ import annotations

import argparse
import importlib.util
import math
import statistics
import sys
import time
import types

import torch
from torch import nn

from librispeech_joint_training_given_alignments.config import TrainingSettings, returnn_optimizer
from librispeech_joint_training_given_alignments.pytorch_networks.commons import (duration_loss, mle_loss,
                                                                                  sequence_mask)
from librispeech_joint_training_given_alignments.pytorch_networks.configs import GlowTTSModelConfig, TextEncoderConfig
from librispeech_joint_training_given_alignments.pytorch_networks.glow_tts.layers import (ONEDNN_POINTWISE_MIN_CHANNELS,
                                                                                       WINOGRAD_MIN_CHANNELS,
                                                                                       cpu_prefers_onednn)
from librispeech_joint_training_given_alignments.pytorch_networks.tts_model import GlowTTSJointModel

N_VOCAB, N_SPEAKERS = 44, 251


def _import_coqui():
    """coqui-tts' Glow-TTS layers and loss, without running ``TTS/__init__`` (its torchaudio check)."""
    if "TTS" not in sys.modules:
        spec = importlib.util.find_spec("TTS")
        if spec is None:
            raise SystemExit("bench_glowtts needs the reference: pip install coqui-tts monotonic-alignment-search "
                             "(or pip install -e .[benchmarks])")
        package = types.ModuleType("TTS")
        package.__path__ = list(spec.submodule_search_locations)
        package.__spec__ = spec
        sys.modules["TTS"] = package
    from TTS.tts.layers.glow_tts.decoder import Decoder
    from TTS.tts.layers.glow_tts.encoder import Encoder
    from TTS.tts.layers.losses import GlowTTSLoss
    from monotonic_alignment_search import maximum_path  # what TTS.tts.models.glow_tts imports (official Cython)

    return Encoder, Decoder, GlowTTSLoss, maximum_path


class CoquiGlowTTS(nn.Module):
    """coqui-tts' Glow-TTS at the project's default configuration (mapping in the module docstring)."""

    def __init__(self, cfg: GlowTTSModelConfig):
        super().__init__()
        Encoder, Decoder, GlowTTSLoss, self._maximum_path = _import_coqui()
        enc, dec, gin = cfg.text_encoder, cfg.decoder, cfg.speaker.gin_channels
        self.emb_g = nn.Embedding(cfg.speaker.n_speakers, gin)
        self.encoder = Encoder(enc.n_vocab, cfg.out_channels, enc.hidden_channels, enc.filter_channels_dp,
                               "rel_pos_transformer",
                               {"kernel_size": enc.kernel_size, "dropout_p": enc.p_dropout, "num_layers": enc.n_layers,
                                "num_heads": enc.n_heads, "hidden_channels_ffn": enc.filter_channels,
                                "input_length": None, "rel_attn_window_size": enc.window_size},
                               dropout_p_dp=enc.p_dropout, mean_only=enc.mean_only, use_prenet=enc.prenet,
                               c_in_channels=gin)
        self.decoder = Decoder(cfg.out_channels, dec.hidden_channels, dec.kernel_size, dec.dilation_rate,
                               dec.n_blocks, dec.n_layers, dropout_p=dec.p_dropout, num_splits=dec.n_split,
                               num_squeeze=dec.n_sqz, sigmoid_scale=dec.sigmoid_scale, c_in_channels=gin)
        self.criterion = GlowTTSLoss()
        self.num_squeeze = dec.n_sqz

    def loss(self, x, x_lengths, y, y_lengths, speakers):
        """``TTS.tts.models.glow_tts.GlowTTS.forward`` (y ``[B, C, T]``) + ``GlowTTSLoss``."""
        g = nn.functional.normalize(self.emb_g(speakers), dim=-1).unsqueeze(-1)  # coqui's d-vector path
        o_mean, o_log_scale, o_dur_log, x_mask = self.encoder(x, x_lengths, g=g)
        y_max_length = (y.size(2) // self.num_squeeze) * self.num_squeeze
        y = y[:, :, :y_max_length]
        y_lengths = torch.div(y_lengths, self.num_squeeze, rounding_mode="floor") * self.num_squeeze
        y_mask = torch.unsqueeze(sequence_mask(y_lengths, y_max_length), 1).to(x_mask.dtype)
        attn_mask = torch.unsqueeze(x_mask, -1) * torch.unsqueeze(y_mask, 2)
        z, logdet = self.decoder(y, y_mask, g=g, reverse=False)
        with torch.no_grad():
            o_scale = torch.exp(-2 * o_log_scale)
            logp1 = torch.sum(-0.5 * math.log(2 * math.pi) - o_log_scale, [1]).unsqueeze(-1)
            logp2 = torch.matmul(o_scale.transpose(1, 2), -0.5 * (z**2))
            logp3 = torch.matmul((o_mean * o_scale).transpose(1, 2), z)
            logp4 = torch.sum(-0.5 * (o_mean**2) * o_scale, [1]).unsqueeze(-1)
            logp = logp1 + logp2 + logp3 + logp4
            attn = self._maximum_path(logp, attn_mask.squeeze(1)).unsqueeze(1).detach()
        y_mean = torch.matmul(attn.squeeze(1).transpose(1, 2), o_mean.transpose(1, 2)).transpose(1, 2)
        y_log_scale = torch.matmul(attn.squeeze(1).transpose(1, 2), o_log_scale.transpose(1, 2)).transpose(1, 2)
        o_attn_dur = torch.log(1 + torch.sum(attn, -1)) * x_mask
        out = self.criterion(z.transpose(1, 2), y_mean.transpose(1, 2), y_log_scale.transpose(1, 2), logdet,
                             y_lengths, o_dur_log.transpose(1, 2), o_attn_dur.transpose(1, 2), x_lengths)
        return out["loss"], int(y_lengths.sum())

    @torch.no_grad()
    def data_dependent_init(self, *batch) -> None:
        """coqui's ActNorm initialisation step (``GlowTTS.train_step`` with ``data_dep_init_steps``)."""
        for f in self.decoder.flows:
            if getattr(f, "set_ddi", False):
                f.set_ddi(True)
        self.loss(*batch)
        for f in self.decoder.flows:
            if getattr(f, "set_ddi", False):
                f.set_ddi(False)


class ProjectGlowTTS(nn.Module):
    """The project's model, trained as ``tts_model.train_step`` does for a MAS Glow-TTS (MLE + duration loss)."""

    def __init__(self, cfg: GlowTTSModelConfig):
        super().__init__()
        self.model = GlowTTSJointModel(cfg)

    def loss(self, x, x_lengths, y, y_lengths, speakers):
        n_sqz = self.model.cfg.decoder.n_sqz
        y = y[:, :, : (y.shape[2] // n_sqz) * n_sqz]
        y_lengths = torch.div(y_lengths, n_sqz, rounding_mode="floor") * n_sqz
        out = self.model(x, x_lengths, y, y_lengths, self.model.speaker(speakers))
        loss = mle_loss(out.z, out.z_m, out.z_logs, out.logdet, out.z_mask) + duration_loss(
            out.logw, out.logw_target, x_lengths)
        return loss, int(y_lengths.sum())


def _batch(device, batch: int, seconds: float, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    frames, tokens = int(seconds * 80), int(seconds * 12)  # 12.5 ms frames, ~12 phonemes per second
    y = torch.randn(batch, 80, frames, generator=gen)
    y_lengths = torch.full((batch,), frames)
    y_lengths[1::2] = int(frames * 0.8)
    y = y * sequence_mask(y_lengths, frames).unsqueeze(1)
    x = torch.randint(1, N_VOCAB, (batch, tokens), generator=gen)
    x_lengths = torch.full((batch,), tokens)
    x_lengths[1::2] = int(tokens * 0.8)
    speakers = torch.randint(0, N_SPEAKERS, (batch,), generator=gen)
    return tuple(t.to(device) for t in (x, x_lengths, y, y_lengths, speakers))


def _n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--batch", type=int, default=None, help="default: 4 on CPU, 32 on GPU")
    parser.add_argument("--seconds", type=float, default=None, help="utterance length (default 3 CPU, 10 GPU)")
    parser.add_argument("--rounds", type=int, default=None, help="timed interleaved rounds (default 9 CPU, 20 GPU)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads on CPU")
    args = parser.parse_args()
    device = torch.device(args.device)
    gpu = device.type == "cuda"
    batch = args.batch or (32 if gpu else 4)
    seconds = args.seconds or (10.0 if gpu else 3.0)
    rounds = args.rounds or (20 if gpu else 9)
    torch.set_num_threads(args.threads)

    cfg = GlowTTSModelConfig(text_encoder=TextEncoderConfig(n_vocab=N_VOCAB))
    models = {}
    for name in ("project", "project fused", "coqui", "coqui fused"):
        torch.manual_seed(0)
        models[name] = (CoquiGlowTTS(cfg) if name.startswith("coqui") else ProjectGlowTTS(cfg)).to(device).train()
    counts = {name: _n_params(m) for name, m in models.items()}
    if counts["project"] != counts["coqui"]:
        raise SystemExit(f"configurations differ: project {counts['project']:,} vs coqui {counts['coqui']:,} params")
    data = _batch(device, batch, seconds)
    models["coqui"].data_dependent_init(*data)
    models["coqui fused"].data_dependent_init(*data)
    adam = {"learning_rates": (1e-4,), "optimizer": "adam", "epsilon": 1e-9}
    optims = {"project": returnn_optimizer(models["project"], TrainingSettings(**adam)),
              "project fused": returnn_optimizer(models["project fused"],
                                                 TrainingSettings(**adam, fused_optimizer=True)),
              "coqui": torch.optim.Adam(models["coqui"].parameters(), lr=1e-4, eps=1e-9),
              "coqui fused": torch.optim.Adam(models["coqui fused"].parameters(), lr=1e-4, eps=1e-9, fused=True)}

    def step(name: str) -> float:
        """Seconds per frame of one training step."""
        if gpu:
            torch.cuda.synchronize()
        start = time.perf_counter()
        loss, frames = models[name].loss(*data)
        optims[name].zero_grad(set_to_none=True)
        loss.backward()
        optims[name].step()
        if gpu:
            torch.cuda.synchronize()
        return (time.perf_counter() - start) / frames

    for name in models:  # warm-up (project ActNorm data-dependent init, allocator, MAS JIT cache)
        step(name)
    per_frame = {name: [] for name in models}
    names = list(models)
    for r in range(rounds):  # every order position in turn, so a load change skews no contestant alone
        order = names[r % len(names):] + names[: r % len(names)]
        for name in (order if r % 2 == 0 else order[::-1]):
            per_frame[name].append(step(name))
    fps = {name: 1.0 / statistics.median(v) for name, v in per_frame.items()}

    def ratio(project: str, coqui: str) -> str:
        """Median of the per-round frame-rate ratios and their quartiles: the spread says how far one run's median
        can be trusted on a machine whose speed drifts between rounds."""
        ratios = [c / p for p, c in zip(per_frame[project], per_frame[coqui])]
        q1, median, q3 = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
        return f"{median:.2f}x (per-round quartiles {q1:.2f}-{q3:.2f})"

    print(f"Glow-TTS training step on {device} ({args.threads} thread(s) on CPU), batch {batch} x {seconds:.1f} s, "
          f"{rounds} interleaved rounds; parameters: project {counts['project'] / 1e6:.2f} M = coqui "
          f"{counts['coqui'] / 1e6:.2f} M")
    if not gpu:
        print(f"torch CPU capability {torch.backends.cpu.get_cpu_capability()}: the project's convolutions "
              + (f"with oneDNN's backward, 1x1 ones of >= {ONEDNN_POINTWISE_MIN_CHANNELS} channels on oneDNN, the "
                 f"WaveNet's kernel-5 ones of >= {WINOGRAD_MIN_CHANNELS} channels by Winograd F(4, 5)"
                 if cpu_prefers_onednn() else "with the GEMM weight-gradient backward"))
    print(f"{'':<14}{'frames/s':>10}{'s/step':>9}")
    for name in models:
        print(f"{name:<14}{fps[name]:>10.1f}{statistics.median(per_frame[name]) * int(data[3].sum()):>9.3f}")
    print("project / coqui frames/s (median of per-round ratios; goal >= 1.2 like for like):")
    print(f"  torch's default Adam both: {ratio('project', 'coqui')}")
    print(f"  fused Adam both:           {ratio('project fused', 'coqui fused')}")
    print(f"  project fused (TrainingSettings.fused_optimizer) / coqui default Adam: {ratio('project fused', 'coqui')}")


if __name__ == "__main__":
    main()
