"""Frozen Glow-TTS: only a phoneme-reconstruction head is trained, on a chosen part of the latent space.

A trained Glow-TTS is loaded and frozen (no gradients, eval mode); the head reads either samples of the
aligned prior ("encoder") or the flow output z of the real audio ("decoder"). Every probe is evaluated on
both latents. Prior and labels follow the given durations, except for the "_mas" probes: there the frozen
model's own MAS (Viterbi) path of the real audio aligns the prior and gives the frame labels, as in the
original ``*_mas`` modules (without their swapped encoder/decoder inputs); the "_mas_no_eval" probes keep the frozen
model's dropout active, as the original's ``ga_glowTTS_ASR_ffn_mas_no_eval``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict

from .. import pipeline
from ..config import preload
from ..exp_tts import experiment as exp_tts
from ..experiment_setup import (EMBEDDED, ExperimentSetup, get_data, glow_tts, phoneme_head,
                                probe_training_settings)

FAMILY = "joint_models/flow_given_alignment/frozen_glowtts"
LATENTS = {"encoder": "prior_sample", "decoder": "flow_z"}


@dataclass(frozen=True)
class FrozenProbe:
    head: str = "ffn"
    speaker_mode: str = "xvector"
    recognition_input: str = "encoder"
    label_alignment: str = "given"
    tts_model: str = "glowTTS_x_vector_v2/enc768/200ep/dec_drop_0.05"
    num_epochs: int = 100
    core: bool = False
    frozen_train_mode: bool = False  # the "_no_eval" probes: the frozen Glow-TTS keeps its dropout active


def _exps() -> Dict[str, FrozenProbe]:
    exps: Dict[str, FrozenProbe] = {}
    emb_tts = "glowTTS/enc768/200ep/dec_drop_0.05"
    for recognition_input in ("encoder", "decoder"):
        for head in ("ffn", "cnn"):
            exps[f"ga_glowTTS_ASR_{head}_x_vector/100ep/{recognition_input}"] = FrozenProbe(
                head, recognition_input=recognition_input)
            exps[f"ga_glowTTS_ASR_{head}/100ep/{recognition_input}"] = FrozenProbe(
                head, "embedding", recognition_input, tts_model=emb_tts)
        exps[f"ga_glowTTS_ASR_ffn_x_vector_mas/100ep/{recognition_input}"] = FrozenProbe(
            recognition_input=recognition_input, label_alignment="mas")
        exps[f"ga_glowTTS_ASR_ffn_mas/100ep/{recognition_input}"] = FrozenProbe(
            "ffn", "embedding", recognition_input, "mas", emb_tts)
        exps[f"ga_glowTTS_ASR_ffn_mas_no_eval/100ep/{recognition_input}"] = FrozenProbe(
            "ffn", "embedding", recognition_input, "mas", emb_tts, frozen_train_mode=True)
    exps["ga_glowTTS_ASR_ffn_x_vector/100ep/encoder/on_100ep_tts"] = FrozenProbe(
        tts_model="glowTTS_x_vector_v2/enc768/100ep/dec_drop_0.05", core=True)
    return exps


EXPERIMENTS = _exps()


def probe_fields(exp: FrozenProbe) -> Dict[str, Any]:
    """The GlowTTSModelConfig fields that make a model a frozen probe of ``exp``: the alignment of prior and
    labels ("given" durations, or for "_mas" probes the frozen model's own MAS path), the latent, freezing."""
    if exp.label_alignment not in ("given", "mas"):
        raise ValueError(f"label_alignment must be 'given' or 'mas', got {exp.label_alignment!r}")
    return {"alignment": exp.label_alignment, "ce_label_alignment": exp.label_alignment,
            "aux_latent": LATENTS[exp.recognition_input], "freeze_glowtts": True,
            "frozen_train_mode": exp.frozen_train_mode}


def run_experiment(setup: ExperimentSetup, name: str) -> Dict[str, Any]:
    exp = EXPERIMENTS[name]
    datasets = get_data(setup).tts
    tts = exp_tts.EXPERIMENTS[exp.tts_model]
    model = glow_tts(setup, datasets, core=tts.seed_selection, **{**tts.model, "speaker_mode": exp.speaker_mode},
                     phoneme_head=phoneme_head(setup, exp.head), add_blank=setup.tts_add_blank, **probe_fields(exp))
    settings = probe_training_settings(setup, "tri", exp.num_epochs)
    checkpoint = exp_tts.run_experiment(setup, exp.tts_model)["checkpoint"]
    init = preload("glowTTS", checkpoint, new_params_prefixes=("phoneme_head.",))  # all Glow-TTS weights or fail
    return pipeline.tts_experiment(f"{setup.prefix}/{FAMILY}/{name}", model, datasets, settings,
                                   preload_from_files=init, tts_eval=False)


def run(setup: ExperimentSetup = EMBEDDED) -> Dict[str, Dict[str, Any]]:
    return {name: run_experiment(setup, name) for name, exp in EXPERIMENTS.items() if exp.core or not setup.core_only}


def py() -> None:
    run()
