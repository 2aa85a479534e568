"""Tiny real RETURNN runs (``python -m returnn``, CPU, tiny dims) of every model family, plus forward runs writing
durations / latents / audio / search output. Each run is checked for behaviour with a known answer: losses fall
over epochs, forward outputs follow from the trained weights, preloaded weights are the checkpoint's."""
import ast
import os

import h5py
import numpy as np
import pytest
import soundfile
import torch

from librispeech_joint_training_given_alignments.config import preload
from librispeech_joint_training_given_alignments.jobs.returnn_training import read_learning_rates
from librispeech_joint_training_given_alignments.jobs.serialization import serialize_network
from librispeech_joint_training_given_alignments.pytorch_networks import configs as C
from librispeech_joint_training_given_alignments.pytorch_networks.asr_model import AsrModel
from librispeech_joint_training_given_alignments.pytorch_networks.commons import frame_accuracy
from librispeech_joint_training_given_alignments.pytorch_networks.ctc_decoding import greedy_ctc_decode
from librispeech_joint_training_given_alignments.pytorch_networks.tts_model import GlowTTSJointModel, run_model

from networks_returnn_helpers import (HOP, PKG, N_VOCAB, XVEC_DIM, FakeTensorDict, meta_dataset, returnn_config_text,
                                      run_returnn, tiny_tts_config, tiny_utterances, utterance_batch, write_tiny_hdfs)

TTS = f"{PKG}.pytorch_networks.tts_model"
ASR = f"{PKG}.pytorch_networks.asr_model"
TTS_KEYS = [C.AUDIO_KEY, C.PHONEMES_KEY, C.SPEAKER_KEY]
GA_KEYS = TTS_KEYS + [C.DURATIONS_KEY]
EPOCHS = 3  # enough to see a loss fall; an epoch is 2 steps (6 utterances, max_seqs 3)


def _data(directory, utts):
    return {"files": write_tiny_hdfs(str(directory), utts), "utts": {u["tag"]: u for u in utts}}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return _data(tmp_path_factory.mktemp("tiny_data"), tiny_utterances(6))


@pytest.fixture(scope="module")
def asr_data_dir(tmp_path_factory):
    """Utterances long enough for CTC after 4x time reduction (0.3-0.7 s)."""
    return _data(tmp_path_factory.mktemp("tiny_asr_data"), tiny_utterances(6, frames_per_phoneme=(6, 10)))


def _train(workdir, module, model_config, keys, data, train_kwargs=None, preload_from_files=None,
           num_epochs=EPOCHS, learning_rate=1e-3):
    os.makedirs(workdir, exist_ok=True)
    code = serialize_network(module, model_config, train_step_kwargs=train_kwargs or {})
    extra = f"learning_rate = {learning_rate!r}\n"
    if preload_from_files:
        extra += f"preload_from_files = {preload_from_files!r}\n"
    out = run_returnn(str(workdir), returnn_config_text(code, meta_dataset(data["files"], keys), keys,
                                                        num_epochs=num_epochs, extra=extra))
    assert os.path.exists(_checkpoint(workdir, num_epochs)), out[-3000:]
    return read_learning_rates(os.path.join(workdir, "learning_rates"))


def _checkpoint(workdir, epoch=EPOCHS):
    return os.path.join(workdir, "models", f"epoch.{epoch:03d}.pt")


def _state(workdir, epoch=EPOCHS):
    return torch.load(_checkpoint(workdir, epoch), map_location="cpu")["model"]


def _forward(workdir, module, model_config, keys, data, forward_kwargs, callback, callback_kwargs=None,
             name="forward.config"):
    code = serialize_network(module, model_config, forward_step_kwargs=forward_kwargs, forward_callback=callback,
                             forward_callback_kwargs=callback_kwargs or {}, train=False)
    text = returnn_config_text(code, meta_dataset(data["files"], keys), keys, task="forward",
                               extra=f'load = "{_checkpoint(workdir)}"\nlog = ["./returnn.forward.log"]')
    return run_returnn(str(workdir), text, name=name)


