"""Small evaluation jobs on forward outputs."""
from __future__ import annotations

import os
from typing import Dict, Tuple

import numpy as np

from ..sisyphus_api import Job, Task, tk


class MeanPhonemeAccuracyJob(Job):
    """Mean over utterances of the per-utterance frame accuracies in a phoneme-prediction HDF."""

    def __init__(self, accuracy_hdf: tk.Path):
        self.accuracy_hdf = accuracy_hdf
        self.out_accuracy = self.output_var("accuracy")

    def tasks(self):
        yield Task("run", mini_task=True)

    def run(self) -> None:
        from ..data_prep import hdf

        values = np.concatenate([np.asarray(v, dtype=np.float64).reshape(-1) for v in
                                 hdf.read_all(self.accuracy_hdf.get_path(), "aux-head accuracy").values()] or [[]])
        if values.size == 0:
            raise ValueError(f"{self.accuracy_hdf.get_path()} holds no sequences")
        self.out_accuracy.set(round(float(values.mean()), 6))


class SynthesizedCorpusJob(Job):
    """A corpus description of synthesised audio (``audio_files.txt``: tag, file, seconds) with the texts and
    speakers of the reference corpus, so the audio can be recognised and scored like real speech (sWER)."""

    def __init__(self, audio_list: tk.Path, reference_corpus: tk.Path):
        self.audio_list = audio_list
        self.reference_corpus = reference_corpus
        self.out_corpus = self.output_path("corpus.json")

    def tasks(self):
        yield Task("run", mini_task=True)

    def run(self) -> None:
        import dataclasses

        import soundfile

        from ..data_prep.corpus import load_corpus_json, write_derived_corpus_json

        synthesized = {tag: path for tag, (path, _) in read_audio_list(self.audio_list.get_path()).items()}
        reference = load_corpus_json(self.reference_corpus.get_path())
        missing = [e.seq_tag for e in reference if e.seq_tag not in synthesized]
        if missing:
            raise KeyError(f"{self.audio_list.get_path()} has no audio for {len(missing)} sequence(s) of "
                           f"{self.reference_corpus.get_path()}, e.g. {missing[:5]}")
        entries = []
        for e in reference:
            info = soundfile.info(synthesized[e.seq_tag])
            entries.append(dataclasses.replace(e, audio=synthesized[e.seq_tag], num_samples=info.frames,
                                               duration=info.frames / info.samplerate))
        write_derived_corpus_json(self.out_corpus.get_path(), self.reference_corpus.get_path(), entries)


def read_audio_list(path: str) -> Dict[str, Tuple[str, float]]:
    """``audio_files.txt`` of a synthesis (``tag<TAB>file<TAB>seconds`` per line) as ``{tag: (file, seconds)}``;
    relative file names are relative to the list (the forward job moves both to its output folder)."""
    entries: Dict[str, Tuple[str, float]] = {}
    with open(path) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            fields = line.rstrip("\n").split("\t")
            if len(fields) != 3:
                raise ValueError(f"{path}:{number}: expected 'tag<TAB>file<TAB>seconds', got {line.strip()!r}")
            tag, file_name, seconds = fields
            if tag in entries:
                raise ValueError(f"{path}:{number}: sequence {tag} listed twice")
            entries[tag] = (os.path.join(os.path.dirname(path), file_name), float(seconds))
    return entries


