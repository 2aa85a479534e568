"""The report's figures (PNG via matplotlib's Agg canvas; no pyplot, so the manager's process keeps no GUI state).

Each function reads its inputs, draws one figure and writes it atomically to ``out_png``.
"""
from __future__ import annotations

import os
import re
from typing import Dict, List, Sequence, Tuple

import numpy as np
from matplotlib.ticker import MaxNLocator

from ..data_prep.features import LogMelSettings
from ..jobs.learning_rates import EpochScores

_SCORE_KEY = re.compile(r"^(?P<dataset>.+?)_(?P<kind>loss|score|error)_(?P<name>.+)$")
_DATASET_STYLE = {"train": "-", "dev": "--", "devtrain": ":"}


def _figure(width: float, height: float):
    """A figure drawn on matplotlib's Agg canvas (no pyplot: no global state in the manager's process)."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=90, layout="constrained")


def _save(fig, out_png: str) -> None:
    os.makedirs(os.path.dirname(out_png), exist_ok=True)
    fig.savefig(out_png + ".tmp.png", format="png")
    os.replace(out_png + ".tmp.png", out_png)


def group_scores(epochs: Dict[int, EpochScores]) -> Dict[str, Dict[str, List[Tuple[int, float]]]]:
    """score name ("loss mle") -> dataset ("train", "dev", ...) -> [(epoch, value)], from RETURNN's
    ``<dataset>_<loss|score|error>_<name>`` keys; other keys keep their full name with dataset "all"."""
    groups: Dict[str, Dict[str, List[Tuple[int, float]]]] = {}
    for epoch in sorted(epochs):
        for key, value in epochs[epoch].scores.items():
            m = _SCORE_KEY.match(key)
            name, dataset = (f"{m.group('kind')} {m.group('name')}", m.group("dataset")) if m else (key, "all")
            groups.setdefault(name, {}).setdefault(dataset, []).append((epoch, value))
    return groups


def plot_training_curves(title: str, epochs: Dict[int, EpochScores], out_png: str) -> None:
    """One panel per score name, one line per dataset (train solid, dev dashed), x = epoch."""
    groups = group_scores(epochs)
    if not groups:
        raise ValueError(f"{title}: the learning-rates file has no scores yet")
    cols = min(3, len(groups))
    rows = (len(groups) + cols - 1) // cols
    fig = _figure(max(6.0, 4.2 * cols), 2.8 * rows)
    fig.suptitle(title, fontsize=10)
    for index, (name, datasets) in enumerate(sorted(groups.items())):
        ax = fig.add_subplot(rows, cols, index + 1)
        for dataset, points in sorted(datasets.items()):
            x, y = zip(*points)
            ax.plot(x, y, _DATASET_STYLE.get(dataset, "-."), marker="o", markersize=3, label=dataset)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("epoch")
        if len(epochs) <= 12:
            ax.set_xticks(sorted(epochs))
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    _save(fig, out_png)


def log_mel(audio_file: str, settings: LogMelSettings) -> np.ndarray:
    """``[frames, mels]`` with the project's front end; other sample rates are resampled first."""
    import soundfile

    from ..data_prep.features import LogMelExtractor

    audio, sr = soundfile.read(audio_file, dtype="float32", always_2d=True)
    audio = audio.mean(axis=1)
    if sr != settings.sample_rate:
        import librosa

        audio = librosa.resample(audio, orig_sr=sr, target_sr=settings.sample_rate)
    return LogMelExtractor(settings)(audio)


def plot_spectrograms(tag: str, files: Sequence[Tuple[str, str]], settings: LogMelSettings, out_png: str) -> None:
    """Log-mel spectrograms of one utterance, one panel per source (name, file), on a common time axis; each
    panel shows 80 dB below its own peak, so a quiet or a peak-normalised file is as readable as the others."""
    mels = [(name, log_mel(path, settings)) for name, path in files]
    frames = max(m.shape[0] for _, m in mels)
    seconds_per_frame = settings.hop_size
    fig = _figure(9, 1.8 * len(mels) + 0.6)
    fig.suptitle(tag, fontsize=10)
    axes = fig.subplots(len(mels), 1, squeeze=False)[:, 0]
    image = None
    for ax, (name, mel) in zip(axes, mels):
        image = ax.imshow((mel - mel.max()).T, origin="lower", aspect="auto", vmin=-80, vmax=0, cmap="magma",
                          extent=(0, mel.shape[0] * seconds_per_frame, 0, mel.shape[1]))
        ax.set_xlim(0, frames * seconds_per_frame)
        ax.set_ylabel("mel", fontsize=8)
        ax.set_title(name, fontsize=9, loc="left")
    axes[-1].set_xlabel("seconds")
    fig.colorbar(image, ax=list(axes), label="dB below the panel's peak", shrink=0.8)
    _save(fig, out_png)


def plot_alignment_paths(tag: str, durations: Sequence[Tuple[str, np.ndarray]], out_png: str) -> None:
    """Token index over frame (a monotonic step path) of one utterance, one line per alignment."""
    fig = _figure(8, 4)
    ax = fig.add_subplot(1, 1, 1)
    for name, dur in durations:
        dur = np.asarray(dur).reshape(-1)
        boundaries = np.concatenate([[0], np.cumsum(dur)])
        ax.step(boundaries, np.arange(len(dur) + 1), where="post", label=f"{name} ({int(boundaries[-1])} frames)")
    ax.set_xlabel("frame")
    ax.set_ylabel("token")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(tag, fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    _save(fig, out_png)


def plot_duration_histograms(durations: Sequence[Tuple[str, np.ndarray]], out_png: str) -> None:
    """Distribution of frames per token over all utterances, one outline per alignment (x axis up to the 99.5th
    percentile, so a few very long tokens do not squeeze the rest)."""
    fig = _figure(8, 3.5)
    ax = fig.add_subplot(1, 1, 1)
    filled = [d for _, d in durations if d.size]
    top = int(max(d.max() for d in filled)) if filled else 1
    bins = np.arange(0, top + 2) - 0.5
    for name, dur in durations:
        ax.hist(dur, bins=bins, histtype="step", density=True, linewidth=1.5,
                label=f"{name} (mean {dur.mean():.1f})" if dur.size else name)
    if filled:
        ax.set_xlim(-0.5, max(float(np.percentile(d, 99.5)) for d in filled) + 1)
    ax.set_xlabel("frames per token")
    ax.set_ylabel("fraction of tokens")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    _save(fig, out_png)