def _assert_falls(scores, name):
    """The epoch-averaged training loss ``name`` is lower in the last epoch than in the first."""
    values = [scores[e][f"train_loss_{name}"] for e in sorted(scores)]
    assert len(values) == EPOCHS and values[-1] < values[0], (name, values)


def _read_hdf(path):
    """{seq tag: values} of a sparse 1-D HDF written by SimpleHDFWriter."""
    with h5py.File(path, "r") as f:
        tags = [t.decode() if isinstance(t, bytes) else t for t in f["seqTags"][()]]
        lens = f["seqLengths"][()][:, 0]
        values = f["inputs"][()]
    offsets = np.concatenate([[0], np.cumsum(lens)])
    return {tag: values[offsets[i]: offsets[i + 1]] for i, tag in enumerate(tags)}


def _forward_batches(data):
    """The utterances in RETURNN's forward batches here (sorted by audio length, 3 per batch): the same padding
    gives bitwise the same results, so model outputs recomputed in-process can be compared exactly."""
    utts = sorted(data["utts"].values(), key=lambda u: -len(u["audio"]))
    return [utts[i: i + 3] for i in range(0, len(utts), 3)]


def _load(model_cls, cfg, workdir):
    model = model_cls(cfg)
    model.load_state_dict(_state(workdir))
    return model.eval()


@pytest.fixture(scope="module")
def tts_run(tmp_path_factory, data_dir):
    """Glow-TTS with MAS (speaker embedding), trained 3 epochs; used as the pre-trained model below."""
    workdir = tmp_path_factory.mktemp("glowtts_mas")
    scores = _train(workdir, TTS, tiny_tts_config(), TTS_KEYS, data_dir)
    _assert_falls(scores, "mle")
    return workdir


def test_glowtts_mas_train_and_durations_forward(tts_run, data_dir):
    _forward(tts_run, TTS, tiny_tts_config(), TTS_KEYS, data_dir, {"mode": "durations"}, "DurationHDFCallback")
    durations = _read_hdf(os.path.join(tts_run, "durations.hdf"))
    assert sorted(durations) == sorted(data_dir["utts"])
    for tag, dur in durations.items():
        u = data_dir["utts"][tag]
        assert dur.dtype == np.int32 and len(dur) == len(u["phonemes"]) and (dur >= 1).all()
        frames = len(u["audio"]) // HOP + 1  # all feature frames, incl. those the flow's squeeze cuts off
        assert dur.sum() == frames


def test_glowtts_latent_and_synthesis_forward(tts_run, data_dir):
    _forward(tts_run, TTS, tiny_tts_config(), TTS_KEYS, data_dir, {"mode": "latent"}, "LatentHDFCallback",
             name="latent.config")
    for name in ("samples.hdf", "mean.hdf"):
        with h5py.File(os.path.join(tts_run, name), "r") as f:
            assert f["inputs"].shape[1] == 8 and len(f["seqTags"]) == 6
    _forward(tts_run, TTS, tiny_tts_config(), [C.PHONEMES_KEY, C.SPEAKER_KEY, C.AUDIO_KEY], data_dir,
             {"mode": "synthesis", "noise_scale": 0.66}, "GriffinLimAudioCallback",
             {"preemphasis": 0.97, "gl_iter": 4, "audio_format": "wav"}, name="synth.config")
    import soundfile

    # The synthesised length follows the trained duration predictor: frames = sum of the ceil'd predicted
    # durations, floored to the flow's squeeze factor; Griffin-Lim with centred framing gives (frames-1)*hop.
    model = _load(GlowTTSJointModel, tiny_tts_config(), tts_run)
    n_sqz = model.cfg.decoder.n_sqz
    listed = {line.split("\t")[0]: line.split("\t")
              for line in open(os.path.join(tts_run, "audio_files.txt")).read().splitlines()}
    assert sorted(listed) == sorted(data_dir["utts"])
    for tag, u in data_dir["utts"].items():
        tokens = torch.from_numpy(u["phonemes"])[None].long()
        with torch.no_grad():
            g = model.speaker(torch.from_numpy(u["speaker"])[None])
            _, _, logw, _ = model.encoder(tokens, torch.tensor([tokens.shape[1]]), g)
        frames = int(torch.ceil(torch.exp(logw)).sum()) // n_sqz * n_sqz
        wave, sr = soundfile.read(os.path.join(tts_run, listed[tag][1]))
        assert sr == 16000 and np.isfinite(wave).all() and np.abs(wave).max() > 1e-3  # not silent
        assert len(wave) == (max(frames, n_sqz) - 1) * HOP, (tag, len(wave), frames)
        assert float(listed[tag][2]) == pytest.approx(len(wave) / sr, abs=1e-4)


