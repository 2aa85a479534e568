"""Unit tests of pytorch_networks: shapes, flow invertibility / log-det, MAS, given alignment, freezing,
aux loss, CTC decoding, Griffin-Lim, config round trip."""
import dataclasses
from unittest import mock

import numpy as np
import pytest
import torch

from librispeech_joint_training_given_alignments.pytorch_networks import configs as C
from librispeech_joint_training_given_alignments.pytorch_networks.commons import (
    channel_squeeze, channel_unsqueeze, generate_path, masked_frame_ce, sequence_mask, upsample_labels)
from librispeech_joint_training_given_alignments.pytorch_networks.ctc_decoding import (
    LexiconWordMapper, greedy_ctc_decode)
from librispeech_joint_training_given_alignments.pytorch_networks.feature_extraction import DbMelFeatureExtraction
from librispeech_joint_training_given_alignments.pytorch_networks.glow_tts.flow import FlowDecoder
from librispeech_joint_training_given_alignments.pytorch_networks.monotonic_align import (
    maximum_path, maximum_path_numpy, maximum_path_reference)
from librispeech_joint_training_given_alignments.pytorch_networks.tts_model import GlowTTSJointModel, forward_step, run_model

from networks_returnn_helpers import (FakeTensorDict, check_logdet_matches_jacobian, speech_batch, tiny_batch,
                                      tiny_tts_config)


def test_config_repr_roundtrip():
    cfgs = [
        tiny_tts_config(),
        C.GlowTTSModelConfig(text_encoder=C.TextEncoderConfig(n_vocab=44),
                             feature_extraction=C.FeatureExtractionConfig(norm=(-60.5, 20.25)),
                             phoneme_head=C.PhonemeHeadConfig(head_type="cnn"), label_target_size=44,
                             specaug=C.SpecaugConfig()),
        C.AsrModelConfig(label_target_size=79, encoder=C.BlstmEncoderConfig(), input_type="glow_latent",
                         glowtts=tiny_tts_config()),
        C.AsrModelConfig(label_target_size=79),
    ]
    scope = {cls.__name__: cls for cls in C.ALL_CONFIG_CLASSES}
    for cfg in cfgs:
        assert eval(repr(cfg), scope) == cfg
        assert C.config_classes_in(cfg) <= set(C.ALL_CONFIG_CLASSES)
    default = C.FlowDecoderConfig()
    assert (default.hidden_channels, default.n_blocks, default.n_split, default.p_dropout) == (192, 12, 4, 0.05)


