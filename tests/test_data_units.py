"""Unit tests of the pure data functions: text, synthesis determinism, corpus validation, lexicon, features,
durations, x-vector model. Bad input must fail with an error that names the item."""
import os
import random
import shutil

import numpy as np
import pytest
import soundfile

from librispeech_joint_training_given_alignments.data_prep import corpus, durations, hdf
from librispeech_joint_training_given_alignments.data_prep import lexicon as lexmod
from librispeech_joint_training_given_alignments.data_prep import synthesis, text_generation
from librispeech_joint_training_given_alignments.data_prep.features import LogMelExtractor, LogMelSettings, librosa_log_mel


@pytest.fixture(scope="module")
def small_tree(tmp_path_factory):
    """Two speakers × two utterances, synthesised directly (no job graph)."""
    root = str(tmp_path_factory.mktemp("small_tree") / "LibriSpeech")
    plans = synthesis.plan_corpus(synthesis.DEFAULT_VOICES, [synthesis.SubsetSpec("dev-clean", ("1003", "1007"), 2)], 3)
    synthesis.write_librispeech_tree(root, plans)
    return root


def _copy(tree, tmp_path):
    dst = str(tmp_path / "LibriSpeech")
    shutil.copytree(tree, dst)
    return dst


def test_generated_words_are_in_cmudict_and_deterministic():
    assert [w for w in text_generation.all_words() if lexmod.lookup(w) is None] == []
    a = text_generation.generate_sentences(5, 20)
    assert a == text_generation.generate_sentences(5, 20) and a != text_generation.generate_sentences(6, 20)
    assert all(s == s.upper() and s.strip() for s in a)


def test_default_voices_are_distinct_speakers():
    assert len({(v.engine, v.voice, v.speed, v.pitch) for v in synthesis.DEFAULT_VOICES}) >= 8
    total = sum(len(s.speaker_ids) * s.utterances_per_speaker for s in synthesis.DEFAULT_SUBSETS)
    assert 150 <= total <= 500


def test_synthesis_is_bit_exact_reproducible(tmp_path):
    voice = synthesis.DEFAULT_VOICES[4]
    for name in ("a.flac", "b.flac"):
        synthesis.synthesize_to_flac(voice, "THE OLD MAN SLEPT", 1.0, str(tmp_path / name))
    a, sr = soundfile.read(str(tmp_path / "a.flac"))
    b, _ = soundfile.read(str(tmp_path / "b.flac"))
    assert sr == 16000 and np.array_equal(a, b) and np.abs(a).max() > 0.1


def test_corpus_reading(small_tree):
    entries = corpus.read_librispeech_subset(small_tree, "dev-clean")
    assert len(entries) == 4 and {e.speaker for e in entries} == {"1003", "1007"}
    e = entries[0]
    assert e.seq_tag == f"dev-clean/{os.path.basename(e.audio)[:-5]}/{os.path.basename(e.audio)[:-5]}"
    assert e.num_samples == soundfile.info(e.audio).frames and abs(e.duration - e.num_samples / 16000) < 1e-9


def test_corrupt_audio_is_named(small_tree, tmp_path):
    tree = _copy(small_tree, tmp_path)
    victim = sorted(corpus_audio for corpus_audio in
                    (os.path.join(d, f) for d, _, fs in os.walk(tree) for f in fs if f.endswith(".flac")))[1]
    with open(victim, "wb") as f:
        f.write(b"fLaC" + os.urandom(300))
    with pytest.raises(corpus.CorpusError, match=f"corrupt or unreadable audio file {victim}"):
        corpus.read_librispeech_subset(tree, "dev-clean")


