"""Two-step trainings, and ASR to measure what the auxiliary loss does to the latent space.

Step 1 trains the given-alignment Glow-TTS with a strong aux CE loss. Step 2 starts from its checkpoint:
(a) only the phoneme head on the frozen flow output, (b) a BLSTM-CTC recogniser on the frozen flow
output (the original's three: dropout of the frozen model active, with SpecAugment on z, and "_v2" with the
frozen model in eval mode), (c) the TTS alone (text encoder frozen, MAS alignment, no aux loss). Further, a
Conformer-CTC recogniser on the frozen latent of an exp_joint model, trained on the ASR data (partition epoch 3)
and scored on the ASR test subset (LibriSpeech: dev-other) with its label prior and the original's grid of LM
weights and prior scales, and log-mel BLSTM/Conformer baselines (scored on the ASR test subset and on TTS-CV).

The BLSTM recognisers train on the TTS data (partition epoch 1, dev = TTS-CV) as the original's, and are scored by
``setup.latent_blstm_eval_is_cv``: on LibriSpeech (``librispeech()``: False) on dev-other as the original (TTS
lexicon decoding, the same test data and x-vectors as the Conformer: ``latent_asr_test_data``), aliased
``<run>/search/dev-other``; in the embedded setup (True) on the TTS-CV split (utterances of the training speakers
that no model trained on), ``<run>/search/tts-cv``, as before. The embedded corpus has no dev-other nor any harder
("other") split: its dev-clean (20 utterances) and test-clean hold clean voices unseen in training, so neither is
the natural counterpart, and TTS-CV keeps the default run's BLSTM comparable with its log-mel BLSTM baseline, also
scored on TTS-CV, and its job ids as they were.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, Optional

from .. import pipeline
from ..config import preload
from ..exp_joint import experiment as exp_joint
from ..experiment_setup import (EMBEDDED, ExperimentSetup, asr_model, asr_training_settings, blstm_encoder,
                                conformer_encoder, cv_reference_corpus, get_data, glow_tts, latent_asr_data,
                                LatentAsrData, latent_asr_test_data, phoneme_head,
                                probe_training_settings, recognition_lexicon, recognition_search, synthesis_options,
                                training_settings)
from ..pytorch_networks.configs import ASR_NEW_PARAMS_PREFIXES, PHONEMES_EOW_KEY, PHONEMES_KEY

FAMILY = "joint_models/flow_given_alignment"  # the original's prefix of its 2-step runs
CE_SCALES = (1.0, 2.0, 3.0, 4.0)
BLSTM_2NDSTEP = "second_step/ga_glowTTS_ASR_ffn_x_vector_v2_blstm_2ndstep"
CONFORMER = "second_step_asr/frozen_glowtts/glowASR_conformer_x_vector"
# the original's tuning grid of the Conformer: LM weight x prior scale (0: no prior), named as the original
LM_WEIGHTS = ("2", "2.5", "3.0", "3.5", "4.0", "4.5")
PRIOR_SCALES = (None, "0.3", "0.5")


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
        preload_from_files=preload("step1", step1["checkpoint"]), **synthesis_options(setup))


def latent_asr(setup: ExperimentSetup, tts: Dict[str, Any], prefix: str, encoder: Any, *, target_key: str,
               schedule: str = "tri", num_epochs: int = 100, with_specaug: bool = False,
               frozen_train_mode: bool = False, asr_data: Optional[LatentAsrData] = None,
               eval_is_cv: bool = True, **training: Any) -> Dict[str, Any]:
    """(b) CTC recognition from the frozen Glow-TTS flow output z (the TTS flow and speaker part preloaded: a
    checkpoint without them fails the training; its text encoder and head are ignored). ``frozen_train_mode``: the
    frozen flow keeps its dropout active (the original's first BLSTM 2nd steps). Trained on the TTS data (dev =
    TTS-CV) and scored on TTS-CV, or with ``eval_is_cv=False`` on the ASR test subset (``latent_asr_test_data``); or
    with ``asr_data`` trained on its ASR data and scored on its test subset."""
    d = get_data(setup)
    glow = dataclasses.replace(tts["model_config"], phoneme_head=None, label_target_size=None,
                               frozen_train_mode=frozen_train_mode)
    tts_targets = target_key == PHONEMES_KEY
    vocab = d.tts.tts_vocab if tts_targets else d.tts.asr_vocab
    train = asr_data.train if asr_data is not None else d.tts
    model = asr_model(setup, train, encoder, label_target_size=vocab.size, glowtts=glow, with_specaug=with_specaug)
    if asr_data is None and eval_is_cv:
        dev, test, test_corpus, test_key = d.tts.cv, d.tts.cv, cv_reference_corpus(setup), "tts-cv"
    elif asr_data is None:
        dev, (test, test_corpus), test_key = d.tts.cv, latent_asr_test_data(setup), setup.asr_test_subset
    else:
        dev, test, test_corpus, test_key = asr_data.dev, asr_data.test, asr_data.test_corpus, setup.asr_test_subset
    return pipeline.asr_experiment(
        prefix, model, train, asr_training_settings(setup, schedule, num_epochs, **training), dev=dev,
        test_dataset=test, test_corpus=test_corpus, vocab_labels=vocab.labels_file,
        lexicon=recognition_lexicon(setup), target_key=target_key, eow_suffix=None if tts_targets else "#",
        word_separator="[space]" if tts_targets else None,
        preload_from_files=preload("glowTTS", tts["checkpoint"], new_params_prefixes=ASR_NEW_PARAMS_PREFIXES),
        test_key=test_key, search=recognition_search(setup))


def tuning_grid(setup: ExperimentSetup, asr: Dict[str, Any], asr_data: LatentAsrData) -> Dict[str, Any]:
    """The original's 18 searches of its Conformer: LM weights x prior scales (none, 0.3, 0.5) with the beam-search
    decoder of the setup, one shared prior job (the posteriors averaged over the training data), each aliased
    ``<conformer>/tuning/lm_<w>[_ps_<s>]``. Returns name -> WerResult."""
    prefix = asr["prefix"]
    prior = pipeline.compute_prior(prefix, asr["checkpoint"], asr["model_config"], asr_data.train.joint,
                                   asr_data.train.extern_data)
    base = recognition_search(setup, "beam")
    test_keys = set(asr_data.test["data_map"])
    extern = {k: v for k, v in asr_data.train.extern_data.items() if k in test_keys}
    wers = {}
    for lm in LM_WEIGHTS:
        for ps in PRIOR_SCALES:
            name = f"lm_{lm}" + (f"_ps_{ps}" if ps is not None else "")
            wers[name] = pipeline.asr_search(
                f"{prefix}/tuning/{name}", asr["checkpoint"], asr["model_config"], asr_data.test, extern,
                asr_data.test_corpus, get_data(setup).asr.asr_vocab.labels_file, recognition_lexicon(setup),
                key=setup.asr_test_subset, search=dataclasses.replace(base, lm_weight=float(lm)),
                prior_file=prior if ps is not None else None, prior_scale=float(ps) if ps is not None else 0.0)
    return wers


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
    blstm = f"{setup.prefix}/{FAMILY}/{BLSTM_2NDSTEP}"
    # the core recogniser: the frozen flow in eval mode (the original's blstm_2ndstep_v2)
    results["second_step/blstm_ctc/ce_ls_1.0"] = latent_asr(setup, step1, f"{blstm}_v2/no_specaug/ce_ls_1.0",
                                                            blstm_encoder(setup), target_key=PHONEMES_KEY,
                                                            eval_is_cv=setup.latent_blstm_eval_is_cv)
    results["asr_baseline/blstm_ctc"] = log_mel_asr(setup, "blstm_ctc", blstm_encoder(setup), "tri", 100)
    if not setup.core_only:
        results["second_step/ce_ls_1.0"] = second_step_head(setup, step1, "ce_ls_1.0")
        for aug in ("no_specaug", "specaug"):  # the frozen flow's dropout active, as the original's first version
            results[f"second_step/blstm_ctc_train_mode/{aug}/ce_ls_1.0"] = latent_asr(
                setup, step1, f"{blstm}/{aug}/ce_ls_1.0", blstm_encoder(setup), target_key=PHONEMES_KEY,
                with_specaug=aug == "specaug", frozen_train_mode=True, eval_is_cv=setup.latent_blstm_eval_is_cv)
        joint = exp_joint.run_experiment(setup, "glowTTS_ASR_cnn_x_vector/tts_pretrained/no_specaug/tts_target_size/ce_ls_0.1")
        asr_data = latent_asr_data(setup)
        conformer = results["second_step_asr/glowASR_conformer_x_vector"] = latent_asr(
            setup, joint, f"{setup.prefix}/{FAMILY}/{CONFORMER}", conformer_encoder(setup),
            target_key=PHONEMES_EOW_KEY, schedule="oclr", num_epochs=250, with_specaug=True, asr_data=asr_data,
            optimizer="adam", epsilon=1e-8, batch_size_seconds=360.0 if not setup.tiny else setup.batch_size_seconds,
            max_seq_length_seconds=None, stop_on_nonfinite_train_score=False)
        conformer["wers"].update({f"tuning/{k}": v for k, v in tuning_grid(setup, conformer, asr_data).items()})
        results["asr_baseline/conformer_ctc"] = log_mel_asr(setup, "conformer_ctc", conformer_encoder(setup),
                                                            optimizer="adam", epsilon=1e-8)
    return results


def py() -> None:
    run()