def test_feature_extraction_matches_librosa():
    import librosa

    cfg = C.FeatureExtractionConfig()
    fe = DbMelFeatureExtraction(cfg)
    rng = np.random.default_rng(0)
    audio = rng.standard_normal((2, 8000)).astype(np.float32) * 0.1
    lengths = torch.tensor([8000, 5000])
    feats, flens = fe(torch.from_numpy(audio), lengths)
    assert feats.shape == (2, 8000 // 200 + 1, 80)
    assert flens.tolist() == [41, 26]
    ref = librosa.feature.melspectrogram(y=audio[1, :5000], sr=16000, n_fft=800, hop_length=200, power=2.0,
                                         n_mels=80, fmin=60, fmax=7600, center=True, pad_mode="constant")
    ref_db = 20 * np.log10(np.maximum(1e-10, ref)).T
    np.testing.assert_allclose(feats[1, :26].numpy(), ref_db, atol=2e-2)
    assert float(feats[1, 26:].abs().max()) == 0.0


def test_tts_model_shapes():
    cfg = tiny_tts_config(phoneme_head=C.PhonemeHeadConfig(head_type="blstm", n_channels=8, n_layers=1),
                          label_target_size=10)
    model = GlowTTSJointModel(cfg)
    data = tiny_batch()
    out, logits, labels = run_model(model, FakeTensorDict(data))
    b, t = data["audio_features"][0].shape[0], out.z.shape[2]
    assert out.z.shape == (b, 8, t) and out.z_m.shape == out.z.shape and out.logdet.shape == (b,)
    assert t % 2 == 0 and out.attn.shape == (b, data["phonemes"][0].shape[1], t)
    assert logits.shape == (b, t, 11) and labels.shape == (b, t)
    # MAS path: each valid token gets >= 1 frame, all valid frames covered exactly once
    n_valid = data["phonemes"][1]
    for i in range(b):
        per_token = out.attn[i].sum(-1)
        assert (per_token[: n_valid[i]] >= 1).all() and (per_token[n_valid[i]:] == 0).all()
        assert int(out.attn[i].sum()) == int(out.y_lengths[i])
    g = model.speaker(data["speaker_labels"][0])
    mel, mel_len, dur = model.generate(data["phonemes"][0], data["phonemes"][1], g, 0.66, 1.0)
    assert mel.shape[:2] == (b, 8) and int(mel_len.max()) == mel.shape[2] and (mel_len % 2 == 0).all()


def _random_flow(seed=0, gin=3):
    torch.manual_seed(seed)
    cfg = C.FlowDecoderConfig(hidden_channels=6, kernel_size=3, n_blocks=2, n_layers=2, p_dropout=0.0)
    flow = FlowDecoder(cfg, in_channels=4, gin_channels=gin).double()
    with torch.no_grad():  # zero-initialised parts would make the test trivial
        for name, p in flow.named_parameters():
            if "end" in name or "logs" in name or "bias" in name:
                p.normal_(0, 0.2)
    return flow.eval()


def test_flow_invertibility():
    flow = _random_flow()
    x = torch.randn(3, 4, 10, dtype=torch.float64)
    mask = sequence_mask(torch.tensor([10, 8, 4]), 10).unsqueeze(1).double()
    x = x * mask
    g = torch.randn(3, 3, dtype=torch.float64)
    z, logdet = flow(x, mask, g)
    x_rec, _ = flow(z, mask, g, reverse=True)
    assert torch.allclose(x_rec, x, atol=1e-4)
    assert logdet.shape == (3,)
    # default-size decoder in float32 as well
    dec = FlowDecoder(C.FlowDecoderConfig(n_blocks=2), in_channels=80, gin_channels=16).eval()
    y = torch.randn(2, 80, 20)
    m = sequence_mask(torch.tensor([20, 12]), 20).unsqueeze(1).float()
    gg = torch.randn(2, 16)
    z, _ = dec(y * m, m, gg)
    y_rec, _ = dec(z, m, gg, reverse=True)
    assert (y_rec - y * m).abs().max() < 1e-4


def test_flow_logdet_matches_jacobian():
    check_logdet_matches_jacobian(_random_flow(seed=1), gin=3, atol=1e-8)


def test_squeeze_roundtrip():
    x = torch.arange(2 * 3 * 8, dtype=torch.float32).view(2, 3, 8)
    mask = torch.ones(2, 1, 8)
    xs, ms = channel_squeeze(x, mask, 2)
    assert xs.shape == (2, 6, 4) and torch.equal(xs[0, 3:, 0], x[0, :, 1])
    xu, mu = channel_unsqueeze(xs, ms, 2)
    assert torch.equal(xu, x) and torch.equal(mu, mask)


def test_mas_numba_equals_reference():
    rng = np.random.default_rng(123)
    for case in range(60):
        b = int(rng.integers(1, 6))
        n_max, t_max = int(rng.integers(1, 15)), int(rng.integers(1, 60))
        t_max = max(t_max, n_max)
        t_xs = rng.integers(1, n_max + 1, size=b)
        t_ys = np.array([int(rng.integers(tx, t_max + 1)) for tx in t_xs])
        value = rng.standard_normal((b, n_max, t_max)).astype(np.float32) * 5
        if case % 3 == 0:  # many ties
            value = np.round(value)
        mask = (np.arange(n_max)[None, :, None] < t_xs[:, None, None]) & (np.arange(t_max)[None, None, :] < t_ys[:, None, None])
        value = value * mask
        paths = maximum_path_numpy(value, t_xs, t_ys)
        for i in range(b):
            ref = maximum_path_reference(value[i], int(t_xs[i]), int(t_ys[i]))
            np.testing.assert_array_equal(paths[i], ref)
            assert paths[i].sum() == t_ys[i]
            assert (paths[i][: t_xs[i]].sum(1) >= 1).all()
    # torch wrapper: lengths from the token / frame masks, values outside them never read
    v = torch.randn(2, 5, 12)
    x_mask, y_mask = sequence_mask(torch.tensor([5, 3]), 5), sequence_mask(torch.tensor([12, 7]), 12)
    p = maximum_path(v, x_mask.unsqueeze(1).float(), y_mask.unsqueeze(1).float())
    assert p.dtype == v.dtype and p.sum((1, 2)).tolist() == [12.0, 7.0]
    for i, (n, t) in enumerate([(5, 12), (3, 7)]):
        np.testing.assert_array_equal(p[i].numpy(), maximum_path_reference(v[i].numpy(), n, t))
    garbage = v.clone()
    garbage[1, 3:] = 1e6
    garbage[1, :, 7:] = float("nan")
    before = garbage.clone()
    assert torch.equal(maximum_path(garbage, x_mask, y_mask), p)
    assert torch.equal(garbage.view(torch.int32), before.view(torch.int32)), "MAS modified its input"
    assert maximum_path(v.double(), x_mask, y_mask).dtype == torch.float64


def test_mas_batch_threads_keep_torch_thread_settings_and_results():
    """The batch runs on Python threads over the GIL-free kernel: torch's thread counts stay as they were (numba's
    parallel runtime reset them), and the result does not depend on the number of threads."""
    rng = np.random.default_rng(5)
    b, n_max, t_max = 9, 40, 200
    t_xs = rng.integers(10, n_max + 1, size=b)
    t_ys = rng.integers(t_xs.max(), t_max + 1, size=b)
    value = torch.from_numpy(rng.standard_normal((b, n_max, t_max)).astype(np.float32) * 3)
    x_mask, y_mask = sequence_mask(torch.from_numpy(t_xs), n_max), sequence_mask(torch.from_numpy(t_ys), t_max)
    threads, interop = torch.get_num_threads(), torch.get_num_interop_threads()
    try:
        torch.set_num_threads(3)
        parallel = maximum_path(value, x_mask, y_mask)
        assert torch.get_num_threads() == 3 and torch.get_num_interop_threads() == interop
        torch.set_num_threads(1)
        serial = maximum_path(value, x_mask, y_mask)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(parallel, serial)
    for i in range(b):
        np.testing.assert_array_equal(serial[i].numpy(), maximum_path_reference(value[i].numpy(), t_xs[i], t_ys[i]))


def test_mas_equals_official_cython_kernel():
    """Bit-identical to the official Glow-TTS Cython kernel (PyPI ``monotonic-alignment-search``, in the ``test``
    extra) at training sizes, ties included."""
    import monotonic_alignment_search as official
    rng = np.random.default_rng(11)
    b, n_max, t_max = 6, 90, 500
    t_xs = rng.integers(50, n_max + 1, size=b)
    t_ys = rng.integers(300, t_max + 1, size=b)
    value = torch.from_numpy(np.round(rng.standard_normal((b, n_max, t_max)) * 4).astype(np.float32))
    x_mask, y_mask = sequence_mask(torch.from_numpy(t_xs), n_max), sequence_mask(torch.from_numpy(t_ys), t_max)
    reference = official.maximum_path_cython(value, (x_mask[:, :, None] & y_mask[:, None, :]).float())
    assert torch.equal(maximum_path(value, x_mask, y_mask), reference)


def test_mas_is_optimal_brute_force():
    import itertools

    rng = np.random.default_rng(7)
    for _ in range(20):
        n, t = int(rng.integers(1, 4)), int(rng.integers(3, 7))
        t = max(t, n)
        value = rng.standard_normal((n, t)).astype(np.float32)
        best = -np.inf
        for cuts in itertools.combinations(range(1, t), n - 1):  # token boundaries
            bounds = (0,) + cuts + (t,)
            score = sum(value[i, bounds[i]:bounds[i + 1]].sum() for i in range(n))
            best = max(best, score)
        path = maximum_path_reference(value, n, t)
        assert np.isclose((path * value).sum(), best, atol=1e-5)


def test_given_alignment_reproduces_durations():
    durations = torch.tensor([[2, 3, 1, 0], [1, 1, 4, 2]])
    x_mask = sequence_mask(torch.tensor([3, 4]), 4).unsqueeze(1).float()
    z_mask = sequence_mask(torch.tensor([6, 8]), 10).unsqueeze(1).float()
    path = GlowTTSJointModel.given_alignment(durations, x_mask, z_mask)
    assert torch.equal(path.sum(-1).long(), durations)
    labels = upsample_labels(torch.tensor([[5, 6, 7, 0], [1, 2, 3, 4]]), path)
    assert labels[0].tolist() == [5, 5, 6, 6, 6, 7, 0, 0, 0, 0]
    assert labels[1].tolist() == [1, 2, 3, 3, 3, 3, 4, 4, 0, 0]
    # durations longer than the audio are cut by the frame mask
    cut = generate_path(torch.tensor([[4, 4]]), torch.ones(1, 2, 6))
    assert cut.sum(-1).tolist() == [[4.0, 2.0]]
    # whole model in given mode: prior alignment == given durations (sum <= frames)
    cfg = tiny_tts_config(alignment="given")
    model = GlowTTSJointModel(cfg)
    data = tiny_batch()
    out, _, _ = run_model(model, FakeTensorDict(data))
    dur = data["durations"][0]
    assert torch.equal(out.attn.sum(-1).long(), dur)


def test_frozen_glowtts_weights_unchanged():
    cfg = tiny_tts_config(alignment="given", phoneme_head=C.PhonemeHeadConfig(n_channels=16), label_target_size=10,
                          aux_latent="prior_sample", freeze_glowtts=True)
    model = GlowTTSJointModel(cfg)
    model.train()
    assert not model.encoder.training and not model.decoder.training and model.phoneme_head.training
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    _, logits, labels = run_model(model, FakeTensorDict(tiny_batch()))
    masked_frame_ce(logits, labels, torch.ones_like(labels, dtype=torch.bool)).backward()
    opt.step()
    after = model.state_dict()
    for k, v in before.items():
        if k.startswith("phoneme_head."):
            continue
        assert torch.equal(v, after[k]), k
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("phoneme_head."))
    assert all(not p.requires_grad for n, p in model.named_parameters() if not n.startswith("phoneme_head."))


