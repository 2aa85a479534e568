"""Sisyphus jobs for external durations: placeholder alignment, validation, the flite reference alignment, merging
and alignment quality (wrappers around ``durations``, ``reference_alignment``, ``alignment_quality``)."""
from __future__ import annotations

import shutil
from typing import Sequence, Tuple

import numpy as np

from ..sisyphus_api import Job, Task, tk

from . import durations
from .features import LogMelSettings


class ProportionalDurationsJob(Job):
    """Per-TTS-phoneme integer durations distributing each sequence's feature frames proportionally to token
    weights (``out_durations``, sparse-int HDF ``[N]`` per seq). Placeholder until a Glow-TTS Viterbi forward
    produces real alignments; the output format is the same."""

    def __init__(self, phoneme_hdf: tk.Path, feature_hdf: tk.Path,
                 settings: durations.ProportionalAlignmentSettings = durations.ProportionalAlignmentSettings()):
        self.phoneme_hdf = phoneme_hdf
        self.feature_hdf = feature_hdf
        self.settings = settings
        self.out_durations = self.output_path("durations.hdf")

    def tasks(self):
        yield Task("run", mini_task=True)

    def run(self):
        durations.write_proportional_durations(self.phoneme_hdf.get_path(), self.feature_hdf.get_path(),
                                               self.out_durations.get_path(), self.settings)


class ValidateDurationsJob(Job):
    """Checks any durations HDF against phonemes and features (every seq present, finite, ≥ 0, one per phoneme,
    sum == #frames unless ``check_sums=False``, for duration-predictor output) and outputs a copy
    (``out_durations``) so consumers depend on the check having passed.

    Zero durations (and utterances with fewer frames than phonemes) are errors unless ``allow_zero_durations``."""

    __sis_hash_exclude__ = {"check_sums": True, "allow_zero_durations": False}

    def __init__(self, durations_hdf: tk.Path, phoneme_hdf: tk.Path, feature_hdf: tk.Path, check_sums: bool = True,
                 allow_zero_durations: bool = False):
        self.durations_hdf = durations_hdf
        self.phoneme_hdf = phoneme_hdf
        self.feature_hdf = feature_hdf
        self.check_sums = check_sums
        self.allow_zero_durations = allow_zero_durations
        self.out_durations = self.output_path("durations.hdf")
        self.out_num_seqs = self.output_var("num_seqs")

    def tasks(self):
        yield Task("run", mini_task=True)

    def run(self):
        n = durations.validate_duration_hdf(self.durations_hdf.get_path(), self.phoneme_hdf.get_path(),
                                            self.feature_hdf.get_path(), self.check_sums,
                                            allow_zero=self.allow_zero_durations)
        shutil.copyfile(self.durations_hdf.get_path(), self.out_durations.get_path())
        self.out_num_seqs.set(n)


class ValidateTokenDurationsJob(Job):
    """Checks durations per encoder token of a model with blanks (2N+1 per utterance, every token >= 1 frame)
    against the validated per-phoneme durations of the same path (merging the blanks' frames onto their neighbours
    must give them exactly) and outputs a copy (``out_durations``) so consumers depend on the check."""

    def __init__(self, token_durations_hdf: tk.Path, phoneme_durations_hdf: tk.Path):
        self.token_durations_hdf = token_durations_hdf
        self.phoneme_durations_hdf = phoneme_durations_hdf
        self.out_durations = self.output_path("token_durations.hdf")
        self.out_num_seqs = self.output_var("num_seqs")

    def tasks(self):
        yield Task("run", mini_task=True)

    def run(self):
        n = durations.validate_token_duration_hdf(self.token_durations_hdf.get_path(),
                                                  self.phoneme_durations_hdf.get_path())
        shutil.copyfile(self.token_durations_hdf.get_path(), self.out_durations.get_path())
        self.out_num_seqs.set(n)


class ReferenceDurationsJob(Job):
    """Ground-truth durations of the flite utterances (``out_durations``, the same sparse-int32 format as any given
    durations HDF, sums == feature frames): flite's phone segments (``SynthesizeEmbeddedLibriSpeechJob.
    out_flite_segments``) mapped onto the TTS tokens of ``phoneme_hdf`` and the frames of ``feature_hdf`` as documented
    in :mod:`.reference_alignment`. Holds only the sequences that have segments (espeak-ng utterances have none).

    ``out_alignment`` (JSON) shows every token/phone pairing and per-utterance times; ``out_num_seqs`` counts the
    written sequences. ``min_frames_per_token=1`` gives a training ("oracle") alignment without zero durations.
    """

    def __init__(self, flite_segments: tk.Path, corpus_files: Sequence[tk.Path], phoneme_hdf: tk.Path,
                 feature_hdf: tk.Path, feature_settings: LogMelSettings = LogMelSettings(),
                 min_frames_per_token: int = 0):
        self.flite_segments = flite_segments
        self.corpus_files = list(corpus_files)
        self.phoneme_hdf = phoneme_hdf
        self.feature_hdf = feature_hdf
        self.feature_settings = feature_settings
        self.min_frames_per_token = min_frames_per_token
        self.out_durations = self.output_path("durations.hdf")
        self.out_alignment = self.output_path("alignment.json")
        self.out_num_seqs = self.output_var("num_seqs")

    def tasks(self):
        yield Task("run", mini_task=True)

    def run(self):
        from . import corpus, reference_alignment, synthesis

        totals = reference_alignment.write_reference_durations(
            synthesis.read_flite_segments(self.flite_segments.get_path()),
            corpus.load_corpora(p.get_path() for p in self.corpus_files), self.phoneme_hdf.get_path(),
            self.feature_hdf.get_path(), self.out_durations.get_path(), self.out_alignment.get_path(),
            self.feature_settings, self.min_frames_per_token)
        print("reference alignment:", totals)
        self.out_num_seqs.set(totals["utterances"])