def test_truncated_audio_is_named(small_tree, tmp_path):
    tree = _copy(small_tree, tmp_path)
    victim = [os.path.join(d, f) for d, _, fs in os.walk(tree) for f in fs if f.endswith(".flac")][0]
    data = open(victim, "rb").read()
    open(victim, "wb").write(data[: len(data) // 2])
    with pytest.raises(corpus.CorpusError, match=os.path.basename(victim)):
        corpus.read_librispeech_subset(tree, "dev-clean")


def test_empty_transcript_is_named(small_tree, tmp_path):
    tree = _copy(small_tree, tmp_path)
    trans = [os.path.join(d, f) for d, _, fs in os.walk(tree) for f in fs if f.endswith(".trans.txt")][0]
    lines = open(trans).read().splitlines()
    utt = lines[1].split()[0]
    lines[1] = utt + " "
    open(trans, "w").write("\n".join(lines) + "\n")
    with pytest.raises(corpus.CorpusError, match=f"empty transcript for sequence dev-clean/{utt}/{utt}"):
        corpus.read_librispeech_subset(tree, "dev-clean")


def test_balanced_split():
    entries = [corpus.CorpusEntry(f"s/{s}-1-{i}/{s}-1-{i}", "", 1.0, 1, "A", s, "1") for s in "123" for i in range(5)]
    train, dev = corpus.balanced_speaker_split(entries, 2, seed=42)
    assert len(dev) == 6 and len(train) == 9 and not set(train) & set(dev)
    assert (train, dev) == corpus.balanced_speaker_split(entries, 2, seed=42)
    with pytest.raises(corpus.CorpusError, match="speaker 1"):
        corpus.balanced_speaker_split(entries, 5)


def test_lexicon_and_token_sequences():
    lex = lexmod.build_lexicon({"HELLO": ["t1"], "WORLD": ["t1"]})
    assert lex == {"HELLO": ["HH", "AH", "L", "OW"], "WORLD": ["W", "ER", "L", "D"]}
    assert lexmod.tts_tokens("HELLO WORLD", lex) == ["[start]", "[space]", "HH", "AH", "L", "OW", "[space]", "W", "ER",
                                                     "L", "D", "[space]", "[end]"]
    assert lexmod.eow_tokens("HELLO WORLD", lex) == ["HH", "AH", "L", "OW#", "W", "ER", "L", "D#"]
    assert len(lexmod.tts_inventory()) == 44 and len(lexmod.asr_eow_inventory()) == 79


def test_oov_error_lists_words_and_tags():
    with pytest.raises(lexmod.OOVError) as err:
        lexmod.build_lexicon({"HELLO": ["a/1/1"], "QXZW": ["b/2/2", "c/3/3"], "ZZYZX": ["d/4/4"]})
    assert err.value.oov == {"QXZW": ["b/2/2", "c/3/3"], "ZZYZX": ["d/4/4"]}
    assert "QXZW: b/2/2, c/3/3" in str(err.value)
    assert lexmod.build_lexicon({"QXZW": ["b"]}, extra_pronunciations={"qxzw": ["K", "W"]}) == {"QXZW": ["K", "W"]}


def test_features_match_librosa(small_tree):
    s = LogMelSettings()
    audio, _ = soundfile.read(corpus.read_librispeech_subset(small_tree, "dev-clean")[0].audio, dtype="float32")
    ours = LogMelExtractor(s)(audio)
    ref = librosa_log_mel(audio, s)
    assert ours.shape == ref.shape == (s.num_frames(len(audio)), 80)
    assert np.abs(ours - ref).max() < 0.05  # dB; float32 FFT differences only


def test_proportional_durations():
    d = durations.proportional_durations([1, 0.5, 1, 1], 11)
    assert d.sum() == 11 and d.dtype == np.int32 and (d >= 0).all()
    assert durations.proportional_durations([1, 1, 1], 2).tolist() in ([1, 1, 0], [1, 0, 1], [0, 1, 1])
    for _ in range(50):
        n, t = random.randint(1, 30), random.randint(0, 300)
        assert durations.proportional_durations(np.random.rand(n) + 0.1, t).sum() == t


def test_duration_validation_errors_name_the_sequence():
    durs = {"a": np.array([2, 3]), "b": np.array([1, 1, 1])}
    phon = {"a": 2, "b": 3}
    frames = {"a": 5, "b": 3}
    durations.validate_durations(durs, phon, frames)
    with pytest.raises(durations.DurationError, match="sequence c is missing in the durations HDF"):
        durations.validate_durations(durs, dict(phon, c=1), dict(frames, c=1))
    with pytest.raises(durations.DurationError, match="sequence a: durations sum to 5 but the features have 6 frames"):
        durations.validate_durations(durs, phon, dict(frames, a=6))
    with pytest.raises(durations.DurationError, match="sequence b: 3 durations but 4 phonemes"):
        durations.validate_durations(durs, dict(phon, b=4), frames)
    with pytest.raises(durations.DurationError, match="sequence a: negative duration -1"):
        durations.validate_durations(dict(durs, a=np.array([6, -1])), phon, frames)


def test_token_duration_validation_checks_the_merge_onto_the_phonemes(tmp_path):
    """Token durations ``blank p1 blank p2 blank``: the leading blank merges onto p1, the trailing onto p2, the inner
    one is split (left neighbour the lower half): [2, 3, 3, 4, 1] -> [2 + 3 + 1, 4 + 2 + 1] = [6, 7]."""
    phonemes = {"a": np.array([6, 7]), "b": np.array([3])}
    tokens = {"a": np.array([2, 3, 3, 4, 1]), "b": np.array([1, 1, 1])}
    durations.validate_token_durations(tokens, phonemes)
    with pytest.raises(durations.DurationError, match="sequence b is missing in the token durations"):
        durations.validate_token_durations({"a": tokens["a"]}, phonemes)
    with pytest.raises(durations.DurationError, match="sequence a: 4 token durations but 2 phonemes .*5"):
        durations.validate_token_durations(dict(tokens, a=np.array([2, 3, 3, 5])), phonemes)
    with pytest.raises(durations.DurationError, match="sequence b: token 0 has 0 frames"):
        durations.validate_token_durations(dict(tokens, b=np.array([0, 2, 1])), phonemes)
    # same frame count, but the inner blank split the other way round: another alignment
    with pytest.raises(durations.DurationError, match="sequence a: .* first at phoneme 0 \\(5 vs 6 frames\\)"):
        durations.validate_token_durations(dict(tokens, a=np.array([2, 2, 3, 5, 1])), phonemes)
    token_hdf, phoneme_hdf = str(tmp_path / "tokens.hdf"), str(tmp_path / "phonemes.hdf")
    for path, seqs in ((token_hdf, dict(tokens, b=np.array([1, 2, 1]))), (phoneme_hdf, phonemes)):
        with hdf.open_writer(path, dim=1, ndim=1) as w:
            for tag, d in seqs.items():
                hdf.write_seq(w, tag, d.astype(np.int32))
    with pytest.raises(durations.DurationError, match=f"token durations HDF {token_hdf}: sequence b: .*4 vs 3"):
        durations.validate_token_duration_hdf(token_hdf, phoneme_hdf)


def test_duration_hdf_roundtrip(tmp_path):
    path = str(tmp_path / "d.hdf")
    with hdf.open_writer(path, dim=1, ndim=1) as w:
        hdf.write_seq(w, "x/1/1", np.array([3, 0, 2], dtype=np.int32))
    assert hdf.read_seq_lengths(path) == {"x/1/1": 3}
    assert hdf.read_all(path)["x/1/1"].tolist() == [3, 0, 2]


def test_xvector_model_shapes_and_masking():
    import torch

    from librispeech_joint_training_given_alignments.pytorch_networks.xvector import XVectorConfig, XVectorModel

    model = XVectorModel(XVectorConfig(num_speakers=5, channels=32, pooling_channels=48, embedding_dim=16)).eval()
    x = torch.randn(2, 50, 80)
    emb, logits = model(x, torch.tensor([50, 30]))
    assert emb.shape == (2, 16) and logits.shape == (2, 5)
    # padding beyond the length must not change the result (up to conv receptive field at the edge)
    emb2, _ = model(x[1:, :30], torch.tensor([30]))
    assert torch.allclose(emb[1], emb2[0], atol=1e-4)


def _speaker_features(num_speakers=3, per_speaker=4, seed=0):
    """Log-mel-like features whose speaker shows in the temporal dynamics (a per-speaker modulation rate and
    phase slope over the bins), which survive the model's per-utterance mean/variance normalisation."""
    rng = np.random.default_rng(seed)
    feats, speakers = [], []
    for spk in range(num_speakers):
        for _ in range(per_speaker):
            length = int(rng.integers(40, 90))
            t = np.arange(length)[:, None]
            f = np.arange(80)[None, :]
            x = np.sin(2 * np.pi * (0.05 + 0.07 * spk) * t + (0.1 + 0.2 * spk) * f + rng.uniform(0, 6.3))
            feats.append((x + 0.3 * rng.standard_normal((length, 80))).astype(np.float32))
            speakers.append(spk)
    return feats, np.array(speakers, dtype=np.int32)


def _tensor_dict(feats, speakers, idx):
    import torch
    from networks_returnn_helpers import FakeTensorDict

    from librispeech_joint_training_given_alignments.pytorch_networks.configs import AUDIO_KEY, SPEAKER_KEY

    lens = torch.tensor([len(feats[i]) for i in idx])
    x = torch.zeros(len(idx), int(lens.max()), 80)
    for b, i in enumerate(idx):
        x[b, : lens[b]] = torch.from_numpy(feats[i])
    return FakeTensorDict({AUDIO_KEY: (x, lens), SPEAKER_KEY: (torch.from_numpy(speakers[idx, None]), None)})


def test_xvector_returnn_steps_learn_and_callback_writes_hdf(tmp_path, monkeypatch):
    """train_step (loss ``ce`` on random chunks, ``error`` reported) lowers the CE; a batch of one sequence works;
    forward_step + XVectorHDFCallback write one ``[1, D]`` x-vector per seq tag."""
    import returnn.frontend as rf
    import torch
    from returnn.frontend.run_ctx import init_forward_step_run_ctx, init_train_step_run_ctx, reset_run_ctx

    from librispeech_joint_training_given_alignments.pytorch_networks.xvector import (XVectorConfig,
                                                                                       XVectorHDFCallback,
                                                                                       forward_step, get_model,
                                                                                       train_step)

    rf.select_backend_torch()
    torch.manual_seed(0)
    feats, speakers = _speaker_features()
    model = get_model(epoch=1, step=0, config=XVectorConfig(num_speakers=3, channels=16, pooling_channels=24,
                                                            embedding_dim=8, dropout=0.0))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    rng = np.random.default_rng(0)

    def step(idx, train=True):
        model.train(train)
        init_train_step_run_ctx(train_flag=train, step=0, epoch=1)
        train_step(model=model, extern_data=_tensor_dict(feats, speakers, idx), chunk_frames=30)
        ctx = rf.get_run_ctx()
        assert set(ctx.losses) == {"ce", "error"} and ctx.losses["error"].as_error
        if train:
            opt.zero_grad()
            ctx.total_loss().raw_tensor.backward()
            opt.step()
        mean_ce = float(ctx.losses["ce"].get_mean_loss().raw_tensor.detach())
        reset_run_ctx()
        return mean_ce

    losses = [step(rng.permutation(len(feats))[:6]) for _ in range(60)]
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5]), losses  # ~0.91 -> ~0.27
    step(np.array([0]))  # one sequence: BatchNorm still sees two (differently chunked) samples
    assert step(np.arange(len(feats)), train=False) < 0.5 * np.log(3)  # whole utterances, running BatchNorm statistics

    model.eval()
    init_forward_step_run_ctx()
    with torch.no_grad():
        forward_step(model=model, extern_data=_tensor_dict(feats, speakers, np.arange(len(feats))))
    emb = rf.get_run_ctx().outputs["xvector"].raw_tensor
    reset_run_ctx()
    assert emb.shape == (len(feats), 8)
    monkeypatch.chdir(tmp_path)
    callback = XVectorHDFCallback()
    callback.init(model=model)
    tags = [f"train/{s}-1-{i}/{s}-1-{i}" for i, s in enumerate(speakers)]
    for tag, vec in zip(tags, emb):
        callback.process_seq(seq_tag=tag, outputs={"xvector": type("T", (), {"raw_tensor": vec.numpy()})()})
    callback.finish()
    written = hdf.read_all(str(tmp_path / "xvectors.hdf"))
    assert list(written) == tags
    assert all(v.shape == (1, 8) and np.allclose(v[0], e.numpy(), atol=1e-6) for v, e in zip(written.values(), emb))