def test_mas_probe_labels_and_prior_come_from_the_frozen_models_own_mas_path(tmp_path):
    """The frozen "_mas" probes (built with the experiment's own fields) label the frames and align the prior with
    the frozen model's MAS path of the real audio; the given probes with the durations. On a batch of real speech
    both label sets differ."""
    from librispeech_joint_training_given_alignments.exp_joint_flow_ga_frozen_glowtts.experiment import (
        EXPERIMENTS, probe_fields)
    from librispeech_joint_training_given_alignments.jobs.phoneme_baselines import upsample_tokens
    from librispeech_joint_training_given_alignments.pytorch_networks.glow_tts.model import mas_log_likelihood

    batch, n_vocab = speech_batch(str(tmp_path / "LibriSpeech"))
    torch.manual_seed(0)
    base = tiny_tts_config(text_encoder=C.TextEncoderConfig(n_vocab=n_vocab, hidden_channels=16, filter_channels=32,
                                                            filter_channels_dp=16, n_layers=2, window_size=2),
                           speaker=C.SpeakerConfig(mode="embedding", n_speakers=2, gin_channels=8),
                           phoneme_head=C.PhonemeHeadConfig(n_channels=16), label_target_size=n_vocab)
    given = GlowTTSJointModel(dataclasses.replace(base, **probe_fields(EXPERIMENTS["ga_glowTTS_ASR_ffn/100ep/encoder"])))
    mas = GlowTTSJointModel(dataclasses.replace(base, **probe_fields(EXPERIMENTS["ga_glowTTS_ASR_ffn_mas/100ep/encoder"])))
    mas.load_state_dict(given.state_dict())  # one frozen Glow-TTS, two probes
    data = FakeTensorDict(batch)
    with torch.no_grad():
        given_out, _, given_labels = run_model(given.train(), data)
        mas_out, _, mas_labels = run_model(mas.train(), data)
    tokens, token_lengths = batch[C.PHONEMES_KEY]
    durations = batch[C.DURATIONS_KEY][0]
    lengths = given_out.y_lengths
    for b in range(len(lengths)):
        n, t = int(token_lengths[b]), int(lengths[b])
        expected = upsample_tokens(tokens[b, :n].numpy(), durations[b, :n].numpy(), t)
        assert np.array_equal(given_labels[b, :t].numpy(), expected)
    viterbi = maximum_path(mas_log_likelihood(mas_out.z, mas_out.x_m, mas_out.x_logs), mas_out.x_mask, mas_out.z_mask)
    assert torch.equal(mas_out.attn, viterbi)
    assert torch.equal(mas_labels, upsample_labels(tokens, viterbi))
    assert torch.equal(mas_out.z_m, torch.matmul(mas_out.x_m, viterbi))  # the prior follows the MAS path too
    mask = sequence_mask(lengths, given_labels.shape[1])
    differ = float(((given_labels != mas_labels) & mask).sum()) / float(mask.sum())
    assert differ > 0.2, differ
    with pytest.raises(ValueError, match="needs alignment='mas'"):
        GlowTTSJointModel(dataclasses.replace(base, alignment="given", ce_label_alignment="mas"))