def test_joint_given_alignment_with_ce(tmp_path, data_dir):
    """Given-alignment Glow-TTS with a CNN head on prior samples: the aux CE falls over the epochs, and the
    model's alignment is exactly the given durations (not MAS)."""
    cfg = tiny_tts_config(alignment="given", phoneme_head=C.PhonemeHeadConfig(head_type="cnn", n_channels=16,
                                                                              kernel_size=3),
                          label_target_size=N_VOCAB, aux_latent="prior_sample",
                          speaker=C.SpeakerConfig(mode="xvector", xvector_dim=XVEC_DIM, gin_channels=8))
    keys = [C.AUDIO_KEY, C.PHONEMES_KEY, C.XVECTOR_KEY, C.DURATIONS_KEY]
    scores = _train(tmp_path, TTS, cfg, keys, data_dir, {"ce_loss_scale": 1.0})
    _assert_falls(scores, "ce")
    _assert_falls(scores, "mle")
    _forward(tmp_path, TTS, cfg, keys, data_dir, {"mode": "durations"}, "DurationHDFCallback")
    for tag, dur in _read_hdf(os.path.join(tmp_path, "durations.hdf")).items():
        u = data_dir["utts"][tag]
        frames = len(u["audio"]) // HOP + 1
        expected = u["durations"].copy()  # sum <= the flow's frames here, so the path covers all of them ...
        expected[-1] += frames - frames // 2 * 2  # ... and the last token also gets the frame the squeeze cut off
        assert dur.tolist() == expected.tolist(), tag


def test_frozen_head_from_pretrained(tts_run, tmp_path, data_dir):
    cfg = tiny_tts_config(alignment="given", freeze_glowtts=True, label_target_size=N_VOCAB,
                          phoneme_head=C.PhonemeHeadConfig(head_type="ffn", n_channels=16))
    init = preload("tts", _checkpoint(tts_run), new_params_prefixes=("phoneme_head.",))
    scores = _train(tmp_path, TTS, cfg, GA_KEYS, data_dir, preload_from_files=init, learning_rate=1e-2)
    assert {k for k in scores[1] if k.startswith("train_loss_")} == {"train_loss_ce"}  # Glow-TTS frozen: no mle/dp
    _assert_falls(scores, "ce")
    before, after = _state(tts_run), _state(tmp_path)
    assert set(after) - set(before) == {k for k in after if k.startswith("phoneme_head.")}
    for k, v in before.items():
        assert torch.equal(v, after[k]), k
    # The accuracy forward writes, per seq tag, the trained head's frame accuracy, and their unweighted mean.
    _forward(tmp_path, TTS, cfg, GA_KEYS, data_dir, {"mode": "phoneme_accuracy"}, "PhonemeAccuracyCallback")
    written = {tag: float(v.reshape(-1)[0]) for tag, v in
               _read_hdf(os.path.join(tmp_path, "phoneme_accuracy.hdf")).items()}
    model = _load(GlowTTSJointModel, cfg, tmp_path)
    expected = {}
    for batch in _forward_batches(data_dir):
        with torch.no_grad():
            out, logits, labels = run_model(model, FakeTensorDict(utterance_batch(batch)))
        expected.update(zip((u["tag"] for u in batch), frame_accuracy(logits, labels, out.y_lengths).tolist()))
    assert written == pytest.approx(expected, abs=1e-6)
    mean = float(open(os.path.join(tmp_path, "accuracy")).read())
    assert mean == pytest.approx(np.mean(list(expected.values())), abs=1e-6)


