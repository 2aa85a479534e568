"""End-to-end data pipeline on a tiny embedded corpus: jobs run through the embedded Sisyphus engine, datasets are
opened with the real RETURNN and checked for keys, shapes and alignment consistency."""
import os
import shutil

import numpy as np
import pytest

from librispeech_joint_training_given_alignments import data
from librispeech_joint_training_given_alignments.data_prep import datasets as ds
from librispeech_joint_training_given_alignments.data_prep import lexicon as lexmod
from librispeech_joint_training_given_alignments.data_prep.features import LogMelSettings
from librispeech_joint_training_given_alignments.data_prep.testing import (TINY_SUBSETS, JobFailed, experiment_dir,
                                                                          run_graph)
from librispeech_joint_training_given_alignments.data_prep.xvectors import XVectorTrainingSettings
from librispeech_joint_training_given_alignments.jobs.returnn_config import instantiate_paths
from librispeech_joint_training_given_alignments.sisyphus_api import tk

SETTINGS = data.TrainingDatasetSettings(partition_epoch=2, seq_ordering="laplace:.4", dev_per_speaker=1,
                                        devtrain_size=6)
XVEC = XVectorTrainingSettings(learning_rates=(3e-3, 3e-3), batch_size_seconds=60.0, max_seqs=4, chunk_frames=80,
                              channels=32, pooling_channels=48, embedding_dim=32, dropout=0.0)


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory):
    with experiment_dir(str(tmp_path_factory.mktemp("data_pipeline"))) as d:
        yield d


@pytest.fixture(scope="module")
def root(base_dir):
    path = data.get_embedded_librispeech_root(subsets=TINY_SUBSETS, seed=7)
    run_graph([path])
    return path


@pytest.fixture(scope="module")
def joint(root, base_dir):
    d = data.build_training_datasets(root, SETTINGS, xvector_settings=XVEC)
    run_graph([d.train, d.cv, d.devtrain, d.cv_asr, d.synthesis, d.feature_norm, d.tts_vocab.vocab_file,
               d.asr_vocab.vocab_file])
    return d


def _open(dataset_dict, epoch=1):
    from returnn.datasets import init_dataset

    dataset = init_dataset(instantiate_paths(dataset_dict))
    dataset.init_seq_order(epoch=epoch)
    return dataset


def _all_seqs(dataset):
    out = []
    i = 0
    while dataset.is_less_than_num_seqs(i):
        dataset.load_seqs(i, i + 1)
        out.append((dataset.get_tag(i), {k: dataset.get_data(i, k) for k in dataset.get_data_keys()}))
        i += 1
    return out


def test_embedded_tree_layout(root):
    import soundfile

    base = root.get_path()
    speakers = set()
    for spec in TINY_SUBSETS:
        for spk in spec.speaker_ids:
            (chapter,) = os.listdir(os.path.join(base, spec.name, spk))
            d = os.path.join(base, spec.name, spk, chapter)
            trans = open(os.path.join(d, f"{spk}-{chapter}.trans.txt")).read().splitlines()
            assert len(trans) == spec.utterances_per_speaker
            for line in trans:
                utt, text = line.split(" ", 1)
                assert text == text.upper() and utt.startswith(f"{spk}-{chapter}-")
                info = soundfile.info(os.path.join(d, utt + ".flac"))
                assert info.samplerate == 16000 and info.channels == 1 and info.duration > 0.5
            speakers.add(spk)
    assert len(speakers) == 6


def test_train_dataset_keys_shapes_and_alignment(joint):
    s = LogMelSettings()
    dataset = _open(joint.train)
    # every key but the per-token durations, which exist only for a given token durations file
    assert set(dataset.get_data_keys()) == set(data.ALL_KEYS) - {ds.TOKEN_DURATIONS_KEY}
    seqs = _all_seqs(dataset)
    n_train = len(open(joint.train_segments.get_path()).read().split())
    assert n_train == 16
    assert len(seqs) == n_train // 2  # partition_epoch 2
    for tag, d in seqs:
        audio, phon, dur = d[ds.AUDIO_KEY], d[ds.PHONEMES_KEY], d[ds.DURATIONS_KEY]
        assert audio.ndim == 2 and audio.shape[1] == 1 and audio.dtype == np.float32
        assert phon.shape == dur.shape and phon.ndim == 1
        assert int(dur.sum()) == s.num_frames(audio.shape[0]), tag
        assert (dur >= 0).all()
        labels = lexmod.tts_inventory()
        assert labels[phon[0]] == lexmod.START and labels[phon[-1]] == lexmod.END
        eow = d[ds.PHONEMES_EOW_KEY]
        assert eow.ndim == 1 and lexmod.asr_eow_inventory()[eow[-1]].endswith("#")
        assert d[ds.SPEAKER_KEY].shape == (1,) and 0 <= d[ds.SPEAKER_KEY][0] < 4
        assert d[ds.XVECTOR_KEY].shape == (1, 32)
    assert dataset.num_outputs[ds.PHONEMES_KEY][0] == 44