@pytest.mark.parametrize("head_type,latent", [("ffn", "flow_z"), ("cnn", "prior_sample"), ("blstm", "prior_sample")])
def test_aux_loss_decreases(head_type, latent):
    torch.manual_seed(0)
    cfg = tiny_tts_config(alignment="given", label_target_size=10, aux_latent=latent,
                          phoneme_head=C.PhonemeHeadConfig(head_type=head_type, n_channels=32, n_layers=2,
                                                           kernel_size=3, p_dropout=0.0))
    model = GlowTTSJointModel(cfg)
    data = FakeTensorDict(tiny_batch())
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        out, logits, labels = run_model(model, data)
        loss = masked_frame_ce(logits, labels, sequence_mask(out.y_lengths, logits.shape[1]))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.7 * losses[0], losses


def test_greedy_ctc_decode_and_lexicon():
    blank = 4
    frames = [[0, 0, 4, 0, 1, 1, 4, 4, 2], [3, 3, 3, 4, 3, 9, 9]]  # second seq has padding after length 5
    log_probs = torch.full((2, 9, 5), -10.0)
    for b, seq in enumerate(frames):
        for t, lab in enumerate(seq[:9]):
            if lab < 5:
                log_probs[b, t, lab] = 0.0
    hyps = greedy_ctc_decode(log_probs, torch.tensor([9, 5]), blank)
    assert hyps == [[0, 0, 1, 2], [3, 3]]
    mapper = LexiconWordMapper([("hello", ["HH", "AH", "L", "OW"]), ("a", ["AH"]), ("[SILENCE]", ["SIL"])])
    # "X" is no pronunciation: an unknown word the scorer counts; the "[SILENCE]" lemma is no output word
    assert mapper(["HH", "AH", "L", "OW#", "AH#", "X#", "SIL#"]) == ["hello", "a", "<unk>"]