def test_frozen_probe_beats_the_majority_class(tts_run, tmp_path):
    """A phoneme probe on a frozen Glow-TTS, trained by RETURNN with the probe preset of the embedded default run
    (``experiment_setup.probe_training_settings``), scores clearly above always predicting the most frequent frame
    label, and the frozen weights are exactly those of the preloaded TTS checkpoint."""
    import dataclasses

    import torch

    from librispeech_joint_training_given_alignments.exp_joint_flow_ga_frozen_glowtts.experiment import (
        FrozenProbe, probe_fields)
    from librispeech_joint_training_given_alignments.experiment_setup import EMBEDDED, probe_training_settings
    from librispeech_joint_training_given_alignments.jobs.phoneme_baselines import (majority_class_accuracy,
                                                                                    upsample_tokens)

    utts = tiny_utterances(24, seed=3)
    files = write_tiny_hdfs(str(tmp_path), utts)
    cfg = tiny_tts_config(phoneme_head=C.PhonemeHeadConfig(head_type="ffn", n_channels=32, n_layers=2),
                          label_target_size=N_VOCAB, **probe_fields(FrozenProbe(recognition_input="encoder")))
    settings = probe_training_settings(EMBEDDED, "tri", 100)
    tts_checkpoint = os.path.join(tts_run, "models", "epoch.001.pt")
    preload = {"glowTTS": {"filename": tts_checkpoint, "init_for_train": True, "ignore_missing": True}}
    optimizer = {"class": settings.optimizer, "epsilon": settings.epsilon}
    extra = (f"preload_from_files = {preload!r}\noptimizer = {optimizer!r}\n"
             f"learning_rates = {list(settings.learning_rates)!r}\nnum_epochs = {settings.num_epochs}")
    code = serialize_network(TTS, cfg)
    run_returnn(str(tmp_path), returnn_config_text(code, meta_dataset(files, GA_KEYS), GA_KEYS, extra=extra))
    last = os.path.join("models", f"epoch.{settings.num_epochs:03d}.pt")
    frozen = torch.load(tts_checkpoint, map_location="cpu")["model"]
    probe = torch.load(os.path.join(tmp_path, last), map_location="cpu")["model"]
    assert set(probe) - set(frozen) == {k for k in probe if k.startswith("phoneme_head.")}
    for name, value in frozen.items():
        assert torch.equal(value, probe[name]), name

    code = serialize_network(TTS, cfg, forward_step_kwargs={"mode": "phoneme_accuracy"},
                             forward_callback="PhonemeAccuracyCallback", train=False)
    run_returnn(str(tmp_path), returnn_config_text(code, meta_dataset(files, GA_KEYS), GA_KEYS, task="forward",
                                                   extra=f'load = "{last}"'), name="forward.config")
    accuracy = float(open(os.path.join(tmp_path, "accuracy")).read())
    n_sqz = cfg.decoder.n_sqz
    labels = {u["tag"]: upsample_tokens(u["phonemes"], u["durations"], (len(u["audio"]) // 200 + 1) // n_sqz * n_sqz)
              for u in utts}
    _, majority = majority_class_accuracy(labels, labels)
    assert accuracy > majority + 0.06, (accuracy, majority)  # 0.23 vs 0.12; the old recipe stayed at ~0.12


def test_blstm_ctc_on_frozen_glow_latent(tts_run, tmp_path, asr_data_dir):
    """The latent ASR trains on the TTS's own frozen flow: its flow/speaker weights are the checkpoint's (a random
    flow would differ), and a checkpoint whose flow module is renamed fails the training at load time."""
    cfg = C.AsrModelConfig(label_target_size=N_VOCAB + 1, input_type="glow_latent", glowtts=tiny_tts_config(),
                           encoder=C.BlstmEncoderConfig(n_channels=16, n_layers=1, subsampling_factor=2),
                           specaug=C.SpecaugConfig(repeat_per_n_frames=5, max_dim_time=2, num_repeat_feat=1,
                                                   max_dim_feat=2))
    keys = [C.AUDIO_KEY, C.SPEAKER_KEY, C.PHONEMES_EOW_KEY]
    init = preload("glowTTS", _checkpoint(tts_run), new_params_prefixes=AsrModel.NEW_PARAMS_PREFIXES)
    scores = _train(tmp_path / "ok", ASR, cfg, keys, asr_data_dir, preload_from_files=init)
    _assert_falls(scores, "ctc")
    tts, asr = _state(tts_run), _state(tmp_path / "ok")
    frozen = [k for k in asr if k.startswith(("decoder.", "speaker."))]
    assert frozen and all(torch.equal(asr[k], tts[k]) for k in frozen)
    assert {k for k in asr if k not in frozen} == {k for k in asr if k.startswith(AsrModel.NEW_PARAMS_PREFIXES)}

    ckpt = torch.load(_checkpoint(tts_run), map_location="cpu")
    ckpt["model"] = {("flow." + k[len("decoder."):] if k.startswith("decoder.") else k): v
                     for k, v in ckpt["model"].items()}
    renamed = tmp_path / "renamed.pt"
    torch.save(ckpt, renamed)
    with pytest.raises(AssertionError, match=r"Missing key\(s\) in state_dict: 'decoder\."):
        _train(tmp_path / "renamed", ASR, cfg, keys, asr_data_dir, num_epochs=1,
               preload_from_files=preload("glowTTS", str(renamed), new_params_prefixes=AsrModel.NEW_PARAMS_PREFIXES))


def test_conformer_ctc_and_search(tmp_path, asr_data_dir):
    data_dir = asr_data_dir
    cfg = C.AsrModelConfig(label_target_size=N_VOCAB + 1,
                           encoder=C.ConformerEncoderConfig(conformer_size=16, num_layers=1, num_heads=2, ff_dim=32,
                                                            conv_kernel_size=3, frontend_channels=(4, 4, 4, 4)),
                           feature_extraction=C.FeatureExtractionConfig(num_filters=8, norm=(-60.0, 30.0)))
    keys = [C.AUDIO_KEY, C.PHONEMES_EOW_KEY]
    _assert_falls(_train(tmp_path, ASR, cfg, keys, data_dir), "ctc")
    vocab = [f"p{i}" for i in range(N_VOCAB)] + ["[eow]#"]
    _forward(tmp_path, ASR, cfg, keys, data_dir, {}, "SearchOutCallback", {"vocab": vocab})
    result = ast.literal_eval(open(os.path.join(tmp_path, "search_out.py")).read())
    # The hypotheses are the greedy CTC labels of the trained model, recomputed here in RETURNN's batches.
    model = _load(AsrModel, cfg, tmp_path)
    expected = {}
    for batch in _forward_batches(data_dir):
        with torch.no_grad():
            log_probs, out_lengths = model(*utterance_batch(batch)[C.AUDIO_KEY])
        for u, hyp in zip(batch, greedy_ctc_decode(log_probs, out_lengths, model.blank_index)):
            expected[u["tag"]] = " ".join(vocab[i] for i in hyp)
    assert result == expected
    # lexicon-constrained beam search on the model's log-probs: only lexicon words come out
    import json

    lexicon = {f"W{i}": [f"p{i}", "[eow]#"] for i in range(1, N_VOCAB)}
    (tmp_path / "lexicon.json").write_text(json.dumps(lexicon))
    _forward(tmp_path, ASR, cfg, keys, data_dir, {}, "SearchOutCallback",
             {"vocab": vocab, "lexicon": str(tmp_path / "lexicon.json"), "eow_suffix": None,
              "search": C.SearchConfig(decoder="beam", beam_size=4, word_score=5.0)}, name="beam.config")
    beam = ast.literal_eval(open(os.path.join(tmp_path, "search_out.py")).read())
    words = [w for v in beam.values() for w in v.split()]
    assert sorted(beam) == sorted(data_dir["utts"]) and words and set(words) <= set(lexicon)
