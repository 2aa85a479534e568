"""The experiment families as a whole: graph construction for both setups and a tiny end-to-end run."""
import csv
import dataclasses
import os

import pytest
import soundfile
import torch

from librispeech_joint_training_given_alignments.data_prep.duration_jobs import ValidateTokenDurationsJob
from librispeech_joint_training_given_alignments.data_prep.testing import TINY_SUBSETS
from librispeech_joint_training_given_alignments.default_experiment import run_all
from librispeech_joint_training_given_alignments.embedded_sisyphus import reset_graph
from librispeech_joint_training_given_alignments.exp_joint_flow_ga_frozen_glowtts import experiment as exp_frozen
from librispeech_joint_training_given_alignments.exp_tts import experiment as exp_tts
from librispeech_joint_training_given_alignments.experiment_setup import (EMBEDDED, SeedSelection, clear_data_cache,
                                                                          get_data, librispeech)
from librispeech_joint_training_given_alignments.jobs.returnn_training import (ReturnnTrainingJob,
                                                                               SelectBestTrainingJob,
                                                                               read_learning_rates)
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
    selection = EMBEDDED.tts_seed_selection
    families = {"exp_tts", "exp_joint", "exp_joint_flow_ga", "exp_joint_flow_ga_frozen_glowtts", "exp_joint_2step"}
    assert set(results) == families | {"controls", "alignment"}
    assert all(results.values()), "every family has a core experiment"
    trainings = [j for j in tk.sis_graph.jobs() if isinstance(j, ReturnnTrainingJob)]
    epochs = sorted(j.num_epochs for j in trainings)
    # x-vector TDNN, 2 CTC models, the probe, the alignment model, the mel-to-linear vocoder (the original's 50
    # epochs shortened); the 2-step TTS models (recipes of 100 epochs shortened); the core models the sWER targets
    # judge get the setup's own budget: exp_joint_flow_ga's, and those of exp_tts and exp_joint as their seed
    # candidates and the continuation of the best one
    core_epochs = EMBEDDED.tts_core_epochs
    expected = sorted([len(EMBEDDED.xvector_settings.learning_rates), EMBEDDED.asr_constant_lr_epochs,
                       EMBEDDED.asr_constant_lr_epochs, EMBEDDED.probe_constant_lr_epochs, EMBEDDED.alignment_epochs,
                       EMBEDDED.epochs(50)]
                      + [EMBEDDED.epochs(100)] * 2 + [core_epochs]
                      + ([selection.select_after_epochs] * len(selection.seeds)
                         + [core_epochs - selection.select_after_epochs]) * 2)
    assert epochs == expected
    # every Glow-TTS training (the alignment model's included) trains on the setup's smaller TTS batches (more
    # updates in its epochs); the CTC models, probes and the vocoder on the setup's batches
    def batching(job):
        return job.returnn_config.config["batch_size"], job.returnn_config.config["max_seqs"]

    tts_jobs = {results[f][name]["train_job"] for f in ("exp_tts", "exp_joint", "exp_joint_flow_ga")
                for name in results[f]}
    tts_jobs |= {r["train_job"] for name, r in results["exp_joint_2step"].items()
                 if name.startswith(("first_step", "second_step_tts"))}
    # x-vector TTS, alignment model, exp_joint (both with their seed candidates), flow_ga, 2-step steps 1 and 2
    assert len(tts_jobs) == 6 + 2 * len(selection.seeds)
    # no replicates beside the candidates; in both MAS families the candidates differ in the seed only and train the
    # first epochs of the schedule whose remaining epochs the core model trains, from the chosen candidate's weights
    core_name = "glowTTS_x_vector_v2/enc768/100ep/dec_drop_0.05"
    assert not {f"{core_name}/seed_{seed}" for seed in exp_tts.SEED_REPLICATES} & set(results["exp_tts"])
    selected = {("exp_tts", core_name),
                ("exp_joint", "glowTTS_ASR_ffn_x_vector_v2/200ep/basic_init/no_specaug/tts_target_size/ce_ls_0.1")}
    assert {(f, n) for f in families for n, r in results[f].items() if "seed_candidates" in r} == selected
    for family, name in selected:
        core = results[family][name]["train_job"].returnn_config.config
        (preloaded,) = core["preload_from_files"].values()
        choice = preloaded["filename"].path.creator
        assert isinstance(choice, SelectBestTrainingJob) and choice.key == "devtrain_loss_dp"
        assert preloaded["init_for_train"] and not preloaded["ignore_missing"]
        candidates = {seed: results[family][f"{name}/seed_candidates/seed_{seed}"] for seed in selection.seeds}
        assert {k: c.path.creator for k, c in choice.checkpoints.items()} == {
            f"seed_{seed}": c["train_job"] for seed, c in candidates.items()}
        for seed, candidate in candidates.items():
            config = candidate["train_job"].returnn_config.config
            assert config["random_seed"] == seed
            assert len(config["learning_rates"]) == selection.select_after_epochs
            assert len(config["learning_rates"]) + len(core["learning_rates"]) == core_epochs
            assert config["learning_rates"][-1] > core["learning_rates"][0] > core["learning_rates"][-1]
            assert ({k: v for k, v in config.items() if k not in ("random_seed", "learning_rates")}
                    == {k: v for k, v in core.items() if k not in ("learning_rates", "preload_from_files")})
            assert set(candidate["metrics"]) == {"selection_devtrain_loss_dp", "selected"}
            assert "audio_list" not in candidate and "phoneme_accuracy" not in candidate  # only the chosen one
    # the core models' text encoder has the setup's core sizes (the frozen probe that of the model it loads); the
    # alignment model and the 2-step models keep the setup's own
    core_encoder = dict(EMBEDDED.tts_core_text_encoder)
    assert core_encoder
    core_models = [results["exp_tts"][core_name], results["exp_joint_flow_ga"][
        "ga_glowTTS_ASR_ffn_x_vector_v2/200ep/basic_init/ce_ls_0.1"],
        results["exp_joint_flow_ga_frozen_glowtts"]["ga_glowTTS_ASR_ffn_x_vector/100ep/encoder/on_100ep_tts"]]
    core_models += [results["exp_joint"][name] for _, name in selected if name != core_name]
    assert len(core_models) == 4
    for result in core_models:
        encoder = result["model_config"].text_encoder
        assert {k: getattr(encoder, k) for k in core_encoder} == core_encoder, result["prefix"]
    small_models = [results["exp_tts"][exp_tts.ALIGNMENT_MODEL]] + [
        r for name, r in results["exp_joint_2step"].items() if name.startswith(("first_step", "second_step_tts"))]
    for result in small_models:
        encoder = result["model_config"].text_encoder
        assert {k: getattr(encoder, k) for k in core_encoder} != core_encoder, result["prefix"]
    # the given-alignment models (flow_ga's core, the 2-step first steps) have blanks and train on the alignment
    # model's whole Viterbi path (blanks included), read from a stream checked against the per-phoneme durations
    # that label their CE; the 2-step TTS continuations keep the blanks and align them with MAS
    assert EMBEDDED.tts_add_blank and EMBEDDED.tts_given_token_durations
    given_models = [results["exp_joint_flow_ga"]["ga_glowTTS_ASR_ffn_x_vector_v2/200ep/basic_init/ce_ls_0.1"]] + [
        r for name, r in results["exp_joint_2step"].items() if name.startswith("first_step")]
    assert len(given_models) == 2  # core only: one 2-step first step
    for result in given_models:
        cfg = result["model_config"]
        assert cfg.alignment == "given" and cfg.add_blank and cfg.given_token_durations, result["prefix"]
        config = result["train_job"].returnn_config.config
        assert "token_durations" in config["extern_data"]
        stream = config["train"]["datasets"]["token_durations"]["files"][0]
        check = stream.creator
        assert isinstance(check, ValidateTokenDurationsJob)
        assert check.phoneme_durations_hdf == config["train"]["datasets"]["durations"]["files"][0]
        forward = check.token_durations_hdf.creator
        assert forward.returnn_config.python_epilog.forward_step_kwargs["mode"] == "token_durations"
        alignment_model = f"{EMBEDDED.prefix}/TTS_only/{exp_tts.ALIGNMENT_MODEL}"
        assert forward.get_aliases() == {f"{alignment_model}/forward_token_durations"}
    for name, result in results["exp_joint_2step"].items():
        if name.startswith("second_step_tts"):
            assert result["model_config"].alignment == "mas" and result["model_config"].add_blank
    frozen = results["exp_joint_flow_ga_frozen_glowtts"].values()
    assert frozen and not any(r["model_config"].given_token_durations for r in frozen)
    # every trained aux CE on a prior sample with blanks leaves out the blank frames (exp_joint's core: MAS path;
    # the given models: the token path); the frozen probes train on every frame
    assert EMBEDDED.tts_ce_skip_blank_frames
    joint_core = results["exp_joint"]["glowTTS_ASR_ffn_x_vector_v2/200ep/basic_init/no_specaug/tts_target_size/ce_ls_0.1"]
    for result in given_models + [joint_core]:
        cfg = result["model_config"]
        assert cfg.aux_latent == "prior_sample" and cfg.ce_skip_blank_frames, result["prefix"]
    assert not any(r["model_config"].ce_skip_blank_frames for r in frozen)
    assert any(r["model_config"].add_blank for r in frozen)
    tts_batching = (int(EMBEDDED.tts_batch_size_seconds * 16000), EMBEDDED.tts_max_seqs)
    assert {batching(j) for j in tts_jobs} == {tts_batching}
    others = {batching(j) for j in trainings if j not in tts_jobs and "xvector" not in str(j.get_aliases())}
    assert others == {(int(EMBEDDED.batch_size_seconds * 16000), EMBEDDED.max_seqs)}
    assert tts_batching not in others
    # every synthesising model is judged with and without oracle durations, by both recognisers and DNSMOS
    synthesising = [r for f in families for r in results[f].values() if "audio_list" in r]
    # exp_tts (x-vector, the alignment model), exp_joint, flow_ga, 2-step TTS
    assert len(synthesising) == 5

    def noise_scale(audio):
        return audio.creator.returnn_config.python_epilog.forward_step_kwargs["noise_scale"]

    controls = {f"swer_noise_{scale}" for scale in EMBEDDED.tts_control_noise_scales}
    assert controls and EMBEDDED.tts_noise_scale not in EMBEDDED.tts_control_noise_scales
    for result in synthesising:  # the alignment model has no given durations, so no oracle-duration synthesis
        given = result is not results["exp_tts"][exp_tts.ALIGNMENT_MODEL]
        assert set(result["wers"]) == ({"swer", "swer_oracle_durations"} if given else {"swer"}) | controls
        # the setup's temperature in every synthesis, each control temperature in one further synthesis
        assert noise_scale(result["audio"]) == EMBEDDED.tts_noise_scale
        assert given == ("audio_list_oracle_durations" in result)
        if given:
            assert noise_scale(result["audio_list_oracle_durations"]) == EMBEDDED.tts_noise_scale
        assert {s: noise_scale(a) for s, a in result["audio_list_noise"].items()} == {
            s: s for s in EMBEDDED.tts_control_noise_scales}
        assert {"dnsmos_p808_mos", "speaker_same_speaker"} <= set(result["metrics"])
        assert ("pocketsphinx_wer" in result["metrics"]) == EMBEDDED.pocketsphinx_on_synthesis
    judged_controls = {"real audio", "Griffin-Lim resynthesis of the real features"}
    assert set(results["controls"]) == judged_controls | {
        "Griffin-Lim on the trained mel-to-linear BLSTM (resynthesis)", "per-phoneme mean spectra, given durations"}
    assert all("pocketsphinx_wer" in results["controls"][name]["metrics"] for name in judged_controls)
    assert all("swer" in control["wers"] for name, control in results["controls"].items() if name != "real audio")
    assert set(results["alignment"]) == {"viterbi durations vs flite", "proportional durations vs flite"}
    reports = [t for t in tk.sis_graph.targets if getattr(t, "name", "").endswith("/report/results.md")]
    assert len(reports) == 1
    spec = reports[0].values.spec  # every training has its curves, every synthesis its audio column
    not_shown = set(trainings) - {p.creator for p in spec.curves.values()}
    assert [j.get_aliases() for j in not_shown] == [{"experiments/librispeech/data/joint_ga/xvector/training"}]
    assert len(spec.audio) == 1 + sum("audio_list" in r for family in results.values() for r in family.values())