class MergeDurationsJob(Job):
    """Durations of every sequence of ``fallback_hdf``, taken from ``primary_hdf`` where it has the sequence
    (e.g. the flite reference as an "oracle" alignment, the aligner's durations for the espeak-ng utterances).
    ``out_sources`` (JSON) says which file each sequence came from. A sequence of ``primary_hdf`` that
    ``fallback_hdf`` lacks is an error (the two belong to different corpora)."""

    def __init__(self, primary_hdf: tk.Path, fallback_hdf: tk.Path):
        self.primary_hdf = primary_hdf
        self.fallback_hdf = fallback_hdf
        self.out_durations = self.output_path("durations.hdf")
        self.out_sources = self.output_path("sources.json")

    def tasks(self):
        yield Task("run", mini_task=True)

    def run(self):
        import json

        from . import hdf

        primary = hdf.read_all(self.primary_hdf.get_path(), "primary durations")
        fallback = hdf.read_all(self.fallback_hdf.get_path(), "fallback durations")
        extra = sorted(set(primary) - set(fallback))
        if extra:
            raise durations.DurationError(f"{len(extra)} sequence(s) of {self.primary_hdf.get_path()} are not in "
                                          f"{self.fallback_hdf.get_path()}, e.g. {extra[:5]}")
        sources = {}
        with hdf.open_writer(self.out_durations.get_path(), dim=1, ndim=1) as writer:
            for tag, dur in fallback.items():
                sources[tag] = "primary" if tag in primary else "fallback"
                hdf.write_seq(writer, tag, np.asarray(primary.get(tag, dur), dtype=np.int32).reshape(-1))
        with open(self.out_sources.get_path(), "w", encoding="utf8") as f:
            json.dump({"primary": self.primary_hdf.get_path(), "fallback": self.fallback_hdf.get_path(),
                       "sources": sources}, f, indent=0)


class AlignmentQualityJob(Job):
    """Boundary errors of any durations HDF against the reference (:mod:`.alignment_quality` defines boundaries and
    figures): over the sequences of ``reference_hdf`` only, per speaker and overall.

    Outputs ``out_report`` (JSON, incl. the worst utterances), ``out_report_csv`` (one row per speaker + overall) and
    the overall figures as variables: ``out_mean_abs_error_ms``, ``out_percent_within_20ms``,
    ``out_percent_within_50ms``, ``out_num_boundaries``.

    :param voice_names: ``(speaker id, name)`` pairs shown next to the speaker ids in the report
    """

    def __init__(self, durations_hdf: tk.Path, reference_hdf: tk.Path, phoneme_hdf: tk.Path,
                 feature_settings: LogMelSettings = LogMelSettings(),
                 voice_names: Tuple[Tuple[str, str], ...] = ()):
        self.durations_hdf = durations_hdf
        self.reference_hdf = reference_hdf
        self.phoneme_hdf = phoneme_hdf
        self.feature_settings = feature_settings
        self.voice_names = tuple(voice_names)
        self.out_report = self.output_path("report.json")
        self.out_report_csv = self.output_path("report.csv")
        self.out_mean_abs_error_ms = self.output_var("mean_abs_error_ms")
        self.out_percent_within_20ms = self.output_var("percent_within_20ms")
        self.out_percent_within_50ms = self.output_var("percent_within_50ms")
        self.out_num_boundaries = self.output_var("num_boundaries")

    def tasks(self):
        yield Task("run", mini_task=True)

    def run(self):
        from . import alignment_quality, hdf
        from .corpus import speaker_of_seq_tag

        labels = hdf.read_labels(self.phoneme_hdf.get_path(), "phonemes")
        tokens = {tag: [labels[int(i)] for i in ids] for tag, ids in hdf.iter_sequences(self.phoneme_hdf.get_path(), "phonemes")}
        reference = hdf.read_all(self.reference_hdf.get_path(), "reference durations")
        hop_ms = 1000.0 * self.feature_settings.hop_length / self.feature_settings.sample_rate
        report = alignment_quality.alignment_quality(
            hdf.read_all(self.durations_hdf.get_path(), "durations"), reference, tokens,
            {tag: speaker_of_seq_tag(tag) for tag in reference}, hop_ms, dict(self.voice_names))
        report["durations_hdf"] = self.durations_hdf.get_path()
        report["reference_hdf"] = self.reference_hdf.get_path()
        alignment_quality.write_report_json(report, self.out_report.get_path())
        alignment_quality.write_report_csv(report, self.out_report_csv.get_path())
        overall = report["overall"]
        self.out_mean_abs_error_ms.set(overall["mean_abs_error_ms"])
        self.out_percent_within_20ms.set(overall["percent_within_20ms"])
        self.out_percent_within_50ms.set(overall["percent_within_50ms"])
        self.out_num_boundaries.set(overall["num_boundaries"])
