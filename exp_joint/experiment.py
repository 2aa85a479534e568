"""Glow-TTS (MAS alignment) with an auxiliary phoneme-reconstruction loss on its latent space.

The aux head predicts frame-level phoneme labels, i.e. the phoneme sequence upsampled by the external
(given) Viterbi durations; MAS still aligns the TTS itself. Heads: FFN / CNN / BLSTM; latents: the flow
output z ("v1") or a sample of the aligned prior ("v2", the CE gradient reaches the text encoder).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Dict, Optional

from .. import pipeline
from ..config import preload
from ..exp_tts import experiment as exp_tts
from ..experiment_setup import (EMBEDDED, ExperimentSetup, glow_tts, phoneme_head, specaug, synthesis_options,
                                training_settings, tts_datasets, tts_eval_data)

FAMILY = "joint_models"
PRETRAINED_TTS = "glowTTS_x_vector_v2/enc768/100ep/dec_drop_0.05"


@dataclass(frozen=True)
class JointExperiment:
    head: str = "ffn"
    latent: str = "flow_z"  # "flow_z" (v1) or "prior_sample" (v2)
    ce_loss_scale: float = 1.0
    init: str = "basic_init"  # or "tts_pretrained": start from the exp_tts x-vector v2 model
    with_specaug: bool = False
    model: Dict[str, Any] = field(default_factory=dict)
    schedule: str = "tri"
    num_epochs: int = 200
    training: Dict[str, Any] = field(default_factory=dict)
    tts_eval: bool = True
    core: bool = False
    partition_epoch: int = 1  # of the training data (block 1 of the original: 3)
    # The length of the original's LR list where it is shorter than ``num_epochs`` (RETURNN then keeps the last rate
    # for the remaining epochs, as run 17 of the original did: 250 epochs with the 200-entry tri200 list).
    schedule_epochs: Optional[int] = None


def _exps() -> Dict[str, JointExperiment]:
    exps: Dict[str, JointExperiment] = {}
    block1 = dict(schedule="oclr", num_epochs=250, training={"optimizer": "adam", "epsilon": 1e-8},
                  init="tts_pretrained", partition_epoch=3)
    for head in ("ffn", "blstm"):
        for aug in ("specaug", "no_specaug"):
            for ce in (1.0, 0.1):
                exps[f"glowTTS_ASR_{head}_x_vector/{aug}/ce_ls_{ce:g}"] = JointExperiment(
                    head, ce_loss_scale=ce, with_specaug=aug == "specaug", tts_eval=head == "ffn", **block1)
    suffix = "no_specaug/tts_target_size"
    for init in ("basic_init", "tts_pretrained"):
        exps[f"glowTTS_ASR_ffn_x_vector/200ep/{init}/{suffix}/ce_ls_0.1"] = JointExperiment(
            "ffn", ce_loss_scale=0.1, init=init)
        exps[f"glowTTS_ASR_ffn_x_vector_v2/200ep/{init}/{suffix}/ce_ls_0.1"] = JointExperiment(
            "ffn", "prior_sample", 0.1, init, core=init == "basic_init")
        exps[f"glowTTS_ASR_cnn_x_vector/{init}/{suffix}/ce_ls_0.1"] = JointExperiment(
            "cnn", ce_loss_scale=0.1, init=init)
    exps[f"glowTTS_ASR_ffn_x_vector_v2/200ep/basic_init/{suffix}/ce_ls_1.0"] = JointExperiment(
        "ffn", "prior_sample", 1.0)
    exps[f"glowTTS_ASR_ffn_x_vector_v2/mean_only/200ep/basic_init/{suffix}/ce_ls_0.1"] = JointExperiment(
        "ffn", "prior_sample", 0.1, model={"mean_only": True})
    exps[f"glowTTS_ASR_ffn_x_vector_v2_1/200ep/basic_init/{suffix}/ce_ls_1.0"] = JointExperiment(
        "ffn", "prior_sample", 1.0, model={"encoder_options": {"mean_extra_embedding": True}})
    # the original's v2_aux_loss called a distance loss that did not exist (the run crashed): here the encoder-mean
    # distance loss of exp_tts' *_dist_loss runs (scale 1.0) on top of the v2 model
    exps[f"glowTTS_ASR_ffn_x_vector_v2_aux_loss/200ep/basic_init/{suffix}/ce_ls_1.0"] = JointExperiment(
        "ffn", "prior_sample", 1.0, model={"distance_loss": "dist"})
    exps["glowTTS_ASR_blstm_x_vector_v2/no_specaug/ce_ls_0.1"] = JointExperiment(
        "blstm", "prior_sample", 0.1, tts_eval=False, num_epochs=250, schedule_epochs=200, partition_epoch=3)
    exps[f"glowTTS_ASR_ffn_simple_encoder_x_vector/200ep/basic_init/{suffix}/ce_ls_0.1"] = JointExperiment(
        "ffn", ce_loss_scale=0.1, model={"encoder_type": "embedding"})
    return exps


EXPERIMENTS = _exps()


def build(setup: ExperimentSetup, family: str, name: str, exp: JointExperiment, *, alignment: str = "mas"
          ) -> Dict[str, Any]:
    """A joint TTS + aux-CE training and its evaluations (shared with exp_joint_flow_ga)."""
    datasets = tts_datasets(setup, exp.partition_epoch)
    model = glow_tts(setup, datasets, core=exp.core, speaker_mode="xvector", phoneme_head=phoneme_head(setup, exp.head),
                     aux_latent=exp.latent, alignment=alignment, specaug=specaug() if exp.with_specaug else None,
                     **exp.model)
    settings = training_settings(setup, exp.schedule, exp.schedule_epochs or exp.num_epochs,
                                 epochs=setup.tts_core_epochs if exp.core else None, **exp.training)
    if exp.schedule_epochs is not None:  # the last rate for the epochs the original's LR list did not cover
        missing = setup.epochs(exp.num_epochs) - settings.num_epochs
        settings = dataclasses.replace(settings, learning_rates=settings.learning_rates
                                       + (settings.learning_rates[-1],) * max(0, missing))
    init = None
    if exp.init == "tts_pretrained":
        init = preload("glowTTS_xvector", exp_tts.run_experiment(setup, PRETRAINED_TTS)["checkpoint"],
                       new_params_prefixes=("phoneme_head.",))
    kwargs = dict(train_step_kwargs={"ce_loss_scale": exp.ce_loss_scale}, tts_eval=exp.tts_eval,
                  tts_eval_data=tts_eval_data(setup, model.speaker.mode),
                  **synthesis_options(setup))
    if exp.core and alignment == "mas" and setup.tts_seed_selection is not None:  # the MAS core: best of seeds
        return pipeline.seed_selected_tts_experiment(f"{setup.prefix}/{family}/{name}", setup.tts_seed_selection,
                                                     model, datasets, settings, preload_from_files=init, **kwargs)
    return pipeline.tts_experiment(f"{setup.prefix}/{family}/{name}", model, datasets, settings,
                                   preload_from_files=init, **kwargs)


def run_experiment(setup: ExperimentSetup, name: str) -> Dict[str, Any]:
    return build(setup, FAMILY, name, EXPERIMENTS[name])


def run(setup: ExperimentSetup = EMBEDDED) -> Dict[str, Dict[str, Any]]:
    return pipeline.with_seed_candidates({name: run_experiment(setup, name) for name, exp in EXPERIMENTS.items()
                                          if exp.core or not setup.core_only})


def py() -> None:
    run()
