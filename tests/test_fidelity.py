"""The full-size graph against the original's experiment lists: every original run under its original alias, and job
ids that change only on purpose. Nothing runs: the graph is only built.

After a deliberate change of the full-size graph, rewrite the stored ids with
``UPDATE_FULL_GRAPH_JOB_IDS=1 pytest tests/test_fidelity.py`` and commit ``tests/data/full_graph_job_ids.tsv``
with the change (its diff names every job that moved)."""
import os

import numpy as np
import pytest

from librispeech_joint_training_given_alignments.data_prep import durations
from librispeech_joint_training_given_alignments.default_experiment import run_all
from librispeech_joint_training_given_alignments.experiment_setup import clear_data_cache, librispeech
from librispeech_joint_training_given_alignments.sisyphus_api import tk

DATA = os.path.join(os.path.dirname(__file__), "data")
RUNS_FILE = os.path.join(DATA, "original_runs.tsv")
IDS_FILE = os.path.join(DATA, "full_graph_job_ids.tsv")


def _rows(path):
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n").split("\t") for line in f if line.strip() and not line.startswith("#")]


@pytest.fixture(scope="module")
def full_graph_aliases():
    """alias -> job id of the full-size LibriSpeech graph (built once, in an empty graph)."""
    from librispeech_joint_training_given_alignments.embedded_sisyphus import reset_graph

    reset_graph()
    clear_data_cache()
    try:
        run_all(librispeech("/data/LibriSpeech"))
        yield {alias: job.job_id() for job in tk.sis_graph.jobs() for alias in (job.get_aliases() or ())}
    finally:
        reset_graph()
        clear_data_cache()


def test_every_original_run_has_its_alias(full_graph_aliases):
    rows = _rows(RUNS_FILE)
    # the original's runs, the Conformer's search and prior, the BLSTMs' dev-other searches, the feature statistics
    assert len(rows) == 38 + 20 + 12 + 14 + 10 + 2 + 18 + 3 + 1
    missing = [alias for _, _, alias in rows if alias not in full_graph_aliases]
    assert not missing, f"{len(missing)} original runs have no alias in the full-size graph: {missing}"
    trainings = [a for _, _, a in rows if a.endswith("/training")]
    assert len({full_graph_aliases[a] for a in trainings}) == len(trainings), "two original runs share one job"


def test_full_graph_job_ids_are_as_stored(full_graph_aliases):
    current = sorted(full_graph_aliases.items())
    if os.environ.get("UPDATE_FULL_GRAPH_JOB_IDS"):
        with open(IDS_FILE, "w", encoding="utf-8") as f:
            f.write("# alias\tjob id of the full-size graph; rewrite only on purpose (see tests/test_fidelity.py)\n")
            f.writelines(f"{alias}\t{job_id}\n" for alias, job_id in current)
    stored = dict(_rows(IDS_FILE))
    changed = {a: (stored.get(a), j) for a, j in current if stored.get(a) != j}
    gone = sorted(set(stored) - set(full_graph_aliases))
    assert not changed and not gone, (f"{len(changed)} aliases with a new or changed job id, e.g. "
                                      f"{sorted(changed.items())[:5]}; {len(gone)} gone, e.g. {gone[:5]}")


def test_blstm_2ndstep_is_scored_on_the_conformers_dev_other_data(full_graph_aliases):
    """The original scored its blstm_2ndstep runs on dev-other: the same data as the Conformer's search, with the TTS
    vocabulary and "[space]" word separator (TTS lexicon decoding), not on TTS-CV."""
    jobs = {alias: job for job in tk.sis_graph.jobs() for alias in (job.get_aliases() or ())}
    root = "experiments/librispeech/joint_training/given_alignments/raw_audio/joint_models/flow_given_alignment"
    conformer = jobs[f"{root}/second_step_asr/frozen_glowtts/glowASR_conformer_x_vector/search/dev-other/search_job"]
    blstms = [f"{root}/second_step/ga_glowTTS_ASR_ffn_x_vector_v2_blstm_2ndstep{v}/{aug}/ce_ls_1.0/search"
              for v, aug in (("", "no_specaug"), ("", "specaug"), ("_v2", "no_specaug"))]
    for prefix in blstms:
        assert f"{prefix}/tts-cv/search_job" not in jobs
        search = jobs[f"{prefix}/dev-other/search_job"]
        assert search.returnn_config.config["forward_data"] == conformer.returnn_config.config["forward_data"]
        network = search.returnn_config.python_epilog
        assert network.forward_callback_kwargs["word_separator"] == "[space]"
        assert network.forward_callback_kwargs["eow_suffix"] is None