def test_embedded_graph_phoneme_accuracies_and_xvector_sources(fresh_graph):
    """Every head is scored on the flow output and the prior sample, next to both baselines; the "_mas" probes
    align with MAS; TTS trains on per-utterance x-vectors and synthesises with the speaker averages."""
    from librispeech_joint_training_given_alignments.data_prep.xvector_jobs import AverageXVectorsPerSpeakerJob
    from librispeech_joint_training_given_alignments.exp_joint_flow_ga_frozen_glowtts import experiment as frozen
    from librispeech_joint_training_given_alignments.jobs.returnn_forward import ReturnnForwardJob

    results = run_all(EMBEDDED)
    heads = [r for family in results.values() for r in family.values()
             if getattr(r.get("model_config"), "phoneme_head", None) is not None]
    assert len(heads) >= 4
    for result in heads:
        assert set(result["phoneme_accuracy"]) == {"flow_z", "prior_sample"}, result["prefix"]
        assert set(result["phoneme_accuracy_baselines"]) == {"majority_class", "proportional_alignment"}
    mas = frozen.run_experiment(EMBEDDED, "ga_glowTTS_ASR_ffn_x_vector_mas/100ep/encoder")["model_config"]
    assert (mas.alignment, mas.ce_label_alignment, mas.freeze_glowtts) == ("mas", "mas", True)

    tts = results["exp_tts"]["glowTTS_x_vector_v2/enc768/100ep/dec_drop_0.05"]
    synthesis = tts["audio"].creator.returnn_config.config["forward_data"]["datasets"]["xvectors"]["files"][0]
    assert isinstance(synthesis.creator, AverageXVectorsPerSpeakerJob)
    train = tts["train_job"].returnn_config.config["train"]["datasets"]["xvectors"]["files"][0]
    assert isinstance(train.creator, ReturnnForwardJob)  # the extraction itself: one vector per utterance