class SynthesisLengthRatioJob(Job):
    """How long synthesised speech is compared with the real recordings of the same texts: total synthesised
    seconds / total real seconds (``out_length_ratio``) and the mean of the per-utterance ratios
    (``out_mean_length_ratio``), over the utterances of ``reference_corpus`` (each must be in ``audio_list``).

    A sWER means little without it: speech at 0.5x length loses words whatever the recogniser does.
    """

    def __init__(self, audio_list: tk.Path, reference_corpus: tk.Path):
        self.audio_list = audio_list
        self.reference_corpus = reference_corpus
        self.out_length_ratio = self.output_var("length_ratio")
        self.out_mean_length_ratio = self.output_var("mean_length_ratio")

    def tasks(self):
        yield Task("run", mini_task=True)

    def run(self) -> None:
        from ..data_prep.corpus import load_corpus_json

        synthesized = read_audio_list(self.audio_list.get_path())
        reference = load_corpus_json(self.reference_corpus.get_path())
        missing = [e.seq_tag for e in reference if e.seq_tag not in synthesized]
        if missing:
            raise KeyError(f"{self.audio_list.get_path()} has no audio for {len(missing)} sequence(s) of "
                           f"{self.reference_corpus.get_path()}, e.g. {missing[:5]}")
        if not reference:
            raise ValueError(f"{self.reference_corpus.get_path()} has no utterances")
        bad = [e.seq_tag for e in reference if e.duration <= 0]
        if bad:
            raise ValueError(f"{self.reference_corpus.get_path()}: non-positive duration for {bad[:5]}")
        real = np.array([e.duration for e in reference], dtype=np.float64)
        synth = np.array([synthesized[e.seq_tag][1] for e in reference], dtype=np.float64)
        self.out_length_ratio.set(round(float(synth.sum() / real.sum()), 4))
        self.out_mean_length_ratio.set(round(float(np.mean(synth / real)), 4))


def _token_spans(token_ids: np.ndarray, durations: np.ndarray, seq_tag: str):
    token_ids = np.asarray(token_ids).reshape(-1)
    d = np.asarray(durations).reshape(-1).astype(np.int64)
    if len(d) != len(token_ids):
        raise ValueError(f"sequence {seq_tag}: {len(d)} durations but {len(token_ids)} tokens")
    ends = np.cumsum(d)
    return zip(token_ids.tolist(), (ends - d).tolist(), ends.tolist())


def mean_token_frames(features: Dict[str, np.ndarray], tokens: Dict[str, np.ndarray],
                      durations: Dict[str, np.ndarray], seq_tags) -> Dict[Tuple[str, int], np.ndarray]:
    """The mean feature frame of every (speaker, token) over the frames the durations give that token in
    ``seq_tags``, of every ("*", token) over all speakers, and of every (speaker, None) / ("*", None) over all
    tokens (the fallbacks, in this order); speakers from the seq tags (``corpus.speaker_of_seq_tag``)."""
    from ..data_prep.corpus import speaker_of_seq_tag

    sums: Dict[Tuple[str, int], np.ndarray] = {}
    counts: Dict[Tuple[str, int], int] = {}
    for tag in seq_tags:
        if tag not in features or tag not in tokens or tag not in durations:
            raise KeyError(f"sequence {tag} lacks features, phonemes or durations")
        x = np.asarray(features[tag], dtype=np.float64)
        speaker = speaker_of_seq_tag(tag)
        for token, start, end in _token_spans(tokens[tag], durations[tag], tag):
            if end > start:
                for key in ((speaker, token), ("*", token), (speaker, None), ("*", None)):
                    sums[key] = sums.get(key, 0.0) + x[start:end].sum(axis=0)
                    counts[key] = counts.get(key, 0) + (end - start)
    return {key: sums[key] / counts[key] for key in sums}


def render_mean_frames(means: Dict[Tuple[str, int], np.ndarray], speaker: str, token_ids: np.ndarray,
                       durations: np.ndarray, seq_tag: str) -> np.ndarray:
    """``[T, F]``: each token's mean frame repeated over its duration: the speaker's, else all speakers'; a token
    that never occurs in training gets the speaker's (else everybody's) mean frame over all tokens."""
    frames = []
    for token, start, end in _token_spans(token_ids, durations, seq_tag):
        mean = next((means[k] for k in ((speaker, token), ("*", token), (speaker, None), ("*", None)) if k in means),
                    None)
        if mean is None:
            raise KeyError(f"sequence {seq_tag}: no training frames to take a mean from")
        frames.append(np.repeat(mean[None], end - start, axis=0))
    return np.concatenate(frames)


