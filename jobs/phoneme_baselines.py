"""Reference points for the frame accuracies of the auxiliary phoneme heads.

A head's frame accuracy means little alone: frame labels are dominated by a few long tokens (silence, word
boundaries), and a large part of the labelling follows from the text and the utterance length alone. Two
baselines make the accuracies readable (issue 8.4):

* **majority class**: always predict the most frequent frame label of the *training* labels, scored on the
  evaluation labels;
* **proportional alignment**: the tokens upsampled with durations that only divide each utterance's frames
  proportionally among its tokens (``data.get_proportional_durations``), scored against the evaluation labels,
  i.e. what "knowing the text and dividing time evenly" already gets right.

Frame labels are built exactly as the models build them (``commons.upsample_labels``): token ``i`` covers
``durations[i]`` frames in order, frames the durations do not cover get label 0, and only the first
``floor(frames / frame_multiple) * frame_multiple`` frames count (the Glow-TTS flow sees the frames floored to a
multiple of ``n_sqz``). Accuracies are per-utterance frame accuracies averaged over utterances, as
``MeanPhonemeAccuracyJob`` averages the heads' accuracies.
"""
from __future__ import annotations

from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from ..sisyphus_api import Job, Task, tk


def upsample_tokens(tokens: np.ndarray, durations: np.ndarray, num_frames: int, tag: str = "?") -> np.ndarray:
    """Frame labels ``[num_frames]``: ``tokens`` repeated ``durations`` times, cut to ``num_frames``, frames not
    covered by the durations get label 0."""
    tokens = np.asarray(tokens).reshape(-1)
    durations = np.asarray(durations).reshape(-1)
    if tokens.shape != durations.shape:
        raise ValueError(f"sequence {tag}: {len(tokens)} tokens but {len(durations)} durations")
    if (durations < 0).any():
        raise ValueError(f"sequence {tag}: negative durations {durations[durations < 0].tolist()}")
    labels = np.repeat(tokens.astype(np.int64), durations.astype(np.int64))[:num_frames]
    return np.concatenate([labels, np.zeros(num_frames - len(labels), dtype=np.int64)])


def read_segments(path: str) -> List[str]:
    """Seq tags of a segment file (one per line)."""
    with open(path) as f:
        tags = [line.strip() for line in f if line.strip()]
    if not tags:
        raise ValueError(f"segment file {path} is empty")
    return tags