def test_changing_one_model_field_changes_only_dependent_trainings(fresh_graph):
    run_all(EMBEDDED)
    before = set(_training_ids())
    reset_graph()
    clear_data_cache()
    changed = dataclasses.replace(EMBEDDED, max_seqs=EMBEDDED.max_seqs + 1)
    run_all(changed)
    after = set(_training_ids())
    # the x-vector training (its own settings) and the Glow-TTS trainings (the setup's TTS batching) ignore
    # max_seqs; the CTC models, probes and the vocoder change
    unchanged = [j for j in tk.sis_graph.jobs() if isinstance(j, ReturnnTrainingJob) and j.job_id() in before]
    joint = f"{changed.prefix}/joint_models"
    assert sorted(a for j in unchanged for a in j.get_aliases()) == sorted(
        ["experiments/librispeech/data/joint_ga/xvector/training",
         f"{changed.prefix}/TTS_only/{exp_tts.ALIGNMENT_MODEL}/training",
         f"{changed.prefix}/TTS_only/glowTTS_x_vector_v2/enc768/100ep/dec_drop_0.05/training",
         *[f"{changed.prefix}/TTS_only/glowTTS_x_vector_v2/enc768/100ep/dec_drop_0.05/seed_candidates/seed_{seed}"
           "/training" for seed in changed.tts_seed_selection.seeds],
         *[f"{joint}/glowTTS_ASR_ffn_x_vector_v2/200ep/basic_init/no_specaug/tts_target_size/ce_ls_0.1/seed_candidates/"
           f"seed_{seed}/training" for seed in changed.tts_seed_selection.seeds],
         f"{joint}/glowTTS_ASR_ffn_x_vector_v2/200ep/basic_init/no_specaug/tts_target_size/ce_ls_0.1/training",
         f"{joint}/flow_given_alignment/ga_glowTTS_ASR_ffn_x_vector_v2/200ep/basic_init/ce_ls_0.1/training",
         f"{joint}/flow_given_alignment/first_step/ga_glowTTS_ASR_ffn_x_vector_v2/ce_ls_1.0/training",
         f"{joint}/flow_given_alignment/second_step_tts/ga_glowTTS_ASR_ffn_x_vector_v2_2ndstep_tts/ce_ls_1.0/training"])
    assert len(unchanged) < len(before) == len(after)