class MeanSpectraSynthesisJob(Job):
    """The "per-phoneme mean spectra" control: a TTS that learnt nothing but each speaker's average log-mel frame of
    every phoneme token.

    Why: a Glow-TTS decoder samples ``f^-1(z)`` around its prior means, which are constant over each token's frames;
    early in training the flow is close to the identity and the output is little more than these means. Rendering
    exactly that (the mean feature frame of each (speaker, token) over the TTS train split, repeated over the given
    durations of each TTS-CV utterance) and scoring it like every TTS model shows where "learnt the average spectra,
    not yet the within-phoneme dynamics" lies on the sWER scale: a TTS model near this control has only learnt that.

    Inputs: the model front end's log-mel HDF (``features.compute_feature_hdf``, not normalised), the TTS phoneme and
    durations HDFs of the training subset, the train / synthesis segment files. Speakers come from the LibriSpeech
    utterance id (``corpus.speaker_of_seq_tag``); a (speaker, token) pair unseen in
    training falls back to the token's mean over all speakers, a token never seen in training to the speaker's mean
    frame over all tokens. Output: ``audio_files/`` and ``audio_files.txt``
    (tag, file, seconds), written by the same Griffin-Lim and level rules as the TTS forwards
    (:func:`..pytorch_networks.vocoder.write_synthesis_audio`).
    """

    def __init__(self, feature_hdf: tk.Path, phoneme_hdf: tk.Path, durations_hdf: tk.Path, train_segments: tk.Path,
                 synthesis_segments: tk.Path, feature_settings, gl_iter: int = 32, audio_format: str = "flac"):
        self.feature_hdf = feature_hdf
        self.phoneme_hdf = phoneme_hdf
        self.durations_hdf = durations_hdf
        self.train_segments = train_segments
        self.synthesis_segments = synthesis_segments
        self.feature_settings = feature_settings
        self.gl_iter = gl_iter
        self.audio_format = audio_format
        self.out_audio_dir = self.output_path("audio_files", directory=True)
        self.out_audio_list = self.output_path("audio_files.txt")

    def tasks(self):
        yield Task("run", rqmt={"cpu": 1, "mem": 4, "time": 1})

    def run(self) -> None:
        from ..data_prep import hdf
        from ..data_prep.corpus import speaker_of_seq_tag
        from ..pytorch_networks.configs import FeatureExtractionConfig
        from .phoneme_baselines import read_segments
        from ..pytorch_networks.vocoder import GriffinLimVocoder, write_synthesis_audio

        feats = hdf.read_all(self.feature_hdf.get_path(), "features")
        tokens = hdf.read_all(self.phoneme_hdf.get_path(), "TTS phonemes")
        durations = hdf.read_all(self.durations_hdf.get_path(), "durations")

        means = mean_token_frames(feats, tokens, durations, read_segments(self.train_segments.get_path()))
        s = self.feature_settings
        vocoder = GriffinLimVocoder(FeatureExtractionConfig(
            sample_rate=s.sample_rate, win_size=s.win_size, hop_size=s.hop_size, f_min=s.f_min, f_max=s.f_max,
            min_amp=s.min_amp, num_filters=s.num_filters, center=s.center, norm=None), n_iter=self.gl_iter)
        out_dir = self.out_audio_dir.get_path()
        os.makedirs(out_dir, exist_ok=True)
        lines = []
        for tag in read_segments(self.synthesis_segments.get_path()):
            log_mel = render_mean_frames(means, speaker_of_seq_tag(tag), tokens[tag], durations[tag], tag)
            wave = vocoder(log_mel)
            path = os.path.join(out_dir, tag.replace("/", "_") + "." + self.audio_format)
            write_synthesis_audio(path, wave, s.sample_rate, s.preemphasis, self.audio_format)
            lines.append(f"{tag}\t{path}\t{len(wave) / s.sample_rate:.4f}\n")
        with open(self.out_audio_list.get_path(), "w", encoding="utf8") as f:
            f.writelines(lines)
