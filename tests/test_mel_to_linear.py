"""The trained mel-to-linear vocoder (the original's BLSTM Griffin-Lim predictor): a real RETURNN training on
embedded-corpus speech, its magnitudes against the mel pseudo-inverse's on held-out voices, Griffin-Lim audio
through it read back by the front end, and the job graph: Griffin-Lim-only jobs keep their ids."""
import csv
import os

import numpy as np
import pytest
import soundfile
import torch

from librispeech_joint_training_given_alignments.jobs.serialization import serialize_network
from librispeech_joint_training_given_alignments.pytorch_networks import configs as C
from librispeech_joint_training_given_alignments.pytorch_networks.feature_extraction import DbMelFeatureExtraction
from librispeech_joint_training_given_alignments.pytorch_networks.mel_to_linear import (MelToLinearModel,
                                                                                      log_spectral_distance)

from networks_returnn_helpers import PKG, returnn_config_text, run_returnn, speech_batch, tiny_tts_config

M2L = f"{PKG}.pytorch_networks.mel_to_linear"
TTS = f"{PKG}.pytorch_networks.tts_model"
FE = C.FeatureExtractionConfig(num_filters=8, norm=(-60.0, 30.0))  # the tiny TTS config's features
CFG = C.MelToLinearConfig(FE, hidden_size=32, mel_projection_size=32)
EPOCHS = 12


