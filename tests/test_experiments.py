"""The experiment families as a whole: graph construction for both setups and a tiny end-to-end run."""
import dataclasses
import os

import pytest
import soundfile
import torch

from librispeech_joint_training_given_alignments.data_prep.testing import TINY_SUBSETS
from librispeech_joint_training_given_alignments.default_experiment import run_all
from librispeech_joint_training_given_alignments.embedded_sisyphus import reset_graph
from librispeech_joint_training_given_alignments.exp_joint_flow_ga_frozen_glowtts import experiments as exp_frozen
from librispeech_joint_training_given_alignments.exp_tts import experiments as exp_tts
from librispeech_joint_training_given_alignments.experiment_setup import (EMBEDDED, clear_data_cache, get_data,
                                                                          librispeech)
from librispeech_joint_training_given_alignments.jobs.returnn_training import ReturnnTrainingJob, read_learning_rates
from librispeech_joint_training_given_alignments.pytorch_networks.configs import AsrModelConfig
from librispeech_joint_training_given_alignments.sisyphus_api import tk


def _training_ids():
    return sorted(j.job_id() for j in tk.sis_graph.jobs() if isinstance(j, ReturnnTrainingJob))


@pytest.fixture
def fresh_graph(sis_setup):
    clear_data_cache()
    yield sis_setup
    clear_data_cache()


def test_full_librispeech_graph_builds_and_ids_are_stable(fresh_graph):
    setup = librispeech("/data/LibriSpeech", core_only=False)
    run_all(setup)
    first = _training_ids()
    assert len(first) > 90  # every family at the original's sizes
    assert len(set(first)) == len(first)
    reset_graph()
    clear_data_cache()
    run_all(setup)
    assert _training_ids() == first


def test_embedded_core_graph(fresh_graph):
    results = run_all(EMBEDDED)
    assert set(results) == {"exp_tts", "exp_joint", "exp_joint_flow_ga", "exp_joint_flow_ga_frozen_glowtts",
                            "exp_joint_2step"}
    assert all(results.values()), "every family has a core experiment"
    trainings = [j for j in tk.sis_graph.jobs() if isinstance(j, ReturnnTrainingJob)]
    assert all(j.num_epochs <= 8 or j.num_epochs == EMBEDDED.asr_constant_lr_epochs for j in trainings)
    assert sum(j.num_epochs == EMBEDDED.asr_constant_lr_epochs for j in trainings) == 2  # the two CTC models


def test_changing_one_model_field_changes_only_dependent_trainings(fresh_graph):
    run_all(EMBEDDED)
    before = set(_training_ids())
    reset_graph()
    clear_data_cache()
    changed = dataclasses.replace(EMBEDDED, max_seqs=EMBEDDED.max_seqs + 1)
    run_all(changed)
    after = set(_training_ids())
    assert len(before & after) == 1  # only the x-vector training does not use max_seqs
    assert len(after) == len(before)


# One epoch per Glow-TTS training; two for the recognisers (constant learning rate), to see their loss fall.
TINY = dataclasses.replace(
    EMBEDDED, embedded_subsets=TINY_SUBSETS, epoch_divisor=1000, devtrain_size=4, prefix="tiny", asr_constant_lr_epochs=2,
    xvector_settings=dataclasses.replace(EMBEDDED.xvector_settings, learning_rates=(1e-3,)))


def _weights(checkpoint):
    return torch.load(checkpoint.get_path(), map_location="cpu")["model"]


def _assert_same(a, b, prefixes):
    keys = [k for k in a if k.startswith(prefixes)]
    assert keys and all(torch.equal(a[k], b[k]) for k in keys), prefixes


def test_tiny_end_to_end(fresh_graph):
    """Every family's core experiment, one epoch each (recognisers two), through the engine: data, alignment model,
    durations, joint/given-alignment/frozen/2-step trainings, synthesis, phoneme accuracy, ASR and sclite."""
    results = run_all(TINY)
    state = tk.run(tk.sis_graph.required_paths())
    failed = {j: s for j, s in state.jobs.items() if s != "finished"}
    if failed:
        logs = []
        for job_id in failed:
            directory = fresh_graph / "work" / job_id
            for name in sorted(os.listdir(directory)) if directory.exists() else []:
                if name.startswith("log."):
                    logs.append(f"--- {job_id}/{name}\n" + (directory / name).read_text()[-3000:])
        pytest.fail(f"jobs not finished: {failed}\n" + "\n".join(logs))
    for target in tk.sis_graph.targets:
        target.update()
    summary = (fresh_graph / "output" / "tiny" / "summary.txt").read_text().splitlines()
    values = dict(line.rsplit(": ", 1) for line in summary)
    assert sum("phoneme_accuracy" in k for k in values) >= 5 and sum("/wer[" in k for k in values) >= 3

    # One epoch cannot make a recogniser beat chance; what it can show: every recogniser learns (its CTC loss
    # falls from the first to the second epoch) ...
    recognisers = [r for family in results.values() for r in family.values()
                   if isinstance(r.get("model_config"), AsrModelConfig)]
    assert len(recognisers) == 2
    for r in recognisers:
        scores = read_learning_rates(r["train_job"].out_learning_rates.get_path())
        assert scores[2]["train_loss_ctc"] < scores[1]["train_loss_ctc"], (r["prefix"], scores)

    # ... and every preloaded model starts from the weights it names: the latent recogniser's frozen flow and
    # speaker part are the step-1 TTS's, the frozen probes' Glow-TTS is their exp_tts model, the 2nd-step TTS keeps
    # the step-1 text encoder (frozen).
    step = results["exp_joint_2step"]
    step1 = _weights(step["first_step/ce_ls_1.0"]["checkpoint"])
    _assert_same(_weights(step["second_step/blstm_ctc/ce_ls_1.0"]["checkpoint"]), step1, ("decoder.", "speaker."))
    _assert_same(_weights(step["second_step_tts/ce_ls_1.0"]["checkpoint"]), step1, ("encoder.",))
    for name, probe in results["exp_joint_flow_ga_frozen_glowtts"].items():
        tts = _weights(exp_tts.run_experiment(TINY, exp_frozen.EXPERIMENTS[name].tts_model)["checkpoint"])
        _assert_same(_weights(probe["checkpoint"]), tts, ("decoder.", "speaker.", "encoder."))

    # The synthesised TTS-CV audio: one file per CV utterance, each as long as its listing says and a whole
    # number of frames the flow can produce (centred framing: (frames - 1) * hop samples, frames % n_sqz == 0).
    tts = results["exp_tts"]["glowTTS_x_vector_v2/enc768/100ep/dec_drop_0.05"]
    listed = [line.split("\t") for line in open(tts["audio_list"].get_path()).read().splitlines()]
    cv_tags = set(open(get_data(TINY).tts.cv_segments.get_path()).read().split())
    assert {tag for tag, _, _ in listed} == cv_tags and len(listed) == len(cv_tags)
    hop, n_sqz = 200, tts["model_config"].decoder.n_sqz
    audio_root = os.path.dirname(tts["audio_list"].get_path())  # the listed paths are relative to the job output
    for tag, path, seconds in listed:
        info = soundfile.info(os.path.join(audio_root, path))
        assert info.samplerate == 16000 and info.frames == round(float(seconds) * 16000), tag
        assert info.frames % hop == 0 and (info.frames // hop + 1) % n_sqz == 0, (tag, info.frames)