def test_xvector_speaker_average_and_learning_rates(tmp_path):
    from librispeech_joint_training_given_alignments.data_prep import xvectors

    src, dst = str(tmp_path / "x.hdf"), str(tmp_path / "avg.hdf")
    vecs = {"a/1-2-3/1-2-3": [1.0, 2.0], "a/1-2-4/1-2-4": [3.0, 4.0], "a/7-2-3/7-2-3": [5.0, 6.0]}
    with hdf.open_writer(src, dim=2, ndim=2) as w:
        for tag, v in vecs.items():
            hdf.write_seq(w, tag, np.array([v], dtype=np.float32))
    assert xvectors.average_per_speaker(src, dst) == 2
    out = hdf.read_all(dst)
    assert out["a/1-2-3/1-2-3"].tolist() == out["a/1-2-4/1-2-4"].tolist() == [[2.0, 3.0]]
    assert out["a/7-2-3/7-2-3"].tolist() == [[5.0, 6.0]]
    assert xvectors.check_embedding_hdf(dst, list(vecs)) == 2
    # averaged over a subset (the TTS train split): every utterance gets its speaker's subset mean
    assert xvectors.average_per_speaker(src, dst, ["a/1-2-4/1-2-4", "a/7-2-3/7-2-3"]) == 2
    out = hdf.read_all(dst)
    assert out["a/1-2-3/1-2-3"].tolist() == out["a/1-2-4/1-2-4"].tolist() == [[3.0, 4.0]]
    with pytest.raises(ValueError, match=r"speaker\(s\) \['7'\] of .* have no utterance to average"):
        xvectors.average_per_speaker(src, dst, ["a/1-2-4/1-2-4"])
    with pytest.raises(KeyError, match="sequence b/9-9-9/9-9-9 is missing"):
        xvectors.check_embedding_hdf(dst, ["b/9-9-9/9-9-9"])

    settings = xvectors.XVectorTrainingSettings()
    assert settings.num_epochs == len(settings.learning_rates) == 40
    assert max(settings.learning_rates) == pytest.approx(1e-3) and settings.learning_rates[-1] == pytest.approx(1e-6)
    assert xvectors.default_learning_rates(2) == pytest.approx((1e-3, 1e-6))
