"""Tiny real RETURNN runs (``python -m returnn``, CPU, 1 epoch, tiny dims) of every model family, plus forward
runs writing durations / latents / audio / search output."""
import os

import h5py
import numpy as np
import pytest

from librispeech_joint_training_given_alignments.jobs.serialization import serialize_network
from librispeech_joint_training_given_alignments.pytorch_networks import configs as C

from networks_returnn_helpers import (PKG, N_VOCAB, XVEC_DIM, meta_dataset, returnn_config_text, run_returnn,
                                      tiny_tts_config, tiny_utterances, write_tiny_hdfs)

TTS = f"{PKG}.pytorch_networks.tts_model"
ASR = f"{PKG}.pytorch_networks.asr_model"
TTS_KEYS = [C.AUDIO_KEY, C.PHONEMES_KEY, C.SPEAKER_KEY]
GA_KEYS = TTS_KEYS + [C.DURATIONS_KEY]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny_data")
    utts = tiny_utterances(6)
    files = write_tiny_hdfs(str(d), utts)
    return {"files": files, "utts": {u["tag"]: u for u in utts}}


def _train(workdir, module, model_config, keys, data, train_kwargs=None, extra=""):
    os.makedirs(workdir, exist_ok=True)
    code = serialize_network(module, model_config, train_step_kwargs=train_kwargs or {})
    out = run_returnn(str(workdir), returnn_config_text(code, meta_dataset(data["files"], keys), keys, extra=extra))
    assert os.path.exists(os.path.join(workdir, "models", "epoch.001.pt")), out[-3000:]
    return out


def _forward(workdir, module, model_config, keys, data, forward_kwargs, callback, callback_kwargs=None,
             name="forward.config"):
    code = serialize_network(module, model_config, forward_step_kwargs=forward_kwargs, forward_callback=callback,
                             forward_callback_kwargs=callback_kwargs or {}, train=False)
    text = returnn_config_text(code, meta_dataset(data["files"], keys), keys, task="forward",
                               extra='load = "models/epoch.001.pt"\nlog = ["./returnn.forward.log"]')
    return run_returnn(str(workdir), text, name=name)


def _losses(output: str):
    line = [l for l in output.splitlines() if "Total train loss" in l or "train score" in l.lower()]
    return line[-1] if line else ""


@pytest.fixture(scope="module")
def tts_run(tmp_path_factory, data_dir):
    """Glow-TTS with MAS (speaker embedding), trained 1 epoch; used as the pre-trained model below."""
    workdir = tmp_path_factory.mktemp("glowtts_mas")
    out = _train(workdir, TTS, tiny_tts_config(), TTS_KEYS, data_dir)
    assert "mle" in _losses(out) and "dp" in _losses(out), _losses(out)
    return workdir


def test_glowtts_mas_train_and_durations_forward(tts_run, data_dir):
    _forward(tts_run, TTS, tiny_tts_config(), TTS_KEYS, data_dir, {"mode": "durations"}, "DurationHDFCallback")
    with h5py.File(os.path.join(tts_run, "durations.hdf"), "r") as f:
        tags = [t.decode() if isinstance(t, bytes) else t for t in f["seqTags"][()]]
        lens = f["seqLengths"][()][:, 0]
        values = f["inputs"][()]
    assert sorted(tags) == sorted(data_dir["utts"]) and values.dtype == np.int32
    offset = 0
    for tag, n in zip(tags, lens):
        u = data_dir["utts"][tag]
        dur = values[offset: offset + n]
        offset += n
        assert n == len(u["phonemes"]) and (dur >= 1).all()
        frames = len(u["audio"]) // 200 + 1  # all feature frames, incl. those the flow's squeeze cuts off
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

    files = os.listdir(os.path.join(tts_run, "audio_files"))
    assert len(files) == 6
    wave, sr = soundfile.read(os.path.join(tts_run, "audio_files", files[0]))
    assert sr == 16000 and np.isfinite(wave).all() and len(wave) > 0


def test_joint_given_alignment_with_ce(tmp_path, data_dir):
    cfg = tiny_tts_config(alignment="given", phoneme_head=C.PhonemeHeadConfig(head_type="cnn", n_channels=16,
                                                                              kernel_size=3),
                          label_target_size=N_VOCAB, aux_latent="prior_sample",
                          speaker=C.SpeakerConfig(mode="xvector", xvector_dim=XVEC_DIM, gin_channels=8))
    keys = [C.AUDIO_KEY, C.PHONEMES_KEY, C.XVECTOR_KEY, C.DURATIONS_KEY]
    out = _train(tmp_path, TTS, cfg, keys, data_dir, {"ce_loss_scale": 0.1})
    assert all(n in _losses(out) for n in ("mle", "dp", "ce")), _losses(out)
    _forward(tmp_path, TTS, cfg, keys, data_dir, {"mode": "phoneme_accuracy"}, "PhonemeAccuracyCallback")
    acc = float(open(os.path.join(tmp_path, "accuracy")).read())
    assert 0.0 <= acc <= 1.0