def test_griffin_lim_audio():
    from librispeech_joint_training_given_alignments.pytorch_networks.vocoder import GriffinLimVocoder

    fe_cfg = C.FeatureExtractionConfig()
    fe = DbMelFeatureExtraction(fe_cfg)
    t = torch.arange(16000) / 16000.0
    audio = (0.3 * torch.sin(2 * torch.pi * 440 * t)).unsqueeze(0)
    feats, lens = fe(audio, torch.tensor([16000]))
    voc = GriffinLimVocoder(fe_cfg, n_iter=8)
    wave = voc(feats[0].numpy())
    assert wave.dtype == np.float32 and np.isfinite(wave).all()
    assert len(wave) == (feats.shape[1] - 1) * 200 == 16000
    spec = np.abs(np.fft.rfft(wave))
    assert abs(np.argmax(spec) * 16000 / len(wave) - 440) < 20  # the tone survives the round trip


@pytest.mark.parametrize("center", [True, False])
def test_griffin_lim_is_librosas_algorithm(center):
    """The torch Griffin-Lim returns librosa.griffinlim's waveform (float64: same arithmetic up to FFT rounding)
    from the same initial phases, also for a hop that does not divide the window; float32 stays close."""
    import librosa

    from librispeech_joint_training_given_alignments.pytorch_networks.vocoder import griffin_lim

    for n_fft, hop in ((800, 200), (400, 150)):
        signal = np.random.default_rng(1).standard_normal(37 * hop)
        mag = np.abs(librosa.stft(signal, n_fft=n_fft, hop_length=hop, center=center, pad_mode="constant"))
        length = (mag.shape[1] - 1) * hop if center else None
        expected = librosa.griffinlim(mag, n_iter=6, hop_length=hop, win_length=n_fft, n_fft=n_fft, window="hann",
                                      center=center, length=length, pad_mode="constant", momentum=0.99,
                                      init="random", random_state=np.random.default_rng(3))
        angles = np.exp(2j * np.pi * np.random.default_rng(3).random(size=mag.shape))
        for dtype, cdtype, tol in ((torch.float64, torch.complex128, 1e-9), (torch.float32, torch.complex64, 1e-3)):
            wave = griffin_lim(torch.from_numpy(mag.T.copy()).to(dtype), torch.from_numpy(angles.T.copy()).to(cdtype),
                               torch.hann_window(n_fft, periodic=True, dtype=dtype), n_iter=6, hop_length=hop,
                               momentum=0.99, center=center)
            assert wave.shape == expected.shape
            assert np.abs(wave.numpy() - expected).max() < tol * np.abs(expected).max()


