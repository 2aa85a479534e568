"""The embedded default experiment: every experiment family's core runs on the synthetic corpus.

    python -m librispeech_joint_training_given_alignments.embedded_sisyphus manager -r default_config.py

(scripts/run_default_experiment.sh does this in ./experiment). The same families run at the original
sizes on a real LibriSpeech tree with ``run_all(experiment_setup.librispeech("/data/LibriSpeech"))``.
"""
from __future__ import annotations

from typing import Any, Dict, Optional

from .experiment_setup import EMBEDDED, ExperimentSetup
from .report import ReportSpec, register_report


def run_all(setup: ExperimentSetup = EMBEDDED) -> Dict[str, Dict[str, Any]]:
    from .exp_joint import experiment as exp_joint
    from .exp_joint_2step import experiment as exp_joint_2step
    from .exp_joint_flow_ga import experiment as exp_joint_flow_ga
    from .exp_joint_flow_ga_frozen_glowtts import experiment as exp_frozen
    from .exp_tts import experiment as exp_tts

    results = {
        "exp_tts": exp_tts.run(setup),
        "exp_joint": exp_joint.run(setup),
        "exp_joint_flow_ga": exp_joint_flow_ga.run(setup),
        "exp_joint_flow_ga_frozen_glowtts": exp_frozen.run(setup),
        "exp_joint_2step": exp_joint_2step.run(setup),
    }
    add_evaluations(setup, results, results["exp_joint_2step"]["asr_baseline/blstm_ctc"])
    register_report(setup.prefix, build_report_spec(setup, results))
    return results


def add_evaluations(setup: ExperimentSetup, results: Dict[str, Dict[str, Any]], asr: Dict[str, Any]) -> None:
    """Every synthesising TTS model is judged the same way: sWER by the project's recogniser (``asr``) with the
    synthesised/real length ratio, the same with oracle durations and at the control temperatures, and the
    independent judges (pocketsphinx sWER, DNSMOS, speaker similarity). The controls (real audio, Griffin-Lim
    resynthesis of the real features, and the per-phoneme mean spectra over the given durations: what a TTS that
    learnt only average spectra scores) get the same columns in the family "controls", and the alignment quality of
    the given durations the family "alignment"."""
    from . import evaluation_judges as judges
    from .exp_tts import experiment as exp_tts
    from . import pipeline
    from .experiment_setup import (cv_reference_corpus, get_data, mel_to_linear_vocoder, recognition_lexicon,
                                   recognition_search)
    from .jobs.evaluation import MeanSpectraSynthesisJob
    from .sisyphus_api import tk

    d = get_data(setup)
    reference = cv_reference_corpus(setup)
    recognise = dict(reference_corpus=reference, asr=asr, vocab_labels=d.asr.asr_vocab.labels_file,
                     lexicon=recognition_lexicon(setup), search=recognition_search(setup))

    def judge(prefix: str, audio_list: Optional[Any], pocketsphinx: bool = True,
              texts: Any = reference) -> Dict[str, Any]:
        return judges.judge_audio(prefix, texts, audio_list, pocketsphinx=pocketsphinx,
                                  dnsmos_utterances_per_speaker=setup.dnsmos_utterances_per_speaker)

    for experiments in results.values():
        for result in experiments.values():
            if "audio_list" not in result:
                continue
            wers = result.setdefault("wers", {})
            texts = result.get("tts_eval_reference_corpus", reference)  # test-clean where not tts_eval_subset_is_cv
            recognise_texts = {**recognise, "reference_corpus": texts}
            wers["swer"] = pipeline.synthetic_wer(result["prefix"], result["audio_list"], **recognise_texts)
            if "audio_list_oracle_durations" in result:
                wers["swer_oracle_durations"] = pipeline.synthetic_wer(
                    result["prefix"], result["audio_list_oracle_durations"], key="swer_oracle_durations",
                    **recognise)
            for scale, audio_list in result.get("audio_list_noise", {}).items():
                wers[f"swer_noise_{scale}"] = pipeline.synthetic_wer(
                    result["prefix"], audio_list, key=f"swer_noise_{scale}", **recognise_texts)
            result.setdefault("metrics", {}).update(judge(result["prefix"], result["audio_list"],
                                                          setup.pocketsphinx_on_synthesis, texts))

    controls_prefix = f"{setup.prefix}/controls"
    alignment_model = exp_tts.run_experiment(setup, exp_tts.ALIGNMENT_MODEL)
    resynthesis = pipeline.resynthesize(controls_prefix, alignment_model["model_config"], d.tts.synthesis,
                                        d.tts.extern_data)["audio_files.txt"]
    real = {"prefix": f"{controls_prefix}/real_audio",
            "wers": {"tts-cv": asr["wers"]["tts-cv"]},
            "metrics": judge(f"{controls_prefix}/real_audio", None)}
    resynth = {"prefix": f"{controls_prefix}/resynthesis_gl", "audio_list": resynthesis,
               "wers": {"swer": pipeline.synthetic_wer(f"{controls_prefix}/resynthesis_gl", resynthesis,
                                                       **recognise)},
               "metrics": judge(f"{controls_prefix}/resynthesis_gl", resynthesis)}
    vocoder = mel_to_linear_vocoder(setup)
    blstm_prefix = f"{controls_prefix}/resynthesis_blstm_gl"
    resynthesis_blstm = pipeline.resynthesize(controls_prefix, alignment_model["model_config"], d.tts.synthesis,
                                              d.tts.extern_data, vocoder=vocoder)["audio_files.txt"]
    resynth_blstm = {"prefix": blstm_prefix, "audio_list": resynthesis_blstm, "train_job": vocoder["train_job"],
                     "wers": {"swer": pipeline.synthetic_wer(blstm_prefix, resynthesis_blstm, **recognise)}}
    mean_spectra = MeanSpectraSynthesisJob(d.tts.feature_hdf, d.tts.phonemes, d.tts.durations, d.tts.train_segments,
                                           d.tts.cv_segments, d.tts.feature_settings)
    tk.register_output(f"{controls_prefix}/mean_spectra/audio_files.txt", mean_spectra.out_audio_list)
    mean = {"prefix": f"{controls_prefix}/mean_spectra", "audio_list": mean_spectra.out_audio_list,
            "wers": {"swer": pipeline.synthetic_wer(f"{controls_prefix}/mean_spectra", mean_spectra.out_audio_list,
                                                    **recognise)}}
    results["controls"] = {"real audio": real, "Griffin-Lim resynthesis of the real features": resynth,
                           "Griffin-Lim on the trained mel-to-linear BLSTM (resynthesis)": resynth_blstm,
                           "per-phoneme mean spectra, given durations": mean}
    results["alignment"] = {
        f"{name} durations vs flite": {"metrics": quality.figures()}
        for name, quality in d.alignment_quality.items()}


