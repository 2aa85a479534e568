"""Majority-class and proportional-alignment baselines of the phoneme-head accuracies on hand-made labels."""
import numpy as np
import pytest

from librispeech_joint_training_given_alignments import pipeline
from librispeech_joint_training_given_alignments.data_prep import hdf
from librispeech_joint_training_given_alignments.jobs.phoneme_baselines import (mean_frame_accuracy,
                                                                                read_frame_labels, upsample_tokens)
from librispeech_joint_training_given_alignments.sisyphus_api import tk

# train: a -> 5 5 5 7, b -> 7 5 9 9 (frames: 5 x4, 7 x2, 9 x2 -> majority 5)
# eval:  c -> 9 9 5 5 (majority 0.5), d -> 5 5 (majority 1.0); mean over utterances 0.75 (frame-weighted: 4/6)
TOKENS = {"x/a/a": [5, 7], "x/b/b": [7, 5, 9], "x/c/c": [9, 5], "x/d/d": [5]}
GIVEN = {"x/a/a": [3, 1], "x/b/b": [1, 1, 2], "x/c/c": [2, 2], "x/d/d": [2]}
# proportional: c -> 9 5 5 5 (3 of 4 frames right), d -> 5 5 (all right): mean 0.875
PROPORTIONAL = {"x/a/a": [2, 2], "x/b/b": [1, 1, 2], "x/c/c": [1, 3], "x/d/d": [2]}


def _write(path, seqs):
    with hdf.open_writer(str(path), dim=1, ndim=1) as writer:
        for tag, values in seqs.items():
            hdf.write_seq(writer, tag, np.asarray(values, dtype=np.int32))
    return tk.Path(str(path))


def _segments(path, tags):
    path.write_text("\n".join(tags) + "\n")
    return tk.Path(str(path))


def test_upsampling_matches_the_models_convention():
    assert upsample_tokens(np.array([4, 2]), np.array([2, 1]), 5).tolist() == [4, 4, 2, 0, 0]  # uncovered -> 0
    assert upsample_tokens(np.array([4, 2]), np.array([2, 3]), 4).tolist() == [4, 4, 2, 2]  # cut to the frames
    with pytest.raises(ValueError, match="sequence s/1/1: 2 tokens but 1 durations"):
        upsample_tokens(np.array([4, 2]), np.array([2]), 3, "s/1/1")


def test_baseline_jobs_on_hand_made_labels(sis_setup):
    phonemes = _write(sis_setup / "phonemes.hdf", TOKENS)
    given = _write(sis_setup / "given.hdf", GIVEN)
    proportional = _write(sis_setup / "proportional.hdf", PROPORTIONAL)
    train = _segments(sis_setup / "train.segments", ["x/a/a", "x/b/b"])
    evaluation = _segments(sis_setup / "eval.segments", ["x/c/c", "x/d/d"])
    baselines = pipeline.phoneme_accuracy_baselines("test/baselines", phonemes, given, proportional, train, evaluation)
    # only the first frame_multiple * k frames count: c -> 9 9 5 5, d -> (none) counts 0 like the model's accuracy
    floored = pipeline.phoneme_accuracy_baselines("test/floored", phonemes, given, proportional, train, evaluation,
                                                  frame_multiple=3)
    state = tk.run(list(baselines.values()) + list(floored.values()))
    assert set(state.jobs.values()) == {"finished"}, state.jobs
    assert baselines["majority_class"].get() == pytest.approx(0.75)
    assert baselines["majority_class"].creator.out_label.get() == 5
    assert baselines["proportional_alignment"].get() == pytest.approx(0.875)
    # c: 9 9 5 -> majority 5 right on 1 of 3, proportional 9 5 5 right on 2 of 3; d: 0 frames -> 0
    assert floored["majority_class"].get() == pytest.approx((1 / 3 + 0.0) / 2, abs=1e-6)
    assert floored["proportional_alignment"].get() == pytest.approx((2 / 3 + 0.0) / 2, abs=1e-6)


def test_missing_sequences_and_mismatches_are_named(tmp_path):
    phonemes = _write(tmp_path / "phonemes.hdf", TOKENS).get_path()
    given = _write(tmp_path / "given.hdf", {"x/a/a": [3, 1]}).get_path()
    with pytest.raises(KeyError, match=r"sequence x/b/b is missing in the durations HDF .*given.hdf"):
        read_frame_labels(phonemes, given, ["x/a/a", "x/b/b"])
    with pytest.raises(ValueError, match="sequence x/a/a: 2 hypothesis frames vs 3 reference frames"):
        mean_frame_accuracy({"x/a/a": np.array([1, 2])}, {"x/a/a": np.array([1, 2, 3])})


def test_mean_spectra_control_renders_each_speakers_token_means_over_the_durations():
    """The per-phoneme mean-spectra control: known means per (speaker, token), the all-speaker fallback for a pair
    unseen in training, the speaker's overall mean for a token never seen, and an error naming the sequence when
    there is nothing to take a mean from."""
    import numpy as np
    import pytest
    from librispeech_joint_training_given_alignments.jobs.evaluation import mean_token_frames, render_mean_frames

    a, b = "train/1-1-0/1-1-0", "train/2-1-0/2-1-0"
    features = {a: np.array([[0.0, 0], [2, 2], [10, 10]]), b: np.array([[4.0, 4], [20, 20], [30, 30]])}
    tokens = {a: np.array([5, 7]), b: np.array([5, 7])}
    durations = {a: np.array([2, 1]), b: np.array([1, 2])}
    means = mean_token_frames(features, tokens, durations, [a, b])
    np.testing.assert_allclose(means[("1", 5)], [1, 1])
    np.testing.assert_allclose(means[("2", 7)], [25, 25])
    np.testing.assert_allclose(means[("*", 5)], [2, 2])  # (0 + 2 + 4) / 3 frames
    out = render_mean_frames(means, "3", np.array([7, 5]), np.array([1, 2]), "cv/3-1-0/3-1-0")
    np.testing.assert_allclose(out, [[20, 20], [2, 2], [2, 2]])  # speaker 3 unseen: all-speaker means
    out = render_mean_frames(means, "1", np.array([7]), np.array([3]), "cv/1-1-1/1-1-1")
    np.testing.assert_allclose(out, [[10, 10]] * 3)
    out = render_mean_frames(means, "1", np.array([9]), np.array([1]), "cv/1-1-2/1-1-2")
    np.testing.assert_allclose(out, [[4, 4]])  # token never seen: speaker 1's mean over all its frames (0, 2, 10)
    with pytest.raises(KeyError, match="cv/1-1-2/1-1-2: no training frames"):
        render_mean_frames({}, "1", np.array([9]), np.array([1]), "cv/1-1-2/1-1-2")
