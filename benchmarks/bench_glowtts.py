"""Glow-TTS training throughput (feature frames per second, forward + backward + Adam step) for the default
configuration (docs/networks.md §2.1: enc768, 12-block flow, gin 256, speaker embedding, MAS).

Run: ``python benchmarks/bench_glowtts.py [--device cpu|cuda --batch 2 --seconds 4 --steps 3]``
"""
import argparse
import time

import torch

from librispeech_joint_training_given_alignments.pytorch_networks.commons import duration_loss, mle_loss
from librispeech_joint_training_given_alignments.pytorch_networks.configs import GlowTTSModelConfig, TextEncoderConfig
from librispeech_joint_training_given_alignments.pytorch_networks.tts_model import GlowTTSJointModel


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=None, help="default: 2 on CPU, 32 on GPU")
    parser.add_argument("--seconds", type=float, default=None, help="utterance length (default 3 CPU, 10 GPU)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default 2 CPU, 10 GPU)")
    parser.add_argument("--warmup", type=int, default=1)
    args = parser.parse_args()
    device = torch.device(args.device)
    gpu = device.type == "cuda"
    batch = args.batch or (32 if gpu else 2)
    seconds = args.seconds or (10.0 if gpu else 3.0)
    steps = args.steps or (10 if gpu else 2)

    torch.manual_seed(0)
    cfg = GlowTTSModelConfig(text_encoder=TextEncoderConfig(n_vocab=44))
    model = GlowTTSJointModel(cfg).to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, eps=1e-9)
    n_samples = int(seconds * 16000)
    n_tokens = int(seconds * 12)  # ~12 phonemes per second
    audio = torch.randn(batch, n_samples, device=device) * 0.1
    audio_len = torch.full((batch,), n_samples, device=device)
    audio_len[1::2] = int(n_samples * 0.8)
    tokens = torch.randint(1, 44, (batch, n_tokens), device=device)
    token_len = torch.full((batch,), n_tokens, device=device)
    token_len[1::2] = int(n_tokens * 0.8)
    speakers = torch.randint(0, 251, (batch,), device=device)

    def step():
        y, y_len = model.mel_features(audio, audio_len)
        out = model(tokens, token_len, y, y_len, model.speaker(speakers))
        loss = mle_loss(out.z, out.z_m, out.z_logs, out.logdet, out.z_mask) + duration_loss(
            out.logw, out.logw_target, token_len)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return int(y_len.sum())

    for _ in range(args.warmup):
        step()
    if gpu:
        torch.cuda.synchronize()
    frames = 0
    start = time.perf_counter()
    for _ in range(steps):
        frames += step()
    if gpu:
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    params = sum(p.numel() for p in model.parameters()) / 1e6
    print(f"Glow-TTS default config ({params:.1f} M params) on {device}: batch {batch} x {seconds:.1f} s audio, "
          f"{steps} steps")
    print(f"training throughput: {frames / elapsed:.1f} frames/s ({frames / elapsed * 0.0125:.2f} s audio/s), "
          f"{elapsed / steps:.3f} s/step")


if __name__ == "__main__":
    main()