def test_asr_models_shapes_and_frozen_flow():
    from librispeech_joint_training_given_alignments.pytorch_networks.asr_model import AsrModel

    data = tiny_batch()
    audio, alen = data["audio_features"]
    conf = AsrModel(C.AsrModelConfig(label_target_size=11, feature_extraction=C.FeatureExtractionConfig(num_filters=8),
                                     encoder=C.ConformerEncoderConfig(conformer_size=16, num_layers=2, num_heads=2,
                                                                      ff_dim=32, conv_kernel_size=3)))
    lp, lens = conf(audio, alen)
    frames = alen // 200 + 1
    assert lp.shape[0] == 4 and lp.shape[2] == 12 and lens.tolist() == (frames // 2 // 2).tolist()
    assert torch.allclose(lp.exp().sum(-1), torch.ones(()), atol=1e-5)
    blstm = AsrModel(C.AsrModelConfig(label_target_size=11, input_type="glow_latent", glowtts=tiny_tts_config(),
                                      encoder=C.BlstmEncoderConfig(n_channels=8, n_layers=2)))
    blstm.train()
    assert not blstm.decoder.training and all(not p.requires_grad for p in blstm.decoder.parameters())
    lp, lens = blstm(audio, alen, data["speaker_labels"][0])
    assert lens.tolist() == ((frames // 2 * 2) // 4).tolist() and lp.shape[1] == int(lens.max())


def test_blank_durations_merge_back_onto_the_phonemes():
    """Hand-made case: leading blank -> first phoneme, trailing blank (at 2L, per sequence) -> last, inner blanks
    split (left neighbour the lower half); frames kept; padding stays 0."""
    from librispeech_joint_training_given_alignments.pytorch_networks.glow_tts.blanks import (
        expand_durations, intersperse_blank, merge_blank_durations)

    tokens, lengths = intersperse_blank(torch.tensor([[5, 6, 7], [8, 9, 0]]), torch.tensor([3, 2]), blank_id=44)
    assert tokens.tolist() == [[44, 5, 44, 6, 44, 7, 44], [44, 8, 44, 9, 44, 0, 44]] and lengths.tolist() == [7, 5]
    durations = torch.tensor([[3, 2, 1, 4, 5, 2, 7], [1, 2, 3, 4, 5, 0, 0]])
    merged = merge_blank_durations(durations, torch.tensor([3, 2]))
    assert merged.tolist() == [[2 + 3 + 0, 4 + 1 + 2, 2 + 3 + 7], [2 + 1 + 1, 4 + 2 + 5, 0]]
    assert merged.sum(1).tolist() == durations.sum(1).tolist()
    assert expand_durations(torch.tensor([[2, 3]])).tolist() == [[0, 2, 0, 3, 0]]


def test_add_blank_model_aligns_blanks_and_reports_phoneme_durations():
    """With ``add_blank`` MAS aligns 2N+1 tokens (every blank >= 1 frame), the "durations" output is per phoneme and
    sums to the frames, oracle-duration synthesis gives exactly the given frames, a frozen blank model can be probed
    on given durations and on its own MAS path ("_mas": phoneme labels), and a trainable given-alignment model refuses
    blanks."""
    from networks_returnn_helpers import tiny_utterances, utterance_batch

    torch.manual_seed(0)
    data = utterance_batch(tiny_utterances(4, seed=1, frames_per_phoneme=(3, 6)))
    model = GlowTTSJointModel(tiny_tts_config(add_blank=True)).eval()
    assert model.encoder.emb.num_embeddings == model.cfg.text_encoder.n_vocab + 1
    tokens, token_lengths = data[C.PHONEMES_KEY]
    with torch.no_grad():
        out, _, _ = run_model(model, FakeTensorDict(data))
    assert out.attn.shape[1] == 2 * tokens.shape[1] + 1
    per_token = out.attn.sum(-1)
    for b in range(tokens.shape[0]):
        assert (per_token[b, : 2 * int(token_lengths[b]) + 1] >= 1).all()
    phoneme_durations = model.phoneme_durations(per_token.long(), token_lengths)
    assert phoneme_durations.shape == tokens.shape
    assert phoneme_durations.sum(1).tolist() == out.y_lengths.tolist()
    given = data[C.DURATIONS_KEY][0]
    g = model.speaker(data[C.SPEAKER_KEY][0])
    _, mel_lengths, used = model.generate(tokens, token_lengths, g, durations=given)
    assert used[:, 0::2].sum() == 0 and torch.equal(used[:, 1::2], given * sequence_mask(token_lengths))
    assert mel_lengths.tolist() == [max(2, int(d) // 2 * 2) for d in given.sum(1)]
    probe = GlowTTSJointModel(tiny_tts_config(add_blank=True, alignment="given", freeze_glowtts=True,
                                              phoneme_head=C.PhonemeHeadConfig(n_channels=8), label_target_size=10))
    probe.load_state_dict(model.state_dict(), strict=False)
    with torch.no_grad():
        probe_out, _, labels = run_model(probe, FakeTensorDict(data))
    assert probe_out.attn[:, 0::2].sum() == 0  # the blanks get none of the given frames
    x_mask = sequence_mask(token_lengths).unsqueeze(1).float()
    assert torch.equal(probe_out.attn[:, 1::2], GlowTTSJointModel.given_alignment(given, x_mask, probe_out.z_mask))
    # a "_mas" probe of the blank model: its labels follow the MAS path with the blanks' frames merged onto the
    # phonemes (no frame is labelled with the blank id, which is no phoneme)
    from librispeech_joint_training_given_alignments.jobs.phoneme_baselines import upsample_tokens

    mas_probe = GlowTTSJointModel(tiny_tts_config(add_blank=True, ce_label_alignment="mas", freeze_glowtts=True,
                                                  phoneme_head=C.PhonemeHeadConfig(n_channels=8), label_target_size=10))
    mas_probe.load_state_dict(model.state_dict(), strict=False)
    with torch.no_grad():
        mas_out, _, mas_labels = run_model(mas_probe, FakeTensorDict(data))
    merged = model.phoneme_durations(mas_out.attn.sum(-1).long(), token_lengths)
    for b in range(tokens.shape[0]):
        n, t = int(token_lengths[b]), int(mas_out.y_lengths[b])
        assert int(merged[b].sum()) == t
        assert np.array_equal(mas_labels[b, :t].numpy(), upsample_tokens(tokens[b, :n].numpy(), merged[b, :n].numpy(), t))
    with pytest.raises(ValueError, match="add_blank with alignment='given' needs given_token_durations"):
        GlowTTSJointModel(tiny_tts_config(add_blank=True, alignment="given"))
    with pytest.raises(ValueError, match="given_token_durations .* needs add_blank"):
        GlowTTSJointModel(tiny_tts_config(alignment="given", given_token_durations=True))


def test_given_token_durations_model_trains_on_the_whole_path_and_labels_by_phonemes():
    """A given-alignment model with blanks (``given_token_durations``) puts exactly the given frames of every token,
    blanks included, on its prior path and duration targets, labels the frames with the per-phoneme durations of the
    same path (the blanks' frames merged: never the blank id), synthesises oracle durations per token, and the
    "token_durations" forward of a MAS blank model writes the unmerged path that merges into its "durations"."""
    from networks_returnn_helpers import tiny_utterances, utterance_batch

    from librispeech_joint_training_given_alignments.jobs.phoneme_baselines import upsample_tokens
    from librispeech_joint_training_given_alignments.pytorch_networks.glow_tts.blanks import merge_blank_durations

    torch.manual_seed(0)
    data = utterance_batch(tiny_utterances(4, seed=1, frames_per_phoneme=(3, 6)))
    tokens, token_lengths = data[C.PHONEMES_KEY]
    mas = GlowTTSJointModel(tiny_tts_config(add_blank=True)).eval()
    with torch.no_grad():
        mas_out, _, _ = run_model(mas, FakeTensorDict(data))
    # a whole path per token (every token >= 1 frame, blanks uneven) and its per-phoneme merge
    path = mas_out.attn.sum(-1).long()
    phoneme_durations = merge_blank_durations(path, token_lengths)
    data = dict(data)
    data[C.TOKEN_DURATIONS_KEY] = (path, 2 * token_lengths + 1)
    data[C.DURATIONS_KEY] = (phoneme_durations, token_lengths)
    model = GlowTTSJointModel(tiny_tts_config(add_blank=True, alignment="given", given_token_durations=True,
                                              phoneme_head=C.PhonemeHeadConfig(n_channels=8), label_target_size=10))
    model.load_state_dict(mas.state_dict(), strict=False)
    model.eval()
    with torch.no_grad():
        out, _, labels = run_model(model, FakeTensorDict(data))
    assert torch.equal(out.attn, mas_out.attn)  # the given path is the MAS path it came from, blanks included
    assert torch.equal(out.logw_target, mas_out.logw_target)
    assert (out.attn[:, 0::2].sum(-1)[sequence_mask(token_lengths + 1)] >= 1).all()
    for b in range(tokens.shape[0]):
        n, t = int(token_lengths[b]), int(out.y_lengths[b])
        expected = upsample_tokens(tokens[b, :n].numpy(), phoneme_durations[b, :n].numpy(), t)
        assert np.array_equal(labels[b, :t].numpy(), expected)
    g = model.speaker(data[C.SPEAKER_KEY][0])
    _, _, used = model.generate(tokens, token_lengths, g, durations=path)
    assert torch.equal(used, path * sequence_mask(2 * token_lengths + 1))
    outputs = {}
    for mode in ("durations", "token_durations"):
        with mock.patch("librispeech_joint_training_given_alignments.pytorch_networks.tts_model.mark_output",
                        lambda name, tensor, lengths=None, mode=mode: outputs.update({mode: (tensor, lengths)})):
            forward_step(model=mas, extern_data=FakeTensorDict(data), mode=mode)
    token_out, token_out_lengths = outputs["token_durations"]
    assert token_out_lengths.tolist() == (2 * token_lengths + 1).tolist()
    assert torch.equal(merge_blank_durations(token_out.long(), token_lengths), outputs["durations"][0].long())
    with pytest.raises(ValueError, match="'token_durations' is for a model with blanks"):
        forward_step(model=GlowTTSJointModel(tiny_tts_config()).eval(), extern_data=FakeTensorDict(data),
                     mode="token_durations")


@pytest.mark.parametrize("skip", [True, False])
def test_ce_skip_blank_frames_trains_the_head_on_phoneme_frames_only(monkeypatch, skip):
    """With ``ce_skip_blank_frames`` the aux CE of a given-token-path model sends no gradient into the head's input
    on the frames the path puts on a blank (found here from the given durations, not from the model), and does on
    every phoneme frame; without it, blank frames are trained too (the control)."""
    from networks_returnn_helpers import tiny_utterances, utterance_batch

    from librispeech_joint_training_given_alignments.pytorch_networks import tts_model
    from librispeech_joint_training_given_alignments.pytorch_networks.glow_tts.blanks import merge_blank_durations

    torch.manual_seed(0)
    data = dict(utterance_batch(tiny_utterances(3, seed=2, frames_per_phoneme=(3, 6))))
    tokens, token_lengths = data[C.PHONEMES_KEY]
    with torch.no_grad():
        frames = run_model(GlowTTSJointModel(tiny_tts_config(add_blank=True)).eval(), FakeTensorDict(data))[0].y_lengths
    rng = np.random.default_rng(0)
    token_paths, blank_frames = [], []
    for b in range(tokens.shape[0]):
        n = int(token_lengths[b])
        path = rng.integers(1, 3, size=2 * n + 1)  # every token >= 1 frame: blanks 1-2, phonemes 1-3
        path[1::2] = rng.integers(1, 4, size=n)
        path[-1] += int(frames[b]) - int(path.sum())  # the last blank takes the rest (or gives frames back)
        assert path[-1] >= 1
        token_paths.append(path)
        token_index = np.repeat(np.arange(2 * n + 1), path)
        blank_frames.append(token_index % 2 == 0)
    width = 2 * tokens.shape[1] + 1
    token_durations = torch.tensor(np.stack([np.pad(p, (0, width - len(p))) for p in token_paths]))
    data[C.TOKEN_DURATIONS_KEY] = (token_durations, 2 * token_lengths + 1)
    data[C.DURATIONS_KEY] = (merge_blank_durations(token_durations, token_lengths), token_lengths)
    cfg = tiny_tts_config(add_blank=True, alignment="given", given_token_durations=True, aux_latent="prior_sample",
                          phoneme_head=C.PhonemeHeadConfig(n_layers=1, p_dropout=0.0),  # linear: no dead ReLU
                          label_target_size=10, ce_skip_blank_frames=skip)
    model = GlowTTSJointModel(cfg)
    head_inputs = []

    def keep_head_input(module, args):
        args[0].retain_grad()
        head_inputs.append(args[0])

    model.phoneme_head.register_forward_pre_hook(keep_head_input)
    losses = {}
    monkeypatch.setattr(tts_model, "mark_loss", lambda name, loss, scale=1.0: losses.update({name: loss}))
    monkeypatch.setattr(tts_model, "current_epoch", lambda: 1)
    tts_model.train_step(model=model, extern_data=FakeTensorDict(data))
    losses["ce"].backward()
    grad = head_inputs[0].grad.abs().sum(-1)  # [B, T]
    for b, on_blank in enumerate(blank_frames):
        assert grad.shape[1] >= len(on_blank) and int(grad[b, len(on_blank):].count_nonzero()) == 0
        assert on_blank.any() and (~on_blank).any()
        assert bool((grad[b, :len(on_blank)][torch.from_numpy(~on_blank)] > 0).all())
        blank_grad = grad[b, :len(on_blank)][torch.from_numpy(on_blank)]
        assert bool((blank_grad == 0).all()) if skip else bool((blank_grad > 0).all())


def test_ce_skip_blank_frames_needs_blanks():
    with pytest.raises(ValueError, match="ce_skip_blank_frames .* needs add_blank"):
        GlowTTSJointModel(tiny_tts_config(aux_latent="prior_sample", phoneme_head=C.PhonemeHeadConfig(n_channels=8),
                                          label_target_size=10, ce_skip_blank_frames=True))
