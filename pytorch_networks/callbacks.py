"""RETURNN forward callbacks (``returnn.forward_iface.ForwardCallbackIface``) writing results into the cwd.

Outputs are matched by seq tag (RETURNN reorders the data in forward). File names are constructor arguments
with the defaults listed per class.
"""
from __future__ import annotations

import os
from typing import Optional

import numpy as np
from returnn.forward_iface import ForwardCallbackIface

from .configs import FeatureExtractionConfig, MelToLinearConfig


def _new_hdf_writer(filename: str, dim: int, ndim: int):
    from returnn.datasets.hdf import SimpleHDFWriter

    if os.path.exists(filename):  # SimpleHDFWriter refuses existing files
        os.remove(filename)
    return SimpleHDFWriter(filename, dim=dim, ndim=ndim)


class DurationHDFCallback(ForwardCallbackIface):
    """Writes output ``durations`` to ``durations.hdf``: int32, one sequence ``[N]`` per seq tag (sparse layout,
    readable by HDFDataset as data key "data" -> map it to ``durations`` in a MetaDataset)."""

    def __init__(self, filename: str = "durations.hdf"):
        self.filename = filename
        self.writer = None

    def init(self, *, model):
        self.writer = _new_hdf_writer(self.filename, dim=1, ndim=1)

    def process_seq(self, *, seq_tag: str, outputs):
        dur = np.asarray(outputs["durations"].raw_tensor, dtype=np.int32)
        self.writer.insert_batch(dur[None], seq_len=[len(dur)], seq_tag=[seq_tag])

    def finish(self):
        self.writer.close()


class LatentHDFCallback(ForwardCallbackIface):
    """Writes ``z`` (flow output of the real audio) to ``samples.hdf`` and ``z_mean`` (aligned prior means) to
    ``mean.hdf``, each ``[T, F]`` float32 per seq tag."""

    def __init__(self, samples_filename: str = "samples.hdf", mean_filename: str = "mean.hdf"):
        self.samples_filename = samples_filename
        self.mean_filename = mean_filename
        self.writers = None

    def init(self, *, model):
        self.writers = None

    def process_seq(self, *, seq_tag: str, outputs):
        z = np.asarray(outputs["z"].raw_tensor, dtype=np.float32)
        z_mean = np.asarray(outputs["z_mean"].raw_tensor, dtype=np.float32)
        if self.writers is None:
            self.writers = (_new_hdf_writer(self.samples_filename, z.shape[-1], 2),
                            _new_hdf_writer(self.mean_filename, z.shape[-1], 2))
        self.writers[0].insert_batch(z[None], seq_len=[len(z)], seq_tag=[seq_tag])
        self.writers[1].insert_batch(z_mean[None], seq_len=[len(z_mean)], seq_tag=[seq_tag])

    def finish(self):
        for writer in self.writers or ():
            writer.close()