def test_predictor_durations_are_checked_without_sums():
    """Duration-predictor output (the original's durations) need not sum to the frames; count, sign and
    finiteness are still checked."""
    phonemes, frames = {"a": 3}, {"a": 10}
    predicted = {"a": np.array([2, 1, 5])}
    with pytest.raises(durations.DurationError, match="sum to 8 but the features have 10"):
        durations.validate_durations(predicted, phonemes, frames)
    durations.validate_durations(predicted, phonemes, frames, check_sums=False)
    for bad, message in (({"a": np.array([2, 5])}, "2 durations but 3 phonemes"),
                         ({"a": np.array([2, -1, 5])}, "negative"),
                         ({"a": np.array([2.0, np.inf, 5.0])}, "non-finite")):
        with pytest.raises(durations.DurationError, match=message):
            durations.validate_durations(bad, phonemes, frames, check_sums=False)


class _Tensor:
    def __init__(self, array):
        self.raw_tensor = array


def test_prior_is_the_log_of_the_frame_averaged_posteriors(tmp_path):
    from librispeech_joint_training_given_alignments.pytorch_networks.asr_model import PriorCallback

    callback = PriorCallback(str(tmp_path / "prior.txt"))
    callback.init(model=None)
    callback.process_seq(seq_tag="a", outputs={"log_probs": _Tensor(np.log([[0.5, 0.5], [1e-9, 1.0]]))})
    callback.process_seq(seq_tag="b", outputs={"log_probs": _Tensor(np.log([[1.0, 1e-9]]))})
    callback.finish()
    assert np.allclose(np.exp(np.loadtxt(tmp_path / "prior.txt")), [1.5 / 3, 1.5 / 3], atol=1e-6)


def test_frozen_train_mode_keeps_dropout_and_hashes_only_when_set():
    import dataclasses

    from librispeech_joint_training_given_alignments.embedded_sisyphus.hash import short_hash
    from librispeech_joint_training_given_alignments.pytorch_networks import configs as c
    from librispeech_joint_training_given_alignments.pytorch_networks.tts_model import GlowTTSJointModel

    cfg = c.GlowTTSModelConfig(
        text_encoder=c.TextEncoderConfig(n_vocab=10, hidden_channels=16, filter_channels=16, filter_channels_dp=16,
                                         n_layers=1),
        decoder=c.FlowDecoderConfig(hidden_channels=16, n_blocks=2, n_layers=1),
        speaker=c.SpeakerConfig(mode="embedding", n_speakers=2, gin_channels=8),
        phoneme_head=c.PhonemeHeadConfig(n_channels=8, n_layers=2), label_target_size=10, freeze_glowtts=True)
    no_eval = dataclasses.replace(cfg, frozen_train_mode=True)
    assert not GlowTTSJointModel(cfg).train(True).decoder.training
    assert GlowTTSJointModel(no_eval).train(True).decoder.training
    state = {k: v for k, v in cfg.__dict__.items()
             if k not in ("frozen_train_mode", "add_blank", "given_token_durations", "ce_skip_blank_frames")}
    assert cfg.__sis_state__() == state  # the hash of configs from before the fields existed
    assert short_hash(cfg) != short_hash(no_eval)
    assert short_hash(cfg) != short_hash(dataclasses.replace(cfg, add_blank=True))  # likewise add_blank
    with_blanks = dataclasses.replace(cfg, add_blank=True)
    assert short_hash(with_blanks) != short_hash(dataclasses.replace(with_blanks, given_token_durations=True))
    assert short_hash(with_blanks) != short_hash(dataclasses.replace(with_blanks, ce_skip_blank_frames=True))