def build_report_spec(setup: ExperimentSetup, results: Dict[str, Dict[str, Any]]) -> ReportSpec:
    """Every number, training curve, audio sample and alignment of the run, for ``report.register_report``.

    Per experiment: ``wers`` (test set -> WER Variable, or a dict of Variables such as {"wer", "sub", "del",
    "ins"}), ``phoneme_accuracy`` (latent -> Variable or dict), ``metrics`` (column -> value: any further
    per-experiment number), ``train_job`` (its learning-rates file gives the curves) and ``audio_list`` (the
    synthesised TTS-CV audio).
    """
    from .experiment_setup import cv_reference_corpus, get_data

    spec = ReportSpec(title=f"Results of {setup.prefix}", notes=[
        "WER and sWER in %, sclite, with substitutions/deletions/insertions (counts) and the reference word count. "
        "sWER: the synthesised TTS-CV audio recognised by the log-mel ASR baseline (lexicon beam search + LM); "
        "length_ratio: synthesised / real seconds. Every synthesis samples the prior at temperature (noise scale) "
        f"{setup.tts_noise_scale} (ExperimentSetup.tts_noise_scale); sWER[noise_T]: the same model's synthesis at "
        f"temperature T instead. sWER[oracle_durations]: synthesis with the given durations instead "
        "of the duration predictor. pocketsphinx_*: the same audio recognised by pocketsphinx' own en-US model "
        "(pocketsphinx_real_*: on the real audio of the same utterances). dnsmos_*: DNSMOS P.808 MOS and SIG/BAK/OVRL "
        "(a proxy for naturalness, not NISQA-TTS)"
        + (f" of each speaker's first {setup.dnsmos_utterances_per_speaker} TTS-CV utterances"
           if setup.dnsmos_utterances_per_speaker is not None else "")
        + ". speaker_*: resemblyzer cosine of synthesised vs real audio of the same / other speakers. "
        "Controls: the real audio; its Griffin-Lim resynthesis (the vocoder ceiling) with the mel pseudo-inverse "
        "and with the trained mel-to-linear BLSTM; and the per-phoneme mean spectra (each speaker's mean log-mel "
        "frame of every token over the TTS train split, repeated over the given durations: what a TTS that learnt "
        "only average spectra scores). "
        f"Vocoder of every TTS synthesis: {setup.vocoder} (ExperimentSetup.vocoder; the default run uses the one "
        "whose resynthesis sWER is lower). "
        "Phoneme accuracy: frame accuracy of the aux head on the TTS-CV split on the flow output z of real audio "
        "and on the prior sample, next to the majority-class and proportional-alignment baselines. Alignment: "
        "boundary error of the given durations against flite's own phone timings (flite voices only). "
        "'pending': its job has not finished yet."])
    d = get_data(setup)
    spec.audio["real"] = cv_reference_corpus(setup)
    spec.alignments["given (alignment Glow-TTS, Viterbi)"] = d.durations
    if d.reference_durations is not None:
        spec.alignments["reference (flite's phone timings)"] = d.reference_durations
    for family, experiments in results.items():
        for name, result in experiments.items():
            spec.add_row(family, name, result_columns(result))
            if "train_job" in result:
                spec.curves[f"{family}/{name}"] = result["train_job"].out_learning_rates
            if "audio_list" in result:
                spec.audio[f"{family}/{name}"] = result["audio_list"]
    return spec


def result_columns(result: Dict[str, Any]) -> Dict[str, Any]:
    """The table columns of one experiment result (see ``build_report_spec``)."""
    columns: Dict[str, Any] = {}
    for test_set, wer in (result.get("wers") or {}).items():
        columns[_wer_column(test_set)] = wer.variables() if hasattr(wer, "variables") else wer
    for latent, accuracy in (result.get("phoneme_accuracy") or {}).items():
        columns[f"phoneme acc[{latent}]"] = accuracy
    for baseline, accuracy in (result.get("phoneme_accuracy_baselines") or {}).items():
        columns[f"phoneme acc baseline[{baseline}]"] = accuracy
    columns.update(result.get("metrics") or {})
    return columns


def _wer_column(test_set: str) -> str:
    """"swer" -> "sWER", "swer_pocketsphinx" -> "sWER[pocketsphinx]", "test-clean" -> "WER[test-clean]"."""
    if test_set == "swer":
        return "sWER"
    if test_set.startswith("swer_"):
        return f"sWER[{test_set[len('swer_'):]}]"
    return f"WER[{test_set}]"


def py() -> None:
    run_all(EMBEDDED)