def _write_audio_hdf(path, batch):
    from returnn.datasets.hdf import SimpleHDFWriter

    audio, lengths = batch[C.AUDIO_KEY]
    writer = SimpleHDFWriter(path, dim=1, ndim=2)
    for i, n in enumerate(lengths.tolist()):
        writer.insert_batch(audio[i:i + 1, :n].numpy(), seq_len=[n], seq_tag=[f"speech/{i}/{i}"])
    writer.close()
    hdf = {"class": "HDFDataset", "files": [path], "use_cache_manager": False, "seq_ordering": "sorted_reverse"}
    return {"class": "MetaDataset", "datasets": {"audio": hdf}, "data_map": {C.AUDIO_KEY: ("audio", "data")},
            "seq_order_control_dataset": "audio"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """12 epochs on 16 utterances of 4 voices (4 updates of 4 utterances each); held out: 4 utterances of 2 other
    voices. About a minute on one CPU thread."""
    base = tmp_path_factory.mktemp("mel_to_linear")
    train, _ = speech_batch(str(base / "train_corpus"), ("1001", "1002", "1005", "1006"), 4)
    held_out, _ = speech_batch(str(base / "held_out_corpus"), ("1003", "1007"), 2)
    workdir = base / "run"
    workdir.mkdir()
    data = {"train": _write_audio_hdf(str(base / "train.hdf"), train),
            "held_out": _write_audio_hdf(str(base / "held_out.hdf"), held_out)}
    code = serialize_network(M2L, CFG)
    out = run_returnn(str(workdir), returnn_config_text(code, data["train"], [C.AUDIO_KEY], num_epochs=EPOCHS,
                                                        extra="learning_rate = 3e-3\nmax_seqs = 4\n"), timeout=600)
    checkpoint = workdir / "models" / f"epoch.{EPOCHS:03d}.pt"
    assert checkpoint.exists(), out[-3000:]
    return {"dir": workdir, "checkpoint": str(checkpoint), "data": data, "held_out": held_out}


def test_trained_magnitude_is_closer_to_the_stft_than_the_pseudo_inverse(trained):
    """On held-out voices the net's log10 magnitude is much closer to the true |STFT| than the mel pseudo-inverse's
    (log-spectral distance, the quantity its main loss trains), both in the forward job's CSV and recomputed here."""
    code = serialize_network(M2L, CFG, train=False, forward_callback="SpectralDistanceCallback")
    run_returnn(str(trained["dir"]), returnn_config_text(
        code, trained["data"]["held_out"], [C.AUDIO_KEY], task="forward",
        extra=f"load = {trained['checkpoint']!r}\nlog = ['./returnn.forward.log']"), name="distance.config")
    with open(trained["dir"] / "spectral_distance.csv") as f:
        rows = {r["vocoder"]: r for r in csv.DictReader(f)}
    net, pinv = (float(rows[k]["log_spectral_distance_db"]) for k in ("mel_to_linear", "pseudo_inverse"))
    assert net < 0.75 * pinv, rows

    model = MelToLinearModel(CFG)
    model.load_state_dict(torch.load(trained["checkpoint"], map_location="cpu")["model"])
    model.eval()
    from librispeech_joint_training_given_alignments.pytorch_networks.vocoder import GriffinLimVocoder

    audio, lengths = trained["held_out"][C.AUDIO_KEY]
    mel, target, frames = model.features_and_target(audio, lengths)
    with torch.no_grad():
        predicted = torch.pow(10.0, model(mel, frames))
    pseudo_inverse = GriffinLimVocoder(FE)
    distances = []
    for i, n in enumerate(frames.tolist()):
        reference = target[i, :n].numpy()
        distances.append((log_spectral_distance(predicted[i, :n].numpy(), reference),
                          log_spectral_distance(pseudo_inverse.linear_magnitude(mel[i, :n].numpy()).T, reference)))
    assert np.mean(distances, axis=0) == pytest.approx([net, pinv], rel=1e-3)
    assert all(a < b for a, b in distances), distances


def test_griffin_lim_audio_through_the_trained_net_reads_back(trained, tmp_path):
    """Resynthesis (real audio -> features -> net -> Griffin-Lim) writes audio that the front end reads back with
    the same frames and the same loudness contour; a net trained on other features is refused."""
    from librispeech_joint_training_given_alignments.data_prep.features import preemphasize

    kwargs = {"preemphasis": 0.97, "gl_iter": 16, "audio_format": "flac",
              "mel_to_linear_checkpoint": trained["checkpoint"], "mel_to_linear_config": CFG}
    code = serialize_network(TTS, tiny_tts_config(), train=False, forward_step_kwargs={"mode": "resynthesis"},
                             forward_callback="GriffinLimAudioCallback", forward_callback_kwargs=kwargs)
    run_returnn(str(tmp_path), returnn_config_text(code, trained["data"]["held_out"], [C.AUDIO_KEY], task="forward",
                                                   extra="log = ['./returnn.forward.log']"))
    listed = [line.split("\t") for line in (tmp_path / "audio_files.txt").read_text().splitlines()]
    assert len(listed) == 4
    fe = DbMelFeatureExtraction(FE)
    audio, lengths = trained["held_out"][C.AUDIO_KEY]
    errors = []
    for tag, path, _seconds in listed:
        i = int(tag.split("/")[1])
        wave, sr = soundfile.read(os.path.join(tmp_path, path), dtype="float32")
        assert sr == 16000
        reread = torch.from_numpy(preemphasize(wave, 0.97).astype(np.float32))[None]
        feats, n = fe(reread, torch.tensor([reread.shape[1]]))
        original, m = fe(audio[i:i + 1, :, 0], lengths[i:i + 1])
        assert int(n) == int(m)
        n = int(n)
        # the loudness contour over frames survives (a silent or misaligned file would not correlate); the level
        # itself does not at this training size: the net's log-domain fit is ~10 dB low (measured), the pseudo-
        # inverse's ~5 dB high, which is why the default run compares them by resynthesis sWER
        contour = np.corrcoef(feats[0, :n].mean(-1).numpy(), original[0, :n].mean(-1).numpy())[0, 1]
        errors.append(float(contour))
    assert min(errors) > 0.9, errors

    wrong = dict(kwargs, mel_to_linear_config=C.MelToLinearConfig(C.FeatureExtractionConfig(num_filters=8),
                                                                  hidden_size=32, mel_projection_size=32))
    code = serialize_network(TTS, tiny_tts_config(), train=False, forward_step_kwargs={"mode": "resynthesis"},
                             forward_callback="GriffinLimAudioCallback", forward_callback_kwargs=wrong)
    with pytest.raises(AssertionError, match="trained on other features"):
        run_returnn(str(tmp_path), returnn_config_text(code, trained["data"]["held_out"], [C.AUDIO_KEY],
                                                       task="forward", extra="log = ['./returnn.forward.log2']"),
                    name="wrong.config")


def test_vocoder_in_the_job_graph(sis_setup):
    """The embedded setup's vocoder trains on the TTS train audio only; resynthesis with it is a new job (aliased
    resynthesis_blstm_gl) that waits for the training, while the Griffin-Lim-only job keeps its id; ``setup.vocoder``
    selects it for every synthesis."""
    import dataclasses

    from librispeech_joint_training_given_alignments import experiment_setup as es
    from librispeech_joint_training_given_alignments import pipeline

    setup = dataclasses.replace(es.EMBEDDED, vocoder="mel_to_linear")
    es.clear_data_cache()
    assert es.synthesis_vocoder(es.EMBEDDED) is None
    vocoder = es.synthesis_vocoder(setup)
    train_job = vocoder["train_job"]
    assert f"{setup.prefix}/vocoder/blstm_gl_predictor/training" in train_job.get_aliases()
    train_data = train_job.returnn_config.config["train"]
    assert list(train_data["data_map"]) == [C.AUDIO_KEY]
    assert vocoder["model_config"].feature_extraction == es.feature_extraction(es.get_data(setup).base)

    d = es.get_data(setup)
    model_config = es.glow_tts(setup, d.base)
    plain = pipeline.resynthesize("x", model_config, d.tts.synthesis, d.tts.extern_data)["audio_files.txt"].creator
    plain_again = pipeline.resynthesize("x", model_config, d.tts.synthesis, d.tts.extern_data,
                                        vocoder=None)["audio_files.txt"].creator
    trained = pipeline.resynthesize("x", model_config, d.tts.synthesis, d.tts.extern_data,
                                    vocoder=vocoder)["audio_files.txt"].creator
    assert plain is plain_again and trained is not plain
    assert "x/resynthesis_blstm_gl/forward" in trained.get_aliases()
    assert train_job in trained._sis_dependencies()
    with pytest.raises(ValueError, match="vocoder must be"):
        es.synthesis_vocoder(dataclasses.replace(es.EMBEDDED, vocoder="univnet"))
    es.clear_data_cache()
