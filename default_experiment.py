"""The embedded default experiment: every experiment family's core runs on the synthetic corpus.

    python -m librispeech_joint_training_given_alignments.embedded_sisyphus manager -r default_config.py

(scripts/run_default_experiment.sh does this in ./experiment). The same families run at the original
sizes on a real LibriSpeech tree with ``run_all(experiment_setup.librispeech("/data/LibriSpeech"))``.
"""
from __future__ import annotations

from typing import Any, Dict

from .experiment_setup import EMBEDDED, ExperimentSetup
from .report import ReportSpec, register_report


def run_all(setup: ExperimentSetup = EMBEDDED) -> Dict[str, Dict[str, Any]]:
    from .exp_joint import experiments as exp_joint
    from .exp_joint_2step import experiments as exp_joint_2step
    from .exp_joint_flow_ga import experiments as exp_joint_flow_ga
    from .exp_joint_flow_ga_frozen_glowtts import experiments as exp_frozen
    from .exp_tts import experiments as exp_tts

    results = {
        "exp_tts": exp_tts.run(setup),
        "exp_joint": exp_joint.run(setup),
        "exp_joint_flow_ga": exp_joint_flow_ga.run(setup),
        "exp_joint_flow_ga_frozen_glowtts": exp_frozen.run(setup),
        "exp_joint_2step": exp_joint_2step.run(setup),
    }
    add_synthetic_wers(setup, results, results["exp_joint_2step"]["asr_baseline/blstm_ctc"])
    register_report(setup.prefix, build_report_spec(setup, results))
    return results


def add_synthetic_wers(setup: ExperimentSetup, results: Dict[str, Dict[str, Any]], asr: Dict[str, Any]) -> None:
    """sWER of every synthesising TTS model: its Griffin-Lim audio of the TTS-CV split, recognised by ``asr``."""
    from . import pipeline
    from .experiment_setup import cv_reference_corpus, get_data, recognition_lexicon

    vocab = get_data(setup).asr.asr_vocab.labels_file
    for experiments in results.values():
        for result in experiments.values():
            if "audio_list" in result:
                wer = pipeline.synthetic_wer(result["prefix"], result["audio_list"], cv_reference_corpus(setup), asr,
                                             vocab, recognition_lexicon(setup))
                result.setdefault("wers", {})["swer"] = wer


def build_report_spec(setup: ExperimentSetup, results: Dict[str, Dict[str, Any]]) -> ReportSpec:
    """Every number, training curve, audio sample and alignment of the run, for ``report.register_report``.

    Per experiment: ``wers`` (test set -> WER Variable, or a dict of Variables such as {"wer", "sub", "del",
    "ins"}), ``phoneme_accuracy`` (latent -> Variable or dict), ``metrics`` (column -> value: any further
    per-experiment number), ``train_job`` (its learning-rates file gives the curves) and ``audio_list`` (the
    synthesised TTS-CV audio).
    """
    from .experiment_setup import cv_reference_corpus, get_data

    spec = ReportSpec(title=f"Results of {setup.prefix}", notes=[
        "WER and sWER in %, sclite; sWER: synthesised TTS-CV audio recognised by the ASR baseline. Phoneme "
        "accuracy: frame accuracy of the aux head on the TTS-CV split. 'pending': its job has not finished yet."])
    spec.audio["real"] = cv_reference_corpus(setup)
    spec.alignments["given (alignment Glow-TTS, Viterbi)"] = get_data(setup).durations
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
        columns[_wer_column(test_set)] = wer
    for latent, accuracy in (result.get("phoneme_accuracy") or {}).items():
        columns[f"phoneme acc[{latent}]"] = accuracy
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
