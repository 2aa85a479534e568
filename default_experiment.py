"""The embedded default experiment: every experiment family's core runs on the synthetic corpus.

    python -m librispeech_joint_training_given_alignments.embedded_sisyphus manager -r default_config.py

(scripts/run_default_experiment.sh does this in ./experiment). The same families run at the original
sizes on a real LibriSpeech tree with ``run_all(experiment_setup.librispeech("/data/LibriSpeech"))``.
"""
from __future__ import annotations

from typing import Any, Dict

from .experiment_setup import EMBEDDED, ExperimentSetup
from .sisyphus_api import tk


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
    register_summary(setup, results)
    return results


def add_synthetic_wers(setup: ExperimentSetup, results: Dict[str, Dict[str, Any]], asr: Dict[str, Any]) -> None:
    """sWER of every synthesising TTS model: its Griffin-Lim audio of the TTS-CV split, recognised by ``asr``."""
    from . import pipeline
    from .experiment_setup import cv_reference_corpus, get_data, recognition_lexicon, recognition_search

    vocab = get_data(setup).asr.asr_vocab.labels_file
    for experiments in results.values():
        for result in experiments.values():
            if "audio_list" in result:
                wer = pipeline.synthetic_wer(result["prefix"], result["audio_list"], cv_reference_corpus(setup), asr,
                                             vocab, recognition_lexicon(setup), search=recognition_search(setup))
                result.setdefault("wers", {})["swer"] = wer


def register_summary(setup: ExperimentSetup, results: Dict[str, Dict[str, Any]]) -> None:
    """One report with every phoneme accuracy and WER of the run (written once all are available); every WER has
    its substitution/deletion/insertion counts beside it, every sWER the synthesised/real length ratio."""
    values: Dict[str, Any] = {}
    for family, experiments in results.items():
        for name, result in experiments.items():
            for latent, accuracy in (result.get("phoneme_accuracy") or {}).items():
                values[f"{family}/{name}/phoneme_accuracy[{latent}]"] = accuracy
            for baseline, accuracy in (result.get("phoneme_accuracy_baselines") or {}).items():
                values[f"{family}/{name}/phoneme_accuracy_baseline[{baseline}]"] = accuracy
            for test_set, wer in (result.get("wers") or {}).items():
                for figure, value in wer.variables().items():
                    values[f"{family}/{name}/{figure}[{test_set}]"] = value
    lines = [f"{name}: {{{i}}}" for i, name in enumerate(sorted(values))]
    ordered = [values[name] for name in sorted(values)]
    tk.register_report(f"{setup.prefix}/summary.txt", lambda: "\n".join(
        line.format(*[v.get() for v in ordered]) for line in lines), required=ordered)


def py() -> None:
    run_all(EMBEDDED)