def test_cv_devtrain_and_asr_cv(joint):
    cv = _all_seqs(_open(joint.cv))
    assert len(cv) == 4  # one per training speaker
    cv_tags = {t for t, _ in cv}
    assert cv_tags == set(open(joint.cv_segments.get_path()).read().split())
    devtrain = _all_seqs(_open(joint.devtrain))
    assert len(devtrain) == 6 and not ({t for t, _ in devtrain} & cv_tags)
    asr = _all_seqs(_open(joint.cv_asr))
    assert len(asr) == 2 and all(t.startswith("dev-clean/") for t, _ in asr)
    assert set(asr[0][1]) >= {ds.AUDIO_KEY, ds.PHONEMES_EOW_KEY}


def test_vocabularies_and_statistics(joint):
    from returnn.datasets.util.vocabulary import Vocabulary

    tts = Vocabulary.create_vocab(**instantiate_paths(joint.tts_vocab.returnn_vocab()))
    asr = Vocabulary.create_vocab(**instantiate_paths(joint.asr_vocab.returnn_vocab()))
    assert tts.num_labels == 44 and tts.labels[-1] == "[blank]" and tts.labels[39:43] == [
        "[UNKNOWN]", "[end]", "[space]", "[start]"]
    assert asr.num_labels == 79 and asr.labels[40] == "AA#"
    mean, std = joint.feature_norm
    assert -200 < mean.get() < 50 and 1 < std.get() < 100
    assert joint.speaker_labels.num_speakers.get() == 4


def test_training_reads_each_utterances_own_xvector_synthesis_the_speaker_average(joint):
    """Training / CV batches carry the utterance's own extracted x-vector (two utterances of one speaker differ);
    the synthesis data of the TTS-CV split carries the speaker's mean over the TTS train split."""
    from librispeech_joint_training_given_alignments.data_prep import hdf
    from librispeech_joint_training_given_alignments.data_prep.xvector_jobs import AverageXVectorsPerSpeakerJob
    from librispeech_joint_training_given_alignments.jobs.returnn_forward import ReturnnForwardJob
    from librispeech_joint_training_given_alignments.jobs.returnn_training import (ReturnnTrainingJob,
                                                                                   read_learning_rates)

    training = joint.extras["xvector_training"]
    assert isinstance(training, ReturnnTrainingJob) and sorted(training.out_checkpoints) == [2]
    assert training.out_checkpoints[2].exists()
    scores = read_learning_rates(training.out_learning_rates.get_path())
    assert sorted(scores) == [1, 2] and {"train_loss_ce", "dev_loss_ce", "dev_loss_error"} <= set(scores[2])
    assert all(np.isfinite(v) for epoch in scores.values() for v in epoch.values())
    config = open(training.out_returnn_config_file.get_path()).read()
    assert "model_config = XVectorConfig(num_speakers=4, input_dim=80, channels=32, pooling_channels=48" in config

    # one vector per utterance, written by the RETURNN forward of the trained model
    forward = joint.xvectors.creator
    assert isinstance(forward, ReturnnForwardJob)
    assert forward.model_checkpoint.get_path() == training.out_checkpoints[2].get_path()
    extracted = hdf.read_all(joint.xvectors.get_path())
    train_tags = open(joint.train_segments.get_path()).read().split()
    cv_tags = open(joint.cv_segments.get_path()).read().split()
    assert set(extracted) == set(train_tags) | set(cv_tags)
    assert all(v.shape == (1, 32) and v.dtype == np.float32 for v in extracted.values())

    def speaker(tag):
        return tag.split("/")[-1].split("-")[0]

    # training batches (both partitions of the epoch) and CV: the utterance's own vector
    seen = {}
    for tag, d in _all_seqs(_open(joint.train, epoch=1)) + _all_seqs(_open(joint.train, epoch=2)) + _all_seqs(
            _open(joint.cv)):
        assert np.array_equal(d[ds.XVECTOR_KEY], extracted[tag]), tag
        seen[tag] = d[ds.XVECTOR_KEY]
    assert set(seen) == set(train_tags) | set(cv_tags)
    for spk in {speaker(t) for t in train_tags}:
        a, b = [seen[t] for t in train_tags if speaker(t) == spk][:2]
        assert not np.allclose(a, b), spk

    # synthesis of the TTS-CV texts: the speaker's mean over the train split
    assert isinstance(joint.speaker_xvectors.creator, AverageXVectorsPerSpeakerJob)
    synthesis = _all_seqs(_open(joint.synthesis))
    assert sorted(t for t, _ in synthesis) == sorted(cv_tags)
    means = []
    for tag, d in synthesis:
        mean = np.mean([extracted[t] for t in train_tags if speaker(t) == speaker(tag)], axis=0)
        assert np.allclose(d[ds.XVECTOR_KEY], mean, atol=1e-6), tag
        assert not np.allclose(d[ds.XVECTOR_KEY], extracted[tag]), tag
        means.append(mean)
    assert not np.allclose(means[0], means[1])
    assert set(synthesis[0][1]) == set(_all_seqs(_open(joint.cv))[0][1])  # the same streams as the CV set