def read_frame_labels(phoneme_hdf: str, durations_hdf: str, tags: Sequence[str], frame_multiple: int = 1,
                      num_frames: Optional[Dict[str, int]] = None) -> Dict[str, np.ndarray]:
    """Frame labels of ``tags``: the tokens of ``phoneme_hdf`` upsampled by ``durations_hdf``.

    The utterance length is ``num_frames[tag]`` if given, else the sum of the durations (durations HDFs are
    validated to cover all feature frames); it is floored to a multiple of ``frame_multiple``.
    """
    from ..data_prep import hdf

    phonemes = hdf.read_all(phoneme_hdf, "phonemes")
    durations = hdf.read_all(durations_hdf, "durations")
    labels = {}
    for tag in tags:
        for name, path, store in (("phoneme", phoneme_hdf, phonemes), ("durations", durations_hdf, durations)):
            if tag not in store:
                raise KeyError(f"sequence {tag} is missing in the {name} HDF {path}")
        frames = num_frames[tag] if num_frames is not None else int(durations[tag].sum())
        frames = (frames // frame_multiple) * frame_multiple
        labels[tag] = upsample_tokens(phonemes[tag], durations[tag], frames, tag)
    return labels


def mean_frame_accuracy(hypotheses: Dict[str, np.ndarray], references: Dict[str, np.ndarray]) -> float:
    """Per-utterance share of frames whose labels agree, averaged over the reference utterances (utterances
    without frames count as 0, like ``commons.frame_accuracy``)."""
    if not references:
        raise ValueError("no reference utterances to score")
    accuracies = []
    for tag, ref in references.items():
        if tag not in hypotheses:
            raise KeyError(f"sequence {tag} has no hypothesis labels")
        hyp = hypotheses[tag]
        if hyp.shape != ref.shape:
            raise ValueError(f"sequence {tag}: {len(hyp)} hypothesis frames vs {len(ref)} reference frames")
        accuracies.append(float(np.sum(hyp == ref)) / max(len(ref), 1))
    return float(np.mean(accuracies))


def majority_class(labels: Iterable[np.ndarray]) -> int:
    """The most frequent frame label (ties: the smallest label)."""
    counts = np.bincount(np.concatenate([np.asarray(x, dtype=np.int64) for x in labels]))
    if counts.sum() == 0:
        raise ValueError("no frames to count labels on")
    return int(np.argmax(counts))


def majority_class_accuracy(train_labels: Dict[str, np.ndarray], eval_labels: Dict[str, np.ndarray]
                            ) -> Tuple[int, float]:
    """(label, accuracy): the most frequent training frame label and the accuracy of always predicting it on
    the evaluation labels."""
    label = majority_class(train_labels.values())
    constant = {tag: np.full_like(ref, label) for tag, ref in eval_labels.items()}
    return label, mean_frame_accuracy(constant, eval_labels)


class MajorityClassAccuracyJob(Job):
    """Frame accuracy of always predicting the most frequent frame label of ``train_segments`` on the frame
    labels of ``eval_segments`` (tokens of ``phoneme_hdf`` upsampled by ``durations_hdf``).

    Outputs: ``out_accuracy`` (float), ``out_label`` (the majority token id).
    """

    def __init__(self, phoneme_hdf: tk.Path, durations_hdf: tk.Path, train_segments: tk.Path,
                 eval_segments: tk.Path, frame_multiple: int = 1):
        self.phoneme_hdf = phoneme_hdf
        self.durations_hdf = durations_hdf
        self.train_segments = train_segments
        self.eval_segments = eval_segments
        self.frame_multiple = frame_multiple
        self.out_accuracy = self.output_var("accuracy")
        self.out_label = self.output_var("label")

    def tasks(self):
        yield Task("run", mini_task=True)

    def run(self) -> None:
        def labels(segments):
            return read_frame_labels(self.phoneme_hdf.get_path(), self.durations_hdf.get_path(),
                                     read_segments(segments.get_path()), self.frame_multiple)

        label, accuracy = majority_class_accuracy(labels(self.train_segments), labels(self.eval_segments))
        self.out_label.set(label)
        self.out_accuracy.set(round(accuracy, 6))


class AlignmentFrameAccuracyJob(Job):
    """Frame accuracy of the labels from ``hypothesis_durations`` against those from ``reference_durations``
    (same tokens of ``phoneme_hdf``) on ``segments``; the utterance length is the reference's.

    E.g. proportional placeholder durations against the given durations: the proportional-alignment baseline.
    """

    def __init__(self, phoneme_hdf: tk.Path, hypothesis_durations: tk.Path, reference_durations: tk.Path,
                 segments: tk.Path, frame_multiple: int = 1):
        self.phoneme_hdf = phoneme_hdf
        self.hypothesis_durations = hypothesis_durations
        self.reference_durations = reference_durations
        self.segments = segments
        self.frame_multiple = frame_multiple
        self.out_accuracy = self.output_var("accuracy")

    def tasks(self):
        yield Task("run", mini_task=True)

    def run(self) -> None:
        tags = read_segments(self.segments.get_path())
        phonemes = self.phoneme_hdf.get_path()
        reference = read_frame_labels(phonemes, self.reference_durations.get_path(), tags, self.frame_multiple)
        hypothesis = read_frame_labels(phonemes, self.hypothesis_durations.get_path(), tags, self.frame_multiple,
                                       num_frames={tag: len(ref) for tag, ref in reference.items()})
        self.out_accuracy.set(round(mean_frame_accuracy(hypothesis, reference), 6))
