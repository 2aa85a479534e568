"""Two-step trainings, and ASR to measure what the auxiliary loss does to the latent space.

Step 1 trains the given-alignment Glow-TTS with a strong aux CE loss. Step 2 starts from its checkpoint:
(a) only the phoneme head on the frozen flow output, (b) a BLSTM-CTC recogniser on the frozen flow
output, (c) the TTS alone (text encoder frozen, MAS alignment, no aux loss). Further, a Conformer-CTC
recogniser on the frozen latent of an exp_joint model, and log-mel BLSTM/Conformer baselines. WERs are
scored with sclite on the TTS-CV split (utterances of the training speakers that no model trained on;
the latent recognisers need their x-vectors), the log-mel baselines also on the ASR test subset.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Dict

from .. import pipeline
from ..config import preload
from ..exp_joint import experiments as exp_joint
from ..experiment_setup import (EMBEDDED, ExperimentSetup, asr_model, asr_training_settings, blstm_encoder,
                                conformer_encoder, cv_reference_corpus, get_data, glow_tts, phoneme_head,
                                probe_training_settings, recognition_lexicon, recognition_search,
                                training_settings)
from ..pytorch_networks.configs import ASR_NEW_PARAMS_PREFIXES, PHONEMES_EOW_KEY, PHONEMES_KEY

FAMILY = "joint_models/flow_given_alignment/2step"
CE_SCALES = (1.0, 2.0, 3.0, 4.0)


def first_step(setup: ExperimentSetup, ce_loss_scale: float) -> Dict[str, Any]:
    datasets = get_data(setup).tts
    model = glow_tts(setup, datasets, alignment="given", phoneme_head=phoneme_head(setup, "ffn"),
                     aux_latent="prior_sample")
    return pipeline.tts_experiment(
        f"{setup.prefix}/{FAMILY}/first_step/ga_glowTTS_ASR_ffn_x_vector_v2/ce_ls_{ce_loss_scale}", model, datasets,
        training_settings(setup, "tri", 100), train_step_kwargs={"ce_loss_scale": ce_loss_scale}, tts_eval=False)


def second_step_head(setup: ExperimentSetup, step1: Dict[str, Any], name: str) -> Dict[str, Any]:
    """(a) the phoneme head alone on the frozen flow output of the step-1 model."""
    model = dataclasses.replace(step1["model_config"], aux_latent="flow_z", freeze_glowtts=True)
    return pipeline.tts_experiment(
        f"{setup.prefix}/{FAMILY}/second_step/ga_glowTTS_ASR_ffn_x_vector_v2_2ndstep/{name}", model,
        get_data(setup).tts, probe_training_settings(setup, "tri", 100),
        preload_from_files=preload("step1", step1["checkpoint"]), tts_eval=False)


def second_step_tts(setup: ExperimentSetup, step1: Dict[str, Any], name: str) -> Dict[str, Any]:
    """(c) TTS training continues without the aux loss: MAS alignment, text encoder frozen."""
    model = dataclasses.replace(step1["model_config"], alignment="mas", freeze_text_encoder=True)
    return pipeline.tts_experiment(
        f"{setup.prefix}/{FAMILY}/second_step_tts/ga_glowTTS_ASR_ffn_x_vector_v2_2ndstep_tts/{name}", model,
        get_data(setup).tts, training_settings(setup, "tri", 100), train_step_kwargs={"ce_loss_scale": 0.0},
        preload_from_files=preload("step1", step1["checkpoint"]))


def latent_asr(setup: ExperimentSetup, tts: Dict[str, Any], prefix: str, encoder: Any, *, target_key: str,
               schedule: str = "tri", num_epochs: int = 100, **training: Any) -> Dict[str, Any]:
    """(b) CTC recognition from the frozen Glow-TTS flow output z (the TTS flow and speaker part preloaded: a
    checkpoint without them fails the training; its text encoder and head are ignored)."""
    d = get_data(setup)
    glow = dataclasses.replace(tts["model_config"], phoneme_head=None, label_target_size=None)
    tts_targets = target_key == PHONEMES_KEY
    vocab = d.tts.tts_vocab if tts_targets else d.tts.asr_vocab
    model = asr_model(setup, d.tts, encoder, label_target_size=vocab.size, glowtts=glow, with_specaug=False)
    return pipeline.asr_experiment(
        prefix, model, d.tts, asr_training_settings(setup, schedule, num_epochs, **training), dev=d.tts.cv,
        test_dataset=d.tts.cv, test_corpus=cv_reference_corpus(setup), vocab_labels=vocab.labels_file,
        lexicon=recognition_lexicon(setup), target_key=target_key, eow_suffix=None if tts_targets else "#",
        word_separator="[space]" if tts_targets else None,
        preload_from_files=preload("glowTTS", tts["checkpoint"], new_params_prefixes=ASR_NEW_PARAMS_PREFIXES),
        test_key="tts-cv", search=recognition_search(setup))


def log_mel_asr(setup: ExperimentSetup, name: str, encoder: Any, schedule: str = "oclr", num_epochs: int = 250,
                **training: Any) -> Dict[str, Any]:
    """A CTC baseline on log-mel features (the reference WER for the latent recognisers)."""
    d = get_data(setup)
    model = asr_model(setup, d.asr, encoder, label_target_size=d.asr.asr_vocab.size)
    settings = asr_training_settings(setup, schedule, num_epochs, **training)
    prefix = f"{setup.prefix}/{FAMILY}/asr_baseline/{name}"
    result = pipeline.asr_experiment(prefix, model, d.asr, settings, dev=d.asr.cv_asr, test_dataset=d.asr_test[0],
                                     test_corpus=d.asr_test[1], vocab_labels=d.asr.asr_vocab.labels_file,
                                     lexicon=recognition_lexicon(setup), test_key=setup.asr_test_subset,
                                     search=recognition_search(setup))
    extern = {k: v for k, v in d.tts.extern_data.items()}
    searches = {"tts-cv": recognition_search(setup)}
    if setup.recognition_decoder != "greedy":  # greedy beside the beam search: what the lexicon and LM add
        searches["tts-cv_greedy"] = recognition_search(setup, "greedy")
    for key, search in searches.items():
        result["wers"][key] = pipeline.asr_search(prefix, result["checkpoint"], model, d.tts.cv, extern,
                                                  cv_reference_corpus(setup), d.asr.asr_vocab.labels_file,
                                                  recognition_lexicon(setup), key=key, search=search)
    return result


def run(setup: ExperimentSetup = EMBEDDED) -> Dict[str, Any]:
    results: Dict[str, Any] = {}
    scales = (1.0,) if setup.core_only else CE_SCALES
    for ce in scales:
        results[f"first_step/ce_ls_{ce}"] = first_step(setup, ce)
    step1 = results["first_step/ce_ls_1.0"]
    results["second_step_tts/ce_ls_1.0"] = second_step_tts(setup, step1, "ce_ls_1.0")
    blstm_prefix = f"{setup.prefix}/{FAMILY}/second_step/ga_glowTTS_ASR_ffn_x_vector_v2_blstm_2ndstep/no_specaug/ce_ls_1.0"
    results["second_step/blstm_ctc/ce_ls_1.0"] = latent_asr(setup, step1, blstm_prefix, blstm_encoder(setup),
                                                            target_key=PHONEMES_KEY)
    results["asr_baseline/blstm_ctc"] = log_mel_asr(setup, "blstm_ctc", blstm_encoder(setup), "tri", 100)
    if not setup.core_only:
        results["second_step/ce_ls_1.0"] = second_step_head(setup, step1, "ce_ls_1.0")
        joint = exp_joint.run_experiment(setup, "glowTTS_ASR_cnn_x_vector/tts_pretrained/no_specaug/tts_target_size/ce_ls_0.1")
        results["second_step_asr/glowASR_conformer_x_vector"] = latent_asr(
            setup, joint, f"{setup.prefix}/{FAMILY}/second_step_asr/frozen_glowtts/glowASR_conformer_x_vector",
            conformer_encoder(setup), target_key=PHONEMES_EOW_KEY, schedule="oclr", num_epochs=250,
            optimizer="adam", epsilon=1e-8, batch_size_seconds=360.0 if not setup.tiny else setup.batch_size_seconds,
            stop_on_nonfinite_train_score=False)
        results["asr_baseline/conformer_ctc"] = log_mel_asr(setup, "conformer_ctc", conformer_encoder(setup),
                                                            optimizer="adam", epsilon=1e-8)
    return results


def py() -> None:
    run()