def test_builders_accept_tree_given_by_path(root, base_dir, tmp_path):
    """A LibriSpeech tree that is not a job output (like a real LibriSpeech download) given as tk.Path."""
    tree = tmp_path / "LibriSpeech"
    shutil.copytree(os.path.join(root.get_path(), "dev-clean"), tree / "dev-clean")
    given = tk.Path(str(tree))
    d = data.build_asr_training_datasets(given, data.TrainingDatasetSettings(dev_per_speaker=1),
                                         train_subset="dev-clean", asr_dev_subsets=("dev-clean",))
    run_graph([d.train, d.cv_asr])
    seqs = _all_seqs(_open(d.train))
    assert len(seqs) == 1 and set(seqs[0][1]) == {ds.AUDIO_KEY, ds.PHONEMES_EOW_KEY}
    test_ds, ref = data.build_test_dataset(given, "dev-clean")
    run_graph([test_ds])
    test_seqs = _all_seqs(_open(test_ds))
    assert len(test_seqs) == 2 and set(test_seqs[0][1]) == {ds.AUDIO_KEY}
    other, _ = data.build_test_dataset(given, "dev-clean", audio_key="raw_audio")
    assert set(other["data_map"]) == {"raw_audio"}


def test_given_durations_are_validated(joint, root, base_dir, tmp_path):
    """A given durations HDF with a wrong sum makes the validation job fail, naming the sequence."""
    from librispeech_joint_training_given_alignments.data_prep import hdf

    durs = hdf.read_all(joint.durations.get_path())
    bad_tag = sorted(durs)[0]
    bad = tmp_path / "bad_durations.hdf"
    with hdf.open_writer(str(bad), dim=1, ndim=1) as w:
        for tag, v in durs.items():
            v = v.copy()
            if tag == bad_tag:
                v[0] += 1
            hdf.write_seq(w, tag, v)
    d = data.build_tts_training_datasets(root, SETTINGS, durations_file=tk.Path(str(bad)), xvector_settings=XVEC)
    with pytest.raises(JobFailed, match=bad_tag):
        run_graph([d.train])


def test_oov_word_fails_lexicon_job_with_tag(root, base_dir, tmp_path):
    tree = tmp_path / "LibriSpeech"
    shutil.copytree(os.path.join(root.get_path(), "test-clean"), tree / "test-clean")
    (trans,) = list((tree / "test-clean").glob("*/*/*.trans.txt"))
    lines = trans.read_text().splitlines()
    utt = lines[0].split()[0]
    lines[0] = f"{utt} HELLO ZORBLAXIAN WORLD"
    trans.write_text("\n".join(lines) + "\n")
    corpus = data.get_corpus(tk.Path(str(tree)), "test-clean")
    with pytest.raises(JobFailed, match=rf"ZORBLAXIAN: test-clean/{utt}/{utt}"):
        run_graph([data.get_lexicon([corpus])])