# One epoch per Glow-TTS training, but two for the seed-selected ones (exp_tts' x-vector model, exp_joint's 200-epoch
# recipe): one for their candidates, one for the continuation; two for the recognisers (constant learning rate),
# to see their loss fall.
TINY = dataclasses.replace(
    EMBEDDED, embedded_subsets=TINY_SUBSETS, epoch_divisor=100, devtrain_size=4, prefix="tiny", asr_constant_lr_epochs=2,
    probe_constant_lr_epochs=1, alignment_epochs=1, dev_per_speaker=2,
    tts_seed_selection=SeedSelection(seeds=(42, 1), select_after_epochs=1), tts_core_epochs=2,
    tts_core_text_encoder=(("n_layers", 3),),  # cheaper than the embedded 128 x 4: checks the wiring (probe preload)
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
    report = fresh_graph / "output" / "tiny" / "report"
    rows = list(csv.DictReader(open(report / "results.csv")))
    values = {(r["family"], r["experiment"], k): v for r in rows for k, v in r.items()
              if k not in ("family", "experiment") and v}
    assert "pending" not in values.values()
    accuracies = [float(v) for (_, _, column), v in values.items() if column.startswith("phoneme acc[")]
    wers = [float(v) for (_, _, column), v in values.items() if column.startswith(("WER[", "sWER"))]
    assert len(accuracies) >= 5 and len(wers) >= 3
    page = (report / "index.html").read_text()
    assert page.count("<audio ") >= 2 and page.count('<img src="plots/') >= 5

    # One epoch cannot make a recogniser beat chance; what it can show: every recogniser learns (its CTC loss
    # falls from the first to the second epoch) ...
    recognisers = [r for family in results.values() for r in family.values()
                   if isinstance(r.get("model_config"), AsrModelConfig)]
    assert len(recognisers) == 2
    for r in recognisers:
        scores = read_learning_rates(r["train_job"].out_learning_rates.get_path())
        assert scores[2]["train_loss_ctc"] < scores[1]["train_loss_ctc"], (r["prefix"], scores)

    # The core x-vector model continued the candidate with the lowest dev duration loss, from its weights (after
    # one more epoch still far closer to them than to the other candidate's, which started from other random ones).
    core_name = "glowTTS_x_vector_v2/enc768/100ep/dec_drop_0.05"
    candidates = {k: r for k, r in results["exp_tts"].items() if k.startswith(f"{core_name}/seed_candidates/")}
    assert len(candidates) == len(TINY.tts_seed_selection.seeds)
    chosen = [k for k, r in candidates.items() if r["metrics"]["selected"].get() == 1]
    scores = {k: r["metrics"]["selection_devtrain_loss_dp"].get() for k, r in candidates.items()}
    assert len(chosen) == 1 and scores[chosen[0]] == min(scores.values()), scores
    continued = _weights(results["exp_tts"][core_name]["checkpoint"])

    def distance(name):
        weights = _weights(candidates[name]["train_job"].out_checkpoints[1])
        return sum(float((continued[k] - weights[k]).pow(2).sum()) for k in continued
                   if continued[k].is_floating_point())

    (other,) = set(candidates) - set(chosen)
    assert distance(chosen[0]) < 0.5 * distance(other), (distance(chosen[0]), distance(other))

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