def test_given_alignment_tts(tmp_path, data_dir):
    out = _train(tmp_path, TTS, tiny_tts_config(alignment="given"), GA_KEYS, data_dir)
    assert "mle" in _losses(out) and "ce" not in _losses(out)


def test_frozen_head_from_pretrained(tts_run, tmp_path, data_dir):
    cfg = tiny_tts_config(alignment="given", freeze_glowtts=True, label_target_size=N_VOCAB,
                          phoneme_head=C.PhonemeHeadConfig(head_type="ffn", n_channels=16))
    preload = {"tts": {"filename": os.path.join(tts_run, "models", "epoch.001.pt"), "init_for_train": True,
                       "ignore_missing": True}}
    out = _train(tmp_path, TTS, cfg, GA_KEYS, data_dir, extra=f"preload_from_files = {preload!r}")
    assert "Total train loss" in _losses(out) and "mle" not in _losses(out), _losses(out)  # single loss: ce
    import torch

    before = torch.load(os.path.join(tts_run, "models", "epoch.001.pt"), map_location="cpu")["model"]
    after = torch.load(os.path.join(tmp_path, "models", "epoch.001.pt"), map_location="cpu")["model"]
    for k, v in before.items():
        assert torch.equal(v, after[k]), k


def test_frozen_probe_beats_the_majority_class(tts_run, tmp_path):
    """A phoneme probe on a frozen Glow-TTS, trained by RETURNN with the probe preset of the embedded default run
    (``experiment_setup.probe_training_settings``), scores clearly above always predicting the most frequent frame
    label, and the frozen weights are exactly those of the preloaded TTS checkpoint."""
    import dataclasses

    import torch

    from librispeech_joint_training_given_alignments.exp_joint_flow_ga_frozen_glowtts.experiments import (
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


def test_blstm_ctc_on_frozen_glow_latent(tts_run, tmp_path, data_dir):
    cfg = C.AsrModelConfig(label_target_size=N_VOCAB + 1, input_type="glow_latent", glowtts=tiny_tts_config(),
                           encoder=C.BlstmEncoderConfig(n_channels=16, n_layers=1, subsampling_factor=2),
                           specaug=C.SpecaugConfig(repeat_per_n_frames=5, max_dim_time=2, num_repeat_feat=1,
                                                   max_dim_feat=2))
    preload = {"tts": {"filename": os.path.join(tts_run, "models", "epoch.001.pt"), "init_for_train": True,
                       "ignore_missing": True}}
    keys = [C.AUDIO_KEY, C.SPEAKER_KEY, C.PHONEMES_EOW_KEY]
    out = _train(tmp_path, ASR, cfg, keys, data_dir, extra=f"preload_from_files = {preload!r}")
    assert "Total train loss" in _losses(out), _losses(out)  # single loss: ctc


def test_conformer_ctc_and_search(tmp_path, data_dir):
    cfg = C.AsrModelConfig(label_target_size=N_VOCAB + 1,
                           encoder=C.ConformerEncoderConfig(conformer_size=16, num_layers=1, num_heads=2, ff_dim=32,
                                                            conv_kernel_size=3, frontend_channels=(4, 4, 4, 4)),
                           feature_extraction=C.FeatureExtractionConfig(num_filters=8, norm=(-60.0, 30.0)))
    keys = [C.AUDIO_KEY, C.PHONEMES_EOW_KEY]
    out = _train(tmp_path, ASR, cfg, keys, data_dir)
    assert "Total train loss" in _losses(out), _losses(out)  # single loss: ctc
    vocab = [f"p{i}" for i in range(N_VOCAB)] + ["[eow]#"]
    _forward(tmp_path, ASR, cfg, keys, data_dir, {}, "SearchOutCallback", {"vocab": vocab})
    import ast

    result = ast.literal_eval(open(os.path.join(tmp_path, "search_out.py")).read())
    assert sorted(result) == sorted(data_dir["utts"]) and all(isinstance(v, str) for v in result.values())
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