class GriffinLimAudioCallback(ForwardCallbackIface):
    """Vocodes generated ``mel`` with Griffin-Lim and writes ``audio_files/<tag with / -> _>.<fmt>`` (``fmt`` "flac"
    as the corpora, or "wav"/"ogg") plus ``audio_files.txt`` listing ``tag<TAB>path<TAB>seconds``.

    ``preemphasis`` must be the coefficient of the front end the model was trained on (the ``raw_audio_options``
    of its data): the audio is de-emphasised with it and written without peak normalisation, so reading it through
    that front end gives the vocoded features (:func:`.vocoder.synthesis_output_waveform` says why). Utterances
    scaled down to avoid clipping are counted in the log.

    Griffin-Lim's magnitude: the pseudo-inverse of the mel filter bank, or, with ``mel_to_linear_checkpoint`` and
    ``mel_to_linear_config`` (:class:`.configs.MelToLinearConfig`), a trained mel-to-linear net (the original's
    BLSTM Griffin-Lim predictor), run on the forward's device; its features must be the model's.
    """

    def __init__(self, preemphasis: Optional[float], fe_config: Optional[FeatureExtractionConfig] = None,
                 gl_iter: int = 32, gl_momentum: float = 0.99, audio_format: str = "flac",
                 output_dir: str = "audio_files", mel_to_linear_checkpoint: Optional[str] = None,
                 mel_to_linear_config: Optional[MelToLinearConfig] = None):
        if (mel_to_linear_checkpoint is None) != (mel_to_linear_config is None):
            raise ValueError("GriffinLimAudioCallback: mel_to_linear_checkpoint and mel_to_linear_config go together, "
                             f"got {mel_to_linear_checkpoint!r} and {mel_to_linear_config!r}")
        self.mel_to_linear_checkpoint = mel_to_linear_checkpoint
        self.mel_to_linear_config = mel_to_linear_config
        self.preemphasis = preemphasis
        self.fe_config = fe_config
        self.gl_iter = gl_iter
        self.gl_momentum = gl_momentum
        self.audio_format = audio_format
        self.output_dir = output_dir
        self.vocoder = None
        self.entries = []
        self.scaled = []

    def init(self, *, model):
        from .vocoder import GriffinLimVocoder

        fe_cfg = self.fe_config or model.cfg.feature_extraction
        magnitude_source = None
        if self.mel_to_linear_config is not None:
            from .mel_to_linear import MelToLinearPredictor

            if self.mel_to_linear_config.feature_extraction != fe_cfg:
                raise ValueError(f"GriffinLimAudioCallback: the mel-to-linear net {self.mel_to_linear_checkpoint} was "
                                 f"trained on other features ({self.mel_to_linear_config.feature_extraction}) than "
                                 f"the model generates ({fe_cfg})")
            parameters = list(model.parameters())
            device = parameters[0].device if parameters else None
            magnitude_source = MelToLinearPredictor(self.mel_to_linear_config, self.mel_to_linear_checkpoint, device)
        self.vocoder = GriffinLimVocoder(fe_cfg, n_iter=self.gl_iter, momentum=self.gl_momentum,
                                         magnitude_source=magnitude_source)
        os.makedirs(self.output_dir, exist_ok=True)
        self.entries = []
        self.scaled = []

    def process_seq(self, *, seq_tag: str, outputs):
        from .vocoder import write_synthesis_audio

        wave = self.vocoder(np.asarray(outputs["mel"].raw_tensor))
        path = os.path.join(self.output_dir, seq_tag.replace("/", "_") + "." + self.audio_format)
        sr = self.vocoder.cfg.sample_rate
        gain = write_synthesis_audio(path, wave, sr, self.preemphasis, self.audio_format)
        if gain < 1.0:
            self.scaled.append((seq_tag, gain))
        self.entries.append((seq_tag, path, len(wave) / sr))

    def finish(self):
        with open("audio_files.txt", "w") as f:
            for tag, path, seconds in self.entries:
                f.write(f"{tag}\t{path}\t{seconds:.4f}\n")
        if self.scaled:
            print(f"GriffinLimAudioCallback: {len(self.scaled)} of {len(self.entries)} utterances scaled down to "
                  f"avoid clipping, e.g. {self.scaled[:3]}")


class PhonemeAccuracyCallback(ForwardCallbackIface):
    """Writes the per-utterance frame accuracy ``accuracy`` to ``phoneme_accuracy.hdf`` (dim 1, one ``[1, 1]``
    entry per seq tag) and the unweighted mean over utterances to the text file ``accuracy``."""

    def __init__(self, filename: str = "phoneme_accuracy.hdf", mean_filename: str = "accuracy"):
        self.filename = filename
        self.mean_filename = mean_filename
        self.writer = None
        self.values = []

    def init(self, *, model):
        self.writer = _new_hdf_writer(self.filename, 1, 2)
        self.values = []

    def process_seq(self, *, seq_tag: str, outputs):
        acc = float(np.asarray(outputs["accuracy"].raw_tensor))
        self.values.append(acc)
        self.writer.insert_batch(np.array([[[acc]]], dtype=np.float32), seq_len=[1], seq_tag=[seq_tag])

    def finish(self):
        self.writer.close()
        with open(self.mean_filename, "w") as f:
            f.write(f"{float(np.mean(self.values)) if self.values else float('nan')}\n")


class RunningStatsCallback(ForwardCallbackIface):
    """Running count / mean / variance / std / max / min over all (valid) elements of output ``output_name``,
    merged sequence by sequence (Chan et al.), written as a one-row CSV file ``filename`` with the header
    ``count,mean,var,std,max,min``."""

    output_name = ""
    default_filename = ""

    def __init__(self, filename: Optional[str] = None):
        self.filename = filename or self.default_filename
        self.stats = None

    def init(self, *, model):
        from .commons import RunningStatistics

        self.stats = RunningStatistics()

    def process_seq(self, *, seq_tag: str, outputs):
        self.stats.update(np.asarray(outputs[self.output_name].raw_tensor))

    def finish(self):
        write_stats_csv(self.filename, self.stats.as_dict())


def write_stats_csv(filename: str, stats: dict) -> None:
    keys = ("count", "mean", "var", "std", "max", "min")
    with open(filename, "w") as f:
        f.write(",".join(keys) + "\n")
        f.write(",".join(str(stats[k]) if k == "count" else repr(float(stats[k])) for k in keys) + "\n")


class InvertibilityStatsCallback(RunningStatsCallback):
    """Forward mode "invertibility": statistics of ``|y - f^-1(f(y))|`` -> ``invertibility.csv``."""

    output_name = "abs_error"
    default_filename = "invertibility.csv"


class FeatureStatsCallback(RunningStatsCallback):
    """Forward mode "statistics": statistics of the normalised log-mel features the flow sees -> ``statistics.csv``
    (the original's ``forward_statistics``, whose variance and max also counted the zeros at the padding of each batch:
    here only valid frames count, and the variance is the population variance of all of them)."""

    output_name = "features"
    default_filename = "statistics.csv"
