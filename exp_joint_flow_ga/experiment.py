"""As exp_joint, but the external (given) alignment also replaces MAS for the TTS itself.

The given durations build the path for the maximum-likelihood loss, the duration-predictor target and
the CE labels. Every head is scored on the flow output of the real audio and on samples of the aligned prior
(the original's "phoneme_pred" and "encoder_phoneme_pred").
"""
from __future__ import annotations

from typing import Any, Dict

from ..exp_joint.experiment import JointExperiment, build
from ..experiment_setup import EMBEDDED, ExperimentSetup

FAMILY = "joint_models/flow_given_alignment"


def _exps() -> Dict[str, JointExperiment]:
    exps: Dict[str, JointExperiment] = {}
    for init in ("basic_init", "tts_pretrained"):
        exps[f"ga_glowTTS_ASR_ffn_x_vector/200ep/{init}/ce_ls_0.1"] = JointExperiment("ffn", "flow_z", 0.1, init)
        for ce in (0.1, 1.0):
            exps[f"ga_glowTTS_ASR_ffn_x_vector_v2/200ep/{init}/ce_ls_{ce}"] = JointExperiment(
                "ffn", "prior_sample", ce, init, core=(init == "basic_init" and ce == 0.1))
        exps[f"ga_glowTTS_ASR_cnn_x_vector/{init}/ce_ls_0.1"] = JointExperiment("cnn", "flow_z", 0.1, init)
        for ce in (0.1, 0.01):
            exps[f"ga_glowTTS_ASR_cnn_x_vector_v2/{init}/ce_ls_{ce}"] = JointExperiment("cnn", "prior_sample", ce, init)
    return exps


EXPERIMENTS = _exps()


def run_experiment(setup: ExperimentSetup, name: str) -> Dict[str, Any]:
    return build(setup, FAMILY, name, EXPERIMENTS[name], alignment="given")


def run(setup: ExperimentSetup = EMBEDDED) -> Dict[str, Dict[str, Any]]:
    return {name: run_experiment(setup, name) for name, exp in EXPERIMENTS.items() if exp.core or not setup.core_only}


def py() -> None:
    run()
